"""Clothing clustering: generated court crops, the checks, the CLI, and the real player folders."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from vision_lib import cluster, teams
from vision_lib import io as vision_io

COURT = (150, 62, 52)
KITS = {"A": ((35, 45, 95), (35, 35, 40)),     # navy shirt, dark trousers
        "B": ((22, 22, 22), (170, 175, 180))}  # black shirt, light grey trousers


def _crop(rng, kit, upside_down=False, kits=KITS):
    """A small court crop: noisy court colour, maybe a white line, a player in the middle."""
    h, w = rng.integers(60, 120), rng.integers(45, 90)
    img = np.clip(np.array(COURT) + rng.normal(0, 8, (h, w, 3)), 0, 255)
    if rng.random() < 0.5:
        x = rng.integers(0, w - 3)
        img[:, x:x + 3] = 235  # a court line
    yy, xx = np.mgrid[:h, :w]
    cx, cy = w / 2 + rng.normal(0, w * 0.05), h / 2 + rng.normal(0, h * 0.05)
    body = ((xx - cx) / (0.22 * w)) ** 2 + ((yy - cy) / (0.38 * h)) ** 2 <= 1
    shirt, trousers = kits[kit]
    img[body & (yy < cy)] = shirt
    img[body & (yy >= cy)] = trousers
    img[(((xx - cx) / (0.1 * w)) ** 2 + ((yy - (cy - 0.38 * h)) / (0.08 * h)) ** 2) <= 1] = (200, 150, 120)  # head
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    return img[::-1, ::-1].copy() if upside_down else img


def _crops(rng, n_frames=20, upside_down=False, kits=KITS):
    images, truth, names = [], [], []
    for f in range(n_frames):
        for kit in rng.permutation(["A", "B"]):
            images.append(_crop(rng, kit, upside_down, kits))
            truth.append(kit)
            names.append(f"{1000 + f}_{kit}_{rng.integers(100)}.jpg")
    return images, truth, names


@pytest.mark.parametrize("upside_down", [False, True])
def test_colours_separate_generated_kits(rng, upside_down):
    images, truth, names = _crops(rng, upside_down=upside_down)
    model = teams.TeamClustering(groups=2).fit(images)
    assert teams.accuracy(truth, model.labels_) == 1.0
    assert teams.frame_pair_agreement(names, model.labels_)["agreement"] == 1.0
    assert model.cluster_seconds_ < 0.05
    # the mask keeps the player and drops the court
    img, mask = images[0], model.masks_[0]
    court_like = np.abs(img.astype(int) - COURT).sum(axis=2) < 40
    assert mask[court_like].mean() < 0.1
    assert mask[~court_like].mean() > 0.5


def test_recipe_runs_with_given_deep_features(rng):
    images, truth, _ = _crops(rng, n_frames=10)
    deep = rng.normal(size=(len(images), 32))  # uninformative deep part: the histograms must carry it
    model = teams.TeamClustering(method="recipe").fit(images, deep_features=deep)
    assert model.vote_["winner"] in ("upper", "lower") and sum(model.vote_["votes"].values()) == len(images)
    assert set(model.labels_) == {0, 1}
    assert teams.accuracy(truth, model.labels_) == 1.0  # the kits' colours carried it (chance: about 0.5)
    with pytest.raises(ValueError, match="unknown method"):
        teams.TeamClustering(method="x").fit(images)


def test_region_vote_picks_the_region_that_differs(rng):
    same_shirts = {"A": ((30, 30, 90), (30, 30, 35)), "B": ((30, 30, 90), (180, 180, 185))}
    images, truth, _ = _crops(rng, n_frames=10, kits=same_shirts)
    # same shirts, very different trousers -> the lower region should win the vote
    winner, votes, hists = teams.region_vote(images, bins=4)
    assert set(hists) == {"upper", "lower"} and hists["upper"].shape == (len(images), 64)
    assert winner == "lower", votes


def test_checks_by_hand():
    assert teams.accuracy(["a", "a", "b", "b", None], [1, 1, 0, 1, 0]) == 0.75
    fp = teams.frame_pair_agreement(["1_x.jpg", "1_y.jpg", "2_x.jpg", "2_y.jpg", "3_x.jpg"], [0, 1, 0, 0, 1])
    assert fp == {"frames": 2, "frames_split": 1, "agreement": 0.5, "frames_skipped": 1}


def test_cli_teams_writes_csv_and_groups(tmp_path, rng, monkeypatch):
    from vision_lib.cli import main

    images, truth, names = _crops(rng, n_frames=8)
    src = tmp_path / "crops"
    src.mkdir()
    for im, name in zip(images, names):
        Image.fromarray(im).save(src / name)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    # A fully transparent PNG (flattened to white) and a huge flat file: blank, rejected, not a group.
    Image.fromarray(np.zeros((90, 60, 4), np.uint8), "RGBA").save(src / "empty.png")
    Image.new("RGB", (3, 5000), (128, 128, 128)).save(src / "strip.png")
    assert main(["teams", str(src), "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "clusters.csv")))
    assert len(rows) == len(names) and set(rows[0]) == {"source", "cluster"}
    by_name = {r["source"]: int(r["cluster"]) for r in rows}
    assert teams.accuracy(truth, [by_name[n] for n in names]) == 1.0
    assert len(list((tmp_path / "out" / "group_00").iterdir())) + len(list((tmp_path / "out" / "group_01").iterdir())) == 16
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(r["source"], r["reason"].split(":")[0]) for r in summary["rejected"]] == [
        ("broken.jpg", "not a photo"), ("empty.png", "blank"), ("strip.png", "blank")]
    assert main(["teams", str(src), "--out", str(tmp_path / "out")]) == 2  # never overwrites

    def interrupted(pairs, **kw):
        list(pairs)
        raise KeyboardInterrupt

    monkeypatch.setattr(vision_io, "copy_grouped", interrupted)
    assert main(["teams", str(src), "--out", str(tmp_path / "again")]) == 130
    assert sorted(os.listdir(tmp_path)) == ["crops", "out"]  # nothing half-written, no folder left behind
    (tmp_path / "again").mkdir()
    assert main(["teams", str(src), "--out", str(tmp_path / "again")]) == 130
    assert os.listdir(tmp_path / "again") == []  # a folder that was there stays, empty and re-usable


def test_cli_teams_with_too_few_crops_says_which_files_and_why(tmp_path, rng, capsys):
    # It used to stop with "need at least 2 crops, got 1": no word on the files it did not use.
    from vision_lib.cli import main

    src = tmp_path / "crops"
    (src / "frame_1").mkdir(parents=True)
    Image.fromarray(_crop(rng, "A")).save(src / "1000_A.png")
    Image.fromarray(_crop(rng, "B")).save(src / "frame_1" / "1000_B.png")  # sub-folders are not searched
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "notes.txt").write_text("not a photo")
    assert main(["teams", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"1 usable crop in {src} (2 needed); 3 entries not used:" in err
    assert "  broken.jpg: cannot decode" in err and "  notes.txt: not a photo: text file" in err
    assert "  frame_1: sub-folder (not searched)" in err
    assert "teams needs at least 2 player crops (readable photos) directly in" in err and "--clusters" in err
    assert sorted(os.listdir(tmp_path)) == ["crops"]  # no output folder left behind
    (tmp_path / "empty").mkdir()
    assert main(["teams", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no usable crops in" in (err := capsys.readouterr().err) and "the folder is empty" in err


# --------------------------------------------------------------------------- real crops
def test_real_player_folders(players_dir):
    labels = teams.read_labels(players_dir / "labels_top.csv", "two_players_top")
    for folder in ("two_players_top", "two_players_bot"):
        crops = teams.load_crops(players_dir / folder)
        model = teams.TeamClustering().fit(crops.images)
        pairs = teams.frame_pair_agreement(crops.sources, model.labels_)
        assert pairs["frames"] == 90 and pairs["agreement"] >= 0.97, (folder, pairs)
        if folder == "two_players_top":
            assert teams.accuracy([labels.get(s) for s in crops.sources], model.labels_) >= 0.99
        first = teams.load_crops(players_dir / folder, limit=6)
        assert first.sources == crops.sources[:6] and len(first.images) == 6


def test_crops_without_court_fall_back_to_whole_crops(rng):
    # plain, tight crops: nothing is court-like, the mask would keep a sliver -> whole crops used
    images = [np.full((40, 30, 3), (200, 30, 30) if i % 2 else (30, 30, 200), np.uint8) for i in range(10)]
    images = [np.clip(im + rng.normal(0, 5, im.shape), 0, 255).astype(np.uint8) for im in images]
    model = teams.TeamClustering().fit(images)
    assert not model.court_masked_ and all(m.all() for m in model.masks_)
    assert teams.accuracy([i % 2 for i in range(10)], model.labels_) == 1.0


def test_large_crops_are_described_at_a_bounded_size(tmp_path, rng):
    # A 24 MP "crop" needed ~5 GB for its soft histogram; shrunk, it costs what a normal crop does.
    big = np.kron(_crop(rng, "A"), np.ones((40, 40, 1), np.uint8))
    Image.fromarray(big).save(tmp_path / "big.png")
    crops = teams.load_crops(tmp_path)
    assert max(crops.images[0].shape[:2]) == teams.CROP_MAX_SIDE and crops.rejected == []


def test_summary_json_is_strict_json_when_no_frame_has_two_crops(tmp_path, rng):
    # Crops that are not frames of two players (any folder of photos): the frame-pair check has no
    # pairs, and summary.json must still parse with a strict JSON reader (NaN is not JSON).
    import json

    from vision_lib.cli import main

    images, _, _ = _crops(rng, n_frames=4)
    src = tmp_path / "crops"
    src.mkdir()
    for i, im in enumerate(images[::2]):
        Image.fromarray(im).save(src / f"photo_{i}.png")
    assert main(["teams", str(src), "--out", str(tmp_path / "out")]) == 0

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    summary = json.loads((tmp_path / "out" / "summary.json").read_text(), parse_constant=no_constants)
    assert summary["frame_pairs"]["frames"] == 0 and summary["frame_pairs"]["agreement"] is None


def test_fit_with_fewer_crops_than_groups_names_the_fix():
    crop = np.zeros((40, 20, 3), np.uint8)
    with pytest.raises(ValueError, match=r"need at least 3 crops to make 3 groups, got 1: .*fewer groups"):
        teams.TeamClustering(groups=3).fit([crop])
