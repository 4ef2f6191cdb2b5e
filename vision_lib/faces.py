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
from typing import Iterable, Iterator, Sequence

import numpy as np

from .io import CSV_TEXT, ImageError, check_rgb, is_inside, load_image, resize_max_side
from .parallel import map_chunks

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
        """Everything that changes detections, as ``(name, value)`` pairs (part of the cache key)."""
        return (("max_side", self.max_side), ("min_eyes", self.min_eyes), ("min_neighbors", self.min_neighbors),
                ("scale_factor", self.scale_factor))

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
        second_look: when nothing is found, look again at these longest sides (px), one after
            the other, with a black border of ``border`` (fraction of the side) around the photo.
            MTCNN often misses faces that fill the frame or touch its edges; the border and the
            coarser scale recover most of them, and it costs time only on photos without a face.
        border: see ``second_look``.
        threads: TensorFlow threads for this process (None: TensorFlow's default).
        compiled: run the networks as TensorFlow graphs (same detections, about twice as fast);
            False runs the ``mtcnn`` package's own eager Keras calls (the benchmark's baseline).
    """

    name = "mtcnn"

    def __init__(self, min_score: float = 0.9, max_side: int = 1024, second_look: tuple[int, ...] = (640, 384),
                 border: float = 0.15, threads: int | None = None, compiled: bool = True):
        self.min_score = min_score
        self.max_side = max_side
        self.second_look = tuple(second_look)
        self.border = border
        self.threads = threads
        self.compiled = compiled

    def params(self) -> tuple:
        """Everything that changes detections, as ``(name, value)`` pairs (part of the cache key)."""
        return (("border", self.border), ("max_side", self.max_side), ("min_score", self.min_score),
                ("second_look", self.second_look))

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

        model = MTCNN(device="CPU:0")
        if self.compiled:
            _compile_stages(model, tf)
        return model

    def detect(self, image: np.ndarray) -> list[Face]:
        faces = self._detect_at(image, self.max_side, 0.0)
        for side in self.second_look:
            if faces:
                break
            faces = self._detect_at(image, side, self.border)
        return _largest_first(faces)

    def _detect_at(self, image: np.ndarray, max_side: int, border: float) -> list[Face]:
        import cv2

        small, scale = resize_max_side(image, max_side)
        pad = int(round(border * max(small.shape[:2])))
        if pad:
            small = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        H, W = image.shape[:2]
        faces = []
        for d in self._model.detect_faces(small):
            if d["confidence"] < self.min_score:
                continue
            x, y, w, h = (int(v) - o for v, o in zip(d["box"], (pad, pad, 0, 0)))
            kps = {k: (float(v[0]) - pad, float(v[1]) - pad) for k, v in d.get("keypoints", {}).items()}
            # Name eyes and mouth corners by image side so `left_eye` is always the leftmost.
            for a, b in (("left_eye", "right_eye"), ("mouth_left", "mouth_right")):
                if a in kps and b in kps and kps[a][0] > kps[b][0]:
                    kps[a], kps[b] = kps[b], kps[a]
            face = Face((x, y, w, h), float(d["confidence"]), kps).scaled(1 / scale)
            face = _clamp(face, W, H)
            if face is not None:
                faces.append(face)
        return faces


def _clamp(face: Face, width: int, height: int) -> Face | None:
    """The part of the box inside the image (a face found partly in a border); None if nothing is."""
    x, y, w, h = face.box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    if (x0, y0, x1 - x0, y1 - y0) == face.box:
        return face
    return Face((x0, y0, x1 - x0, y1 - y0), face.score, face.keypoints)


# Input shapes of the three MTCNN networks: PNet sees whole pyramid levels, RNet and ONet patches.
_STAGE_INPUTS = {1: (None, None, None, 3), 2: (None, 24, 24, 3), 3: (None, 48, 48, 3)}


def _compile_stages(model, tf) -> None:
    """Run the three MTCNN networks as ``tf.function`` graphs instead of eager Keras calls.

    The ``mtcnn`` package calls its Keras models eagerly; on small CPU inputs most of that time is
    Python-side layer dispatch. One graph per network, traced once for any input size (the
    signature leaves batch, height and width free), gives identical outputs about twice as fast.
    Falls back to eager if the package layout changes.
    """
    for stage in getattr(model, "stages", []):
        net, shape = getattr(stage, "_model", None), _STAGE_INPUTS.get(getattr(stage, "id", None))
        if net is None or shape is None:
            continue
        stage._model = tf.function(lambda x, net=net: net(x, training=False),
                                   input_signature=[tf.TensorSpec(shape, tf.float32)])


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
    """Faces in an RGB image, largest first, ignoring those with a side under ``min_size`` px.

    ``image`` is ``(H, W, 3)`` uint8 (or float in 0..1); anything else is a ValueError that says so
    (see :func:`vision_lib.io.check_rgb`), not a silent empty answer.
    """
    det = get_detector(detector) if isinstance(detector, str) else detector
    return [f for f in det.detect(check_rgb(image)) if f.size >= min_size]


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
        return similarity_transform(src, dst)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return matrix if matrix is not None else similarity_transform(src[:2], dst[:2])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift; no reflection) taking the
    points ``src`` onto ``dst`` (both ``(n, 2)``, n >= 2); exact for two points."""
    # As complex numbers z' = a z + b; the least-squares a, b have a closed form (Umeyama).
    s = np.asarray(src, np.float64) @ np.array([1, 1j])
    d = np.asarray(dst, np.float64) @ np.array([1, 1j])
    sc, dc = s - s.mean(), d - d.mean()
    norm = float(np.sum(np.abs(sc) ** 2))
    a = np.sum(dc * np.conj(sc)) / norm if norm > 1e-12 else 1.0 + 0j
    b = d.mean() - a * s.mean()
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
    return PhotoFaces(path, *_detect_path_raw(path, detector, params, use_cache, descriptors))


