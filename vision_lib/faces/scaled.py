"""Faces of camera-size photos without decoding every pixel: a JPEG is decoded at a reduced scale
for the detector (which works at a few hundred pixels anyway; :func:`detector_input` shrinks that
decode to the detector's side), and its faces are described and rated from a decode where each
still has :data:`FACE_SIDE` pixels: the detector's decode when that is enough (one decode), else a
second one at the scale that gives it, which stops at the last row of the file the faces need
(:func:`~vision_lib.io.load_image_reduced`'s ``region``).

Faces are always returned in the whole photo's pixels. Photos that are not JPEGs, or too small to
reduce, are decoded once, whole, as before (docs/scale.md has the measurements).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

import numpy as np

from ..geometry import Face, clamp_face
from ..io import Decoded, load_image_reduced, resize_max_side
from .rating import FaceQuality, quality

#: Shorter box side (px) a face keeps in the image it is described and rated from, so that no chip
#: pixel is interpolated from less than one photo pixel: FaceNet's 160 px chip spans about 1.3 YuNet
#: boxes (median 1.28 over 50 LFW faces), dlib's 150 px chip 1.5 boxes, so a box of 125 px feeds
#: either at full resolution. The tolerance against a full decode is measured in docs/scale.md.
FACE_SIDE = 125


def detection_side(detector) -> int | None:
    """The longest side the detector ever looks at (its ``max_side``, second and checked looks);
    None when it does not say (a plug-in without ``max_side``): the photo is then decoded whole."""
    side = getattr(detector, "max_side", None)
    return None if side is None else max([int(side), *(int(s) for s in getattr(detector, "second_look", ())),
                                          *(int(s) for s, _ in getattr(detector, "checked_looks", ()))])


def _decode_for(path: str | os.PathLike, side: int | None) -> Decoded:
    # A side of None decodes the whole photo.
    return load_image_reduced(path, side if side is not None else 1 << 30)


def detect_photo(path: str | os.PathLike, detector) -> tuple[list[Face], Decoded]:
    """The detector's faces in the photo file (in the whole photo's pixels), and the reduced
    decode they were found in. Raises :class:`~vision_lib.io.ImageError` as ``load_image`` does."""
    view = detection_view(path, detector)
    return detect_in(view, detector), view


def detection_view(path: str | os.PathLike, detector) -> Decoded:
    """The photo decoded only as far as the detector looks (:func:`detection_side`)."""
    return _decode_for(path, detection_side(detector))


def detector_input(view: Decoded, detector) -> tuple[np.ndarray, float]:
    """``(image, scale)``: what the detector is given for the decode ``view``, and its scale against
    the whole photo. A reduced decode (a JPEG decoded at 1/2, 1/4 or 1/8) is shrunk to
    :func:`detection_side` here, bilinearly: the decoder's reduction has already averaged its pixels
    (each 8x8 block's lowest frequencies only), and OpenCV's pixel-area resize the detector would
    use costs six times as much (3.5 ms against 0.6 ms from 1000 to 640 px, a fifth of YuNet's
    time) for as many faces found (docs/scale.md). Whole decodes go to the detector as they are."""
    side = detection_side(detector)
    if view.scale == 1.0 or side is None:
        return view.image, view.scale
    image, k = resize_max_side(view.image, side, smooth=False)
    return image, view.scale * k


def detect_in(view: Decoded, detector) -> list[Face]:
    """The detector's faces in the decode ``view``, in the whole photo's pixels."""
    image, scale = detector_input(view, detector)
    faces = detector.detect(image)
    if scale != 1.0:
        h, w = view.shape
        faces = [f for f in (clamp_face(f.scaled(1 / scale), w, h) for f in faces) if f is not None]
    return faces


def face_view(path: str | os.PathLike, faces: Sequence[Face], view: Decoded | None = None,
              shape: tuple[int, int] | None = None, descriptor=None) -> Decoded:
    """The decode to describe and rate ``faces`` from: ``view`` when every face keeps
    :data:`FACE_SIDE` px in it, else the photo decoded at the smallest scale where they do
    (``shape``, the photo's ``(H, W)``, tells that scale when there is no ``view``; without
    either the photo is decoded whole), a JPEG only down to the rows its faces need
    (:func:`reads`: ``descriptor``'s chips when it says where they lie)."""
    need = min(1.0, FACE_SIDE / max(1, min(f.size for f in faces))) if faces else 0.0
    if view is not None and view.scale >= need:
        return view
    shape = view.shape if view is not None else shape
    side = 1 << 30 if shape is None else math.ceil(max(shape) * need)
    return load_image_reduced(path, side, region=reads(faces, descriptor, need))


def reads(faces: Sequence[Face], descriptor=None, scale: float = 1.0) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)``, whole-photo pixels: the part of the photo that rating ``faces`` (their
    boxes) and describing them with ``descriptor`` (its ``region``: where its chips lie) read in a
    decode at ``scale``, padded by the pixels bilinear sampling reads beyond it. Without a
    descriptor that says (None, or no ``region``): each box with its own size again on every side
    (chips span 1.3-1.5 boxes, turned by the face's tilt)."""
    if not faces:
        return None
    chips = getattr(descriptor, "region", None)
    chips = chips(faces) if chips is not None else None
    if chips is None:
        return (min(f.box[0] - f.box[2] for f in faces), min(f.box[1] - f.box[3] for f in faces),
                max(f.box[0] + 2 * f.box[2] for f in faces), max(f.box[1] + 2 * f.box[3] for f in faces))
    # Two decoded pixels (bilinear's neighbour, and the rounding of a box scaled into the decode).
    pad = 2 / max(scale, 1 / 8)
    return (math.floor(min(chips[0], *(f.box[0] for f in faces)) - pad),
            math.floor(min(chips[1], *(f.box[1] for f in faces)) - pad),
            math.ceil(max(chips[2], *(f.box[0] + f.box[2] for f in faces)) + pad),
            math.ceil(max(chips[3], *(f.box[1] + f.box[3] for f in faces)) + pad))


def in_view(faces: Sequence[Face], view: Decoded) -> list[Face]:
    """``faces`` (whole-photo pixels) in the pixels of ``view``."""
    return list(faces) if view.scale == 1.0 else [f.scaled(view.scale) for f in faces]


def qualities_in(view: Decoded, faces: Sequence[Face]) -> list[FaceQuality]:
    """:func:`~vision_lib.faces.quality` of each face, measured in ``view``; sizes in photo pixels."""
    return [dataclasses.replace(quality(view.image, g), size=f.size) for f, g in zip(faces, in_view(faces, view))]


def describe_in(descriptor, view: Decoded, faces: Sequence[Face]) -> np.ndarray:
    """``descriptor.describe`` of ``faces`` (photo pixels) from the decode ``view``."""
    return descriptor.describe(view.image, in_view(faces, view))


__all__ = ["FACE_SIDE", "detection_side", "detect_photo", "detection_view", "detector_input", "detect_in", "face_view", "reads", "in_view", "qualities_in", "describe_in"]
