"""From a face collection to the other stages (vision_lib.collection_stages): `train --db` on the
named people, `average --db --person`, and their refusals."""
from __future__ import annotations

import numpy as np
import pytest
from _collection_support import HAVE_REAL, WHY_NOT, named_lfw_collection
from test_collection import _centres, make_table

from vision_lib import Collection
from vision_lib.cli import main
from vision_lib.collection_stages import average_person, names_of_collection, person_id, train_from_collection

needs_real = pytest.mark.skipif(not HAVE_REAL, reason=WHY_NOT)


@pytest.fixture(scope="module")
def named_collection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stages")
    return (tmp, *named_lfw_collection(tmp))


@needs_real
def test_train_from_a_collection_knows_its_named_people(named_collection, tmp_path, capsys):
    tmp, db, held = named_collection
    folder, rows = names_of_collection(Collection(db))
    assert folder == tmp  # the common folder of both roots: every source found under it
    assert all((folder / r.source).is_file() for r in rows)
    out = tmp_path / "m.pkl"
    assert main(["train", "--db", str(db), "--out", str(out), "--far", "off", "--quiet"]) == 0
    from vision_lib.classify import load_model

    model = load_model(out)
    assert sorted(model.classes_) == sorted(held)
    assert model.info_["names"]["collection"] == str(db)
    right = [model.predict_image(__import__("vision_lib").load_image(p))["label"] == person for person, p in held.items()]
    assert np.mean(right) >= 2 / 3
    # the same in Python; both ways refuse what does not apply
    assert sorted(train_from_collection(db, far=None, progress=False).classes_) == sorted(held)
    capsys.readouterr()
    assert main(["train", str(tmp), "--db", str(db), "--out", str(tmp_path / "x.pkl")]) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "x.pkl").exists()


@needs_real
def test_average_of_a_person_by_name_or_id(named_collection, tmp_path, capsys):
    tmp, db, held = named_collection
    name = sorted(held)[0]
    out = tmp_path / "avg"
    assert main(["average", "--db", str(db), "--person", name, "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    assert (out / f"{name}.png").is_file() and (out / "averages.csv").is_file()
    assert f"{name}: " in capsys.readouterr().out
    pid = person_id(Collection(db), name)
    result = average_person(db, pid, progress=False)
    assert result.group == name and result.image is not None and result.n_used >= 3
    # unknown people, a missing --person, an output inside the collection's folder: one line, exit 2
    for argv, words in ((["--person", "Nobody"], "no people named"), (["--person", "99999"], "no person 99999"),
                        ([], "--person")):
        assert main(["average", "--db", str(db), *argv, "--out", str(tmp_path / "never")]) == 2
        assert words in capsys.readouterr().err
    assert main(["average", "--db", str(db), "--person", name, "--out", str(tmp / "a" / "avg")]) == 2
    assert "inside the collection's folder" in capsys.readouterr().err
    assert not (tmp_path / "never").exists() and not (tmp / "a" / "avg").exists()


def test_a_collection_without_its_photos_says_so(tmp_path, capsys):
    """A collection built from a descriptor table whose photo folder is not here: a clear error, nothing written."""
    make_table(tmp_path / "t.npz", _centres(3, 0), range(4), seed=1)
    db = tmp_path / "people.db"
    Collection(db).add([tmp_path / "t.npz"], progress=False)
    people = Collection(db)
    with pytest.raises(ValueError, match="none of the collection's photos is at hand"):
        train_from_collection(people)
    pid = people.people()[0].id
    assert main(["average", "--db", str(db), "--person", str(pid), "--out", str(tmp_path / "avg")]) == 2
    assert "no face in a photo at hand" in capsys.readouterr().err
    assert main(["train", "--db", str(tmp_path / "missing.db"), "--out", str(tmp_path / "m.pkl")]) == 2
    assert "no such collection" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "avg").exists()
