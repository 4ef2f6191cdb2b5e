"""Average faces per person or cluster: the right faces in, tightly aligned, averaged in float.

Three steps, each a plain function (the notebook and ``vision-lib average`` call the same ones):

1. :func:`collect_faces` detects faces (cached, with descriptors; detector and descriptor by name
   from :mod:`vision_lib.models`) for every group. A
   group comes from a folder of sub-folders (:func:`groups_from_folder`: every face of every photo
   is a candidate) or from the ``clusters.csv`` of ``vision-lib cluster``
   (:func:`groups_from_clusters`: exactly the clustered faces).
2. :func:`select_for_average` keeps the faces that belong in the average: good enough (detector score,
   size, frontalness; a filter that would empty the group is relaxed, so a group of tiny faces or
   of one face still works) and of the group's person: descriptor within the descriptor's
   same-person distance (its ``threshold``) of the group's robust centre (a medoid,
   re-centred until stable), at most one face per photo. Every face left out gets a reason.
3. :func:`mean_face` aligns every kept face into a fixed frame and averages in float, weighted by
   quality: ``"similarity"`` fits the detector's five keypoints to :data:`vision_lib.faces.TEMPLATE`;
   ``"landmarks"`` then warps dlib's 68 landmarks of each face onto the group's mean shape
   (piecewise affine over a Delaunay triangulation of the mean shape), which is what makes the
   eyes, nose and mouth of the average sharp. ``"eyes"`` (two-point) and ``"naive"`` (resized
   boxes, no alignment) are the baselines.

:func:`average_groups` runs all three; :func:`face_descriptor_of` describes an average face (for
checking that it still looks like its person).
"""
from __future__ import annotations

import csv
import functools
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Union

import numpy as np

from .faces import TEMPLATE, Face, FaceQuality, alignment_matrix
from .io import CSV_TEXT, EMPTY_FOLDER, Rejected, csv_bytes, flat_name, load_image, photo_set
from .models import get_detector, same_person_distance

from .names import AVERAGE_METHODS
from .words import compared


#: A group member: a photo (every face in it is a candidate) or ``(photo, face_index)``.
Item = Union[str, os.PathLike, tuple]


