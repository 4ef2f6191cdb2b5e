"""Who is in a photo: train from raw folders (one per person), compare models, predict, save bundles.

The pipeline, as :func:`train` runs it:

1. **Features per face** (:class:`Recipe`): the default is MTCNN faces described by dlib's 128-d
   ResNet descriptor (``features="embedding"``); the classic recipe is Haar faces described by the
   4096-value wavelet recipe of :mod:`vision_lib.features` (``features="wavelet"``). dlib
   descriptors are computed for every face in both recipes, because they drive the cleaning.
2. **Cleaning uncurated folders** (:func:`select_faces`, ``clean="agreement"``): web photos filed
   under a person also show team-mates, crowds, other people alone, or no face. For each folder we
   find the identity most photos agree on (the face with the most photos holding a face within
   dlib's same-person distance, 0.6), then repeat: centroid of the chosen faces, each photo's face
   closest to it if within 0.6, re-estimate, until nothing changes. Faces closer to another
   folder's centroid than to their own are left out as well (a photo filed in the wrong folder).
   Everything left out is recorded with its reason in :class:`TrainingReport`.
3. **Classifier**: a scikit-learn pipeline with probability output, by default chosen among SVMs,
   logistic regression and kNN by cross-validation on the cleaned faces (:func:`compare_models`):
   an RBF SVM unless another is significantly more accurate (:func:`choose_model`).
4. **Prediction** (:meth:`FaceClassifier.predict_image`): every face gets a label and a probability;
   it is named only when it passes the open-set rule calibrated on strangers
   (:mod:`vision_lib.openset`, docs/openset.md: the face's ``verdict`` and ``stranger_rate``);
   a face is ``"unknown"`` when the classifier is less sure than :attr:`FaceClassifier.unknown_below`
   (chosen by cross-validation on the training faces) or, with dlib descriptors, when it lies
   farther than dlib's 0.6 from the centroid of the predicted person's training faces. A hesitant
   probability alone does not make a face unknown when it lies as close to that centroid as most
   of the person's own training faces (:attr:`FaceClassifier.sure_distance`). The photo's label
   (its subject) is the known face closest to its person's centroid, except that the largest known
   face within :data:`SUBJECT_TIE` of the closest wins; None when there is no face or only unknown
   ones. The result lists faces most probable first. Where MTCNN finds no
   face at all, it looks once more, harder (:func:`detect_harder`).

Model bundles (:func:`save_model` / :func:`load_model`) are **pickles**: loading one can run
arbitrary code, so load only files you trust. Loading checks the bundle's format, recipe and the
versions of numpy, scikit-learn, dlib and vision_lib, and refuses a mismatch with a clear message.
"""
from __future__ import annotations

import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .faces import Face
from .models import same_person_distance
from .names import AUTO_CLASSIFIERS, CLASSIFIERS, DEFAULT_FAR  # noqa: F401 (DEFAULT_FAR re-exported)
from .io import PhotoSet, check_output_folder, make_writable_folder, photo_set, write_atomic
from .extraction import (FEATURES, RETRY_BORDER, RETRY_PARAMS, PhotoFeatures, Recipe,  # noqa: F401 (re-exported)
                         detect_harder, extract, recipe_faces, recipe_features)

CLEANING = ("agreement", "largest", "none")
#: Photo-level choice of the subject: most confident known face, or simply the largest face.
CHOICES = ("confident", "largest")
#: With dlib descriptors, known faces at most this much farther from their person's centroid than
#: the closest one count as equally confident, and the largest of them is the photo's subject (the
#: person a photo is *of* is usually its biggest face; 0.05 is well inside the descriptor's noise).
SUBJECT_TIE = 0.05
#: :data:`SUBJECT_TIE` as a share of the descriptor's same-person distance (0.05 of dlib's 0.6), so
#: that ``train`` scales it to any descriptor.
SUBJECT_TIE_SHARE = SUBJECT_TIE / 0.6
#: ``max_distance="adaptive"``: unknown beyond this many times the distance within which 95% of the
#: training faces lie from their own person's centroid (capped at dlib's 0.6). Tight identities
#: (studio-like photos) get a tight open-set rule; loose ones (varied web photos) keep 0.6.
ADAPTIVE_FACTOR = 1.3
UNKNOWN = "unknown"
BUNDLE_FORMAT = 1
#: Packages whose versions are recorded in a bundle and must match when loading it.
VERSIONED = ("numpy", "scikit-learn", "dlib", "vision_lib")


# --------------------------------------------------------------------------- cleaning
@dataclass(frozen=True)
class Excluded:
    """A photo (``face_index`` None) or one face of a photo left out of training, and why."""

    path: str
    label: str
    reason: str
    face_index: int | None = None
    box: tuple[int, int, int, int] | None = None
    distance: float | None = None
    looks_like: str | None = None


@dataclass
class TrainingReport:
    """What training used and what it left out (with reasons)."""

    kept: list[tuple[str, str, int, float | None]] = field(default_factory=list)  # path, label, face, dist
    excluded: list[Excluded] = field(default_factory=list)
    threshold: float | None = None

    def counts(self) -> dict[str, int]:
        """Number of exclusions per reason (reasons without the numbers)."""
        out: dict[str, int] = {}
        for e in self.excluded:
            key = e.reason.split(" (")[0]
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def excluded_for(self, *reasons: str) -> list[Excluded]:
        """The exclusions whose reason starts with one of ``reasons`` (the keys of :meth:`counts`)."""
        return [e for e in self.excluded if e.reason.startswith(reasons)]

    def photos_excluded(self) -> list[Excluded]:
        """Whole photos that gave no training face (the rest are single faces of kept photos)."""
        return [e for e in self.excluded if e.face_index is None]

    def summary(self) -> dict:
        return {
            "faces_kept": len(self.kept),
            "photos_kept": len({k[0] for k in self.kept}),
            "excluded": self.counts(),
            "threshold": self.threshold,
        }


_NOT_PERSON = "no face matches the folder's person"


