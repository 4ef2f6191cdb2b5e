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

* **Strangers from public web photos, shipped as numbers** (the default where the descriptor has
  one: ``population="web"``): :mod:`vision_lib.stranger_curves` holds, per descriptor, a curve from
  score to the share of stranger photos that come at least this close to one person, measured once
  on the calibration half of LFW (:func:`lfw_half`; ``benchmarks/stranger_curve.py``). No face and
  no descriptor of anyone ships: only ~60 quantiles of distances.

With supplied strangers the first two are pooled into ``impostor_scores_`` and the threshold is
chosen so that the estimated false-accept rate, ``(# impostor scores <= d + 1) / (n + 1)`` (the
share of calibration strangers at least as close, counted conservatively), stays at or under
``far``. Without them, the web curve decides where the descriptor has one (a stranger photo is
named when it is that close to any of the N known people: ``1 - (1 - p(d))^N``), else the
leave-one-person-out strangers do. :meth:`far_at` gives that estimate for any face: the **match
score** the predictions carry ("about this share of strangers come this close"). With too few
strangers for the requested rate, the threshold is the closest stranger and ``far_`` says what can
actually be promised.
"""
from __future__ import annotations

import hashlib
import math
from typing import Sequence

import numpy as np

from .names import DEFAULT_FAR

#: ``direction``: cosine distance to the person's centroid (scale-free); ``cohort``: that cosine
#: normalised by the web strangers' mean and spread along the person's direction (Z-norm; needs the
#: descriptor's shipped curve, else it is ``direction``), so one curve serves every gallery.
SCORES = ("knn", "centroid", "direction", "cohort")
#: Where the calibration strangers come from: public web photos (the shipped curve of the
#: descriptor), or the other people of the training folders (leave one person out).
POPULATIONS = ("web", "training")
METRICS = ("euclidean", "cosine")
#: A face the rule turns down is "not sure" (rather than "not one of the people this model knows")
#: while at most this share of the calibration strangers come as close to the person.
UNSURE_RATE = 0.25
#: What a face's verdict can be: named, close but not close enough, or a stranger.
VERDICTS = ("named", "unsure", "stranger")


def threshold_at(impostor_scores: np.ndarray, far: float) -> tuple[float, float]:
    """``(threshold, promised rate)`` for a false-accept rate ``far`` on sorted stranger scores:
    accept ``d`` when ``(# impostors <= d) + 1 <= far (n + 1)``, i.e. ``d`` under the m-th smallest
    impostor (the closest one when there are too few for ``far``)."""
    n = len(impostor_scores)
    m = min(n - 1, max(0, math.floor(far * (n + 1) + 1e-9) - 1))
    return float(impostor_scores[m]), (m + 1) / (n + 1)


def pairwise(A: np.ndarray, B: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """``(len(A), len(B))`` distances in ``metric`` (``"euclidean"`` or ``"cosine"``: 1 - cos)."""
    from sklearn.metrics import pairwise_distances

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")
    if not len(A) or not len(B):
        return np.zeros((len(A), len(B)))
    return pairwise_distances(np.asarray(A, np.float64), np.asarray(B, np.float64), metric=metric)


def group_thresholds(X: np.ndarray, person: np.ndarray, k: int, far: float, floor: float | None = None) -> list[float]:
    """The open-set limits for a group of 1, 2, ..., ``k`` faces of one person (index ``m - 1``),
    at false-accept rate ``far`` on the calibration faces ``X`` of people ``person``: each face
    with its ``m - 1`` nearest faces of the same person (a tight group, as the clustering forms
    them: their distances to a stranger rise and fall together) is scored as a collection's add
    scores a new group (``collection.assign.group_new``: the mean of its faces' distances to the
    ``k`` nearest faces of a person) against every other person, the nearest kept. Never under
    ``floor`` (a single face's threshold; None: the one these scores give, each face alone against
    the other people): a group is never held to more than one of its faces. Larger groups: the limit of ``k`` faces (their
    distances to a person are those of a ``k``-face neighbourhood; no more credit is taken)."""
    X, person = np.asarray(X, np.float64), np.asarray(person)
    order = np.argsort(person, kind="stable")
    X, person = X[order], person[order]
    ids, starts, sizes = np.unique(person, return_index=True, return_counts=True)
    D = pairwise(X, X)
    # every face's k-nearest mean to every person at once: one sort of each row with the people's
    # columns kept apart (an offset per person), then the first k of each person averaged
    block = np.repeat(np.arange(len(ids)), sizes) * (float(D.max()) + 1.0)
    near = np.sort(D + block[None, :], axis=1) - block[None, :]
    take = np.minimum(k, sizes)
    cols = np.concatenate([s + np.arange(t) for s, t in zip(starts, take)])
    S = np.add.reduceat(near[:, cols], np.r_[0, np.cumsum(take)[:-1]], axis=1) / take
    S[np.arange(len(X)), np.repeat(np.arange(len(ids)), sizes)] = np.inf  # not against themselves
    scores: list[list[np.ndarray]] = [[] for _ in range(k)]
    for s, n in zip(starts, sizes):
        mine = np.arange(s, s + n)
        own = np.argsort(D[np.ix_(mine, mine)], axis=1, kind="stable")  # itself first
        for m in range(2, min(k, n) + 1):
            scores[m - 1].append(S[mine[own[:, :m]]].mean(axis=1).min(axis=1))
    if floor is None:  # a single face's limit from the same scores: the knn rule's strangers
        floor = threshold_at(np.sort(S.min(axis=1)), far)[0]
    out = [float(floor)]
    for m in range(2, k + 1):
        s = np.sort(np.concatenate(scores[m - 1])) if scores[m - 1] else np.zeros(0)
        out.append(max(out[0], threshold_at(s, far)[0]) if len(s) else out[0])
    return out


def lfw_half(person: str) -> str:
    """Which half of the LFW people a person (folder name) belongs to: ``"calibrate"`` when the
    first hex digit of the SHA-256 of the UTF-8 name is 0-7, else ``"score"``. Deterministic and
    independent of which other people a copy of LFW holds: the stranger curves are measured on the
    first half only, and benchmarks score strangers on the second half only."""
    return "calibrate" if hashlib.sha256(person.encode("utf-8")).hexdigest()[0] in "01234567" else "score"


class OpenSetRule:
    """Accept a face as person P only when it is closer to P's training faces than strangers get.

    Args:
        far: the false-accept rate to calibrate for (share of stranger photos that would be named).
        score: ``"knn"`` (mean distance to the ``k`` nearest training faces of the person),
            ``"centroid"`` (distance to the mean of the person's training faces), ``"direction"``
            (cosine distance to that mean) or ``"cohort"`` (that cosine normalised by the web
            strangers' statistics: the score of the shipped curves; ``direction`` without one).
        k: neighbours of ``score="knn"`` (fewer when a person has fewer faces).
        metric: the descriptor's metric (``"euclidean"`` or ``"cosine"``; ``direction`` is cosine).
        population: ``"web"`` (the descriptor's shipped curve of web strangers, when it has one for
            ``score``; else the training people) or ``"training"`` (leave one person out). Supplied
            strangers always take precedence (pooled with the training people).
        descriptor: the descriptor's ``id`` (which shipped curve applies).

    Attributes (after :meth:`fit`):
        classes_: the known people.
        threshold_: a face is accepted when its score is strictly below this.
        far_: the false-accept rate the threshold promises on the calibration strangers
            (<= ``far``, or the smallest rate the strangers can support).
        population_: the strangers the threshold came from: ``"web"``, ``"training"`` or ``"supplied"``.
        score_: the score used (``score``, or ``"direction"`` for ``"cohort"`` without a curve).
        curve_: the web curve used (``{"scores", "rates", ...}``), or None.
        impostor_scores_: sorted scores of the training (and supplied) strangers against their
            closest known person (also kept with the web curve, for diagnostics).
        genuine_scores_: leave-one-out scores of the training faces against their own person.
        n_strangers_: ``{"other_people": n, "supplied": m, "web": pairs}`` in the calibration.
    """

    #: Bundles saved before the web curves were calibrated on the training people (and pickles
    #: restore no ``__init__`` parameter they did not have).
    population = population_ = "training"
    descriptor = curve_ = cohort_ = None

    @property
    def score_(self) -> str:
        """The score used: ``score``, or ``"direction"`` for ``"cohort"`` without web statistics
        (a fitted attribute; this default serves rules pickled before it existed)."""
        return self.__dict__.get("_score_used", self.score)

    @score_.setter
    def score_(self, value: str) -> None:
        self.__dict__["_score_used"] = value

    def __init__(self, far: float = DEFAULT_FAR, score: str = "centroid", k: int = 3, metric: str = "euclidean",
                 population: str = "web", descriptor: str | None = None):
        self.far = far
        self.score = score
        self.k = k
        self.metric = metric
        self.population = population
        self.descriptor = descriptor

    # ------------------------------------------------------------------ fitting
    def fit(self, X: np.ndarray, y: Sequence[str], strangers: np.ndarray | None = None) -> "OpenSetRule":
        """Keep the galleries ``X`` (one row per training face, label ``y``) and calibrate the
        threshold: on ``strangers`` (faces of other people) pooled with the leave-one-person-out
        impostors when given, else on the descriptor's web curve (``population="web"``), else on
        the leave-one-person-out impostors."""
        if not 0 < self.far < 1:
            raise ValueError(f"far must be in (0, 1), got {self.far}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; choose from {SCORES}")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose from {METRICS}")
        if self.population not in POPULATIONS:
            raise ValueError(f"unknown population {self.population!r}; choose from {POPULATIONS}")
        X = np.asarray(X, np.float64)
        y = np.asarray(y).astype(str)
        self.classes_ = sorted(set(y.tolist()))
        supplied_given = strangers is not None and len(strangers)
        from .stranger_curves import curve_for

        curve = curve_for(self.descriptor, self.score)
        if curve is not None and len(curve["mean"]) != X.shape[1]:
            curve = None  # descriptors of another size than the curve's (generated data): no web statistics
        # The cohort score needs the web statistics (kept as ``cohort_``); without them it is the
        # direction score. The web curve calibrates only when no strangers are supplied.
        self.score_ = self.score if self.score != "cohort" or curve is not None else "direction"
        self.cohort_ = (np.asarray(curve["mean"]), np.asarray(curve["cov"])) if self.score_ == "cohort" else None
        if self.population != "web" or supplied_given:
            curve = None
        self.curve_ = curve
        if len(self.classes_) < 2 and not supplied_given and curve is None:
            raise ValueError("calibration needs strangers: two or more people, or supplied stranger faces")
        self.galleries_ = {c: X[y == c] for c in self.classes_}
        self.centroids_ = {c: g.mean(axis=0) for c, g in self.galleries_.items()}
        lopo = [self.scores(self.galleries_[c], [q for q in self.classes_ if q != c]).min(axis=1)
                for c in self.classes_ if len(self.classes_) > 1]
        supplied = np.zeros(0)
        if supplied_given:
            supplied = self.scores(np.asarray(strangers, np.float64), self.classes_).min(axis=1)
        lopo = np.concatenate(lopo) if lopo else np.zeros(0)
        self.impostor_scores_ = np.sort(np.concatenate([lopo, supplied]))
        self.population_ = "supplied" if supplied_given else "web" if curve is not None else "training"
        self.n_strangers_ = {"other_people": int(len(lopo)), "supplied": int(len(supplied)),
                             "web": int(curve["pairs"]) if curve is not None else 0}
        self.genuine_scores_ = np.concatenate([self._leave_one_out(c) for c in self.classes_])
        self.threshold_, self.far_ = self.threshold_for(self.far)
        return self

    def threshold_for(self, far: float) -> tuple[float, float]:
        """``(threshold, promised rate)`` for a false-accept rate ``far`` on the calibration strangers."""
        if self.curve_ is not None:
            # A stranger photo is named when it comes this close to any of the N people: with the
            # per-person rate p, 1 - (1 - p)^N = far.
            n = len(self.classes_)
            p = max(1.0 - (1.0 - far) ** (1.0 / n), self.curve_["rates"][0])
            t = float(np.interp(np.log(p), np.log(self.curve_["rates"]), self.curve_["scores"]))
            return t, float(self.far_at(t))
        return threshold_at(self.impostor_scores_, far)

    def _leave_one_out(self, c: str) -> np.ndarray:
        """Each training face of ``c`` scored against the rest of ``c``'s gallery."""
        g = self.galleries_[c]
        if len(g) < 2:
            return np.zeros(0)
        if self.score_ != "knn":
            rest = (g.sum(axis=0)[None] - g) / (len(g) - 1)
            return np.array([self._to_centroid(g[i:i + 1], rest[i])[0] for i in range(len(g))])
        d = pairwise(g, g, self.metric)
        np.fill_diagonal(d, np.inf)
        return self._knn(d)

    def _knn(self, d: np.ndarray) -> np.ndarray:
        k = max(1, min(self.k, int(np.isfinite(d[0]).sum()) if len(d) else 1))
        return np.sort(d, axis=1)[:, :k].mean(axis=1)

    def _to_centroid(self, X: np.ndarray, centroid: np.ndarray) -> np.ndarray:
        """Scores of faces ``X`` against one centroid, in this rule's score."""
        if self.score_ == "cohort":
            from .stranger_curves import cohort_scores

            return cohort_scores(X, centroid, *self.cohort_)[:, 0]
        metric = "cosine" if self.score_ == "direction" else self.metric
        return pairwise(X, centroid[None], metric)[:, 0]

    # ------------------------------------------------------------------ scoring
    def scores(self, X: np.ndarray, people: Sequence[str] | None = None) -> np.ndarray:
        """``(len(X), len(people))``: each face's score (distance) against each person's gallery."""
        people = self.classes_ if people is None else list(people)
        X = np.asarray(X, np.float64)
        out = np.zeros((len(X), len(people)))
        if self.score_ != "knn":
            for j, c in enumerate(people):
                out[:, j] = self._to_centroid(X, self.centroids_[c])
            return out
        # every gallery in one distance matrix (rows in blocks of at most 64 MB), cut per person: a
        # call per person cost a collection's calibration on 200 people 27 s of its 29
        G = [self.galleries_[c] for c in people]
        cuts = np.cumsum([0] + [len(g) for g in G]).tolist()
        if not cuts[-1]:
            return out
        every = np.concatenate(G)
        step = max(1, (1 << 23) // cuts[-1])
        for s in range(0, len(X), step):
            D = pairwise(X[s:s + step], every, self.metric)
            for j in range(len(people)):
                out[s:s + step, j] = self._knn(D[:, cuts[j]:cuts[j + 1]])
        return out

    def score_for(self, X: np.ndarray, people: Sequence[str]) -> np.ndarray:
        """Each face's score against the person given for it (``people[i]`` for ``X[i]``)."""
        X = np.asarray(X, np.float64)
        return np.array([self.scores(X[i:i + 1], [p])[0, 0] for i, p in enumerate(people)])

    def far_at(self, d: np.ndarray | float) -> np.ndarray | float:
        """Estimated false-accept rate at score ``d``: the share of calibration strangers at least
        this close. Web curve: ``1 - (1 - p(d))^N`` over the N known people (never under the
        curve's smallest measured rate); else ``(count + 1) / (n + 1)`` (never 0: ``n`` strangers
        cannot prove less)."""
        if self.curve_ is not None:
            rates, scores = np.asarray(self.curve_["rates"]), np.asarray(self.curve_["scores"])
            p = np.exp(np.interp(d, scores, np.log(rates), right=0.0))
            out = 1.0 - (1.0 - p) ** len(self.classes_)
        else:
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
                "score": self.score_, "k": self.k, "metric": self.metric, "population": self.population_,
                "n_strangers": dict(self.n_strangers_),
                "genuine_accepted": round(float(self.accept(self.genuine_scores_).mean()), 4)
                if len(self.genuine_scores_) else None}

    def __repr__(self) -> str:
        fitted = f", threshold_={self.threshold_:.3f}" if hasattr(self, "threshold_") else ""
        return (f"OpenSetRule(far={self.far}, score={self.score!r}, k={self.k}, metric={self.metric!r}, "
                f"population={self.population!r}{fitted})")


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


__all__ = ["SCORES", "POPULATIONS", "METRICS", "lfw_half", "threshold_at", "UNSURE_RATE", "VERDICTS", "pairwise", "group_thresholds", "OpenSetRule",
           "operating_curve"]
