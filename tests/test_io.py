"""vision_lib.io: every awkward photo becomes RGB uint8, every unusable file a clear reason."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _corpus import EXPECTED_REASONS, held_by_another_run, make_bad_corpus, png_claiming, save_exif_rotated, tree_digest
from vision_lib import io


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    make_bad_corpus(root)
    return root


@pytest.mark.parametrize("name, reason", sorted(EXPECTED_REASONS.items()))
def test_unusable_files_raise_image_error_with_reason(corpus, name, reason):
    if reason == "no face found":
        assert io.load_image(corpus / name).shape[2] == 3  # loads fine; faces are not io's business
        return
    with pytest.raises(io.ImageError) as err:
        io.load_image(corpus / name)
    assert reason in err.value.reason
    assert err.value.path.endswith(Path(name).name)


def test_bomb_is_refused_from_the_header_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(40000, 40000))
    with pytest.raises(io.ImageError, match="too large: 40000x40000"):
        io.load_image(path)
    # A lower limit refuses a normal image too, before decoding.
    Image.new("RGB", (300, 200)).save(tmp_path / "ok.png")
    with pytest.raises(io.ImageError, match="too large"):
        io.load_image(tmp_path / "ok.png", max_pixels=50_000)


@pytest.mark.parametrize("malformed", [False, True], ids=["exif", "exif_with_a_malformed_tag"])
def test_exif_orientation_is_applied(tmp_path, malformed):
    upright = np.zeros((40, 60, 3), np.uint8)  # 60 wide, 40 high, red block at the top-left
    upright[:10, :15] = (255, 0, 0)
    save_exif_rotated(upright, tmp_path / "rot.jpg", malformed=malformed)
    if malformed:  # the case this test is for: Pillow's own helper fails on the file
        from PIL import ImageOps

        with pytest.raises(TypeError), Image.open(tmp_path / "rot.jpg") as im:
            ImageOps.exif_transpose(im)
    stored = np.asarray(Image.open(tmp_path / "rot.jpg"))
    assert stored.shape[:2] == (60, 40)  # the file itself holds the pixels sideways
    loaded = io.load_image(tmp_path / "rot.jpg")
    assert loaded.shape == (40, 60, 3)
    assert loaded[:10, :15, 0].mean() > 200 and loaded[:10, :15, 1].mean() < 60
    assert loaded[-10:, -15:, 0].mean() < 60


def test_alpha_is_flattened_on_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 2] = 255  # blue
    rgba[:, 10:, 3] = 255  # right half opaque, left half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = io.load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (20, 20, 3)
    assert (out[:, :10] == 255).all()
    assert (out[:, 10:] == (0, 0, 255)).all()


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path):
    grey = np.array([[0, 32768], [65535, 65535]], np.uint16).repeat(4, 0).repeat(4, 1)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = io.load_image(tmp_path / "g16.png")
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[0, 7, 0] == 128 and out[7, 0, 0] == 255
    assert (out[..., 0] == out[..., 2]).all()


@pytest.mark.parametrize("top", [1.0, 255.0])
def test_float_tiffs_in_0_1_or_0_255_keep_their_brightness(tmp_path, top):
    grey = np.array([[0.0, 0.5], [1.0, 1.0]], np.float32).repeat(4, 0).repeat(4, 1) * top
    Image.fromarray(grey, "F").save(tmp_path / "f.tif")
    out = io.load_image(tmp_path / "f.tif")
    assert out[0, 0, 0] == 0 and out[0, 7, 0] == 128 and out[7, 0, 0] == 255


def test_cmyk_palette_and_grey_become_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)  # red in CMYK
    red = io.load_image(tmp_path / "cmyk.jpg")
    assert red.shape == (16, 16, 3)
    assert red[..., 0].mean() > 200 and red[..., 1].mean() < 60 and red[..., 2].mean() < 60
    Image.new("RGB", (8, 8), (10, 200, 30)).convert("P").save(tmp_path / "pal.png")
    assert np.abs(io.load_image(tmp_path / "pal.png")[0, 0].astype(int) - (10, 200, 30)).max() <= 30
    Image.new("L", (8, 8), 77).save(tmp_path / "grey.png")
    assert tuple(io.load_image(tmp_path / "grey.png")[0, 0]) == (77, 77, 77)


def _big_scene(h: int = 3000, w: int = 4000) -> np.ndarray:
    """A smooth generated scene with a red block at the top-left (which side is up must survive)."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 255 // w), (yy * 255 // h), np.full_like(xx, 90)], axis=2).astype(np.uint8)
    rgb[: h // 6, : w // 6] = (255, 0, 0)
    return rgb


@pytest.mark.parametrize("kind", ["rgb", "exif_rotated", "cmyk", "grey"])
def test_reduced_decode_is_the_photo_at_a_quarter(tmp_path, kind):
    import cv2

    upright = _big_scene()
    path = tmp_path / "big.jpg"
    if kind == "exif_rotated":
        save_exif_rotated(upright, path)
    else:
        Image.fromarray(upright).convert({"rgb": "RGB", "cmyk": "CMYK", "grey": "L"}[kind]).save(path, quality=90)
    full = io.load_image(path)
    out = io.load_image_reduced(path, 640)
    assert out.scale == 0.25 and out.shape == full.shape[:2] == (3000, 4000)  # upright, whole-photo size
    assert out.image.shape == (750, 1000, 3) and out.image.dtype == np.uint8
    # The same picture as the full decode shrunk: orientation, colours and CMYK conversion kept.
    shrunk = cv2.resize(full, (1000, 750), interpolation=cv2.INTER_AREA)
    assert np.abs(out.image.astype(int) - shrunk).mean() < 3
    assert out.image[:100, :100, 0].mean() > 200 or kind == "grey"
    # A side beyond the photo, or a larger need, reduces less or not at all.
    assert io.load_image_reduced(path, 1600).scale == 0.5
    whole = io.load_image_reduced(path, 5000)
    assert whole.scale == 1.0 and np.array_equal(whole.image, full)


def test_reduced_decode_leaves_other_formats_and_small_photos_whole(tmp_path):
    Image.fromarray(_big_scene(600, 800)).save(tmp_path / "big.png")
    Image.fromarray(_big_scene(300, 400)).save(tmp_path / "small.jpg", quality=90)
    for name in ("big.png", "small.jpg"):
        out = io.load_image_reduced(tmp_path / name, 100 if name == "big.png" else 640)
        assert out.scale == 1.0 and np.array_equal(out.image, io.load_image(tmp_path / name))
    with pytest.raises(io.ImageError, match="too large"):  # the same checks as load_image
        io.load_image_reduced(tmp_path / "big.png", 100, max_pixels=1000)


def _pillow_only(monkeypatch):
    """Decode as before the fast path: every JPEG through Pillow."""
    from vision_lib.io import decode

    monkeypatch.setattr(decode, "decode_jpeg", lambda *a, **k: None)
    monkeypatch.setattr(decode, "decode_jpeg_rows", lambda *a, **k: None)


def _jpeg_variants(tmp_path) -> dict[str, Path]:
    """A detailed 600x400 scene as the JPEGs people have: baseline 4:2:0 and 4:4:4, progressive,
    with restart markers, grey, an MPO (a phone's JPEG with a second image), and each EXIF
    orientation 2..8."""
    rng = np.random.default_rng(0)
    scene = _big_scene(400, 600)
    scene = np.clip(scene.astype(int) + rng.integers(-40, 40, scene.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(scene)
    out = {}
    for name, kw in {"baseline": {}, "444": {"subsampling": 0}, "progressive": {"progressive": True},
                     "restart": {"restart_marker_rows": 1}}.items():
        im.save(tmp_path / f"{name}.jpg", quality=90, **kw)
        out[name] = tmp_path / f"{name}.jpg"
    im.convert("L").save(tmp_path / "grey.jpg", quality=90)
    out["grey"] = tmp_path / "grey.jpg"
    im.save(tmp_path / "two.mpo", "MPO", save_all=True, append_images=[im.resize((300, 200))], quality=90)
    out["mpo"] = tmp_path / "two.mpo"
    for o in range(2, 9):
        exif = Image.Exif()
        exif[0x0112] = o
        im.save(tmp_path / f"orient{o}.jpg", quality=90, exif=exif.tobytes())
        out[f"orient{o}"] = tmp_path / f"orient{o}.jpg"
    return out


def test_fast_jpeg_path_gives_pillows_pixels(tmp_path, monkeypatch):
    pytest.importorskip("simplejpeg", reason="the fast JPEG path needs the simplejpeg wheel (requirements.txt)")
    from vision_lib.io import jpeg

    files = _jpeg_variants(tmp_path)
    with Image.open(files["mpo"]) as im:
        assert im.format == "MPO"
    decoded = []  # what the fast decoder gave each time: an array, or None (fallback)
    real = jpeg.decode_jpeg
    monkeypatch.setattr(io.decode, "decode_jpeg", lambda *a, **k: decoded.append(real(*a, **k)) or decoded[-1])
    fast = {name: [io.load_image_reduced(p, side) for side in (600, 300, 150, 75)] for name, p in files.items()}
    assert len(decoded) == 4 * len(files) and all(d is not None for d in decoded)  # no fallback to Pillow
    _pillow_only(monkeypatch)
    for name, p in files.items():
        for side, got in zip((600, 300, 150, 75), fast[name]):
            ref = io.load_image_reduced(p, side)
            assert (got.scale, got.shape) == (ref.scale, ref.shape), (name, side)
            assert got.image.flags.c_contiguous and got.image.dtype == np.uint8
            assert np.array_equal(got.image, ref.image), (name, side)
    assert [d.scale for d in fast["baseline"]] == [1.0, 0.5, 0.25, 0.125]
    assert fast["orient6"][0].shape == (600, 400)  # whole-photo size, upright


def test_jpegs_the_fast_path_leaves_keep_pillows_answer(tmp_path, monkeypatch):
    pytest.importorskip("simplejpeg", reason="the fast JPEG path needs the simplejpeg wheel (requirements.txt)")
    files = _jpeg_variants(tmp_path)
    data = files["baseline"].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.fromarray(_big_scene(400, 600)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=90)
    save_exif_rotated(_big_scene(40, 60), tmp_path / "odd_exif.jpg", malformed=True)
    before = {}
    with monkeypatch.context() as m:
        _pillow_only(m)
        for name in ("cmyk.jpg", "odd_exif.jpg"):
            before[name] = io.load_image_reduced(tmp_path / name, 150)
        with pytest.raises(io.ImageError) as old:
            io.load_image(tmp_path / "cut.jpg")
    with pytest.raises(io.ImageError) as new:
        io.load_image(tmp_path / "cut.jpg")
    assert new.value.reason == old.value.reason == "cannot decode: truncated image file"
    for name, ref in before.items():
        got = io.load_image_reduced(tmp_path / name, 150)
        assert (got.scale, got.shape) == (ref.scale, ref.shape) and np.array_equal(got.image, ref.image)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_region_is_decoded_as_in_the_whole_decode_and_the_rest_skipped(tmp_path, orientation):
    pytest.importorskip("simplejpeg", reason="the fast JPEG path needs the simplejpeg wheel (requirements.txt)")
    rng = np.random.default_rng(orientation)
    scene = np.clip(_big_scene(1200, 1600).astype(int) + rng.integers(-40, 40, (1200, 1600, 3)), 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    Image.fromarray(scene.astype(np.uint8)).save(path, quality=90, exif=exif.tobytes())
    for side, region in ((1600, (100, 60, 400, 300)), (800, (900, 700, 1100, 800)), (400, (0, 0, 50, 50))):
        whole = io.load_image_reduced(path, side)
        part = io.load_image_reduced(path, side, region=region)
        assert (part.scale, part.shape, part.image.shape) == (whole.scale, whole.shape, whole.image.shape)
        x0, y0, x1, y1 = (round(v * whole.scale) for v in region)
        assert np.array_equal(part.image[y0:y1, x0:x1], whole.image[y0:y1, x0:x1]), (side, region)
        if not part.complete:  # the decoder stopped early: what it skipped is black, not the photo
            assert not np.array_equal(part.image, whole.image) and (part.image == 0).all(axis=2).any()
    # The part a region needs lies at the top of the file for these turns: the decoder stops early.
    top = io.load_image_reduced(path, 1600, region=(0, 0, 200, 200))
    assert top.complete is (orientation not in (1, 2, 5, 8))


def test_a_region_of_a_progressive_or_damaged_jpeg_is_decoded_as_before(tmp_path, monkeypatch):
    pytest.importorskip("simplejpeg", reason="the fast JPEG path needs the simplejpeg wheel (requirements.txt)")
    files = _jpeg_variants(tmp_path)
    prog = io.load_image_reduced(files["progressive"], 300, region=(0, 0, 50, 50))
    assert prog.complete and np.array_equal(prog.image, io.load_image_reduced(files["progressive"], 300).image)
    for name in ("restart", "mpo"):  # the decoder skips to a restart or end marker: still a clean stop
        part = io.load_image_reduced(files[name], 300, region=(0, 0, 50, 50))
        assert not part.complete
        assert np.array_equal(part.image[:25, :25], io.load_image_reduced(files[name], 300).image[:25, :25])
    data = files["baseline"].read_bytes()
    for name, cut in (("cut_in_region.jpg", len(data) // 10), ("cut_below.jpg", len(data) * 9 // 10)):
        (tmp_path / name).write_bytes(data[:cut])
        with pytest.raises(io.ImageError, match="truncated image file"):
            io.load_image_reduced(tmp_path / name, 600, region=(0, 0, 100, 60))


def test_without_the_fast_decoder_every_jpeg_still_loads(tmp_path, monkeypatch):
    import sys

    files = _jpeg_variants(tmp_path)
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # import simplejpeg raises ImportError
    out = io.load_image_reduced(files["orient6"], 150)
    assert out.scale == 0.25 and out.shape == (600, 400) and out.image.shape == (150, 100, 3)


def test_load_image_bytes_matches_load_image(corpus):
    path = corpus / "formats" / "rgba.png"
    np.testing.assert_array_equal(io.load_image_bytes(path.read_bytes()), io.load_image(path))
    with pytest.raises(io.ImageError, match="empty"):
        io.load_image_bytes(b"")


def test_loading_never_changes_the_files_and_accounts_for_every_one(corpus):
    before = tree_digest(corpus)
    report = io.LoadReport()
    scan = io.scan_folder(corpus)
    loaded = list(io.iter_loaded(scan.photos, report))
    assert tree_digest(corpus) == before
    names = {p.relative_to(corpus).as_posix() for p, _ in loaded} | {
        Path(r.source).relative_to(corpus).as_posix() for r in report.rejected + scan.skipped}
    assert names == set(before)  # every file, hidden ones too, is either loaded or has a reason
    assert {Path(r.source).name: r.reason for r in scan.skipped} == {
        "empty.jpg": "empty file", "notes_named_like_a_photo.jpg": "not a photo: text file",
        "README.txt": "not a photo: text file", ".hidden.jpg": "hidden file"}
    assert {Path(r.source).name for r in report.rejected} == {"truncated.jpg", "one_pixel.png", "bomb_40000x40000.png"}
    assert all(r.reason for r in report.rejected)


def test_list_images_is_recursive_sorted_and_skips_other_files(corpus):
    found = [p.relative_to(corpus).as_posix() for p in io.list_images(corpus)]
    assert found == sorted(found)
    assert "README.txt" not in found and ".hidden.jpg" not in found
    assert "no_face/sky.jpg" in found and "formats/cmyk.jpg" in found
    assert io.list_images(corpus, recursive=False) == [p for p in io.list_images(corpus) if p.parent == corpus]
    assert {r.source: r.reason for r in io.scan_folder(corpus, recursive=False).skipped}[str(corpus / "formats")] \
        == "sub-folder (not searched)"
    assert io.list_images(corpus / "empty.jpg") == [corpus / "empty.jpg"]
    with pytest.raises(FileNotFoundError):
        io.list_images(corpus / "missing")


def test_missing_files_and_broken_links_read_as_such(tmp_path):
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    # A broken link is said to be one, as a folder scan says it (not "No such file").
    for name, says in (("absent.jpg", "No such file or directory"), ("gone.jpg", r"broken link \(its target")):
        with pytest.raises(io.ImageError, match=f"cannot read: {says}"):
            io.load_image(tmp_path / name)


def test_named_pipes_are_refused_not_waited_on(tmp_path):
    from vision_lib.cache import file_digest

    os.mkfifo(tmp_path / "pipe.jpg")  # opening it for reading would block until a writer came
    with pytest.raises(io.ImageError, match="cannot read: not a regular file"):
        io.load_image(tmp_path / "pipe.jpg")
    with pytest.raises(OSError, match="not a regular file"):
        file_digest(tmp_path / "pipe.jpg")


def test_file_digest_sees_a_rewrite_that_restores_the_modification_time(tmp_path):
    from vision_lib.cache import file_digest

    p = tmp_path / "x.bin"
    p.write_bytes(b"A" * 100)
    before, st = file_digest(p), p.stat()
    p.write_bytes(b"B" * 100)  # same size; then the old modification time put back
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_digest(p) != before


def test_an_unusable_cache_folder_warns_and_work_goes_on(tmp_path, monkeypatch):
    from vision_lib import cache

    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("VISION_LIB_CACHE", str(tmp_path / "file" / "cache"))  # a file where a folder must be
    cache._writable.cache_clear()
    calls = []
    run = cache.cached(lambda digest, path=None: calls.append(digest) or len(calls))
    with pytest.warns(RuntimeWarning, match="disk cache unavailable"):
        assert not cache.enabled()
    assert run("d1", path="p") == 1 and run("d1", path="p") == 2  # computed each time, no error
    cache._writable.cache_clear()


def test_output_folders_are_checked_and_files_written_whole(tmp_path):
    (tmp_path / "file").write_text("x")
    for bad in ("file", "file/sub"):
        with pytest.raises(FileExistsError, match="file exists and is not a folder"):
            io.check_output_folder(tmp_path / bad)
    assert io.check_output_folder(tmp_path / "new" / "sub") == tmp_path / "new" / "sub"
    assert not (tmp_path / "new").exists()  # checked, not created
    io.write_atomic(tmp_path / "out.bin", b"data")
    assert (tmp_path / "out.bin").read_bytes() == b"data" and sorted(os.listdir(tmp_path)) == ["file", "out.bin"]


def test_folder_lock_keeps_a_second_writer_out(tmp_path):
    out = tmp_path / "out"
    with io.folder_lock(out) as held, io.folder_lock(out):  # re-entrant within one run
        assert held == out and out.is_dir()
        from concurrent.futures import ThreadPoolExecutor

        def other_thread():
            with io.folder_lock(out):
                pass

        with ThreadPoolExecutor(1) as pool, pytest.raises(BlockingIOError):
            pool.submit(other_thread).result()  # another thread of this process is kept out too
    with held_by_another_run(out):
        with pytest.raises(BlockingIOError, match="another run is writing to .*out"), io.folder_lock(out):
            pass
    with io.folder_lock(out):  # released with the other holder's descriptor
        pass
    with pytest.raises(ValueError), io.folder_lock(tmp_path / "new" / "a" / "b"):
        raise ValueError("failed before writing anything")
    assert not (tmp_path / "new").exists()  # folders it created and left empty are removed again
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"), io.folder_lock(tmp_path / "file" / "sub"):
        pass


def test_folder_lock_refuses_an_unwritable_folder_before_the_work(tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(kwargs.get("dir")))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    (tmp_path / "ro").mkdir()
    with pytest.raises(PermissionError, match="Permission denied: '.*ro'"), \
            io.folder_lock(tmp_path / "ro"):
        pytest.fail("the block must not run")
    assert io.outputs._HELD == {}
    from vision_lib import average

    with pytest.raises(PermissionError, match="Permission denied"):  # average asks before its work
        average.check_outputs(["Jo"], tmp_path / "ro")


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt during the test, however pytest was launched: a background job
    (`cmd &`, nohup, some CI runners) inherits SIGINT as ignored. The caller's disposition is put back."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_signals_are_held_back_then_delivered(ctrl_c_raises):
    import signal

    done = []
    with pytest.raises(KeyboardInterrupt):
        with io.signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the signal")  # still runs: the interrupt waits for the block's end
    assert done == ["after the signal"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_staged_folder_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    inode = out.stat().st_ino
    with pytest.raises(KeyboardInterrupt), io.staged_folder(out) as tmp:
        (tmp / "half.csv").write_text("a")
        raise KeyboardInterrupt
    assert os.listdir(out) == [] and io.holds_no_output(out)  # nothing half-written, no hidden leftovers
    (out / f"{io.STAGING_PREFIX}killed").mkdir()  # what `kill -9` would leave behind
    assert io.holds_no_output(out)
    with io.staged_folder(out) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.csv").write_text("a")
        (tmp / "done.json").write_text("{}")
        assert not (out / "sub").exists()
    assert sorted(os.listdir(out)) == ["done.json", "sub"] and (out / "sub" / "a.csv").read_text() == "a"
    assert out.stat().st_ino == inode and not io.holds_no_output(out)  # the folder itself is kept
    with pytest.raises(FileExistsError, match="done.json appeared during this run"), \
            io.staged_folder(out) as tmp:
        (tmp / "sub2").mkdir()  # moved first, then taken out again when done.json clashes
        (tmp / "done.json").write_text("other")
    assert (out / "done.json").read_text() == "{}" and sorted(os.listdir(out)) == ["done.json", "sub"]


def test_staged_folder_is_not_cut_by_an_interrupt_while_moving(tmp_path, monkeypatch, ctrl_c_raises):
    import signal

    out = tmp_path / "out"
    out.mkdir()
    move = io.outputs._move_new

    def interrupted_move(src, dst):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after the first entry's move has begun
        return move(src, dst)

    monkeypatch.setattr(io.outputs, "_move_new", interrupted_move)
    with pytest.raises(KeyboardInterrupt), io.staged_folder(out) as tmp:
        for name in ("a", "b"):
            (tmp / name).mkdir()
        (tmp / "metrics.json").write_text("{}")
    assert os.listdir(out) == []  # all or nothing: the moved entries were taken out again

    def no_hard_links(src, dst):  # FAT, exFAT, some network shares
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(io.outputs, "_move_new", move)
    monkeypatch.setattr(os, "link", no_hard_links)
    with io.staged_folder(out) as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert os.listdir(out) == ["metrics.json"]


def test_cli_sigterm_is_one_line_and_runs_clean_up(monkeypatch, capsys):
    import signal

    from vision_lib import cli

    cleaned = []

    def terminated(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            cleaned.append(True)

    monkeypatch.setattr(cli, "_run_compress", terminated)
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["compress", "x.png", "--out", "y"]) == 143
    assert capsys.readouterr().err.strip() == "vision-lib compress: terminated" and cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) == before  # the caller's handler is back


def test_cli_worker_killed_is_one_line_not_a_traceback(monkeypatch, capsys):
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    from vision_lib import cli

    def killed(args):
        raise TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated.\n\n"
                                    "The exit codes of the workers are {SIGKILL(-9)}")

    monkeypatch.setattr(cli, "_run_compress", killed)
    assert cli.main(["compress", "x.png", "--out", "y"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unexpectedly terminated" in err and "SIGKILL(-9)" in err


def test_cli_interrupted_notebooks_keep_asyncio_quiet(monkeypatch, capsys):
    import logging

    from vision_lib import cli, notebooks

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(notebooks, "run_notebooks", interrupted)
    monkeypatch.setattr(logging.getLogger("asyncio"), "disabled", False)
    assert cli.main(["notebooks", "--out", "reports"]) == 130
    assert capsys.readouterr().err.strip() == "vision-lib notebooks: interrupted"
    assert logging.getLogger("asyncio").disabled  # the aborted cell's task logs no traceback at exit


def test_cli_interrupt_is_one_line_not_a_traceback(monkeypatch, capsys):
    from vision_lib import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_compress", interrupted)
    assert cli.main(["compress", "x.png", "--out", "y"]) == 130
    assert capsys.readouterr().err.strip() == "vision-lib compress: interrupted"


def test_list_images_follows_linked_folders_once(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "cara"
    elsewhere.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (4, 4)).save(elsewhere / f"{i}.png")
    root = tmp_path / "people"
    (root / "ann").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "ann" / "a.png")
    (root / "cara").symlink_to(elsewhere, target_is_directory=True)  # a person linked in
    (root / "ann" / "loop").symlink_to(root, target_is_directory=True)  # a loop back to the top
    (root / "zz_again").symlink_to(elsewhere, target_is_directory=True)  # a second way into cara
    found = [p.relative_to(root).as_posix() for p in io.list_images(root)]
    assert found == ["ann/a.png", "cara/0.png", "cara/1.png", "cara/2.png"]
    assert io.photo_set(root, labelled=True).labels == ["ann", "cara", "cara", "cara"]


def test_empty_folders_get_one_line_each_and_others_none(tmp_path):
    root = tmp_path / "people"
    (root / "ann").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "ann" / "a.png")
    (root / "ann" / "trip").mkdir()  # empty, below a person with photos
    (root / "bob").mkdir()  # nothing at all
    (root / "cara").mkdir()
    (root / "cara" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # only a hidden file
    (root / "dan.jpg").mkdir()  # a folder named like a photo: not a failed photo
    (root / "eve").mkdir()
    (root / "eve" / "notes.txt").write_text("no photos, but its file has its own line")
    scan = io.scan_folder(root)
    reasons = {r.source: r.reason for r in scan.relative_skipped()}
    assert {s for s, r in reasons.items() if r == io.EMPTY_FOLDER} == {"ann/trip", "bob", "cara", "dan.jpg"}
    assert reasons["cara/.DS_Store"] == "hidden file" and reasons["eve/notes.txt"].startswith("not a photo")
    assert not any(io.named_like_a_photo(r) for r in scan.skipped if r.reason == io.EMPTY_FOLDER)
    ps = io.photo_set(root, labelled=True)
    assert ps.labels == ["ann"] and sum(r.reason == io.EMPTY_FOLDER for r in ps.skipped) == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    assert io.scan_folder(empty).skipped == [io.Rejected(str(empty), io.EMPTY_FOLDER)]
    assert io.scan_folder(root, recursive=False).relative_skipped()[0].reason == "sub-folder (not searched)"


def test_photo_set_labels_and_reproducible_limit(tmp_path):
    for person, n in (("ann", 5), ("bob", 3)):
        (tmp_path / person).mkdir()
        for i in range(n):
            Image.new("RGB", (4, 4)).save(tmp_path / person / f"{i}.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "loose.png")
    ps = io.photo_set(tmp_path, labelled=True)
    assert len(ps) == 8 and ps.classes == ["ann", "bob"]
    assert ps.relative(ps.paths[0]) == "ann/0.png"
    small = ps.limit(per_label=2, seed=3)
    assert sorted(small.labels) == ["ann", "ann", "bob", "bob"]
    assert small.paths == ps.limit(per_label=2, seed=3).paths
    assert len(ps.limit(total=3)) == 3
    assert len(io.photo_set(tmp_path)) == 9


def test_photo_set_people_draws_whole_people_reproducibly(tmp_path):
    for person in "abcdef":
        (tmp_path / person).mkdir()
        for i in range(ord(person) - ord("a") + 1):
            Image.new("RGB", (4, 4)).save(tmp_path / person / f"{i}.png")
    ps = io.photo_set(tmp_path, labelled=True)
    three = ps.people(3, seed=1)
    assert len(three.classes) == 3 and three.paths == ps.people(3, seed=1).paths
    assert all(three.labels.count(p) == ps.labels.count(p) for p in three.classes)  # every photo of each
    assert {tuple(ps.people(3, seed=s).classes) for s in range(8)} != {tuple(three.classes)}  # the seed draws
    assert set(three.people(2, seed=1).paths) <= set(three.paths)
    assert ps.people(None).paths == ps.people(10).paths == ps.paths


def test_resize_max_side():
    img = np.zeros((100, 400, 3), np.uint8)
    small, scale = io.resize_max_side(img, 200)
    assert small.shape == (50, 200, 3) and scale == pytest.approx(0.5)
    same, one = io.resize_max_side(img, 1000)
    assert same is img and one == 1.0
    img[:, ::2] = 200  # stripes one pixel wide: area averaging keeps their mean, bilinear samples them
    area, _ = io.resize_max_side(img, 160)
    linear, k = io.resize_max_side(img, 160, smooth=False)
    assert linear.shape == area.shape == (40, 160, 3) and k == pytest.approx(0.4)
    assert abs(float(area.mean()) - 100) < 1 and np.ptp(area) <= 40 and np.ptp(linear) >= 100


def test_real_photos_load_as_rgb(footballers_dir):
    paths = io.list_images(footballers_dir)[:5]  # the players' sub-folders are searched
    assert len(paths) == 5, paths
    for path in paths:
        img = io.load_image(path)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


# --------------------------------------------------------------------------- missing data (a user's machine)
def test_missing_data_says_where_photos_go_and_skips_the_notebook(tmp_path, monkeypatch, capsys):
    from vision_lib import config, notebooks

    monkeypatch.setenv("VISION_LIB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        config.dataset("footballers")
    text = str(err.value)
    assert str(tmp_path / "footballers") + "/<person>/*.jpg (one folder per person" in text
    assert f"vision-lib fetch lfw --out {tmp_path / 'footballers'}" in text and "in place of the footballers" in text
    assert "in place of" not in config.missing_data_message("lfw")
    results = notebooks.run_notebooks(tmp_path / "reports", only=["03"])  # no kernel is started
    assert [(r.name, r.ok) for r in results] == [("03_model_development", False)]
    printed = capsys.readouterr().out
    assert "missing data" in results[0].error and "[skip] 03_model_development" in printed
    assert "0 notebooks ran, 1 skipped for missing data (see above), 0 failed" in printed
    assert "Done: every notebook that has its data ran" in printed


def test_every_missing_data_set_is_listed_at_once_with_its_layout(tmp_path, monkeypatch, capsys):
    from vision_lib import cli, config

    monkeypatch.setenv("VISION_LIB_DATA", str(tmp_path))
    (tmp_path / "players" / "two_players_top").mkdir(parents=True)  # half a data set is still missing
    assert not config.has_dataset("players")
    assert cli.main(["notebooks", "--out", str(tmp_path / "reports"), "--only", "01", "04", "05"]) == 0
    printed = capsys.readouterr().out
    head = printed.split("[skip]")[0]  # listed once, before the first notebook
    for name in ("footballers", "lfw", "players"):
        assert f"- {name}, for notebook" in head, head
    assert "players/two_players_top/*.jpg and two_players_bot/*.jpg" in head and "labels_top.csv" in head
    players = head.split("- players")[1]
    assert "fetch lfw" not in players and "<person>" not in players  # crops of two players, not people folders
    assert "vision-lib fetch lfw --out " + str(tmp_path / "lfw") in head
    assert printed.count("[skip]") == 3 and "0 failed" in printed
    (tmp_path / "footballers").mkdir()
    assert config.dataset("footballers") == tmp_path / "footballers"


def test_defaults_follow_the_makefile_without_environment_variables(tmp_path, monkeypatch):
    # Calling .venv/bin/vision-lib directly (no make) must find ../shared as `make` does.
    from vision_lib import config
    from vision_lib import embeddings as E

    monkeypatch.delenv("VISION_LIB_DATA", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("VISION_LIB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(config, "SHARED_DIR", tmp_path / "shared")
    assert config.data_dir() == (config.PROJECT_ROOT / "data").resolve()
    with pytest.raises(E.WeightsNotFoundError):
        E.mobilenet_weights_path()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    weights = tmp_path / "shared" / "models" / "keras" / "models" / E.MOBILENET_WEIGHTS_FILE
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    assert config.data_dir() == (tmp_path / "shared" / "data").resolve()
    assert E.mobilenet_weights_path() == weights
    monkeypatch.setenv("VISION_LIB_DATA", str(tmp_path / "mine"))
    assert config.data_dir() == (tmp_path / "mine").resolve()


def test_real_data_fixtures_look_where_the_library_looks(tmp_path, monkeypatch):
    # The fixtures looked only in ../shared/data; the README and notebooks default to data/ without it.
    import conftest

    from vision_lib import config

    monkeypatch.delenv("VISION_LIB_DATA", raising=False)
    monkeypatch.setattr(config, "SHARED_DIR", tmp_path / "shared")  # no ../shared beside the checkout
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path / "project")
    with pytest.raises(pytest.skip.Exception) as skipped:
        conftest._dataset("lfw")
    assert f"put its photos in {(tmp_path / 'project' / 'data' / 'lfw').resolve()}/" in str(skipped.value)
    assert "VISION_LIB_DATA" in str(skipped.value)
    (tmp_path / "project" / "data" / "lfw").mkdir(parents=True)
    assert conftest._dataset("lfw") == (tmp_path / "project" / "data" / "lfw").resolve()
    (tmp_path / "shared" / "data" / "lfw").mkdir(parents=True)  # ../shared/data first, when present
    assert conftest._dataset("lfw") == (tmp_path / "shared" / "data" / "lfw").resolve()
    monkeypatch.setenv("VISION_LIB_DATA", str(tmp_path / "mine"))
    with pytest.raises(pytest.skip.Exception, match="mine"):
        conftest._dataset("lfw")


def test_notebook_runner_refuses_typos_and_the_notebooks_folder(tmp_path):
    from vision_lib import notebooks

    for only in (["7"], [], ["03_model", "9"]):
        with pytest.raises(ValueError, match="no notebook matches"):
            notebooks.list_notebooks(only)
    assert [b.stem for b in notebooks.list_notebooks(["03"])] == ["03_model_development"]
    with pytest.raises(ValueError, match="holds the notebooks themselves"):
        notebooks.run_notebooks(notebooks.NOTEBOOK_DIR, only=["06"])
    with pytest.raises(ValueError, match=r"parameter\(s\) \['compare_limt'\]"):
        notebooks.run_notebooks(tmp_path, params={"compare_limt": 1}, only=["06"])
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_fetch_refuses_a_non_empty_folder_and_never_hangs(tmp_path):
    import socket
    import subprocess
    import sys
    import threading

    from vision_lib.datasets import fetch_lfw

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not empty"):
        fetch_lfw(tmp_path / "mine")
    # A proxy that accepts the connection and never answers: the download must give up, not hang.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(4)], daemon=True).start()
    proxy = f"http://127.0.0.1:{server.getsockname()[1]}"
    code = ("from vision_lib.datasets import fetch_lfw\n"
            f"try:\n    fetch_lfw({str(tmp_path / 'new')!r}, timeout=1)\n"
            "except RuntimeError as exc:\n    print('FAILED CLEANLY', exc)\n")
    env = {**os.environ, "https_proxy": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy,
           "SCIKIT_LEARN_DATA": str(tmp_path / "sk")}
    try:
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    assert "FAILED CLEANLY" in res.stdout and "Could not download LFW" in res.stdout, res.stderr[-500:]
    assert not (tmp_path / "new").exists()
