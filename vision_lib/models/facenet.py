"""FaceNet (Inception-ResNet-v1, 160x160 input, 128-d) as a :class:`~vision_lib.models.Descriptor`.

The network is built here in Keras code, layer by layer with the layer names of the ``.h5`` file
(Sandberg's ``facenet`` as ported to Keras); the weights are then read by layer name with h5py.
The file is never deserialized as a model: its ``Lambda`` layers carry Python code that Keras would
run only with unsafe deserialization switched on. The residual scaling those lambdas did is a
``Rescaling`` layer here.

Faces are aligned by their five keypoints onto :data:`FACENET_TEMPLATE` (a least-squares
similarity), prewhitened (per image: subtract the mean, divide by the standard deviation, as the
weights were trained), run in batches, and the output is L2-normalised: distances lie in [0, 2].
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..geometry import Face
from .chips import ChipDescriptor, template_chips

__all__ = ["FACENET_SIZE", "FACENET_TEMPLATE", "FaceNetDescriptor", "FaceNetFlipDescriptor", "build_inception_resnet_v1",
           "inception_resnet_v1", "fold_batchnorm", "load_weights_by_name", "prewhiten"]

FACENET_SIZE = 160
#: Where the five keypoints sit in FaceNet's 160x160 input (:data:`~vision_lib.geometry.KEYPOINTS`
#: order, pixels). FaceNet was trained and evaluated on MTCNN boxes grown by a margin (16 px a side
#: at LFW's 250 px, about 14% of the box) and resized to 160x160: this is the median position of
#: MTCNN's keypoints in such crops over 288 LFW faces (3 photos per person, none of those
#: ``benchmarks/bench_models.py`` scores), made left/right symmetric. Aligning any detector's
#: keypoints onto it gives the network the crops it knows (see docs/models.md for the measurement).
FACENET_TEMPLATE = np.array([[50.8, 65.7], [109.2, 65.7], [80.0, 90.8], [54.4, 111.9], [105.6, 111.9]])
#: Box margin (share of the box per side) of FaceNet's crops, for faces without keypoints.
BOX_MARGIN = 0.14
#: Epsilon of every BatchNormalization layer of the file (its stored configuration).
BN_EPSILON = 0.001
#: What can run the network: see :class:`FaceNetDescriptor`.
RUNTIMES = ("auto", "onnxruntime", "keras")
#: Faces per network call (bigger batches amortise the call; memory stays small at 160x160).
BATCH = 32


def build_inception_resnet_v1(fold_batchnorm: bool = False):
    """The Keras Inception-ResNet-v1 of FaceNet (no weights), output the 128-d bottleneck.

    ``fold_batchnorm``: build it without its BatchNormalization layers, every convolution (and the
    bottleneck) that had one getting a bias instead; :func:`load_weights_by_name` then folds each
    normalisation into the preceding kernel and bias (the same function at inference, fewer ops).
    """
    return inception_resnet_v1(_KerasOps(fold_batchnorm))


class _KerasOps:
    """The operations of :func:`inception_resnet_v1` as Keras layers (named as in the ``.h5``)."""

    def __init__(self, fold_batchnorm: bool):
        from keras import layers

        self.layers, self.fold = layers, fold_batchnorm

    def input(self, name: str):
        from keras import Input

        self.inputs = Input(shape=(FACENET_SIZE, FACENET_SIZE, 3), name=name)
        return self.inputs

    def conv_bn(self, x, filters, kernel, strides=1, padding="same", activation="relu", use_bias=False, name=""):
        x = self.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias or self.fold,
                               name=name)(x)
        if not use_bias and not self.fold:
            x = self.layers.BatchNormalization(axis=3, momentum=0.995, epsilon=BN_EPSILON, scale=False,
                                               name=name + "_BatchNorm")(x)
        return x if activation is None else self.relu(x, name + "_Activation")

    def channels(self, x) -> int:
        return int(x.shape[-1])

    def concat(self, xs, name: str):
        return self.layers.Concatenate(axis=3, name=name)(xs)

    def scale(self, x, factor: float, name: str):
        return self.layers.Rescaling(factor, name=name)(x)

    def add(self, a, b, name: str):
        return self.layers.Add(name=name)([a, b])

    def relu(self, x, name: str):
        return self.layers.Activation("relu", name=name)(x)

    def max_pool(self, x, name: str):
        return self.layers.MaxPooling2D(3, strides=2, padding="valid", name=name)(x)

    def head(self, x):
        from keras import Model

        x = self.layers.GlobalAveragePooling2D(name="AvgPool")(x)
        # (Dropout of the training graph: the identity at inference, left out.)
        x = self.layers.Dense(128, use_bias=self.fold, name="Bottleneck")(x)
        if not self.fold:
            x = self.layers.BatchNormalization(momentum=0.995, epsilon=BN_EPSILON, scale=False,
                                               name="Bottleneck_BatchNorm")(x)
        return Model(self.inputs, x, name="inception_resnet_v1")


def inception_resnet_v1(ops):
    """FaceNet's Inception-ResNet-v1, written once over a backend ``ops`` (Keras layers here, ONNX
    nodes in :mod:`vision_lib.models.facenet_onnx`), with the layer names of the ``.h5`` file."""
    conv_bn = ops.conv_bn

    def branch(prefix, idx, name):
        return f"{prefix}_Branch_{idx}_{name}"

    # Branch layouts per block type: (branch index, [(filters, kernel, layer name), ...]).
    blocks = {
        "Block35": [[(32, 1, "Conv2d_1x1")],
                    [(32, 1, "Conv2d_0a_1x1"), (32, 3, "Conv2d_0b_3x3")],
                    [(32, 1, "Conv2d_0a_1x1"), (32, 3, "Conv2d_0b_3x3"), (32, 3, "Conv2d_0c_3x3")]],
        "Block17": [[(128, 1, "Conv2d_1x1")],
                    [(128, 1, "Conv2d_0a_1x1"), (128, (1, 7), "Conv2d_0b_1x7"), (128, (7, 1), "Conv2d_0c_7x1")]],
        "Block8": [[(192, 1, "Conv2d_1x1")],
                   [(192, 1, "Conv2d_0a_1x1"), (192, (1, 3), "Conv2d_0b_1x3"), (192, (3, 1), "Conv2d_0c_3x1")]],
    }

    def residual(x, kind, idx, scale, activation="relu"):
        prefix = f"{kind}_{idx}"
        outs = []
        for b, convs in enumerate(blocks[kind]):
            y = x
            for filters, kernel, name in convs:
                y = conv_bn(y, filters, kernel, name=branch(prefix, b, name))
            outs.append(y)
        mixed = ops.concat(outs, f"{prefix}_Concatenate")
        up = conv_bn(mixed, ops.channels(x), 1, activation=None, use_bias=True, name=f"{prefix}_Conv2d_1x1")
        x = ops.add(x, ops.scale(up, scale, f"{prefix}_Scale"), f"{prefix}_Add")
        return x if activation is None else ops.relu(x, f"{prefix}_Activation")

    x = ops.input("input_1")
    x = conv_bn(x, 32, 3, strides=2, padding="valid", name="Conv2d_1a_3x3")
    x = conv_bn(x, 32, 3, padding="valid", name="Conv2d_2a_3x3")
    x = conv_bn(x, 64, 3, name="Conv2d_2b_3x3")
    x = ops.max_pool(x, "MaxPool_3a_3x3")
    x = conv_bn(x, 80, 1, padding="valid", name="Conv2d_3b_1x1")
    x = conv_bn(x, 192, 3, padding="valid", name="Conv2d_4a_3x3")
    x = conv_bn(x, 256, 3, strides=2, padding="valid", name="Conv2d_4b_3x3")
    for i in range(1, 6):
        x = residual(x, "Block35", i, 0.17)
    p = "Mixed_6a"
    b0 = conv_bn(x, 384, 3, strides=2, padding="valid", name=branch(p, 0, "Conv2d_1a_3x3"))
    b1 = conv_bn(x, 192, 1, name=branch(p, 1, "Conv2d_0a_1x1"))
    b1 = conv_bn(b1, 192, 3, name=branch(p, 1, "Conv2d_0b_3x3"))
    b1 = conv_bn(b1, 256, 3, strides=2, padding="valid", name=branch(p, 1, "Conv2d_1a_3x3"))
    b2 = ops.max_pool(x, branch(p, 2, "MaxPool_1a_3x3"))
    x = ops.concat([b0, b1, b2], p)
    for i in range(1, 11):
        x = residual(x, "Block17", i, 0.1)
    p = "Mixed_7a"
    b0 = conv_bn(x, 256, 1, name=branch(p, 0, "Conv2d_0a_1x1"))
    b0 = conv_bn(b0, 384, 3, strides=2, padding="valid", name=branch(p, 0, "Conv2d_1a_3x3"))
    b1 = conv_bn(x, 256, 1, name=branch(p, 1, "Conv2d_0a_1x1"))
    b1 = conv_bn(b1, 256, 3, strides=2, padding="valid", name=branch(p, 1, "Conv2d_1a_3x3"))
    b2 = conv_bn(x, 256, 1, name=branch(p, 2, "Conv2d_0a_1x1"))
    b2 = conv_bn(b2, 256, 3, name=branch(p, 2, "Conv2d_0b_3x3"))
    b2 = conv_bn(b2, 256, 3, strides=2, padding="valid", name=branch(p, 2, "Conv2d_1a_3x3"))
    b3 = ops.max_pool(x, branch(p, 3, "MaxPool_1a_3x3"))
    x = ops.concat([b0, b1, b2, b3], p)
    for i in range(1, 6):
        x = residual(x, "Block8", i, 0.2)
    x = residual(x, "Block8", 6, 1.0, activation=None)
    return ops.head(x)


def load_weights_by_name(model, path: str) -> None:
    """Set every weight of ``model`` from the Keras-2 ``.h5`` at ``path``, matched by layer and
    variable name (``model_weights/<layer>/<layer>/<variable>:0``), shapes checked.

    A layer of the model with a bias the file's layer lacks, followed in the file by a
    ``<layer>_BatchNorm`` layer the model does not have (a network built with
    ``fold_batchnorm=True``), gets that normalisation folded in: with ``s = 1 / sqrt(var + eps)``
    per output channel, ``kernel * s`` and ``bias = beta - mean * s`` (the BN layers have no scale).

    Raises:
        ValueError: a weight of the model is missing from the file or has another shape, or the
            file holds weighted layers the model does not have (a different network).
    """
    import h5py

    def read(layer_name: str, key: str, shape=None):
        group = root[layer_name][layer_name]
        if key not in group:
            raise ValueError(f"{path}: layer {layer_name!r} has no {key!r}")
        value = group[key][()]
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(f"{path}: {layer_name}/{key} has shape {value.shape}, the network {tuple(shape)}")
        return value

    with h5py.File(path, "r") as f:
        root = f["model_weights"]
        in_file = {name for name in root if len(root[name].attrs.get("weight_names", [])) > 0}
        ours = {layer.name for layer in model.layers}
        used = set()
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in root:
                raise ValueError(f"{path}: no weights for layer {layer.name!r}")
            keys = [w.name.split("/")[-1].split(":")[0] + ":0" for w in layer.weights]
            bn = layer.name + "_BatchNorm"
            if keys == ["kernel:0", "bias:0"] and "bias:0" not in root[layer.name][layer.name] \
                    and bn in in_file and bn not in ours:
                kernel = read(layer.name, "kernel:0", layer.weights[0].shape)
                n = kernel.shape[-1]
                values = fold_batchnorm(kernel, *(read(bn, k, (n,)) for k in BN_KEYS))
                used.add(bn)
            else:
                values = [read(layer.name, key, w.shape) for key, w in zip(keys, layer.weights)]
            layer.set_weights(values)
            used.add(layer.name)
        extra = in_file - used
        if extra:
            raise ValueError(f"{path}: weights of layers this network does not have: {sorted(extra)[:5]}")


#: The variables of the file's BatchNormalization layers (``scale=False``: no gamma).
BN_KEYS = ("beta:0", "moving_mean:0", "moving_variance:0")


def fold_batchnorm(kernel: np.ndarray, beta, mean, var) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel, bias)`` float32 of a layer followed by a BatchNormalization without scale: with
    ``s = 1 / sqrt(var + eps)`` per output channel (the last axis), ``kernel * s`` and ``beta - mean * s``."""
    s = 1.0 / np.sqrt(np.asarray(var, np.float64) + BN_EPSILON)
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * s
    return (np.asarray(kernel, np.float64) * s).astype(np.float32), bias.astype(np.float32)


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
