"""dlib's ResNet face descriptor (128-d), as a :class:`~vision_lib.models.Descriptor` plug-in.

dlib's models ship inside the ``face-recognition-models`` package; they load lazily, once per
process. Same-person descriptors are typically closer than 0.6 (Euclidean), as dlib documents.
By default each face is described twice, aligned by the detector's five keypoints and by dlib's
5-point shape predictor, and the two descriptors are averaged (:func:`face_descriptors`;
``benchmarks/bench_classify.py`` and ``bench_cluster.py`` measure why).
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..geometry import Face, warp_to_template
from ..io import check_rgb

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


#: dlib's ResNet describes 150x150 face chips.
CHIP_SIZE = 150
#: Where dlib's own aligner (5-point shape predictor, ``get_face_chip`` with padding 0.25) puts
#: MTCNN's five keypoints (left eye, right eye, nose, mouth left, mouth right) in its 150x150 chip:
#: the median over 2,535 LFW faces, made left/right symmetric. Aligning on the detector's keypoints
#: with this template gives chips the ResNet knows, without the shape predictor's misses on boxes it
#: was not trained on (MTCNN boxes are taller than dlib's HOG boxes).
CHIP_KEYPOINTS = np.array([[47.2, 45.0], [101.4, 45.0], [74.3, 78.5], [50.4, 105.8], [98.2, 105.8]])
#: How faces are aligned before the ResNet: ``"keypoints"`` (the detector's five keypoints onto
#: :data:`CHIP_KEYPOINTS`), ``"shape"`` (dlib's 5-point shape predictor inside the box) or
#: ``"both"`` (the mean of the two descriptors). Faces without keypoints (Haar, crops) use ``"shape"``.
ALIGNMENTS = ("keypoints", "shape", "both")


def face_chips(image: np.ndarray, faces: Sequence[Face], align: str = "keypoints") -> list[np.ndarray]:
    """150x150 aligned face chips, one per face, as dlib's ResNet expects them.

    ``align="keypoints"`` maps the detector's five keypoints onto :data:`CHIP_KEYPOINTS` (least-squares
    similarity); ``"shape"`` uses dlib's 5-point shape predictor inside the face box.
    """
    import dlib

    if align not in ("keypoints", "shape"):
        raise ValueError(f"unknown alignment {align!r}; choose 'keypoints' or 'shape'")
    image = np.ascontiguousarray(image)
    chips = []
    for f in faces:
        chip = warp_to_template(image, f, CHIP_KEYPOINTS, CHIP_SIZE) if align == "keypoints" else None
        if chip is not None:
            chips.append(chip)
        else:
            chips.append(dlib.get_face_chip(image, dlib_shape(image, f), size=CHIP_SIZE, padding=0.25))
    return chips


def face_descriptors(image: np.ndarray, faces: Sequence[Face], jitters: int = 0, align: str | None = None,
                     flip: bool | None = None) -> np.ndarray:
    """128-d dlib ResNet descriptors, one row per face.

    Args:
        align: one of :data:`ALIGNMENTS` (default :data:`DEFAULT_ALIGN`).
        flip: also describe the mirrored chips and average (default :data:`DEFAULT_FLIP`).
        jitters: dlib's random jitters per chip (slow: each one is another ResNet pass).
    """
    align = DEFAULT_ALIGN if align is None else align
    flip = DEFAULT_FLIP if flip is None else flip
    if align not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {align!r}; choose from {ALIGNMENTS}")
    image = check_rgb(image)
    if not faces:
        return np.zeros((0, 128), dtype=np.float32)
    resnet = _dlib_models()[1]
    chips = [c for a in (("keypoints", "shape") if align == "both" else (align,)) for c in face_chips(image, faces, a)]
    if flip:
        chips += [np.ascontiguousarray(c[:, ::-1]) for c in chips]
    vecs = np.asarray([np.asarray(v) for v in resnet.compute_face_descriptor(chips, jitters)], dtype=np.float32)
    # Rows are [alignment][flip] blocks of len(faces): the descriptor is their mean.
    return vecs.reshape(-1, len(faces), 128).mean(axis=0)


#: The default alignment and mirroring of :func:`face_descriptors` (see ``bench_classify.py``).
DEFAULT_ALIGN = "both"
DEFAULT_FLIP = False


def descriptor_id(align: str | None = None, flip: bool | None = None) -> str:
    """Names the descriptor recipe, for caches and saved models (descriptors of different recipes
    must not be mixed)."""
    align = DEFAULT_ALIGN if align is None else align
    flip = DEFAULT_FLIP if flip is None else flip
    return f"dlib_resnet_v1/{align}{'+flip' if flip else ''}"


class DlibDescriptor:
    """dlib's ResNet (128-d, Euclidean, same person under 0.6) behind the descriptor interface."""

    name = "dlib"
    dim = 128
    metric = "euclidean"
    #: dlib's documented same-person distance.
    threshold = DLIB_SAME_PERSON_DISTANCE

    def __init__(self, align: str | None = None, flip: bool | None = None, threads: int | None = None):
        self.align = align
        self.flip = flip
        self.threads = threads  # dlib-bin runs on one thread: nothing to set

    @property
    def id(self) -> str:
        return descriptor_id(self.align, self.flip)

    def describe(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """``(len(faces), 128)`` float32 descriptors of ``faces`` in the RGB ``image``."""
        return face_descriptors(image, faces, align=self.align, flip=self.flip)


#: The public names of this module.
__all__ = ["DLIB_SAME_PERSON_DISTANCE", "dlib_shape", "CHIP_SIZE", "CHIP_KEYPOINTS", "ALIGNMENTS",
           "face_chips", "face_descriptors", "DEFAULT_ALIGN", "DEFAULT_FLIP", "descriptor_id",
           "DlibDescriptor"]
