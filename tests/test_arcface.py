"""The opt-in ``arcface`` descriptor on a small ONNX model generated here (the real weights cannot be
had on CI): alignment, batching, normalisation, caching, file checks, and the pipeline with it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vision_lib.geometry import ARCFACE_112, KEYPOINTS, Face


def make_model(path: Path, seed: int = 0, batch: int | str = "N", subtract: bool = False) -> Path:
    """An insightface-format recognition model: (batch, 3, 112, 112) float -> (batch, 512).

    A strided convolution and a dense layer of random weights (seeded): different chips give
    different outputs, and two seeds give two different files. ``subtract``: begin with Sub and
    Mul nodes (a graph that normalises its own input, as some insightface exports do)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w_conv = rng.normal(size=(8, 3, 8, 8)).astype(np.float32)
    w_fc = rng.normal(size=(8 * 14 * 14, 512)).astype(np.float32)
    inits = [numpy_helper.from_array(w_conv, "w_conv"), numpy_helper.from_array(w_fc, "w_fc")]
    nodes, x = [], "data"
    if subtract:
        inits += [numpy_helper.from_array(np.float32(127.5).reshape(1), "mean"),
                  numpy_helper.from_array(np.float32(1 / 127.5).reshape(1), "scale")]
        nodes += [helper.make_node("Sub", ["data", "mean"], ["centred"], name="Sub_0"),
                  helper.make_node("Mul", ["centred", "scale"], ["scaled"], name="Mul_1")]
        x = "scaled"
    nodes += [helper.make_node("Conv", [x, "w_conv"], ["conv"], strides=[8, 8], name="Conv_2"),
              helper.make_node("Flatten", ["conv"], ["flat"], axis=1, name="Flatten_3"),
              helper.make_node("MatMul", ["flat", "w_fc"], ["fc1"], name="MatMul_4")]
    graph = helper.make_graph(nodes, "arcface_test",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 112, 112])],
                              [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [batch, 512])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def arcface_env(tmp_path, monkeypatch):
    """A models folder holding a generated ``w600k_r50.onnx``-convention file under a test name (the
    real name has a published hash, which a generated file must fail), and a fresh hash book."""
    from vision_lib.models import arcface

    folder = tmp_path / "models"
    folder.mkdir()
    make_model(folder / "test_arcface.onnx")
    monkeypatch.setenv("VISION_LIB_MODELS", str(folder))
    monkeypatch.setenv("VISION_LIB_ARCFACE_MODEL", "test_arcface.onnx")
    monkeypatch.setenv("VISION_LIB_CACHE", str(tmp_path / "cache"))
    arcface._session.cache_clear()
    yield folder
    arcface._session.cache_clear()


def _face_with_keypoints(points: np.ndarray) -> Face:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    box = (int(x0) - 10, int(y0) - 15, int(x1 - x0) + 20, int(y1 - y0) + 25)
    return Face(box, 0.99, {k: (float(p[0]), float(p[1])) for k, p in zip(KEYPOINTS, points)})


