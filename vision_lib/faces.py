"""Find, crop, align and rate faces; detect (and describe) folders of photos; export crops.

Detectors are plug-ins of :mod:`vision_lib.models`, taken by name (:data:`DETECTORS`: ``yunet``,
``mtcnn``, ``haar``; default :data:`~vision_lib.models.DEFAULT_DETECTOR`), and so are the
descriptors :func:`detect_paths` computes with ``descriptors=<name>``.

Large photos are downscaled for detection and boxes are mapped back, so crops come from the
original pixels. Faces of a photo are always ordered largest first (``face_index`` 0 = largest).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .io import CSV_TEXT, ImageError, check_rgb, is_inside, load_image
from .parallel import map_chunks

# The detectors and the Face record live in the layers below; re-exported for existing callers.
from .geometry import ARCFACE_112, KEYPOINTS, Face, crop, largest_first, similarity_transform  # noqa: E402,F401
from .models import DEFAULT_DETECTOR, DETECTORS, get_detector  # noqa: E402,F401
from .models.detectors import HaarDetector, MTCNNDetector, YuNetDetector  # noqa: E402,F401


def detect(image: np.ndarray, detector: "str | None | HaarDetector | MTCNNDetector | YuNetDetector" = None,
           min_size: int = 0) -> list[Face]:
    """Faces in an RGB image, largest first, ignoring those with a side under ``min_size`` px.

    ``image`` is ``(H, W, 3)`` uint8 (or float in 0..1); anything else is a ValueError that says so
    (see :func:`vision_lib.io.check_rgb`), not a silent empty answer.
    """
    det = get_detector(detector) if detector is None or isinstance(detector, str) else detector
    return [f for f in det.detect(check_rgb(image)) if f.size >= min_size]


# --------------------------------------------------------------------------- crop and align
# Canonical template in units of the output size: the widely used five-point template of
# ArcFace/InsightFace (112x112), rescaled so the eyes sit at 35% / 65% width and 40% height.
_ARCFACE = ARCFACE_112
_EYE_MID = _ARCFACE[:2].mean(axis=0)
TEMPLATE = (_ARCFACE - _EYE_MID) * (0.30 / np.linalg.norm(_ARCFACE[1] - _ARCFACE[0])) + np.array([0.5, 0.40])


def alignment_matrix(face: Face, size: int = 160, points: str = "eyes") -> np.ndarray | None:
    """2x3 similarity transform taking the face's keypoints to the canonical template.

    ``points="eyes"`` uses the two eyes; ``"five"`` fits all five MTCNN keypoints (least squares).
    Returns None when the face has no eye keypoints.
    """
    import cv2

    names = KEYPOINTS if points == "five" and all(k in face.keypoints for k in KEYPOINTS) else KEYPOINTS[:2]
    if not all(k in face.keypoints for k in names):
        return None
    src = np.array([face.keypoints[k] for k in names], dtype=np.float64)
    dst = TEMPLATE[: len(names)] * size
    if len(names) == 2:
        return similarity_transform(src, dst)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return matrix if matrix is not None else similarity_transform(src[:2], dst[:2])


def align(image: np.ndarray, face: Face, size: int = 160, points: str = "eyes") -> np.ndarray:
    """A ``size`` x ``size`` face with the eyes on the canonical template (similarity transform).

    Faces without eye keypoints fall back to a square crop of the box resized to ``size``.
    """
    import cv2

    matrix = alignment_matrix(face, size, points)
    if matrix is None:
        x, y, w, h = face.box
        side = max(w, h)
        square = Face((x + w // 2 - side // 2, y + h // 2 - side // 2, side, side), face.score)
        return cv2.resize(crop(image, square, margin=0.1), (size, size), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


# --------------------------------------------------------------------------- quality
@dataclass(frozen=True)
class FaceQuality:
    """How usable a face is: ``size`` (px), ``sharpness`` (Laplacian variance at a fixed scale),
    ``frontalness`` (0 = profile, 1 = frontal, from keypoint symmetry; None without keypoints) and the
    detector ``score``."""

    size: int
    sharpness: float
    frontalness: float | None
    score: float


def frontalness(face: Face) -> float | None:
    """1 for a frontal face, towards 0 for a profile: how centred the nose is between the eyes
    (and between the mouth corners), relative to the eye distance."""
    kp = face.keypoints
    if not all(k in kp for k in ("left_eye", "right_eye", "nose")):
        return None
    le, re, nose = (np.asarray(kp[k], float) for k in ("left_eye", "right_eye", "nose"))
    half = np.linalg.norm(re - le) / 2 + 1e-6
    offsets = [abs(nose[0] - (le[0] + re[0]) / 2) / half]
    if "mouth_left" in kp and "mouth_right" in kp:
        ml, mr = np.asarray(kp["mouth_left"], float), np.asarray(kp["mouth_right"], float)
        offsets.append(abs(nose[0] - (ml[0] + mr[0]) / 2) / half)
    return float(np.clip(1.0 - np.mean(offsets), 0.0, 1.0))


def sharpness(image: np.ndarray, face: Face, size: int = 128) -> float:
    """Variance of the Laplacian of the grey face crop resized to ``size`` (comparable across sizes)."""
    import cv2

    grey = cv2.cvtColor(crop(image, face, margin=0.0), cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def quality(image: np.ndarray, face: Face) -> FaceQuality:
    """Size, sharpness, frontalness and score of one face."""
    return FaceQuality(face.size, sharpness(image, face), frontalness(face), face.score)


def best_faces(qualities: Sequence[FaceQuality], n: int, *, min_frontalness: float = 0.5,
               min_size: int = 40) -> list[int]:
    """Indices of the ``n`` best faces, best first. It ranks, it does not filter.

    Faces at least ``min_frontalness`` frontal and ``min_size`` px come first, then the rest; within
    each group faces with keypoints come before those without, ordered by frontalness x
    log(1 + sharpness) x detection score (a sharp profile does not beat a frontal face).
    """
    def key(i):
        q = qualities[i]
        ok = (q.frontalness is None or q.frontalness >= min_frontalness) and q.size >= min_size
        return (not ok, q.frontalness is None, -(q.frontalness or 0) * np.log1p(q.sharpness) * q.score)

    return sorted(range(len(qualities)), key=key)[:n]


def colourfulness(image: np.ndarray) -> float:
    """Hasler & Süsstrunk's colourfulness of an RGB image (2003): 0 for a grey image or a pencil
    sketch, about 15 "slightly colourful", 33 "moderately", above 45 "highly". """
    rgb = check_rgb(image).astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


#: Below this colourfulness a face is taken for a grey or sepia photo, a sketch or a drawing: the
#: "slightly colourful" anchor of Hasler & Süsstrunk's scale (0 "not colourful", 15 "slightly",
#: 33 "moderately"). (Chosen after a sepia sketch scored 9.7 on the footballer photos, where the
#: colour face crops seen scored 32-57; a gallery may lose a pale, cold-lit photo to it.)
MIN_COLOURFULNESS = 15.0
#: Two faces closer than this share of the descriptor's same-person distance are one photo twice
#: (a re-encoded or resized copy), not two photos of one person.
DUPLICATE_SHARE = 0.25


@dataclass
class Curated:
    """What :func:`curated_faces` kept (``index``: rows, best first) and what it left out, by reason."""

    index: list[int]
    left_out: dict[str, int] = field(default_factory=dict)

    def note(self) -> str:
        """``"left out: 2 duplicate, 1 another person"`` (empty when nothing was left out)."""
        return ("left out: " + ", ".join(f"{v} {k}" for k, v in sorted(self.left_out.items(), key=lambda kv: -kv[1]))
                if self.left_out else "")


def curated_faces(rows: Sequence[dict], root: str | os.PathLike, n: int, *, descriptor: str | None = None,
                  pool: int = 4, min_frontalness: float = 0.5, min_size: int = 40,
                  min_colourfulness: float = MIN_COLOURFULNESS, duplicate_share: float = DUPLICATE_SHARE) -> Curated:
    """The ``n`` best faces of one person's ``faces.csv`` rows (:func:`read_export`; photos under
    ``root``) for a gallery: ranked by :func:`best_faces`; among the ``pool * n`` best, a face is
    left out when

    - ``turned away or small``: under ``min_frontalness`` or ``min_size`` (as :func:`best_faces` ranks);
    - ``grey or drawn``: its :func:`colourfulness` is under ``min_colourfulness``;
    - ``another person``: its median descriptor distance to the folder's core faces is above the
      descriptor's own same-person distance. The core is the half of the photos' largest faces
      (``face_index`` 0: a folder's photos are mostly framed on its person) with the smallest median
      distance to each other; with fewer than 4 such faces the rule is skipped;
    - ``duplicate``: it is within ``duplicate_share`` of that distance of a face kept before it
      (the same photo twice).

    The rules use only the descriptor's calibrated threshold, a published colour scale and the
    ranking's own limits, nothing fitted to a data set. A face whose photo cannot be read is left
    out as ``unreadable``.
    """
    from collections import Counter

    from .models import describe_many, get_descriptor

    qualities = [row_quality(r) for r in rows]
    order = best_faces(qualities, max(1, pool * n), min_frontalness=min_frontalness, min_size=min_size)
    model = get_descriptor(descriptor)
    left_out: Counter = Counter()
    items, kept = [], []
    for i in order:
        q, row = qualities[i], rows[i]
        if q.size < min_size or (q.frontalness is not None and q.frontalness < min_frontalness):
            left_out["turned away or small"] += 1
            continue
        face = Face(tuple(int(float(row[k])) for k in ("x", "y", "w", "h")), float(row["score"]))
        try:
            image = load_image(Path(root) / row["source"])
            patch = crop(image, face, 0.0)
        except (ImageError, ValueError):  # unreadable now, or a box outside the photo
            left_out["unreadable"] += 1
            continue
        if colourfulness(patch) < min_colourfulness:
            left_out["grey or drawn"] += 1
            continue
        items.append((image, [face]))
        kept.append(i)
    if not kept:
        return Curated([], dict(left_out))
    X = np.concatenate(describe_many(model, items)).astype(np.float64)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    threshold = float(model.threshold)
    largest = np.array([str(rows[i].get("face_index", "0")) == "0" for i in kept])
    typical = np.zeros(len(kept))
    if largest.sum() >= 4:
        L = np.flatnonzero(largest)
        inner = D[np.ix_(L, L)] + np.diag(np.full(len(L), np.nan))
        core = L[np.argsort(np.nanmedian(inner, axis=1))[: max(2, len(L) // 2)]]
        typical = np.array([np.median([D[j, c] for c in core if c != j]) for j in range(len(kept))])
    chosen: list[int] = []  # counts are over the whole pool, so "left out" says what the gallery was spared
    for j in range(len(kept)):
        if typical[j] > threshold:
            left_out["another person"] += 1
        elif any(D[j, c] < duplicate_share * threshold for c in chosen):
            left_out["duplicate"] += 1
        else:
            chosen.append(j)
    return Curated([kept[j] for j in chosen[:n]], dict(left_out))


# --------------------------------------------------------------------------- batches
@dataclass
class PhotoFaces:
    """One photo file's faces, the per-photo record of every stage; ``error`` is the reason when it
    could not be loaded. A folder of them becomes one :class:`vision_lib.tables.FaceTable`."""

    path: Path
    faces: list[Face]
    shape: tuple[int, int] | None = None
    error: str | None = None
    #: Descriptors, one row per face (only when asked for with ``descriptors=``; see :func:`detect_paths`).
    descriptors: np.ndarray | None = None
    qualities: list[FaceQuality] | None = None
    #: A feature row per face of a training recipe (:func:`vision_lib.extraction.extract`): the
    #: descriptors, or the wavelet recipe's rows.
    features: np.ndarray | None = None


def _detect_path(path: Path, detector: str, params: dict, use_cache: bool, descriptors: str | None) -> PhotoFaces:
    return PhotoFaces(path, *_detect_path_raw(path, detector, params, use_cache, descriptors))


def _detect_path_raw(path: Path, detector: str, params: dict, use_cache: bool, descriptors: str | None,
                     image: np.ndarray | None = None) -> tuple:
    """``(faces, shape, error, descriptors, qualities)`` for one file, from the cache when possible."""
    from .cache import enabled

    if use_cache and enabled():
        from .cache import file_digest

        try:
            digest = file_digest(path)
        except OSError as exc:
            return [], None, f"cannot read: {exc.strerror or exc}", None, None
        # The key holds every setting that changes detections, defaults included (so changing a
        # default invalidates old entries), but not thread counts or graph compilation.
        key = get_detector(detector, **{k: v for k, v in params.items() if k not in _SPEED_ONLY}).params()
        threads = params.get("threads")
        faces, shape, error, _, qualities = _cached_detections(digest, detector, key, str(path), threads)
        desc = None
        if descriptors and error is None:
            from .models import get_descriptor

            # Cached apart from the detections, keyed by the descriptor's id: changing how faces
            # are described does not re-run the detector.
            desc = _describe_cached(digest, detector, key, get_descriptor(descriptors).id, path=str(path),
                                    threads=threads)
        return faces, shape, error, desc, qualities
    return _detect_uncached(str(path), detector, params, descriptors, image=image)


def _cached_detections(digest: str, detector: str, key: tuple, path: str, threads: int | None) -> tuple:
    # Entries written by earlier versions (detections and descriptors in one) still serve detections.
    if _detect_cached.in_cache(digest, detector, key, True, path=path, threads=threads):
        return _detect_cached(digest, detector, key, True, path=path, threads=threads)
    return _detect_cached(digest, detector, key, False, path=path, threads=threads)


def _describe_impl(digest: str, detector: str, params: tuple, descriptor: str, path: str,
                   threads: int | None = None) -> np.ndarray | None:
    from .models import descriptor_for_id

    model = descriptor_for_id(descriptor)
    if model is None:
        raise ValueError(f"no registered descriptor has the id {descriptor!r}")
    faces, _, error, _, _ = _cached_detections(digest, detector, params, path, threads)
    try:
        image = load_image(path)
    except ImageError:
        return None
    return _describe(model.name, image, faces, threads) if error is None else None


def _describe(name: str, image: np.ndarray, faces: list[Face], threads: int | None) -> np.ndarray:
    from .models import get_descriptor

    return (get_descriptor(name, threads=threads) if threads else get_descriptor(name)).describe(image, faces)


#: Detector parameters that change speed, never detections (not part of the cache key).
_SPEED_ONLY = ("threads", "compiled")


def _detect_uncached(path: str, detector: str, params: dict, descriptors: str | bool | None,
                     image: np.ndarray | None = None):
    if image is None:
        try:
            image = load_image(path)
        except ImageError as exc:
            return [], None, exc.reason, None, None
    faces = get_detector(detector, **params).detect(image)
    qualities = [quality(image, f) for f in faces]
    desc = None
    if descriptors:
        # True: an entry of the cache's first layout, where descriptors were always dlib's.
        desc = _describe("dlib" if descriptors is True else descriptors, image, faces, params.get("threads"))
    return faces, image.shape[:2], None, desc, qualities


def _detect_cached_impl(digest: str, detector: str, params: tuple, descriptors: bool, path: str,
                        threads: int | None = None):
    return _detect_uncached(path, detector, {**dict(params), **({"threads": threads} if threads else {})},
                            descriptors)


def _make_cached():
    from .cache import cached

    return cached(_detect_cached_impl, ignore=("path", "threads")), cached(_describe_impl, ignore=("path", "threads"))


_detect_cached, _describe_cached = _make_cached()


def _worker_params(detector: str, params: dict, threads: int | None) -> dict:
    """Per-process setup for a pool worker; returns the detector parameters it should use."""
    if threads:
        import cv2

        # Processes already use every core: nested thread pools would only compete with each other.
        cv2.setNumThreads(threads)
        _relax_loky_leak_check()
        if detector in ("mtcnn", "yunet"):
            params = {**params, "threads": threads}
    return params


def _relax_loky_leak_check() -> None:
    # loky restarts a worker whose memory grew by 300 MB after its first task; TensorFlow's
    # allocator legitimately grows past that while MTCNN sees photos of new sizes, and every
    # restart re-imports TensorFlow (seconds). Raise the limit in this worker only.
    try:
        from joblib.externals.loky import process_executor

        process_executor._MAX_MEMORY_LEAK_SIZE = max(process_executor._MAX_MEMORY_LEAK_SIZE, 4_000_000_000)
    except (ImportError, AttributeError):  # pragma: no cover - other joblib layouts
        pass


def _detect_chunk(paths: list[Path], detector: str, params: dict, use_cache: bool, descriptors: str | None,
                  threads: int | None):
    from .cache import enabled

    params = _worker_params(detector, params, threads)
    if not descriptors or (use_cache and enabled()):
        return [_detect_path(p, detector, params, use_cache, descriptors) for p in paths]
    # Uncached: detect every photo of the chunk, then describe all their faces in one batch (a
    # network call per photo would pay the call's overhead for one or two faces).
    from .models import describe_many, get_descriptor

    results, images = [], []
    for p in paths:
        try:
            image = load_image(p)
        except ImageError as exc:
            results.append(PhotoFaces(p, [], None, exc.reason))
            continue
        faces, shape, error, _, qualities = _detect_uncached(str(p), detector, params, None, image=image)
        results.append(PhotoFaces(p, faces, shape, error, None, qualities))
        images.append((results[-1], image))
    model = get_descriptor(descriptors, threads=threads) if threads else get_descriptor(descriptors)
    for (res, _), desc in zip(images, describe_many(model, [(im, res.faces) for res, im in images])):
        res.descriptors = desc
    return results


def detect_paths(paths: Iterable[str | os.PathLike], detector: str | None = None, *, n_jobs: int | None = None,
                 cache: bool = True, progress: bool = True, chunk_size: int = 8,
                 descriptors: bool | str | None = False, **params) -> list[PhotoFaces]:
    """Detect faces in many photo files, in parallel over all cores, with a progress bar.

    Every face gets its :class:`FaceQuality`; with ``descriptors`` (a name of
    :data:`~vision_lib.models.DESCRIPTORS`, or True for the default one) also its descriptor
    (computed while the photo is in memory). ``detector`` None is the default detector. Unreadable files come back with ``error`` set instead
    of raising. Results are cached on disk by file content (see :mod:`vision_lib.cache`), so a
    second run is near-instant. ``params`` go to the detector (e.g. ``max_side``, ``min_score``).
    Results are in the order of ``paths``.
    """
    from tqdm.auto import tqdm

    from .models import DEFAULT_DESCRIPTOR, DESCRIPTORS

    detector = DEFAULT_DETECTOR if detector is None else detector
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    descriptors = (DEFAULT_DESCRIPTOR if descriptors is True else descriptors) or None
    if descriptors is not None and descriptors not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {descriptors!r}; choose from {', '.join(DESCRIPTORS)}")
    paths = [Path(p) for p in paths]
    chunks = [paths[i:i + chunk_size] for i in range(0, len(paths), chunk_size)]
    parts: dict[int, list[PhotoFaces]] = {}
    with tqdm(total=len(paths), desc=f"faces ({detector})", unit="photo", disable=not progress) as bar:
        for i, part in map_chunks(_detect_chunk, chunks, (detector, params, cache, descriptors), n_jobs=n_jobs,
                                  bar=bar, threads=True):
            parts[i] = part
    return [pf for i in range(len(chunks)) for pf in parts[i]]


def detection_stats(results: Sequence[PhotoFaces]) -> dict:
    """Share of photos with at least one face (``coverage``), and counts, for a batch of results."""
    n = len(results)
    found = sum(bool(r.faces) for r in results)
    return {"photos": n, "with_face": found, "coverage": round(found / n, 4) if n else float("nan"),
            "faces": sum(len(r.faces) for r in results), "unreadable": sum(r.error is not None for r in results)}


def time_detection(paths: Sequence[str | os.PathLike], detector: str | None = None, *, n_jobs: int | None = 1,
                   warm_up: bool = True, **params) -> dict:
    """:func:`detection_stats` plus wall-clock speed, with the disk cache off.

    With ``warm_up`` the model is loaded (and the first photo seen) before the clock starts, so the
    figure is the steady per-photo cost; without it, start-up (e.g. TensorFlow import in every
    worker) is included, as a user waiting for a batch sees it.
    """
    import time

    paths = list(paths)
    if warm_up and paths:
        detect_paths(paths[:1], detector, n_jobs=1, cache=False, progress=False, **params)
    start = time.perf_counter()
    results = detect_paths(paths, detector, n_jobs=n_jobs, cache=False, progress=False, **params)
    seconds = time.perf_counter() - start
    return {**detection_stats(results), "seconds": round(seconds, 2),
            "photos_per_s": round(len(paths) / seconds, 2) if seconds > 0 else float("inf"),
            "seconds_per_photo": round(seconds / max(1, len(paths)), 3)}


# --------------------------------------------------------------------------- export (vision-lib faces)
#: Columns of ``faces.csv`` (one row per kept face) and ``rejected.csv`` (one row per photo left out).
FACES_COLUMNS = ("source", "face_index", "x", "y", "w", "h", "score", "crop", "size", "sharpness",
                 "frontalness", "photo_width", "photo_height")
REJECTED_COLUMNS = ("source", "reason")
_SETTINGS_FILE = "export.json"


@dataclass
class ExportSummary:
    """What :func:`export_faces` did: counts of this run, plus what an earlier run had already done."""

    in_dir: Path
    out_dir: Path
    photos: int = 0
    with_faces: int = 0
    faces: int = 0
    rejected: int = 0
    resumed: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    #: Files under ``in_dir`` that are not photos (by content), hidden or unreadable, by reason; all
    #: of them are rows of rejected.csv too.
    skipped: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        done = self.with_faces + self.rejected
        others = sum(self.skipped.values())
        lines = [
            f"{done} photos in {self.seconds:.1f} s: {self.with_faces} with faces ({self.faces} faces), "
            f"{self.rejected} rejected" + (f"; {self.resumed} already done by an earlier run" if self.resumed else ""),
            f"faces:    {self.out_dir / 'faces.csv'}",
            f"rejected: {self.out_dir / 'rejected.csv'}",
        ]
        lines += [f"  {n:5d}  {r}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1])]
        if others:
            lines.append(f"{others} other files, not photos, also listed in rejected.csv:")
            lines += [f"  {n:5d}  {r}" for r, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def export_faces(in_dir: str | os.PathLike, out_dir: str | os.PathLike, detector: str | None = None,
                 align: bool = False, min_size: int = 20, n_jobs: int | None = None, *,
                 margin: float = 0.2, size: int = 160, progress: bool = True, cache: bool = True,
                 chunk_size: int = 8, paths: Iterable[str | os.PathLike] | None = None) -> ExportSummary:
    """Detect faces in every photo under ``in_dir`` and save one crop per face under ``out_dir``.

    Crops mirror ``in_dir``'s sub-folders (``<sub>/<photo stem>_face<i>.jpg``, ``i`` = 0 for the
    largest face). ``out_dir/faces.csv`` gets one row per face (``source`` relative to ``in_dir``,
    box, score, crop path relative to ``out_dir``, quality); ``out_dir/rejected.csv`` one row per
    photo without a usable face, with the reason (unreadable file, no face, only small faces).
    Photos are found by content, not by name (a JPEG without an extension is a photo); every other
    file under ``in_dir`` (text, SVG, PDF, empty, hidden, unreadable, ...) is a row of
    ``rejected.csv`` too, with its reason, and is counted in ``summary.skipped``.

    Rows are written as photos finish, so an interrupted run keeps its progress, and running the
    same command again resumes: photos already listed in either CSV are skipped.

    Args:
        detector: a name of :data:`DETECTORS` (None: the default detector).
        align: save ``size`` x ``size`` crops with the eyes on :data:`TEMPLATE` instead of box crops.
        min_size: faces whose shorter side is under this many pixels (of the original) are dropped.
        n_jobs: worker processes (None: all cores).
        margin: box crops grow by this fraction of the face size on every side.
        paths: only these photos (all under ``in_dir``), e.g. a :meth:`PhotoSet.limit` subset.

    Raises:
        ValueError: ``out_dir`` is ``in_dir``, inside it, or contains it.
        FileExistsError: ``out_dir`` holds other files than an earlier export, or one made with other
            settings.
    """
    import csv
    import json
    import time

    from tqdm.auto import tqdm

    from .io import folder_lock, scan_folder

    detector = DEFAULT_DETECTOR if detector is None else detector
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"no such folder: {in_dir}")
    _check_out_dir(in_dir, out_dir)
    settings = {"detector": detector, "align": bool(align), "min_size": int(min_size),
                "margin": float(margin), "size": int(size)}
    faces_csv, rejected_csv = out_dir / "faces.csv", out_dir / "rejected.csv"
    # Held for the whole run: a second run into the same folder would append the same rows again.
    with folder_lock(out_dir):
        done = _prepare_out_dir(out_dir, settings)

        start = time.perf_counter()
        skipped = []
        if paths is None:
            scan = scan_folder(in_dir)
            paths, skipped = scan.photos, scan.relative_skipped()
        else:
            paths = [Path(p) for p in paths]
        try:
            sources = {p: p.relative_to(in_dir).as_posix() for p in paths}
        except ValueError:
            raise ValueError(f"every path must lie under {in_dir}") from None
        summary = ExportSummary(in_dir, out_dir, photos=len(paths))
        for r in skipped:
            key = r.reason.split(" (")[0]
            summary.skipped[key] = summary.skipped.get(key, 0) + 1
        todo = [p for p in paths if sources[p] not in done]
        summary.resumed = len(paths) - len(todo)
        names = _crop_stems(todo, in_dir)
        chunks = [[(p, sources[p], names[p]) for p in todo[i:i + chunk_size]]
                  for i in range(0, len(todo), chunk_size)]
        args = (detector, out_dir, settings, cache)
        with open(faces_csv, "a", **CSV_TEXT) as f_ok, \
                open(rejected_csv, "a", **CSV_TEXT) as f_bad, \
                tqdm(total=len(paths), initial=summary.resumed, desc=f"faces ({detector})", unit="photo",
                     disable=not progress) as bar:
            ok, bad = csv.writer(f_ok), csv.writer(f_bad)
            bad.writerows([r.source, r.reason] for r in skipped if r.source not in done)
            for _, part in map_chunks(_export_chunk, chunks, args, n_jobs=n_jobs, bar=bar, threads=True):
                for source, rows, reason in part:
                    if reason is None:
                        ok.writerows(rows)
                        summary.with_faces += 1
                        summary.faces += len(rows)
                    else:
                        bad.writerow([source, reason])
                        summary.rejected += 1
                        key = rejection_category(reason)
                        summary.reasons[key] = summary.reasons.get(key, 0) + 1
                # Flush after every chunk: a crash loses at most the photos still in flight.
                f_ok.flush()
                f_bad.flush()
        summary.seconds = time.perf_counter() - start
        (out_dir / _SETTINGS_FILE).write_text(json.dumps({**settings, "last_run": str(summary).splitlines()[0]},
                                                         indent=1), encoding="utf-8")
        return summary


#: How the reasons of a folder scan's non-photo entries begin (see :func:`vision_lib.io.scan_folder`).
NOT_A_PHOTO = ("not a photo", "hidden ", "photo format not supported", "sub-folder", "link to a folder")


def rejection_category(reason: str) -> str:
    """Coarse group of a rejection reason: ``"no face found"``, ``"only small faces"``,
    ``"failed"`` (an unexpected error), ``"not a photo"`` (a folder scan's other files: text, hidden,
    ...) or ``"unreadable file"`` (any :class:`~vision_lib.io.ImageError`)."""
    if reason.startswith(NOT_A_PHOTO):
        return "not a photo"
    if reason.startswith("no face"):
        return "no face found"
    if reason.startswith("only faces smaller"):
        return "only small faces"
    if reason.startswith("failed"):
        return "failed"
    return "unreadable file"


def _check_out_dir(in_dir: Path, out_dir: Path) -> None:
    if is_inside(out_dir, in_dir):
        raise ValueError(f"refusing to write into the input folder: {out_dir} is inside {in_dir}; "
                         "choose an --out folder outside it (originals are never modified)")
    if is_inside(in_dir, out_dir):
        raise ValueError(f"refusing to write into {out_dir}: it contains the input folder {in_dir}; "
                         "choose an --out folder beside it")


def _prepare_out_dir(out_dir: Path, settings: dict) -> set[str]:
    """Create or validate ``out_dir``; returns the sources an earlier run already finished."""
    import csv
    import json

    from .io import check_output_folder

    faces_csv, rejected_csv = out_dir / "faces.csv", out_dir / "rejected.csv"
    check_output_folder(out_dir)
    ours = faces_csv.is_file() and rejected_csv.is_file()
    if out_dir.is_dir() and any(out_dir.iterdir()) and not ours:
        raise FileExistsError(f"{out_dir} is not empty and holds no earlier face export (faces.csv and "
                              "rejected.csv); choose an empty or new folder so nothing is overwritten")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not ours:
        for path, cols in ((faces_csv, FACES_COLUMNS), (rejected_csv, REJECTED_COLUMNS)):
            with open(path, "w", **CSV_TEXT) as f:
                csv.writer(f).writerow(cols)
        (out_dir / _SETTINGS_FILE).write_text(json.dumps(settings, indent=1), encoding="utf-8")
        return set()
    settings_file = out_dir / _SETTINGS_FILE
    previous = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
    changed = {k: (previous.get(k), v) for k, v in settings.items() if previous.get(k) != v}
    if changed:
        what = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise FileExistsError(f"{out_dir} holds an export made with other settings ({what}); "
                              "use a new --out folder, or the same settings to resume")
    done = set()
    for path, cols in ((faces_csv, FACES_COLUMNS), (rejected_csv, REJECTED_COLUMNS)):
        _drop_partial_last_line(path)
        with open(path, **CSV_TEXT) as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None or tuple(header) != cols:
                raise FileExistsError(f"{path} does not have the expected columns {cols}; not resuming")
            done.update(row[0] for row in rows if len(row) == len(cols))
    return done


def _drop_partial_last_line(path: Path) -> None:
    # A run killed in the middle of a write leaves a line without its newline: cut it off, so the
    # photo is redone instead of half-listed.
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _crop_stems(paths: list[Path], in_dir: Path) -> dict[Path, str]:
    """Crop file stem per photo (relative to the output root): the photo's stem, plus its
    extension when two photos of a folder share a stem (``a.jpg`` and ``a.png``)."""
    seen: dict[tuple, int] = {}
    for p in paths:
        key = (p.parent, p.stem.lower())
        seen[key] = seen.get(key, 0) + 1
    out = {}
    for p in paths:
        rel = p.relative_to(in_dir)
        stem = p.stem if seen[(p.parent, p.stem.lower())] == 1 else f"{p.stem}_{p.suffix.lstrip('.').lower()}"
        out[p] = (rel.parent / stem).as_posix()
    return out


def _export_chunk(items: list[tuple[Path, str, str]], detector: str, out_dir: Path, settings: dict,
                  use_cache: bool, threads: int | None) -> list[tuple[str, list[list], str | None]]:
    params = _worker_params(detector, {}, threads)
    results = []
    for path, source, stem in items:
        try:
            results.append(_export_one(path, source, stem, detector, params, out_dir, settings, use_cache))
        except Exception as exc:  # bad input never stops the batch: record it and go on
            results.append((source, [], f"failed: {type(exc).__name__}: {exc}"[:300]))
    return results


def _export_one(path: Path, source: str, stem: str, detector: str, params: dict, out_dir: Path,
                settings: dict, use_cache: bool) -> tuple[str, list[list], str | None]:
    from PIL import Image

    from .cache import enabled

    image = None
    if not (use_cache and enabled()):
        # Uncached: decode once, for detection and crops alike.
        try:
            image = load_image(path)
        except ImageError as exc:
            return source, [], exc.reason
    faces, shape, error, _, qualities = _detect_path_raw(path, detector, params, use_cache, False, image=image)
    if error:
        return source, [], error
    min_size = settings["min_size"]
    kept = [(f, q) for f, q in zip(faces, qualities) if f.size >= min_size]
    if not kept:
        if faces:
            return source, [], f"only faces smaller than {min_size} px (largest {faces[0].size} px)"
        return source, [], "no face found"
    if image is None:
        image = load_image(path)
    rows = []
    for i, (face, q) in enumerate(kept):
        if settings["align"]:
            pixels = align(image, face, size=settings["size"])
        else:
            pixels = crop(image, face, margin=settings["margin"])
        rel = f"{stem}_face{i}.jpg"
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, quality=95)
        x, y, w, h = face.box
        rows.append([source, i, x, y, w, h, round(face.score, 4), rel, q.size, round(q.sharpness, 1),
                     "" if q.frontalness is None else round(q.frontalness, 3), shape[1], shape[0]])
    return source, rows, None


def read_export(out_dir: str | os.PathLike, sources: Iterable[str] | None = None):
    """``(faces, rejected)`` tables of an export as lists of dicts (see :data:`FACES_COLUMNS`).

    ``sources``: keep only the rows of these photos (paths relative to the input folder, as in the
    ``source`` column), e.g. this run's photos when an export folder was resumed with others.
    """
    import csv

    out_dir = Path(out_dir)
    keep = None if sources is None else set(map(str, sources))
    tables = []
    for name in ("faces.csv", "rejected.csv"):
        with open(out_dir / name, **CSV_TEXT) as f:
            tables.append([row for row in csv.DictReader(f) if keep is None or row["source"] in keep])
    return tuple(tables)


def row_quality(row: dict) -> FaceQuality:
    """The :class:`FaceQuality` of a ``faces.csv`` row (as read by :func:`read_export`)."""
    front = row.get("frontalness")
    return FaceQuality(int(row["size"]), float(row["sharpness"]), float(front) if front not in (None, "") else None,
                       float(row["score"]))


def manifest_by_folder(kept: Sequence[dict], rejected: Sequence[dict]) -> list[dict]:
    """One row per top-level sub-folder (a person): photos, photos kept, faces, and the rejected
    photos by :func:`rejection_category`; from the tables of :func:`read_export`."""
    def folder(source: str) -> str:
        return source.split("/")[0] if "/" in source else "."

    table: dict[str, dict] = {}
    cats = ("no face found", "only small faces", "unreadable file", "failed", "not a photo")
    for src in sorted({r["source"] for r in kept} | {r["source"] for r in rejected}, key=folder):
        table.setdefault(folder(src), {"folder": folder(src), "photos": 0, "kept": 0, "faces": 0,
                                       **{c: 0 for c in cats}})["photos"] += 1
    for src in {r["source"] for r in kept}:
        table[folder(src)]["kept"] += 1
    for r in kept:
        table[folder(r["source"])]["faces"] += 1
    for r in rejected:
        table[folder(r["source"])][rejection_category(r["reason"])] += 1
    return [table[k] for k in sorted(table)]


#: The public names of this module.
__all__ = ["detect", "TEMPLATE", "alignment_matrix", "align", "FaceQuality", "frontalness", "sharpness",
           "quality", "best_faces", "colourfulness", "MIN_COLOURFULNESS", "DUPLICATE_SHARE", "Curated",
           "curated_faces", "PhotoFaces", "detect_paths", "detection_stats", "time_detection",
           "FACES_COLUMNS", "REJECTED_COLUMNS", "ExportSummary", "export_faces", "rejection_category",
           "read_export", "row_quality", "manifest_by_folder"]
