"""Wavelet recipe and region colour histograms: generated images with known answers, and notebook 02."""
from __future__ import annotations

import json
import os
import warnings

import cv2
import numpy as np
import pytest
import pywt
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from vision_lib import features as F
from vision_lib import tables as T


def _stripes(rng, vertical: bool, size=(60, 50)) -> np.ndarray:
    h, w = size
    period = int(rng.integers(4, 9))
    idx = np.arange(w if vertical else h)
    line = ((idx // period) % 2 * 200 + 20).astype(np.uint8)
    grey = np.tile(line, (h, 1)) if vertical else np.tile(line[:, None], (1, w))
    noise = rng.integers(0, 20, size=(h, w), dtype=np.uint8)
    return np.repeat((grey + noise)[:, :, None], 3, axis=2)


# --------------------------------------------------------------------------- wavelet recipe
def test_wavelet_image_of_flat_image_is_black():
    # Removing the approximation leaves only details: a flat image has none.
    flat = np.full((64, 48, 3), 137, np.uint8)
    out = F.wavelet_image(flat)
    assert out.shape == (32, 32) and out.dtype == np.uint8
    assert out.max() == 0


def test_wavelet_image_responds_at_edges_only():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 20:] = 255  # one vertical step edge, not on a Haar block boundary
    full = F.wavelet_image(img, size=64)
    # Details are non-zero only in the coarse Haar block that holds the edge (columns 0..31).
    assert full[:, 16:28].max() > 50
    assert full[:, 32:].max() == 0


def test_wavelet_image_matches_recipe_written_out(rng):
    img = rng.integers(0, 256, size=(96, 80, 3), dtype=np.uint8)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    coeffs = list(pywt.wavedec2(grey, "haar", level=3))
    coeffs[0] *= 0
    rec = np.clip(pywt.waverec2(coeffs, "haar") * 255, 0, 255).astype(np.uint8)
    expected = cv2.resize(rec, (16, 16), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(F.wavelet_image(img, level=3, size=16), expected)
    # A different wavelet gives a different image (the parameter is really used).
    assert not np.array_equal(F.wavelet_image(img, "db2", level=3, size=16), expected)


def test_wavelet_image_tiny_crop_no_boundary_warning():
    tiny = np.random.default_rng(1).integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.wavelet_image(tiny, level=5)
    assert out.shape == (32, 32)


def test_wavelet_features_layout(rng):
    img = rng.integers(0, 256, size=(70, 55, 3), dtype=np.uint8)
    vec = F.wavelet_features(img)
    assert vec.shape == (4096,) and vec.dtype == np.float32
    np.testing.assert_array_equal(vec[:3072], cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA).reshape(-1))
    np.testing.assert_array_equal(vec[3072:], F.wavelet_image(img).reshape(-1))
    assert F.wavelet_features(img, size=16).shape == (16 * 16 * 4,)


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros((1, 10, 3), np.uint8)])
def test_wavelet_rejects_non_rgb(bad):
    with pytest.raises(ValueError):
        F.wavelet_features(bad)


def test_wavelet_transformer_in_pipeline_separates_stripe_orientation(rng):
    X = [_stripes(rng, vertical=i % 2 == 0) for i in range(40)]
    y = np.array([i % 2 for i in range(40)])
    model = make_pipeline(F.WaveletFeatures(size=16, level=3), StandardScaler(), SVC(kernel="linear"))
    model.fit(X[:30], y[:30])
    assert (model.predict(X[30:]) == y[30:]).all()
    # Parameters behave like any scikit-learn estimator's.
    twin = clone(F.WaveletFeatures(size=8, wavelet="db2"))
    assert twin.get_params() == {"size": 8, "wavelet": "db2", "level": 5}
    assert twin.transform(X[:3]).shape == (3, 256)
    assert F.WaveletFeatures().transform([]).shape == (0, 4096)