def select_faces(descriptors: Sequence[np.ndarray | None], threshold: float | None = None,
                 max_iter: int = 20, *, descriptor: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Which face of each photo is the folder's person, by agreement with the rest of the folder.

    Args:
        descriptors: per photo, an ``(n_faces, d)`` array of face descriptors (or None / empty).
        threshold: a face belongs to the person when it lies within this distance of the folder's
            centroid (default: the same-person distance of ``descriptor``).
        descriptor: the name of the descriptor that made ``descriptors`` (None: the default).
        max_iter: re-estimation rounds at most.

    Returns:
        ``(chosen, distance, centroid)``: per photo the index of the chosen face (-1: none), the
        distance of its closest face to the centroid (inf without faces), and the centroid.
    """
    thr = same_person_distance(descriptor) if threshold is None else threshold
    n = len(descriptors)
    chosen = np.full(n, -1)
    dist = np.full(n, np.inf)
    rows = [(i, j, d) for i, D in enumerate(descriptors) if D is not None for j, d in enumerate(D)]
    if not rows:
        return chosen, dist, None
    owner = np.array([r[0] for r in rows])
    X = np.asarray([r[2] for r in rows], dtype=np.float64)
    # Seed: the face that the most *other photos* agree with (a photo counts once however many faces).
    pair = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    close = pair <= thr
    support = np.array([len(set(owner[close[k]]) - {owner[k]}) for k in range(len(X))])
    best = np.flatnonzero(support == support.max())
    seed = best[np.argmin(pair[best].mean(axis=1))]
    centroid = X[seed]
    previous = None
    for _ in range(max_iter):
        d = np.linalg.norm(X - centroid, axis=1)
        chosen[:] = -1
        dist[:] = np.inf
        for k in np.argsort(d):  # closest first: each photo keeps its closest face
            i = owner[k]
            if np.isinf(dist[i]):
                dist[i] = d[k]
                chosen[i] = rows[k][1] if d[k] <= thr else -1
        picked = [k for k in range(len(X)) if chosen[owner[k]] == rows[k][1]]
        if not picked or (previous is not None and np.array_equal(chosen, previous)):
            break
        previous = chosen.copy()
        centroid = X[picked].mean(axis=0)
    return chosen, dist, centroid


def clean_training_set(photos: Sequence[PhotoFeatures], labels: Sequence[str], clean: str = "agreement",
                       threshold: float | None = None, min_size: int = 0, *, descriptor: str | None = None
                       ) -> tuple[list[tuple[int, int]], TrainingReport, dict[str, np.ndarray]]:
    """Choose the training faces of uncurated folders and record what was left out and why.

    Returns ``(picked, report, centroids)``: ``picked`` are ``(photo_index, face_index)`` pairs.
    ``clean="agreement"`` uses :func:`select_faces` per folder, then drops faces closer to another
    folder's centroid; ``"largest"`` keeps each photo's largest face (the classic recipe); ``"none"``
    keeps every face. ``threshold`` defaults to the same-person distance of ``descriptor`` (the
    name of the descriptor the photos' descriptors come from; None: the default descriptor).
    """
    if clean not in CLEANING:
        raise ValueError(f"unknown cleaning {clean!r}; choose from {CLEANING}")
    thr = same_person_distance(descriptor) if threshold is None else threshold
    report = TrainingReport(threshold=thr if clean == "agreement" else None)
    picked: list[tuple[int, int]] = []
    centroids: dict[str, np.ndarray] = {}
    by_label: dict[str, list[int]] = {}
    for i, (ph, lab) in enumerate(zip(photos, labels)):
        if ph.error:
            report.excluded.append(Excluded(str(ph.path), lab, f"unreadable ({ph.error})"))
        elif not ph.faces:
            report.excluded.append(Excluded(str(ph.path), lab, "no face found"))
        else:
            by_label.setdefault(lab, []).append(i)

    def usable(ph: PhotoFeatures, j: int) -> bool:
        return ph.faces[j].size >= min_size

    for lab, idx in by_label.items():
        if clean != "agreement":
            for i in idx:
                ph = photos[i]
                js = [j for j in range(len(ph.faces)) if usable(ph, j)]
                js = js[:1] if clean == "largest" else js  # faces are ordered largest first
                if not js:
                    report.excluded.append(Excluded(str(ph.path), lab, f"face too small (< {min_size} px)"))
                picked += [(i, j) for j in js]
            continue
        descs = []
        for i in idx:
            ph = photos[i]
            D = ph.descriptors
            if D is None:
                raise ValueError("cleaning by agreement needs face descriptors for every face")
            keep = np.array([usable(ph, j) for j in range(len(ph.faces))], dtype=bool)
            descs.append(np.where(keep[:, None], D, np.inf) if keep.any() else None)
        chosen, dist, centroid = select_faces([None if d is None else _finite_rows(d) for d in descs], thr)
        chosen = np.array([_orig_index(descs[k], c) for k, c in enumerate(chosen)])
        if centroid is not None:
            centroids[lab] = centroid
        for k, i in enumerate(idx):
            if chosen[k] >= 0:
                picked.append((i, int(chosen[k])))
            elif descs[k] is None:
                report.excluded.append(Excluded(str(photos[i].path), lab, f"face too small (< {min_size} px)"))
            else:
                report.excluded.append(Excluded(
                    str(photos[i].path), lab, f"{_NOT_PERSON} (closest {dist[k]:.2f} > {thr:.2f})",
                    distance=float(dist[k])))
    final = []
    for i, j in picked:
        ph, lab = photos[i], labels[i]
        d_own = None
        if clean == "agreement" and ph.descriptors is not None and centroids:
            d = {c: float(np.linalg.norm(ph.descriptors[j] - m)) for c, m in centroids.items()}
            d_own = d[lab]
            other = min((c for c in d if c != lab), key=d.get, default=None)
            if other is not None and d[other] < d_own:
                # Filed in the wrong folder: this face agrees better with another person's photos.
                report.excluded.append(Excluded(
                    str(ph.path), lab, f"closer to another person's faces ({other} {d[other]:.2f} < {d_own:.2f})",
                    j, ph.faces[j].box, d_own, other))
                continue
        final.append((i, j))
        report.kept.append((str(ph.path), lab, j, d_own))
    # The other faces of kept photos: other people in the picture.
    kept_photos = {i for i, _ in final}
    for i in sorted(kept_photos):
        ph = photos[i]
        used = {j for ii, j in final if ii == i}
        for j, f in enumerate(ph.faces):
            if j in used:
                continue
            reason = "another face in the photo (not the folder's person)"
            if clean == "largest":
                reason = "not the largest face in the photo"
            report.excluded.append(Excluded(str(ph.path), labels[i], reason, j, f.box,
                                            looks_like=_closest(ph.descriptors, j, centroids, thr)))
    for e_i, e in enumerate(report.excluded):
        if e.face_index is None and e.distance is not None:
            i = next(k for k, ph in enumerate(photos) if str(ph.path) == e.path)
            ph = photos[i]
            D = ph.descriptors
            if D is not None and len(D) and centroids:
                j = int(np.argmin([np.linalg.norm(D[j] - centroids[e.label]) for j in range(len(D))]))
                report.excluded[e_i] = Excluded(e.path, e.label, e.reason, None, ph.faces[j].box, e.distance,
                                                _closest(D, j, centroids, thr))
    return final, report, centroids


def _finite_rows(D: np.ndarray) -> np.ndarray:
    # Faces too small for training are pushed to infinity so they are never the closest face.
    return np.where(np.isfinite(D), D, 1e6)


def _orig_index(D, chosen: int) -> int:
    return -1 if D is None or chosen < 0 or not np.isfinite(D[chosen]).all() else int(chosen)


def _closest(D: np.ndarray | None, j: int, centroids: dict[str, np.ndarray], threshold: float) -> str | None:
    """Folder whose centroid is within ``threshold`` of face ``j`` (None: nobody known)."""
    if D is None or not centroids:
        return None
    d = {c: float(np.linalg.norm(D[j] - m)) for c, m in centroids.items()}
    c = min(d, key=d.get)
    return c if d[c] <= threshold else None


# --------------------------------------------------------------------------- models
def make_estimator(name: str = "svm_rbf", random_state: int | None = 0, calibration_folds: int = 5,
                   n_train: int | None = None):
    """A scikit-learn classifier with ``predict_proba``, by name (see :data:`MODELS`).

    SVMs get probabilities from Platt scaling on ``calibration_folds`` internal folds
    (``CalibratedClassifierCV(SVC(), ensemble=False)``, scikit-learn's replacement for
    ``SVC(probability=True)``). ``n_train``: the fewest faces it will be fitted on; kNN asks for no
    more neighbours than that (5 otherwise), so tiny training folders do not fail.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name in ("svm_rbf", "svm_linear"):
        svc = SVC(kernel="rbf", C=10) if name == "svm_rbf" else SVC(kernel="linear", C=1)
        return make_pipeline(StandardScaler(), CalibratedClassifierCV(svc, cv=calibration_folds, ensemble=False))
    if name == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if name == "random_forest":
        return RandomForestClassifier(n_estimators=300, random_state=random_state, n_jobs=1)
    if name == "knn":
        k = 5 if n_train is None else max(1, min(5, int(n_train)))
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k, weights="distance"))
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


