"""The splits of ``benchmarks/bench_collection.py`` (which photos build a collection, which are added)."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_collection as bc  # noqa: E402


def _faces(counts: dict[str, int]) -> SimpleNamespace:
    photos = [f"{p}/{p}_{i:03d}.jpg" for p, n in counts.items() for i in range(n)][::-1]  # not in name order
    return SimpleNamespace(photos=photos, photo_labels=[p.split("/")[0] for p in photos])


@pytest.fixture
def split(monkeypatch):
    def run(faces, how="first", seed=0, reverse=False):
        monkeypatch.setattr(bc, "SPLIT", how)
        monkeypatch.setattr(bc, "SEED", seed)
        monkeypatch.setattr(bc, "REVERSE_HALVES", reverse)
        return bc.halves(faces)
    return run


def test_every_split_halves_each_persons_photos_alike(split):
    faces = _faces({"ada": 7, "bo": 4, "cy": 1, "di": 10})
    for how, seed in (("first", 0), ("alternate", 0), ("random", 0), ("random", 3)):
        first, second = split(faces, how, seed)
        assert sorted(first + second) == sorted(faces.photos) and not set(first) & set(second)
        for person, n in (("ada", 4), ("bo", 2), ("cy", 1), ("di", 5)):  # round(n / 2), one photo: first
            assert sum(p.startswith(person + "/") for p in first) == n
        assert split(faces, how, seed, reverse=True) == (second, first)


def test_the_splits_pick_their_photos(split):
    faces = _faces({"di": 10})
    first, _ = split(faces)
    assert first == [f"di/di_{i:03d}.jpg" for i in range(5)]  # the default: the first half in name order
    first, _ = split(faces, "alternate")
    assert first == [f"di/di_{i:03d}.jpg" for i in (0, 2, 4, 6, 8)]
    a, b, c = (sorted(split(faces, "random", s)[0]) for s in (0, 0, 1))
    assert a == b and a != c  # a seed is one split; another seed another
