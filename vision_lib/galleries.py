"""Galleries that show the point: the faces of a group in order of how typical they are of it.

A cluster's or a folder's faces are ordered by their descriptor distance to the group's *medoid*
(the member with the smallest median distance to the others), so the first faces are the person
the group is about. A face farther from the medoid than the descriptor's own same-person distance
is marked ``other person?`` and a face the detector is unsure of, or a small one, is marked
``low quality``; marked faces come last. Nothing is tuned to a data set: the rules use the
descriptor's calibrated threshold and the face-quality limits of :mod:`vision_lib.faces`.

- :func:`identity_groups` / :func:`identity_gallery`: the largest clusters of an identity
  clustering, the clusters of the people a notebook is about always included, junk clusters last;
- :func:`typical_faces`: a person's most typical good faces (cartoons, drawings and strangers are
  atypical, so they drop out), one per photo;
- :func:`spread_sample`: a sample that takes turns across people and skips copies of one photo
  (a "mistakes" gallery that is not twelve photos of one player).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

import numpy as np

from . import plotting
from .faces.rating import MIN_SIZE
from .models import same_person_distance
from .tables import FaceTable

#: Below this detector score a face is marked ``low quality`` (a blurry patch, a printed face on a
#: shirt): YuNet's own default acceptance score (and MTCNN's here). The library detects down to 0.6
#: to keep small and turned faces, but a gallery's first faces are those the detector is sure of.
MIN_SCORE = 0.9
OTHER, LOW = "other person?", "low quality"


@dataclass
class Group:
    """One gallery row: its caption, its faces (rows of the face table, most typical first) and a
    mark per face (``""``, :data:`OTHER` or :data:`LOW`)."""

    caption: str
    index: list[int]
    marks: list[str] = field(default_factory=list)
    cluster: int | None = None


def medoid_distances(X: np.ndarray, members: Sequence[int]) -> np.ndarray:
    """Distance of each of ``members`` (rows of ``X``) to their medoid: the member with the smallest
    median distance to the others (robust to a few intruders, unlike the centroid)."""
    members = np.asarray(members, int)
    if len(members) == 0:
        return np.zeros(0)
    P = np.asarray(X, np.float64)[members]
    D = np.linalg.norm(P[:, None] - P[None], axis=2)
    if len(members) > 2:
        D_off = D + np.diag(np.full(len(members), np.nan))
        medoid = int(np.nanargmin(np.nanmedian(D_off, axis=1)))
    else:
        medoid = 0
    return D[medoid]


def low_quality(faces: FaceTable, min_score: float = MIN_SCORE, min_size: int = MIN_SIZE) -> np.ndarray:
    """True per face the detector is unsure of (score under ``min_score``) or smaller than
    ``min_size`` px (an unknown score, NaN, counts as fine). Turned-away faces are not marked: they
    are still the person, and their distance to the typical face already puts them later."""
    size = np.minimum(faces.boxes[:, 2], faces.boxes[:, 3])
    with np.errstate(invalid="ignore"):
        return (size < min_size) | (faces.scores < min_score)


def ordered(faces: FaceTable, members: Sequence[int], threshold: float | None = None,
            poor: np.ndarray | None = None) -> tuple[list[int], list[str]]:
    """``members`` most typical first (distance to their medoid), faces farther than ``threshold``
    (default: the descriptor's same-person distance) marked :data:`OTHER`, poor ones :data:`LOW`,
    marked faces last. Returns the ordered rows and their marks."""
    members = np.asarray(members, int)
    threshold = same_person_distance(faces.descriptor) if threshold is None else threshold
    poor = low_quality(faces) if poor is None else poor
    dist = medoid_distances(faces.descriptors, members)
    marks = [OTHER if d > threshold else LOW if poor[i] else "" for i, d in zip(members, dist)]
    order = sorted(range(len(members)), key=lambda j: (marks[j] != "", marks[j] == OTHER, dist[j]))
    return [int(members[j]) for j in order], [marks[j] for j in order]


def identity_groups(faces: FaceTable, labels: Sequence[int], *, n_clusters: int = 6,
                    always: Sequence[str] = (), threshold: float | None = None) -> list[Group]:
    """Gallery rows of an identity clustering: the ``n_clusters`` largest clusters, plus the cluster
    of each person named in ``always`` (a folder name; the cluster holding most of that folder's
    subject faces), captioned by :func:`vision_lib.plotting.cluster_captions`; junk clusters
    ("mixed", "bystanders") and the unassigned faces last. Each row's faces are :func:`ordered`."""
    labels = np.asarray(labels, int)
    captions = plotting.cluster_captions(labels, faces.labels if faces.labelled else None, faces.subject)
    sizes = Counter(labels[labels >= 0].tolist())
    chosen = {c for c, _ in sizes.most_common(n_clusters)}
    for person in always:
        votes = Counter(labels[i] for i, lab in enumerate(faces.labels)
                        if lab == person and faces.subject[i] and labels[i] >= 0)
        if votes:
            chosen.add(votes.most_common(1)[0][0])
    if (labels < 0).any():
        chosen.add(-1)
    poor = low_quality(faces)
    threshold = same_person_distance(faces.descriptor) if threshold is None else threshold
    rows = []
    for c in captions:  # junk_last order
        if c in chosen:
            members = np.flatnonzero(labels == c)
            index, marks = (ordered(faces, members, threshold, poor) if c >= 0
                            else (members.tolist(), [""] * len(members)))
            rows.append(Group(captions[c], index, marks, c))
    return rows


def thumbnail_titles(faces: FaceTable, group: Group) -> list[str]:
    """Per face: its mark when it has one, "other face" when it is not its photo's subject (its
    folder says nothing about who it is), else nothing (the row's caption says who)."""
    return [m or ("" if faces.subject[i] else "other face") for i, m in zip(group.index, group.marks)]


def face_thumbnails(faces: FaceTable, index: Sequence[int], size: int = 72, margin: float = 0.3) -> list[np.ndarray]:
    """Square crops (with ``margin``) of the given faces of a :class:`~vision_lib.tables.FaceTable`, for galleries."""
    import cv2

    from .faces import Face, crop
    from .io import load_image

    out = []
    for i in index:
        image = load_image(faces.paths[i])
        patch = crop(image, Face(tuple(int(v) for v in faces.boxes[i]), 1.0), margin)
        out.append(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return out


def gallery_figure(faces: FaceTable, groups: Sequence[Group], thumbnails: Callable | None = None, *, per_group: int = 6,
                   size: float = 1.5):
    """One row per group (its caption on the left), its first ``per_group`` faces titled by
    :func:`thumbnail_titles`, the note :data:`GALLERY_NOTE` under them. ``thumbnails(faces, rows)``
    gives the images (default :func:`face_thumbnails`). Returns the figure."""
    thumbnails = thumbnails or face_thumbnails
    images = {g.caption: thumbnails(faces, g.index[:per_group]) for g in groups}
    titles = {g.caption: thumbnail_titles(faces, g)[:per_group] for g in groups}
    return plotting.cluster_galleries(images, per_group=per_group, size=size, titles=titles, note=GALLERY_NOTE,
                                      fontsize=11)  # read on a slide, scaled to half its size


def identity_gallery(faces: FaceTable, labels: Sequence[int], thumbnails: Callable | None = None, *, n_clusters: int = 6,
                     per_group: int = 6, always: Sequence[str] = (), size: float = 1.5):
    """The figure (:func:`gallery_figure`) of :func:`identity_groups`: one row per cluster, its
    most typical faces first, marked faces titled by their mark."""
    groups = identity_groups(faces, labels, n_clusters=n_clusters, always=always)
    return gallery_figure(faces, groups, thumbnails, per_group=per_group, size=size)


GALLERY_NOTE = ("Faces most typical of their cluster first; \"other person?\": farther from the cluster's "
                "typical face than one person's faces usually are. Bystanders and unassigned come last.")


def typical_faces(faces: FaceTable, rows: Sequence[int], n: int, *, threshold: float | None = None
                  ) -> tuple[list[int], dict[str, int]]:
    """A person's ``n`` most typical good faces among ``rows`` (e.g. one folder's faces): ordered by
    distance to their medoid, without :data:`OTHER` or :data:`LOW` faces and with one face per photo
    (a photo saved twice is one photo: same source bytes are not known here, so near-identical
    descriptors, closer than a quarter of the threshold, count as one). Drawings, cartoons and
    strangers are far from the person's typical face and drop out. Returns the rows and the counts
    of what was left out, by reason."""
    threshold = same_person_distance(faces.descriptor) if threshold is None else threshold
    index, marks = ordered(faces, rows, threshold)
    left_out: Counter = Counter(m for m in marks if m)
    chosen: list[int] = []
    X = faces.descriptors
    for i, m in zip(index, marks):
        if m or len(chosen) >= n:
            continue
        if any(np.linalg.norm(X[i] - X[j]) < 0.25 * threshold for j in chosen):
            left_out["duplicate"] += 1
            continue
        chosen.append(i)
    return chosen, dict(left_out)


def spread_sample(keys: Sequence[Hashable], copies: Sequence[Hashable], n: int,
                  priority: Sequence[float] | None = None) -> list[int]:
    """Up to ``n`` positions of ``keys`` (e.g. each mistake's true person) taking turns across keys,
    each key's items in ``priority`` order (lower first; default: their order), and never two items
    with the same ``copies`` entry (e.g. :func:`vision_lib.cache.copy_groups`: one photo saved twice)."""
    priority = list(range(len(keys))) if priority is None else list(priority)
    queues: dict = {}
    for i in sorted(range(len(keys)), key=lambda i: priority[i]):
        queues.setdefault(keys[i], []).append(i)
    out, seen = [], set()
    while len(out) < n and any(queues.values()):
        for key in list(queues):
            while queues[key]:
                i = queues[key].pop(0)
                if copies[i] not in seen:
                    seen.add(copies[i])
                    out.append(i)
                    break
            if len(out) >= n:
                break
    return out


#: The public names of this module.
__all__ = ["MIN_SCORE", "OTHER", "LOW", "Group", "medoid_distances", "low_quality",
           "ordered", "identity_groups", "thumbnail_titles", "gallery_figure", "identity_gallery",
           "GALLERY_NOTE", "typical_faces", "spread_sample"]
