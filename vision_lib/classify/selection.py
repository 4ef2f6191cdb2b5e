"""Model selection: the scikit-learn classifiers by name, their cross-validated comparison and the
choice of ``model="auto"``."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..names import AUTO_CLASSIFIERS, CLASSIFIERS


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
    from sklearn.model_selection import cross_validate

    from ..config import n_jobs as _n_jobs

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
    folds = cv_folds(X, y, cv, random_state)
    rows, right = [], []
    for name in models:
        estimator = make_estimator(name, random_state, _inner_folds(y, len(folds)), _fewest_train(len(y), len(folds)))
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


def cv_folds(X: np.ndarray, y: np.ndarray, cv: int = 5, random_state: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled ``cv``-fold splits of training faces (fewer folds for a person with
    fewer faces). Identical rows (copies of a photo give the same face twice) stay in one fold, so
    that no face is scored against its own copy; without such rows these are plain stratified folds."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    X, y = np.asarray(X), np.asarray(y)
    groups = np.unique(X.reshape(len(X), -1), axis=0, return_inverse=True)[1].reshape(-1)
    if groups.max(initial=-1) + 1 == len(X):
        return list(StratifiedKFold(_cv_splits(y, cv), shuffle=True, random_state=random_state).split(X, y))
    first = np.unique(groups, return_index=True)[1]  # a person's distinct faces bound the folds
    folding = StratifiedGroupKFold(_cv_splits(y[first], cv), shuffle=True, random_state=random_state)
    return list(folding.split(X, y, groups))


def _cv_splits(y: np.ndarray, cv: int) -> int:
    _, counts = np.unique(y, return_counts=True)
    k = int(min(cv, counts.min()))
    if k < 2:
        raise ValueError("every person needs at least 2 training faces for cross-validation")
    return k


#: The public names of this module.
__all__ = ["make_estimator", "MODELS", "AUTO_MODELS", "compare_models", "cv_folds", "mcnemar_p", "choose_model"]
