"""One image: find its faces (:func:`detect`), align them on the canonical template (:data:`TEMPLATE`)."""
from __future__ import annotations

import numpy as np

from ..geometry import ARCFACE_112, KEYPOINTS, Face, crop, similarity_transform
from ..io import check_rgb
from ..models import get_detector
from ..models.detectors import HaarDetector, MTCNNDetector, YuNetDetector  # noqa: F401 (detect's annotation)


def detect(image: np.ndarray, detector: "str | None | HaarDetector | MTCNNDetector | YuNetDetector" = None,
           min_size: int = 0) -> list[Face]:
    """Faces in an RGB image, largest first, ignoring those with a side under ``min_size`` px.

    ``detector``: a name of :data:`~vision_lib.models.DETECTORS` (None: the default,
    :data:`~vision_lib.models.DEFAULT_DETECTOR`) or a detector object.

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

    ``points="eyes"`` uses the two eyes; ``"five"`` fits all five detector keypoints (least squares).
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


#: The public names of this module.
__all__ = ["detect", "TEMPLATE", "alignment_matrix", "align"]
