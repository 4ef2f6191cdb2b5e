"""Many photos: :func:`detect_paths` in parallel over all cores, with every photo's detections (and
descriptors) cached on disk by file content (:mod:`vision_lib.cache`); detection statistics and timing."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..geometry import Face
from ..io import Decoded, ImageError, cannot_read
from ..models import DEFAULT_DETECTOR, DETECTORS, KEY_ONLY, get_detector
from ..parallel import map_chunks
from .rating import FaceQuality
from .scaled import describe_in, detect_photo, face_view, in_view, qualities_in


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
    from ..cache import enabled

    if use_cache and enabled():
        from ..cache import file_digest

        try:
            digest = file_digest(path)
        except OSError as exc:
            return [], None, cannot_read(exc, path), None, None
        # The key holds every setting that changes detections, defaults included (so changing a
        # default invalidates old entries), but not thread counts or graph compilation.
        key = get_detector(detector, **{k: v for k, v in params.items() if k not in _SPEED_ONLY}).params()
        threads = params.get("threads")
        faces, shape, error, _, qualities = _cached_detections(digest, detector, key, str(path), threads)
        desc = None
        if descriptors and error is None:
            from ..models import get_descriptor

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
    faces, shape, error, _, _ = _cached_detections(digest, detector, params, path, threads)
    if error is not None:
        return None
    try:
        view = face_view(path, faces, shape=shape)
    except ImageError:
        return None
    return _describe(model.name, view, faces, threads)


def _describe(name: str, view: Decoded, faces: list[Face], threads: int | None) -> np.ndarray:
    return describe_in(_descriptor(name, threads), view, faces)


def _descriptor(name: str, threads: int | None):
    from ..models import get_descriptor

    return get_descriptor(name, threads=threads) if threads else get_descriptor(name)


#: Detector parameters that change speed, never detections (not part of the cache key).
_SPEED_ONLY = ("threads", "compiled")


def _detect_uncached(path: str, detector: str, params: dict, descriptors: str | bool | None,
                     image: np.ndarray | None = None, views: list | None = None, reads: str | None = None):
    """Detect (and describe) one photo; a file is decoded only as far as needed (:mod:`.scaled`).
    ``views``, when given, receives the decode its faces are described from; ``reads`` names the
    descriptor the caller will describe them with (a second decode then stops below its chips)."""
    det = get_detector(detector, **{k: v for k, v in params.items() if k not in KEY_ONLY})  # params may be a cache key
    # True: an entry of the cache's first layout, where descriptors were always dlib's.
    name = "dlib" if descriptors is True else descriptors or reads
    describer = _descriptor(name, params.get("threads")) if name else None
    try:
        if image is not None:
            view = Decoded(image, 1.0, image.shape[:2])
            faces = det.detect(image)
        else:
            faces, view = detect_photo(path, det)
        view = face_view(path, faces, view, descriptor=describer)
    except ImageError as exc:
        return [], None, exc.reason, None, None
    qualities = qualities_in(view, faces)
    if views is not None:
        views.append(view)
    desc = describe_in(describer, view, faces) if descriptors else None
    return faces, view.shape, None, desc, qualities


def _detect_cached_impl(digest: str, detector: str, params: tuple, descriptors: bool, path: str,
                        threads: int | None = None):
    return _detect_uncached(path, detector, {**dict(params), **({"threads": threads} if threads else {})},
                            descriptors)


# The disk cache keys these two by module, name and source text: they keep the single-module
# faces.py's module name, so entries written before and after the split serve each other.
_detect_cached_impl.__module__ = _describe_impl.__module__ = "vision_lib.faces"


def _make_cached():
    from ..cache import cached

    return cached(_detect_cached_impl, ignore=("path", "threads")), cached(_describe_impl, ignore=("path", "threads"))


_detect_cached, _describe_cached = _make_cached()


def _worker_params(detector: str, params: dict, threads: int | None) -> dict:
    """Per-process setup for a pool worker; returns the detector parameters it should use."""
    if threads:
        import cv2

        # Processes already use every core: nested thread pools would only compete with each other.
        cv2.setNumThreads(threads)
        _relax_loky_leak_check()
        if detector in ("mtcnn", "yunet", "yunet_checked"):
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
    from ..cache import enabled

    params = _worker_params(detector, params, threads)
    if not descriptors or (use_cache and enabled()):
        return [_detect_path(p, detector, params, use_cache, descriptors) for p in paths]
    # Uncached: detect every photo of the chunk, then describe all their faces in one batch (a
    # network call per photo would pay the call's overhead for one or two faces).
    from ..models import describe_many

    results, views = [], []
    for p in paths:
        seen: list[Decoded] = []
        faces, shape, error, _, qualities = _detect_uncached(str(p), detector, params, None, views=seen,
                                                             reads=descriptors)
        results.append(PhotoFaces(p, faces, shape, error, None, qualities))
        if error is None:
            views.append((results[-1], seen[0]))
    model = _descriptor(descriptors, threads)
    for (res, _), desc in zip(views, describe_many(model, [(v.image, in_view(res.faces, v)) for res, v in views])):
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
    from ..progress import tqdm

    from ..models import DESCRIPTORS, default_descriptor

    detector = DEFAULT_DETECTOR if detector is None else detector
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    descriptors = (default_descriptor() if descriptors is True else descriptors) or None
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


#: The public names of this module.
__all__ = ["PhotoFaces", "detect_paths", "detection_stats", "time_detection"]
