"""FaceNet (Inception-ResNet-v1, 160x160 input, 128-d) as a :class:`~vision_lib.models.Descriptor`.

The network is written once in :mod:`vision_lib.models.facenet_net`, with the layer names of the
``.h5`` file (Sandberg's ``facenet`` as ported to Keras), and run by ONNX Runtime
(:mod:`vision_lib.models.facenet_onnx`) or Keras; the weights are read by layer name with h5py.
The file is never deserialized as a model: its ``Lambda`` layers carry Python code that Keras would
run only with unsafe deserialization switched on.

Faces are aligned by their five keypoints onto :data:`FACENET_TEMPLATE` (a least-squares
similarity), prewhitened (per image: subtract the mean, divide by the standard deviation, as the
weights were trained), run in batches, and the output is L2-normalised: distances lie in [0, 2].
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..geometry import Face
from .chips import ChipDescriptor, template_chips, template_region
# The network itself (shared with the ONNX Runtime build), re-exported here.
from .facenet_net import (BN_EPSILON, BN_KEYS, FACENET_SIZE, build_inception_resnet_v1, fold_batchnorm,
                          inception_resnet_v1, load_weights_by_name)

__all__ = ["BN_EPSILON", "BN_KEYS", "FACENET_SIZE", "FACENET_TEMPLATE", "FaceNetDescriptor", "FaceNetFlipDescriptor", "build_inception_resnet_v1",
           "inception_resnet_v1", "fold_batchnorm", "load_weights_by_name", "prewhiten"]

#: Where the five keypoints sit in FaceNet's 160x160 input (:data:`~vision_lib.geometry.KEYPOINTS`
#: order, pixels). FaceNet was trained and evaluated on MTCNN boxes grown by a margin (16 px a side
#: at LFW's 250 px, about 14% of the box) and resized to 160x160: this is the median position of
#: MTCNN's keypoints in such crops over 288 LFW faces (3 photos per person, none of those
#: ``benchmarks/bench_models.py`` scores), made left/right symmetric. Aligning any detector's
#: keypoints onto it gives the network the crops it knows (see docs/models.md for the measurement).
FACENET_TEMPLATE = np.array([[50.8, 65.7], [109.2, 65.7], [80.0, 90.8], [54.4, 111.9], [105.6, 111.9]])
#: Box margin (share of the box per side) of FaceNet's crops, for faces without keypoints.
BOX_MARGIN = 0.14
#: What can run the network: see :class:`FaceNetDescriptor`.
RUNTIMES = ("auto", "onnxruntime", "keras")
#: Faces per network call (bigger batches amortise the call; memory stays small at 160x160).
BATCH = 32


def prewhiten(chips: np.ndarray) -> np.ndarray:
    """Per-image standardisation, as FaceNet's training did: ``(x - mean) / max(std, 1/sqrt(n))``, float32."""
    x = np.asarray(chips, np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    # A float32 floor: numpy's float64 scalar would promote the whole batch to float64 (NEP 50),
    # twice the memory and a cast in every network call.
    std = np.maximum(x.std(axis=axes, keepdims=True), np.float32(1.0 / np.sqrt(x[0].size)))
    return (x - mean) / std


@functools.lru_cache(maxsize=2)
def _network(path: str, threads: int | None):
    """The network with its weights, as one traced graph (built once per process and file)."""
    from .detectors import tensorflow

    tf = tensorflow(threads)
    # Batch normalisation folded into the convolutions: the same descriptors (max |difference| of
    # the L2-normalised outputs 4e-7 on 239 real faces) at about 6% less CPU (docs/models.md).
    model = build_inception_resnet_v1(fold_batchnorm=True)
    load_weights_by_name(model, path)
    return tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                       input_signature=[tf.TensorSpec((None, FACENET_SIZE, FACENET_SIZE, 3), tf.float32)])


