"""Deep descriptors: dlib's ResNet face descriptor (128-d) and MobileNetV2 ImageNet features.

dlib's models ship inside the ``face-recognition-models`` package; they load lazily, once per
process. Same-person descriptors are typically closer than 0.6 (Euclidean), as dlib documents.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from .faces import Face

#: dlib's documented same-person distance threshold for its ResNet descriptor.
DLIB_SAME_PERSON_DISTANCE = 0.6


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib
    import face_recognition_models as frm

    shape5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    resnet = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    return shape5, resnet


def dlib_shape(image: np.ndarray, face: Face, predictor=None):
    """dlib landmarks (5-point by default) for ``face``, located inside its box."""
    import dlib

    x, y, w, h = face.box
    predictor = predictor or _dlib_models()[0]
    return predictor(np.ascontiguousarray(image), dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))


def face_descriptors(image: np.ndarray, faces: Sequence[Face], jitters: int = 0) -> np.ndarray:
    """128-d dlib ResNet descriptors, one row per face (aligned by dlib's 5-point shape predictor)."""
    if not faces:
        return np.zeros((0, 128), dtype=np.float32)
    import dlib

    shape5, resnet = _dlib_models()
    image = np.ascontiguousarray(image)
    shapes = dlib.full_object_detections()
    for f in faces:
        shapes.append(dlib_shape(image, f, shape5))
    vecs = resnet.compute_face_descriptor(image, shapes, jitters)
    return np.asarray([np.asarray(v) for v in vecs], dtype=np.float32)
