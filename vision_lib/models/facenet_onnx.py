"""FaceNet under ONNX Runtime, without TensorFlow: the network of :func:`~vision_lib.models.facenet.
inception_resnet_v1` written as ONNX nodes, its weights read from the same checked ``.h5`` with h5py
(batch normalisation folded in, as the Keras descriptor does).

Nothing is converted or deserialized: the graph is built here from the architecture code and the
file's arrays (the file's ``Lambda`` code is never run), in about a second, once: the ``.onnx`` is
kept in :func:`~vision_lib.models.files.model_cache_dir` with its SHA-256, checked at every load. Importing
TensorFlow and tracing the Keras graph cost several seconds a process; ONNX Runtime starts in a
fraction of that and gives the same descriptors (docs/models.md has the measured difference).
"""
from __future__ import annotations

import functools
import os

import numpy as np

from . import files
from .facenet_net import BN_KEYS, FACENET_SIZE, fold_batchnorm, inception_resnet_v1

__all__ = ["GRAPH_VERSION", "OPSET", "build_onnx", "cached_onnx", "onnx_network"]

#: ONNX operator set of the graph (every node used exists unchanged since opset 13).
OPSET = 17


class _OnnxOps:
    """The operations of :func:`inception_resnet_v1` as ONNX nodes (NCHW inside; NHWC input, as Keras)."""

    def __init__(self, root):
        self.root, self.nodes, self.weights, self.used = root, [], [], set()

    def _node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def _const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    def _layer(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(kernel, bias)`` of a layer of the file, its BatchNormalization folded in when it has one."""
        group = self.root[name][name]
        kernel = group["kernel:0"][()]
        self.used.add(name)
        if "bias:0" in group:
            return kernel, group["bias:0"][()]
        bn = name + "_BatchNorm"
        self.used.add(bn)
        return fold_batchnorm(kernel, *(self.root[bn][bn][k][()] for k in BN_KEYS))

    def input(self, name: str):
        self.input_name = name
        return self._node("Transpose", [name], "nchw", perm=[0, 3, 1, 2]), 3

    def conv_bn(self, x, filters, kernel, strides=1, padding="same", activation="relu", use_bias=False, name=""):
        w, b = self._layer(name)  # Keras (kh, kw, in, out) -> ONNX (out, in, kh, kw)
        kh, kw = w.shape[:2]
        if w.shape[3] != filters:
            raise ValueError(f"{name}: the file has {w.shape[3]} filters, the network {filters}")
        # "same" only ever comes with stride 1 here: a symmetric padding of half the (odd) kernel.
        pads = [kh // 2, kw // 2, kh // 2, kw // 2] if padding == "same" else [0, 0, 0, 0]
        y = self._node("Conv", [x[0], self._const(name + "/W", w.transpose(3, 2, 0, 1)), self._const(name + "/B", b)],
                       name, kernel_shape=[kh, kw], strides=[strides, strides], pads=pads)
        return (y, filters) if activation is None else self.relu((y, filters), name + "_Activation")

    def channels(self, x) -> int:
        return x[1]

    def concat(self, xs, name: str):
        return self._node("Concat", [x[0] for x in xs], name, axis=1), sum(x[1] for x in xs)

    def scale(self, x, factor: float, name: str):
        return self._node("Mul", [x[0], self._const(name + "/factor", np.array(factor))], name), x[1]

    def add(self, a, b, name: str):
        return self._node("Add", [a[0], b[0]], name), a[1]

    def relu(self, x, name: str):
        return self._node("Relu", [x[0]], name), x[1]

    def max_pool(self, x, name: str):
        return self._node("MaxPool", [x[0]], name, kernel_shape=[3, 3], strides=[2, 2]), x[1]

    def head(self, x):
        from onnx import TensorProto, helper

        pooled = self._node("Flatten", [self._node("GlobalAveragePool", [x[0]], "AvgPool")], "AvgPool/flat")
        w, b = self._layer("Bottleneck")
        out = self._node("Add", [self._node("MatMul", [pooled, self._const("Bottleneck/W", w)], "Bottleneck/matmul"),
                                 self._const("Bottleneck/B", b)], "embeddings")
        graph = helper.make_graph(
            self.nodes, "inception_resnet_v1",
            [helper.make_tensor_value_info(self.input_name, TensorProto.FLOAT, [None, FACENET_SIZE, FACENET_SIZE, 3])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, w.shape[1]])], self.weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="vision_lib")
        model.ir_version = 8  # read by every ONNX Runtime since 1.10
        return model


def build_onnx(path: str):
    """The ONNX model (an ``onnx.ModelProto``) of FaceNet with the weights of the ``.h5`` at ``path``.

    Raises:
        ValueError: the file holds weighted layers the network does not use, or misses one.
    """
    import h5py

    with h5py.File(path, "r") as f:
        root = f["model_weights"]
        ops = _OnnxOps(root)
        try:
            model = inception_resnet_v1(ops)
        except KeyError as exc:
            raise ValueError(f"{path}: no weights for {exc}") from None
        in_file = {name for name in root if len(root[name].attrs.get("weight_names", [])) > 0}
    if in_file - ops.used:
        raise ValueError(f"{path}: weights of layers this network does not have: {sorted(in_file - ops.used)[:5]}")
    return model


#: Version of the graph :func:`build_onnx` writes: part of the cached file's name (a change rebuilds it).
GRAPH_VERSION = 1


def cached_onnx(path: str, sha256: str) -> str | bytes:
    """The ONNX model of the checked ``.h5`` at ``path`` (whose SHA-256 is ``sha256``): the file an
    earlier run kept (:func:`~vision_lib.models.files.model_cache_dir`, with its own SHA-256, checked at
    every load), else built now and kept for the next runs, already graph-optimized by ONNX Runtime
    (which halves the next sessions' start); as bytes when the folder cannot be written (every run
    then builds it, about a second)."""
    import hashlib

    import onnxruntime as ort

    from ..io import make_writable_folder, write_atomic

    target = files.model_cache_dir() / f"facenet-{sha256[:16]}-graph{GRAPH_VERSION}-ort{ort.__version__}.onnx"
    record = target.with_name(target.name + ".sha256")
    try:
        if target.is_file() and record.is_file() and files.sha256_ok(target, record.read_text().strip()):
            return str(target)
    except OSError:  # unreadable: built again below
        pass
    data = build_onnx(path).SerializeToString()
    part = target.with_name(f".{target.name}.part")
    try:
        make_writable_folder(target.parent)
        options = ort.SessionOptions()
        # "Extended", not "all": the saved graph must not depend on this CPU's vector units.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(part)
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        digest = hashlib.sha256(part.read_bytes()).hexdigest()
        os.replace(part, target)
        write_atomic(record, digest.encode())
    except OSError:
        part.unlink(missing_ok=True)
    return data


@functools.lru_cache(maxsize=2)
def onnx_network(path: str, threads: int | None):
    """A function ``(n, 160, 160, 3) float32 -> (n, 128)`` running FaceNet under ONNX Runtime
    (built once per process, file and thread count; ``threads`` None: ONNX Runtime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    model = cached_onnx(path, files.MODEL_FILES["facenet"].sha256)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]
