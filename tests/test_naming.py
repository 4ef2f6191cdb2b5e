"""Naming identity clusters by hand: the names table and its edits (vision_lib.naming)."""
from __future__ import annotations

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