#: Classifiers, and the candidates of ``model="auto"`` in order of preference: see :mod:`vision_lib.names`.
MODELS = CLASSIFIERS
AUTO_MODELS = AUTO_CLASSIFIERS


def compare_models(X: np.ndarray, y: Sequence[str], models: Sequence[str] = MODELS, cv: int = 5,
                   random_state: int = 0, n_jobs: int | None = None) -> list[dict]:
    """Stratified k-fold cross-validation of each model: mean/std accuracy and fit time, best first.

    People with fewer than 3 faces are left out of the comparison (listed in ``left_out``).
    """
    from sklearn.model_selection import StratifiedKFold, cross_validate

    from .config import n_jobs as _n_jobs

    y = np.asarray(y)
    X = np.asarray(X)
    # Calibrated SVMs need >= 2 faces per person in each of 2 inner folds of an outer training part.
    names, counts = np.unique(y, return_counts=True)
    left_out = sorted(str(c) for c, n in zip(names, counts) if n < 3)
    if left_out:
        keep = ~np.isin(y, left_out)
        X, y = X[keep], y[keep]
    if len(np.unique(y)) < 2:
        raise ValueError("cross-validation needs at least two people with 3 or more faces each")
    folds = StratifiedKFold(n_splits=_cv_splits(y, cv), shuffle=True, random_state=random_state)
    rows, right = [], []
    for name in models:
        estimator = make_estimator(name, random_state, _inner_folds(y, folds.n_splits),
                                   _fewest_train(len(y), folds.n_splits))
        res = cross_validate(estimator, X, y, cv=folds, n_jobs=_n_jobs(n_jobs), scoring=("accuracy", "f1_macro"),
                             return_estimator=True, return_indices=True)
        correct = np.zeros(len(y), dtype=bool)  # out-of-fold: was each face answered right?
        for est, test in zip(res["estimator"], res["indices"]["test"]):
            correct[test] = est.predict(X[test]) == y[test]
        right.append(correct)
        rows.append({"model": name, "accuracy": float(res["test_accuracy"].mean()),
                     "accuracy_std": float(res["test_accuracy"].std()),
                     "f1_macro": float(res["test_f1_macro"].mean()),
                     "fit_seconds": float(res["fit_time"].mean()), "left_out": left_out})
    best = int(np.argmax([r["accuracy"] for r in rows]))
    for row, correct in zip(rows, right):
        row["p_vs_best"] = mcnemar_p(right[best], correct)
    return sorted(rows, key=lambda r: -r["accuracy"])


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar test: how likely two classifiers' right/wrong answers on the same
    items differ this much by chance (binomial test on the items only one of them got right)."""
    from scipy.stats import binomtest

    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    return 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def choose_model(rows: Sequence[dict], preference: Sequence[str] = AUTO_MODELS, alpha: float = 0.05) -> str:
    """The first model of ``preference`` whose cross-validated answers are not significantly worse
    than the most accurate model's (``p_vs_best >= alpha``, from :func:`compare_models`).

    On cleaned descriptors the candidates often differ by a few faces in hundreds: noise, and taking
    the top row then switched classifier from split to split. A clear difference still decides (on
    LFW's 96 people, calibrated SVMs lose by over 20 points and logistic regression is chosen).
    """
    for name in preference:
        row = next((r for r in rows if r["model"] == name), None)
        if row is not None and row.get("p_vs_best", 1.0) >= alpha:
            return name
    return rows[0]["model"]


def _inner_folds(y: np.ndarray, outer: int, most: int = 5) -> int:
    """Calibration folds that fit inside the training part of an ``outer``-fold split."""
    _, counts = np.unique(y, return_counts=True)
    return int(max(2, min(most, counts.min() * (outer - 1) // outer)))


def _fewest_train(n: int, folds: int) -> int:
    """Size of the smallest training part of a ``folds``-fold split of ``n`` items."""
    return n - -(-n // folds)


def _cv_splits(y: np.ndarray, cv: int) -> int:
    _, counts = np.unique(y, return_counts=True)
    k = int(min(cv, counts.min()))
    if k < 2:
        raise ValueError("every person needs at least 2 training faces for cross-validation")
    return k


# --------------------------------------------------------------------------- the model
@dataclass
class FacePrediction:
    """One face of a photo: its box, label (``"unknown"`` when unsure), probability of the best
    class, that class, and the distance to that person's training centroid (dlib; None otherwise)."""

    box: tuple[int, int, int, int]
    label: str
    probability: float
    best: str
    distance: float | None = None
    #: Open-set rule (:mod:`vision_lib.openset`): the estimated share of strangers who come at least
    #: this close to ``best``'s training faces, and the verdict (``"named"``, ``"unsure"``, ``"stranger"``).
    stranger_rate: float | None = None
    verdict: str | None = None

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN

    def as_dict(self) -> dict:
        """The face as ``predict --json`` prints it. ``probability`` is the classifier's probability
        among the known people, given only for a named face (an unknown face carries no percentage)."""
        out = {"box": [int(v) for v in self.box], "label": self.label,
               "probability": round(float(self.probability), 4) if self.known else None}
        if self.verdict is not None:
            out.update(verdict=self.verdict, stranger_rate=round(float(self.stranger_rate), 4))
        return out


class FaceClassifier:
    """A trained classifier of known people (see the module docstring for the pipeline).

    Attributes:
        estimator: fitted scikit-learn classifier with ``predict_proba``.
        recipe: how faces and features are computed (:class:`Recipe`).
        classes_: the known people (the estimator's classes).
        unknown_below: probability under which a face is ``"unknown"``.
        max_distance: with dlib descriptors, a face farther than this from the centroid of its
            predicted person's training faces is ``"unknown"`` (None: no distance check).
        sure_distance: with dlib descriptors, a face at most this far from its person's centroid
            is not made unknown by a low probability (None: the probability rule always applies).
        subject_tie: with dlib descriptors, the largest known face within this distance of the
            closest one comes first and is the photo's subject (None: the closest always).
        choose: how the photo's subject is chosen (``"confident"`` or ``"largest"``).
        openset_: the naming rule calibrated on strangers (:class:`~vision_lib.openset.OpenSetRule`,
            fitted on the training descriptors): a face is named only when it passes it too.
        training_report_: what training kept and left out (:class:`TrainingReport`).
    """

    def __init__(self, estimator, recipe: Recipe, unknown_below: float = 0.0, max_distance: float | None = None,
                 choose: str = "confident", centroids: dict[str, np.ndarray] | None = None,
                 training_report: TrainingReport | None = None, info: dict | None = None,
                 sure_distance: float | None = None, subject_tie: float | None = SUBJECT_TIE,
                 openset=None):
        if choose not in CHOICES:
            raise ValueError(f"unknown choice {choose!r}; choose from {CHOICES}")
        self.estimator = estimator
        self.recipe = recipe
        self.unknown_below = float(unknown_below)
        self.max_distance = max_distance
        self.sure_distance = sure_distance
        self.subject_tie = subject_tie
        self.choose = choose
        self.centroids_ = centroids or {}
        self.openset_ = openset
        self.training_report_ = training_report or TrainingReport()
        self.info_ = info or {}

    @property
    def classes_(self) -> list[str]:
        return [str(c) for c in self.estimator.classes_]

    def __repr__(self) -> str:
        model = self.info_.get("model")
        return (f"FaceClassifier({len(self.classes_)} people, {self.recipe.describe()}, "
                + (f"{model}, " if model else "") + f"unknown below p={self.unknown_below:.2f}"
                + (f" unless distance <= {self.sure_distance:.2f}" if self.sure_distance is not None else "")
                + (f", or distance > {self.max_distance:.2f}" if self.max_distance else "")
                + (f", named only under {self.openset_.score} distance {self.openset_.threshold_:.3f} "
                   f"(FAR {self.openset_.far_:.3g})" if self.openset_ is not None else "") + ")")

    # -- faces -> predictions
    def predict_features(self, faces: Sequence[Face], X: np.ndarray, descriptors: np.ndarray | None = None
                         ) -> list[FacePrediction]:
        """Predictions for faces whose feature rows are ``X``: known faces first, most confident first
        (closest to their person's centroid when dlib descriptors are given, else most probable; a
        larger known face nearly as close, within :attr:`subject_tie`, goes first)."""
        if not len(faces):
            return []
        proba = self.estimator.predict_proba(np.asarray(X))
        classes = self.classes_
        preds = []
        for k, f in enumerate(faces):
            c = int(np.argmax(proba[k]))
            p = float(proba[k, c])
            best = classes[c]
            dist = None
            if self.max_distance is not None and descriptors is not None and best in self.centroids_:
                dist = float(np.linalg.norm(self.centroids_[best] - descriptors[k]))
            # A low probability often means two known people look alike *to the classifier*; a face
            # as close to its person as most of their own training faces is still that person.
            sure = dist is not None and self.sure_distance is not None and dist <= self.sure_distance
            unknown = (p < self.unknown_below and not sure) or (dist is not None and dist > self.max_distance)
            rate = verdict = None
            if self.openset_ is not None and descriptors is not None:
                # The closed-set answer is given only where strangers rarely come this close.
                score = float(self.openset_.score_for(descriptors[k:k + 1], [best])[0])
                rate, verdict = self.openset_.far_at(score), self.openset_.verdict(score, not unknown)
                unknown = verdict != "named"
            preds.append(FacePrediction(tuple(int(v) for v in f.box), UNKNOWN if unknown else best, p, best, dist,
                                        rate, verdict))
        # Most confident first: closest to its person's centroid (dlib space) when distances are
        # known, which separates the subject from look-alike strangers far better than the SVM's
        # probability does; otherwise the probability. Unknown faces come last.
        preds = sorted(preds, key=lambda q: (not q.known, q.distance if q.distance is not None else 0.0,
                                             -q.probability))
        known = [q for q in preds if q.known and q.distance is not None]
        if self.subject_tie is not None and len(known) > 1:
            # A near-tie in distance says nothing about who the photo is of; its size does.
            big = max(known, key=lambda q: q.box[2] * q.box[3])
            if big.distance - known[0].distance <= self.subject_tie:
                preds.remove(big)
                preds.insert(0, big)
        return preds

    def subject(self, preds: Sequence[FacePrediction]) -> str | None:
        """The photo's label from :meth:`predict_features`' order: its first known face (closest to
        its person's centroid, or a larger face within :attr:`subject_tie`), or with
        ``choose="largest"`` the largest face's label."""
        if not preds:
            return None
        if self.choose == "largest":
            big = max(preds, key=lambda q: q.box[2] * q.box[3])
            return big.label if big.known else None
        return preds[0].label if preds[0].known else None

    def _result(self, preds: list[FacePrediction]) -> dict:
        # The list reads most probable first, as the probabilities it shows say. The photo's label
        # comes from the subject rule instead (closest to a centroid, larger face on a near-tie):
        # taking the most probable known face named 2-11 fewer footballer photos right per split.
        # Unknown faces (no probability shown) come last; stable: ties keep the subject order.
        listed = sorted(preds, key=lambda q: (not q.known, -round(float(q.probability), 4) if q.known else 0.0))
        return {"label": self.subject(preds), "faces": [q.as_dict() for q in listed]}

    # -- public prediction API
    def predict_image(self, image: np.ndarray) -> dict:
        """``{"label": <the photo's subject or None>, "faces": [{"box", "label", "probability"}, ...]}``,
        faces most probable first (the subject is not always the first: see :meth:`subject`)."""
        faces = recipe_faces(image, self.recipe)
        X, desc = recipe_features(image, faces, self.recipe)
        return self._result(self.predict_features(faces, X, desc))

    def predict_path(self, path: str | os.PathLike) -> dict:
        """Like :meth:`predict_image` plus ``"path"``; an unusable file gives ``{"path", "error"}``."""
        return self.predict_paths([path], progress=False)[0]

    def predict_paths(self, paths: Iterable[str | os.PathLike], *, n_jobs: int | None = None,
                      progress: bool = True) -> list[dict]:
        """:meth:`predict_path` for many files (parallel detection, disk-cached)."""
        return [self._photo_result(ph) for ph in extract(paths, self.recipe, n_jobs=n_jobs, progress=progress)]

    def predict_photos(self, photos: Sequence[PhotoFeatures]) -> list[dict]:
        """Predictions for photos already run through :func:`extract` with this model's recipe."""
        return [self._photo_result(ph) for ph in photos]

    def _photo_result(self, ph: PhotoFeatures) -> dict:
        if ph.error:
            return {"path": str(ph.path), "error": ph.error}
        return {"path": str(ph.path), **self._result(self.predict_features(ph.faces, ph.features, ph.descriptors))}



# --------------------------------------------------------------------------- training
def _as_photo_set(data: PhotoSet | str | os.PathLike) -> PhotoSet:
    ps = data if isinstance(data, PhotoSet) else photo_set(data, labelled=True)
    if not ps.labels:
        raise ValueError(f"no photos in sub-folders of {ps.root}: expected one folder per person")
    if len(set(ps.labels)) < 2:
        raise ValueError(f"need at least two people (sub-folders) under {ps.root}, found {sorted(set(ps.labels))}")
    return ps


MIN_FACES_PER_PERSON = 2


def _drop_rare(photos, labels, picked, report: TrainingReport) -> list[tuple[int, int]]:
    """People with fewer than :data:`MIN_FACES_PER_PERSON` training faces cannot be learnt: drop them."""
    count: dict[str, int] = {}
    for i, _ in picked:
        count[labels[i]] = count.get(labels[i], 0) + 1
    rare = {lab for lab, n in count.items() if n < MIN_FACES_PER_PERSON}
    if not rare:
        return list(picked)
    keep = []
    for i, j in picked:
        if labels[i] in rare:
            report.excluded.append(Excluded(str(photos[i].path), labels[i],
                                            f"person left out: fewer than {MIN_FACES_PER_PERSON} training faces",
                                            j, photos[i].faces[j].box))
            report.kept = [k for k in report.kept if not (k[0] == str(photos[i].path) and k[2] == j)]
        else:
            keep.append((i, j))
    return keep


def training_matrix(photos: Sequence[PhotoFeatures], labels: Sequence[str], picked: Sequence[tuple[int, int]]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(X, y, descriptors)`` of the picked faces."""
    X = np.asarray([photos[i].features[j] for i, j in picked], dtype=np.float32)
    y = np.asarray([labels[i] for i, _ in picked])
    has_desc = all(photos[i].descriptors is not None for i, _ in picked)
    D = np.asarray([photos[i].descriptors[j] for i, j in picked], dtype=np.float32) if has_desc else None
    return X, y, D


def training_faces(photos: Sequence[PhotoFeatures], labels: Sequence[str], clean: str = "agreement",
                   threshold: float | None = None, min_size: int = 0, *, descriptor: str | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, TrainingReport]:
    """``(X, y, descriptors, report)``: the training faces :func:`train` would use, after cleaning."""
    picked, report, _ = clean_training_set(photos, labels, clean, threshold, min_size, descriptor=descriptor)
    picked = _drop_rare(photos, labels, picked, report)
    X, y, D = training_matrix(photos, labels, picked)
    return X, y, D, report


def unknown_threshold(estimator, X: np.ndarray, y: np.ndarray, quantile: float = 0.01, cv: int = 5,
                      random_state: int = 0, n_jobs: int | None = None) -> float:
    """Probability under which a face is called unknown, from out-of-fold predictions on training data.

    It is the ``quantile`` of the out-of-fold top probability over the *correctly* recognised
    training faces: a new face is unknown when the model is less sure than it was for all but
    ``quantile`` of the faces it got right in cross-validation.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from .config import n_jobs as _n_jobs

    folds = StratifiedKFold(n_splits=_cv_splits(y, cv), shuffle=True, random_state=random_state)
    proba = cross_val_predict(clone(estimator), X, y, cv=folds, method="predict_proba", n_jobs=_n_jobs(n_jobs))
    classes = np.unique(y)
    top = proba.max(axis=1)
    right = classes[proba.argmax(axis=1)] == y
    if not right.any():
        return 0.0
    return float(np.quantile(top[right], quantile))


def train(data: PhotoSet | str | os.PathLike, features: str = "embedding", detector: str | None = None, *,
          descriptor: str | None = None,
          model: str = "auto", clean: str | None = None, choose: str = "confident",
          threshold: float | None = None, unknown_quantile: float | None = 0.01,
          max_distance: float | str | None = None, sure_quantile: float | None = 0.95,
          subject_tie: float | None | str = "auto", min_size: int = 0,
          feature_params: dict | None = None, far: float | None = DEFAULT_FAR,
          strangers: "np.ndarray | PhotoSet | str | os.PathLike | None" = None, openset_score: str = "centroid",
          retry: bool | None = None, random_state: int = 0, n_jobs: int | None = None, progress: bool = True,
          photos: Sequence[PhotoFeatures] | None = None) -> FaceClassifier:
    """Train a classifier of known people from a folder of sub-folders (one per person), uncurated.

    Args:
        data: a labelled :class:`~vision_lib.io.PhotoSet` or a folder ``<person>/<photos>``.
        features: ``"embedding"`` (the face descriptor, default) or ``"wavelet"`` (classic recipe).
        detector: a name of :data:`vision_lib.models.DETECTORS` (default: the default detector for
            embeddings, Haar for wavelets).
        descriptor: a name of :data:`vision_lib.models.DESCRIPTORS` (None: the default); its
            ``threshold`` (same-person distance) is the default of every distance rule below.
        model: a name from :data:`MODELS`, or ``"auto"``: 5-fold cross-validation of
            :data:`AUTO_MODELS` on the cleaned training faces (``info_["comparison"]``), then the
            first of them not significantly worse than the most accurate (:func:`choose_model`).
        clean: ``"agreement"`` (default for embeddings), ``"largest"`` (default for the wavelet
            recipe: each photo's largest face, as in the classic recipe) or ``"none"``.
        choose: photo-level subject, ``"confident"`` (most confident known face) or ``"largest"``.
        threshold: same-person distance for cleaning (default: the descriptor's).
        unknown_quantile: see :func:`unknown_threshold` (None: never unknown by probability).
        max_distance: farther than this (descriptor distance) from the centroid of the predicted
            person's training faces is unknown (default: the descriptor's same-person distance for
            embeddings, none for wavelets); ``"adaptive"``: :data:`ADAPTIVE_FACTOR` times the 95%
            quantile of the training faces' distances to their own centroid, at most that distance.
        sure_quantile: with dlib descriptors, a face closer to its person's centroid than this
            quantile of the training faces' distances to their own centroids is not made unknown by
            a low probability (:attr:`FaceClassifier.sure_distance`; None: never).
        subject_tie: see :attr:`FaceClassifier.subject_tie` (photo subject among near-equal faces);
            ``"auto"``: :data:`SUBJECT_TIE_SHARE` of the descriptor's same-person distance.
        far: false-accept rate of the open-set naming rule (:class:`~vision_lib.openset.OpenSetRule`),
            calibrated on the other people of the training folders (leave one person out) plus
            ``strangers``, in the descriptor's own metric; None: no open-set rule (the closed-set
            classifier names every face it is sure of).
        strangers: faces of people *not* in ``data`` for that calibration: a folder of photos (every
            face found counts), a :class:`~vision_lib.io.PhotoSet`, or an ``(n, dim)`` descriptor array.
        openset_score: ``"centroid"`` (distance to the mean of the person's training faces; it
            separated strangers better on the footballers, docs/openset.md) or ``"knn"`` (mean
            distance to the 3 nearest).
        min_size: faces with a shorter side (px) are not used for training.
        retry: look again harder where MTCNN finds no face (default: True with MTCNN).
        photos: precomputed :func:`extract` results for ``data.paths`` (saves a pass).

    Returns:
        A fitted :class:`FaceClassifier`; ``training_report_`` lists what was left out and why.
    """
    if isinstance(max_distance, str) and max_distance != "adaptive":
        raise ValueError(f"max_distance must be a number, None or 'adaptive', not {max_distance!r}")
    ps = _as_photo_set(data)
    detector = detector or (None if features == "embedding" else "haar")
    clean = clean or ("agreement" if features == "embedding" else "largest")
    recipe = Recipe(features, detector, (), tuple(sorted((feature_params or {}).items())),
                    retry=True if retry is None else retry, descriptor=descriptor)
    same_person = recipe.descriptor_model.threshold
    if subject_tie == "auto":
        subject_tie = SUBJECT_TIE_SHARE * same_person
    start = time.perf_counter()
    if photos is None:
        photos = extract(ps.paths, recipe, n_jobs=n_jobs, progress=progress)
    X, y, D, report = training_faces(photos, ps.labels, clean, threshold, min_size, descriptor=recipe.descriptor)
    for r in ps.skipped:  # every file of the folder is accounted for: non-photos, hidden, loose photos
        parts = Path(r.source).relative_to(ps.root).parts
        report.excluded.append(Excluded(r.source, parts[0] if len(parts) > 1 else "", r.reason))
    if len(set(y)) < 2:
        raise ValueError(f"after cleaning, faces of fewer than two people remain: {report.summary()}")
    _, counts = np.unique(y, return_counts=True)
    comparison = None
    if model == "auto":
        # Chosen on the training data only: e.g. calibrated SVMs suit 6 people with ~100 faces each
        # but not 96 people with ~15 each, where logistic regression or kNN do far better.
        comparison = compare_models(X, y, AUTO_MODELS, random_state=random_state, n_jobs=n_jobs) \
            if counts.min() >= 3 else [{"model": "svm_rbf"}]
        model = choose_model(comparison)
    unknown_below = 0.0
    # The out-of-fold threshold needs >= 3 faces per person (2 outer folds x 2 calibration folds).
    if unknown_quantile is not None and counts.min() >= 3:
        splits = _cv_splits(y, 5)
        estimator = make_estimator(model, random_state, _inner_folds(y, splits), _fewest_train(len(y), splits))
        unknown_below = unknown_threshold(estimator, X, y, unknown_quantile, random_state=random_state, n_jobs=n_jobs)
    estimator = make_estimator(model, random_state, int(min(5, counts.min())), len(y))
    estimator.fit(X, y)
    if max_distance is None and features == "embedding":
        max_distance = same_person
    centroids = {str(c): D[y == c].mean(axis=0) for c in np.unique(y)} if D is not None and max_distance else {}
    sure_distance = None
    if centroids:
        own = np.linalg.norm(D - np.asarray([centroids[str(c)] for c in y]), axis=1)
        if sure_quantile is not None:
            sure_distance = float(np.quantile(own, sure_quantile))
        if max_distance == "adaptive":
            max_distance = float(min(same_person, ADAPTIVE_FACTOR * np.quantile(own, 0.95)))
    elif max_distance == "adaptive":
        raise ValueError("max_distance='adaptive' needs face descriptors of the training faces")
    rule = None
    if far is not None and D is not None:
        from .openset import OpenSetRule

        rule = OpenSetRule(far=far, score=openset_score, metric=recipe.descriptor_model.metric).fit(
            D, y, strangers=_stranger_descriptors(strangers, recipe, n_jobs, progress))
    info = {"model": model, "clean": clean, "n_photos": len(ps), "n_faces": len(y), "root": str(ps.root),
            "seconds": round(time.perf_counter() - start, 1), "comparison": comparison,
            "openset": rule.summary() if rule is not None else None}
    return FaceClassifier(estimator, recipe, unknown_below, max_distance, choose, centroids, report, info,
                          sure_distance, subject_tie, rule)


def _stranger_descriptors(strangers, recipe: Recipe, n_jobs: int | None, progress: bool) -> np.ndarray | None:
    """Descriptors of every face in the stranger photos (or the array given)."""
    if strangers is None:
        return None
    if isinstance(strangers, np.ndarray):
        return strangers
    ps = strangers if isinstance(strangers, PhotoSet) else photo_set(strangers)
    if not len(ps):
        raise ValueError(f"no photos in {ps.root} for the stranger calibration")
    rows = [ph.descriptors for ph in extract(ps.paths, recipe, n_jobs=n_jobs, progress=progress)
            if ph.descriptors is not None and len(ph.descriptors)]
    if not rows:
        raise ValueError(f"no face found in the stranger photos under {ps.root}")
    return np.concatenate(rows)


# --------------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """Photo-level scores against folder names (the truth is the folder, even when it is wrong)."""

    paths: list[str]
    truth: list[str]
    predicted: list[str | None]
    results: list[dict]

    @property
    def with_face(self) -> np.ndarray:
        return np.array([bool(r.get("faces")) for r in self.results])

    @property
    def covered(self) -> np.ndarray:
        return np.array([p is not None for p in self.predicted])

    def scores(self) -> dict:
        """Photo-level scores (truth = folder name):

        ``accuracy_with_face``: right answers / photos where a face was found ("unknown" counts as
        wrong); ``accuracy_named``: right answers / photos where the model names someone;
        ``accuracy_all``: right answers / all photos; ``coverage``: share of photos where it names
        someone; ``face_coverage``: share of photos where a face was found."""
        right = np.array([p == t for p, t in zip(self.predicted, self.truth)])
        cov, face = self.covered, self.with_face
        n = len(self.truth)
        return {
            "photos": n,
            "accuracy_with_face": float(right[face].mean()) if face.any() else 0.0,
            "accuracy_named": float(right[cov].mean()) if cov.any() else 0.0,
            "accuracy_all": float(right.mean()) if n else 0.0,
            "coverage": float(cov.mean()) if n else 0.0,
            "face_coverage": float(face.mean()) if n else 0.0,
            "photos_with_face": int(face.sum()),
            "errors": int(sum(1 for r in self.results if "error" in r)),
        }

    def labels(self) -> list[str]:
        return sorted(set(self.truth))

    def confusion(self) -> tuple[np.ndarray, list[str]]:
        """Confusion matrix (rows truth, columns prediction) with a last column for "no answer"."""
        from sklearn.metrics import confusion_matrix

        labs = self.labels()
        pred = [p if p is not None else "(none)" for p in self.predicted]
        cols = labs + ["(none)"]
        return confusion_matrix(self.truth, pred, labels=cols)[: len(labs)], cols

    def report(self) -> str:
        """scikit-learn classification report over the photos where a face was found, a photo with
        no answer counting as a miss: per person, precision is over the photos named as them and
        recall over their photos; the micro average row gives ``accuracy_named`` (precision) and
        ``accuracy_with_face`` (recall) of :meth:`scores`."""
        from sklearn.metrics import classification_report

        face = self.with_face
        pred = np.array([p if p is not None else "(no answer)" for p in self.predicted], dtype=object)[face]
        return classification_report(np.asarray(self.truth)[face], pred.astype(str), labels=self.labels(),
                                     zero_division=0, digits=3)

    def mistakes(self) -> list[dict]:
        return [{**r, "truth": t} for r, t, p in zip(self.results, self.truth, self.predicted) if p != t]


def evaluate(model: FaceClassifier, data: PhotoSet, *, photos: Sequence[PhotoFeatures] | None = None,
             progress: bool = True, n_jobs: int | None = None) -> Evaluation:
    """Predict every photo of a labelled set and compare with its folder name."""
    if photos is None:
        photos = extract(data.paths, model.recipe, n_jobs=n_jobs, progress=progress)
    results = model.predict_photos(photos)
    return Evaluation([str(p) for p in data.paths], list(data.labels), [r.get("label") for r in results], results)


def split(data: PhotoSet | str | os.PathLike, test_size: float = 0.3, seed: int = 0) -> tuple[PhotoSet, PhotoSet]:
    """A stratified, reproducible train / test split of a labelled photo set.

    A person with a single photo cannot be in both parts: that photo goes to training, with a
    warning naming the person (the split of everyone else is unchanged).
    """
    import warnings

    from sklearn.model_selection import train_test_split

    ps = _as_photo_set(data)
    labels = np.asarray(ps.labels)
    names, counts = np.unique(labels, return_counts=True)
    single = set(names[counts < 2].tolist())
    idx = np.flatnonzero(~np.isin(labels, list(single)))
    if single:
        warnings.warn(f"{len(single)} people have a single photo, kept for training only: "
                      f"{', '.join(sorted(single))}", UserWarning, stacklevel=2)
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=labels[idx])
    tr = np.concatenate([tr, np.flatnonzero(np.isin(labels, list(single)))])
    return ps.subset(sorted(tr.tolist())), ps.subset(sorted(te.tolist()))


# --------------------------------------------------------------------------- bundles
class ModelBundleError(ValueError):
    """A saved model that cannot be used here (other versions, unknown recipe, not a bundle)."""


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import sklearn

    from . import __version__

    out = {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "vision_lib": __version__}
    try:
        import dlib

        out["dlib"] = dlib.__version__
    except ImportError:  # pragma: no cover - dlib is a hard need of the default recipe
        try:
            out["dlib"] = md.version("dlib-bin")
        except md.PackageNotFoundError:
            out["dlib"] = "missing"
    return out


def check_model_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse, before any training, a path :func:`save_model` would refuse or fail to write: an
    existing file without ``overwrite``, anything that is not a regular file (a folder, a device),
    or a folder that cannot be written."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise FileExistsError(f"{path} exists and is not a regular file; choose another model path")
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    check_output_folder(path.parent)
    try:
        make_writable_folder(path.parent)
    except OSError as exc:
        raise PermissionError(f"cannot write a model into {path.parent}: {exc.strerror or exc}") from None
    return path


def save_model(model: FaceClassifier, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a model bundle (a pickle: estimator + labels + feature recipe + package versions).

    Refuses to replace an existing file unless ``overwrite`` (see :func:`check_model_path`). The
    file is written under a temporary name and renamed, so an existing bundle is never left half
    written. Bundles are pickles: share and load only files you trust.
    """
    import hashlib

    path = check_model_path(path, overwrite=overwrite)
    header = {
        "format": BUNDLE_FORMAT, "kind": "vision_lib.FaceClassifier", "versions": _versions(),
        "recipe": asdict(model.recipe), "descriptor": model.recipe.descriptor_model.id, "labels": model.classes_,
        "unknown_below": model.unknown_below, "max_distance": model.max_distance, "choose": model.choose,
        "sure_distance": model.sure_distance, "subject_tie": model.subject_tie,
        "openset": None if model.openset_ is None else model.openset_.summary(),
        "info": model.info_,
    }
    # The header holds only plain Python values, so it can be checked before the estimator is unpickled.
    body = pickle.dumps({"estimator": model.estimator, "centroids": model.centroids_,
                         "training_report": model.training_report_, "openset": model.openset_}, protocol=5)
    # A damaged body can still unpickle (zeroed bytes inside an array): the checksum catches it.
    header["body_sha256"] = hashlib.sha256(body).hexdigest()
    return write_atomic(path, pickle.dumps({"header": header, "body": body}, protocol=5))


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles only plain Python containers and scalars (the bundle's outer layer)."""

    def find_class(self, module, name):
        raise ModelBundleError(f"not a vision_lib model bundle (it refers to {module}.{name})")


def read_header(path: str | os.PathLike) -> dict:
    """The bundle's outer record, ``{"header": {format, versions, recipe, labels, ...}, "body": bytes}``,
    read without unpickling the estimator (``body`` stays the estimator's pickled bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            outer = _PlainUnpickler(f).load()
    except ModelBundleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise ModelBundleError(f"{path}: not a vision_lib model bundle ({type(exc).__name__}: {exc})") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("header"), dict) or "body" not in outer:
        raise ModelBundleError(f"{path}: not a vision_lib model bundle")
    return outer


def load_model(path: str | os.PathLike, *, check_versions: bool = True) -> FaceClassifier:
    """Load a bundle written by :func:`save_model`, refusing a mismatch of recipe or versions.

    **Bundles are pickles: loading one can run arbitrary code. Load only files you trust.**
    The header (plain values only) is read and checked first; the estimator is unpickled only
    when the bundle format, recipe and the versions of numpy, scikit-learn, dlib and vision_lib
    match this installation (``check_versions=False`` skips the version check, at your own risk).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    outer = read_header(path)
    header = outer["header"]
    if header.get("kind") != "vision_lib.FaceClassifier" or header.get("format") != BUNDLE_FORMAT:
        raise ModelBundleError(f"{path}: bundle format {header.get('format')!r} is not {BUNDLE_FORMAT}; "
                               "retrain the model with this vision_lib")
    _check_body(path, header, outer["body"])
    from .models import descriptor_for_id

    fields = dict(header["recipe"])
    if "descriptor" not in fields and isinstance(header.get("descriptor"), str):
        # Bundles from before the descriptor registry: their descriptor is named by its id alone.
        known = descriptor_for_id(header["descriptor"])
        fields["descriptor"] = known.name if known is not None else "dlib"
    try:
        recipe = Recipe(**{k: (tuple(tuple(x) for x in v) if isinstance(v, (list, tuple)) else v)
                           for k, v in fields.items()})
    except (TypeError, ValueError) as exc:
        raise ModelBundleError(f"{path}: unknown feature recipe {header.get('recipe')} ({exc}); "
                               "retrain the model with this vision_lib") from None
    here = recipe.descriptor_model.id
    if header.get("descriptor") != here:
        # Always checked: descriptors of another model, version or alignment live in another space.
        raise ModelBundleError(f"{path}: trained on face descriptors {header.get('descriptor')!r}, but this "
                               f"vision_lib's {recipe.descriptor!r} descriptor computes {here!r}; retrain with "
                               f"`vision-lib train --descriptor {recipe.descriptor}`")
    if check_versions:
        here = _versions()
        saved = header.get("versions", {})
        diff = [f"{k} {saved.get(k, '?')} (bundle) vs {here.get(k)} (installed)" for k in VERSIONED
                if saved.get(k) != here.get(k)]
        if diff:
            raise ModelBundleError(
                f"{path} was saved with other package versions: " + "; ".join(diff)
                + ". Retrain with `vision-lib train`, or install the bundle's versions.")
    if "openset" not in header:
        # Without the stranger calibration it would name every face as one of its people.
        raise ModelBundleError(f"{path}: saved before open-set calibration (it would put a known name on "
                               "strangers); retrain it with `vision-lib train` (see docs/openset.md)")
    try:
        body = pickle.loads(outer["body"])
        model = FaceClassifier(body["estimator"], recipe, header["unknown_below"], header["max_distance"],
                               header["choose"], body["centroids"], body["training_report"], header.get("info"),
                               header.get("sure_distance"), header.get("subject_tie"), body.get("openset"))
        same_labels = model.classes_ == list(header["labels"])
    except Exception as exc:  # noqa: BLE001 - whatever a damaged pickle raises, the answer is the same
        raise ModelBundleError(f"{path}: damaged model bundle ({type(exc).__name__}: {exc}); "
                               "retrain it with `vision-lib train`") from None
    if not same_labels:
        raise ModelBundleError(f"{path}: labels in the header do not match the estimator's classes")
    return model


def _check_body(path: Path, header: dict, body) -> None:
    """Refuse a bundle whose header fields have the wrong types or whose body fails its checksum."""
    import hashlib
    from numbers import Real

    def number(v, none_ok=True):
        return (v is None and none_ok) or (isinstance(v, Real) and not isinstance(v, bool))

    problems = [name for name, ok in (
        ("versions", isinstance(header.get("versions"), dict)),
        ("recipe", isinstance(header.get("recipe"), dict)),
        ("labels", isinstance(header.get("labels"), (list, tuple)) and all(isinstance(x, str) for x in header["labels"])),
        ("unknown_below", number(header.get("unknown_below", "missing"), none_ok=False)),
        ("max_distance", number(header.get("max_distance"))),
        ("sure_distance", number(header.get("sure_distance"))),
        ("subject_tie", number(header.get("subject_tie"))),
        ("choose", header.get("choose") in CHOICES),
        ("body", isinstance(body, bytes)),
    ) if not ok]
    if problems:
        raise ModelBundleError(f"{path}: damaged model bundle (bad {', '.join(problems)}); retrain it with `vision-lib train`")
    expected = header.get("body_sha256")  # bundles written before the checksum have none
    if expected is not None and hashlib.sha256(body).hexdigest() != expected:
        raise ModelBundleError(f"{path}: damaged model bundle (checksum mismatch); retrain it or copy it again")


# --------------------------------------------------------------------------- open-set curve
#: False-accept rates at which :func:`photo_curve` evaluates a model (its own ``far`` is added).
CURVE_FARS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def photo_curve(model, known_set, known_photos, strangers, fars: Sequence[float] = CURVE_FARS) -> list[dict]:
    """A trained :class:`~vision_lib.classify.FaceClassifier` at the thresholds its rule gives for
    ``fars`` (and at its own, marked ``default``): per point, the share of stranger photos (with a
    face) it names, the number of stranger faces shown with a probability (named), and on the
    labelled ``known_set`` (its :func:`~vision_lib.classify.extract` results ``known_photos``)
    accuracy over the photos it names, coverage and accuracy over photos with a face."""
    rule = model.openset_
    kept = rule.threshold_, rule.far_
    points = sorted({*fars, rule.far})
    out = []
    try:
        for far in points:
            rule.threshold_, rule.far_ = rule.threshold_for(far)
            res = model.predict_photos(strangers)
            with_face = [r for r in res if r.get("faces")]
            named = sum(r.get("label") is not None for r in with_face)
            known = evaluate(model, known_set, photos=known_photos, progress=False).scores()
            out.append({"far": far, "threshold": round(rule.threshold_, 4), "promised_far": round(rule.far_, 5),
                        "strangers_named_share": round(named / max(1, len(with_face)), 4),
                        "stranger_faces_with_probability": sum(f.get("probability") is not None
                                                               for r in with_face for f in r["faces"]),
                        "known_accuracy_named": round(known["accuracy_named"], 4),
                        "known_coverage": round(known["coverage"], 4),
                        "known_accuracy_with_face": round(known["accuracy_with_face"], 4),
                        "known_accuracy_all": round(known["accuracy_all"], 4),
                        **({"default": True} if far == rule.far else {})})
    finally:
        rule.threshold_, rule.far_ = kept
    return out


#: The public names of this module.
__all__ = ["CURVE_FARS", "photo_curve", "DEFAULT_FAR", "CLEANING", "CHOICES", "SUBJECT_TIE", "SUBJECT_TIE_SHARE", "ADAPTIVE_FACTOR", "UNKNOWN",
           "BUNDLE_FORMAT", "VERSIONED", "Excluded", "TrainingReport", "select_faces", "clean_training_set",
           "make_estimator", "MODELS", "AUTO_MODELS", "compare_models", "mcnemar_p", "choose_model",
           "FacePrediction", "FaceClassifier", "MIN_FACES_PER_PERSON", "training_matrix", "training_faces",
           "unknown_threshold", "train", "Evaluation", "evaluate", "split", "ModelBundleError",
           "check_model_path", "save_model", "read_header", "load_model"]
