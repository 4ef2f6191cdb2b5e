"""The models layer: face detectors and face descriptors as plug-ins, taken by name.

Below the stages (``io`` <- ``geometry`` <- ``models`` <- faces, features, classify, cluster, ...):
nothing here imports a stage. Two small interfaces:

* :class:`Detector`: ``detect(rgb uint8 image) -> list[Face]`` (box ``(x, y, w, h)``, score, five
  keypoints), largest first; ``params()`` lists what changes detections (cache keys).
* :class:`Descriptor`: ``describe(image, faces) -> (n, dim) float32``; says what it is: ``id``
  (name and version, for caches and saved bundles), ``dim``, ``metric`` and ``threshold`` (its
  same-person distance: stages take thresholds from here, never from one model's constant).

The registry: :func:`get_detector` / :func:`get_descriptor` by name, from :data:`DETECTORS` /
:data:`DESCRIPTORS` (the CLI takes its choices from these tuples). Model files that do not ship
with a dependency are found and checked by :mod:`vision_lib.models.files`.
"""
from __future__ import annotations

import functools
import os
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..geometry import Face

__all__ = ["DEFAULT_DESCRIPTOR", "DEFAULT_DETECTOR", "DESCRIPTORS", "DETECTORS", "DESCRIPTOR_ENV", "Descriptor", "KEY_ONLY",
           "Detector", "default_descriptor", "describe_many", "descriptor_for_id", "get_descriptor", "get_detector", "same_person_distance"]

#: Detector names, fastest modern first. ``yunet_checked``: YuNet with its checked looks (turned photos,
#: a candidate kept when dlib's CNN agrees) where nothing is found: a few more faces, slow on photos
#: without any (docs/models.md).
DETECTORS = ("yunet", "yunet_checked", "mtcnn", "haar")
#: Descriptor names. ``faceres``: a TF.js graph model from an npm package (models/human.py, files.py);
#: ``facenet+faceres``: both, L2-normalised halves concatenated (models/concat.py); ``arcface``: an
#: insightface-format ONNX model the user supplies (models/arcface.py; opt-in, never the default).
DESCRIPTORS = ("facenet", "facenet_flip", "dlib", "faceres", "facenet+faceres", "arcface")
#: Same-person distance of each concatenation, by FaceNet's AT&T procedure (docs/models.md):
#: facenet+faceres 1.056 at dlib's 2.3% false accepts, rounded down.
_CONCAT_THRESHOLDS = {"facenet+faceres": 1.05}
#: Defaults of every stage (chosen by measurement: docs/models.md).
DEFAULT_DETECTOR = "yunet"
DEFAULT_DESCRIPTOR = "facenet"
#: Environment variable that names the descriptor used where none is given (e.g. ``arcface``).
DESCRIPTOR_ENV = "VISION_LIB_DESCRIPTOR"


def default_descriptor() -> str:
    """The descriptor used where none is given: ``$VISION_LIB_DESCRIPTOR``, else :data:`DEFAULT_DESCRIPTOR`."""
    name = os.environ.get(DESCRIPTOR_ENV) or DEFAULT_DESCRIPTOR
    _check(f"descriptor (${DESCRIPTOR_ENV})", name, DESCRIPTORS)
    return name


@runtime_checkable
class Detector(Protocol):
    """Finds faces: ``detect(image)`` with ``image`` an ``(H, W, 3)`` RGB uint8 array."""

    name: str
    #: Score from which a detection counts as a clear face (the scale differs between detectors).
    confident_score: float

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def params(self) -> tuple: ...


@runtime_checkable
class Descriptor(Protocol):
    """Describes faces: ``describe(image, faces)`` is ``(len(faces), dim)`` float32."""

    name: str
    id: str
    dim: int
    metric: str
    threshold: float

    def describe(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray: ...


def _check(kind: str, name: str, names: tuple) -> None:
    if name not in names:
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(names)}")


#: Entries of a detector's ``params()`` (its cache key) that name what runs (YuNet's runtime, the
#: checked looks' second detector), not settings: left out when a detector is made again from a key.
KEY_ONLY = ("check", "runtime")


@functools.lru_cache(maxsize=16)
def get_detector(name: str | None = None, **params) -> Detector:
    """A detector by name (default :data:`DEFAULT_DETECTOR`), cached per process and parameters;
    its model loads on first use."""
    from . import detectors

    name = DEFAULT_DETECTOR if name is None else name
    _check("detector", name, DETECTORS)
    cls = {"yunet": detectors.YuNetDetector, "yunet_checked": detectors.YuNetCheckedDetector,
           "mtcnn": detectors.MTCNNDetector, "haar": detectors.HaarDetector}[name]
    return cls(**params)


def get_descriptor(name: str | None = None, **params) -> Descriptor:
    """A descriptor by name (default :func:`default_descriptor`), cached per process and
    parameters (``threads`` for pool workers); its model loads on first use."""
    return _descriptor(default_descriptor() if name is None else name, **params)


@functools.lru_cache(maxsize=16)
def _descriptor(name: str, **params) -> Descriptor:
    _check("descriptor", name, DESCRIPTORS)
    if name in ("facenet", "facenet_flip"):
        from .facenet import FaceNetDescriptor, FaceNetFlipDescriptor

        return (FaceNetDescriptor if name == "facenet" else FaceNetFlipDescriptor)(**params)
    if name == "arcface":
        from .arcface import ArcFaceDescriptor

        return ArcFaceDescriptor(**params)
    if name == "faceres":
        from .human import FaceResDescriptor

        return FaceResDescriptor(**params)
    if name in _CONCAT_THRESHOLDS:
        from .concat import ConcatDescriptor

        return ConcatDescriptor(name.split("+"), _CONCAT_THRESHOLDS[name], **params)
    from .dlib import DlibDescriptor

    return DlibDescriptor(**params)


def describe_many(descriptor: Descriptor, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> list[np.ndarray]:
    """``descriptor.describe`` of many ``(image, faces)`` pairs, in one batch when the descriptor can
    (a ``describe_many`` method), else one call each."""
    if hasattr(descriptor, "describe_many"):
        return descriptor.describe_many(items)
    return [descriptor.describe(image, faces) for image, faces in items]


def same_person_distance(name: str | None = None) -> float:
    """The same-person distance (``threshold``) of the named descriptor (None: the default)."""
    return float(get_descriptor(name).threshold)


def descriptor_for_id(descriptor_id: str) -> Descriptor | None:
    """The registered descriptor whose ``id`` is ``descriptor_id`` (a saved bundle's), else None."""
    for name in DESCRIPTORS:
        d = get_descriptor(name)
        if d.id == descriptor_id:
            return d
    return None
