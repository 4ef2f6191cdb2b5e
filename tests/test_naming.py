"""Naming identity clusters by hand: the names table and its edits (vision_lib.naming)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision_lib import naming as N


@pytest.fixture
def rows():
    return [N.Row("a.jpg", 0, 0), N.Row("b.jpg", 0, 0), N.Row("b.jpg", 1, 1), N.Row("c.jpg", 0, 1),
            N.Row("d.jpg", 0, 2), N.Row("e.jpg", 0, -1)]


def test_edits_name_merge_move_and_leave_out(rows):
    rows = N.name_cluster(rows, 0, " Ann ")
    rows = N.merge_clusters(rows, 0, 1)  # cluster 1 was Ann too
    assert [r.cluster for r in rows[:4]] == [0, 0, 0, 0] and {r.name for r in rows[:4]} == {"Ann"}
    rows = N.move_face(rows, "b.jpg", 1, -1)  # a team-mate in Ann's photo: out
    assert rows[2].cluster == -1 and rows[2].name == ""
    rows = N.move_face(rows, "e.jpg", 0, 0)  # an unassigned face that is Ann
    assert rows[5] == N.Row("e.jpg", 0, 0, "Ann")
    rows = N.name_cluster(rows, 2, N.NOT_OF_INTEREST)
    assert N.named_faces(rows) == {"Ann": [("a.jpg", 0), ("b.jpg", 0), ("c.jpg", 0), ("e.jpg", 0)]}
    with pytest.raises(KeyError):
        N.move_face(rows, "zz.jpg", 0, 0)


def test_save_and_load_round_trip_and_plain_clusters_csv(rows, tmp_path):
    rows = N.name_cluster(rows, 1, "Bo, the keeper")  # a comma survives the CSV
    path = N.save_names(rows, tmp_path / "names.csv")
    assert N.load_names(path) == rows
    with pytest.raises(FileExistsError):
        N.save_names(rows, path)
    plain = tmp_path / "clusters.csv"  # what `vision-lib cluster` writes
    plain.write_text("source,face_index,cluster\na.jpg,0,3\n")
    assert N.load_names(plain) == [N.Row("a.jpg", 0, 3, "")]
    bad = tmp_path / "bad.csv"
    bad.write_text("source,cluster\na.jpg,3\n")
    with pytest.raises(ValueError, match="face_index"):
        N.load_names(bad)


# --------------------------------------------------------------------------- training from the names
def _centres(rng, n: int = 3, dim: int = 128) -> np.ndarray:
    c = rng.normal(size=(n, dim))  # ~0.9 apart, like dlib descriptors of different people
    return c / np.linalg.norm(c, axis=1, keepdims=True) * 0.65


def _near(rng, centre, spread=0.2):
    noise = rng.normal(size=centre.shape)
    return (centre + noise / np.linalg.norm(noise) * spread * rng.uniform(0.5, 1.0)).astype(np.float32)


@pytest.fixture
def named_collection(tmp_path, rng, monkeypatch):
    """Photo files (never decoded: the extraction is replaced) whose faces are generated descriptors,
    and a names table over them with every kind of row a user leaves behind."""
    from vision_lib import classify
    from vision_lib.faces import Face

    ann, bo, fan = _centres(rng)
    faces = {f"ann{k}.jpg": [ann] for k in range(6)}
    faces.update({f"bo{k}.jpg": [bo] for k in range(6)})
    faces["both.jpg"] = [ann, fan, bo]  # Ann, a fan, then Bo in one photo
    faces.update({f"fan{k}.jpg": [fan] for k in range(3)})
    faces["cy.jpg"] = [bo]
    for name in faces:
        (tmp_path / name).write_bytes(b"not decoded")
    calls = []

    def fake_extract(paths, recipe=classify.Recipe(), *, n_jobs=None, progress=True):
        calls.append((sorted(Path(p).name for p in paths), recipe))
        out = []
        for p in map(Path, paths):
            D = np.asarray([_near(rng, c) for c in faces[p.name]], np.float32)
            out.append(classify.PhotoFeatures(p, [Face((0, 0, 60 - 5 * j, 60 - 5 * j), 0.99)
                                                  for j in range(len(D))], D, D))
        return out

    monkeypatch.setattr(classify, "extract", fake_extract)
    rows = ([N.Row(f"ann{k}.jpg", 0, 0, "Ann") for k in range(6)] + [N.Row(f"bo{k}.jpg", 0, 1, "Bo") for k in range(6)]
            + [N.Row("both.jpg", 0, 0, "Ann"), N.Row("both.jpg", 1, 2, "-"), N.Row("both.jpg", 2, 1, "")]
            + [N.Row(f"fan{k}.jpg", 0, 2, "-") for k in range(3)]
            + [N.Row("cy.jpg", 0, 3, "Cy"), N.Row("gone.jpg", 0, 0, "Ann"), N.Row("bo0.jpg", 4, 1, "Bo"),
               N.Row("ann0.jpg", 0, 1, "Bo")])
    return tmp_path, rows, (ann, bo, fan), calls


def test_train_from_names_uses_each_named_face_and_reports_the_rest(named_collection, rng):
    root, rows, (ann, bo, fan), calls = named_collection
    model = N.train_from_names(rows, root, descriptor="dlib", progress=False, n_jobs=1)
    assert model.classes_ == ["Ann", "Bo"]
    rep = model.training_report_
    assert sorted((s, n, j) for s, n, j, _ in rep.kept) == sorted(
        [(f"ann{k}.jpg", "Ann", 0) for k in range(6)] + [("both.jpg", "Ann", 0)]
        + [(f"bo{k}.jpg", "Bo", 0) for k in range(6)])
    why = {(e.path, e.face_index): e.reason for e in rep.excluded}
    assert why[("both.jpg", 1)] == N.MARKED_OUT and why[("fan0.jpg", 0)] == N.MARKED_OUT
    assert why[("both.jpg", 2)] == N.NOT_NAMED
    assert why[("gone.jpg", 0)].startswith("photo not found")
    assert why[("bo0.jpg", 4)].startswith("face 4 not found (1 detected")
    assert why[("ann0.jpg", 0)].startswith("listed twice")
    assert why[("cy.jpg", 0)].startswith("person left out")
    assert len(rep.excluded) == 9
    # The photos are looked up once, with the recipe train uses (the cluster's numbering), not the missing one.
    (looked, recipe), = calls
    assert "gone.jpg" not in looked and looked.count("both.jpg") == 1 and recipe.features == "embedding"
    assert model.info_["names"] == {"table": None, "named_faces": 13, "people": 2, "marked_strangers": 4}
    assert model.info_["n_photos"] == 13 and model.openset_.summary()["n_strangers"]["supplied"] == 4
    from vision_lib.faces import Face

    test = np.asarray([_near(rng, ann), _near(rng, bo)])
    preds = model.predict_features([Face((0, 0, 80, 80), 0.99)] * 2, test, test)
    assert [p.label for p in preds] == ["Ann", "Bo"]


def test_train_from_names_refuses_too_few_people_and_fixed_options(named_collection, tmp_path):
    root, rows, _, _ = named_collection
    only_ann = [r for r in rows if r.name != "Bo"]
    with pytest.raises(ValueError, match="fewer than two people"):
        N.train_from_names(only_ann, root, descriptor="dlib", progress=False)
    with pytest.raises(TypeError, match="clean"):
        N.train_from_names(rows, root, clean="agreement")
    with pytest.raises(FileNotFoundError, match="cluster"):
        N.train_from_names(rows, tmp_path / "nowhere")
    path = N.save_names(rows, tmp_path / "names.csv")  # a path works as well as rows
    model = N.train_from_names(path, root, descriptor="dlib", progress=False, n_jobs=1, model="logistic_regression")
    assert model.info_["names"]["table"] == str(path) and model.info_["model"] == "logistic_regression"
    import vision_lib as vl  # the facade: the photos folder, and the names

    assert vl.train(root, names=path, descriptor="dlib", progress=False, n_jobs=1).classes_ == ["Ann", "Bo"]


# --------------------------------------------------------------------------- the CSV workflow, end to end
E2E_PEOPLE = ("Ariel_Sharon", "Jean_Chretien", "Serena_Williams", "Vladimir_Putin")
E2E_COLLECTION, E2E_HELD_OUT = 8, 3


def _cli(*args) -> tuple[int, str, str]:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "vision_lib", *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def _person(source: str) -> str:
    return Path(source).stem.rsplit("_", 1)[0]  # LFW files are <Person_Name>_<NNNN>.jpg


def test_csv_workflow_cluster_name_train_predict_on_lfw(lfw_dir, tmp_path):
    """docs/presentation.md's workflow as a user runs it: cluster an unlabelled folder, name each
    cluster by who most of its faces are (what the user sees), train from the names, and predict
    photos of the same people that were in neither the collection nor the names."""
    import shutil
    from collections import Counter

    collection, held_out = tmp_path / "collection", tmp_path / "held_out"
    collection.mkdir()
    held_out.mkdir()
    for person in E2E_PEOPLE:
        photos = sorted((lfw_dir / person).glob("*.jpg"))
        for p in photos[:E2E_COLLECTION]:
            shutil.copy(p, collection / p.name)  # one flat, unlabelled folder
        for p in photos[-E2E_HELD_OUT:]:
            shutil.copy(p, held_out / p.name)
    rc, out, err = _cli("cluster", collection, "--out", tmp_path / "clusters", "--quiet")
    assert rc == 0, err
    rows = N.load_names(tmp_path / "clusters" / "clusters.csv")
    for c in sorted({r.cluster for r in rows} - {-1}):
        who = Counter(_person(r.source) for r in rows if r.cluster == c)
        person, n = who.most_common(1)[0]
        rows = N.name_cluster(rows, c, person if n > sum(who.values()) / 2 else N.NOT_OF_INTEREST)
    names = N.save_names(rows, tmp_path / "names.csv")
    named = N.named_faces(rows)
    assert len(named) >= 3, Counter(r.cluster for r in rows)  # the clustering finds most of the people

    report = tmp_path / "report.csv"
    rc, out, err = _cli("train", collection, "--names", names, "--out", tmp_path / "model.pkl", "--quiet",
                        "--report", report)
    assert rc == 0, err
    from vision_lib import classify

    model = classify.load_model(tmp_path / "model.pkl")
    assert sorted(model.classes_) == sorted(named)
    assert model.info_["names"]["named_faces"] == len(model.training_report_.kept) == sum(map(len, named.values()))
    unnamed = [r for r in rows if not r.name]
    import csv

    with open(report, newline="") as f:  # every face left out is in the report, with its reason
        left_out = {(Path(r["source"]).name, r["face"]): r["reason"] for r in csv.DictReader(f)
                    if r["status"] == "left out"}
    for r in rows:
        if not r.name or r.name == N.NOT_OF_INTEREST:
            reason = N.NOT_NAMED if not r.name else N.MARKED_OUT
            assert left_out[(Path(r.source).name, str(r.face_index))] == reason
            assert f"{r.source} [face {r.face_index}]" not in out  # counts on the terminal, the list in the report
    assert f"  {len(unnamed):6d}  {N.NOT_NAMED}\n" in out

    rc, out, err = _cli("predict", "--model", tmp_path / "model.pkl", held_out, "--json")
    assert rc == 0, err
    import json

    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(E2E_PEOPLE) * E2E_HELD_OUT
    right = sum(r["label"] == _person(r["path"]) for r in results)
    # Chance is 1 in 4; photos of people nobody named count as wrong.
    print(f"held-out photos named right: {right}/{len(results)}")
    assert right / len(results) >= 0.6, [(Path(r["path"]).name, r["label"]) for r in results]

    rc, _, err = _cli("train", collection, "--names", tmp_path / "nope.csv", "--out", tmp_path / "m2.pkl")
    assert rc != 0 and "no names table" in err and not (tmp_path / "m2.pkl").exists()
    rc, _, err = _cli("train", tmp_path / "held_out", "--names", names, "--out", tmp_path / "m2.pkl", "--quiet")
    assert rc != 0 and "photo not found" in err and not (tmp_path / "m2.pkl").exists()


# --------------------------------------------------------------------------- the widget (headless)
@pytest.fixture
def namer_inputs(tmp_path, rng):
    from PIL import Image

    root = tmp_path / "photos"
    root.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"):
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(root / name)
    rows = [N.Row("a.jpg", 0, 0), N.Row("b.jpg", 0, 0), N.Row("c.jpg", 0, 0), N.Row("b.jpg", 1, 1),
            N.Row("d.jpg", 0, 1), N.Row("e.jpg", 0, 2), N.Row("a.jpg", 1, -1), N.Row("gone.jpg", 0, 1)]
    boxes = {(r.source, r.face_index): (10 + 30 * r.face_index, 10, 30, 30) for r in rows}
    return root, rows, boxes


def test_cluster_namer_widget_edits_the_table_and_saves_it(namer_inputs, tmp_path):
    from vision_lib.widgets import ClusterNamer

    root, rows, boxes = namer_inputs
    out = tmp_path / "names.csv"
    namer = ClusterNamer(rows, root, boxes=boxes, out=out, thumb=32)
    namer.widget  # built without a browser; the controls' callbacks run as a click would run them
    c = namer._controls

    def shown():
        return [cell["key"] for cell in c["cells"] if cell["key"] is not None]

    def said():
        return c["status"].value

    assert [v for _, v in c["cluster"].options] == [0, 1, 2, -1] and namer.current == 0  # largest first
    assert len(shown()) == 3 and str(out) in said()
    c["name"].value = "Ann"
    c["name_button"].click()
    assert [r.name for r in namer.rows[:3]] == ["Ann"] * 3 and "cluster 0: Ann (3 faces)" in c["cluster"].options[0]
    cells = list(c["cells"])
    c["cluster"].value = 1
    assert namer.current == 1 and len(shown()) == 3 and ("b.jpg", 0) not in shown()
    assert [cell["image"] for cell in c["cells"]][:3] == [cell["image"] for cell in cells][:3]  # reused, not rebuilt
    before = list(namer.rows)
    # Nothing is pre-selected, and an action without its choice refuses and changes nothing.
    assert c["merge"].value is None and c["move"].value is None
    c["merge_button"].click()
    assert "Not done" in said() and "'with' menu" in said() and namer.rows == before
    c["move"].value = -1
    c["move_button"].click()  # nothing ticked
    assert "Not done" in said() and "tick the faces" in said() and namer.rows == before
    c["move"].value = None
    next(cell for cell in c["cells"] if cell["key"] == ("b.jpg", 1))["tick"].value = True
    c["move_button"].click()  # ticked, but no target: no "cluster None"
    assert "Not done" in said() and "'to' menu" in said() and namer.rows == before
    c["merge"].value = 2
    c["merge_button"].click()  # cluster 2 was the same person
    assert [v for _, v in c["cluster"].options] == [1, 0, -1] and len(namer.faces(1)) == 4  # now the largest
    assert c["merge"].value is None and c["move"].value is None  # empty again after the edit
    c["merge_button"].click()  # a second click merges nothing
    assert "Not done" in said() and len(namer.faces(1)) == 4
    assert namer.ticked() == [("b.jpg", 1)]  # still ticked: b.jpg face 1 is someone else
    c["move"].value = -1
    c["move_button"].click()
    assert N.Row("b.jpg", 1, -1, "") in namer.rows and len(namer.faces(1)) == 3 and namer.ticked() == []
    c["out_button"].click()  # the rest of cluster 1: fans
    assert {r.name for r in namer.faces(1)} == {N.NOT_OF_INTEREST}
    assert [v for _, v in c["cluster"].options] == [0, 1, -1] and "not of interest" in c["cluster"].options[1][0]
    c["cluster"].value = 0
    c["name"].value = "  "
    c["name_button"].click()  # an empty name is refused, said under the grid
    assert "Not done" in said() and {r.name for r in namer.faces(0)} == {"Ann"}
    c["save_button"].click()
    assert N.load_names(out) == namer.rows and f"saved 8 rows to {out}" in said()
    assert N.named_faces(N.load_names(out)) == {"Ann": [("a.jpg", 0), ("b.jpg", 0), ("c.jpg", 0)]}
    before = out.read_bytes()
    c["name"].value = "Ann Lee"
    c["name_button"].click()
    c["save_button"].click()  # never over an existing file unless asked
    assert "exists" in said() and out.read_bytes() == before
    c["overwrite"].value = True
    c["save_button"].click()
    assert {r.name for r in N.load_names(out) if r.cluster == 0} == {"Ann Lee"}
    # The photo that is gone gets a grey thumbnail and its reason, never an error.
    assert ("gone.jpg", 0) in namer.problems
    snap = namer.snapshot(max_faces=4)
    from PIL import Image
    import io

    sheet = Image.open(io.BytesIO(snap.png))
    assert sheet.size == (260 + 3 * 36, 3 * 36)  # 3 clusters, at most 3 faces each
    html = snap._repr_mimebundle_()["text/html"]
    assert "data:image/png;base64," in html and "cluster 0: Ann Lee (3 faces)" in html


def test_cluster_namer_pages_and_refuses_to_mark_faces_nobody_saw(namer_inputs, tmp_path, monkeypatch):
    from vision_lib.widgets import ClusterNamer

    root, rows, boxes = namer_inputs
    rows = rows + [N.Row("e.jpg", 1, 3), N.Row("e.jpg", 2, 3), N.Row("d.jpg", 1, 3)]  # background faces
    monkeypatch.chdir(tmp_path)
    namer = ClusterNamer(rows, root, boxes=boxes, thumb=32, per_cluster=2)
    assert namer.out == tmp_path / "names.csv" and namer.out.is_absolute()
    # Cluster 3 is as large as cluster 0 but made of faces that are not their photo's subject: after the people.
    assert namer.clusters() == [0, 1, 2, 3, -1] and "mostly background faces" in namer.label(3)
    namer.widget
    c = namer._controls
    assert "page 1 of 2" in c["page"].value and c["prev"].disabled and not c["next"].disabled
    before = list(namer.rows)
    c["out_button"].click()
    assert "1 of this cluster's 3 faces were not shown yet" in c["status"].value and namer.rows == before
    c["next"].click()
    assert "faces 3-3 of 3" in c["page"].value and [cell["key"] for cell in c["cells"]][:1] == [("c.jpg", 0)]
    c["out_button"].click()  # every page seen now
    assert {r.name for r in namer.faces(0)} == {N.NOT_OF_INTEREST}
    for bad in (None, "1", 1.5, True, -2):
        with pytest.raises(ValueError):
            namer.move([("a.jpg", 0)], bad)
    with pytest.raises(ValueError, match="tick"):
        namer.move([], 1)
    assert namer.rows[0] == N.Row("a.jpg", 0, 0, N.NOT_OF_INTEREST)
    with pytest.raises(ValueError):  # a row load_names could not read back is never written
        N.save_names([N.Row("a.jpg", 0, None)], tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_cluster_namer_reads_a_clusters_csv_and_saves_beside_it(namer_inputs, tmp_path):
    from vision_lib.widgets import ClusterNamer

    root, rows, boxes = namer_inputs
    clusters = N.save_names(rows, tmp_path / "clusters.csv")
    namer = ClusterNamer(clusters, root, boxes=boxes)
    namer.name(0, "Ann")
    assert namer.save() == tmp_path / "names.csv" and N.load_names(tmp_path / "names.csv") == namer.rows
    with pytest.raises(ValueError):
        namer.merge(1, 1)


def test_cluster_namer_on_real_photos(lfw_dir):
    """Faces detected (the cluster's pipeline and numbering) and cropped from real LFW photos."""
    from vision_lib.cluster import face_set
    from vision_lib.widgets import ClusterNamer

    people = ("Serena_Williams", "Vladimir_Putin")
    paths = [p for person in people for p in sorted((lfw_dir / person).glob("*.jpg"))[:3]]
    faces = face_set(lfw_dir, paths=paths, progress=False)
    rows = N.rows_of(faces, [people.index(s.split("/")[0]) if j == 0 else -1
                             for s, j in zip(faces.sources, faces.face_index)])
    assert [(r.source, r.face_index) for r in rows] == list(zip(faces.sources, faces.face_index))
    with pytest.raises(ValueError, match="labels"):
        N.rows_of(faces, [0])
    namer = ClusterNamer(rows, lfw_dir, thumb=48)
    namer.widget
    assert namer.problems == {}
    from PIL import Image
    import io

    thumbs = [np.asarray(Image.open(io.BytesIO(png))) for png in namer.thumbnails(namer.faces(0))]
    assert len(thumbs) == 3 and all(t.shape == (48, 48, 3) and t.std() > 20 for t in thumbs)  # not grey
    namer.name(0, "Serena Williams")
    snap = namer.snapshot()
    assert "Serena Williams (3 faces)" in snap._repr_mimebundle_()["text/plain"]
