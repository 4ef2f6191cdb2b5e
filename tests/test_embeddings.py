"""MobileNetV2 features (weights lookup, batching, disk cache) and the sklearn transformers."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vision_lib import embeddings as E
from vision_lib.io import LoadReport, list_images, load_image


def _have_weights() -> bool:
    try:
        E.mobilenet_weights_path(download=False)
        return True
    except E.WeightsNotFoundError:
        return False


needs_weights = pytest.mark.skipif(
    not _have_weights(), reason="MobileNetV2 weights not in the Keras cache (set KERAS_HOME=../shared/models/keras)"
)


def _run(code: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- weights lookup
_MISSING = """
    import vision_lib.embeddings as E
    E.MOBILENET_WEIGHTS_URL = {url!r}
    try:
        E.image_features([__import__("numpy").zeros((50, 50, 3), "uint8")], progress=False)
    except E.WeightsNotFoundError as exc:
        print(exc)
    import sys
    print("TF_LOADED" if "tensorflow" in sys.modules else "TF_NOT_LOADED")
"""


def _check_help(text: str, keras_home: Path) -> None:
    assert "MobileNetV2 ImageNet weights not found" in text
    assert f"KERAS_HOME to a folder containing models/{E.MOBILENET_WEIGHTS_FILE}" in text
    assert "weights=<path" in text
    assert str(keras_home / "models" / E.MOBILENET_WEIGHTS_FILE) in text
    # The lookup fails before TensorFlow is even imported.
    assert "TF_NOT_LOADED" in text


def test_missing_weights_offline_says_how_to_provide_them(tmp_path):
    res = _run(_MISSING.format(url=E.MOBILENET_WEIGHTS_URL),
               {"KERAS_HOME": str(tmp_path), "VISION_LIB_OFFLINE": "1"})
    _check_help(res.stdout, tmp_path)
    assert "downloads are off" in res.stdout


def test_missing_weights_failed_download_says_how_to_provide_them(tmp_path):
    # Nothing listens on this port: the attempted download fails at once (no internet needed).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = _run(_MISSING.format(url=f"http://127.0.0.1:{port}/w.h5"), {"KERAS_HOME": str(tmp_path), "VISION_LIB_OFFLINE": ""})
    _check_help(res.stdout, tmp_path)
    assert "download failed" in res.stdout
    assert not list((tmp_path / "models").glob("*")), "no partial file may be left in the cache"


def test_download_that_hangs_times_out(tmp_path, monkeypatch):
    # A server that accepts the connection and never answers: the timeout must end the attempt.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    monkeypatch.setattr(E, "MOBILENET_WEIGHTS_URL", f"http://127.0.0.1:{server.getsockname()[1]}/w.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("VISION_LIB_OFFLINE", raising=False)
    start = time.perf_counter()
    try:
        with pytest.raises(E.WeightsNotFoundError, match="download failed"):
            E.mobilenet_weights_path(timeout=1.0)
    finally:
        server.close()
    assert time.perf_counter() - start < 10
    assert not list((tmp_path / "models").glob("*")), "no partial file may be left in the cache"


def test_explicit_weights_path(tmp_path):
    with pytest.raises(E.WeightsNotFoundError, match="pass weights="):
        E.mobilenet_weights_path(tmp_path / "nope.h5")
    f = tmp_path / "w.h5"
    f.write_bytes(b"x")
    assert E.mobilenet_weights_path(f) == f


def test_importing_embeddings_does_not_import_tensorflow():
    res = _run("import sys, vision_lib.embeddings, vision_lib.features; print('tensorflow' in sys.modules)", {})
    assert res.stdout.strip() == "False", res.stderr


# --------------------------------------------------------------------------- features
@pytest.fixture(scope="session")
def photos(kodak_dir) -> list[Path]:
    return list_images(kodak_dir)[:6]


@needs_weights
def test_image_features_shape_and_mirror_invariance(photos):
    images = [load_image(p) for p in photos]
    feats = E.image_features(images + [images[0][:, ::-1]], batch_size=4, progress=False)
    assert feats.shape == (7, 1280) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and (feats >= 0).all()  # ReLU6 then average pool

    def cos(a, b):
        a, b = a - feats.mean(0), b - feats.mean(0)
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    mirror = cos(feats[0], feats[6])
    others = [cos(feats[0], feats[i]) for i in range(1, 6)]
    assert mirror > 0.5 and mirror > max(others)
    # Batching does not change the answer.
    np.testing.assert_allclose(E.image_features(images[:2], batch_size=1, progress=False), feats[:2],
                               rtol=1e-3, atol=1e-3)


@needs_weights
def test_image_features_paths_cache_and_bad_files(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("VISION_LIB_CACHE", str(tmp_path / "cache"))
    import vision_lib.cache

    vision_lib.cache.memory.cache_clear()
    E._feature_store.cache_clear()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    gone = tmp_path / "gone.jpg"
    gone.symlink_to(tmp_path / "deleted.jpg")
    paths = [photos[0], bad, photos[1], gone]
    report = LoadReport()
    first = E.image_features_paths(paths, batch_size=2, progress=False, report=report)
    assert np.isnan(first[[1, 3]]).all() and np.isfinite(first[[0, 2]]).all()
    assert sorted(r.source for r in report.rejected) == sorted([str(bad), str(gone)])
    # Said in the same words as everywhere else (io.cannot_read), not "No such file or directory".
    assert [r.reason for r in report.rejected if r.source == str(gone)] == [
        "cannot read: broken link (its target does not exist)"]
    direct = E.image_features([load_image(photos[0]), load_image(photos[1])], progress=False)
    np.testing.assert_allclose(first[[0, 2]], direct, rtol=1e-3, atol=1e-3)

    # Second run, and a renamed copy: served from the cache without running the model.
    copy = tmp_path / "renamed.png"
    shutil.copy(photos[1], copy)
    monkeypatch.setattr(E, "_mobilenet", lambda *a: pytest.fail("model ran on a cached photo"))
    again = E.image_features_paths([photos[0], copy], progress=False)
    np.testing.assert_array_equal(again, first[[0, 2]])
    vision_lib.cache.memory.cache_clear()
    E._feature_store.cache_clear()


@needs_weights
def test_mobilenet_transformer_takes_paths_or_arrays(photos):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t = E.MobileNetFeatures(batch_size=2)
    by_path = t.fit_transform(photos[:2])
    by_array = t.transform([load_image(p) for p in photos[:2]])
    np.testing.assert_allclose(by_path, by_array, rtol=1e-3, atol=1e-3)
    assert make_pipeline(E.MobileNetFeatures(), StandardScaler()).fit_transform(photos[:3]).shape == (3, 1280)


@needs_weights
def test_mobilenet_transformer_warns_about_unreadable_paths(photos, tmp_path):
    bad = tmp_path / "fake.jpg"
    bad.write_text("not a photo")
    with pytest.warns(UserWarning, match=r"1 of 2 photos could not be read.*fake\.jpg: not a photo: text file"):
        rows = E.MobileNetFeatures().transform([photos[0], bad])
    assert np.isfinite(rows[0]).all() and np.isnan(rows[1]).all()


def test_arrays_that_are_not_rgb_get_a_clear_error():
    from vision_lib.faces import Face, detect

    grey = np.zeros((60, 60), np.uint8)
    with pytest.raises(ValueError, match=r"expected an RGB image of shape \(H, W, 3\)"):
        detect(grey)
    with pytest.raises(ValueError, match="expected an RGB image"):
        E.FaceDescriptors().transform([(grey, Face((10, 10, 30, 30), 1.0))])
    with pytest.raises(ValueError, match="float image in 0..1"):
        detect(np.full((60, 60, 3), 200.0))
    with pytest.raises(ValueError, match="too small"):
        detect(np.zeros((0, 0, 3), np.uint8))
    # scikit-image's float convention is accepted: the same answer as the uint8 image.
    from vision_lib.io import check_rgb

    img = np.random.default_rng(0).integers(0, 256, (20, 20, 3)).astype(np.uint8)
    assert np.array_equal(check_rgb(img / 255.0), img)


# --------------------------------------------------------------------------- dlib on crops
def test_face_box_in_crop_inverts_faces_crop():
    from vision_lib.faces import Face, crop

    image = np.zeros((400, 400, 3), np.uint8)
    face = Face((100, 120, 80, 100), 1.0)
    c = crop(image, face, margin=0.25)
    inner = E.face_box_in_crop(c.shape, margin=0.25)
    assert inner.box == (20, 25, 80, 100)


def test_face_descriptors_transformer_on_real_faces(lfw_dir):
    from vision_lib.faces import crop, detect_paths

    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[:2]
    paths = [p for person in people for p in sorted(person.glob("*.jpg"))[:3]]
    found = [(pf, load_image(pf.path)) for pf in detect_paths(paths, "mtcnn", n_jobs=1, progress=False) if pf.faces]
    assert len(found) >= 5
    crops = [crop(img, pf.faces[0], 0.2) for pf, img in found]
    from_crops = E.FaceDescriptors(margin=0.2).fit_transform(crops)
    from_pairs = E.FaceDescriptors().transform([(img, pf.faces[0]) for pf, img in found])
    assert from_crops.shape == (len(found), 128)
    # The same face described from its crop or from the whole photo: well under dlib's threshold.
    assert np.linalg.norm(from_crops - from_pairs, axis=1).max() < 0.25
    labels = np.array([pf.path.parent.name for pf, _ in found])
    d = np.linalg.norm(from_crops[:, None] - from_crops[None], axis=2)
    same = labels[:, None] == labels[None]
    off_diag = ~np.eye(len(found), dtype=bool)
    assert d[same & off_diag].mean() < E.DLIB_SAME_PERSON_DISTANCE < d[~same].mean()


# --------------------------------------------------------------------------- dlib descriptors
def test_keypoint_chips_put_the_five_keypoints_on_the_template():
    import cv2

    from vision_lib.faces import KEYPOINTS, Face

    # Five bright dots where a rotated, scaled face's keypoints would be, on a dark photo.
    angle, scale, shift = np.deg2rad(20), 2.3, np.array([140.0, 90.0])
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = (E.CHIP_KEYPOINTS - 75) @ R.T + shift + 150
    image = np.zeros((520, 560, 3), np.uint8)
    for x, y in pts:
        cv2.circle(image, (int(round(x)), int(round(y))), 5, (255, 255, 255), -1)
    face = Face((0, 0, 10, 10), 1.0, dict(zip(KEYPOINTS, map(tuple, pts))))
    chip = E.face_chips(image, [face], "keypoints")[0]
    assert chip.shape == (E.CHIP_SIZE, E.CHIP_SIZE, 3)
    for x, y in E.CHIP_KEYPOINTS:
        x0, y0 = int(round(x)), int(round(y))
        patch = chip[y0 - 4:y0 + 5, x0 - 4:x0 + 5, 0].astype(float)
        ys, xs = np.nonzero(patch > 128)
        assert len(xs) > 4, (x, y)
        assert abs(xs.mean() - 4 - (x - x0)) < 1.0 and abs(ys.mean() - 4 - (y - y0)) < 1.0


def test_face_descriptors_alignments_flip_and_fallback(lfw_dir):
    from vision_lib.faces import Face, detect_paths

    person = sorted(p for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 2)[0]
    found = [pf for pf in detect_paths(sorted(person.glob("*.jpg"))[:2], "mtcnn", n_jobs=1, progress=False) if pf.faces]
    assert len(found) == 2
    image = load_image(found[0].path)
    face = found[0].faces[0]
    one = {a: E.face_descriptors(image, [face], align=a, flip=False)[0] for a in ("keypoints", "shape", "both")}
    # "both" is the mean of the two alignments; they differ but describe the same person.
    assert np.allclose(one["both"], (one["keypoints"] + one["shape"]) / 2, atol=1e-5)
    assert 0.01 < np.linalg.norm(one["keypoints"] - one["shape"]) < E.DLIB_SAME_PERSON_DISTANCE / 2
    # flip=True averages with the mirrored chip, which describes the face a little differently.
    chip = E.face_chips(image, [face], "shape")[0]
    mirrored = np.asarray(E._dlib_models()[1].compute_face_descriptor(np.ascontiguousarray(chip[:, ::-1])))
    both = E.face_descriptors(image, [face], align="shape", flip=True)[0]
    assert np.allclose(both, (one["shape"] + mirrored) / 2, atol=1e-5)
    assert np.linalg.norm(mirrored - one["shape"]) > 0.01
    # Without keypoints (Haar boxes, crops) the keypoint alignment falls back to dlib's shape predictor.
    bare = Face(face.box, 1.0)
    assert np.allclose(E.face_descriptors(image, [bare], align="keypoints", flip=False)[0], one["shape"])
    # The default recipe is what descriptor_id names, and two photos of one person stay close.
    other = E.face_descriptors(load_image(found[1].path), found[1].faces[:1])[0]
    assert np.linalg.norm(E.face_descriptors(image, [face])[0] - other) < E.DLIB_SAME_PERSON_DISTANCE
    assert E.descriptor_id() == f"dlib_resnet_v1/{E.DEFAULT_ALIGN}{'+flip' if E.DEFAULT_FLIP else ''}"
    with pytest.raises(ValueError, match="alignment"):
        E.face_descriptors(image, [face], align="eyes")
