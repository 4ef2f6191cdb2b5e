"""Identity clustering: group face photos by person when the number of people is unknown.

Faces are described by a descriptor of :mod:`vision_lib.models` (:func:`vision_lib.faces.detect_paths`
with ``descriptors=<name>``), where two faces of the same person are usually closer than the
descriptor's same-person distance (its ``threshold``, e.g. dlib's documented 0.6; the default
descriptor, :data:`~vision_lib.models.DEFAULT_DESCRIPTOR`, has its own) and faces of different
people usually farther. Default thresholds are shares of that distance (:data:`THRESHOLD_SHARES`;
"the threshold" below is that default, or the ``threshold`` given). :class:`IdentityClustering` turns
that into groups:

==================  ===========================================================================
``hybrid``          (default) dense cores found by HDBSCAN (scikit-learn's default
                    ``min_cluster_size`` of 5), each split by average linkage at the threshold
                    (density alone can chain several people into one core where a collection is
                    dense everywhere); a piece rejoins a larger piece of its core when that is the
                    only piece whose 5 nearest faces are, on average, closer than the threshold.
                    Every face HDBSCAN left as noise joins the core whose 5 nearest faces
                    are on average closer than the threshold, when only one core is (a face near
                    several: the core whose faces are on average closer, as before), the rest are
                    grouped by average linkage at the threshold, and such a group joins a core by
                    the same 5-nearest test. Cores separate look-alikes (a density valley between
                    two people) that an absolute distance merges, and never merge with each other;
                    the local test lets a profile face join its person's other profiles, which an
                    average over all of a large core's poses refuses (``attach="mean"``: that
                    average, the rule before 2026-12-02)
``agglomerative``   average linkage cut at a distance threshold (default: the descriptor's
                    same-person distance, :data:`THRESHOLD_SHARES`), or into ``n_clusters`` groups
``chinese_whispers`` dlib's graph clustering (for any descriptor): link faces closer than the
                    threshold (default 5/6 of the same-person distance)
``hdbscan``         density based (``min_cluster_size``); sparse faces become noise
``dbscan``          density based with a fixed radius (``threshold`` as ``eps``; default 5/6 of
                    the same-person distance)
``kmeans``          needs ``n_clusters`` (estimated with the default method when not given);
                    assigns every face, never reports noise
==================  ===========================================================================

A face that fits no group (a singleton of the threshold methods, or HDBSCAN/DBSCAN noise) gets
label ``-1`` (unassigned) instead of being forced into a group. ``max_clusters`` caps the number of
groups for a coarse segmentation: the closest groups are merged (average linkage of their
centroids) until the cap holds.

Metrics: :func:`internal_metrics` (silhouette, Davies-Bouldin, Calinski-Harabasz, on assigned faces
only) and :func:`external_metrics` (purity, ARI, NMI, pairwise and BCubed precision/recall/F)
where **every unassigned item counts as its own singleton cluster**: it is never credited with
being grouped with its own person (recall pays), and never blamed for a wrong merge.

Export (:func:`export_clusters`): ``OUT/cluster_NN/`` with copies (or hard links) of the photos,
``OUT/unassigned/``, ``OUT/clusters.csv`` (``source,face_index,cluster``) and ``OUT/metrics.json``.
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from .io import CSV_TEXT, Rejected, copy_grouped, flat_name, locked_output, prepare_output  # noqa: F401 (re-exported)
from .models import same_person_distance
from .tables import FaceTable, face_table, subject_face  # noqa: F401 (re-exported)

from .names import CLUSTER_METHODS


#: Default distance threshold per method. Agglomerative (average linkage) merges two groups when
#: their faces are on average closer than dlib's documented same-person distance (0.6). Chinese
#: Whispers links single *pairs* (one link can join two people), so it uses the stricter 0.5 of
#: dlib's own clustering example; DBSCAN's radius likewise (it chains through single pairs).
#: The same rules as shares of a descriptor's same-person distance (the values above for dlib's 0.6);
#: these shares are what every stage applies, to the descriptor's ``threshold``.
THRESHOLD_SHARES = {"hybrid": 1.0, "agglomerative": 1.0, "chinese_whispers": 0.5 / 0.6, "dbscan": 0.5 / 0.6}
#: The shares applied to dlib's 0.6 (the figures of the rules above); for other descriptors use
#: :data:`THRESHOLD_SHARES` times their ``threshold``.
DEFAULT_THRESHOLDS = {m: round(s * 0.6, 6) for m, s in THRESHOLD_SHARES.items()}  # dlib's figures

#: Above this many faces, agglomerative clustering only links each face to its nearest neighbours
#: (sparse connectivity), so memory grows linearly instead of quadratically.
_DENSE_LIMIT = 6000

#: HDBSCAN's ``min_cluster_size`` for the cores of ``hybrid``: scikit-learn's default (not tuned).
#: Smaller people are still grouped by the average-linkage step.
HYBRID_CORE_SIZE = 5

#: Above this many faces, ``hybrid`` and ``agglomerative`` (with ``algorithm="auto"``) work on a
#: k-nearest-neighbour graph (:mod:`vision_lib.graph_cluster`): memory linear in the faces.
GRAPH_LIMIT = _DENSE_LIMIT
ALGORITHMS = ("auto", "exact", "graph")

#: How ``hybrid`` attaches what HDBSCAN's cores leave out. ``"local"`` (default): by the average
#: distance to a core's :data:`HYBRID_CORE_SIZE` nearest faces (the neighbourhood size HDBSCAN's
#: density is measured on; no new constant), only when one core is that near: noise faces, groups of
#: them, and the pieces average linkage cuts from a core; ``"mean"`` (before 2026-12-02): noise faces
#: by the average distance to all of a core's faces, nothing else.
ATTACH_RULES = ("local", "mean")

#: Whether the face-table path (:func:`cluster_folder`, :func:`cluster_table`, :func:`compare_presets`,
#: the benchmark) lets only confident faces (:func:`core_faces`) build the cores of ``hybrid``:
#: background and crowd faces, small and unsure, otherwise chain into cores that take in some
#: photos of several people (docs/clustering.md).
CONFIDENT_CORES = True


# --------------------------------------------------------------------------- estimator
class IdentityClustering(ClusterMixin, BaseEstimator):
    """Group face descriptors by identity; the number of people is found unless given.

    Args:
        method: one of :data:`~vision_lib.names.CLUSTER_METHODS`.
        threshold: distance under which faces are the same person (hybrid attachment and
            agglomerative average-linkage cut, Chinese Whispers edge length, DBSCAN ``eps``); default
            :data:`THRESHOLD_SHARES` of the descriptor's same-person distance.
        n_clusters: a fixed number of groups (agglomerative, kmeans; hybrid then works as
            agglomerative); ``None`` finds it.
        max_clusters: at most this many groups (closest groups merged); ``None`` for no cap.
        min_cluster_size: groups smaller than this are reported as unassigned (``-1``); also
            HDBSCAN's ``min_cluster_size`` and DBSCAN's ``min_samples``.
        outlier_distance: a face farther than this from *every* other face of its group is
            unassigned (``"auto"``: the descriptor's same-person distance; ``None`` keeps it). Density
            methods have no absolute scale and otherwise attach far-away faces to groups.
            K-Means, which by design assigns every face, is left as it is.
        random_state: seed for K-Means.
        descriptor: name of the descriptor of ``X`` (:data:`vision_lib.models.DESCRIPTORS`; None:
            the default); its same-person distance scales the default thresholds.
        algorithm: ``"exact"``, ``"graph"`` (:func:`vision_lib.graph_cluster.threshold_clusters`:
            average linkage at the threshold per component of a k-NN graph, the outlier rule and the
            minimum size as here, memory linear in faces; for ``hybrid`` and ``agglomerative`` without
            ``n_clusters``), or ``"auto"``: graph above :data:`GRAPH_LIMIT` faces.
        progress: progress bars for the graph algorithm.
        attach: ``hybrid`` only, :data:`ATTACH_RULES`: ``"local"`` (default) or ``"mean"`` (the
            rule before 2026-12-02).

    Attributes:
        labels_: group per face, ``-1`` = unassigned.
        n_clusters_: number of groups (unassigned excluded).
    """

    def __init__(self, method: str = "hybrid", threshold: float | None = None,
                 n_clusters: int | None = None, max_clusters: int | None = None,
                 min_cluster_size: int = 2, outlier_distance: float | str | None = "auto",
                 random_state: int | None = None, descriptor: str | None = None, algorithm: str = "auto",
                 progress: bool = False, attach: str = "local"):
        self.method = method
        self.threshold = threshold
        self.n_clusters = n_clusters
        self.max_clusters = max_clusters
        self.min_cluster_size = min_cluster_size
        self.outlier_distance = outlier_distance
        self.random_state = random_state
        self.descriptor = descriptor
        self.algorithm = algorithm
        self.progress = progress
        self.attach = attach

    def cut_distance(self) -> float:
        """The distance this clustering cuts at: ``threshold``, or the method's share
        (:data:`THRESHOLD_SHARES`) of the descriptor's same-person distance."""
        if self.threshold is not None:
            return float(self.threshold)
        return THRESHOLD_SHARES.get(self.method, 1.0) * same_person_distance(self.descriptor)

    def fit(self, X, y=None, core_mask=None) -> "IdentityClustering":
        """Cluster the rows of ``X`` (n, d). An empty ``X`` (0, d) gives no clusters rather than an
        error: a folder without faces is an answer, not a fault.

        ``core_mask`` (n,) bool, ``hybrid`` only (other methods ignore it): only these faces build
        HDBSCAN's cores; the others start as noise and join a core by the attach rule, or are grouped
        among themselves, or stay unassigned (:func:`core_faces`: the confident faces of a
        :class:`~vision_lib.tables.FaceTable`). ``None``: every face may build a core."""
        from sklearn.utils.validation import validate_data

        # scikit-learn's checks: 2-D, finite, real, dense (with clear messages); sets n_features_in_.
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=0)
        if core_mask is not None:
            core_mask = np.asarray(core_mask, dtype=bool)
            if core_mask.shape != (len(X),):
                raise ValueError(f"core_mask must have one entry per row of X ({len(X)}), not {core_mask.shape}")
        if self.method not in CLUSTER_METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(CLUSTER_METHODS)}")
        same = same_person_distance(self.descriptor)
        t = self.cut_distance()
        if self.attach not in ATTACH_RULES:
            raise ValueError(f"unknown attach {self.attach!r}; choose from {', '.join(ATTACH_RULES)}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; choose from {', '.join(ALGORITHMS)}")
        far = None if self.outlier_distance is None else (
            same if self.outlier_distance == "auto" else float(self.outlier_distance))
        n = len(X)
        graph = self._use_graph(n)
        if n == 0:
            labels = np.zeros(0, int)
        elif n == 1:
            labels = np.array([-1 if self.min_cluster_size > 1 else 0])
        elif graph:
            from .graph_cluster import threshold_clusters

            labels = threshold_clusters(X, t, progress=self.progress, cluster_piece=lambda Xp, rows: self._fit_exact(
                Xp, t, far, None if core_mask is None else core_mask[rows]))
        else:
            labels = self._fit_exact(X, t, far, core_mask)
        labels = _drop_small(labels, self.min_cluster_size if self.method != "kmeans" else 1)
        if self.max_clusters is not None:
            labels = _cap_clusters(X, labels, int(self.max_clusters))
        self.labels_ = _relabel_by_size(labels)
        self.n_clusters_ = int(self.labels_.max() + 1) if len(self.labels_) else 0
        return self

    def _fit_exact(self, X: np.ndarray, t: float, far: float | None, core_mask: np.ndarray | None = None
                   ) -> np.ndarray:
        """The method's raw labels on all of ``X``, then the outlier rule at ``far`` (the graph
        algorithm calls it on each piece)."""
        if len(X) < 2:
            return np.full(len(X), -1 if self.min_cluster_size > 1 else 0)
        labels = (self._fit_hybrid(X, t, core_mask) if self.method == "hybrid"
                  else getattr(self, f"_fit_{self.method}")(X, t))
        if far is not None and self.method != "kmeans":
            labels = _drop_far(X, labels, far)
        return labels

    def _use_graph(self, n: int) -> bool:
        able = self.method in ("hybrid", "agglomerative") and self.n_clusters is None
        if self.algorithm == "graph" and not able:
            raise ValueError("algorithm='graph' needs method 'hybrid' or 'agglomerative' without n_clusters")
        return self.algorithm == "graph" or (self.algorithm == "auto" and able and n > GRAPH_LIMIT)

    # one private method per algorithm; each returns raw labels (may contain -1)
    def _fit_hybrid(self, X: np.ndarray, t: float, core_mask: np.ndarray | None = None) -> np.ndarray:
        from sklearn.cluster import HDBSCAN

        if self.n_clusters is not None or len(X) < HYBRID_CORE_SIZE:
            return self._fit_agglomerative(X, t)
        # Cores from the faces allowed to build them; with fewer than one core's worth, no cores (all
        # faces are then grouped by average linkage, as for a collection too small for cores).
        build = np.ones(len(X), bool) if core_mask is None else core_mask
        labels = np.full(len(X), -1)
        if build.sum() >= HYBRID_CORE_SIZE:
            labels[build] = HDBSCAN(min_cluster_size=HYBRID_CORE_SIZE, copy=True).fit_predict(X[build])
        labels = self._split_cores(X, labels, t)
        cores = np.unique(labels[labels >= 0])
        if self.attach == "mean":
            return self._group_rest(X, _attach_noise(X, labels, t), t)
        labels = self._group_rest(X, _attach_local(X, labels, t, HYBRID_CORE_SIZE), t)
        # ...and a group of faces near no core joins one by the same local test
        groups, sizes = np.unique(labels[(labels >= 0) & ~np.isin(labels, cores)], return_counts=True)
        return _merge_local(X, labels, groups[sizes >= 2], cores, t, HYBRID_CORE_SIZE)

    def _group_rest(self, X: np.ndarray, labels: np.ndarray, t: float) -> np.ndarray:
        """Faces near no core (``-1``): grouped among themselves like the agglomerative method."""
        labels = labels.copy()
        rest = np.flatnonzero(labels < 0)
        if len(rest) > 1:
            labels[rest] = self._fit_agglomerative(X[rest], t) + labels.max() + 1
        return labels

    def _split_cores(self, X: np.ndarray, labels: np.ndarray, t: float) -> np.ndarray:
        """Split every HDBSCAN core that is not one person by the threshold's own rule (average
        linkage at ``t``): density alone can chain several people into one core when a collection
        is dense everywhere (e.g. many photos of a few people plus many strangers). With the local
        attach rule a piece then rejoins a piece of its core (:func:`_rejoin_pieces`)."""
        out = np.full(len(labels), -1)
        core = []  # the HDBSCAN core of each piece
        n = 0
        for c in np.unique(labels[labels >= 0]):
            idx = np.flatnonzero(labels == c)
            parts = self._fit_agglomerative(X[idx], t)
            out[idx] = parts + n
            n += parts.max() + 1
            core += [c] * (parts.max() + 1)
        if self.attach == "local":
            out = _rejoin_pieces(X, out, np.array(core), t, HYBRID_CORE_SIZE)
        return out

    def _fit_agglomerative(self, X: np.ndarray, t: float) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering

        k = None if self.n_clusters is None else min(int(self.n_clusters), len(X))
        connectivity = None
        if len(X) > _DENSE_LIMIT:
            from sklearn.neighbors import kneighbors_graph

            connectivity = kneighbors_graph(X, n_neighbors=min(30, len(X) - 1), include_self=False)
        model = AgglomerativeClustering(
            n_clusters=k, distance_threshold=None if k else t, linkage="average",
            connectivity=connectivity,
        )
        return model.fit_predict(X)

    def _fit_chinese_whispers(self, X: np.ndarray, t: float) -> np.ndarray:
        import dlib

        vecs = [dlib.vector(row.tolist()) for row in X]
        return np.asarray(dlib.chinese_whispers_clustering(vecs, t), dtype=int)

    def _fit_hdbscan(self, X: np.ndarray, t: float) -> np.ndarray:
        from sklearn.cluster import HDBSCAN

        size = max(2, int(self.min_cluster_size))
        return HDBSCAN(min_cluster_size=size, copy=True).fit_predict(X)

    def _fit_dbscan(self, X: np.ndarray, t: float) -> np.ndarray:
        from sklearn.cluster import DBSCAN

        return DBSCAN(eps=t, min_samples=max(2, int(self.min_cluster_size))).fit_predict(X)

    def _fit_kmeans(self, X: np.ndarray, t: float) -> np.ndarray:
        from sklearn.cluster import KMeans

        k = self.n_clusters
        if k is None:
            # K-Means cannot find k: borrow the number of groups the default method finds.
            k = max(1, IdentityClustering(threshold=self.threshold, min_cluster_size=self.min_cluster_size,
                                          descriptor=self.descriptor).fit(X).n_clusters_)
        k = min(int(k), len(X))
        return KMeans(n_clusters=k, n_init=3, random_state=self.random_state).fit_predict(X)