def _detect_path_raw(path: Path, detector: str, params: dict, use_cache: bool, descriptors: bool,
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
            from .embeddings import descriptor_id

            # Cached apart from the detections, keyed by the descriptor recipe: changing how faces
            # are described does not re-run the detector.
            desc = _describe_cached(digest, detector, key, descriptor_id(), path=str(path), threads=threads)
        return faces, shape, error, desc, qualities
    return _detect_uncached(str(path), detector, params, descriptors, image=image)


def _cached_detections(digest: str, detector: str, key: tuple, path: str, threads: int | None) -> tuple:
    # Entries written by earlier versions (detections and descriptors in one) still serve detections.
    if _detect_cached.in_cache(digest, detector, key, True, path=path, threads=threads):
        return _detect_cached(digest, detector, key, True, path=path, threads=threads)
    return _detect_cached(digest, detector, key, False, path=path, threads=threads)


def _describe_impl(digest: str, detector: str, params: tuple, descriptor: str, path: str,
                   threads: int | None = None) -> np.ndarray | None:
    from .embeddings import face_descriptors

    faces, _, error, _, _ = _cached_detections(digest, detector, params, path, threads)
    try:
        image = load_image(path)
    except ImageError:
        return None
    return face_descriptors(image, faces) if error is None else None


#: Detector parameters that change speed, never detections (not part of the cache key).
_SPEED_ONLY = ("threads", "compiled")


def _detect_uncached(path: str, detector: str, params: dict, descriptors: bool, image: np.ndarray | None = None):
    if image is None:
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

    return cached(_detect_cached_impl, ignore=("path", "threads")), cached(_describe_impl, ignore=("path", "threads"))


_detect_cached, _describe_cached = _make_cached()


def _worker_params(detector: str, params: dict, threads: int | None) -> dict:
    """Per-process setup for a pool worker; returns the detector parameters it should use."""
    if threads:
        import cv2

        # Processes already use every core: nested thread pools would only compete with each other.
        cv2.setNumThreads(threads)
        _relax_loky_leak_check()
        if detector == "mtcnn":
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


def _detect_chunk(paths: list[Path], detector: str, params: dict, use_cache: bool, descriptors: bool,
                  threads: int | None):
    params = _worker_params(detector, params, threads)
    return [_detect_path(p, detector, params, use_cache, descriptors) for p in paths]


def detect_paths(paths: Iterable[str | os.PathLike], detector: str = "mtcnn", *, n_jobs: int | None = None,
                 cache: bool = True, progress: bool = True, chunk_size: int = 8,
                 descriptors: bool = False, **params) -> list[PhotoFaces]:
    """Detect faces in many photo files, in parallel over all cores, with a progress bar.

    Every face gets its :class:`FaceQuality`; with ``descriptors=True`` also its dlib descriptor
    (computed while the photo is in memory). Unreadable files come back with ``error`` set instead
    of raising. Results are cached on disk by file content (see :mod:`vision_lib.cache`), so a
    second run is near-instant. ``params`` go to the detector (e.g. ``max_side``, ``min_score``).
    Results are in the order of ``paths``.
    """
    from tqdm.auto import tqdm

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


def time_detection(paths: Sequence[str | os.PathLike], detector: str = "mtcnn", *, n_jobs: int | None = 1,
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

    def __str__(self) -> str:
        done = self.with_faces + self.rejected
        lines = [
            f"{done} photos in {self.seconds:.1f} s: {self.with_faces} with faces ({self.faces} faces), "
            f"{self.rejected} rejected" + (f"; {self.resumed} already done by an earlier run" if self.resumed else ""),
            f"faces:    {self.out_dir / 'faces.csv'}",
            f"rejected: {self.out_dir / 'rejected.csv'}",
        ]
        lines += [f"  {n:5d}  {r}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def export_faces(in_dir: str | os.PathLike, out_dir: str | os.PathLike, detector: str = "mtcnn",
                 align: bool = False, min_size: int = 20, n_jobs: int | None = None, *,
                 margin: float = 0.2, size: int = 160, progress: bool = True, cache: bool = True,
                 chunk_size: int = 8, paths: Iterable[str | os.PathLike] | None = None) -> ExportSummary:
    """Detect faces in every photo under ``in_dir`` and save one crop per face under ``out_dir``.

    Crops mirror ``in_dir``'s sub-folders (``<sub>/<photo stem>_face<i>.jpg``, ``i`` = 0 for the
    largest face). ``out_dir/faces.csv`` gets one row per face (``source`` relative to ``in_dir``,
    box, score, crop path relative to ``out_dir``, quality); ``out_dir/rejected.csv`` one row per
    photo without a usable face, with the reason (unreadable file, no face, only small faces).
    Files whose extension is not a photo's (``.txt``, ``.csv``, ...) and hidden files are ignored.

    Rows are written as photos finish, so an interrupted run keeps its progress, and running the
    same command again resumes: photos already listed in either CSV are skipped.

    Args:
        detector: ``"mtcnn"`` or ``"haar"``.
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

    from .io import folder_lock, list_images

    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose from {DETECTORS}")
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
        paths = list_images(in_dir) if paths is None else [Path(p) for p in paths]
        try:
            sources = {p: p.relative_to(in_dir).as_posix() for p in paths}
        except ValueError:
            raise ValueError(f"every path must lie under {in_dir}") from None
        summary = ExportSummary(in_dir, out_dir, photos=len(paths))
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


def rejection_category(reason: str) -> str:
    """Coarse group of a rejection reason: ``"no face found"``, ``"only small faces"``,
    ``"failed"`` (an unexpected error) or ``"unreadable file"`` (any :class:`~vision_lib.io.ImageError`)."""
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
    cats = ("no face found", "only small faces", "unreadable file", "failed")
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
