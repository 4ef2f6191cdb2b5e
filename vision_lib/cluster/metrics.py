"""Cluster metrics: internal (:func:`internal_metrics`, on assigned faces only) and external
(:func:`external_metrics`, against known identities; every unassigned item is its own singleton)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: Above this many assigned faces, :func:`internal_metrics` scores a random sample of whole groups
#: of about this many faces (silhouette is quadratic in faces, Davies-Bouldin in groups).
INTERNAL_SAMPLE = 20000


def internal_metrics(X: np.ndarray, labels: np.ndarray) -> dict:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz on the assigned faces (noise left out).

    Values are ``None`` when they are undefined (fewer than two groups, or every face its own group).
    With more than :data:`INTERNAL_SAMPLE` assigned faces they are computed on randomly chosen
    whole groups (seeded) holding about that many faces, and ``sampled_faces`` says how many.
    """
    from sklearn import metrics

    X, labels = np.asarray(X), np.asarray(labels)
    keep = labels >= 0
    k = len(np.unique(labels[keep]))
    out = {"n_clusters": int(k), "n_unassigned": int((~keep).sum()), "n_items": int(len(labels)),
           "silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    if keep.sum() > INTERNAL_SAMPLE and k > 2:
        ids, sizes = np.unique(labels[keep], return_counts=True)
        order = np.random.default_rng(0).permutation(len(ids))
        chosen = ids[order[:max(2, int(np.searchsorted(np.cumsum(sizes[order]), INTERNAL_SAMPLE)) + 1)]]
        keep = np.isin(labels, chosen)
        k = len(chosen)
        out["sampled_faces"] = int(keep.sum())
    if 2 <= k < keep.sum():
        Xk, lk = X[keep], labels[keep]
        out["silhouette"] = float(metrics.silhouette_score(Xk, lk))
        out["davies_bouldin"] = float(metrics.davies_bouldin_score(Xk, lk))
        out["calinski_harabasz"] = float(metrics.calinski_harabasz_score(Xk, lk))
    return out


def singletons_for_noise(labels: Sequence[int]) -> np.ndarray:
    """Give every unassigned item (``-1``) its own new group id: how external metrics count noise."""
    labels = np.asarray(labels, dtype=int).copy()
    noise = labels < 0
    start = labels.max() + 1 if (~noise).any() else 0
    labels[noise] = start + np.arange(noise.sum())
    return labels


def external_metrics(truth: Sequence, labels: Sequence[int]) -> dict:
    """Agreement with known identities: purity, ARI, NMI, pairwise and BCubed P/R/F.

    Unassigned items (``-1``) count as singleton clusters (see the module docstring).
    """
    from sklearn import metrics

    truth = np.unique(np.asarray(truth, dtype=object).astype(str), return_inverse=True)[1]
    pred = singletons_for_noise(labels)
    if len(truth) != len(pred):
        raise ValueError("truth and labels differ in length")
    n = len(pred)
    if n == 0:
        raise ValueError("no items to score")
    cont = metrics.cluster.contingency_matrix(truth, pred, sparse=True).tocsr()  # classes x clusters
    nij = cont.data.astype(np.float64)
    class_sizes = np.asarray(cont.sum(axis=1)).ravel().astype(np.float64)
    cluster_sizes = np.asarray(cont.sum(axis=0)).ravel().astype(np.float64)

    def pairs(v):
        return float(np.sum(v * (v - 1) / 2))

    tp = pairs(nij)
    pair_p = tp / pairs(cluster_sizes) if pairs(cluster_sizes) else 1.0
    pair_r = tp / pairs(class_sizes) if pairs(class_sizes) else 1.0
    # BCubed: item-averaged precision/recall; the n_ij items of a cell share n_ij/|cluster| etc.
    rows, cols = cont.nonzero()
    b_p = float(np.sum(nij * nij / cluster_sizes[cols]) / n)
    b_r = float(np.sum(nij * nij / class_sizes[rows]) / n)
    purity = float(np.asarray(cont.max(axis=0).todense()).sum() / n)
    raw = np.asarray(labels)
    return {
        "n_items": n,
        "n_true": int(len(class_sizes)),
        "n_clusters": int(len(np.unique(raw[raw >= 0]))),
        "unassigned": float(np.mean(raw < 0)),
        "purity": purity,
        "ari": float(metrics.adjusted_rand_score(truth, pred)),
        "nmi": float(metrics.normalized_mutual_info_score(truth, pred)),
        "pairwise_precision": pair_p,
        "pairwise_recall": pair_r,
        "pairwise_f": _f(pair_p, pair_r),
        "bcubed_precision": b_p,
        "bcubed_recall": b_r,
        "bcubed_f": _f(b_p, b_r),
    }


def _f(p: float, r: float) -> float:
    return float(2 * p * r / (p + r)) if p + r > 0 else 0.0



__all__ = ["INTERNAL_SAMPLE", "internal_metrics", "singletons_for_noise", "external_metrics"]