def _attach_noise(X: np.ndarray, labels: np.ndarray, distance: float) -> np.ndarray:
    """Give each unassigned face the group whose faces are on average nearest, if nearer than ``distance``.

    The same rule as average linkage (a face joins a group when it is on average as close to its
    faces as two photos of one person); groups are those given, not grown while attaching.
    """
    from sklearn.metrics import pairwise_distances

    labels = np.asarray(labels, dtype=int).copy()
    noise, ids = np.flatnonzero(labels < 0), np.unique(labels[labels >= 0])
    if len(noise) == 0 or len(ids) == 0:
        return labels
    mean = np.stack([pairwise_distances(X[noise], X[labels == c]).mean(axis=1) for c in ids], axis=1)
    best = mean.argmin(axis=1)
    near = mean[np.arange(len(noise)), best] < distance
    labels[noise[near]] = ids[best[near]]
    return labels


def _local_distance(A: np.ndarray, B: np.ndarray, k: int) -> np.ndarray:
    """Mean distance from each row of ``A`` to its ``k`` nearest rows of ``B`` (all of them when fewer)."""
    from sklearn.metrics import pairwise_distances

    return _nearest_rows(pairwise_distances(A, B), k)


def _nearest_rows(d: np.ndarray, k: int) -> np.ndarray:
    """Per row of a distance matrix, the mean of its ``k`` smallest entries (all when fewer)."""
    k = min(int(k), d.shape[1])
    return np.partition(d, k - 1, axis=1)[:, :k].mean(axis=1)


