"""Photos to face feature rows, the way a saved model redoes it: a :class:`Recipe` (detector,
descriptor or wavelet recipe) and :func:`extract` over many photos (both cores or a Dask cluster,
disk-cached by file content), with MTCNN's second look (:func:`detect_harder`).

The pipeline layer: :mod:`vision_lib.features` (folder -> table) and :mod:`vision_lib.classify`
(training, prediction) both build on it; it imports no stage.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .faces import PhotoFaces
from .geometry import Face
from .io import ImageError, cannot_read, load_image
from .names import TRAINING_FEATURES as FEATURES
from .parallel import map_ordered

__all__ = ["FEATURES", "Recipe", "PhotoFeatures", "extract", "second_look", "detect_harder", "recipe_faces", "recipe_features",
           "RETRY_PARAMS", "RETRY_BORDER"]


@dataclass(frozen=True)
class Recipe:
    """How a photo becomes one feature vector per face (everything a saved model needs to redo it).

    Args:
        features: ``"embedding"`` (the face descriptor) or ``"wavelet"`` (32x32 crop + wavelet image).
        detector: a name of :data:`vision_lib.models.DETECTORS` (None: the default detector).
        detector_params: extra detector parameters (empty = the library defaults, which share the
            detection cache with every other stage).
        feature_params: parameters of :func:`vision_lib.features.wavelet_features` (wavelet recipe).
        retry: when MTCNN finds no face, look again harder (:func:`detect_harder`; MTCNN only).
        descriptor: a name of :data:`vision_lib.models.DESCRIPTORS` (None: the default): the
            features of ``"embedding"``, and what cleaning and the distance rules measure.
    """

    features: str = "embedding"
    detector: str | None = None
    detector_params: tuple = ()
    feature_params: tuple = ()
    retry: bool = True
    descriptor: str | None = None

    def __post_init__(self):
        from .models import DEFAULT_DETECTOR, DESCRIPTORS, DETECTORS, default_descriptor

        if self.detector is None:
            object.__setattr__(self, "detector", DEFAULT_DETECTOR)
        if self.descriptor is None:
            object.__setattr__(self, "descriptor", default_descriptor())
        if self.features not in FEATURES:
            raise ValueError(f"unknown features {self.features!r}; choose from {FEATURES}")
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose from {', '.join(DETECTORS)}")
        if self.descriptor not in DESCRIPTORS:
            raise ValueError(f"unknown descriptor {self.descriptor!r}; choose from {', '.join(DESCRIPTORS)}")
        if self.detector != "mtcnn":
            object.__setattr__(self, "retry", False)

    @property
    def descriptor_model(self):
        """The :class:`~vision_lib.models.Descriptor` of this recipe."""
        from .models import get_descriptor

        return get_descriptor(self.descriptor)

    def describe(self) -> str:
        what = f"{self.descriptor} descriptor" if self.features == "embedding" else "wavelet recipe (4096 values)"
        return f"{self.detector.upper()} faces{' (+ retry)' if self.retry else ''}, {what}"


#: Second look for photos where MTCNN's default pass finds nothing: a lower score threshold, a
#: larger working size (small faces in big photos) and a grey border (faces cut by the frame or
#: filling it, which MTCNN's sliding windows miss).
RETRY_PARAMS = {"min_score": 0.7, "max_side": 1600}
RETRY_BORDER = 0.25


def detect_harder(image: np.ndarray) -> list[Face]:
    """MTCNN again with :data:`RETRY_PARAMS` on the photo padded by :data:`RETRY_BORDER` of its
    longest side; boxes and keypoints are mapped back (and clipped) to the original photo."""
    import cv2

    from .faces import get_detector

    h, w = image.shape[:2]
    pad = int(RETRY_BORDER * max(h, w))
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    out = []
    for f in get_detector("mtcnn", **RETRY_PARAMS).detect(padded):
        x, y, bw, bh = f.box
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(w, x - pad + bw), min(h, y - pad + bh)
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        kps = {k: (px - pad, py - pad) for k, (px, py) in f.keypoints.items()}
        out.append(Face((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), f.score, kps))
    return out


def recipe_faces(image: np.ndarray, recipe: Recipe) -> list[Face]:
    from .faces import get_detector

    faces = get_detector(recipe.detector, **dict(recipe.detector_params)).detect(image)
    if not faces and recipe.retry and recipe.detector == "mtcnn":
        faces = detect_harder(image)
    return faces


def _retry_impl(digest: str, params: tuple, border: float, descriptor: str, path: str):
    try:
        image = load_image(path)
    except ImageError as exc:
        return [], None, exc.reason
    faces = detect_harder(image)
    return faces, _descriptor_of(descriptor).describe(image, faces), None


def _descriptor_of(descriptor_id: str):
    """The registered descriptor with this id (cache entries are keyed by id)."""
    from .models import descriptor_for_id

    model = descriptor_for_id(descriptor_id)
    if model is None:
        raise ValueError(f"no registered descriptor has the id {descriptor_id!r}")
    return model


def _retry_chunk(photos: list[PhotoFaces], recipe: Recipe) -> list[PhotoFaces]:
    from .cache import cached, file_digest

    run = cached(_retry_impl)
    key = _detector_key("mtcnn", RETRY_PARAMS)
    out = []
    for ph in photos:
        try:
            digest = file_digest(ph.path)
        except OSError:  # gone since the first look: keep what that look found
            out.append(ph)
            continue
        faces, desc, err = run(digest, key, RETRY_BORDER, recipe.descriptor_model.id, path=str(ph.path))
        out.append(PhotoFaces(ph.path, faces, ph.shape, err, desc, None, desc if desc is not None else ph.features))
    return out


def second_look(photos: list[PhotoFaces], recipe: Recipe, *, n_jobs: int | None = None,
                progress: bool = True) -> list[PhotoFaces]:
    """``photos`` with MTCNN's second look (:func:`detect_harder`, cached) at every readable photo
    where it found no face, when the recipe asks for it (``retry`` with MTCNN); else unchanged.
    Faces found on the second look have no :class:`~vision_lib.faces.FaceQuality`."""
    out = list(photos)
    if not (recipe.retry and recipe.detector == "mtcnn"):
        return out
    again = [k for k, ph in enumerate(out) if not ph.faces and not ph.error]
    for k, ph in zip(again, map_ordered(_retry_chunk, [out[k] for k in again], (recipe,), n_jobs=n_jobs,
                                        progress=progress and bool(again), desc="faces (second look)")):
        out[k] = ph
    return out


def _detector_key(detector: str, params) -> tuple:
    """Every setting that changes detections, defaults included, so that a changed default in a
    new release misses old cache entries (as the embedding path's key does)."""
    from .faces import _SPEED_ONLY, get_detector

    return get_detector(detector, **{k: v for k, v in dict(params).items() if k not in _SPEED_ONLY}).params()


def _wavelet_key(feature_params) -> tuple:
    """The wavelet recipe's parameters with :func:`~vision_lib.features.wavelet_features`' defaults filled in."""
    import inspect

    from .features import wavelet_features

    defaults = {name: p.default for name, p in inspect.signature(wavelet_features).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return tuple(sorted({**defaults, **dict(feature_params)}.items()))


def PhotoFeatures(path, faces: list[Face], features: np.ndarray, descriptors: np.ndarray | None = None,
                  error: str | None = None) -> PhotoFaces:
    """One photo's faces with a feature row per face: a :class:`~vision_lib.faces.PhotoFaces` (the one
    per-photo record; this is its older constructor, argument order kept)."""
    return PhotoFaces(Path(path), list(faces), None, error, descriptors, None, features)


def _wavelet_rows(image: np.ndarray, faces: Sequence[Face], params: dict) -> np.ndarray:
    from .faces import crop
    from .features import wavelet_features

    # The classic recipe uses the bare detector box (no margin).
    return np.asarray([wavelet_features(crop(image, f, margin=0.0), **params) for f in faces], dtype=np.float32)


def recipe_features(image: np.ndarray, faces: Sequence[Face], recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    desc = recipe.descriptor_model.describe(image, faces)
    if recipe.features == "embedding":
        return desc, desc
    if not faces:
        return np.zeros((0, 0), np.float32), desc
    return _wavelet_rows(image, faces, dict(recipe.feature_params)), desc


def _wavelet_photo_impl(digest: str, detector: str, detector_params: tuple, feature_params: tuple,
                        descriptor: str, path: str):
    try:
        image = load_image(path)
    except ImageError as exc:
        return [], None, None, exc.reason
    recipe = Recipe("wavelet", detector, detector_params, feature_params, descriptor=_descriptor_of(descriptor).name)
    faces = recipe_faces(image, recipe)
    feats, desc = recipe_features(image, faces, recipe)
    return faces, feats, desc, None


def _wavelet_chunk(paths: list[Path], recipe: Recipe) -> list[PhotoFaces]:
    from .cache import cached, file_digest

    run = cached(_wavelet_photo_impl)
    detector_key, feature_key = _detector_key(recipe.detector, recipe.detector_params), _wavelet_key(recipe.feature_params)
    out = []
    for p in paths:
        try:
            digest = file_digest(p)
        except OSError as exc:
            out.append(PhotoFeatures(p, [], np.zeros((0, 0), np.float32), None, cannot_read(exc, p)))
            continue
        faces, feats, desc, err = run(digest, recipe.detector, detector_key, feature_key, recipe.descriptor_model.id,
                                      path=str(p))
        out.append(PhotoFaces(p, faces, None, err, desc, None, feats if feats is not None else np.zeros((0, 0), np.float32)))
    return out


def extract(paths: Iterable[str | os.PathLike], recipe: Recipe = Recipe(), *, n_jobs: int | None = None,
            progress: bool = True) -> list[PhotoFaces]:
    """Faces and one feature row per face for every photo (parallel, disk-cached by file content).

    Unreadable files come back with ``error`` set instead of raising.
    """
    from .faces import detect_paths

    paths = [Path(p) for p in paths]
    if recipe.features == "embedding":
        found = detect_paths(paths, recipe.detector, n_jobs=n_jobs, progress=progress, descriptors=recipe.descriptor,
                             **dict(recipe.detector_params))
        dim = recipe.descriptor_model.dim
        for r in found:
            r.features = r.descriptors if r.descriptors is not None else np.zeros((0, dim), np.float32)
        return second_look(found, recipe, n_jobs=n_jobs, progress=progress)
    return map_ordered(_wavelet_chunk, paths, (recipe,), n_jobs=n_jobs, progress=progress,
                       desc=f"faces ({recipe.detector}) + wavelet")
