"""How usable a face is: :class:`FaceQuality` (size, sharpness, frontalness, score), the ranking
:func:`best_faces`, and a photo's :func:`colourfulness`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..geometry import Face, crop
from ..io import check_rgb


#: Shorter box side (px) from which a face counts as large enough to rate well (notebook 01's curation):
#: :func:`best_faces` ranks smaller faces last; identity clustering builds its cores without them.
MIN_SIZE = 40


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
               min_size: int = MIN_SIZE) -> list[int]:
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


#: The public names of this module.
__all__ = ["FaceQuality", "frontalness", "sharpness", "quality", "best_faces", "colourfulness"]