def face_chips(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """``(n, 160, 160, 3)`` uint8 chips: five keypoints onto :data:`FACENET_TEMPLATE`; a face without
    keypoints (Haar) gets its box grown by :data:`BOX_MARGIN` per side, resized as the training crops were."""
    return template_chips(image, faces, FACENET_TEMPLATE, FACENET_SIZE, BOX_MARGIN)


class FaceNetDescriptor(ChipDescriptor):
    """FaceNet 128-d descriptors, L2-normalised, Euclidean; same person under :attr:`threshold`.

    Args:
        threads: threads of the runtime in this process (None: its default; pool workers 1).
        batch: faces per network call.
        runtime: ``"onnxruntime"`` (the same network without TensorFlow, which starts in a fraction
            of the time: :mod:`vision_lib.models.facenet_onnx`), ``"keras"`` (TensorFlow), or
            ``"auto"``: ONNX Runtime when installed, else Keras.
    """

    name = "facenet"
    version = "inception_resnet_v1/2024h5/mtcnn-crop-template/prewhiten/l2"
    dim = 128
    metric = "euclidean"
    #: Same-person distance (L2-normalised descriptors): the distance with the false-accept rate of
    #: dlib's documented 0.6 on the AT&T faces (1.117 measured at 2.3% false accepts, YuNet faces; a
    #: set no benchmark scores), rounded down. ``benchmarks/bench_models.py`` ("calibration")
    #: re-measures it.
    threshold = 1.1

    def __init__(self, threads: int | None = None, batch: int = BATCH, runtime: str = "auto"):
        super().__init__(threads, batch)
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown FaceNet runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
        self.runtime = runtime

    def chips(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return face_chips(image, faces)

    def region(self, faces: Sequence[Face]) -> tuple[float, float, float, float] | None:
        return template_region(faces, FACENET_TEMPLATE, FACENET_SIZE, BOX_MARGIN)

    def _run(self, net, chips: np.ndarray) -> np.ndarray:
        """Network outputs of one batch of chips (L2-normalised afterwards by :meth:`describe_chips`)."""
        return np.asarray(net(prewhiten(chips)))

    @property
    def id(self) -> str:
        return f"facenet/{self.version}"

    def _net(self):
        import importlib.util

        from .files import model_path

        path = str(model_path("facenet"))  # checked by SHA-256 before its first use
        if self.runtime == "onnxruntime" or (self.runtime == "auto" and importlib.util.find_spec("onnxruntime")):
            from .facenet_onnx import onnx_network

            return onnx_network(path, self.threads)
        return _network(path, self.threads)


class FaceNetFlipDescriptor(FaceNetDescriptor):
    """:class:`FaceNetDescriptor` with horizontal-flip test-time augmentation: the descriptor of a
    face is the sum of the L2-normalised FaceNet outputs of its aligned chip and of the chip's
    mirror image, L2-normalised. :data:`FACENET_TEMPLATE` is left/right symmetric, so the mirrored
    chip is the mirrored face aligned the same way. Two network passes per face (one call: the
    mirrors ride in the same batch); a face seen from either side lands nearer its other views.
    """

    name = "facenet_flip"
    version = FaceNetDescriptor.version + "/flip-sum"
    #: Same-person distance, re-derived by the AT&T procedure of :class:`FaceNetDescriptor`: the
    #: false-accept rate of dlib's 0.6 (2.3%) is reached at 1.116, rounded down (at 1.1: 1.7% false
    #: accepts, 99.1% true accepts); ``benchmarks/bench_models.py --descriptors facenet facenet_flip
    #: dlib --skip detectors descriptors facenet_variants pipeline`` re-measures it.
    threshold = 1.1

    def __init__(self, threads: int | None = None, batch: int = BATCH // 2, runtime: str = "auto"):
        super().__init__(threads, batch, runtime)  # batch: two network inputs per face

    def _run(self, net, chips: np.ndarray) -> np.ndarray:
        n = len(chips)
        both = np.asarray(net(prewhiten(np.concatenate([chips, chips[:, :, ::-1]]))), np.float64)
        both /= np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-12)
        return (both[:n] + both[n:]).astype(np.float32)
