"""The TF.js graph-model runner on generated graphs: weights decoding (shards, quantization) and every
supported op against numpy; refusals of what it does not run."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from vision_lib.models.tfjs import OPS, UnsupportedOpError, decode_weights, load_graph_model


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _list_s(*texts: str) -> dict:
    return {"list": {"s": [base64.b64encode(t.encode()).decode() for t in texts]}}


def _ints(*values: int) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


class _Graph:
    """Builds a model.json + shards in a folder: nodes, and Const weights in the manifest."""

    def __init__(self):
        self.nodes, self.weights = [], []  # weights: (name, array, quantization or None)

    def placeholder(self, name, shape):
        self.nodes.append({"name": name, "op": "Placeholder",
                           "attr": {"dtype": {"type": "DT_FLOAT"},
                                    "shape": {"shape": {"dim": [{"size": str(s)} for s in shape]}}}})
        return name

    def const(self, name, value, quantization=None):
        self.nodes.append({"name": name, "op": "Const", "attr": {}})
        self.weights.append((name, np.asarray(value), quantization))
        return name

    def op(self, name, op, *inputs, **attr):
        self.nodes.append({"name": name, "op": op, "input": list(inputs), "attr": attr})
        return name

    def write(self, folder, shards=2):
        """The weights as bytes (quantized where asked), split over ``shards`` files."""
        entries, blobs = [], []
        for name, value, q in self.weights:
            dtype = "int32" if value.dtype.kind == "i" else "float32"
            entry = {"name": name, "shape": list(value.shape), "dtype": dtype}
            if q is None:
                blobs.append(value.astype("<i4" if dtype == "int32" else "<f4").tobytes())
            elif q == "float16":
                entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
                blobs.append(value.astype("<f2").tobytes())
            else:  # uint8 / uint16 with scale and min
                lo, hi = float(value.min()), float(value.max())
                levels = 255 if q == "uint8" else 65535
                scale = (hi - lo) / levels
                codes = np.round((value - lo) / scale).astype("u1" if q == "uint8" else "<u2")
                entry["quantization"] = {"dtype": q, "scale": scale, "min": lo, "original_dtype": "float32"}
                blobs.append(codes.tobytes())
            entries.append(entry)
        data = b"".join(blobs)
        cut = len(data) // shards
        paths = []
        for k in range(shards):
            paths.append(f"group1-shard{k + 1}of{shards}.bin")
            (folder / paths[-1]).write_bytes(data[k * cut:(k + 1) * cut if k < shards - 1 else len(data)])
        model = {"format": "graph-model", "modelTopology": {"node": self.nodes},
                 "weightsManifest": [{"paths": paths, "weights": entries}]}
        path = folder / "model.json"
        path.write_text(json.dumps(model))
        return path


def _conv_nhwc(x, w, stride, padding):
    """Plain numpy convolution (cross-correlation), NHWC x HWIO; SAME pads as TensorFlow does."""
    n, H, W, _ = x.shape
    kh, kw, _, co = w.shape
    if padding == "SAME":
        oh, ow = -(-H // stride), -(-W // stride)
        ph, pw = max((oh - 1) * stride + kh - H, 0), max((ow - 1) * stride + kw - W, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.zeros((n, oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


def _depthwise_nhwc(x, w, stride, padding):
    return np.concatenate([_conv_nhwc(x[..., c:c + 1], w[:, :, c:c + 1, :], stride, padding)
                           for c in range(x.shape[-1])], axis=-1)


def test_every_supported_op_matches_numpy(tmp_path):
    rng = np.random.default_rng(0)
    g = _Graph()
    x = g.placeholder("x", [-1, 6, 6, 2])
    w1, b1 = rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4)
    dw, bdw = rng.normal(size=(3, 3, 4, 1)), rng.normal(size=4)
    w2 = rng.normal(size=(2, 2, 4, 3))
    alpha = rng.uniform(0.1, 0.3, size=4)
    fc, bfc = rng.normal(size=(3, 5)), rng.normal(size=5)
    fc2 = rng.normal(size=(5, 2))
    conv = g.op("conv", "_FusedConv2D", x, g.const("w1", w1), g.const("b1", b1),
                fused_ops=_list_s("BiasAdd"), num_args={"i": "1"}, padding=_s("SAME"), strides=_ints(1, 1, 1, 1),
                data_format=_s("NHWC"))
    # PReLU as the converter writes it: relu(x) + alpha * (x - |x|) * 0.5
    relu = g.op("relu", "Relu", conv)
    half = g.op("half", "Mul", g.op("sub", "Sub", conv, g.op("abs", "Abs", conv)), g.const("alpha", alpha * 0.5))
    prelu = g.op("prelu", "Add", relu, half)
    dwc = g.op("dw", "FusedDepthwiseConv2dNative", prelu, g.const("dww", dw), g.const("dwb", bdw),
               fused_ops=_list_s("BiasAdd", "Relu"), num_args={"i": "1"}, padding=_s("SAME"),
               strides=_ints(1, 1, 1, 1))
    padded = g.op("pad", "Pad", dwc, g.const("pads", np.array([[0, 0], [1, 0], [0, 1], [0, 0]], np.int32)))
    conv2 = g.op("conv2", "Conv2D", padded, g.const("w2", w2), padding=_s("VALID"), strides=_ints(1, 2, 2, 1))
    clip = g.op("clip", "Maximum", g.op("min", "Minimum", conv2, g.const("six", np.float32(6.0))),
                g.const("lo", np.float32(-1.0)))
    dw2 = g.op("dw2", "DepthwiseConv2dNative", clip, g.const("dw2w", rng.normal(size=(1, 1, 3, 1))),
               padding=_s("VALID"), strides=_ints(1, 1, 1, 1))
    mean = g.op("mean", "Mean", dw2, g.const("axes", np.array([1, 2], np.int32)), keep_dims={"b": True})
    flat = g.op("squeeze", "Squeeze", mean, squeeze_dims=_ints(1, 2))
    dense = g.op("fc", "_FusedMatMul", flat, g.const("fcw", fc), g.const("fcb", bfc),
                 fused_ops=_list_s("BiasAdd", "Relu"), num_args={"i": "1"})
    sq = g.op("sq", "Sum", g.op("square", "Square", dense), g.const("ax1", np.array(1, np.int32)),
              keep_dims={"b": True})
    unit = g.op("unit", "Mul", dense, g.op("rsqrt", "Rsqrt", g.op("maxeps", "Maximum", sq, g.const("eps", np.float32(1e-10)))))
    logits = g.op("mm", "MatMul", unit, g.const("fc2", fc2))
    soft = g.op("soft", "Softmax", g.op("id", "Identity", logits))
    sig = g.op("sig", "Sigmoid", g.op("addv2", "AddV2", logits, g.const("one", np.float32(1.0))))
    reshaped = g.op("reshape", "Reshape", sig, g.const("shape", np.array([-1], np.int32)))
    model = load_graph_model(g.write(tmp_path))
    assert model.inputs == ["x"] and model.input_shape() == [-1, 6, 6, 2]
    assert {n["op"] for n in model.nodes.values()} - {"Const", "Placeholder"} <= set(OPS)

    xv = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
    got = [np.asarray(t) for t in model.function(["prelu", "dw", "conv2", "clip", "mean", "unit", "soft", "reshape"])(xv)]

    c = _conv_nhwc(xv.astype(np.float64), w1, 1, "SAME") + b1
    p = np.maximum(c, 0) + alpha * np.minimum(c, 0)
    d = np.maximum(_depthwise_nhwc(p, dw, 1, "SAME") + bdw, 0)
    c2 = _conv_nhwc(np.pad(d, ((0, 0), (1, 0), (0, 1), (0, 0))), w2, 2, "VALID")
    cl = np.clip(c2, -1, 6)
    m = (cl * model.weights["dw2w"][0, 0, :, 0]).mean(axis=(1, 2), keepdims=True)
    h = np.maximum(m[:, 0, 0] @ fc + bfc, 0)
    u = h / np.sqrt(np.maximum((h ** 2).sum(1, keepdims=True), 1e-10))
    lg = u @ fc2
    want = [p, d, c2, cl, m, u, np.exp(lg) / np.exp(lg).sum(1, keepdims=True), (1 / (1 + np.exp(-(lg + 1)))).ravel()]
    assert len(got) == len(want)  # one tensor per name asked for: zip() below would stop at the shorter
    for name, a, b in zip(["prelu", "dw", "conv2", "clip", "mean", "unit", "soft", "reshape"], got, want):
        assert a.shape == b.shape, name
        assert np.allclose(a, b, atol=1e-4), (name, np.abs(a - b).max())
    # One output name gives one tensor; only the nodes it needs run.
    assert np.asarray(model.function("relu")(xv)).shape == (2, 6, 6, 4)
    assert "mm" not in model.order(["unit"])


def test_weights_decode_from_shards_and_quantized_dtypes(tmp_path):
    rng = np.random.default_rng(3)
    values = {"f32": rng.normal(size=(3, 4)), "f16": rng.normal(size=(5,)), "u8": rng.uniform(-2, 3, size=(2, 7)),
              "u16": rng.uniform(-1, 1, size=(9,)), "i32": np.arange(6, dtype=np.int32).reshape(2, 3)}
    g = _Graph()
    g.placeholder("x", [-1, 1])
    for name, v in values.items():
        g.const(name, v, {"f16": "float16", "u8": "uint8", "u16": "uint16"}.get(name))
    model = load_graph_model(g.write(tmp_path, shards=3))
    w = model.weights
    assert w["f32"].dtype == np.float32 and np.allclose(w["f32"], values["f32"], atol=1e-6)
    assert np.allclose(w["f16"], values["f16"], atol=2e-3)
    assert np.abs(w["u8"] - values["u8"]).max() <= (5 / 255) / 2 + 1e-6
    assert np.abs(w["u16"] - values["u16"]).max() <= (2 / 65535) / 2 + 1e-6
    assert w["i32"].dtype == np.int32 and (w["i32"] == values["i32"]).all()
    assert {k: v.shape for k, v in w.items()} == {k: v.shape for k, v in values.items()}


def test_short_shards_and_unknown_dtypes_are_refused():
    manifest = [{"paths": ["a.bin"], "weights": [{"name": "w", "shape": [4], "dtype": "float32"}]}]
    with pytest.raises(ValueError, match="needs 16"):
        decode_weights(manifest, lambda p: b"\0" * 8)
    manifest[0]["weights"][0]["dtype"] = "string"
    with pytest.raises(ValueError, match="unsupported dtype"):
        decode_weights(manifest, lambda p: b"\0" * 16)


def test_unsupported_ops_are_named_when_the_graph_loads(tmp_path):
    g = _Graph()
    x = g.placeholder("x", [-1, 4])
    g.op("t", "Tanh", g.op("e", "Erf", x))
    with pytest.raises(UnsupportedOpError, match="Erf, Tanh"):
        load_graph_model(g.write(tmp_path, shards=1))


def test_unsupported_fused_variants_are_refused_when_the_graph_loads(tmp_path):
    g = _Graph()
    x = g.placeholder("x", [-1, 4, 4, 1])
    g.op("c", "_FusedConv2D", x, g.const("w", np.ones((1, 1, 1, 1))), g.const("b", np.zeros(1)),
         g.const("alpha", np.zeros(1)), fused_ops=_list_s("BiasAdd", "Prelu"), num_args={"i": "2"},
         padding=_s("SAME"), strides=_ints(1, 1, 1, 1))
    with pytest.raises(UnsupportedOpError, match="Prelu"):
        load_graph_model(g.write(tmp_path, shards=1))
