"""vision_lib.compress, widgets.CompressionExplorer, `vision-lib compress`, notebook 06."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vision_lib import compress as C
from vision_lib.cli import main
from vision_lib.notebooks import NOTEBOOK_DIR, execute_notebook

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- generated photos
def _photo(rng, h=96, w=128) -> np.ndarray:
    """A photo-like image: smooth colour gradients, a few objects, sensor noise."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([200 * x + 30, 120 + 80 * np.sin(6 * y), 60 + 150 * x * y], axis=2)
    img[h // 4: h // 2, w // 5: w // 3] = (230, 40, 40)
    img[h // 2:, w // 2: w // 2 + 10] = (20, 30, 160)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _nearest_error(image, palette, index):
    """How far each pixel's chosen colour is from its truly nearest palette colour (0 = exact)."""
    px = image.reshape(-1, 3).astype(np.float64)
    d = ((px[:, None, :] - palette[None].astype(np.float64)) ** 2).sum(-1)
    return d[np.arange(len(px)), index.ravel()] - d.min(axis=1)


# --------------------------------------------------------------------------- quantize
@pytest.mark.parametrize("k", [2, 16, 64, 256])
def test_quantize_shapes_and_exact_nearest_colour(rng, k):
    img = _photo(rng)
    q = C.quantize(img, k)
    assert q.index.shape == img.shape[:2] and q.index.dtype == np.uint8
    assert q.palette.dtype == np.uint8 and 2 <= len(q.palette) <= k
    assert q.index.max() < len(q.palette)
    assert np.array_equal(q.image, q.palette[q.index])
    # every pixel gets its exact nearest palette colour (no approximation from the histogram)
    assert np.max(_nearest_error(img, q.palette, q.index)) <= 1e-6


def test_quantize_is_deterministic_for_a_seed_and_varies_with_it(rng):
    img = _photo(rng)
    a, b = C.quantize(img, 12, random_state=3), C.quantize(img, 12, random_state=3)
    assert np.array_equal(a.palette, b.palette) and np.array_equal(a.index, b.index)
    others = [C.quantize(img, 12, random_state=s, n_init=1, refine=0).palette for s in range(4)]
    assert any(not np.array_equal(others[0], o) for o in others[1:])


@pytest.mark.parametrize("k", [1, 257])
def test_k_out_of_range_is_refused(rng, k):
    with pytest.raises(ValueError, match="between 2 and 256"):
        C.quantize(_photo(rng), k)


def test_few_colours_are_kept_exactly():
    img = np.zeros((20, 30, 3), np.uint8)
    colours = [(0, 0, 0), (255, 0, 0), (1, 2, 3), (10, 200, 30), (255, 255, 255)]
    for i, c in enumerate(colours):
        img[:, 6 * i: 6 * i + 6] = c
    q = C.quantize(img, 16)
    assert len(q.palette) == 5
    assert np.array_equal(q.image, img) and C.psnr(img, q.image) == float("inf")


def test_quality_matches_full_pixel_kmeans_on_generated_photos(rng):
    from sklearn.cluster import KMeans

    gains = []
    for i in range(3):
        img = _photo(np.random.default_rng(i), 120, 160)
        for k in (8, 32):
            ours = C.psnr(img, C.quantize(img, k).image)
            km = KMeans(k, n_init=1, random_state=0).fit(img.reshape(-1, 3).astype(float))
            ref = C.psnr(img, np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)[km.labels_]
                         .reshape(img.shape))
            gains.append(ours - ref)
    assert np.mean(gains) > -0.1, gains
    assert min(gains) > -0.3, gains


def test_quality_matches_kmeans_on_real_photos(kodak_dir):
    from vision_lib.io import load_image

    paths = sorted(kodak_dir.glob("*.png"))[:2]
    assert len(paths) == 2, f"no Kodak PNGs in {kodak_dir}"
    for path in paths:
        img = load_image(path)
        ours = C.psnr(img, C.quantize(img, 16).image)
        ref = C.psnr(img, C.quantize_with("kmeans", img, 16).image)
        assert ours >= ref - 0.1, (path.name, ours, ref)
        assert ours > C.psnr(img, C.quantize_with("median_cut", img, 16).image) + 0.5


def test_dithering_keeps_local_average_colour():
    import cv2

    y, x = np.mgrid[0:64, 0:256]
    img = np.stack([x, x // 2 + 40, 255 - x], axis=2).astype(np.uint8)  # a smooth gradient
    plain, dithered = C.quantize(img, 4), C.quantize(img, 4, dither=True)
    assert dithered.dither and dithered.index.max() < len(dithered.palette)
    assert np.array_equal(dithered.palette, plain.palette)
    blur = lambda a: cv2.blur(a.astype(np.float32), (9, 9))  # noqa: E731 - what the eye averages
    err_plain = np.mean((blur(plain.image) - blur(img)) ** 2)
    err_dither = np.mean((blur(dithered.image) - blur(img)) ** 2)
    assert err_dither < 0.5 * err_plain


def test_estimator_predicts_other_images_with_the_fitted_palette(rng):
    img, other = _photo(rng), _photo(np.random.default_rng(9))
    est = C.ColourQuantizer(8, random_state=0).fit(img)
    idx = est.predict(other)
    assert idx.shape == other.shape[:2]
    assert np.max(_nearest_error(other, est.palette_, idx)) <= 1e-6
    assert np.array_equal(est.transform(other), est.palette_[idx])
    # scikit-learn conventions: clone keeps the settings and drops the fitted palette.
    from sklearn.base import clone

    twin = clone(est.set_params(n_colors=4))
    assert twin.get_params()["n_colors"] == 4 and not hasattr(twin, "palette_")
    assert len(twin.fit(img).palette_) == 4


# --------------------------------------------------------------------------- live fits (widget)
def test_colour_table_counts_every_pixel_once(rng):
    img = _photo(rng)
    t = C.colour_table(img)
    assert t.counts.sum() == img.shape[0] * img.shape[1]
    assert len(np.unique(t.colours, axis=0)) == len(t.colours)
    assert np.array_equal(t.colours[t.inverse].reshape(img.shape), img)


def test_nearest_by_float32_products_is_exact_for_integer_colours(rng):
    colours = rng.integers(0, 256, (5000, 3)).astype(np.uint8)
    palette = rng.integers(0, 256, (200, 3)).astype(np.uint8)
    labels = C._nearest(palette, colours.astype(np.float32))
    assert np.max(_nearest_error(colours[:, None, :], palette, labels)) == 0


@pytest.mark.parametrize("k", [2, 7, 16, 64, 256])
def test_refit_palette_size_exact_labels_and_honest_error(rng, k):
    img = _photo(rng)
    t = C.colour_table(img)
    q = C.refit(t, C.palette_tree(t), k)
    assert q.k == k and len(q.palette) == k  # thousands of distinct colours: a full palette
    assert q.index.shape == img.shape[:2] and q.index.max() < len(q.palette)
    assert np.max(_nearest_error(img, q.palette, q.index)) <= 1e-6  # every pixel: its nearest colour
    mse = t.squared_error(q.palette, q.colour_labels) / img.size
    assert 10 * np.log10(255 ** 2 / mse) == pytest.approx(C.psnr(img, q.image), abs=1e-9)


def test_refit_is_deterministic_and_close_to_quantize(rng):
    gaps = []
    for seed in range(2):
        img = _photo(np.random.default_rng(seed), 120, 160)
        t = C.colour_table(img)
        tree, again = C.palette_tree(t, random_state=0), C.palette_tree(C.colour_table(img), random_state=0)
        for k in (5, 8, 16, 32, 64, 128):
            q = C.refit(t, tree, k)
            same = C.refit(t, again, k)
            assert np.array_equal(q.palette, same.palette) and np.array_equal(q.index, same.index)
            gaps.append(C.psnr(img, q.image) - C.psnr(img, C.quantize(img, k).image))
    # the live fit's stated bound: within 0.3 dB of quantize for any k, 0.1 dB on average
    assert min(gaps) > -0.3 and np.mean(gaps) > -0.1, np.round(gaps, 3)


def test_palette_tree_cut_merges_to_weighted_means(rng):
    t = C.colour_table(_photo(rng))
    tree = C.palette_tree(t, size=32)
    assert len(tree.centres) == 32 and len(tree.merges) == 31
    assert len(tree.cut(1)) == 1 and len(tree.cut(10)) == 10 and len(tree.cut(99)) == 32
    overall = (tree.centres * tree.weights[:, None]).sum(0) / tree.weights.sum()
    assert np.allclose(tree.cut(1)[0], overall)  # merging everything leaves the mean colour


def test_refit_few_colours_is_lossless_and_dither_reuses_palette(rng):
    img = np.zeros((20, 30, 3), np.uint8)
    for i, c in enumerate([(0, 0, 0), (255, 0, 0), (1, 2, 3), (10, 200, 30), (255, 255, 255)]):
        img[:, 6 * i: 6 * i + 6] = c
    t = C.colour_table(img)
    q = C.refit(t, C.palette_tree(t), 16)
    assert len(q.palette) == 5 and np.array_equal(q.image, img)
    photo = _photo(rng)
    t = C.colour_table(photo)
    q = C.refit(t, C.palette_tree(t), 8)
    d = C.map_to_palette(t, q.palette, dither=True)
    assert d.dither and np.array_equal(d.palette, q.palette) and d.colour_labels is None
    assert np.array_equal(d.index, C._dither(photo, q.palette))


def test_ssim_with_cached_reference_equals_ssim(rng):
    img = _photo(rng)
    q = C.quantize(img, 8)
    ref = C.SSIM(img)
    assert ref(q) == pytest.approx(C.ssim(img, q.image), abs=1e-9)
    assert ref(q.image) == pytest.approx(C.ssim(img, q.image), abs=1e-9)
    with pytest.raises(ValueError, match="shape"):
        ref(img[:10])


def test_histogram_sums_and_counts(rng):
    img = _photo(rng)
    h = C.colour_bins(img, bits=5)
    assert h.counts.sum() == img.shape[0] * img.shape[1]
    assert np.allclose(h.sums.sum(axis=0), img.reshape(-1, 3).sum(axis=0))
    # each pixel lies inside its bin's cube
    cube = h.centres[h.inverse]
    assert np.all(np.abs(img.reshape(-1, 3) - cube) <= (8 - 1) / 2 + 1e-9)


# --------------------------------------------------------------------------- PNG and metrics
@pytest.mark.parametrize("k,bits", [(2, 1), (4, 2), (16, 4), (17, 8), (64, 8)])
def test_palette_png_round_trips_with_minimal_bit_depth(rng, k, bits):
    img = _photo(rng)
    q = C.quantize(img, k)
    data = q.png_bytes()
    assert data[24] == (bits if len(q.palette) == k else data[24])  # IHDR bit depth
    with Image.open(io.BytesIO(data)) as back:
        assert back.mode == "P"
        assert np.array_equal(np.asarray(back.convert("RGB")), q.image)
    assert len(data) < len(C.plain_png_bytes(img))


def test_size_report_has_honest_ratios(rng, tmp_path):
    img = _photo(rng, 128, 192)
    src = tmp_path / "photo.png"
    Image.fromarray(img).save(src)
    q = C.quantize(img, 8)
    r = C.size_report(img, q, original_bytes=src.stat().st_size)
    assert r["bytes"] == len(q.png_bytes())
    assert r["ratio"] == pytest.approx(src.stat().st_size / r["bytes"], rel=1e-3)
    assert r["plain_png_bytes"] == len(C.plain_png_bytes(img))
    assert r["ratio_vs_plain_png"] > 1
    assert 0 < r["ssim"] < 1 and 15 < r["psnr"] < 60


def test_ssim_agrees_with_scikit_image(rng):
    from skimage.metrics import structural_similarity

    for shape in [(40, 50, 3), (6, 9, 3)]:  # the second is smaller than the window: fallback
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-30, 30, shape), 0, 255).astype(np.uint8)
        win = min(7, min(shape[:2]) - (1 - min(shape[:2]) % 2))
        ref = structural_similarity(a, b, channel_axis=-1, data_range=255, win_size=win)
        assert C.ssim(a, b) == pytest.approx(ref, abs=1e-6)
        assert C.ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    img = _photo(rng)
    q = C.quantize(img, 8).image
    ref = structural_similarity(img, q, channel_axis=-1, data_range=255)
    assert C.ssim(img, q) == pytest.approx(ref, abs=1e-6)


def test_psnr_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # mse = 255^2 / 48
    assert C.psnr(a, a) == float("inf")
    assert C.psnr(a, b) == pytest.approx(10 * np.log10(48))


def test_write_new_file_never_overwrites(tmp_path):
    target = tmp_path / "a.png"
    C.write_new_file(target, b"one")
    with pytest.raises(FileExistsError, match="overwrite"):
        C.write_new_file(target, b"two")
    assert target.read_bytes() == b"one"
    C.write_new_file(target, b"two", overwrite=True)
    assert target.read_bytes() == b"two"


# --------------------------------------------------------------------------- comparisons
def test_compare_quantizers_rows(rng):
    img = _photo(rng, 64, 80)
    rows = C.compare_quantizers(img, [4, 8], methods=["vision_lib", "median_cut", "fast_octree", "pngquant"])
    methods = {r["method"] for r in rows}
    assert {"vision_lib", "median_cut", "fast_octree"} <= methods
    assert ("pngquant" in methods) == C.pngquant_available()
    for r in rows:
        assert r["bytes"] > 0 and r["psnr"] > 10 and r["seconds"] >= 0
    with pytest.raises(ValueError, match="unknown method"):
        C.quantize_with("nope", img, 4)


def test_tables_over_photos_on_two_cores_equal_the_photo_by_photo_rows(rng, tmp_path):
    images = {f"p{i}": _photo(rng, 64, 80 + 8 * i) for i in range(3)}
    files = {}
    for name, img in images.items():
        files[name] = tmp_path / f"{name}.png"
        Image.fromarray(img).save(files[name])
    sizes = C.size_table(images, [4, 8], files=files, n_jobs=2)
    assert [(r["image"], r["k"]) for r in sizes] == [(n, k) for n in images for k in (4, 8)]  # photos in order
    for r in sizes:
        q = C.quantize(images[r["image"]], r["k"])
        alone = C.size_report(images[r["image"]], q, original_bytes=files[r["image"]].stat().st_size)
        assert {k: r[k] for k in alone} == alone and r["seconds"] > 0
    budget = C.equal_bytes_table(images, 8, n_jobs=2)
    assert budget == [row for n, img in images.items() for row in C.equal_bytes(img, C.quantize(img, 8), name=n)]
    methods = C.compare_table(images, [4], methods=["vision_lib", "median_cut"], n_jobs=2)
    assert [(r["image"], r["method"]) for r in methods] == [(n, m) for n in images for m in ("vision_lib", "median_cut")]


def test_example_images_fall_back_to_bundled_images(tmp_path):
    imgs = C.example_images(tmp_path, limit=2)  # an empty folder: no kodak/
    assert len(imgs) == 2
    for img in imgs.values():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_example_photos_skip_unreadable_files_and_take_any_format(tmp_path, rng):
    kodak = tmp_path / "kodak"
    kodak.mkdir()
    Image.fromarray(_photo(rng)).save(kodak / "a.jpg")  # JPEG only: still the kodak set
    (kodak / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    assert [p.name for p in C.example_paths(tmp_path)] == ["a.jpg"]
    assert list(C.example_images(tmp_path)) == ["a"]


def test_example_photos_sharing_a_stem_keep_distinct_names(tmp_path, rng):
    kodak = tmp_path / "kodak"
    kodak.mkdir()
    Image.fromarray(_photo(rng)).save(kodak / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(kodak / "a.jpg")
    Image.fromarray(_photo(rng)).save(kodak / "b.png")
    paths = C.example_paths(tmp_path)
    imgs = C.example_images(tmp_path)
    assert list(imgs) == C.example_names(paths)
    assert sorted(imgs) == ["a.jpg", "a.png", "b"]  # neither "a" hides the other
    assert imgs["a.jpg"].shape == (8, 8, 3) and imgs["a.png"].shape != (8, 8, 3)


# --------------------------------------------------------------------------- CLI
def _write_photos(folder: Path, rng, n=2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"photo{i}.png"
        Image.fromarray(_photo(rng)).save(p)
        paths.append(p)
    return paths


def test_cli_writes_palette_pngs_and_json_lines(tmp_path, rng, capsys):
    photos = _write_photos(tmp_path / "in", rng)
    bad = tmp_path / "in" / "broken.jpg"
    bad.write_bytes(b"not a photo")
    out = tmp_path / "out"
    rc = main(["compress", str(photos[0]), str(bad), str(photos[1]), "--k", "8", "--out", str(out)])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 1  # one input failed, the others were done
    assert [Path(x["path"]).name for x in lines] == ["photo0.png", "broken.jpg", "photo1.png"]
    assert "error" in lines[1] and "not a photo: text file" in lines[1]["error"]
    for rec, src in ((lines[0], photos[0]), (lines[2], photos[1])):
        assert {"path", "k", "psnr", "ssim", "bytes", "original_bytes", "ratio", "seconds"} <= rec.keys()
        written = out / "{}_k8.png".format(src.stem)
        assert rec["bytes"] == written.stat().st_size
        assert rec["original_bytes"] == src.stat().st_size
        assert rec["ratio"] == pytest.approx(rec["original_bytes"] / rec["bytes"], rel=1e-3)
        with Image.open(written) as im:
            assert im.mode == "P" and len(im.getpalette()) // 3 <= 8
    assert sorted(p.name for p in out.iterdir()) == ["photo0_k8.png", "photo1_k8.png"]


def test_cli_says_which_folders_are_empty(tmp_path, rng, capsys):
    photos = _write_photos(tmp_path / "in" / "ann", rng, 1)
    (tmp_path / "in" / "bob").mkdir()
    (tmp_path / "in" / "cara").mkdir()
    (tmp_path / "in" / "cara" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    rc = main(["compress", str(tmp_path / "in"), "--k", "4", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in captured.out.splitlines()]
    assert rc == 0  # an empty folder is said, not a failure
    skipped = {Path(x["path"]).relative_to(tmp_path / "in").as_posix(): x["skipped"] for x in lines if "skipped" in x}
    assert skipped == {"bob": "empty folder: no photos", "cara": "empty folder: no photos",
                       "cara/.DS_Store": "hidden file"}
    assert [x["path"] for x in lines if "k" in x] == [str(photos[0])]
    assert "1 files are not photos and 2 folders hold no photos" in captured.err
    # Given on its own, an empty folder used to print nothing at all.
    assert main(["compress", str(tmp_path / "in" / "bob"), "--k", "4", "--out", str(tmp_path / "out2")]) == 0
    captured = capsys.readouterr()
    assert [json.loads(x) for x in captured.out.splitlines()] == [
        {"path": str(tmp_path / "in" / "bob"), "skipped": "empty folder: no photos"}]
    assert "1 folders hold no photos" in captured.err


def test_cli_refuses_to_overwrite_unless_asked(tmp_path, rng, capsys):
    photo = _write_photos(tmp_path / "in", rng, 1)[0]
    out = tmp_path / "out"
    assert main(["compress", str(photo), "--k", "4", "--out", str(out)]) == 0
    first = (out / "photo0_k4.png").read_bytes()
    capsys.readouterr()
    assert main(["compress", str(photo), "--k", "4", "--out", str(out)]) == 1
    assert "exists" in json.loads(capsys.readouterr().out)["error"]
    assert (out / "photo0_k4.png").read_bytes() == first
    assert main(["compress", str(photo), "--k", "4", "--out", str(out), "--overwrite", "--dither"]) == 0
    assert (out / "photo0_k4_dither.png").exists()
    # ...and is dithered: not the plain output's pixels
    with Image.open(out / "photo0_k4.png") as plain, Image.open(out / "photo0_k4_dither.png") as dithered:
        assert not np.array_equal(np.asarray(plain.convert("RGB")), np.asarray(dithered.convert("RGB")))
    assert main(["compress", str(photo), "--k", "300", "--out", str(out)]) == 2
    capsys.readouterr()
    assert main(["compress", str(photo), "--k", "4", "--out", str(out / "photo0_k4.png" / "sub")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "is not a folder" in captured.err  # refused before any photo is read


def test_cli_gives_every_photo_its_own_output_and_never_touches_an_input(tmp_path, rng, capsys):
    # Same stems in two sub-folders, and two formats of one stem: no output may replace another.
    root = tmp_path / "in"
    a, b = _write_photos(root / "a", rng, 1)[0], _write_photos(root / "b", rng, 1)[0]
    Image.fromarray(_photo(rng)).save(root / "a" / "photo0.bmp")
    out = tmp_path / "out"
    assert main(["compress", str(root), "--k", "4", "--out", str(out)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a/photo0_bmp_k4.png", "a/photo0_png_k4.png", "b/photo0_k4.png"]
    assert sorted(Path(x["out"]).relative_to(out).as_posix() for x in lines) == written
    # An output folder inside the input is refused before any work; so is an output onto an input.
    inside = root / "compressed"
    assert main(["compress", str(root), "--k", "4", "--out", str(inside)]) == 2
    assert not inside.exists()
    victim = root / "a" / "photo0_k4.png"
    victim.write_bytes(b"an original that happens to have this name")
    assert main(["compress", str(a), "--k", "4", "--out", str(root / "a"), "--overwrite"]) == 2
    assert victim.read_bytes() == b"an original that happens to have this name"
    # In Python, too, an output that would land on an input is refused, even with overwrite.
    (rec,) = C.compress_files([victim], root / "a", 4, names=["photo0_k4.png"], overwrite=True)
    assert "is one of the inputs" in rec["error"] and victim.read_bytes().startswith(b"an original")
    assert C.output_names(["x.jpg", "x.jpg"], 8) == ["x_k8.png", "x_k8_2.png"]
    # A small file that decodes to 60 MP is refused with its reason (default limit 50 MP).
    from _corpus import png_claiming

    (tmp_path / "huge.png").write_bytes(png_claiming(10_000, 6_000))
    assert main(["compress", str(tmp_path / "huge.png"), "--k", "4", "--out", str(out)]) == 1
    assert "too large: 10000x6000 pixels" in json.loads(capsys.readouterr().out)["error"]
    assert b.exists()


def test_cli_does_not_import_tensorflow(tmp_path, rng):
    photo = _write_photos(tmp_path / "in", rng, 1)[0]
    code = (
        "import sys; from vision_lib.cli import main; "
        f"rc = main(['compress', {str(photo)!r}, '--k', '8', '--out', {str(tmp_path / 'out')!r}]); "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')); "
        "print('LOADED', loaded, rc)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "LOADED [] 0" in res.stdout, res.stdout
    assert (tmp_path / "out" / "photo0_k8.png").exists()


# --------------------------------------------------------------------------- widget
def test_explorer_updates_and_caches(tmp_path, rng):
    from vision_lib.widgets import CompressionExplorer

    photos = _write_photos(tmp_path / "in", rng, 2)
    ex = CompressionExplorer(tmp_path / "in", k=8)
    box = ex.widget  # builds the controls and shows the first photo
    c = ex._controls
    assert c["compressed"].value[:8] == b"\x89PNG\r\n\x1a\n"
    assert c["space"].value[:4] == b"\x89PNG"
    assert "PSNR" in c["figures"].value and box is ex.widget
    r16 = ex.update(k=16)
    assert not r16["cached"] and r16["k"] == 16 and r16["colors"] <= 16
    assert r16["bytes"] == len(c["compressed"].value)
    assert ex.update(k=8)["cached"] and ex.update(k=16)["cached"]
    rd = ex.update(dither=True)
    assert not rd["cached"] and rd["dither"]
    c["image"].value = photos[1]  # the dropdown drives the update
    assert ex.path == photos[1] and ex.last_seconds is not None
    c["k"].value = 5
    assert ex.k == 5 and "k=5" in c["figures"].value
    # A bad k from code is refused and does not stick; an unreadable photo is shown as such.
    for bad in (1, 2.7, 300):
        with pytest.raises(ValueError, match="between 2 and 256"):
            ex.update(k=bad)
    assert ex.k == 5 and ex.update(dither=False)["k"] == 5
    broken = tmp_path / "in" / "zz_broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    c["image"].options = [*c["image"].options, ("broken", broken)]
    c["image"].value = broken  # no exception escapes the control
    assert "Cannot show" in c["figures"].value and "not a valid PNG file" in c["figures"].value
    assert c["compressed"].value == b""


def test_explorer_live_fits_are_honest_and_do_not_depend_on_the_path_taken(tmp_path, rng):
    from vision_lib.widgets import CompressionExplorer

    photos = _write_photos(tmp_path / "in", rng, 1)
    image = C.load_image(photos[0])
    a = CompressionExplorer(photos, k=16)
    for k in (40, 8, 3):
        a.update(k=k)
    r = a.update(k=24)
    b = CompressionExplorer(photos, k=24)
    b.update()
    assert np.array_equal(a._palettes[(photos[0], 24)], b._palettes[(photos[0], 24)])
    assert r["fit"] == "live" and r["k"] == 24 and r["colors"] == 24
    shown = np.asarray(Image.open(io.BytesIO(a._results[(photos[0], 24, False)]["png"])).convert("RGB"))
    assert r["psnr"] == pytest.approx(C.psnr(image, shown), abs=1e-3)  # the figures of what is shown
    assert r["ssim"] == pytest.approx(C.ssim(image, shown), abs=1e-5)
    rd = a.update(dither=True)  # the toggle reuses the k=24 palette
    dithered = Image.open(io.BytesIO(a._results[(photos[0], 24, True)]["png"]))
    assert np.array_equal(np.asarray(dithered.getpalette(), np.uint8).reshape(-1, 3), a._palettes[(photos[0], 24)])
    assert rd["psnr"] == pytest.approx(C.psnr(image, np.asarray(dithered.convert("RGB"))), abs=1e-3)
    full = CompressionExplorer(photos, k=24, live=False).update()  # the CLI's palettes
    assert full["fit"] == "full" and abs(full["psnr"] - r["psnr"]) < 0.5


# --------------------------------------------------------------------------- notebook
def test_explorer_snapshot_is_static_html_of_the_current_view(tmp_path, rng):
    import base64
    import re

    from vision_lib.widgets import CompressionExplorer

    _write_photos(tmp_path / "in", rng, 1)
    ex = CompressionExplorer(tmp_path / "in", k=6)
    ex.update(k=12)
    bundle = ex.snapshot()._repr_mimebundle_()
    pngs = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', bundle["text/html"])]
    assert len(pngs) == 3 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert pngs[1] == ex._results[(ex.path, 12, False)]["png"]  # the quantized image at the current k
    assert "k=12" in bundle["text/html"] and bundle["text/plain"].startswith("k=12: PSNR")
    assert "<script" not in bundle["text/html"] and "http" not in bundle["text/html"]


@pytest.mark.notebook
def test_notebook_06_runs_on_small_parameters(tmp_path):
    out = tmp_path / "out"
    empty = tmp_path / "no_data"  # no kodak/ here: the notebook falls back to bundled images
    empty.mkdir()
    res = execute_notebook(NOTEBOOK_DIR / "06_image_compression.ipynb", tmp_path,
                           {"data_dir": str(empty), "limit": 2, "ks": [4, 16], "compare_limit": 1,
                            "methods": ["vision_lib", "kmeans", "median_cut", "fast_octree"],
                            "out_dir": str(out)}, html=False, timeout=900)
    assert res.ok, res.error
    assert res.stderr == [], res.stderr  # a clean report: no start-up noise, no warnings
    s = json.loads((out / "summary.json").read_text())
    assert len(s["images"]) == 2
    assert [r["k"] for r in s["by_k"]] == [4, 16]
    assert s["by_k"][1]["psnr"] > s["by_k"][0]["psnr"] + 2  # more colours, better quality
    assert s["by_k"][1]["bytes"] > s["by_k"][0]["bytes"]
    assert all(r["ratio_vs_plain_png"] > 1 for r in s["by_k"])
    methods = {r["method"] for r in s["by_method"]}
    assert methods == {"vision_lib", "kmeans", "median_cut", "fast_octree"}
    assert all(v["psnr_gain_db"] > -0.1 for v in s["versus_kmeans"]), s["versus_kmeans"]
    assert s["widget"]["k"] == 16 and s["widget"]["psnr"] > 20


def test_dithering_keeps_a_lossless_palette_lossless():
    g = np.tile(np.arange(256, dtype=np.uint8)[None, :], (12, 1))
    grey = np.stack([g, g, g], -1)  # 256 distinct colours, k = 256: nothing to approximate
    q = C.quantize(grey, 256, dither=True)
    assert C.psnr(grey, q.image) == float("inf")
    assert C.psnr(grey, C.quantize(grey, 16, dither=True).image) < 40  # still dithers when it must


def test_cli_refuses_an_unwritable_out_before_any_photo_and_counts_inputs_once(tmp_path, rng, capsys,
                                                                               monkeypatch):
    import tempfile

    root = tmp_path / "in"
    _write_photos(root, rng, 2)
    (root / "broken.jpg").write_text("text")  # a scan failure, counted once among the inputs
    (root / "empty.png").write_bytes(b"")
    Image.new("RGB", (1, 1)).save(root / "dot.png")  # a photo that fails when decoded
    out = tmp_path / "out"
    assert main(["compress", str(root), "--k", "4", "--out", str(out)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == "vision-lib compress: 3 of 5 inputs failed (see their JSON lines)"

    def read_only(*args, **kwargs):  # as an unwritable folder answers (root ignores permission bits)
        raise PermissionError(13, "Permission denied", str(kwargs.get("dir")))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert main(["compress", str(root), "--k", "4", "--out", str(tmp_path / "ro" / "new")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Permission denied" in captured.err  # refused at once, not per photo
