"""Curves of web strangers, shipped as numbers: how many stranger photos come this close to a person.

For each descriptor (by its ``id``) and open-set score, ``stranger_curves.json`` beside this module
holds a curve from score to **per-person stranger rate**: the share of (stranger photo, known
person) pairs in which the photo's closest face scores at most that against the person's centroid.
It is measured once, by ``benchmarks/stranger_curve.py``, on the people of the calibration half of
LFW (:func:`vision_lib.openset.lfw_half`): each person's centroid (the largest face of each of
their photos) against every photo of the other people of that half. Only quantiles of distances
ship: no face, no descriptor and no name.

:class:`~vision_lib.openset.OpenSetRule` reads it with :func:`curve_for` (``population="web"``);
:func:`measure_curve` computes one from descriptors (numpy only).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["CURVES_FILE", "curve_for", "load_curves", "measure_curve", "direction_scores"]

#: The shipped curves: ``{descriptor id: {score: curve}}``.
CURVES_FILE = Path(__file__).with_name("stranger_curves.json")
#: Points of a curve: per-person rates, log-spaced from the smallest the pairs support to 1.
POINTS = 60


@functools.lru_cache(maxsize=1)
def load_curves(path: str = str(CURVES_FILE)) -> dict:
    """All shipped curves (``{}`` when the file is absent)."""
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else {}


def curve_for(descriptor_id: str | None, score: str) -> dict | None:
    """The curve of ``descriptor_id`` for ``score`` (``{"rates", "scores", "pairs", ...}``), or None."""
    if descriptor_id is None:
        return None
    return load_curves().get(descriptor_id, {}).get(score)


def direction_scores(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``(len(X), len(centroids))`` cosine distances (1 - cos) of faces to centroid directions."""
    X = np.asarray(X, np.float64)
    C = np.asarray(centroids, np.float64)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    C = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
    return 1.0 - X @ C.T


def measure_curve(photos: Sequence[np.ndarray], people: Sequence[str], subject: Sequence[int]) -> dict:
    """A per-person stranger curve for the ``direction`` score.

    Args:
        photos: per photo, the ``(n_faces, dim)`` descriptors of every face found (photos without a
            face are left out by the caller).
        people: per photo, whose photo it is.
        subject: per photo, the row of the person's own face (e.g. the largest), for the centroids.

    Returns:
        ``{"rates", "scores", "pairs", "photos", "people"}``: at per-person rate ``rates[i]`` a
        stranger photo's closest face scores at most ``scores[i]`` (both increasing).
    """
    people = np.asarray(people).astype(str)
    names = sorted(set(people.tolist()))
    if len(names) < 2:
        raise ValueError("a stranger curve needs photos of two or more people")
    own = np.stack([np.asarray(ph)[i] for ph, i in zip(photos, subject)])
    centroids = np.stack([own[people == c].mean(axis=0) for c in names])
    pair_scores = []
    for ph, who in zip(photos, people):
        closest = direction_scores(ph, centroids).min(axis=0)  # the photo's closest face, per person
        pair_scores.append(closest[np.asarray(names) != who])
    d = np.sort(np.concatenate(pair_scores))
    n = len(d)
    rates = np.geomspace(1.0 / n, 1.0, POINTS)
    idx = np.clip(np.ceil(rates * n).astype(int) - 1, 0, n - 1)
    scores = np.maximum.accumulate(d[idx])
    return {"rates": [float(f"{r:.6g}") for r in rates], "scores": [round(float(s), 5) for s in scores],
            "pairs": int(n), "photos": int(len(photos)), "people": len(names)}