# --------------------------------------------------------------------------- colour histograms
def _shirt_and_shorts(top=(220, 20, 20), bottom=(20, 20, 220), size=(80, 40)) -> np.ndarray:
    img = np.zeros((*size, 3), np.uint8)
    img[: size[0] // 2] = top
    img[size[0] // 2:] = bottom
    return img


def test_region_boxes_split_height_and_accept_fractions():
    boxes = F.region_boxes((101, 40, 3), ("upper", "lower", "full", (0.25, 0.5)))
    assert boxes["upper"] == (0, 0, 40, 50) and boxes["lower"] == (0, 50, 40, 51)
    assert boxes["full"] == (0, 0, 40, 101)
    assert boxes["0.25-0.5"] == (0, 25, 40, 25)
    with pytest.raises(ValueError):
        F.region_boxes((10, 10), ["middle"])
    with pytest.raises(ValueError):
        F.region_boxes((10, 10), [(0.6, 0.2)])


@pytest.mark.parametrize("space", ["hsv", "rgb", "lab"])
def test_region_histograms_see_shirt_and_shorts_colours(space):
    player = _shirt_and_shorts()
    hists = F.region_histograms(player, bins=4, space=space)
    assert set(hists) == {"upper", "lower"}
    for h in hists.values():
        assert h.shape == (64,) and h.dtype == np.float32
        assert h.sum() == pytest.approx(1.0)
    red = F.region_histograms(np.full((30, 30, 3), (220, 20, 20), np.uint8), ["full"], 4, space)["full"]
    assert F.histogram_correlation(hists["upper"], red) == pytest.approx(1.0)
    assert F.histogram_correlation(hists["lower"], red) < 0.1


def test_region_histograms_mask_keeps_only_foreground():
    player = _shirt_and_shorts()
    player[:, :10] = (0, 200, 0)  # green background on the left of both halves
    mask = np.ones(player.shape[:2], np.uint8)
    mask[:, :10] = 0
    masked = F.region_histograms(player, bins=4, mask=mask)
    clean = F.region_histograms(_shirt_and_shorts(), bins=4)
    np.testing.assert_allclose(masked["upper"], clean["upper"], atol=1e-6)
    unmasked = F.region_histograms(player, bins=4)
    assert F.histogram_correlation(unmasked["upper"], clean["upper"]) < 0.99
    empty = F.region_histograms(player, bins=4, mask=np.zeros_like(mask))
    assert all(h.sum() == 0 for h in empty.values())
    with pytest.raises(ValueError):
        F.region_histograms(player, mask=np.ones((5, 5)))


def test_colour_histograms_transformer_takes_images_or_image_mask_pairs():
    player = _shirt_and_shorts()
    t = F.ColourHistograms(regions=("upper", "lower"), bins=4, space="rgb")
    half = np.zeros(player.shape[:2])
    half[:, : player.shape[1] // 2] = 1
    out = t.fit_transform([player, (player, np.ones(player.shape[:2])), [player, half]])
    assert out.shape == (3, 128)
    np.testing.assert_allclose(out[0], out[1])
    np.testing.assert_allclose(out[2], t.transform([(player, half)])[0])  # a list pair is a pair too
    expected = F.region_histograms(player, bins=4, space="rgb")
    np.testing.assert_allclose(out[0], np.concatenate([expected["upper"], expected["lower"]]))
    with pytest.raises(ValueError):
        F.ColourHistograms(space="xyz").transform([player])


def test_transformers_name_their_output_columns():
    from vision_lib.embeddings import FaceDescriptors, MobileNetFeatures

    player = _shirt_and_shorts()
    for t in (F.WaveletFeatures(size=8), F.ColourHistograms(bins=3)):
        names = t.get_feature_names_out()
        assert len(names) == t.transform([player]).shape[1] and names[0] == type(t).__name__.lower() + "0"
    assert len(FaceDescriptors().get_feature_names_out()) == 128
    assert len(MobileNetFeatures().get_feature_names_out()) == 1280


def test_histogram_correlation_rejects_size_mismatch():
    with pytest.raises(ValueError):
        F.histogram_correlation(np.ones(8), np.ones(27))


# --------------------------------------------------------------------------- comparing feature spaces
def test_neighbour_accuracy_counts_same_label_nearest_neighbours():
    X = np.array([[0.0], [1.0], [3.0], [3.5]])
    assert F.neighbour_accuracy(X, ["a", "a", "b", "b"]) == 1.0
    assert F.neighbour_accuracy(X, ["a", "b", "a", "b"]) == 0.0
    assert F.neighbour_accuracy(X, ["a", "a", "a", "b"]) == 0.5
    with pytest.raises(ValueError):
        F.neighbour_accuracy(X[:1], ["a"])


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_project_2d_keeps_separated_groups_apart(rng, method):
    X = np.vstack([rng.normal(0, 1, (25, 40)), rng.normal(6, 1, (25, 40))])
    labels = [0] * 25 + [1] * 25
    P = F.project_2d(X, method=method, random_state=0)
    assert P.shape == (50, 2)
    assert F.neighbour_accuracy(P, labels) == 1.0
    with pytest.raises(ValueError):
        F.project_2d(X, method="umap")


def test_largest_face_crops_first_face_and_skips_the_rest(tmp_path, rng):
    from PIL import Image

    from vision_lib.faces import Face, PhotoFaces

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)).save(paths[-1])
    big, small = Face((20, 10, 50, 60), 0.99), Face((0, 0, 10, 10), 0.9)
    results = [
        PhotoFaces(paths[0], [big, small], (100, 120), None, np.arange(256, dtype=float).reshape(2, 128)),
        PhotoFaces(paths[1], [], (100, 120), None, np.zeros((0, 128))),
        PhotoFaces(tmp_path / "gone.jpg", [], None, "cannot decode"),
        PhotoFaces(paths[2], [small], (100, 120), None, np.ones((1, 128))),
    ]
    got = F.largest_face_crops(results, ["a", "b", "c", "d"], margin=0.0)
    assert got.labels == ["a", "d"] and got.paths == [paths[0], paths[2]]
    assert got.crops[0].shape == (60, 50, 3) and got.boxes[0] == big.box
    np.testing.assert_array_equal(got.descriptors[0], np.arange(128))
    assert got.descriptors.shape == (2, 128) and len(got) == 2
    # the same photos as a face table: the same crops, labels from the table
    from vision_lib.tables import FaceTable

    table = FaceTable("descriptor", np.vstack([np.arange(256).reshape(2, 128), np.ones((1, 128))]),
                      ["p0.png", "p0.png", "p2.png"], ["a", "a", "d"], [0, 1, 0], [big.box, small.box, small.box],
                      [("p1.png", "no face found")], {}, root=tmp_path)
    again = F.largest_face_crops(table, margin=0.0)
    assert again.labels == ["a", "d"] and again.paths == got.paths and again.boxes == got.boxes
    assert all(np.array_equal(a, b) for a, b in zip(again.crops, got.crops))
    np.testing.assert_array_equal(again.descriptors, got.descriptors)


# --------------------------------------------------------------------------- folder -> feature table
def _kit_folder(root, rng):
    """Two 'people' in red-over-blue and green-over-white kits, plus a broken file and a text file."""
    kits = {"red_blue": ((200, 20, 20), (20, 20, 200)), "green_white": ((20, 180, 20), (240, 240, 240))}
    for person, (top, bottom) in kits.items():
        (root / person).mkdir(parents=True)
        for i in range(3):
            img = np.zeros((80, 40, 3), np.uint8)
            img[:40], img[40:] = top, bottom
            img = np.clip(img + rng.integers(0, 15, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / person / f"{i}.png"), img[:, :, ::-1])
    (root / "red_blue" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not a photo")
    cv2.imwrite(str(root / "green_white" / "tiny.png"), np.full((2, 2, 3), 200, np.uint8))  # halves 1 px high


def test_folder_histograms_give_a_labelled_table_and_list_what_failed(tmp_path, rng):
    _kit_folder(tmp_path / "in", rng)
    table = T.folder_features(tmp_path / "in", "histogram", bins=4, progress=False)
    assert table.X.shape == (7, 2 * 4 ** 3) and table.X.dtype == np.float32
    assert table.labels == ["green_white"] * 4 + ["red_blue"] * 3
    assert table.sources[0] == "green_white/0.png" and (table.face_index == -1).all()
    assert [s for s, _ in table.not_used] == ["notes.txt", "red_blue/broken.jpg"]
    # Each half is a normalised histogram, and the two kits differ where their colours differ.
    upper, lower = table.X[:, :64], table.X[:, 64:]
    assert np.allclose(upper.sum(1), 1) and np.allclose(lower.sum(1), 1)
    assert F.histogram_correlation(upper[0], upper[4]) < 0.5 and F.histogram_correlation(upper[0], upper[1]) > 0.9
    path = table.save(tmp_path / "kits")
    assert path.name == "kits.npz"
    back = T.FeatureTable.load(path)
    assert np.array_equal(back.X, table.X) and back.sources == table.sources and back.not_used == table.not_used
    assert back.kind == "histogram" and back.settings["bins"] == 4
    with pytest.raises(FileExistsError):
        table.save(path)
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK half a zip")
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(np, "savez_compressed", interrupted)
        table.save(path, overwrite=True)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["in", "kits.npz"]  # old file kept whole
    with pytest.raises(ValueError, match="unknown kind"):
        T.folder_features(tmp_path / "in", "sift")


def test_cli_features_without_photos_says_what_is_there(tmp_path, capsys):
    # An empty folder used to read "no photos under in (1 other files)": the one entry was the folder.
    from vision_lib.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["features", str(tmp_path / "empty"), "--out", str(tmp_path / "a.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the folder is empty" in err and "other files" not in err
    assert f"put the photos in {tmp_path / 'empty'} or in its sub-folders" in err
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("not a photo")
    (tmp_path / "text" / "list.csv").write_text("a,b\n")
    assert main(["features", str(tmp_path / "text"), "--out", str(tmp_path / "b.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "2 entries not used:" in err and "  notes.txt: not a photo: text file" in err and "  list.csv: " in err
    assert not any(tmp_path.glob("*.npz"))


def test_cli_features_writes_npz_and_never_overwrites(tmp_path, rng, capsys):
    from vision_lib.cli import main

    _kit_folder(tmp_path / "in", rng)
    out = tmp_path / "out" / "kits.npz"
    assert main(["features", str(tmp_path / "in"), "--out", str(out), "--kind", "histogram", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "7 rows x 1024 values" in printed and "2 files without a row" in printed
    with np.load(out) as z:
        assert z["X"].shape == (7, 1024) and z["label"].tolist().count("red_blue") == 3
        assert z["rejected_source"].tolist() == ["notes.txt", "red_blue/broken.jpg"]
    stamp = out.stat().st_mtime_ns
    assert main(["features", str(tmp_path / "in"), "--out", str(out), "--kind", "histogram"]) == 2
    assert out.stat().st_mtime_ns == stamp
    assert main(["features", str(tmp_path / "in"), "--out", str(out), "--bins", "0"]) == 2


def test_folder_descriptors_one_row_per_face_on_real_photos(footballers_dir, tmp_path):
    import shutil

    from vision_lib import classify

    for player in sorted(p.name for p in footballers_dir.iterdir() if p.is_dir())[:2]:
        (tmp_path / player).mkdir()
        for photo in sorted((footballers_dir / player).glob("*.jpg"))[:3]:
            shutil.copy(photo, tmp_path / player / photo.name)
    table = T.folder_features(tmp_path, "descriptor", progress=False)
    photos = classify.extract(sorted(tmp_path.rglob("*.jpg")), progress=False)
    expected = np.vstack([ph.features for ph in photos if ph.faces])
    assert table.X.shape == expected.shape and np.allclose(table.X, expected)
    assert len(set(table.sources)) + len(table.not_used) == 6 and len(set(table.labels)) == 2
    # face_index restarts at 0 in every photo; boxes have a positive size
    starts = [i for i in range(len(table.sources)) if i == 0 or table.sources[i] != table.sources[i - 1]]
    assert all(table.face_index[i] == 0 for i in starts) and (table.boxes[:, 2:] > 0).all()


# --------------------------------------------------------------------------- notebook 02
@pytest.mark.notebook
def test_notebook_02_runs_and_separates_people(footballers_dir, tmp_path):
    from vision_lib.notebooks import NOTEBOOK_DIR, execute_notebook

    res = execute_notebook(NOTEBOOK_DIR / "02_feature_engineering.ipynb", tmp_path,
                           {"limit": 5, "out_dir": str(tmp_path), "tsne": False}, html=False)
    assert res.ok, res.error
    assert res.stderr == [], res.stderr  # a clean report: no start-up noise, no warnings
    summary = json.loads((tmp_path / "feature_summary.json").read_text())
    assert summary["n_photos"] == 30
    assert 20 <= summary["n_faces"] <= 30
    assert set(summary["knn_accuracy"]) == {"wavelet", "facenet", "dlib", "mobilenet"}
    # Face descriptors are made for identity: nearest neighbours mostly share the person.
    assert summary["knn_accuracy"]["facenet"] >= 0.6
    assert summary["knn_accuracy"]["facenet"] > summary["knn_accuracy"]["wavelet"]
    # The comparison of the two descriptors on the same faces (issue 18) is recorded.
    assert set(summary["true_accept_at_1%_false_accepts"]) == {"facenet", "dlib"}
    assert all(0 <= v <= 1 for v in summary["true_accept_at_1%_false_accepts"].values())


def test_cli_refuses_an_unwritable_out_before_the_work(tmp_path, monkeypatch, capsys):
    import tempfile

    from PIL import Image

    from vision_lib import tables
    from vision_lib.cli import main

    (tmp_path / "in").mkdir()
    Image.new("RGB", (32, 32), (200, 100, 50)).save(tmp_path / "in" / "a.png")

    def read_only(*args, **kwargs):  # as an unwritable folder answers (root ignores permission bits)
        raise PermissionError(13, "Permission denied", str(kwargs.get("dir")))

    def no_work(*args, **kwargs):
        raise AssertionError("the photos were described before the output was checked")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(tables, "folder_features", no_work)
    assert main(["features", str(tmp_path / "in"), "--kind", "histogram", "--out", str(tmp_path / "ro" / "t.npz")]) == 2
    assert "Permission denied" in capsys.readouterr().err