def test_alignment_puts_keypoints_on_the_template():
    from vision_lib.models.arcface import face_chips

    # A face twice the template's size, shifted: each keypoint marked by a bright square.
    points = ARCFACE_112 * 2.0 + [40, 30]
    image = np.zeros((300, 320, 3), np.uint8)
    for x, y in points:
        image[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    chip = face_chips(image, [_face_with_keypoints(points)])
    assert chip.shape == (1, 112, 112, 3) and chip.dtype == np.uint8
    for x, y in ARCFACE_112:
        assert chip[0, int(round(y)), int(round(x))].mean() > 100, (x, y)
    assert chip[0, 5, 5].mean() == 0  # and nothing bright elsewhere
    # A face without keypoints (Haar) gets a resized box instead of failing.
    plain = face_chips(image, [Face((40, 30, 200, 200), 1.0, {})])
    assert plain.shape == (1, 112, 112, 3)


def test_batching_normalisation_and_caching(arcface_env):
    from vision_lib.models import arcface, get_descriptor

    d = get_descriptor("arcface")
    assert d is get_descriptor("arcface")  # one instance per process
    assert d.dim == 512 and d.metric == "euclidean"
    rng = np.random.default_rng(1)
    chips = rng.integers(0, 256, size=(5, 112, 112, 3), dtype=np.uint8)
    d.batch = 2
    batched = d.describe_chips(chips)
    one = np.concatenate([d.describe_chips(chips[i:i + 1]) for i in range(5)])
    assert batched.shape == (5, 512) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, one, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(batched[0] - batched[1]) > 0.01  # different chips, different descriptors
    assert arcface._session.cache_info().misses == 1  # the session was built once
    # The input is (x - 127.5) / 127.5, NCHW: the network sees the same thing done by hand.
    import onnxruntime as ort

    sess = ort.InferenceSession(str(arcface_env / "test_arcface.onnx"), providers=["CPUExecutionProvider"])
    x = ((chips[:1].astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
    raw = sess.run(None, {"data": x})[0][0]
    np.testing.assert_allclose(batched[0], raw / np.linalg.norm(raw), rtol=1e-4, atol=1e-5)
    d.batch = 32


def test_input_normalisation_follows_the_graph(tmp_path):
    from vision_lib.models.arcface import input_normalisation

    assert input_normalisation(str(make_model(tmp_path / "a.onnx"))) == (127.5, 127.5)
    assert input_normalisation(str(make_model(tmp_path / "b.onnx", subtract=True))) == (0.0, 1.0)


def test_fixed_batch_model(arcface_env):
    from vision_lib.models import arcface

    make_model(arcface_env / "one.onnx", batch=1)
    import os

    os.environ["VISION_LIB_ARCFACE_MODEL"] = "one.onnx"  # monkeypatch restores the fixture's value
    d = arcface.ArcFaceDescriptor()
    chips = np.random.default_rng(2).integers(0, 256, size=(3, 112, 112, 3), dtype=np.uint8)
    out = d.describe_chips(chips)
    assert out.shape == (3, 512) and d.batch == 1


def test_changed_file_is_refused(arcface_env):
    from vision_lib.models import arcface
    from vision_lib.models.files import ModelFileError

    first = arcface.arcface_path()[1]
    book = json.loads((Path(arcface_env.parent / "cache") / "model_hashes.json").read_text())
    assert book["test_arcface.onnx"]["sha256"] == first
    assert arcface.arcface_path()[1] == first  # the same file again is fine
    make_model(arcface_env / "test_arcface.onnx", seed=7)  # another model under the same name
    with pytest.raises(ModelFileError, match="not the test_arcface.onnx used before"):
        arcface.arcface_path()


def test_published_hash_is_enforced(arcface_env, monkeypatch):
    from vision_lib.models import arcface
    from vision_lib.models.files import ModelFileError

    (arcface_env / "w600k_r50.onnx").write_bytes((arcface_env / "test_arcface.onnx").read_bytes())
    monkeypatch.setenv("VISION_LIB_ARCFACE_MODEL", "w600k_r50.onnx")
    with pytest.raises(ModelFileError, match="is not insightface's w600k_r50.onnx"):
        arcface.arcface_path()


def test_missing_file_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    from vision_lib.cli import main
    from vision_lib.models import arcface
    from vision_lib.models.files import ModelFileError

    monkeypatch.setenv("VISION_LIB_MODELS", str(tmp_path))
    monkeypatch.delenv("VISION_LIB_ARCFACE_MODEL", raising=False)
    with pytest.raises(ModelFileError, match="vision-lib models fetch arcface --accept-license"):
        arcface.arcface_path()
    photos = tmp_path / "in"
    photos.mkdir()
    import cv2

    cv2.imwrite(str(photos / "a.png"), np.full((64, 64, 3), 128, np.uint8))
    assert main(["features", str(photos), "--out", str(tmp_path / "f.npz"), "--descriptor", "arcface",
                 "--quiet", "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert "w600k_r50.onnx not found" in err and "--accept-license" in err


def test_fetch_needs_the_licence_and_says_why_it_failed(tmp_path, capsys):
    from vision_lib.cli import main
    from vision_lib.models import arcface

    assert main(["models", "fetch", "arcface", "--dest", str(tmp_path)]) == 2
    assert "non-commercial research" in capsys.readouterr().err
    # No network here (or a refused address): a clear message, exit 2, no half file left.
    with pytest.raises(arcface.ModelFileError, match="could not download"):
        arcface.fetch_arcface(True, tmp_path, url="http://127.0.0.1:9/buffalo_l.zip")
    assert not list(tmp_path.iterdir())


def test_never_chosen_silently(monkeypatch):
    from vision_lib.models import DEFAULT_DESCRIPTOR, default_descriptor

    monkeypatch.delenv("VISION_LIB_DESCRIPTOR", raising=False)
    assert DEFAULT_DESCRIPTOR == "facenet" and default_descriptor() == "facenet"
    monkeypatch.setenv("VISION_LIB_DESCRIPTOR", "arcface")
    assert default_descriptor() == "arcface"
    monkeypatch.setenv("VISION_LIB_DESCRIPTOR", "nope")
    with pytest.raises(ValueError, match="VISION_LIB_DESCRIPTOR"):
        default_descriptor()


def test_pipeline_runs_with_arcface(arcface_env, lfw_dir, tmp_path, capsys):
    """features, train, predict and cluster with ``--descriptor arcface`` on real photos (the
    generated network's descriptors mean nothing: this checks the plumbing, not the accuracy)."""
    from vision_lib.cli import main

    src = tmp_path / "people"
    for person in sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())[:3]:
        (src / person).mkdir(parents=True)
        for photo in sorted((lfw_dir / person).iterdir())[:6]:
            (src / person / photo.name).write_bytes(photo.read_bytes())
    common = ["--quiet", "--jobs", "1"]
    assert main(["features", str(src), "--out", str(tmp_path / "f.npz"), "--descriptor", "arcface", *common]) == 0
    from vision_lib.tables import FaceTable

    table = FaceTable.load(tmp_path / "f.npz")
    assert table.X.shape[1] == 512 and table.settings["descriptor"].startswith("arcface/test_arcface.onnx/")
    assert main(["train", str(src), "--out", str(tmp_path / "m.pkl"), "--descriptor", "arcface", *common]) == 0
    assert "open set" in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "m.pkl"), str(src), "--json", "--jobs", "1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 18 and all("faces" in x for x in lines)
    assert main(["cluster", str(src), "--out", str(tmp_path / "c"), "--descriptor", "arcface", *common]) == 0
    assert (tmp_path / "c" / "clusters.csv").is_file()
    # The web app serves the arcface model as any other.
    import io

    from vision_lib.classify import load_model
    from vision_lib.serve import create_app

    model = load_model(tmp_path / "m.pkl")
    assert model.recipe.descriptor == "arcface"
    photo = next(src.rglob("*.jpg"))
    r = create_app(model).test_client().post("/api/classify", data={"file": (io.BytesIO(photo.read_bytes()), "a.jpg")},
                                             content_type="multipart/form-data")
    assert r.status_code == 200 and r.json["faces"] and "answer" in r.json


def test_collection_with_arcface(arcface_env, lfw_dir, tmp_path, capsys, monkeypatch):
    """index / people / search with ``--descriptor arcface``; a collection of another descriptor, or of
    another arcface file, is refused and left as it was (the generated network's descriptors mean
    nothing: plumbing only)."""
    import gc
    import hashlib

    from vision_lib.cli import main
    from vision_lib.collection import Collection
    from vision_lib.store import check_file

    src = tmp_path / "people"
    for person in sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())[:2]:
        (src / person).mkdir(parents=True)
        for photo in sorted((lfw_dir / person).iterdir())[:4]:
            (src / person / photo.name).write_bytes(photo.read_bytes())
    db = tmp_path / "people.db"
    common = ["--quiet", "--jobs", "1"]
    assert main(["index", str(src), "--db", str(db), "--descriptor", "arcface", *common]) == 0
    capsys.readouterr()
    meta = check_file(db)
    assert meta["descriptor"].startswith("arcface/test_arcface.onnx/") and int(meta["dim"]) == 512
    assert main(["people", "--db", str(db), "--json"]) == 0
    people = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert people and sum(p["faces"] for p in people) >= 8  # every photo holds a face
    photo = next(src.rglob("*.jpg"))
    assert main(["search", str(photo), "--db", str(db), "--json"]) == 0
    found = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert found and found[0]["matches"]
    best = found[0]["matches"][0]
    assert best["source"] == photo.relative_to(src).as_posix() and best["distance"] < 1e-3  # itself
    with Collection(db) as people:
        assert people.descriptor == "arcface"

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    gc.collect()  # collections the commands left unreferenced close (checkpointing their WAL) now, not later
    before = digest(db)
    # Another descriptor asked for an arcface collection: refused, exit 2, file unchanged.
    assert main(["index", str(src), "--db", str(db), "--descriptor", "facenet", *common]) == 2
    assert "one collection, one descriptor" in capsys.readouterr().err
    # Another arcface file (another name, so another id): add and search refuse rather than mix.
    make_model(arcface_env / "other.onnx", seed=5)
    extra = sorted((lfw_dir / photo.parent.name).iterdir())[4]
    (photo.parent / extra.name).write_bytes(extra.read_bytes())  # a new photo its model would describe
    monkeypatch.setenv("VISION_LIB_ARCFACE_MODEL", "other.onnx")
    assert main(["index", str(src), "--db", str(db), *common]) == 2
    assert "one collection, one descriptor" in capsys.readouterr().err
    assert main(["search", str(photo), "--db", str(db)]) == 2
    assert "one collection, one descriptor" in capsys.readouterr().err
    assert digest(db) == before
    # And a facenet collection refuses arcface.
    monkeypatch.setenv("VISION_LIB_ARCFACE_MODEL", "test_arcface.onnx")
    fdb = tmp_path / "facenet.db"
    assert main(["index", str(src / min(p.name for p in src.iterdir())), "--db", str(fdb), *common]) == 0
    capsys.readouterr()
    assert main(["index", str(src), "--db", str(fdb), "--descriptor", "arcface", *common]) == 2
    assert "one collection, one descriptor" in capsys.readouterr().err
