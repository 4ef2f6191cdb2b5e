"""A second opinion on a face: dlib's CNN face detector looks at the candidate, turned upright.

YuNet's extra looks (the photo turned, or seen larger) find the few faces its usual looks miss, but
alone they also find ears, hands and the backs of heads (issue 34, docs/models.md). A candidate of
such a look is kept only when a detector of another family, trained on other data, finds a face at
the same place: dlib's MMOD CNN (``mmod_human_face_detector.dat``, shipped in the
``face-recognition-models`` package, run by dlib, no TensorFlow), at its own default threshold.
It runs only on candidates, so it costs time only on photos where the usual looks found nothing.
"""
from __future__ import annotations

import functools

import numpy as np

from ..geometry import Face

__all__ = ["DlibCNNCheck", "upright_crop"]


def upright_crop(image: np.ndarray, face: Face, angle: float, face_side: int = 112,
                 context: float = 2.0) -> np.ndarray:
    """A square crop around ``face`` turned by ``angle`` degrees (counter-clockwise, as the look
    that found it turned the photo) so the face stands upright, scaled so the box's longer side is
    ``face_side`` px, ``context`` times that wide; outside the photo is black."""
    import cv2

    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    M = cv2.getRotationMatrix2D((cx, cy), angle, face_side / max(w, h, 1))
    n = round(face_side * context)
    M[0, 2] += n / 2 - cx
    M[1, 2] += n / 2 - cy
    return cv2.warpAffine(np.ascontiguousarray(image), M, (n, n), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)


class DlibCNNCheck:
    """``check(image, face, angle) -> bool``: dlib's CNN finds a face at the candidate's place.

    The candidate is cropped upright (:func:`upright_crop`); a dlib detection counts when its box
    holds the crop's centre and its size is within ``size_range`` times the candidate's (the same
    face, not a neighbour's or a whole body's).
    """

    name = "dlib_cnn"
    #: Candidate's side on the crop: above the ~80 px dlib's network finds without upsampling; 224
    #: made the same decisions on every candidate of bench_second_look.py at four times the time.
    face_side = 112
    context = 2.0
    size_range = (0.4, 2.5)

    @functools.cached_property
    def _model(self):
        import dlib
        import face_recognition_models as frm

        return dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())

    def __call__(self, image: np.ndarray, face: Face, angle: float = 0.0) -> bool:
        crop = upright_crop(image, face, angle, self.face_side, self.context)
        c = crop.shape[0] / 2
        lo, hi = (r * self.face_side for r in self.size_range)
        for d in self._model(crop, 0):
            r = d.rect
            if r.left() <= c <= r.right() and r.top() <= c <= r.bottom() and lo <= max(r.width(), r.height()) <= hi:
                return True
        return False