# --------------------------------------------------------------------------- groups
def groups_from_folder(root: str | os.PathLike, *, per_group: int | None = None, seed: int = 0,
                       skipped: list[tuple[str, Rejected]] | None = None) -> dict[str, list[Path]]:
    """``{sub-folder name: photos}`` for a folder of sub-folders (one per person).

    ``per_group`` keeps a reproducible random subset of that many photos per group. A folder with
    photos but no sub-folders is one group named after the folder. ``skipped``, when given, receives
    ``(group, why)`` for every other file (not a photo, hidden, outside any sub-folder; group ``""``
    at the top), for :func:`write_averages`.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    ps = photo_set(root, labelled=True)
    if not ps.paths:
        ps = photo_set(root)
        ps.labels = [root.resolve().name] * len(ps.paths)
    if not ps.paths:
        raise ValueError(f"no photos under {root}")
    if skipped is not None:
        flat = all(len(p.relative_to(root).parts) == 1 for p in ps.paths)  # the one group is the folder
        for r in ps.skipped:
            parts = Path(r.source).relative_to(root).parts
            # An empty person folder belongs to that person's group, as its files would.
            inside = len(parts) > 1 or (len(parts) == 1 and r.reason == EMPTY_FOLDER)
            skipped.append((ps.labels[0] if flat else parts[0] if inside else "", r))
    if per_group is not None:
        ps = ps.limit(per_label=per_group, seed=seed)
    groups: dict[str, list[Path]] = {}
    for path, label in zip(ps.paths, ps.labels):
        groups.setdefault(label, []).append(path)
    return dict(sorted(groups.items()))


def groups_from_labels(paths: Sequence[str | os.PathLike], face_index: Sequence[int], labels: Sequence[int],
                       *, min_faces: int = 1, largest: int | None = None) -> dict[str, list[tuple[Path, int]]]:
    """``{cluster_NN: [(photo, face_index), ...]}`` from a clustering of faces (label -1 skipped).

    ``min_faces`` drops smaller clusters (a pair of background faces has no typical face);
    ``largest`` keeps only that many clusters, largest first (the dict is then in that order).
    """
    groups: dict[str, list[tuple[Path, int]]] = {}
    for path, index, label in sorted(zip(map(str, paths), face_index, labels), key=lambda t: (int(t[2]), t[0], t[1])):
        if int(label) >= 0:  # noise / unassigned faces have no typical face
            groups.setdefault(cluster_group_name(int(label)), []).append((Path(path), int(index)))
    groups = {name: g for name, g in groups.items() if len(g) >= min_faces}
    if largest is not None:
        groups = dict(sorted(groups.items(), key=lambda kv: -len(kv[1]))[:largest])
    return groups


def cluster_group_name(cluster: int) -> str:
    """``cluster_07`` for cluster 7 (the file name of its average)."""
    return f"cluster_{int(cluster):02d}"


def clusters_root(csv_path: str | os.PathLike) -> Path | None:
    """The clustered input folder recorded next to a ``clusters.csv`` (``metrics.json``), if any."""
    meta = Path(csv_path).parent / "metrics.json"
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("root", "in_dir", "input", "source_root"):
        if isinstance(data.get(key), str):
            return Path(data[key])
    return None


def groups_from_clusters(csv_path: str | os.PathLike, root: str | os.PathLike | None = None
                         ) -> dict[str, list[tuple[Path, int]]]:
    """``{cluster_NN: [(photo, face_index), ...]}`` from the ``clusters.csv`` of ``vision-lib cluster``.

    ``source`` paths in the CSV are relative to the clustered folder: pass it as ``root``, or let it
    be read from the ``metrics.json`` beside the CSV; without either, the photo copies that
    ``vision-lib cluster`` writes beside the CSV (``cluster_NN/<source with / as __>``) are used.
    Cluster ``-1`` (unassigned) is skipped.
    """
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else clusters_root(csv_path)
    with open(csv_path, **CSV_TEXT) as f:
        reader = csv.DictReader(f)
        missing = {"source", "face_index", "cluster"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {sorted(missing)}")
        rows = [r for r in reader if int(r["cluster"]) >= 0]  # -1: unassigned
    paths = []
    for row in rows:
        if root is not None:
            path = root / row["source"]
        else:
            # The copies in OUT/cluster_NN/ are named by flat_name, as vision_lib.cluster writes them.
            path = csv_path.parent / cluster_group_name(int(row["cluster"])) / flat_name(row["source"])
            if not path.is_file():
                raise ValueError(
                    f"{csv_path}: sources are relative to the clustered folder; pass it with --root "
                    f"(no 'root' in {csv_path.parent / 'metrics.json'} and no copy at {path})"
                )
        paths.append(path)
    groups = groups_from_labels(paths, [int(r["face_index"]) for r in rows], [int(r["cluster"]) for r in rows])
    if not groups:
        raise ValueError(f"{csv_path}: no assigned faces (every row has cluster -1)")
    return groups


# --------------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class Candidate:
    """One detected face offered to a group's average. ``slot`` is the photo (folder groups) or the
    face (cluster groups) it stands for: at most one face per slot is used."""

    source: Path
    face_index: int
    face: Face
    quality: FaceQuality
    descriptor: np.ndarray | None
    slot: int


@dataclass
class GroupFaces:
    """The candidate faces of one group, and the inputs that gave none (with reasons)."""

    name: str
    candidates: list[Candidate]
    n_slots: int
    rejected: list[Rejected] = field(default_factory=list)
    #: Name of the descriptor of the candidates (None: the default descriptor).
    descriptor: str | None = None
    #: Name of the detector that found them (None: the default detector).
    detector: str | None = None


def _as_item(item: Item) -> tuple[Path, int | None]:
    if isinstance(item, tuple):
        return Path(item[0]), int(item[1])
    return Path(item), None


def collect_faces(groups: Mapping[str, Sequence[Item]], *, detector: str | None = None,
                  descriptor: str | None = None, n_jobs: int | None = None,
                  progress: bool = True) -> dict[str, GroupFaces]:
    """Detect (cached) every photo of every group once, with qualities and descriptors (names of
    :mod:`vision_lib.models`; None: the defaults).

    Members given as ``(photo, face_index)`` contribute that face only; plain photos contribute
    all their faces (the selection then picks the group's person).
    """
    from .models import default_descriptor
    from .tables import NO_FACE, face_table

    descriptor = descriptor or default_descriptor()
    items = {name: [_as_item(it) for it in members] for name, members in groups.items()}
    unique = sorted({p for members in items.values() for p, _ in members})
    table = face_table(unique, detector=detector, descriptor=descriptor, n_jobs=n_jobs, progress=progress)
    return group_faces(table, items, descriptor=descriptor, no_face=NO_FACE)


def group_faces(table, items: Mapping[str, Sequence[tuple[Path, int | None]]], *, descriptor: str | None = None,
                no_face: str = "no face found") -> dict[str, GroupFaces]:
    """Each group's candidates, taken from the rows of a :class:`~vision_lib.tables.FaceTable` whose
    ``sources`` are the members' paths (as :func:`collect_faces` builds it)."""
    rows = table.rows_by_source()
    why = {r.source: r.reason for r in table.rejected}
    out = {}
    for name, members in items.items():
        cands, rejected, n_slots = [], [], 0
        for path, index in members:
            found = rows.get(str(path), [])
            label = str(path) if index is None else f"{path}#{index}"
            if not found:
                reason = why.get(str(path), no_face)
                rejected.append(Rejected(label, "no face detected" if reason == no_face else reason))
                continue
            if index is not None and not 0 <= index < len(found):
                rejected.append(Rejected(label, f"face {index} not found ({len(found)} detected; "
                                                f"other detector settings?)"))
                continue
            for i in (found if index is None else [found[index]]):
                cands.append(Candidate(path, int(table.face_index[i]), table.face(i), table.quality(i),
                                       table.X[i], n_slots))
            n_slots += 1
        out[name] = GroupFaces(name, cands, n_slots, rejected, descriptor, table.settings.get("detector"))
    return out


# --------------------------------------------------------------------------- selection
@dataclass
class Selection:
    """Which candidates an average uses (``used``, with ``weights``) and why the others are out.

    ``reasons`` maps a candidate index to a short reason; ``distances`` are descriptor distances to the
    group's identity centre (NaN without descriptors).
    """

    used: list[int]
    weights: np.ndarray
    reasons: dict[int, str]
    distances: np.ndarray
    centre: np.ndarray | None = None


def robust_centre(descriptors: np.ndarray, max_distance: float | None = None,
                  max_iter: int = 20) -> tuple[int, np.ndarray]:
    """Index of the group's central face and the mask of faces within ``max_distance`` of it.

    Start from the face with most same-person neighbours (so a minority of other people cannot
    pull the centre), then repeat: medoid of the faces within ``max_distance`` of the current
    centre, until it stops moving. A medoid is a real face, so the descriptor's pairwise
    same-person threshold applies to it. ``max_distance`` None: the default descriptor's threshold.
    """
    from scipy.spatial.distance import cdist

    max_distance = same_person_distance(None) if max_distance is None else max_distance

    d = cdist(descriptors, descriptors)
    near = d < max_distance
    # Most neighbours first; among ties, the most central (smallest summed distance to neighbours).
    centre = int(np.lexsort((np.where(near, d, 0).sum(1), -near.sum(1)))[0])
    for _ in range(max_iter):
        members = near[centre]
        idx = np.flatnonzero(members)
        new = int(idx[np.argmin(d[np.ix_(idx, idx)].sum(1))])
        if new == centre:
            break
        centre = new
    return centre, near[centre]


def select_for_average(candidates: Sequence[Candidate], *, min_score: float | None = None, min_size: int = 32,
                       min_frontalness: float = 0.5, max_distance: float | None = None,
                       identity: bool = True, descriptor: str | None = None,
                       detector: str | None = None) -> Selection:
    """Pick the faces of the group's person that are good enough to average, with weights.

    Quality filters (detector ``score``, by default the ``confident_score`` of ``detector``, the name
    of the candidates' detector; shorter box side ``size`` in px, ``frontalness``) are each
    skipped when no candidate passes them, so a group of tiny or of grey faces still averages.
    With ``identity``, faces farther than ``max_distance`` (default: the same-person distance of
    ``descriptor``, the name of the candidates' descriptor) from the group's robust centre are other people; of the faces of one photo only the one nearest the centre is used.
    Weights grow with score, frontalness, size (up to 80 px) and sharpness relative to the group,
    and with closeness to the identity centre.
    """
    max_distance = same_person_distance(descriptor) if max_distance is None else max_distance
    if min_score is None:  # detectors score on different scales
        min_score = get_detector(detector).confident_score
    n = len(candidates)
    reasons: dict[int, str] = {}
    distances = np.full(n, np.nan)
    if n == 0:
        return Selection([], np.zeros(0), reasons, distances)
    q = [c.quality for c in candidates]
    front = np.array([np.nan if x.frontalness is None else x.frontalness for x in q])
    checks = [
        (np.array([x.score >= min_score for x in q]),
         lambda i: f"low detector score ({compared(q[i].score, '<', min_score)})"),
        (np.array([x.size >= min_size for x in q]),
         lambda i: f"too small ({q[i].size} px < {min_size})"),
        # Without keypoints frontalness is unknown: such faces pass (yunet and mtcnn give keypoints; haar none).
        (np.isnan(front) | (np.nan_to_num(front, nan=1.0) >= min_frontalness),
         lambda i: f"turned away (frontalness {compared(front[i], '<', min_frontalness)})"),
    ]
    ok = np.ones(n, bool)
    for passed, why in checks:
        if (ok & passed).any():
            for i in np.flatnonzero(ok & ~passed):
                reasons[int(i)] = why(i)
            ok &= passed

    centre = None
    has_desc = np.array([c.descriptor is not None for c in candidates])
    if identity and (ok & has_desc).any():
        idx = np.flatnonzero(ok & has_desc)
        desc = np.stack([candidates[i].descriptor for i in idx]).astype(np.float64)
        # The centre is sought among the largest good face of each photo (most often its person).
        primary = _largest_per_slot([candidates[i] for i in idx])
        c_idx, _ = robust_centre(desc[primary], max_distance)
        centre = desc[primary][c_idx]
        distances[idx] = np.linalg.norm(desc - centre, axis=1)
        for i in idx:
            if distances[i] >= max_distance:
                reasons[int(i)] = f"another person (descriptor distance {compared(distances[i], '>=', max_distance)})"
                ok[i] = False

    # One face per photo (slot): the one nearest the centre, else the largest.
    best: dict[int, int] = {}
    for i in np.flatnonzero(ok):
        s = candidates[i].slot
        key = (np.nan_to_num(distances[i], nan=0.0), -candidates[i].quality.size)
        if s not in best or key < (np.nan_to_num(distances[best[s]], nan=0.0), -candidates[best[s]].quality.size):
            best[s] = int(i)
    used = sorted(best.values())
    for i in np.flatnonzero(ok):
        if int(i) not in used:
            reasons[int(i)] = "another face of the same photo was used"

    sharp = np.array([candidates[i].quality.sharpness for i in used], float)
    ref = float(np.median(sharp)) if len(sharp) else 1.0
    weights = []
    for k, i in enumerate(used):
        qi = candidates[i].quality
        w = qi.score * (1.0 if np.isnan(front[i]) else max(front[i], 0.05))
        w *= min(1.0, qi.size / 80.0) * (sharp[k] / (sharp[k] + ref + 1e-9) + 0.5)
        if not np.isnan(distances[i]):
            w *= max(0.05, 1.0 - (distances[i] / max_distance) ** 2)
        weights.append(w)
    return Selection(used, np.asarray(weights, float), reasons, distances, centre)


def _largest_per_slot(cands: Sequence[Candidate]) -> np.ndarray:
    best: dict[int, int] = {}
    for k, c in enumerate(cands):
        if c.slot not in best or c.quality.size > cands[best[c.slot]].quality.size:
            best[c.slot] = k
    return np.array(sorted(best.values()), int)


def largest_per_photo(candidates: Sequence[Candidate]) -> list[int]:
    """Indices of the largest face of each photo (the usual 'no cleaning' baseline)."""
    return [int(i) for i in _largest_per_slot(candidates)]


# --------------------------------------------------------------------------- alignment
@functools.lru_cache(maxsize=1)
def _shape68_predictor():
    import dlib
    import face_recognition_models as frm

    return dlib.shape_predictor(frm.pose_predictor_model_location())


def landmarks68(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 68 landmarks of ``face`` as a ``(68, 2)`` float array in image pixels."""
    from .embeddings import dlib_shape

    shape = dlib_shape(image, face, _shape68_predictor())
    return np.array([(p.x, p.y) for p in shape.parts()], float)


def _transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _box_matrix(face: Face, size: int) -> np.ndarray:
    # The naive baseline: the square around the box, scaled to the frame (no rotation).
    x, y, w, h = face.box
    side = max(w, h)
    s = size / side
    return np.array([[s, 0, -(x + w / 2 - side / 2) * s], [0, s, -(y + h / 2 - side / 2) * s]])


def frame_matrix(face: Face, size: int, method: str = "similarity") -> np.ndarray:
    """2x3 transform from the photo into the ``size`` x ``size`` averaging frame."""
    if method == "naive":
        return _box_matrix(face, size)
    matrix = alignment_matrix(face, size, points="eyes" if method == "eyes" else "five")
    return matrix if matrix is not None else _box_matrix(face, size)


@dataclass
class _Sample:
    image: np.ndarray  # aligned crop (work x work x 3), float32
    mask: np.ndarray   # 1 where the crop saw the photo, 0 where it reflected its border
    points: np.ndarray | None  # 68 landmarks in frame coordinates
    box: np.ndarray    # face box corners mapped into the frame (x0, y0, x1, y1)


def _sample(image: np.ndarray, face: Face, work: int, method: str) -> _Sample:
    import cv2

    m = frame_matrix(face, work, method)
    crop = cv2.warpAffine(image, m, (work, work), flags=cv2.INTER_AREA if m[0, 0] < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    mask = cv2.warpAffine(np.ones(image.shape[:2], np.float32), m, (work, work), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    x, y, w, h = face.box
    corners = _transform(np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], float), m)
    box = np.r_[corners.min(0), corners.max(0)]
    points = None
    if method == "landmarks":
        pts = _transform(landmarks68(image, face), m)
        # Trust the 68 landmarks only where they agree with the detector's eyes: a misplaced shape
        # would warp the face onto the wrong features.
        eyes = TEMPLATE[:2] * work
        found = np.array([pts[36:42].mean(0), pts[42:48].mean(0)])
        if np.linalg.norm(found - eyes, axis=1).max() < 0.25 * np.linalg.norm(eyes[1] - eyes[0]):
            points = pts
    return _Sample(crop, mask, points, box)


class _PiecewiseAffine:
    """Dense map from the mean shape (plus the frame border) back to each face's landmarks.

    The triangulation and barycentric coordinates depend only on the mean shape, so they are
    computed once per group; each face then costs one gather and one ``cv2.remap``.
    """

    def __init__(self, mean_shape: np.ndarray, work: int):
        from scipy.spatial import Delaunay

        self.border = self._border(work)
        dst = np.vstack([np.clip(mean_shape, 1, work - 2), self.border])
        self.tri = Delaunay(dst)
        yy, xx = np.mgrid[0:work, 0:work]
        grid = np.c_[xx.ravel(), yy.ravel()].astype(float)
        simplex = self.tri.find_simplex(grid)
        simplex[simplex < 0] = self.tri.find_simplex(grid[simplex < 0], tol=1e-6)
        simplex = np.maximum(simplex, 0)
        t = self.tri.transform[simplex]
        b = np.einsum("nij,nj->ni", t[:, :2], grid - t[:, 2])
        self.bary = np.c_[b, 1 - b.sum(1)].astype(np.float32)
        self.vertices = self.tri.simplices[simplex]
        self.work = work

    @staticmethod
    def _border(work: int) -> np.ndarray:
        lo, mid, hi = -1.0, (work - 1) / 2, float(work)
        return np.array([[lo, lo], [mid, lo], [hi, lo], [hi, mid], [hi, hi], [mid, hi], [lo, hi], [lo, mid]])

    def warp(self, sample: _Sample) -> tuple[np.ndarray, np.ndarray]:
        import cv2

        src = np.vstack([sample.points, self.border]).astype(np.float32)
        mapping = np.einsum("nk,nkd->nd", self.bary, src[self.vertices]).reshape(self.work, self.work, 2)
        mx, my = np.ascontiguousarray(mapping[..., 0]), np.ascontiguousarray(mapping[..., 1])
        img = cv2.remap(sample.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = cv2.remap(sample.mask, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return img, mask

    def folded_share(self, points: np.ndarray) -> float:
        """Share of the triangles that the face's landmarks turn inside out or squash flat (a
        degenerate landmark set: the warp would smear or tear the face)."""
        dst = self.tri.points[self.tri.simplices]
        src = np.vstack([points, self.border])[self.tri.simplices]

        def signed_area(t):
            return np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])

        a_dst, a_src = signed_area(dst), signed_area(src)
        return float(np.mean((np.sign(a_dst) != np.sign(a_src)) | (np.abs(a_src) < 1e-3 * np.abs(a_dst))))


#: A landmark warp is replaced by the face's similarity alignment when more than this share of its
#: triangles fold over, or when it leaves this much more of the face box black or uncovered.
MAX_FOLDED, MAX_LOST = 0.05, 0.15


def warp_failed(sample: _Sample, image: np.ndarray, mask: np.ndarray, folded: float) -> bool:
    """Whether a landmark warp (``image``, ``mask``) broke the face it started from (``sample``,
    the similarity alignment): folded triangles, or black/empty pixels over the face box that the
    similarity alignment did not have."""
    if folded > MAX_FOLDED:
        return True
    h, w = mask.shape
    x0, y0, x1, y1 = (int(v) for v in np.clip(np.round(sample.box), 0, [w, h, w, h]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return False

    def lost(img, msk):
        region, cover = img[y0:y1, x0:x1], msk[y0:y1, x0:x1]
        return float(np.mean((region.max(axis=2) < 8) | (cover < 0.5)))

    return lost(image, mask) - lost(sample.image, sample.mask) > MAX_LOST


@dataclass
class MeanFace:
    """An average face: ``image`` (RGB uint8, ``size`` x ``size``) of ``n_used`` faces, and the box
    where the face sits in the frame (mean of the used faces' boxes), for describing it later."""

    image: np.ndarray
    n_used: int
    method: str
    box: tuple[int, int, int, int]
    n_warped: int = 0


def mean_face(candidates: Sequence[Candidate], used: Sequence[int] | None = None,
              weights: Sequence[float] | None = None, *, method: str = "landmarks", size: int = 160,
              oversample: int = 2) -> MeanFace:
    """Align the ``used`` candidates into a fixed frame and average them in float.

    Faces are aligned at ``oversample`` times ``size`` and the average is shrunk at the end, so the
    one or two interpolations of the alignment cost no detail. With ``method="landmarks"`` faces
    whose 68 landmarks disagree with the detector's eyes, or whose warp fails (:func:`warp_failed`),
    are only similarity-aligned; ``n_warped`` counts the faces that were warped.
    """
    import cv2

    if method not in AVERAGE_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {AVERAGE_METHODS}")
    used = list(range(len(candidates))) if used is None else list(used)
    if not used:
        raise ValueError("no faces to average")
    weights = np.ones(len(used)) if weights is None else np.asarray(weights, float)
    work = size * max(1, int(oversample))
    samples, images = [], {}
    # Group by photo so each photo is decoded once.
    for k in sorted(range(len(used)), key=lambda k: str(candidates[used[k]].source)):
        c = candidates[used[k]]
        if c.source not in images:
            images = {c.source: load_image(c.source)}
        samples.append((k, _sample(images[c.source], c.face, work, method)))
    samples.sort(key=lambda s: s[0])
    w = weights[[k for k, _ in samples]]
    warp = None
    with_points = [(s, wk) for (_, s), wk in zip(samples, w) if s.points is not None]
    if method == "landmarks" and with_points:
        mean_shape = np.average(np.stack([s.points for s, _ in with_points]), axis=0,
                                weights=[wk for _, wk in with_points])
        warp = _PiecewiseAffine(mean_shape, work)
    acc = np.zeros((work, work, 3)); acc_all = np.zeros_like(acc)
    wacc = np.zeros((work, work, 1)); w_all = 0.0
    n_warped = 0
    for (_, s), wk in zip(samples, w):
        img, mask = s.image, s.mask
        if warp is not None and s.points is not None:
            warped, warped_mask = warp.warp(s)
            # A broken warp (e.g. half a face and a black triangle) falls back to the similarity alignment.
            if not warp_failed(s, warped, warped_mask, warp.folded_share(s.points)):
                img, mask, n_warped = warped, warped_mask, n_warped + 1
        acc += wk * mask[..., None] * img
        wacc += wk * mask[..., None]
        acc_all += wk * img
        w_all += wk
    # Where no photo covered the frame (faces near a photo's edge), fall back to reflected borders.
    eps = 1e-3
    avg = (acc + eps * acc_all) / (wacc + eps * w_all)
    if work != size:
        avg = cv2.resize(avg, (size, size), interpolation=cv2.INTER_AREA)
    boxes = np.average(np.stack([s.box for _, s in samples]), axis=0, weights=w) * size / work
    x0, y0, x1, y1 = (float(v) for v in boxes)
    box = (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))
    image = np.clip(avg + 0.5, 0, 255).astype(np.uint8)
    return MeanFace(image, len(used), method, box, n_warped)


# --------------------------------------------------------------------------- whole groups
@dataclass
class AverageFace:
    """The average face of one group and the account of which faces it used.

    ``n_faces`` counts what the group offered (photos with a detected face for a folder, faces for
    a cluster); ``n_used`` how many went into the average; ``left_out`` says why the others did
    not (one record per photo or face), ``rejected`` lists inputs without any face.
    """

    group: str
    image: np.ndarray | None
    n_faces: int
    n_used: int
    method: str
    box: tuple[int, int, int, int] | None
    used: list[tuple[Path, int]]
    left_out: list[Rejected]
    rejected: list[Rejected]

    def reasons(self, which: str = "all") -> dict[str, int]:
        """How many photos/faces were left out for each kind of reason (numbers stripped): ``"all"``,
        ``"left_out"`` (of the ``n_faces`` offered) or ``"rejected"`` (inputs without any face)."""
        records = {"all": self.left_out + self.rejected, "left_out": self.left_out, "rejected": self.rejected}[which]
        counts = Counter(re.sub(r"\s*\(.*\)$", "", r.reason) for r in records)
        return dict(counts.most_common())


def average_group(group: GroupFaces, *, method: str = "landmarks", size: int = 160, select: bool = True,
                  **select_kw) -> AverageFace:
    """The average face of one group: :func:`select_for_average` (or, with ``select=False``, the largest
    face of every photo, no cleaning) then :func:`mean_face`."""
    cands = group.candidates
    if select:
        sel = select_for_average(cands, **{"descriptor": group.descriptor, "detector": group.detector, **select_kw})
        used, weights, reasons = sel.used, sel.weights, sel.reasons
    else:
        used = largest_per_photo(cands)
        weights, reasons = None, {i: "not the largest face of its photo" for i in range(len(cands))}
    left_out = []
    used_slots = {cands[i].slot for i in used}
    for slot in sorted({c.slot for c in cands} - used_slots):
        members = [i for i, c in enumerate(cands) if c.slot == slot]
        main = max(members, key=lambda i: cands[i].quality.size)  # explain the photo by its largest face
        c = cands[main]
        left_out.append(Rejected(f"{c.source}#{c.face_index}", reasons.get(main, "not selected")))
    image = box = None
    if used:
        mf = mean_face(cands, used, weights, method=method, size=size)
        image, box = mf.image, mf.box
    return AverageFace(group.name, image, group.n_slots, len(used), method, box,
                       [(cands[i].source, cands[i].face_index) for i in used], left_out, group.rejected)


def average_groups(groups: Mapping[str, Sequence[Item]], *, method: str = "landmarks", size: int = 160,
                   select: bool = True, progress: bool = True, n_jobs: int | None = None,
                   detector: str | None = None, descriptor: str | None = None,
                   **select_kw) -> list[AverageFace]:
    """Average face of every group (see :func:`groups_from_folder`, :func:`groups_from_clusters`);
    ``detector`` and ``descriptor`` are names of :mod:`vision_lib.models` (None: the defaults)."""
    from .progress import tqdm

    faces = collect_faces(groups, detector=detector, descriptor=descriptor, n_jobs=n_jobs, progress=progress)
    return [average_group(g, method=method, size=size, select=select, **select_kw)
            for g in tqdm(faces.values(), desc=f"averages ({method})", unit="group", disable=not progress)]


# --------------------------------------------------------------------------- checking and saving
def face_descriptor_of(image: np.ndarray, box: tuple[int, int, int, int] | None = None, *,
                       detector: str | None = None, descriptor: str | None = None
                       ) -> tuple[np.ndarray | None, str]:
    """Descriptor of the face in an average image, and how it was found (models by name, None: defaults).

    The average is padded (detectors need some context around a face) and the detector looks for it
    (``"detected"``); when it finds nothing, the known ``box`` of the frame is used instead
    (``"frame box"``). Returns ``(None, "not found")`` when neither is possible.
    """
    import cv2

    from .faces import detect
    from .models import get_descriptor

    describe = get_descriptor(descriptor).describe
    pad = image.shape[0] // 2
    fill = [int(v) for v in np.median(image.reshape(-1, 3), axis=0)]
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
    found = detect(padded, detector)
    if found:
        centre = np.array(padded.shape[1::-1]) / 2
        face = min(found, key=lambda f: np.linalg.norm(np.array(f.box[:2]) + np.array(f.box[2:]) / 2 - centre))
        return describe(padded, [face])[0], "detected"
    if box is None:
        return None, "not found"
    x, y, w, h = box
    return describe(padded, [Face((x + pad, y + pad, w, h), 0.0)])[0], "frame box"


def group_mean_descriptors(faces: Mapping[str, GroupFaces]) -> tuple[list[str], np.ndarray]:
    """Each group's identity reference: the mean descriptor of the largest face of each of its
    photos (no cleaning, so it does not depend on any selection). Groups without faces are left out."""
    names, means = [], []
    for name, g in faces.items():
        desc = [g.candidates[i].descriptor for i in largest_per_photo(g.candidates)
                if g.candidates[i].descriptor is not None]
        if desc:
            names.append(name)
            means.append(np.mean(desc, axis=0))
    return names, np.array(means).reshape(len(names), -1)


@dataclass(frozen=True)
class IdentityCheck:
    """Whom an average face looks like: the ``nearest`` group mean, its descriptor ``distance``, the
    distance to its ``own`` group mean, and how the face was found in the average (``found``)."""

    group: str
    nearest: str | None
    distance: float
    own: float
    found: str

    @property
    def kept(self) -> bool:
        return self.nearest == self.group


def identity_check(result: AverageFace, names: Sequence[str], means: np.ndarray, *,
                   detector: str | None = None, descriptor: str | None = None) -> IdentityCheck:
    """Describe the average face (see :func:`face_descriptor_of`; ``descriptor`` must be the one of
    ``means``) and find the nearest group mean."""
    if result.image is None:
        return IdentityCheck(result.group, None, float("nan"), float("nan"), "no average")
    desc, found = face_descriptor_of(result.image, result.box, detector=detector, descriptor=descriptor)
    if desc is None:
        return IdentityCheck(result.group, None, float("nan"), float("nan"), found)
    d = np.linalg.norm(np.asarray(means) - desc, axis=1)
    own = float(d[list(names).index(result.group)]) if result.group in names else float("nan")
    return IdentityCheck(result.group, names[int(np.argmin(d))], float(d.min()), own, found)


def laplacian_sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (higher = sharper)."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def safe_name(group: str) -> str:
    """A file name for a group (path separators and odd characters replaced)."""
    name = re.sub(r"[^\w.\-]+", "_", group).strip("._")
    return name or "group"


def check_outputs(groups: Iterable[str], out_dir: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Refuse, before any work, what :func:`write_averages` would refuse after it: two groups with one
    file name, or existing outputs (``FileExistsError``) without ``overwrite``."""
    from .io import check_output_folder, check_writable

    out_dir = check_output_folder(out_dir)
    if out_dir.is_dir():
        check_writable(out_dir)
    by_file: dict[str, list[str]] = {}
    for g in groups:
        by_file.setdefault(f"{safe_name(g)}.png", []).append(str(g))
    clash = {f: gs for f, gs in by_file.items() if len(gs) > 1}
    if clash:
        f, gs = next(iter(clash.items()))
        raise ValueError(f"groups {', '.join(map(repr, gs))} would all be written to {f}; rename the folders")
    outputs = [*(out_dir / f for f in by_file), *(out_dir / f for f in TABLES)]
    odd = [p for p in outputs if p.exists() and not p.is_file()]
    if odd:  # not even --overwrite may replace a folder
        raise FileExistsError(f"{odd[0]} exists and is not a file; move it or choose another --out")
    existing = [p for p in outputs if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists (and {len(existing) - 1} more); choose another --out "
                              f"or pass --overwrite")


#: The tables :func:`write_averages` writes beside the images.
TABLES = ("averages.csv", "used.csv", "left_out.csv")


def write_averages(results: Sequence[AverageFace], out_dir: str | os.PathLike, *, overwrite: bool = False,
                   skipped: Sequence[tuple[str, Rejected]] = ()) -> Path:
    """Write ``<group>.png`` per average, ``averages.csv`` (``group,n_faces,n_used``), ``used.csv``
    (``group,source``: every face an average is made of, ``path#face``) and ``left_out.csv``
    (``group,source,reason``: every photo or face the averages did not use, and the ``skipped``
    files of the input folder, see :func:`groups_from_folder`).

    Refuses (see :func:`check_outputs`) when any of these files exists, unless ``overwrite``; groups
    without a usable face get a CSV row but no image.
    """
    from .io import folder_lock

    # Locked, then checked: of two runs into one folder the second stops, whether at the lock or
    # at the first run's finished files.
    with folder_lock(out_dir) as out_dir:
        check_outputs([r.group for r in results], out_dir, overwrite=overwrite)
        return _write_averages(results, out_dir, skipped)


def _write_averages(results: Sequence[AverageFace], out_dir: Path, skipped: Sequence[tuple[str, Rejected]] = ()
                    ) -> Path:
    import io

    from PIL import Image

    from .io import write_atomic

    for r in results:
        if r.image is not None:  # via a temporary name: an interrupt leaves no broken PNG behind
            buf = io.BytesIO()
            Image.fromarray(r.image).save(buf, "PNG")
            write_atomic(out_dir / f"{safe_name(r.group)}.png", buf.getvalue())
    # The tables too go through a temporary name: with --overwrite, an interrupt must not leave an
    # old table cut short.
    table = write_atomic(out_dir / "averages.csv", csv_bytes(["group", "n_faces", "n_used"],
                                                              ([r.group, r.n_faces, r.n_used] for r in results)))
    # The faces used are named, not only counted: with left_out.csv every input is accounted for by name.
    write_atomic(out_dir / "used.csv", csv_bytes(["group", "source"], ([r.group, f"{source}#{face}"]
                                                                     for r in results for source, face in r.used)))
    write_atomic(out_dir / "left_out.csv", csv_bytes(["group", "source", "reason"],
                                                      [*([r.group, x.source, x.reason]
                                                         for r in results for x in r.left_out + r.rejected),
                                                       *([g, x.source, x.reason] for g, x in skipped)]))
    return table


def groups_from_input(source: str | os.PathLike, root: str | os.PathLike | None = None, *,
                      skipped: list[tuple[str, Rejected]] | None = None) -> dict[str, list]:
    """Groups from a folder of sub-folders, a ``clusters.csv``, or the folder holding one
    (``skipped``: as in :func:`groups_from_folder`, for a folder)."""
    source = Path(source)
    if source.is_dir() and (source / "clusters.csv").is_file():  # the output folder of `vision-lib cluster`
        source = source / "clusters.csv"
    if source.is_file() and source.suffix.lower() == ".csv":
        return groups_from_clusters(source, root)
    if root is not None:
        raise ValueError("--root only applies to a clusters.csv input")
    return groups_from_folder(source, skipped=skipped)


#: The public names of this module.
__all__ = ["AVERAGE_METHODS", "groups_from_folder", "groups_from_labels", "cluster_group_name", "clusters_root",
           "groups_from_clusters", "Candidate", "GroupFaces", "collect_faces", "group_faces", "Selection", "robust_centre",
           "select_for_average", "largest_per_photo", "landmarks68", "frame_matrix", "MeanFace", "mean_face",
           "AverageFace", "average_group", "average_groups", "face_descriptor_of", "group_mean_descriptors",
           "IdentityCheck", "identity_check", "laplacian_sharpness", "safe_name", "check_outputs",
           "write_averages", "groups_from_input"]
