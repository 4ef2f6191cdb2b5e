"""Faces as geometry: the :class:`Face` record (box, score, five keypoints) and the transforms on it.

The bottom of the face layers (``io`` <- ``geometry`` <- ``models`` <- stages): no model, no file
access, only numpy (and OpenCV for nothing here). Boxes are ``(x, y, w, h)`` in pixels of the
original photo; keypoints are named by image side (``left_eye`` is the eye on the image's left).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ARCFACE_112", "KEYPOINTS", "Face", "clamp_face", "largest_first", "crop", "grown_box", "similarity_transform", "template_transform",
           "warp_to_template"]

#: The widely used five-point template of ArcFace/InsightFace, in pixels of its 112x112 crop
#: (eyes, nose, mouth corners in :data:`KEYPOINTS` order).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])

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


def clamp_face(face: Face, width: int, height: int) -> Face | None:
    """The part of the box inside the image (a face found partly in a border); None if nothing is."""
    x, y, w, h = face.box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    if (x0, y0, x1 - x0, y1 - y0) == face.box:
        return face
    return Face((x0, y0, x1 - x0, y1 - y0), face.score, face.keypoints)


def largest_first(faces: list[Face]) -> list[Face]:
    """Faces ordered largest box first (ties by position), the order every stage numbers them in."""
    return sorted(faces, key=lambda f: (-f.area, f.box))


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


def template_transform(face: Face, template: np.ndarray) -> np.ndarray | None:
    """The ``2x3`` least-squares similarity taking the face's five keypoints onto ``template``
    (pixels, ``(5, 2)``); None when the face lacks any of the five."""
    if not all(k in face.keypoints for k in KEYPOINTS):
        return None
    return similarity_transform(np.array([face.keypoints[k] for k in KEYPOINTS], float), template)


def warp_to_template(image: np.ndarray, face: Face, template: np.ndarray, size: int) -> np.ndarray | None:
    """``size`` x ``size`` chip with the face's five keypoints mapped onto ``template`` (pixels,
    ``(5, 2)``) by a least-squares similarity; None when the face lacks any of the five."""
    import cv2

    M = template_transform(face, template)
    if M is None:
        return None
    return cv2.warpAffine(np.ascontiguousarray(image), M, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def grown_box(face: Face, margin: float = 0.2) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the face box grown by ``margin`` (fraction of its size) on every side,
    not clamped (what :func:`crop` cuts, before the image's edges)."""
    x, y, w, h = face.box
    mx, my = int(round(w * margin)), int(round(h * margin))
    return x - mx, y - my, x + w + mx, y + h + my


def crop(image: np.ndarray, face: Face, margin: float = 0.2) -> np.ndarray:
    """The face box grown by ``margin`` (fraction of its size) on every side, clamped to the image."""
    H, W = image.shape[:2]
    x0, y0, x1, y1 = grown_box(face, margin)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {face.box} lies outside the {W}x{H} image")
    return image[y0:y1, x0:x1].copy()
