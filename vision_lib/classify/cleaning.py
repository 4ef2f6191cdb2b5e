"""Cleaning uncurated training folders: which face of each photo is the folder's person, what is
left out and why (:class:`TrainingReport`), and the training faces :func:`~vision_lib.classify.train` uses."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..extraction import PhotoFeatures
from ..models import same_person_distance
from ..words import compared

CLEANING = ("agreement", "largest", "none")


@dataclass(frozen=True)
class Excluded:
    """A photo (``face_index`` None) or one face of a photo left out of training, and why."""

    path: str
    label: str
    reason: str
    face_index: int | None = None
    box: tuple[int, int, int, int] | None = None
    distance: float | None = None
    looks_like: str | None = None


@dataclass
class TrainingReport:
    """What training used and what it left out (with reasons)."""

    kept: list[tuple[str, str, int, float | None]] = field(default_factory=list)  # path, label, face, dist
    excluded: list[Excluded] = field(default_factory=list)
    threshold: float | None = None

    def counts(self) -> dict[str, int]:
        """Number of exclusions per reason (reasons without the numbers)."""
        out: dict[str, int] = {}
        for e in self.excluded:
            key = e.reason.split(" (")[0]
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def excluded_for(self, *reasons: str) -> list[Excluded]:
        """The exclusions whose reason starts with one of ``reasons`` (the keys of :meth:`counts`)."""
        return [e for e in self.excluded if e.reason.startswith(reasons)]

    def photos_excluded(self) -> list[Excluded]:
        """Whole photos that gave no training face (the rest are single faces of kept photos)."""
        return [e for e in self.excluded if e.face_index is None]

    #: The columns of :meth:`rows`.
    COLUMNS = ("source", "person", "face", "status", "reason", "distance")

    def rows(self) -> list[list]:
        """One row per training face kept and per photo or face left out (:data:`COLUMNS`), sorted
        by photo then face: ``face`` is empty for a whole photo, ``status`` ``kept`` or ``left out``,
        ``distance`` the face's distance to its person (empty when not measured)."""
        def cell(x):
            return "" if x is None else round(float(x), 4) if isinstance(x, (float, np.floating)) else x

        out = [[path, label, face, "kept", "", cell(dist)] for path, label, face, dist in self.kept]
        out += [[e.path, e.label, cell(e.face_index), "left out", e.reason, cell(e.distance)] for e in self.excluded]
        return sorted(out, key=lambda r: (r[0], -1 if r[2] == "" else r[2], r[3]))

    def summary(self) -> dict:
        return {
            "faces_kept": len(self.kept),
            "photos_kept": len({k[0] for k in self.kept}),
            "excluded": self.counts(),
            "threshold": self.threshold,
        }


_NOT_PERSON = "no face matches the folder's person"


