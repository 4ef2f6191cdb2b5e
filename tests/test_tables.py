"""The face table: one type for the faces of a folder, saved as the ``.npz`` of ``vision-lib features``."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vision_lib import average, cluster
from vision_lib.io import Rejected
from vision_lib.tables import FaceTable, FeatureTable, face_table


def _table(**kw) -> FaceTable:
    kps = np.arange(2 * 5 * 2, dtype=float).reshape(2, 5, 2)
    kps[1, 2:] = np.nan  # the second face has only its eyes (the Haar recipe)
    return FaceTable("descriptor", np.eye(2, 128, dtype=np.float32), ["p1/a.jpg", "p1/a.jpg"], ["p1", "p1"],
                     [0, 1], [(0, 0, 50, 40), (60, 0, 20, 20)], [("p2/b.jpg", "no face found")],
                     {"descriptor": "dlib-resnet-v1", "threshold": 0.6}, keypoints=kps, scores=[0.99, 0.5],
                     sharpness=[10.0, 2.0], frontalness=[0.9, np.nan], subject=[False, True],
                     photos=["p1/a.jpg", "p2/b.jpg"], photo_labels=["p1", "p2"], skipped=[("x.txt", "not a photo")],
                     **kw)


def test_old_names_are_the_one_table():
    assert FeatureTable is FaceTable and cluster.FaceSet is FaceTable


def test_rows_give_faces_and_qualities_and_the_photo_view():
    t = _table()
    assert len(t) == 2 and t.paths == [] and t.labelled
    assert t.face(0).keypoints["mouth_right"] == (8.0, 9.0) and set(t.face(1).keypoints) == {"left_eye", "right_eye"}
    assert t.face(1).box == (60, 0, 20, 20) and t.face(1).score == 0.5
    q = t.quality(1)
    assert (q.size, q.sharpness, q.frontalness, q.score) == (20, 2.0, None, 0.5)
    assert t.not_used == [Rejected("p2/b.jpg", "no face found"), Rejected("x.txt", "not a photo")]
    assert t.photo_clusters([3, 7]).tolist() == [7, -1]  # the subject is face 1, photo b has none
    assert t.largest_face_clusters([3, 7]).tolist() == [3, -1]


def test_save_and_load_keep_every_column(tmp_path):
    t = _table()
    back = FaceTable.load(t.save(tmp_path / "t"))
    for name in ("X", "face_index", "boxes", "keypoints", "scores", "sharpness", "frontalness", "subject"):
        assert np.array_equal(getattr(back, name), getattr(t, name), equal_nan=True), name
    assert back.sources == t.sources and back.photos == t.photos and back.photo_labels == t.photo_labels
    assert back.rejected == t.rejected and back.skipped == t.skipped and back.settings == t.settings
    with np.load(tmp_path / "t.npz") as z:  # what older readers look at: every file without a row
        assert z["rejected_source"].tolist() == ["p2/b.jpg", "x.txt"]
    with pytest.raises(FileExistsError):
        t.save(tmp_path / "t.npz")


def test_a_table_written_before_the_new_columns_still_loads(tmp_path):
    path = tmp_path / "old.npz"  # the columns `vision-lib features` wrote before the face table
    np.savez_compressed(path, X=np.ones((3, 4), np.float32), source=np.array(["a/1.jpg", "a/1.jpg", "b/2.jpg"]),
                        label=np.array(["a", "a", "b"]), face_index=np.array([0, 1, 0]),
                        box=np.array([[0, 0, 9, 9]] * 3), rejected_source=np.array(["b/3.jpg"]),
                        rejected_reason=np.array(["no face found"]),
                        settings=np.array(json.dumps({"kind": "descriptor", "root": "/nowhere"})))
    t = FaceTable.load(path)
    assert t.kind == "descriptor" and t.subject.tolist() == [True, False, True]  # the largest face
    assert np.isnan(t.keypoints).all() and np.isnan(t.scores).all() and t.face(0).keypoints == {}
    assert t.photos == ["a/1.jpg", "b/2.jpg", "b/3.jpg"] and t.photo_labels is None and t.paths == []
    faces = cluster.table_faces(t)
    assert faces.photo_labels == ["a", "b", "b"] and faces.photo_clusters([5, 6, 7]).tolist() == [5, 7, -1]


def test_face_table_of_generated_photos_and_average_candidates(tmp_path, rng):
    from PIL import Image

    (tmp_path / "p").mkdir()
    for name in ("noise1.png", "noise2.png"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "p" / name)
    (tmp_path / "p" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (tmp_path / "notes.txt").write_text("hello")
    t = face_table(tmp_path, descriptor="dlib", detector="haar", n_jobs=1, progress=False)
    assert len(t) == 0 and t.X.shape == (0, 128) and t.photo_labels == ["p"] * 3  # every photo in a sub-folder
    assert {r.source for r in t.rejected} == {"p/broken.jpg", "p/noise1.png", "p/noise2.png"}
    assert [r.source for r in t.skipped] == ["notes.txt"] and len(t.not_used) == 4
    groups = average.group_faces(t, {"g": [(tmp_path / "p" / "noise1.png", None)]})
    assert groups["g"].candidates == [] and groups["g"].rejected[0].reason == "no face detected"
