"""FaceNet's network, Inception-ResNet-v1 (160x160 input, 128-d bottleneck), written once.

:func:`inception_resnet_v1` describes the network over a small set of operations; Keras layers
(:func:`build_inception_resnet_v1`, here) or ONNX nodes (:mod:`vision_lib.models.facenet_onnx`)
implement them, with the layer names of the ``.h5`` file, whose weights are read by name with h5py
(:func:`load_weights_by_name`), never by deserializing the file as a model.
"""
from __future__ import annotations

import numpy as np

__all__ = ["FACENET_SIZE", "BN_EPSILON", "BN_KEYS", "build_inception_resnet_v1", "inception_resnet_v1",
           "load_weights_by_name", "fold_batchnorm"]

FACENET_SIZE = 160
#: Epsilon of every BatchNormalization layer of the file (its stored configuration).
BN_EPSILON = 0.001


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
