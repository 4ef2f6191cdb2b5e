"""Open-set naming: name a face only when strangers are rarely that close (a calibrated rule).

A closed-set classifier always answers one of the N people it knows. :class:`OpenSetRule` decides
whether that answer may be given: a face is named as person P only when its **distance to P's
training faces** (by default the mean distance to its ``k`` nearest training faces of P, in the
descriptor's own metric) is smaller than what a chosen share of *strangers* reach.

Where the strangers come from (:meth:`OpenSetRule.fit`):

* **The other people of the training folders, leave one person out.** Each known person's faces
  are scored against the *other* people's galleries and the closest other person is kept: that is
  how close a face gets to someone the rule does not know as that identity. No extra data needed,
  and the calibration follows the descriptor (dlib, FaceNet, ...) automatically.
* **Photos the user supplies** (``strangers``: descriptors of faces of people *not* in the
  training folders, e.g. ``vision-lib train --strangers DIR``), scored against every gallery.

Both sets are pooled into ``impostor_scores_``. The threshold is chosen so that the estimated
false-accept rate, ``(# impostor scores <= d + 1) / (n + 1)`` (the share of calibration strangers
at least as close, counted conservatively), stays at or under ``far``. :meth:`far_at` gives that
estimate for any face: the **match score** the predictions carry ("about this share of strangers
come this close"). With too few strangers for the requested rate, the threshold is the closest
stranger and ``far_`` says what can actually be promised.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .names import DEFAULT_FAR

SCORES = ("knn", "centroid")
METRICS = ("euclidean", "cosine")
#: A face the rule turns down is "not sure" (rather than "not one of the people this model knows")
#: while at most this share of the calibration strangers come as close to the person.
UNSURE_RATE = 0.25
#: What a face's verdict can be: named, close but not close enough, or a stranger.
VERDICTS = ("named", "unsure", "stranger")


def pairwise(A: np.ndarray, B: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """``(len(A), len(B))`` distances in ``metric`` (``"euclidean"`` or ``"cosine"``: 1 - cos)."""
    from sklearn.metrics import pairwise_distances

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")
    if not len(A) or not len(B):
        return np.zeros((len(A), len(B)))
    return pairwise_distances(np.asarray(A, np.float64), np.asarray(B, np.float64), metric=metric)


class OpenSetRule:
    """Accept a face as person P only when it is closer to P's training faces than strangers get.

    Args:
        far: the false-accept rate to calibrate for (share of strangers who would be named).
        score: ``"knn"`` (mean distance to the ``k`` nearest training faces of the person) or
            ``"centroid"`` (distance to the mean of the person's training faces).
        k: neighbours of ``score="knn"`` (fewer when a person has fewer faces).
        metric: the descriptor's metric (``"euclidean"`` or ``"cosine"``).

    Attributes (after :meth:`fit`):
        classes_: the known people.
        threshold_: a face is accepted when its score is strictly below this.
        far_: the false-accept rate the threshold promises on the calibration strangers
            (<= ``far``, or the smallest rate ``n`` strangers can support).
        impostor_scores_: sorted scores of the calibration strangers against their closest known person.
        genuine_scores_: leave-one-out scores of the training faces against their own person.
        n_strangers_: ``{"other_people": n, "supplied": m}`` faces in the calibration.
    """

    def __init__(self, far: float = DEFAULT_FAR, score: str = "centroid", k: int = 3, metric: str = "euclidean"):
        self.far = far
        self.score = score
        self.k = k
        self.metric = metric

    # ------------------------------------------------------------------ fitting
    def fit(self, X: np.ndarray, y: Sequence[str], strangers: np.ndarray | None = None) -> "OpenSetRule":
        """Keep the galleries ``X`` (one row per training face, label ``y``) and calibrate the
        threshold on the leave-one-person-out impostors plus ``strangers`` (faces of other people)."""
        if not 0 < self.far < 1:
            raise ValueError(f"far must be in (0, 1), got {self.far}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; choose from {SCORES}")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose from {METRICS}")
        X = np.asarray(X, np.float64)
        y = np.asarray(y).astype(str)
        self.classes_ = sorted(set(y.tolist()))
        if len(self.classes_) < 2 and (strangers is None or not len(strangers)):
            raise ValueError("calibration needs strangers: two or more people, or supplied stranger faces")
        self.galleries_ = {c: X[y == c] for c in self.classes_}
        self.centroids_ = {c: g.mean(axis=0) for c, g in self.galleries_.items()}
        lopo = [self.scores(self.galleries_[c], [q for q in self.classes_ if q != c]).min(axis=1)
                for c in self.classes_ if len(self.classes_) > 1]
        supplied = np.zeros(0)
        if strangers is not None and len(strangers):
            supplied = self.scores(np.asarray(strangers, np.float64), self.classes_).min(axis=1)
        lopo = np.concatenate(lopo) if lopo else np.zeros(0)
        self.impostor_scores_ = np.sort(np.concatenate([lopo, supplied]))
        self.n_strangers_ = {"other_people": int(len(lopo)), "supplied": int(len(supplied))}
        self.genuine_scores_ = np.concatenate([self._leave_one_out(c) for c in self.classes_])
        self.threshold_, self.far_ = self.threshold_for(self.far)
        return self

    def threshold_for(self, far: float) -> tuple[float, float]:
        """``(threshold, promised rate)`` for a false-accept rate ``far`` on the calibration strangers."""
        n = len(self.impostor_scores_)
        # Accept d when (#impostors <= d) + 1 <= far (n + 1), i.e. d < the m-th smallest impostor.
        m = min(n - 1, max(0, math.floor(far * (n + 1) + 1e-9) - 1))
        return float(self.impostor_scores_[m]), (m + 1) / (n + 1)

    def _leave_one_out(self, c: str) -> np.ndarray:
        """Each training face of ``c`` scored against the rest of ``c``'s gallery."""
        g = self.galleries_[c]
        if len(g) < 2:
            return np.zeros(0)
        if self.score == "centroid":
            rest = (g.sum(axis=0)[None] - g) / (len(g) - 1)
            return np.array([pairwise(g[i:i + 1], rest[i:i + 1], self.metric)[0, 0] for i in range(len(g))])
        d = pairwise(g, g, self.metric)
        np.fill_diagonal(d, np.inf)
        return self._knn(d)

    def _knn(self, d: np.ndarray) -> np.ndarray:
        k = max(1, min(self.k, int(np.isfinite(d[0]).sum()) if len(d) else 1))
        return np.sort(d, axis=1)[:, :k].mean(axis=1)

    # ------------------------------------------------------------------ scoring
    def scores(self, X: np.ndarray, people: Sequence[str] | None = None) -> np.ndarray:
        """``(len(X), len(people))``: each face's score (distance) against each person's gallery."""
        people = self.classes_ if people is None else list(people)
        X = np.asarray(X, np.float64)
        out = np.zeros((len(X), len(people)))
        for j, c in enumerate(people):
            if self.score == "centroid":
                out[:, j] = pairwise(X, self.centroids_[c][None], self.metric)[:, 0]
            else:
                out[:, j] = self._knn(pairwise(X, self.galleries_[c], self.metric))
        return out

    def score_for(self, X: np.ndarray, people: Sequence[str]) -> np.ndarray:
        """Each face's score against the person given for it (``people[i]`` for ``X[i]``)."""
        X = np.asarray(X, np.float64)
        return np.array([self.scores(X[i:i + 1], [p])[0, 0] for i, p in enumerate(people)])

    def far_at(self, d: np.ndarray | float) -> np.ndarray | float:
        """Estimated false-accept rate at score ``d``: the share of calibration strangers at least
        this close, ``(count + 1) / (n + 1)`` (never 0: ``n`` strangers cannot prove less)."""
        n = len(self.impostor_scores_)
        out = (np.searchsorted(self.impostor_scores_, d, side="right") + 1) / (n + 1)
        return float(out) if np.ndim(out) == 0 else out

    def accept(self, d: np.ndarray | float) -> np.ndarray | bool:
        """Whether score(s) ``d`` may be named (strictly below :attr:`threshold_`)."""
        out = np.asarray(d) < self.threshold_
        return bool(out) if out.ndim == 0 else out

    def verdict(self, d: float, named: bool | None = None) -> str:
        """``"named"`` (accepted, unless ``named`` says another rule turned it down), ``"unsure"``
        (turned down, but at most :data:`UNSURE_RATE` of the strangers come this close) or
        ``"stranger"``."""
        if self.accept(d) and named is not False:
            return "named"
        return "unsure" if self.far_at(d) <= max(UNSURE_RATE, self.far_) else "stranger"

    def summary(self) -> dict:
        """Plain values for bundles, the CLI and benchmarks."""
        return {"far": self.far, "far_": round(self.far_, 5), "threshold_": round(self.threshold_, 4),
                "score": self.score, "k": self.k, "metric": self.metric, "n_strangers": dict(self.n_strangers_),
                "genuine_accepted": round(float(self.accept(self.genuine_scores_).mean()), 4)
                if len(self.genuine_scores_) else None}

    def __repr__(self) -> str:
        fitted = f", threshold_={self.threshold_:.3f}" if hasattr(self, "threshold_") else ""
        return f"OpenSetRule(far={self.far}, score={self.score!r}, k={self.k}, metric={self.metric!r}{fitted})"


def operating_curve(rule: OpenSetRule, thresholds: np.ndarray, genuine: np.ndarray, impostor: np.ndarray,
                    genuine_right: np.ndarray | None = None) -> list[dict]:
    """Per threshold: the share of ``impostor`` scores accepted and of ``genuine`` scores accepted
    (and right, when ``genuine_right`` says which genuine answers name the right person)."""
    right = np.ones(len(genuine), bool) if genuine_right is None else np.asarray(genuine_right, bool)
    out = []
    for t in thresholds:
        out.append({"threshold": round(float(t), 4),
                    "strangers_named": round(float(np.mean(impostor < t)) if len(impostor) else 0.0, 4),
                    "known_named_right": round(float(np.mean((genuine < t) & right)) if len(genuine) else 0.0, 4),
                    "estimated_far": round(float(rule.far_at(t)), 4)})
    return out


__all__ = ["SCORES", "METRICS", "UNSURE_RATE", "VERDICTS", "pairwise", "OpenSetRule", "operating_curve"]