def _nearest_mean(d: np.ndarray, k: int) -> float:
    """The local test of a group from its distance matrix to a target: :func:`_nearest_rows` averaged."""
    return float(_nearest_rows(d, k).mean())


def _attach_local(X: np.ndarray, labels: np.ndarray, distance: float, k: int) -> np.ndarray:
    """Give each unassigned face the group whose ``k`` nearest faces are on average nearer than
    ``distance``, when that group is the only one so near; a face that near several groups is
    decided by :func:`_attach_noise` (the average over all their faces).

    A large group holds many poses: the average over all its faces is a test a profile face fails
    even next to the group's other profiles, its ``k`` nearest faces are the ones of its pose.
    Every face :func:`_attach_noise` attaches is attached here to the same group (its nearest
    faces are no farther than its average), so the rule only adds faces. Groups are those given.
    """
    labels = np.asarray(labels, dtype=int).copy()
    noise, ids = np.flatnonzero(labels < 0), np.unique(labels[labels >= 0])
    if len(noise) == 0 or len(ids) == 0:
        return labels
    local = np.stack([_local_distance(X[noise], X[labels == c], k) for c in ids], axis=1)
    near = local < distance
    one = near.sum(axis=1) == 1
    out = labels.copy()
    out[noise[one]] = ids[local[one].argmin(axis=1)]
    several = near.sum(axis=1) > 1
    if several.any():  # near two people's faces: only a clear overall preference decides
        out[noise[several]] = _attach_noise(X, labels, distance)[noise[several]]
    return out