def select_faces(descriptors: Sequence[np.ndarray | None], threshold: float | None = None,
                 max_iter: int = 20, *, descriptor: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Which face of each photo is the folder's person, by agreement with the rest of the folder.

    Args:
        descriptors: per photo, an ``(n_faces, d)`` array of face descriptors (or None / empty).
        threshold: a face belongs to the person when it lies within this distance of the folder's
            centroid (default: the same-person distance of ``descriptor``).
        descriptor: the name of the descriptor that made ``descriptors`` (None: the default).
        max_iter: re-estimation rounds at most.

    Returns:
        ``(chosen, distance, centroid)``: per photo the index of the chosen face (-1: none), the
        distance of its closest face to the centroid (inf without faces), and the centroid.
    """
    thr = same_person_distance(descriptor) if threshold is None else threshold
    n = len(descriptors)
    chosen = np.full(n, -1)
    dist = np.full(n, np.inf)
    rows = [(i, j, d) for i, D in enumerate(descriptors) if D is not None for j, d in enumerate(D)]
    if not rows:
        return chosen, dist, None
    owner = np.array([r[0] for r in rows])
    X = np.asarray([r[2] for r in rows], dtype=np.float64)
    # Seed: the face that the most *other photos* agree with (a photo counts once however many faces).
    pair = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    close = pair <= thr
    support = np.array([len(set(owner[close[k]]) - {owner[k]}) for k in range(len(X))])
    best = np.flatnonzero(support == support.max())
    seed = best[np.argmin(pair[best].mean(axis=1))]
    centroid = X[seed]
    previous = None
    for _ in range(max_iter):
        d = np.linalg.norm(X - centroid, axis=1)
        chosen[:] = -1
        dist[:] = np.inf
        for k in np.argsort(d):  # closest first: each photo keeps its closest face
            i = owner[k]
            if np.isinf(dist[i]):
                dist[i] = d[k]
                chosen[i] = rows[k][1] if d[k] <= thr else -1
        picked = [k for k in range(len(X)) if chosen[owner[k]] == rows[k][1]]
        if not picked or (previous is not None and np.array_equal(chosen, previous)):
            break
        previous = chosen.copy()
        centroid = X[picked].mean(axis=0)
    return chosen, dist, centroid


def clean_training_set(photos: Sequence[PhotoFeatures], labels: Sequence[str], clean: str = "agreement",
                       threshold: float | None = None, min_size: int = 0, *, descriptor: str | None = None
                       ) -> tuple[list[tuple[int, int]], TrainingReport, dict[str, np.ndarray]]:
    """Choose the training faces of uncurated folders and record what was left out and why.

    Returns ``(picked, report, centroids)``: ``picked`` are ``(photo_index, face_index)`` pairs.
    ``clean="agreement"`` uses :func:`select_faces` per folder, then drops faces closer to another
    folder's centroid; ``"largest"`` keeps each photo's largest face (the classic recipe); ``"none"``
    keeps every face. ``threshold`` defaults to the same-person distance of ``descriptor`` (the
    name of the descriptor the photos' descriptors come from; None: the default descriptor).
    """
    if clean not in CLEANING:
        raise ValueError(f"unknown cleaning {clean!r}; choose from {CLEANING}")
    thr = same_person_distance(descriptor) if threshold is None else threshold
    report = TrainingReport(threshold=thr if clean == "agreement" else None)
    picked: list[tuple[int, int]] = []
    centroids: dict[str, np.ndarray] = {}
    by_label: dict[str, list[int]] = {}
    for i, (ph, lab) in enumerate(zip(photos, labels)):
        if ph.error:
            report.excluded.append(Excluded(str(ph.path), lab, f"unreadable ({ph.error})"))
        elif not ph.faces:
            report.excluded.append(Excluded(str(ph.path), lab, "no face found"))
        else:
            by_label.setdefault(lab, []).append(i)

    def usable(ph: PhotoFeatures, j: int) -> bool:
        return ph.faces[j].size >= min_size

    for lab, idx in by_label.items():
        if clean != "agreement":
            for i in idx:
                ph = photos[i]
                js = [j for j in range(len(ph.faces)) if usable(ph, j)]
                js = js[:1] if clean == "largest" else js  # faces are ordered largest first
                if not js:
                    report.excluded.append(Excluded(str(ph.path), lab, f"face too small (< {min_size} px)"))
                picked += [(i, j) for j in js]
            continue
        descs = []
        for i in idx:
            ph = photos[i]
            D = ph.descriptors
            if D is None:
                raise ValueError("cleaning by agreement needs face descriptors for every face")
            keep = np.array([usable(ph, j) for j in range(len(ph.faces))], dtype=bool)
            descs.append(np.where(keep[:, None], D, np.inf) if keep.any() else None)
        chosen, dist, centroid = select_faces([None if d is None else _finite_rows(d) for d in descs], thr)
        chosen = np.array([_orig_index(descs[k], c) for k, c in enumerate(chosen)])
        if centroid is not None:
            centroids[lab] = centroid
        for k, i in enumerate(idx):
            if chosen[k] >= 0:
                picked.append((i, int(chosen[k])))
            elif descs[k] is None:
                report.excluded.append(Excluded(str(photos[i].path), lab, f"face too small (< {min_size} px)"))
            else:
                report.excluded.append(Excluded(
                    str(photos[i].path), lab, f"{_NOT_PERSON} (closest {compared(dist[k], '>', thr)})",
                    distance=float(dist[k])))
    final = []
    for i, j in picked:
        ph, lab = photos[i], labels[i]
        d_own = None
        if clean == "agreement" and ph.descriptors is not None and centroids:
            d = {c: float(np.linalg.norm(ph.descriptors[j] - m)) for c, m in centroids.items()}
            d_own = d[lab]
            other = min((c for c in d if c != lab), key=d.get, default=None)
            if other is not None and d[other] < d_own:
                # Filed in the wrong folder: this face agrees better with another person's photos.
                report.excluded.append(Excluded(
                    str(ph.path), lab, f"closer to another person's faces ({other} {compared(d[other], '<', d_own)})",
                    j, ph.faces[j].box, d_own, other))
                continue
        final.append((i, j))
        report.kept.append((str(ph.path), lab, j, d_own))
    # The other faces of kept photos: other people in the picture.
    kept_photos = {i for i, _ in final}
    for i in sorted(kept_photos):
        ph = photos[i]
        used = {j for ii, j in final if ii == i}
        for j, f in enumerate(ph.faces):
            if j in used:
                continue
            reason = "another face in the photo (not the folder's person)"
            if clean == "largest":
                reason = "not the largest face in the photo"
            report.excluded.append(Excluded(str(ph.path), labels[i], reason, j, f.box,
                                            looks_like=_closest(ph.descriptors, j, centroids, thr)))
    for e_i, e in enumerate(report.excluded):
        if e.face_index is None and e.distance is not None:
            i = next(k for k, ph in enumerate(photos) if str(ph.path) == e.path)
            ph = photos[i]
            D = ph.descriptors
            if D is not None and len(D) and centroids:
                j = int(np.argmin([np.linalg.norm(D[j] - centroids[e.label]) for j in range(len(D))]))
                report.excluded[e_i] = Excluded(e.path, e.label, e.reason, None, ph.faces[j].box, e.distance,
                                                _closest(D, j, centroids, thr))
    return final, report, centroids


def _finite_rows(D: np.ndarray) -> np.ndarray:
    # Faces too small for training are pushed to infinity so they are never the closest face.
    return np.where(np.isfinite(D), D, 1e6)


def _orig_index(D, chosen: int) -> int:
    return -1 if D is None or chosen < 0 or not np.isfinite(D[chosen]).all() else int(chosen)


def _closest(D: np.ndarray | None, j: int, centroids: dict[str, np.ndarray], threshold: float) -> str | None:
    """Folder whose centroid is within ``threshold`` of face ``j`` (None: nobody known)."""
    if D is None or not centroids:
        return None
    d = {c: float(np.linalg.norm(D[j] - m)) for c, m in centroids.items()}
    c = min(d, key=d.get)
    return c if d[c] <= threshold else None


MIN_FACES_PER_PERSON = 2


def _drop_rare(photos, labels, picked, report: TrainingReport) -> list[tuple[int, int]]:
    """People with fewer than :data:`MIN_FACES_PER_PERSON` training faces cannot be learnt: drop them."""
    count: dict[str, int] = {}
    for i, _ in picked:
        count[labels[i]] = count.get(labels[i], 0) + 1
    rare = {lab for lab, n in count.items() if n < MIN_FACES_PER_PERSON}
    if not rare:
        return list(picked)
    keep = []
    for i, j in picked:
        if labels[i] in rare:
            report.excluded.append(Excluded(str(photos[i].path), labels[i],
                                            f"person left out: fewer than {MIN_FACES_PER_PERSON} training faces",
                                            j, photos[i].faces[j].box))
            report.kept = [k for k in report.kept if not (k[0] == str(photos[i].path) and k[2] == j)]
        else:
            keep.append((i, j))
    return keep


def training_matrix(photos: Sequence[PhotoFeatures], labels: Sequence[str], picked: Sequence[tuple[int, int]]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(X, y, descriptors)`` of the picked faces."""
    X = np.asarray([photos[i].features[j] for i, j in picked], dtype=np.float32)
    y = np.asarray([labels[i] for i, _ in picked])
    has_desc = all(photos[i].descriptors is not None for i, _ in picked)
    D = np.asarray([photos[i].descriptors[j] for i, j in picked], dtype=np.float32) if has_desc else None
    return X, y, D


def training_faces(photos: Sequence[PhotoFeatures], labels: Sequence[str], clean: str = "agreement",
                   threshold: float | None = None, min_size: int = 0, *, descriptor: str | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, TrainingReport]:
    """``(X, y, descriptors, report)``: the training faces :func:`train` would use, after cleaning."""
    picked, report, _ = clean_training_set(photos, labels, clean, threshold, min_size, descriptor=descriptor)
    picked = _drop_rare(photos, labels, picked, report)
    X, y, D = training_matrix(photos, labels, picked)
    return X, y, D, report


#: The public names of this module.
__all__ = ["CLEANING", "Excluded", "TrainingReport", "select_faces", "clean_training_set", "MIN_FACES_PER_PERSON", "training_matrix", "training_faces"]
