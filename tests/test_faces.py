"""vision_lib.faces and `vision-lib faces`: detection, alignment, and a batch export that survives
bad input, resumes, and never touches its input folder."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _corpus import EXPECTED_REASONS, held_by_another_run, make_bad_corpus, tree_digest
from vision_lib import faces as F
from vision_lib.cli import main
from vision_lib.io import load_image

# A clear, frontal, single-face photo from the real footballer set (copied into tmp for tests).
FACE_PHOTO = "leo_messi/leo_messi_000.jpg"


@pytest.fixture(scope="module")
def face_photo(footballers_dir, tmp_path_factory) -> Path:
    src = footballers_dir / FACE_PHOTO
    if not src.is_file():
        pytest.skip(f"{src} not found")
    dst = tmp_path_factory.mktemp("face") / "face.jpg"
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture(scope="module")
def face_image(face_photo) -> np.ndarray:
    return load_image(face_photo)


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- detectors
def test_mtcnn_finds_the_face_with_five_keypoints(face_image):
    found = F.detect(face_image, "mtcnn")
    assert len(found) >= 1
    face = found[0]
    x, y, w, h = face.box
    assert face.score > 0.9 and w > 100 and h > 100
    assert set(face.keypoints) == set(F.KEYPOINTS)
    (lx, ly), (rx, ry) = face.keypoints["left_eye"], face.keypoints["right_eye"]
    assert lx < rx and x < lx < rx < x + w and y < ly < y + h / 2 and y < ry < y + h / 2
    assert F.detect(face_image, "mtcnn", min_size=10_000) == []


def test_compiled_mtcnn_gives_the_same_boxes_as_the_package(face_image):
    from mtcnn import MTCNN

    raw = MTCNN().detect_faces(face_image)  # the package's own eager path
    ours = F.MTCNNDetector(max_side=10_000).detect(face_image)
    assert len(ours) == len([d for d in raw if d["confidence"] >= 0.9])
    assert np.abs(np.array(ours[0].box) - np.array(raw[0]["box"])).max() <= 1


def test_haar_recipe_finds_the_face_and_two_eyes(face_image):
    found = F.detect(face_image, "haar")
    assert found, "the classic recipe should find this frontal face"
    face = found[0]
    assert face.score == 1.0
    eyes = face.eyes
    assert eyes is not None
    x, y, w, h = face.box
    (lx, ly), (rx, ry) = eyes
    assert lx < rx
    assert x <= lx <= x + w and x <= rx <= x + w and y <= ly <= y + 0.65 * h and y <= ry <= y + 0.65 * h
    # The same eyes MTCNN sees, within a fraction of the face size.
    mt = F.detect(face_image, "mtcnn")[0].keypoints
    assert np.hypot(lx - mt["left_eye"][0], ly - mt["left_eye"][1]) < 0.15 * w


def test_haar_recipe_needs_two_eyes():
    blank = np.full((300, 300, 3), 128, np.uint8)
    assert F.detect(blank, "haar") == []
    with pytest.raises(ValueError, match="unknown detector"):
        F.get_detector("yolo")


def test_large_photos_are_detected_downscaled_but_boxes_are_in_original_pixels(face_image):
    big = np.asarray(Image.fromarray(face_image).resize((face_image.shape[1] * 3, face_image.shape[0] * 3)))
    small_box = np.array(F.detect(face_image, "mtcnn")[0].box)
    big_box = np.array(F.MTCNNDetector(max_side=1024).detect(big)[0].box)
    np.testing.assert_allclose(big_box, small_box * 3, atol=0.08 * small_box[2] * 3)


# --------------------------------------------------------------------------- crop, align, quality
def test_crop_adds_margin_and_clamps_to_the_image():
    img = np.arange(100 * 80 * 3, dtype=np.uint8).reshape(100, 80, 3)
    face = F.Face((10, 20, 40, 50), 1.0)
    assert F.crop(img, face, margin=0.0).shape == (50, 40, 3)
    assert F.crop(img, face, margin=0.25).shape == (50 + 2 * 12, 40 + 2 * 10, 3)
    edge = F.crop(img, F.Face((70, 90, 30, 30), 1.0), margin=0.5)
    assert edge.shape == (100 - 75, 80 - 55, 3)
    with pytest.raises(ValueError):
        F.crop(img, F.Face((500, 500, 10, 10), 1.0))


def test_align_maps_eyes_exactly_onto_the_template():
    face = F.Face((0, 0, 10, 10), 1.0, {"left_eye": (30.0, 52.0), "right_eye": (71.0, 40.0)})
    m = F.alignment_matrix(face, size=160)
    for name, target in zip(("left_eye", "right_eye"), F.TEMPLATE[:2] * 160):
        np.testing.assert_allclose(m @ np.array([*face.keypoints[name], 1.0]), target, atol=1e-6)
    assert F.alignment_matrix(F.Face((0, 0, 10, 10), 1.0), 160) is None


def test_similarity_transform_recovers_rotation_scale_and_shift():
    from vision_lib.faces import similarity_transform

    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, size=(5, 2))
    a = 1.7 * np.exp(0.4j)
    dst_c = a * (src @ np.array([1, 1j])) + (12 - 5j)
    dst = np.c_[dst_c.real, dst_c.imag]
    M = similarity_transform(src, dst + rng.normal(scale=0.01, size=dst.shape))
    assert np.allclose(M[:, :2], [[a.real, -a.imag], [a.imag, a.real]], atol=1e-3)
    assert np.allclose(M[:, 2], [12, -5], atol=0.05)
    two = similarity_transform(src[:2], dst[:2])  # exact for two points
    assert np.allclose((two[:, :2] @ src[:2].T).T + two[:, 2], dst[:2])


def test_align_puts_the_detected_eyes_on_the_template(face_image):
    face = F.detect(face_image, "mtcnn")[0]
    aligned = F.align(face_image, face, size=160)
    assert aligned.shape == (160, 160, 3) and aligned.dtype == np.uint8
    again = F.detect(aligned, "mtcnn")
    assert again, "the aligned crop should still look like a face"
    kp = again[0].keypoints
    for name, target in zip(("left_eye", "right_eye"), F.TEMPLATE[:2] * 160):
        assert np.hypot(*(np.array(kp[name]) - target)) < 0.05 * 160, name
    # Without eye keypoints (e.g. a Haar face with one eye), a square resize of the box.
    assert F.align(face_image, F.Face(face.box, 1.0), size=64).shape == (64, 64, 3)


def test_quality_and_best_faces(face_image):
    face = F.detect(face_image, "mtcnn")[0]
    q = F.quality(face_image, face)
    assert q.size == face.size and q.frontalness is not None and 0.5 < q.frontalness <= 1.0
    blurred = np.asarray(Image.fromarray(face_image).resize((60, 80)).resize(face_image.shape[1::-1]))
    assert F.sharpness(blurred, face) < q.sharpness
    side = F.Face(face.box, face.score, {**face.keypoints, "nose": face.keypoints["left_eye"]})
    assert F.frontalness(side) < q.frontalness
    qs = [F.FaceQuality(30, 50.0, 0.9, 0.99), q, F.FaceQuality(100, 900.0, 0.1, 0.99)]
    assert F.best_faces(qs, 1) == [1]


# --------------------------------------------------------------------------- batches
def test_colourfulness_is_zero_for_grey_and_high_for_colour():
    grey = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, axis=0).repeat(3, axis=2)
    assert F.colourfulness(grey) == pytest.approx(0.0, abs=1e-9)
    colour = np.zeros((64, 64, 3), np.uint8)
    colour[:, :32] = (200, 40, 40)
    colour[:, 32:] = (40, 160, 220)
    assert F.colourfulness(colour) > 45  # "highly colourful" on Hasler & Susstrunk's scale


def test_curated_faces_leave_out_grey_other_person_and_duplicate_faces(tmp_path, monkeypatch):
    """Generated photos, a stand-in descriptor (the photo's red/green level as a 2-d vector):
    four of one person, a near copy of the first, someone else, a grey sketch and a profile."""
    import vision_lib.models as M

    class Descriptor:
        threshold = 0.5

        def describe(self, image, faces):
            return np.array([[image[0, 0, 0] / 100, image[0, 0, 1] / 100]] * len(faces), np.float32)

    monkeypatch.setattr(M, "get_descriptor", lambda name=None: Descriptor())
    people = {"a.png": (100, 40, 10), "b.png": (130, 45, 10), "c.png": (95, 60, 10), "d.png": (120, 30, 10),
              "copy_of_a.png": (102, 41, 10), "other.png": (250, 250, 10), "sketch.png": (90, 90, 90)}
    rows = []
    for k, (name, rgb) in enumerate(people.items()):
        image = np.zeros((60, 60, 3), np.uint8)
        image[:] = rgb
        image[::2, ::2] = np.clip(np.array(rgb) + 30, 0, 255)  # some texture, colour kept
        Image.fromarray(image).save(tmp_path / name)
        # Quality decreasing in file order: the ranking is a, b, c, d, copy_of_a, other, sketch.
        rows.append({"source": name, "face_index": "0", "x": 10, "y": 10, "w": 40, "h": 40, "score": 0.99, "size": 40,
                     "sharpness": 100.0 - k, "frontalness": 0.9})
    rows.append({**rows[0], "frontalness": 0.1})  # a profile of the same photo: ranked last, never shown
    best = F.curated_faces(rows, tmp_path, 10)
    # Most typical first (nearest the core of a, b, d and the copy); of a and its copy one is shown.
    assert [rows[i]["source"] for i in best.index] == ["copy_of_a.png", "c.png", "d.png", "b.png"]
    assert best.left_out == {"grey or drawn": 1, "duplicate": 1, "another person": 1, "turned away or small": 1}
    assert best.note().startswith("left out: 1 ")
    assert F.curated_faces(rows, tmp_path, 2).index == best.index[:2]
    # An unreadable photo is left out with its reason, not a crash.
    (tmp_path / "a.png").write_bytes(b"not an image")
    assert F.curated_faces(rows, tmp_path, 10).left_out["unreadable"] == 1


def test_detect_paths_keeps_input_order_in_parallel(tmp_path, face_photo):
    paths = []
    for i in range(5):
        p = tmp_path / f"{i}.jpg"
        if i % 2:
            shutil.copyfile(face_photo, p)
        else:
            p.write_text("not a photo")
        paths.append(p)
    res = F.detect_paths(paths, "haar", n_jobs=2, chunk_size=1, progress=False, cache=False)
    assert [r.path for r in res] == paths
    assert [bool(r.faces) for r in res] == [False, True, False, True, False]
    assert [r.error is not None for r in res] == [True, False, True, False, True]


def test_bad_input_corpus_through_the_cli(tmp_path, face_photo):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    made = make_bad_corpus(in_dir, face_photo)
    before = tree_digest(in_dir)
    assert main(["faces", str(in_dir), "--out", str(out_dir), "--align"]) == 0
    assert tree_digest(in_dir) == before, "the input folder must be byte-for-byte unchanged"

    rows, rejected = _read(out_dir / "faces.csv"), _read(out_dir / "rejected.csv")
    kept = {r["source"] for r in rows}
    reasons = {r["source"]: r["reason"] for r in rejected}
    assert not kept & set(reasons)
    assert kept | set(reasons) == set(made), "every photo file is either kept or rejected"
    for name, reason in EXPECTED_REASONS.items():
        assert reason in reasons[name], (name, reasons[name])
    # The conversions of the real photo all yield its face, upright (EXIF applied).
    for name in ("formats/cmyk.jpg", "formats/grey16.png", "formats/rgba.png", "formats/exif_rotated.jpg",
                 "formats/Ibrahimović_élan_照片.jpg"):
        assert name in kept, (name, reasons.get(name))
    boxes = {r["source"]: np.array([int(r[k]) for k in "xywh"]) for r in rows if r["face_index"] == "0"}
    ref = boxes["formats/Ibrahimović_élan_照片.jpg"]
    assert np.abs(boxes["formats/exif_rotated.jpg"] - ref).max() < 0.1 * ref[2]
    for r in rows:
        crop = Image.open(out_dir / r["crop"])
        assert crop.size == (160, 160)
        assert r["crop"].startswith("formats/")  # mirrors the input's sub-folders
        assert float(r["score"]) >= 0.9 and int(r["size"]) >= 20
    # The files that are not photos are listed too, by content and with their reason, never processed.
    assert reasons["README.txt"] == "not a photo: text file" and reasons[".hidden.jpg"] == "hidden file"
    assert F.rejection_category(reasons["README.txt"]) == "not a photo"


def test_face_index_zero_is_the_largest(tmp_path, face_image):
    # Two copies of the face side by side at different sizes.
    h, w = face_image.shape[:2]
    small = np.asarray(Image.fromarray(face_image).resize((w // 2, h // 2)))
    canvas = np.full((h, w + w // 2, 3), 255, np.uint8)
    canvas[:h // 2, :w // 2] = small
    canvas[:, w // 2:] = face_image
    (tmp_path / "in").mkdir()
    Image.fromarray(canvas).save(tmp_path / "in" / "two.jpg", quality=95)
    summary = F.export_faces(tmp_path / "in", tmp_path / "out", n_jobs=1, progress=False)
    rows = _read(tmp_path / "out" / "faces.csv")
    assert summary.faces == len(rows) >= 2
    areas = [int(r["w"]) * int(r["h"]) for r in rows]
    assert [r["face_index"] for r in rows] == [str(i) for i in range(len(rows))]
    assert areas == sorted(areas, reverse=True)
    assert int(rows[0]["x"]) > w // 2 - 10  # the big face is the right-hand one
    # --min-size above the small face keeps only the big one.
    F.export_faces(tmp_path / "in", tmp_path / "out_big", min_size=int(rows[1]["size"]) + 1, n_jobs=1,
                   progress=False)
    assert len(_read(tmp_path / "out_big" / "faces.csv")) == 1
    F.export_faces(tmp_path / "in", tmp_path / "out_none", min_size=10_000, n_jobs=1, progress=False)
    (bad,) = _read(tmp_path / "out_none" / "rejected.csv")
    assert bad["reason"].startswith("only faces smaller than 10000 px")
    assert F.read_export(tmp_path / "out_none") == ([], [bad])
    assert F.read_export(tmp_path / "out_none", sources=["two.jpg"]) == ([], [bad])
    assert F.read_export(tmp_path / "out_none", sources=["other.jpg"]) == ([], [])


def test_rerun_resumes_and_recovers_from_a_cut_line(tmp_path, face_photo):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    (in_dir / "p").mkdir(parents=True)
    for i in range(3):
        shutil.copyfile(face_photo, in_dir / "p" / f"{i}.jpg")
    (in_dir / "p" / "bad.jpg").write_text("x")
    first = F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    assert (first.with_faces, first.rejected, first.resumed) == (3, 0, 0)
    assert first.skipped == {"not a photo: text file": 1}  # bad.jpg holds text: listed, not a photo

    # A new photo arrives; a crash had cut the last faces.csv line in the middle.
    shutil.copyfile(face_photo, in_dir / "p" / "new.jpg")
    text = (out_dir / "faces.csv").read_text(encoding="utf-8")
    (out_dir / "faces.csv").write_text(text[: -len(text.splitlines()[-1]) // 2 - 1], encoding="utf-8")
    second = F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    assert second.resumed == 2 and second.with_faces == 2  # new.jpg and the photo whose row was cut
    rows = _read(out_dir / "faces.csv")
    assert sorted(r["source"] for r in rows) == ["p/0.jpg", "p/1.jpg", "p/2.jpg", "p/new.jpg"]
    assert len(_read(out_dir / "rejected.csv")) == 1  # bad.jpg, listed once however often resumed
    third = F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    assert (third.with_faces, third.rejected, third.resumed) == (0, 0, 4)

    # A second run while this one holds the folder would append the same rows again: refused at once.
    before = (out_dir / "faces.csv").read_bytes()
    with held_by_another_run(out_dir), pytest.raises(BlockingIOError, match="another run is writing"):
        F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    assert (out_dir / "faces.csv").read_bytes() == before

    # Resuming with other settings would mix two exports: refused.
    with pytest.raises(FileExistsError, match="other settings"):
        F.export_faces(in_dir, out_dir, detector="haar", align=True, n_jobs=1, progress=False)


def test_refuses_to_write_into_the_input_or_over_foreign_files(tmp_path, face_photo, capsys):
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    shutil.copyfile(face_photo, in_dir / "a.jpg")
    before = tree_digest(in_dir)
    for out in (in_dir, in_dir / "crops", tmp_path):
        with pytest.raises(ValueError, match="refusing"):
            F.export_faces(in_dir, out, detector="haar", n_jobs=1, progress=False)
        assert main(["faces", str(in_dir), "--out", str(out), "--detector", "haar"]) == 2
        assert "refusing" in capsys.readouterr().err
    assert tree_digest(in_dir) == before

    foreign = tmp_path / "someone_elses"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty"):
        F.export_faces(in_dir, foreign, detector="haar", n_jobs=1, progress=False)
    assert [p.name for p in foreign.iterdir()] == ["thesis.txt"]


def test_rejection_categories():
    assert F.rejection_category("no face found") == "no face found"
    assert F.rejection_category("only faces smaller than 20 px (largest 12 px)") == "only small faces"
    assert F.rejection_category("empty file") == "unreadable file"


def test_importing_the_library_and_cli_help_do_not_load_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "import vision_lib, vision_lib.faces, vision_lib.io, vision_lib.cli, vision_lib.notebooks\n"
        "vision_lib.faces.Face((0, 0, 1, 1), 1.0)\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        vision_lib.cli.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    try:\n"
        "        vision_lib.cli.main(['faces', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'mtcnn', 'dlib') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    help_text = subprocess.run([sys.executable, "-m", "vision_lib", "--help"], capture_output=True, text=True,
                               timeout=120)
    assert help_text.returncode == 0 and "faces" in help_text.stdout


def test_second_look_maps_bordered_detections_back_to_the_photo(face_image):
    det = F.MTCNNDetector()
    plain = det._detect_at(face_image, 640, 0.0)[0]
    bordered = det._detect_at(face_image, 640, 0.15)[0]
    np.testing.assert_allclose(bordered.box, plain.box, atol=0.06 * plain.box[2])
    np.testing.assert_allclose(bordered.keypoints["left_eye"], plain.keypoints["left_eye"], atol=0.03 * plain.box[2])
    # A face cut at the photo's edges: boxes stay inside the photo.
    tight = F.crop(face_image, plain, margin=-0.05)
    found = det._detect_at(tight, 640, 0.15)
    assert len(found) >= 1, "the face cut by the edges is still found (the border is what finds it)"
    for face in found:
        x, y, w, h = face.box
        assert x >= 0 and y >= 0 and x + w <= tight.shape[1] and y + h <= tight.shape[0]


def test_second_look_runs_only_when_the_first_finds_nothing(face_image, monkeypatch):
    det = F.MTCNNDetector(second_look=(640, 384), border=0.15)
    calls = []
    real = F.MTCNNDetector._detect_at

    def spy(self, image, side, border):
        calls.append((side, border))
        return [] if side == 1024 else real(self, image, side, border)

    monkeypatch.setattr(F.MTCNNDetector, "_detect_at", spy)
    assert det.detect(face_image)
    assert calls == [(1024, 0.0), (640, 0.15)]
    calls.clear()
    monkeypatch.setattr(F.MTCNNDetector, "_detect_at", lambda self, *a: calls.append(a[1:]) or [])
    assert det.detect(face_image) == [] and calls == [(1024, 0.0), (640, 0.15), (384, 0.15)]
    assert dict(det.params())["second_look"] == (640, 384)
    # Speed-only settings are not part of the parameters (nor of the cache key).
    assert F.MTCNNDetector(threads=1, compiled=False).params() == F.MTCNNDetector().params()


# --------------------------------------------------------------------------- notebook 01
@pytest.mark.notebook
def test_notebook_01_prepares_the_footballer_faces(footballers_dir, tmp_path):
    import json

    import nbformat

    from vision_lib.notebooks import NOTEBOOK_DIR, execute_notebook

    out = tmp_path / "out"
    res = execute_notebook(NOTEBOOK_DIR / "01_data_preparation.ipynb", tmp_path,
                           {"limit": 3, "out_dir": str(out), "speed_sample": 4}, html=False)
    assert res.ok, res.error
    assert res.stderr == [], res.stderr  # a clean report: no start-up noise, no warnings
    summary = json.loads((out / "summary.json").read_text())
    assert summary["photos"] == 18 and summary["players"] == 6
    export = summary["export"]
    assert export["kept_photos"] + export["rejected_photos"] == 18
    assert export["faces"] >= export["kept_photos"] >= 15
    assert summary["coverage"]["mtcnn"] >= summary["coverage"]["haar"]
    assert all(v > 0 for v in summary["seconds_per_photo"].values())
    assert sum(row["photos"] for row in summary["manifest"]) == 18
    # The crops it listed exist and are aligned 160x160 faces; the notebook drew its figures.
    rows = _read(out / "faces" / "faces.csv")
    assert len(rows) == export["faces"]
    assert all(Image.open(out / "faces" / r["crop"]).size == (160, 160) for r in rows)
    executed = nbformat.read(res.output, as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))
    assert figures >= 4


def test_file_names_that_are_not_utf8_are_exported_and_resumed(tmp_path, face_photo):
    # A Latin-1 name (raw bytes, as from an old camera or a zip): the CSV keeps its bytes, a rerun
    # recognises the photo as done, and nothing is lost.
    in_dir = tmp_path / "in"
    (in_dir / "p").mkdir(parents=True)
    odd = Path(os.fsdecode(os.fsencode(in_dir / "p") + b"/latin1_\xe9t\xe9.jpg"))
    shutil.copyfile(face_photo, odd)
    shutil.copyfile(face_photo, in_dir / "p" / "plain.jpg")
    first = F.export_faces(in_dir, tmp_path / "out", detector="haar", n_jobs=1, progress=False)
    assert (first.with_faces, first.rejected) == (2, 0)
    kept, _ = F.read_export(tmp_path / "out")
    assert {r["source"] for r in kept} == {"p/plain.jpg", odd.relative_to(in_dir).as_posix()}
    assert F.export_faces(in_dir, tmp_path / "out", detector="haar", n_jobs=1, progress=False).resumed == 2


def test_resume_never_reuses_the_crop_name_of_a_photo_done_earlier(tmp_path, face_photo):
    # a.jpg is exported; a.png (another photo, same stem) arrives later: its crops must not replace
    # a.jpg's, which faces.csv still lists.
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    (in_dir / "p").mkdir(parents=True)
    shutil.copyfile(face_photo, in_dir / "p" / "a.jpg")
    F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    first = {r["crop"]: (out_dir / r["crop"]).read_bytes() for r in _read(out_dir / "faces.csv")}
    Image.open(face_photo).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(in_dir / "p" / "a.png")
    second = F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    assert second.with_faces == 1 and second.resumed == 1
    rows = _read(out_dir / "faces.csv")
    crops = [r["crop"] for r in rows]
    assert len(set(crops)) == len(crops), crops  # one file per face row
    assert all((out_dir / c).read_bytes() == b for c, b in first.items())  # a.jpg's crops untouched
    assert {r["crop"] for r in rows if r["source"] == "p/a.png"} <= {c for c in crops if "a_png" in c}


def test_a_crash_between_two_face_rows_of_a_photo_redoes_the_photo_whole(tmp_path, face_photo):
    # z.jpg has two faces (the photo beside its mirror image). A crash after its first faces.csv
    # row used to count it done on resume, and its second face was never listed.
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    (in_dir / "p").mkdir(parents=True)
    shutil.copyfile(face_photo, in_dir / "p" / "a.jpg")
    image = load_image(face_photo)
    Image.fromarray(np.concatenate([image, image[:, ::-1]], axis=1)).save(in_dir / "p" / "z.jpg", quality=95)
    first = F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    assert (first.with_faces, first.faces) == (2, 3)
    full = (out_dir / "faces.csv").read_bytes()
    lines = full.splitlines(keepends=True)
    assert [ln.split(b",")[:2] for ln in lines[-2:]] == [[b"p/z.jpg", b"0"], [b"p/z.jpg", b"1"]]
    crops = {c: (out_dir / c).read_bytes() for c in (r["crop"] for r in _read(out_dir / "faces.csv"))}

    for cut in (b"".join(lines[:-1]), b"".join(lines[:-1]) + lines[-1][:20]):  # after row 0; inside row 1
        (out_dir / "faces.csv").write_bytes(cut)
        again = F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
        assert (again.resumed, again.with_faces, again.faces) == (1, 1, 2)
        assert (out_dir / "faces.csv").read_bytes() == full  # every face of z.jpg, once
        files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.jpg"))
        assert files == sorted(crops)  # no second set of crops under another name
        assert all((out_dir / c).read_bytes() == b for c, b in crops.items() if c.startswith("p/a_"))
    assert F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False).resumed == 2


def test_an_empty_person_folder_is_a_row_of_rejected_csv_once(tmp_path, face_photo):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    (in_dir / "ann").mkdir(parents=True)
    shutil.copyfile(face_photo, in_dir / "ann" / "a.jpg")
    (in_dir / "bob").mkdir()
    summary = F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)
    assert summary.skipped == {"empty folder: no photos": 1} and "empty folder: no photos" in str(summary)
    F.export_faces(in_dir, out_dir, detector="haar", n_jobs=1, progress=False)  # resumed: not listed again
    kept, rejected = F.read_export(out_dir)
    assert rejected == [{"source": "bob", "reason": "empty folder: no photos"}]
    assert F.rejection_category(rejected[0]["reason"]) == "not a photo"
    manifest = {r["folder"]: r for r in F.manifest_by_folder(kept, rejected)}
    assert (manifest["ann"]["photos"], manifest["bob"]["photos"]) == (1, 0) and "." not in manifest


def test_crop_stems_are_distinct_even_when_a_name_looks_like_another_with_its_extension(tmp_path):
    from vision_lib.faces.export import _crop_stems

    paths = [tmp_path / "p" / n for n in ("a.jpg", "a.png", "a_jpg.jpg")]
    stems = _crop_stems(paths, tmp_path)
    assert len(set(stems.values())) == 3, stems
    assert _crop_stems([tmp_path / "p" / "a.png"], tmp_path, taken={"p/a"}) == {tmp_path / "p" / "a.png": "p/a_png"}


# --------------------------------------------------------------------------- camera-size photos
def test_a_reduced_decode_goes_to_the_detector_at_its_side_and_its_faces_come_back_in_photo_pixels():
    """A 1/4 decode (400 px of a 1600 px photo) reaches a detector that looks at 100 px as a 100 px
    image (bilinear, ``scaled.detector_input``); its boxes and keypoints come back in the whole photo's
    pixels. A whole decode reaches the detector as it is (the detector resizes it itself)."""
    from vision_lib.faces import scaled
    from vision_lib.geometry import Face
    from vision_lib.io import Decoded

    class Detector:
        max_side, second_look = 100, (50,)

        def __init__(self):
            self.seen = []

        def detect(self, image):
            self.seen.append(image.shape)
            return [Face((10, 20, 30, 30), 0.9, {"nose": (15.0, 25.0)})]

    det = Detector()
    image = np.full((300, 400, 3), 90, np.uint8)
    [f] = scaled.detect_in(Decoded(image, 0.25, (1200, 1600)), det)
    assert det.seen == [(75, 100, 3)]
    assert f.box == (160, 320, 480, 480) and f.keypoints["nose"] == pytest.approx((240.0, 400.0))
    whole = Decoded(image, 1.0, (300, 400))
    small, scale = scaled.detector_input(whole, det)
    assert small is image and scale == 1.0
    [g] = scaled.detect_in(whole, det)
    assert det.seen[-1] == (300, 400, 3) and g.box == (10, 20, 30, 30)
    near = Decoded(np.zeros((60, 80, 3), np.uint8), 0.125, (480, 640))  # already under the detector's side
    same, k = scaled.detector_input(near, det)
    assert same is near.image and k == 0.125


def test_a_camera_size_photo_is_detected_on_a_reduced_decode_and_described_as_on_the_full_one(
        face_image, tmp_path, monkeypatch):
    """A real face photo enlarged to 4000 px and stored sideways with EXIF orientation 6: faces come
    back in the whole photo's pixels, and descriptors within the tolerance of docs/scale.md of those
    of the full decode (far below the same-person distance)."""
    from _corpus import save_exif_rotated
    from vision_lib.faces import scaled
    from vision_lib.models import get_descriptor, get_detector

    monkeypatch.setenv("VISION_LIB_CACHE", "off")
    h, w = face_image.shape[:2]
    k = 4000 / max(h, w)
    big = np.asarray(Image.fromarray(face_image).resize((round(w * k), round(h * k)), Image.LANCZOS))
    path = tmp_path / "camera.jpg"
    save_exif_rotated(big, path)
    det, desc = get_detector(), get_descriptor()
    faces, view = scaled.detect_photo(path, det)
    assert view.scale < 1 and view.shape == big.shape[:2]
    [r] = F.detect_paths([path], n_jobs=1, progress=False, cache=False, descriptors=True)
    assert r.shape == big.shape[:2] and [f.box for f in r.faces] == [f.box for f in faces]
    full = load_image(path)
    reference = det.detect(full)
    assert len(r.faces) == len(reference) >= 1
    x, y, bw, bh = r.faces[0].box  # the same face as the small photo's, at 4000 px
    sx, sy, sw, sh = det.detect(face_image)[0].box
    assert abs(x - sx * k) < 0.05 * bw and abs(y - sy * k) < 0.05 * bh and abs(bw / (sw * k) - 1) < 0.1
    gap = np.linalg.norm(r.descriptors[0] - desc.describe(full, reference[:1])[0])
    assert gap < 0.25 * desc.threshold, gap
    assert r.qualities[0].size == r.faces[0].size


@pytest.mark.parametrize("angle", [0, 35])
@pytest.mark.parametrize("name", ["facenet", "arcface"])
def test_the_part_a_second_decode_keeps_holds_every_pixel_the_chips_and_the_rating_read(face_image, name, angle):
    """scaled.reads: with every pixel outside the region (at the decode's scale) blacked out, the
    chips and the rating are those of the whole image: a second decode may stop below it (a
    tilted face too, whose chip is turned)."""
    import cv2

    from vision_lib.faces import scaled
    from vision_lib.io import Decoded
    from vision_lib.models import get_descriptor, get_detector

    image = face_image
    if angle:  # the photo turned about its centre, on a larger canvas so the face stays whole
        h, w = image.shape[:2]
        m = cv2.getRotationMatrix2D((w, h), angle, 1.0)
        m[:, 2] += (w / 2, h / 2)
        image = cv2.warpAffine(image, m, (2 * w, 2 * h), borderValue=(90, 90, 90))
    desc = get_descriptor(name)
    faces = get_detector().detect(image)
    assert faces and all(len(f.keypoints) == 5 for f in faces)
    for scale in (1.0, 0.5):
        view = Decoded(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image,
                       scale, image.shape[:2])
        x0, y0, x1, y1 = scaled.reads(faces, desc, scale)
        kept = np.zeros_like(view.image)
        a, b = max(0, int(y0 * scale)), max(0, int(x0 * scale))
        kept[a:int(np.ceil(y1 * scale)), b:int(np.ceil(x1 * scale))] = view.image[a:int(np.ceil(y1 * scale)),
                                                                                   b:int(np.ceil(x1 * scale))]
        cut = Decoded(kept, scale, view.shape)
        chips = desc.chips(view.image, scaled.in_view(faces, view))
        assert np.array_equal(desc.chips(kept, scaled.in_view(faces, cut)), chips)
        assert scaled.qualities_in(cut, faces) == scaled.qualities_in(view, faces)
        # tighter than the rule without a descriptor (below): fewer rows to decode
        assert y1 < max(f.box[1] + 2 * f.box[3] for f in faces)
    # without a descriptor that says where its chips lie: each box with its size again around it
    x, y, w, h = faces[0].box
    assert scaled.reads(faces[:1], None) == (x - w, y - h, x + 2 * w, y + 2 * h)


@pytest.mark.parametrize("detector", ["yunet", "yunet_checked"])
def test_detections_through_the_disk_cache_remake_the_detector_from_its_key(detector, tmp_path, monkeypatch):
    # a cache miss makes the detector again from its key, which also names what runs ("runtime",
    # "check"): those are not constructor arguments (a miss crashed every photo of a batch)
    from vision_lib.faces.batch import detect_paths

    monkeypatch.setenv("VISION_LIB_CACHE", str(tmp_path / "cache"))
    photo = tmp_path / "grey.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(photo)
    for _ in range(2):  # written, then read back
        (got,) = detect_paths([photo], detector, n_jobs=1, progress=False)
        assert got.error is None and got.faces == [] and got.shape == (120, 160)