def _merge_local(X: np.ndarray, labels: np.ndarray, groups: Sequence[int], targets: Sequence[int],
                 distance: float, k: int) -> np.ndarray:
    """Merge each of ``groups`` (in that order) into the one of ``targets`` whose ``k`` nearest
    faces, averaged over the group's faces, are nearer than ``distance``, when only one target is
    that near: the rule of :func:`_attach_local` for a group (as average linkage is the
    average-distance rule for a group). Targets are taken as they stand (with what joined them)
    and never merge with each other: a density valley between two cores may be two look-alikes."""
    labels = np.asarray(labels, dtype=int).copy()
    targets = list(targets)
    for g in groups:
        idx = np.flatnonzero(labels == g)
        if len(idx) == 0 or not targets:
            continue
        score = np.array([_local_distance(X[idx], X[labels == c], k).mean() for c in targets])
        if (score < distance).sum() == 1:
            labels[idx] = targets[int(score.argmin())]
    return labels


def _rejoin_pieces(X: np.ndarray, pieces: np.ndarray, core: np.ndarray, distance: float, k: int) -> np.ndarray:
    """Merge each piece of a split core into a larger piece of the same core when, by the local test
    of :func:`_merge_local`, that piece is the only one of *all* pieces (of every core) nearer than
    ``distance``.

    Average linkage cuts one person's poses apart as readily as two people chained by density: a
    pose piece has one near neighbour, its person; a piece of a crowd chained into one core lies
    near several pieces and stays apart (so do pieces equally near two people).
    """
    from sklearn.metrics import pairwise_distances

    ids = np.arange(len(core))
    if len(ids) < 2:
        return pieces
    rows = np.flatnonzero(pieces >= 0)
    rows = rows[np.argsort(pieces[rows], kind="stable")]  # faces ordered by piece
    sizes = np.bincount(pieces[rows], minlength=len(ids))
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    target = ids.copy()
    for p in ids:
        d = pairwise_distances(X[rows[starts[p]:starts[p] + sizes[p]]], X[rows])
        # a piece none of whose faces comes within the distance of q cannot pass the test for q
        reach = np.minimum.reduceat(d, starts, axis=1).min(axis=0) < distance
        reach[p] = False
        near = [q for q in np.flatnonzero(reach) if _nearest_mean(d[:, starts[q]:starts[q] + sizes[q]], k) < distance]
        if len(near) == 1 and core[near[0]] == core[p] and sizes[near[0]] > sizes[p]:
            target[p] = near[0]
    for p in ids:  # follow chains (pose -> half pose -> frontal); targets are larger, so they end
        while target[target[p]] != target[p]:
            target[p] = target[target[p]]
    out = pieces.copy()
    keep = pieces >= 0
    out[keep] = target[pieces[keep]]
    return out


