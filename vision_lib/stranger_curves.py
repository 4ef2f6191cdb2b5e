"""Curves of web strangers, shipped as numbers: how many stranger photos come this close to a person.

For each descriptor (by its ``id``) and open-set score, ``stranger_curves.json`` beside this module
holds a curve from score to **per-person stranger rate**: the share of (stranger photo, known
person) pairs in which the photo's closest face scores at most that against the person's centroid.
The score is ``cohort`` (:func:`cohort_scores`): normalised by the web faces' mean and covariance,
which the file also holds. It is measured once, by ``benchmarks/stranger_curve.py``, on the people
of the calibration half of LFW (:func:`vision_lib.openset.lfw_half`): each person's centroid (the
largest face of each of their photos) against every photo of the other people of that half. What
ships are population statistics (60 quantiles, a mean and a covariance over ~1,000 photos of ~50
people): no face, no descriptor of anyone, and no name.

:class:`~vision_lib.openset.OpenSetRule` reads it with :func:`curve_for` (``population="web"``);
:func:`measure_curve` computes one from descriptors (numpy only).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["CURVES_FILE", "cohort_scores", "curve_for", "load_curves", "measure_curve", "unit_rows"]

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


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float64)."""
    X = np.asarray(X, np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-12)


def cohort_scores(X: np.ndarray, directions: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``(len(X), len(directions))`` cohort-normalised distances of faces to people.

    The cosine of a face to a person's centroid direction ``c``, minus what a web stranger gets on
    average (``mean . c``), in units of the strangers' spread along ``c`` (``sqrt(c' cov c)``), and
    negated: a distance, lower = closer. ``mean``/``cov``: the web faces' mean and covariance (unit
    descriptors). The normalisation makes one curve serve galleries near or far from the average
    web face (Z-norm, with the cohort summarised by its first two moments)."""
    C = unit_rows(np.atleast_2d(directions))
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    spread = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", C, cov, C), 1e-12))
    return -(unit_rows(X) @ C.T - C @ mean) / spread


def measure_curve(photos: Sequence[np.ndarray], people: Sequence[str], subject: Sequence[int]) -> dict:
    """A per-person stranger curve for the ``cohort`` score, with the cohort's moments.

    Args:
        photos: per photo, the ``(n_faces, dim)`` descriptors of every face found (photos without a
            face are left out by the caller).
        people: per photo, whose photo it is.
        subject: per photo, the row of the person's own face (e.g. the largest), for the centroids.

    Returns:
        ``{"rates", "scores", "mean", "cov", "pairs", "photos", "people"}``: at per-person rate
        ``rates[i]`` a stranger photo's closest face scores at most ``scores[i]``; ``mean``/``cov``
        of every face (the moments :func:`cohort_scores` needs). Each person is scored with moments
        that leave their own faces out, as a new user's people are not in them.
    """
    people = np.asarray(people).astype(str)
    names = sorted(set(people.tolist()))
    if len(names) < 2:
        raise ValueError("a stranger curve needs photos of two or more people")
    faces = [unit_rows(ph) for ph in photos]
    F = np.concatenate(faces)
    owner = np.concatenate([[who] * len(f) for f, who in zip(faces, people)])
    s1, s2, n = F.sum(axis=0), F.T @ F, len(F)
    own = np.stack([f[i] for f, i in zip(faces, subject)])
    pair_scores = []
    for c in names:
        G = F[owner == c]
        m = n - len(G)
        mean = (s1 - G.sum(axis=0)) / m
        cov = (s2 - G.T @ G) / m - np.outer(mean, mean)
        direction = own[people == c].mean(axis=0)
        # Each other person's photo: its closest face.
        pair_scores += [cohort_scores(f, direction, mean, cov).min() for f, who in zip(faces, people) if who != c]
    d = np.sort(np.asarray(pair_scores))
    k = len(d)
    rates = np.geomspace(1.0 / k, 1.0, POINTS)
    idx = np.clip(np.ceil(rates * k).astype(int) - 1, 0, k - 1)
    scores = np.maximum.accumulate(d[idx])
    mean = s1 / n
    cov = s2 / n - np.outer(mean, mean)
    return {"rates": [float(f"{r:.6g}") for r in rates], "scores": [round(float(v), 5) for v in scores],
            "mean": [float(f"{v:.6g}") for v in mean], "cov": [[float(f"{v:.5g}") for v in row] for row in cov],
            "pairs": int(k), "photos": int(len(photos)), "people": len(names)}
