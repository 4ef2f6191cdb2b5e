"""The ClusterNamer widget of notebook 04 on a face collection: every decision saved at once, the rows
read back from the file, a refused decision leaving the file as it was (issue 33)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_collection import _centres, make_table

from vision_lib import Collection
from vision_lib import naming as N


@pytest.fixture
def collection(tmp_path, rng):
    from PIL import Image

    table = tmp_path / "first.npz"
    make_table(table, _centres(6, 0), range(4), seed=1)  # 6 people, 4 photos each; root: tmp_path/photos
    for j in range(4):  # the photos of the first person exist: their thumbnails are real crops
        (tmp_path / "photos" / "p000").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(tmp_path / "photos" / "p000" / f"img{j:03d}.jpg")
    people = Collection(tmp_path / "people.db")
    people.add(table, progress=False)
    return people


def state(db) -> tuple:
    """What the file holds, read by a fresh object: people, each face's person and who placed it, decisions."""
    with Collection(db) as c:
        df = c.dataframe()
        return ([tuple(p.__dict__.values()) for p in c.people()],
                [(f, None if pd.isna(p) else int(p), by) for f, p, by in zip(df["face"], df["person"], df["decided_by"])],
                [d["kind"] for d in c.decisions()])


def person_of(db, source: str) -> int | None:
    with Collection(db) as c:
        df = c.dataframe()
    p = df.loc[df["source"] == source, "person"].iloc[0]
    return None if pd.isna(p) else int(p)


def test_every_decision_of_the_widget_is_saved_to_the_collection_at_once(collection):
    from vision_lib.widgets import ClusterNamer, CollectionNamer

    db = collection.path
    namer = ClusterNamer.from_collection(collection, thumb=32)
    assert isinstance(namer, CollectionNamer) and namer.out == db.with_name("names.csv")
    namer.widget  # built without a browser; the callbacks run as a click would run them
    c = namer._controls
    a, b, d, e = (person_of(db, f"p{i:03d}/img000.jpg") for i in (0, 1, 2, 3))
    assert sorted(namer.clusters()) == sorted(p.id for p in collection.people()) and len(namer.clusters()) == 6
    assert c["cluster"].options[0][0].startswith("person ") and "saved in" in c["status"].value

    def said():
        return c["status"].value

    # name: in the file at once
    c["cluster"].value = a
    c["name"].value = "Ada"
    c["name_button"].click()
    assert "Not done" not in said() and Collection(db).store.person(a)[1] == "Ada"
    assert {r.name for r in namer.faces(a)} == {"Ada"} and "saved in" in said()
    # merge b into a
    c["merge"].value = b
    c["merge_button"].click()
    assert b not in [p.id for p in Collection(db).people()] and len(Collection(db).faces_of(a)) == 8
    assert b not in namer.clusters() and len(namer.faces(a)) == 8
    # move a ticked face out of every person: with nobody, placed by the user
    c["cluster"].value = a
    cell = next(cell for cell in c["cells"] if cell["key"] == ("p001/img002.jpg", 0))
    cell["tick"].value = True
    c["move"].value = -1
    c["move_button"].click()
    assert person_of(db, "p001/img002.jpg") is None and N.Row("p001/img002.jpg", 0, -1, "") in namer.rows
    # ...and another into person d
    next(cell for cell in c["cells"] if cell["key"] == ("p001/img003.jpg", 0))["tick"].value = True
    c["move"].value = d
    c["move_button"].click()
    assert person_of(db, "p001/img003.jpg") == d and len(namer.faces(d)) == 5
    # not a person of interest: the person is hidden
    c["cluster"].value = e
    c["out_button"].click()
    assert Collection(db).store.person(e)[2] and {r.name for r in namer.faces(e)} == {N.NOT_OF_INTEREST}
    # named after all: shown again
    c["cluster"].value = e
    c["name"].value = "Eve"
    c["name_button"].click()
    assert Collection(db).store.person(e)[1:3] == ("Eve", 0)
    kinds = [x["kind"] for x in Collection(db).decisions()]
    assert kinds == ["named", "merged", "not-this-person", "moved", "not-this-person", "moved", "not-of-interest",
                     "named", "not-of-interest"]
    # the thumbnails come from the collection's boxes and photo files (grey where the photo is absent)
    assert ("p000/img000.jpg", 0) not in namer.problems and namer.thumbnails(namer.faces(a))
    assert ("p001/img000.jpg", 0) in namer.problems


def test_a_refused_decision_changes_nothing_in_the_collection(collection):
    from vision_lib.widgets import CollectionNamer

    db = collection.path
    namer = CollectionNamer(collection, thumb=32, per_cluster=2)
    namer.widget
    c = namer._controls
    a, b = (person_of(db, f"p{i:03d}/img000.jpg") for i in (0, 1))
    collection.move(collection.faces_of(b)[:1], None)  # one unassigned face
    namer.reload()
    namer._refresh()
    before = state(db)

    def refused(click, words):
        click()
        assert "Not done" in c["status"].value and words in c["status"].value, c["status"].value
        assert state(db) == before

    c["cluster"].value = a
    refused(c["out_button"].click, "not shown yet")  # 4 faces, 2 a page: not all seen
    c["next"].click()
    c["name"].value = "  "
    refused(c["name_button"].click, "type a name")
    refused(c["merge_button"].click, "'with' menu")
    c["cluster"].value = -1
    c["name"].value = "Nobody"
    refused(c["name_button"].click, "in no person")
    for bad, words in ((lambda: namer.move([("p000/img000.jpg", 0)], 999), "no person 999"),
                       (lambda: namer.merge(a, -1), "in no person"),
                       (lambda: namer.move([("p000/nope.jpg", 0)], b), "no face")):
        with pytest.raises((ValueError, KeyError), match=words):
            bad()
        assert state(db) == before
    assert [r.cluster for r in namer.rows] == [r.cluster for r in CollectionNamer(Collection(db)).rows]