def _drop_far(X: np.ndarray, labels: np.ndarray, distance: float) -> np.ndarray:
    """Unassign faces whose nearest fellow group member is farther than ``distance``."""
    from sklearn.metrics import pairwise_distances

    labels = np.asarray(labels, dtype=int).copy()
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        d = pairwise_distances(X[idx])
        np.fill_diagonal(d, np.inf)
        labels[idx[d.min(axis=1) > distance]] = -1
    return labels


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=int).copy()
    if min_size <= 1:
        return labels
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    small = ids[counts < min_size]
    labels[np.isin(labels, small)] = -1
    return labels


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber groups 0..k-1, largest first (ties by first appearance); -1 stays -1."""
    labels = np.asarray(labels, dtype=int)
    out = np.full(len(labels), -1, dtype=int)
    keep = labels >= 0
    if not keep.any():
        return out
    # Vectorised (a million faces in 100k groups): rank groups by size, then by first appearance.
    ids, first, inverse, sizes = np.unique(labels[keep], return_index=True, return_inverse=True, return_counts=True)
    rank = np.empty(len(ids), dtype=int)
    rank[np.lexsort((first, -sizes))] = np.arange(len(ids))
    out[keep] = rank[inverse]
    return out


def _cap_clusters(X: np.ndarray, labels: np.ndarray, cap: int) -> np.ndarray:
    """Merge the closest groups (average linkage of unit centroids) until at most ``cap`` remain."""
    ids = np.unique(labels[labels >= 0])
    if cap < 1:
        raise ValueError("max_clusters must be at least 1")
    if len(ids) <= cap:
        return labels
    from sklearn.cluster import AgglomerativeClustering

    centroids = np.stack([X[labels == i].mean(axis=0) for i in ids])
    merged = AgglomerativeClustering(n_clusters=cap, linkage="average").fit_predict(centroids)
    mapping = dict(zip(ids.tolist(), merged.tolist()))
    return np.array([mapping.get(int(v), -1) if v >= 0 else -1 for v in labels], dtype=int)


def cluster_faces(descriptors: np.ndarray, method: str = "hybrid", **params) -> np.ndarray:
    """Labels (``-1`` = unassigned) for face descriptors; ``params`` go to :class:`IdentityClustering`."""
    return IdentityClustering(method=method, **params).fit(descriptors).labels_


# --------------------------------------------------------------------------- metrics
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


# --------------------------------------------------------------------------- faces of a folder
#: The faces of a folder: :class:`vision_lib.tables.FaceTable` (the older name).
FaceSet = FaceTable


def face_set(root: str | os.PathLike, *, labelled: bool | None = None, paths: Iterable | None = None,
             n_jobs: int | None = None, progress: bool = True, detector: str | None = None,
             descriptor: str | None = None) -> FaceTable:
    """Detect and describe every face under ``root`` (or only ``paths``, e.g. a :meth:`PhotoSet.limit`
    subset): :func:`vision_lib.tables.face_table` under its older name and arguments."""
    return face_table(root if paths is None else list(paths), root=root, labelled=labelled, n_jobs=n_jobs,
                      progress=progress, detector=detector, descriptor=descriptor)


def core_faces(faces: FaceTable) -> np.ndarray:
    """The faces of ``faces`` confident enough to build the cores of ``hybrid`` (``core_mask`` of
    :meth:`IdentityClustering.fit`): detector score at least the detector's own ``confident_score``
    (as :func:`vision_lib.average.select_for_average` uses it) and shorter box side at least
    :data:`vision_lib.faces.rating.MIN_SIZE`. An unknown score (NaN: a table written before scores
    were kept), or a detector not in the registry, does not count against a face."""
    from .faces.rating import MIN_SIZE
    from .models import DETECTORS, get_detector

    detector = faces.settings.get("detector")
    floor = get_detector(detector).confident_score if detector in DETECTORS else -np.inf
    sure = np.isnan(faces.scores) | (faces.scores >= floor)
    return sure & (np.minimum(faces.boxes[:, 2], faces.boxes[:, 3]) >= MIN_SIZE)


def cluster_table_faces(model: IdentityClustering, faces: FaceTable, confident_cores: bool = CONFIDENT_CORES, *,
                        cores: np.ndarray | None = None) -> np.ndarray:
    """``model``'s labels for the descriptors of ``faces``; with ``confident_cores`` only
    :func:`core_faces` build the cores (``hybrid``; other methods are unaffected). ``cores``: that
    mask when the caller has it already (computed here when None; unused without ``confident_cores``)."""
    if not len(faces):
        return np.zeros(0, int)
    mask = (core_faces(faces) if cores is None else cores) if confident_cores else None
    return model.fit_predict(faces.descriptors, core_mask=mask)


# --------------------------------------------------------------------------- export
def group_folder(cluster: int) -> str:
    """``cluster_NN`` for a group, ``unassigned`` for -1."""
    return "unassigned" if cluster < 0 else f"cluster_{cluster:02d}"


def export_clusters(faces: FaceTable, labels: Sequence[int], out_dir: str | os.PathLike, *,
                    metrics: dict | None = None, link: bool = False) -> Path:
    """Write ``cluster_NN/`` + ``unassigned/`` photo copies, ``clusters.csv`` and ``metrics.json``.

    ``clusters.csv`` has one row per face: ``source,face_index,cluster`` (cluster ``-1`` =
    unassigned). A photo whose faces fall in several groups is copied into each of them. Photos
    without a usable face, and the other files of the input folder, are listed in ``rejected.csv``
    (``source,reason``). ``out_dir`` must be new or empty; it is
    locked while written, and filled all at once (an interrupt leaves it as it was).
    """
    with locked_output(out_dir, faces.root) as out:
        _write_export(faces, labels, out, metrics=metrics, link=link)
    return out


def _write_export(faces: FaceTable, labels: Sequence[int], out: Path, *, metrics: dict | None, link: bool) -> None:
    from .faces.export import write_face_crops
    from .io import staged_folder

    labels = np.asarray(labels, dtype=int)
    # Assembled in a hidden folder and moved into place: an interrupt leaves the output folder as it
    # was (a re-run can use it).
    with staged_folder(out) as tmp:
        with open(tmp / "clusters.csv", "w", **CSV_TEXT) as f:
            w = csv.writer(f)
            w.writerow(["source", "face_index", "cluster"])
            for s, j, c in zip(faces.sources, faces.face_index, labels):
                w.writerow([s, int(j), int(c)])
        if faces.not_used:  # photos without a usable face and the other files of the folder
            with open(tmp / "rejected.csv", "w", **CSV_TEXT) as f:
                w = csv.writer(f)
                w.writerow(["source", "reason"])
                w.writerows([r.source, r.reason] for r in faces.not_used)
        copy_grouped(((p, tmp / group_folder(c) / flat_name(s))
                      for p, s, c in zip(faces.paths, faces.sources, labels)), link=link)
        write_face_crops((p, b, tmp / group_folder(c) / "faces" / f"{Path(flat_name(s)).stem}_face{j}.jpg")
                         for p, s, c, b, j in zip(faces.paths, faces.sources, labels, faces.boxes, faces.face_index))
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2) + "\n")


# --------------------------------------------------------------------------- one call for the CLI
def cluster_folder(in_dir: str | os.PathLike, out_dir: str | os.PathLike, *, method: str = "hybrid",
                   k: int | None = None, max_clusters: int | None = None, threshold: float | None = None,
                   link: bool = False, n_jobs: int | None = None, progress: bool = True,
                   detector: str | None = None, descriptor: str | None = None) -> dict:
    """Detect, describe, cluster and export a folder; returns the metrics written to ``metrics.json``.

    With labelled sub-folders the external metrics are added, scored per photo on its subject
    face (photos without a face, or unassigned, count as singletons).
    """
    with locked_output(out_dir, in_dir) as out:  # checked and locked before the slow part
        return _cluster_folder(in_dir, out, method=method, k=k, max_clusters=max_clusters,
                               threshold=threshold, link=link, n_jobs=n_jobs, progress=progress,
                               detector=detector, descriptor=descriptor)


def _cluster_folder(in_dir, out: Path, *, method, k, max_clusters, threshold, link, n_jobs, progress,
                    detector=None, descriptor=None) -> dict:
    faces = face_set(in_dir, n_jobs=n_jobs, progress=progress, detector=detector, descriptor=descriptor)
    return _cluster_export(faces, out, {"root": str(Path(in_dir).resolve())}, method=method, k=k,
                           max_clusters=max_clusters, threshold=threshold, link=link, progress=progress)


def _cluster_export(faces: FaceTable, out: Path, where: dict, *, method, k, max_clusters, threshold, link,
                    progress) -> dict:
    start = time.perf_counter()
    model = IdentityClustering(method=method, n_clusters=k, max_clusters=max_clusters, threshold=threshold,
                               random_state=0, descriptor=faces.descriptor, progress=progress)
    cores = core_faces(faces) if len(faces) else np.zeros(0, bool)  # once: for the model and the metrics
    labels = cluster_table_faces(model, faces, cores=cores)
    seconds = time.perf_counter() - start
    metrics = {
        **where, "method": method, "params": {k_: v for k_, v in model.get_params().items()},
        "confident_cores": CONFIDENT_CORES, "core_faces": int(cores.sum()),
        "photos": len(faces.photos), "faces": len(faces), "photos_rejected": len(faces.rejected),
        "files_skipped": len(faces.skipped),
        "cluster_seconds": seconds, "internal": internal_metrics(faces.descriptors, labels),
    }
    if faces.photo_labels is not None and faces.photos:
        metrics["external"] = external_metrics(faces.photo_labels, faces.photo_clusters(labels))
        metrics["external"]["scored_on"] = "photos (subject face); no face or unassigned = singleton"
    # Not export_clusters: the folder was found empty under this lock; a file a file manager drops
    # in meanwhile (.DS_Store) must not throw the run away, and a clash of names is refused anyway.
    _write_export(faces, labels, out, metrics=metrics, link=link)
    return metrics


def load_descriptor_table(path: str | os.PathLike):
    """The :class:`~vision_lib.tables.FaceTable` of face descriptors at ``path`` (written by
    ``vision-lib features IN --kind descriptor``); see :func:`vision_lib.tables.load_descriptor_table`."""
    from .tables import load_descriptor_table as load

    return load(path, "clustering by identity")


def table_threshold(settings: dict) -> float | None:
    """The same-person distance a descriptor table records (``threshold``, or its descriptor's), if any."""
    for value in (settings.get("threshold"), (settings.get("descriptor") or {}).get("threshold")
                  if isinstance(settings.get("descriptor"), dict) else None):
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def table_faces(table: FaceTable) -> FaceTable:
    """The table itself, ready to cluster without photo files (``paths`` empty): a descriptor table
    is already the faces of its folder. Tables written before the ``subject`` column existed take
    each photo's largest face (``face_index`` 0) as its subject; one is labelled (``photo_labels``)
    when every photo lies in a sub-folder."""
    import dataclasses

    photos = table.photos
    labelled = table.photo_labels is not None or (bool(photos) and all("/" in p for p in photos))
    return dataclasses.replace(table, root=None, photo_labels=table.photo_labels or (
        [p.split("/")[0] for p in photos] if labelled else None))


def cluster_table(table_path: str | os.PathLike, out_dir: str | os.PathLike, *, method: str = "hybrid",
                  k: int | None = None, max_clusters: int | None = None, threshold: float | None = None,
                  progress: bool = True) -> dict:
    """Cluster the faces of a descriptor table and write ``clusters.csv`` and ``metrics.json`` (and
    ``rejected.csv``) as :func:`cluster_folder` does, without photo copies.

    ``threshold`` ``None`` takes the same-person distance the table records (:func:`table_threshold`),
    else the method's default. ``metrics.json`` keeps the photo folder the table was made from as
    ``root`` (so ``vision-lib average`` finds the photos) and the table as ``table``.
    """
    table = load_descriptor_table(table_path)
    if threshold is None:
        threshold = table_threshold(table.settings)
    where = {"table": str(Path(table_path).resolve())}
    if table.settings.get("root"):
        where["root"] = table.settings["root"]
    with locked_output(out_dir) as out:
        return _cluster_export(table_faces(table), out, where, method=method, k=k, max_clusters=max_clusters,
                               threshold=threshold, link=False, progress=progress)


# --------------------------------------------------------------------------- comparisons (notebook, benchmark)
#: Named settings compared in notebook 04 and the benchmark (``k="true"``: the known number of people).
#: Cuts are shares of the descriptor's same-person distance (``threshold_share``; none given: the
#: method's :data:`THRESHOLD_SHARES`), so a preset means the same for any descriptor; each row of
#: :func:`compare_presets` says the distance it used (``distance``).
METHOD_PRESETS: dict[str, dict] = {
    "hybrid (default)": {"method": "hybrid"},
    "hybrid, attach by mean (before 2026-12-02)": {"method": "hybrid", "attach": "mean"},
    "hybrid, cores from every face (before 2026-12-02)": {"method": "hybrid", "confident_cores": False},
    "agglomerative": {"method": "agglomerative"},
    "agglomerative, 5/6 cut": {"method": "agglomerative", "threshold_share": 5 / 6},
    "chinese whispers, 5/6 cut": {"method": "chinese_whispers", "threshold_share": 5 / 6},
    "hdbscan min 3": {"method": "hdbscan", "min_cluster_size": 3},
    "dbscan, 5/6 radius, min 3": {"method": "dbscan", "threshold_share": 5 / 6, "min_cluster_size": 3},
    "kmeans k auto": {"method": "kmeans", "random_state": 0},
    "kmeans true k": {"method": "kmeans", "n_clusters": "true", "random_state": 0},
}
#: Methods without a distance cut (density alone, or a number of groups).
_NO_DISTANCE = ("hdbscan", "kmeans")


def compare_presets(faces: FaceTable, presets: dict[str, dict] | None = None) -> list[dict]:
    """Cluster ``faces`` with each preset; one row of timing, internal and external metrics each.

    External metrics are per photo (its subject face) and need a labelled table.
    """
    presets = METHOD_PRESETS if presets is None else presets
    rows = []
    n_true = len(set(faces.photo_labels)) if faces.photo_labels is not None else None
    mask = core_faces(faces) if len(faces) else None  # the same for every preset
    for name, params in presets.items():
        params = dict(params)
        if params.get("n_clusters") == "true":
            params["n_clusters"] = n_true
        if "threshold_share" in params:
            params["threshold"] = params.pop("threshold_share") * same_person_distance(faces.descriptor)
        confident = params.pop("confident_cores", CONFIDENT_CORES)
        model = IdentityClustering(**{"descriptor": faces.descriptor, **params})
        start = time.perf_counter()
        labels = cluster_table_faces(model, faces, confident, cores=mask)
        row = {"name": name, "seconds": time.perf_counter() - start, "labels": labels,
               "distance": None if model.method in _NO_DISTANCE else model.cut_distance()}
        inner = internal_metrics(faces.descriptors, labels)
        row.update({k: inner[k] for k in ("silhouette", "davies_bouldin", "calinski_harabasz")})
        if faces.photo_labels is not None:
            row.update(external_metrics(faces.photo_labels, faces.photo_clusters(labels)))
        rows.append(row)
    return rows


#: The older name of :func:`compare_presets` (notebook 04).
compare_methods = compare_presets


def format_rows(rows: Sequence[dict], columns: Sequence[str], digits: int = 3) -> str:
    """A plain-text table of ``rows`` (dicts) with the given columns."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return "-" if v is None else str(v)

    table = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in table]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


def gallery_groups(faces: FaceTable, labels: np.ndarray, n_clusters: int = 6, per_group: int = 8
                   ) -> tuple[dict[str, list[np.ndarray]], dict[str, list[str]]]:
    """Thumbnails of the first ``n_clusters`` clusters and of the unassigned faces, up to ``per_group``
    each, named ``cluster_NN (size)``, and a title per thumbnail: the photo's folder for a subject face,
    "other face" for a bystander (the folder name says nothing about who that is). Feed both to
    :func:`vision_lib.plotting.cluster_galleries`."""
    labels = np.asarray(labels)
    groups, titles = {}, {}
    for c in list(range(min(n_clusters, int(labels.max()) + 1))) + [-1]:
        idx = np.flatnonzero(labels == c)[:per_group]
        if len(idx):
            name = f"{group_folder(c)} ({int((labels == c).sum())})"
            groups[name] = face_thumbnails(faces, idx)
            titles[name] = [faces.labels[i][:12] if faces.labelled and faces.subject[i] else "other face" for i in idx]
    return groups, titles


def face_thumbnails(faces: FaceTable, index: Iterable[int], size: int = 72, margin: float = 0.3) -> list[np.ndarray]:
    """Square crops (with ``margin``) of the given faces of a :class:`~vision_lib.tables.FaceTable`, for galleries."""
    import cv2

    from .faces import Face, crop
    from .io import load_image

    out = []
    for i in index:
        image = load_image(faces.paths[i])
        patch = crop(image, Face(tuple(int(v) for v in faces.boxes[i]), 1.0), margin)
        out.append(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return out


#: The public names of this module.
__all__ = ["CLUSTER_METHODS", "THRESHOLD_SHARES", "DEFAULT_THRESHOLDS", "HYBRID_CORE_SIZE", "GRAPH_LIMIT",
           "ALGORITHMS", "ATTACH_RULES", "IdentityClustering", "cluster_faces", "INTERNAL_SAMPLE", "internal_metrics",
           "singletons_for_noise", "external_metrics", "FaceTable", "FaceSet", "subject_face", "face_set", "group_folder",
           "export_clusters", "cluster_folder", "load_descriptor_table", "table_threshold", "table_faces",
           "cluster_table", "METHOD_PRESETS", "compare_presets", "compare_methods", "format_rows", "gallery_groups",
           "face_thumbnails"]
