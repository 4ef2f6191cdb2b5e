"""Find, crop, align and rate faces.

Two detectors behind one interface (``detector.detect(image) -> list[Face]``):

* ``"mtcnn"`` (default): the ``mtcnn`` package (weights ship inside it), with a score and five
  keypoints per face.
* ``"haar"``: the classic recipe, OpenCV's frontal-face cascade with ``detectMultiScale(gray, 1.3, 5)``,
  keeping a face only when the eye cascade finds at least two eyes inside it.

Large photos are downscaled for detection and boxes are mapped back, so crops come from the
original pixels. Faces of a photo are always ordered largest first (``face_index`` 0 = largest).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .io import ImageError, load_image, resize_max_side

DETECTORS = ("mtcnn", "haar")
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # left = image left


@dataclass(frozen=True)
class Face:
    """One detected face. ``box`` is ``(x, y, w, h)`` in pixels of the original photo.

    ``keypoints`` maps names in :data:`KEYPOINTS` to ``(x, y)``; ``left_eye`` is the eye on the
    image's left. The Haar recipe gives only the two eyes; its ``score`` is 1.0 (no probability).
    """

    box: tuple[int, int, int, int]
    score: float
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def size(self) -> int:
        """Shorter side of the box, in pixels."""
        return int(min(self.box[2], self.box[3]))

    @property
    def area(self) -> int:
        return int(self.box[2] * self.box[3])

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray] | None:
        if "left_eye" in self.keypoints and "right_eye" in self.keypoints:
            return np.asarray(self.keypoints["left_eye"], float), np.asarray(self.keypoints["right_eye"], float)
        return None

    def scaled(self, factor: float) -> "Face":
        """The same face in an image resized by ``factor``."""
        x, y, w, h = self.box
        box = tuple(int(round(v * factor)) for v in (x, y, w, h))
        kps = {k: (float(px * factor), float(py * factor)) for k, (px, py) in self.keypoints.items()}
        return Face(box, self.score, kps)


# --------------------------------------------------------------------------- detectors
class HaarDetector:
    """The classic recipe: frontal-face Haar cascade plus a two-eyes check.

    Args:
        scale_factor, min_neighbors: ``detectMultiScale`` parameters (1.3, 5 in the recipe).
        min_eyes: keep a face only if the eye cascade finds at least this many eyes in it.
        max_side: photos are downscaled to this longest side for detection.
    """

    name = "haar"

    def __init__(self, scale_factor: float = 1.3, min_neighbors: int = 5, min_eyes: int = 2,
                 max_side: int = 1024):
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_eyes = min_eyes
        self.max_side = max_side

    @functools.cached_property
    def _cascades(self):
        import cv2

        root = Path(cv2.data.haarcascades)
        face = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        eye = cv2.CascadeClassifier(str(root / "haarcascade_eye.xml"))
        if face.empty() or eye.empty():
            raise RuntimeError(f"OpenCV Haar cascades not found in {root}; install opencv-python-headless<5")
        return face, eye

    def params(self) -> tuple:
        return (self.scale_factor, self.min_neighbors, self.min_eyes, self.max_side)

    def detect(self, image: np.ndarray) -> list[Face]:
        import cv2

        small, scale = resize_max_side(image, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        face_cc, eye_cc = self._cascades
        faces = []
        for x, y, w, h in face_cc.detectMultiScale(gray, self.scale_factor, self.min_neighbors):
            eyes = eye_cc.detectMultiScale(gray[y:y + h, x:x + w])
            if len(eyes) < self.min_eyes:
                continue
            # The two largest eye detections in the upper part of the face are the eyes.
            eyes = sorted((e for e in eyes if e[1] + e[3] / 2 < 0.65 * h), key=lambda e: -e[2] * e[3])[:2]
            kps = {}
            if len(eyes) == 2:
                centres = sorted((x + ex + ew / 2, y + ey + eh / 2) for ex, ey, ew, eh in eyes)
                kps = {"left_eye": centres[0], "right_eye": centres[1]}
            faces.append(Face((int(x), int(y), int(w), int(h)), 1.0, kps).scaled(1 / scale))
        return _largest_first(faces)


class MTCNNDetector:
    """MTCNN (the ``mtcnn`` package, weights included): box, score and five keypoints.

    Args:
        min_score: drop detections below this confidence.
        max_side: photos are downscaled to this longest side for detection.
        threads: TensorFlow threads for this process (None: TensorFlow's default).
    """

    name = "mtcnn"

    def __init__(self, min_score: float = 0.9, max_side: int = 1024, threads: int | None = None):
        self.min_score = min_score
        self.max_side = max_side
        self.threads = threads

    def params(self) -> tuple:
        return (self.min_score, self.max_side)

    @functools.cached_property
    def _model(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        if self.threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
                tf.config.threading.set_inter_op_parallelism_threads(self.threads)
            except RuntimeError:  # already initialised in this process: keep its setting
                pass
        from mtcnn import MTCNN

        return MTCNN(device="CPU:0")

    def detect(self, image: np.ndarray) -> list[Face]:
        small, scale = resize_max_side(image, self.max_side)
        faces = []
        for d in self._model.detect_faces(small):
            if d["confidence"] < self.min_score:
                continue
            x, y, w, h = (int(v) for v in d["box"])
            kps = {k: (float(v[0]), float(v[1])) for k, v in d.get("keypoints", {}).items()}
            # Name eyes and mouth corners by image side so `left_eye` is always the leftmost.
            for a, b in (("left_eye", "right_eye"), ("mouth_left", "mouth_right")):
                if a in kps and b in kps and kps[a][0] > kps[b][0]:
                    kps[a], kps[b] = kps[b], kps[a]
            faces.append(Face((x, y, w, h), float(d["confidence"]), kps).scaled(1 / scale))
        return _largest_first(faces)


def _largest_first(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: (-f.area, f.box))


@functools.lru_cache(maxsize=8)
def get_detector(name: str = "mtcnn", **params) -> HaarDetector | MTCNNDetector:
    """A detector by name (cached per process, models load on first use)."""
    if name == "mtcnn":
        return MTCNNDetector(**params)
    if name == "haar":
        return HaarDetector(**params)
    raise ValueError(f"unknown detector {name!r}; choose from {DETECTORS}")


def detect(image: np.ndarray, detector: str | HaarDetector | MTCNNDetector = "mtcnn",
           min_size: int = 0) -> list[Face]:
    """Faces in an RGB image, largest first, ignoring those with a side under ``min_size`` px."""
    det = get_detector(detector) if isinstance(detector, str) else detector
    return [f for f in det.detect(image) if f.size >= min_size]


# --------------------------------------------------------------------------- crop and align
def crop(image: np.ndarray, face: Face, margin: float = 0.2) -> np.ndarray:
    """The face box grown by ``margin`` (fraction of its size) on every side, clamped to the image."""
    x, y, w, h = face.box
    mx, my = int(round(w * margin)), int(round(h * margin))
    H, W = image.shape[:2]
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(W, x + w + mx), min(H, y + h + my)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {face.box} lies outside the {W}x{H} image")
    return image[y0:y1, x0:x1].copy()


# Canonical template in units of the output size: the widely used five-point template of
# ArcFace/InsightFace (112x112), rescaled so the eyes sit at 35% / 65% width and 40% height.
_ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]])
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
        return _similarity_from_two(src, dst)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return matrix if matrix is not None else _similarity_from_two(src[:2], dst[:2])


def _similarity_from_two(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    # Exact similarity from two point pairs, via complex numbers: z' = a z + b.
    s = src[:, 0] + 1j * src[:, 1]
    d = dst[:, 0] + 1j * dst[:, 1]
    if abs(s[1] - s[0]) < 1e-6:
        s = s + np.array([0, 1e-3])
    a = (d[1] - d[0]) / (s[1] - s[0])
    b = d[0] - a * s[0]
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


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
    """Indices of the ``n`` best faces: frontal enough and large enough, then sharpest first.

    Faces without keypoints count as frontal only if nothing better is available.
    """
    def key(i):
        q = qualities[i]
        ok = (q.frontalness is None or q.frontalness >= min_frontalness) and q.size >= min_size
        return (not ok, q.frontalness is None, -(q.frontalness or 0) * np.log1p(q.sharpness) * q.score)

    return sorted(range(len(qualities)), key=key)[:n]


# --------------------------------------------------------------------------- batches
@dataclass
class PhotoFaces:
    """Detections for one photo file; ``error`` is the reason when it could not be loaded."""

    path: Path
    faces: list[Face]
    shape: tuple[int, int] | None = None
    error: str | None = None
    #: dlib descriptors, one row per face (only when asked for with ``descriptors=True``).
    descriptors: np.ndarray | None = None
    qualities: list[FaceQuality] | None = None


def _detect_path(path: Path, detector: str, params: dict, use_cache: bool, descriptors: bool) -> PhotoFaces:
    if use_cache:
        from .cache import file_digest

        try:
            digest = file_digest(path)
        except OSError as exc:
            return PhotoFaces(path, [], None, f"cannot read: {exc.strerror or exc}")
        # TensorFlow thread settings do not change results: keep them out of the cache key.
        key = tuple(sorted((k, v) for k, v in params.items() if k != "threads"))
        res = _detect_cached(digest, detector, key, descriptors, path=str(path), threads=params.get("threads"))
    else:
        res = _detect_uncached(str(path), detector, params, descriptors)
    return PhotoFaces(path, *res)


def _detect_uncached(path: str, detector: str, params: dict, descriptors: bool):
    try:
        image = load_image(path)
    except ImageError as exc:
        return [], None, exc.reason, None, None
    faces = get_detector(detector, **params).detect(image)
    qualities = [quality(image, f) for f in faces]
    desc = None
    if descriptors:
        from .embeddings import face_descriptors

        desc = face_descriptors(image, faces)
    return faces, image.shape[:2], None, desc, qualities


def _detect_cached_impl(digest: str, detector: str, params: tuple, descriptors: bool, path: str,
                        threads: int | None = None):
    return _detect_uncached(path, detector, {**dict(params), **({"threads": threads} if threads else {})},
                            descriptors)


def _make_cached():
    from .cache import cached

    return cached(_detect_cached_impl, ignore=("path", "threads"))


_detect_cached = _make_cached()


def _detect_chunk(paths: list[Path], detector: str, params: dict, use_cache: bool, threads: int | None,
                  descriptors: bool):
    if detector == "mtcnn" and threads:
        params = {**params, "threads": threads}
    return [_detect_path(p, detector, params, use_cache, descriptors) for p in paths]


def detect_paths(paths: Iterable[str | os.PathLike], detector: str = "mtcnn", *, n_jobs: int | None = None,
                 cache: bool = True, progress: bool = True, chunk_size: int = 8,
                 descriptors: bool = False, **params) -> list[PhotoFaces]:
    """Detect faces in many photo files, in parallel over all cores, with a progress bar.

    Every face gets its :class:`FaceQuality`; with ``descriptors=True`` also its dlib descriptor
    (computed while the photo is in memory). Unreadable files come back with ``error`` set instead
    of raising. Results are cached on disk by file content (see :mod:`vision_lib.cache`), so a
    second run is near-instant. ``params`` go to the detector (e.g. ``max_side``, ``min_score``).
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from .config import n_jobs as _n_jobs

    paths = [Path(p) for p in paths]
    jobs = min(_n_jobs(n_jobs), max(1, len(paths) // chunk_size))
    chunks = [paths[i:i + chunk_size] for i in range(0, len(paths), chunk_size)]
    bar = tqdm(total=len(paths), desc=f"faces ({detector})", unit="photo", disable=not progress)
    results: list[PhotoFaces] = []
    if jobs <= 1:
        for chunk in chunks:
            results += _detect_chunk(chunk, detector, params, cache, None, descriptors)
            bar.update(len(chunk))
    else:
        # One TensorFlow thread per worker process: processes scale better than TF's own threads.
        run = Parallel(n_jobs=jobs, backend="loky", return_as="generator")
        for part in run(delayed(_detect_chunk)(c, detector, params, cache, 1, descriptors) for c in chunks):
            results += part
            bar.update(len(part))
    bar.close()
    return results
