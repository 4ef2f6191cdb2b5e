"""Average faces: selection, alignment, warping, groups, CLI and notebook 05."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _corpus import held_by_another_run
from vision_lib import average as A
from vision_lib.faces import KEYPOINTS, TEMPLATE, Face, FaceQuality
from vision_lib.models import same_person_distance
from vision_lib.notebooks import NOTEBOOK_DIR, execute_notebook


# --------------------------------------------------------------------------- generated faces
def _cand(i, slot=None, *, size=100, frontal=0.9, score=0.99, sharp=100.0, desc=None, source="x.png"):
    face = Face((0, 0, size, size), score, {})
    return A.Candidate(Path(source), i, face, FaceQuality(size, sharp, frontal, score), desc,
                       i if slot is None else slot)


def _identity_descriptors(rng, n, centre, spread=0.03):
    # dlib-like scale: 128-d, same-person points ~0.35 apart, different people > 1 apart.
    return centre + rng.normal(0, spread, size=(n, 128))


def test_robust_centre_ignores_a_large_minority(rng):
    a, b = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128)
    desc = np.vstack([_identity_descriptors(rng, 9, a), _identity_descriptors(rng, 6, b)])
    centre, members = A.robust_centre(desc)
    assert centre < 9
    assert members[:9].all() and not members[9:].any()


def test_select_for_average_keeps_the_person_and_says_why_others_are_out(rng):
    person, other = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128)
    d = _identity_descriptors(rng, 8, person)
    cands = [_cand(i, desc=d[i]) for i in range(5)]
    cands.append(_cand(5, desc=d[5], frontal=0.1))                       # profile
    cands.append(_cand(6, desc=d[6], size=12))                           # tiny
    cands.append(_cand(7, desc=_identity_descriptors(rng, 1, other)[0]))  # someone else
    cands.append(_cand(8, slot=0, desc=d[7], size=60))                   # second face of photo 0
    sel = A.select_for_average(cands)
    assert sel.used == [0, 1, 2, 3, 4]
    assert sel.reasons[5].startswith("turned away")
    assert sel.reasons[6].startswith("too small")
    assert sel.reasons[7].startswith("another person")
    assert sel.reasons[8] == "another face of the same photo was used"
    assert len(sel.weights) == 5 and (sel.weights > 0).all()
    # Without the identity filter the other person gets in.
    assert 7 in A.select_for_average(cands, identity=False).used


def test_select_for_average_relaxes_filters_rather_than_emptying_a_group(rng):
    tiny = [_cand(i, size=14, frontal=0.2, score=0.91) for i in range(3)]
    assert A.select_for_average(tiny).used == [0, 1, 2]
    assert A.select_for_average([_cand(0, desc=rng.normal(size=128))]).used == [0]
    assert A.select_for_average([]).used == []


def test_select_for_average_reads_the_score_on_its_detector_s_scale():
    # YuNet scores clear faces around 0.9, MTCNN near 1: one fixed cut-off would keep almost no
    # YuNet face (or every MTCNN face).
    cands = [_cand(0, score=0.99), _cand(1, score=0.92), _cand(2, score=0.7)]
    assert A.select_for_average(cands, identity=False, detector="yunet").used == [0, 1]
    mtcnn = A.select_for_average(cands, identity=False, detector="mtcnn")
    assert mtcnn.used == [0] and mtcnn.reasons[1].startswith("low detector score (0.92 < 0.95)")
    assert A.select_for_average(cands, identity=False, detector="haar").used == [0, 1, 2]
    assert A.select_for_average(cands, identity=False, min_score=0.5, detector="mtcnn").used == [0, 1, 2]


def _draw_face(rng, tmp_path, k, grey=False):
    """A 'photo' with a cartoon face at a random position, scale and angle; returns (path, Face)."""
    import cv2

    img = np.full((220, 220, 3), 150, np.uint8)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    scale, angle = rng.uniform(70, 110), rng.uniform(-0.3, 0.3)
    centre = rng.uniform(90, 130, 2)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = (TEMPLATE - [0.5, 0.5]) @ rot.T * scale + centre
    cv2.ellipse(img, tuple(int(v) for v in centre + rot @ [0, 0.1 * scale]),
                (int(0.42 * scale), int(0.55 * scale)), np.degrees(angle), 0, 360, (225, 190, 160), -1)
    for p in pts[:2]:
        cv2.circle(img, tuple(int(v) for v in p), max(2, int(0.05 * scale)), (20, 20, 20), -1)
    cv2.circle(img, tuple(int(v) for v in pts[2]), max(2, int(0.04 * scale)), (120, 60, 50), -1)
    cv2.line(img, tuple(int(v) for v in pts[3]), tuple(int(v) for v in pts[4]), (90, 20, 30), max(1, int(0.03 * scale)))
    if grey:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    path = tmp_path / f"face_{k}.png"
    Image.fromarray(img[..., 0] if grey else img).save(path)
    lo, hi = pts.min(0) - 0.3 * scale, pts.max(0) + 0.2 * scale
    box = tuple(int(v) for v in (*lo, *(hi - lo)))
    return path, Face(box, 0.99, {k_: tuple(map(float, p)) for k_, p in zip(KEYPOINTS, pts)})


def test_aligned_mean_is_sharper_than_naive_and_keeps_the_eyes(rng, tmp_path):
    cands = []
    for k in range(8):
        path, face = _draw_face(rng, tmp_path, k, grey=k % 3 == 0)  # grey photos mixed in
        cands.append(A.Candidate(path, 0, face, FaceQuality(face.size, 100.0, 1.0, 0.99), None, k))
    size = 96
    aligned = A.mean_face(cands, method="similarity", size=size)
    naive = A.mean_face(cands, method="naive", size=size)
    assert aligned.image.shape == (size, size, 3) and aligned.image.dtype == np.uint8
    assert A.laplacian_sharpness(aligned.image) > 1.5 * A.laplacian_sharpness(naive.image)
    grey = aligned.image.mean(axis=2)
    for x, y in TEMPLATE[:2] * size:  # both eyes land dark on the template
        assert grey[int(round(y)), int(round(x))] < 80
    assert grey[int(0.2 * size), int(0.5 * size)] > 150  # forehead stays skin
    assert 0 < aligned.box[2] <= size and 0 < aligned.box[3] <= size


def test_piecewise_affine_warp_moves_landmarks_onto_the_mean_shape():
    work = 64
    pts = np.array([[20, 20], [44, 20], [32, 34], [22, 46], [42, 46]], float)
    img = np.zeros((work, work, 3), np.float32)
    img[18:23, 18:23] = 255  # a bright dot on landmark 0
    sample = A._Sample(img, np.ones((work, work), np.float32), pts, np.array([0, 0, work, work], float))
    same, mask = A._PiecewiseAffine(pts, work).warp(sample)
    assert np.abs(same - img).max() < 1e-3 and mask.min() > 0.99
    moved = pts.copy()
    moved[0] = [26, 26]
    out, _ = A._PiecewiseAffine(moved, work).warp(sample)
    yy, xx = np.mgrid[0:work, 0:work]
    w = out[..., 0] / out[..., 0].sum()  # centroid of the dot
    assert abs((w * xx).sum() - 26) < 1 and abs((w * yy).sum() - 26) < 1


def test_mean_face_rejects_bad_arguments(rng, tmp_path):
    path, face = _draw_face(rng, tmp_path, 0)
    cand = A.Candidate(path, 0, face, FaceQuality(face.size, 1.0, 1.0, 1.0), None, 0)
    with pytest.raises(ValueError, match="method"):
        A.mean_face([cand], method="blur")
    with pytest.raises(ValueError, match="no faces"):
        A.mean_face([cand], used=[])
    assert A.mean_face([cand], method="eyes", size=32).n_used == 1  # one face is a valid group


# --------------------------------------------------------------------------- groups and output
def test_groups_from_folder_lists_an_empty_person_folder_under_its_name(tmp_path):
    from vision_lib.io import EMPTY_FOLDER

    for person in ("ann", "bob"):
        (tmp_path / person).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / person / "a.png")
    (tmp_path / "cara").mkdir()
    (tmp_path / "dan").mkdir()
    (tmp_path / "dan" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    listed: list = []
    groups = A.groups_from_folder(tmp_path, skipped=listed)
    assert sorted(groups) == ["ann", "bob"]
    assert sorted((g, r.reason) for g, r in listed) == [("cara", EMPTY_FOLDER), ("dan", EMPTY_FOLDER),
                                                         ("dan", "hidden file")]


def test_groups_from_clusters_skips_unassigned_and_finds_the_root(tmp_path):
    out = tmp_path / "clustered"
    out.mkdir()
    rows = [("a/1.jpg", 0, 0), ("a/2.jpg", 1, 0), ("b/3.jpg", 0, 12), ("b/4.jpg", 0, -1)]
    with open(out / "clusters.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "face_index", "cluster"])
        w.writerows(rows)
    with pytest.raises(ValueError, match="--root"):
        A.groups_from_clusters(out / "clusters.csv")
    groups = A.groups_from_clusters(out / "clusters.csv", root=tmp_path / "photos")
    assert groups == {"cluster_00": [(tmp_path / "photos/a/1.jpg", 0), (tmp_path / "photos/a/2.jpg", 1)],
                      "cluster_12": [(tmp_path / "photos/b/3.jpg", 0)]}
    (out / "metrics.json").write_text(json.dumps({"root": str(tmp_path / "photos")}))
    assert A.groups_from_input(out) == groups  # the cluster output folder itself
    (out / "metrics.json").unlink()
    for name, src in (("cluster_00", "a/1.jpg"), ("cluster_00", "a/2.jpg"), ("cluster_12", "b/3.jpg")):
        (out / name).mkdir(exist_ok=True)
        (out / name / src.replace("/", "__")).write_bytes(b"copy")
    assert A.groups_from_clusters(out / "clusters.csv")["cluster_12"] == [(out / "cluster_12" / "b__3.jpg", 0)]


def test_write_averages_never_overwrites(tmp_path):
    from vision_lib.io import Rejected

    image = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)  # every pixel and channel distinct
    res = A.AverageFace("Jo/Smith", image, 3, 2, "landmarks", (0, 0, 8, 8),
                        [(Path("Jo/Smith/1.jpg"), 0), (Path("Jo/Smith/3.jpg"), 1)],
                        [Rejected("Jo/Smith/2.jpg", "turned away (0.31)")], [Rejected("Jo/Smith/x.jpg", "not an image")])
    empty = A.AverageFace("nobody", None, 0, 0, "landmarks", None, [], [], [])
    table = A.write_averages([res, empty], tmp_path)
    assert (tmp_path / "Jo_Smith.png").is_file() and not (tmp_path / "nobody.png").exists()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "Jo_Smith.png")), image)  # the average itself, as RGB
    assert table.read_text().splitlines() == ["group,n_faces,n_used", "Jo/Smith,3,2", "nobody,0,0"]
    assert (tmp_path / "left_out.csv").read_text().splitlines() == [
        "group,source,reason", "Jo/Smith,Jo/Smith/2.jpg,turned away (0.31)", "Jo/Smith,Jo/Smith/x.jpg,not an image"]
    assert (tmp_path / "used.csv").read_text().splitlines() == [  # the faces used, by name
        "group,source", "Jo/Smith,Jo/Smith/1.jpg#0", "Jo/Smith,Jo/Smith/3.jpg#1"]
    with pytest.raises(FileExistsError):
        A.write_averages([res], tmp_path)
    with pytest.raises(FileExistsError):  # the CLI asks before computing anything
        A.check_outputs(["Jo/Smith"], tmp_path)
    A.write_averages([res], tmp_path, overwrite=True)
    with held_by_another_run(tmp_path), pytest.raises(BlockingIOError, match="another run is writing"):
        A.write_averages([res], tmp_path, overwrite=True)  # even --overwrite waits its turn
    clash = [dataclasses.replace(res, group="a b"), dataclasses.replace(res, group="a_b")]
    with pytest.raises(ValueError, match="would all be written"):
        A.write_averages(clash, tmp_path / "new")
    assert not (tmp_path / "new").exists()  # a refusal leaves no folder behind
    with pytest.raises(ValueError, match="'a b', 'a_b' would all be written to a_b.png"):
        A.check_outputs(["a b", "a_b"], tmp_path / "new")
    assert not list(tmp_path.glob(".*.part"))  # PNGs go through a temporary name
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "Jo_Smith.png").mkdir()  # a folder where the PNG goes: not even --overwrite
    with pytest.raises(FileExistsError, match="is not a file"):
        A.check_outputs(["Jo/Smith"], tmp_path / "odd", overwrite=True)
    with pytest.raises(FileExistsError, match="is not a folder"):  # --out under a file
        A.check_outputs(["Jo/Smith"], tmp_path / "averages.csv" / "sub")


# --------------------------------------------------------------------------- real photos
@pytest.fixture(scope="module")
def lfw_folder(lfw_dir, tmp_path_factory):
    """Two LFW people (4 photos each), a grey copy of one, and a group of tiny faces."""
    import cv2

    root = tmp_path_factory.mktemp("avg_in")
    people = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())[:2]
    for person in people:
        (root / person).mkdir()
        for src in sorted((lfw_dir / person).glob("*.jpg"))[:4]:
            (root / person / src.name).write_bytes(src.read_bytes())
    (root / "grey").mkdir()
    (root / "tiny").mkdir()
    for k, src in enumerate(sorted((lfw_dir / people[0]).glob("*.jpg"))[:3]):
        img = np.asarray(Image.open(src).convert("RGB"))
        Image.fromarray(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)).save(root / "grey" / f"g{k}.png")
        canvas = np.full((320, 320, 3), 128, np.uint8)  # face about 26 px wide
        canvas[120:186, 120:186] = cv2.resize(img, (66, 66), interpolation=cv2.INTER_AREA)
        Image.fromarray(canvas).save(root / "tiny" / f"t{k}.png")
    return root, people


def test_cli_average_on_real_faces(lfw_folder, tmp_path):
    from vision_lib.cli import main

    root, people = lfw_folder
    out = tmp_path / "out"
    assert main(["average", str(root), "--out", str(out), "--size", "96", "--quiet", "--jobs", "1"]) == 0
    with open(out / "averages.csv") as f:
        rows = {r["group"]: r for r in csv.DictReader(f)}
    assert set(rows) == {*people, "grey", "tiny"}
    for name, r in rows.items():
        assert 1 <= int(r["n_used"]) <= int(r["n_faces"]), name
        img = np.asarray(Image.open(out / f"{name}.png"))
        assert img.shape == (96, 96, 3)
    grey = np.asarray(Image.open(out / "grey.png")).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 1  # grey photos give a grey average
    assert main(["average", str(root), "--out", str(out), "--quiet"]) == 2  # refuses to overwrite
    assert main(["average", str(root), "--out", str(root / "x"), "--quiet"]) == 2  # not inside IN


def test_cli_average_refuses_a_flat_folder_of_unknown_people(tmp_path, capsys):
    from vision_lib.cli import main

    flat = tmp_path / "mine"
    flat.mkdir()
    for k in range(3):
        Image.fromarray(np.full((32, 32, 3), 40 * k, np.uint8)).save(flat / f"p{k}.png")
    assert main(["average", str(flat), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no person sub-folders" in err and "as one person 'mine'" in err
    assert f"vision-lib cluster {flat}" in err and "--one-person" in err
    assert not (tmp_path / "out").exists()  # nothing written
    (flat / "ann").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(flat / "ann" / "a.png")
    (flat / "bob").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(flat / "bob" / "b.png")
    assert main(["average", str(flat), "--out", str(tmp_path / "out"), "--one-person", "--quiet"]) == 2
    assert "--one-person is for a flat folder" in capsys.readouterr().err


def test_reasons_show_enough_digits_to_be_true():
    from vision_lib.words import compared

    assert compared(1.1042, ">", 1.1) == "1.104 > 1.100"
    assert compared(0.8996, "<", 0.9) == "0.8996 < 0.9000"
    assert compared(0.5, "<", 0.9) == "0.50 < 0.90"
    assert compared(1.1, ">=", 1.1) == "1.10 >= 1.10"
    for value, op, limit in ((1.10001, ">", 1.1), (0.89999, "<", 0.9), (0.123456, "<", 0.1234567)):
        a, _, b = compared(value, op, limit).partition(f" {op} ")
        assert eval(f"{float(a)} {op} {float(b)}"), (value, op, limit)


def test_average_keeps_identity_on_real_faces(lfw_folder):
    root, people = lfw_folder
    groups = {p: A.groups_from_folder(root)[p] for p in people}
    faces = A.collect_faces(groups, n_jobs=1, progress=False)
    names, means = A.group_mean_descriptors(faces)
    for g in faces.values():
        res = A.average_group(g, method="landmarks", size=160)
        check = A.identity_check(res, names, means)
        assert check.kept, check
        assert check.own < same_person_distance()  # the default descriptor's, as collect_faces used


# --------------------------------------------------------------------------- notebook
@pytest.mark.notebook
def test_notebook_05_runs_on_small_parameters(footballers_dir, lfw_dir, tmp_path):
    out = tmp_path / "out"
    res = execute_notebook(NOTEBOOK_DIR / "05_face_average.ipynb", tmp_path,
                           {"data_dir": str(footballers_dir.parent), "limit": 4, "cluster_people": 3,
                            "size": 96, "out_dir": str(out)}, html=False, timeout=900)
    assert res.ok, res.error
    assert res.stderr == [], res.stderr  # a clean report: no start-up noise, no warnings
    summary = json.loads((out / "summary.json").read_text())
    players = summary["footballers"]
    assert len(players) == 6
    for p in players:
        assert 0 <= p["n_used"] <= p["n_faces"] <= 4
    used = [p for p in players if p["n_used"]]
    assert len(used) >= 5
    ratio = np.median([p["sharpness_aligned"] / p["sharpness_naive"] for p in used])
    assert ratio > 1.0
    assert summary["clusters"], "no cluster averages"
    for c in summary["clusters"]:
        assert 1 <= c["n_used"] <= c["n_faces"]


def test_groups_from_labels_keeps_the_largest_clusters_with_enough_faces():
    paths = [f"p{i}.jpg" for i in range(9)]
    labels = [0, 1, 1, 1, 2, 2, -1, 1, 0]
    groups = A.groups_from_labels(paths, [0] * 9, labels)
    assert {k: len(v) for k, v in groups.items()} == {"cluster_00": 2, "cluster_01": 4, "cluster_02": 2}
    assert groups["cluster_00"] == [(Path("p0.jpg"), 0), (Path("p8.jpg"), 0)]
    big = A.groups_from_labels(paths, [0] * 9, labels, min_faces=2, largest=2)
    assert list(big) == ["cluster_01", "cluster_00"]  # largest first; ties keep cluster order
    assert A.groups_from_labels(paths, [0] * 9, labels, min_faces=3) == {"cluster_01": groups["cluster_01"]}


def test_reasons_keep_left_out_faces_apart_from_photos_without_a_face():
    from vision_lib.io import Rejected

    r = A.AverageFace("p", None, 3, 2, "landmarks", None, [], [Rejected("a.jpg", "not the group's person (0.71)")],
                      [Rejected("b.jpg", "no face found"), Rejected("c.jpg", "no face found")])
    assert r.reasons("left_out") == {"not the group's person": 1}
    assert r.reasons("rejected") == {"no face found": 2}
    assert r.reasons() == {"no face found": 2, "not the group's person": 1}


def test_a_broken_landmark_warp_is_detected_and_falls_back_to_the_similarity_alignment(rng):
    from vision_lib.average import _PiecewiseAffine, _Sample, warp_failed

    work = 64
    shape = np.c_[rng.uniform(14, 50, 68), rng.uniform(14, 50, 68)]
    warp = _PiecewiseAffine(shape, work)
    image = rng.uniform(40, 220, (work, work, 3)).astype(np.float32)
    mask = np.ones((work, work), np.float32)
    box = np.array([10.0, 10.0, 54.0, 54.0])
    same = _Sample(image, mask, shape.copy(), box)
    img, msk = warp.warp(same)
    assert warp.folded_share(same.points) == 0.0
    assert not warp_failed(same, img, msk, warp.folded_share(same.points))
    np.testing.assert_allclose(img[12:52, 12:52], image[12:52, 12:52], atol=1.0)  # identity warp

    mirrored = _Sample(image, mask, np.c_[work - 1 - shape[:, 0], shape[:, 1]], box)
    assert warp.folded_share(mirrored.points) > 0.5  # every inner triangle turned inside out
    assert warp_failed(mirrored, *warp.warp(mirrored), warp.folded_share(mirrored.points))

    # No fold, but the warp pulls half the face from outside the photo: black and uncovered.
    torn_img, torn_mask = img.copy(), msk.copy()
    torn_img[10:54, 10:32], torn_mask[10:54, 10:32] = 0, 0
    assert warp_failed(same, torn_img, torn_mask, 0.0)
    # A face that is dark in the photo itself is not a failure of the warp.
    dark = _Sample(np.zeros_like(image), mask, shape.copy(), box)
    assert not warp_failed(dark, *warp.warp(dark), 0.0)
