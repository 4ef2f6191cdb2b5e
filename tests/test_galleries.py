"""Galleries that show the point (vision_lib.galleries), on generated face tables: typical faces
first, intruders and poor faces marked and last, the people asked for always shown, a sample that
takes turns across people and skips copies."""
from __future__ import annotations

import numpy as np
import pytest

from vision_lib import galleries
from vision_lib.tables import FaceTable

T = 1.0  # the same-person distance of these generated descriptors


def _table(centres: dict[str, int], rng, *, intruders: int = 0, poor: int = 0) -> FaceTable:
    """``n`` faces per person around a centre 3 T apart; the first ``intruders`` faces of the first
    person described as someone else, the next ``poor`` of them with a low detector score."""
    X, labels = [], []
    for k, (person, n) in enumerate(centres.items()):
        centre = np.zeros(32)
        centre[k] = 3 * T
        X += [centre + rng.normal(0, 0.1, 32) for _ in range(n)]
        labels += [person] * n
    X = np.array(X)
    X[:intruders] += 2 * T  # far from everyone's typical face
    scores = np.full(len(X), 0.99)
    scores[intruders:intruders + poor] = 0.7
    m = len(X)
    return FaceTable("descriptor", X, [f"{lab}/{i}.jpg" for i, lab in enumerate(labels)], labels, np.zeros(m, int),
                     np.tile([0, 0, 100, 100], (m, 1)), [], {}, scores=scores, frontalness=np.ones(m),
                     photo_labels=labels)


def test_ordered_puts_typical_faces_first_and_marks_intruders_and_poor_faces(rng):
    faces = _table({"a": 10}, rng, intruders=2, poor=1)
    index, marks = galleries.ordered(faces, range(10), threshold=T)
    assert set(index[-2:]) == {0, 1} and marks[-2:] == [galleries.OTHER] * 2
    assert index[-3] == 2 and marks[-3] == galleries.LOW
    assert marks[:7] == [""] * 7
    d = galleries.medoid_distances(faces.descriptors, index[:7])
    assert d.max() < T


def test_identity_groups_always_show_the_people_asked_for_and_junk_last(rng):
    faces = _table({"big": 12, "middle": 8, "messi": 4}, rng)
    labels = np.array([0] * 12 + [1] * 8 + [2] * 4)
    labels[-1] = -1
    rows = galleries.identity_groups(faces, labels, n_clusters=1, threshold=T)
    assert [g.cluster for g in rows] == [0, -1]
    rows = galleries.identity_groups(faces, labels, n_clusters=1, always=["messi"], threshold=T)
    assert [g.cluster for g in rows] == [0, 2, -1]
    assert rows[1].caption.startswith("messi (3/3)")
    assert galleries.thumbnail_titles(faces, rows[1]) == [""] * 3  # the caption says who


def test_typical_faces_leave_out_intruders_poor_faces_and_copies(rng):
    faces = _table({"a": 10}, rng, intruders=1, poor=1)
    faces.X[9] = faces.X[8] + 1e-3  # the same photo twice
    chosen, left_out = galleries.typical_faces(faces, range(10), 20, threshold=T)
    assert 0 not in chosen and 1 not in chosen and not {8, 9} <= set(chosen)
    assert left_out == {galleries.OTHER: 1, galleries.LOW: 1, "duplicate": 1}
    assert len(chosen) == 7


def test_spread_sample_takes_turns_across_people_and_skips_copies():
    keys = ["ronaldo"] * 6 + ["messi"] * 2 + ["zlatan"]
    copies = [0, 0, 1, 2, 3, 4, 5, 6, 7]  # the first two are one photo saved twice
    picked = galleries.spread_sample(keys, copies, 5)
    assert [keys[i] for i in picked] == ["ronaldo", "messi", "zlatan", "ronaldo", "messi"]
    assert picked[0] == 0 and 1 not in picked
    assert galleries.spread_sample(keys, copies, 50) == [0, 6, 8, 2, 7, 3, 4, 5]
    with pytest.raises(IndexError):
        galleries.spread_sample(keys, copies[:2], 3)


def test_identity_gallery_figure_captions_rows_and_marks(rng):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    faces = _table({"Serena_Williams": 6, "x": 3}, rng, intruders=1)
    faces.subject[6:] = False  # the second group: background faces
    thumbs = lambda faces, idx: [np.full((8, 8, 3), 100, np.uint8) for _ in idx]  # noqa: E731
    labels = np.array([0] * 6 + [1] * 3)
    rows = galleries.identity_groups(faces, labels, threshold=T)
    assert [g.caption for g in rows] == ["Serena Williams (6/6)", "bystanders (3)"]
    assert rows[0].marks[-1] == galleries.OTHER and rows[0].index[-1] == 0
    fig = galleries.gallery_figure(faces, rows, thumbs, per_group=6)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["Serena Williams\n(6/6)", "bystanders (3)"]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles.count("other person?") == 1 and titles.count("other face") == 3
    assert fig.get_supxlabel() == galleries.GALLERY_NOTE
    plt.close(fig)


def test_face_thumbnails_are_square_crops_of_the_face_boxes(tmp_path):
    from PIL import Image

    image = np.zeros((60, 80, 3), np.uint8)
    image[20:40, 30:50] = (200, 10, 10)  # the "face": a red square in a black photo
    Image.fromarray(image).save(tmp_path / "a.png")
    faces = FaceTable("descriptor", np.zeros((1, 4)), ["a.png"], ["a"], np.zeros(1, int), np.array([[30, 20, 20, 20]]),
                      [], {}, root=tmp_path)
    (thumb,) = galleries.face_thumbnails(faces, [0], size=24, margin=0.0)
    assert thumb.shape == (24, 24, 3)
    assert (thumb[..., 0] > 150).all() and (thumb[..., 1] < 60).all()  # all face, no black margin
