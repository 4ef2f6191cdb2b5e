"""The identity clustering estimator, :class:`IdentityClustering`, and its private helpers (the
method table and the attach rules are described in :mod:`vision_lib.cluster`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from ..models import same_person_distance
from ..names import CLUSTER_METHODS


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

#: HDBSCAN's ``min_samples`` for the cores of ``hybrid`` (``core_min_samples``): ``None``,
#: scikit-learn's default (the minimum size, 5: a face's density is measured on its 4 nearest faces).
#: 1 (no smoothing: single linkage of the faces, cut by HDBSCAN's stability) keeps a look-alike with a
#: few more than 5 photos out of another person's core, so a small collection's first build is purer
#: (LFW's first half: 0.967 -> 0.994), but it cuts a set of one person's photos into pose cores that
#: never merge (LFW's 8 largest people alone: 0.71 against 1.0) and the graph algorithm's pieces
#: likewise: not the default (docs/clustering.md, "Small collections"). The exact algorithm only: the
#: graph algorithm's pieces always keep the default. What the default does instead: ``split_lookalikes``.
HYBRID_MIN_SAMPLES = None

#: Above this many faces, ``hybrid`` and ``agglomerative`` (with ``algorithm="auto"``) work on a
#: k-nearest-neighbour graph (:mod:`vision_lib.graph_cluster`): memory linear in the faces.
GRAPH_LIMIT = _DENSE_LIMIT
ALGORITHMS = ("auto", "exact", "graph")

#: How ``hybrid`` attaches what HDBSCAN's cores leave out. ``"local"`` (default): by the average
#: distance to a core's :data:`HYBRID_CORE_SIZE` nearest faces (the smallest group HDBSCAN makes a
#: core; no new constant), only when one core is that near: noise faces, groups of
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
        core_min_samples: ``hybrid`` with the exact algorithm, HDBSCAN's ``min_samples`` for the
            cores (default :data:`HYBRID_MIN_SAMPLES`: ``None``, scikit-learn's default, the core
            size 5; 1: no density smoothing). The graph algorithm's pieces keep the default.
        split_lookalikes: ``hybrid`` with the exact algorithm and smoothed cores (default
            ``True``): each core of the clustering without smoothing that would not join any
            smoothed core as a collection's add lets a new group join a person (the open-set limit
            for groups, calibrated on the cores) is made a core of its own (:func:`_part_lookalikes`):
            a look-alike with a few photos apart, one person's poses together. ``False``: the rule
            before 2026-12-07. The graph algorithm's pieces are not checked.

    Attributes:
        labels_: group per face, ``-1`` = unassigned.
        n_clusters_: number of groups (unassigned excluded).
    """

    def __init__(self, method: str = "hybrid", threshold: float | None = None,
                 n_clusters: int | None = None, max_clusters: int | None = None,
                 min_cluster_size: int = 2, outlier_distance: float | str | None = "auto",
                 random_state: int | None = None, descriptor: str | None = None, algorithm: str = "auto",
                 progress: bool = False, attach: str = "local", core_min_samples: int | None = HYBRID_MIN_SAMPLES,
                 split_lookalikes: bool = True):
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
        self.core_min_samples = core_min_samples
        self.split_lookalikes = split_lookalikes

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
            from ..graph_cluster import threshold_clusters

            # A piece is a component of a few people, where HDBSCAN must find two clusters or more:
            # without smoothing it cuts one person's poses into cores that never merge (rotated LFW
            # copies, 10k faces: BCubed F 0.9835 against 0.9954), so pieces keep the smoothing.
            labels = threshold_clusters(X, t, progress=self.progress, cluster_piece=lambda Xp, rows: self._fit_exact(
                Xp, t, far, None if core_mask is None else core_mask[rows], smooth=True))
        else:
            labels = self._fit_exact(X, t, far, core_mask)
        labels = _drop_small(labels, self.min_cluster_size if self.method != "kmeans" else 1)
        if self.max_clusters is not None:
            labels = _cap_clusters(X, labels, int(self.max_clusters))
        self.labels_ = _relabel_by_size(labels)
        self.n_clusters_ = int(self.labels_.max() + 1) if len(self.labels_) else 0
        return self

    def _fit_exact(self, X: np.ndarray, t: float, far: float | None, core_mask: np.ndarray | None = None,
                   smooth: bool = False) -> np.ndarray:
        """The method's raw labels on all of ``X``, then the outlier rule at ``far`` (the graph
        algorithm calls it on each piece, with ``smooth``: HDBSCAN's default ``min_samples``)."""
        if len(X) < 2:
            return np.full(len(X), -1 if self.min_cluster_size > 1 else 0)
        if self.method == "hybrid":
            labels = self._fit_hybrid(X, t, core_mask, None if smooth else self.core_min_samples,
                                      lookalikes=self.split_lookalikes and not smooth)
        else:
            labels = getattr(self, f"_fit_{self.method}")(X, t)
        if far is not None and self.method != "kmeans":
            labels = _drop_far(X, labels, far)
        return labels

    def _use_graph(self, n: int) -> bool:
        able = self.method in ("hybrid", "agglomerative") and self.n_clusters is None
        if self.algorithm == "graph" and not able:
            raise ValueError("algorithm='graph' needs method 'hybrid' or 'agglomerative' without n_clusters")
        return self.algorithm == "graph" or (self.algorithm == "auto" and able and n > GRAPH_LIMIT)

    # one private method per algorithm; each returns raw labels (may contain -1)
    def _fit_hybrid(self, X: np.ndarray, t: float, core_mask: np.ndarray | None = None,
                    min_samples: int | None = None, lookalikes: bool = False) -> np.ndarray:
        from sklearn.cluster import HDBSCAN

        if self.n_clusters is not None or len(X) < HYBRID_CORE_SIZE:
            return self._fit_agglomerative(X, t)
        # Cores from the faces allowed to build them; with fewer than one core's worth, no cores (all
        # faces are then grouped by average linkage, as for a collection too small for cores).
        build = np.ones(len(X), bool) if core_mask is None else core_mask
        labels = np.full(len(X), -1)
        if build.sum() >= HYBRID_CORE_SIZE:
            labels[build] = HDBSCAN(min_cluster_size=HYBRID_CORE_SIZE, min_samples=min_samples,
                                    copy=True).fit_predict(X[build])
            if lookalikes and min_samples is None:
                labels[build] = _part_lookalikes(X[build], labels[build], HYBRID_CORE_SIZE,
                                                 0 if self.random_state is None else self.random_state)
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


def _part_lookalikes(X: np.ndarray, cores: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``cores`` (HDBSCAN's, with its density smoothing) with every core of the clustering without
    smoothing (``min_samples=1``) made a core of its own when it is no one those cores found: when
    its faces would not join any of them (without its own faces) as a collection's add lets a new
    group join a person. The test is the add's (``collection.assign.group_new``): the group's faces'
    mean distance to the core's ``k`` nearest faces, averaged over the group, under the open-set
    limit for a group of its size at :data:`~vision_lib.names.DEFAULT_FAR`
    (:func:`vision_lib.openset.group_thresholds`), calibrated here on the smoothed cores themselves
    (up to 50 of them, 20 faces each, seeded by ``seed``; each other core a stranger, as a
    collection calibrates on its people).

    Why: the smoothing measures a face's density on its ``k - 1`` nearest faces, so a look-alike
    with a few more than ``k`` photos has the density of the pair and stays in the other's core
    (or, with about ``k``, dissolves into noise and is attached to several people), while without
    it one person's poses are cores that never merge. Each is kept where the evidence says so: a
    piece of one person passes the test with the rest of its person; a look-alike does not. With
    fewer than two smoothed cores there are no strangers to calibrate on: ``cores`` as given. A
    core left with fewer than ``k`` faces gives them to the attach rules (noise)."""
    from sklearn.cluster import HDBSCAN
    from sklearn.metrics import pairwise_distances

    from ..names import DEFAULT_FAR
    from ..openset import group_thresholds

    ids = np.unique(cores[cores >= 0])
    if len(ids) < 2:
        return cores
    bare = HDBSCAN(min_cluster_size=k, min_samples=1, copy=True).fit_predict(X)
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(cores == c))[:20] for c in
                           np.sort(rng.choice(ids, min(len(ids), 50), replace=False))])
    limits = None
    # the core faces ordered by core, for one distance matrix per group of the bare clustering
    rows = np.flatnonzero(cores >= 0)
    rows = rows[np.argsort(cores[rows], kind="stable")]
    starts = np.searchsorted(cores[rows], ids)
    out = cores.copy()
    fresh = int(cores.max()) + 1
    for b in np.unique(bare[bare >= 0]):
        mine = bare == b
        held = np.unique(cores[mine])
        if len(held) == 1 and held[0] >= 0 and (cores == held[0]).sum() == mine.sum():
            continue  # the same core both ways
        if limits is None:
            limits = group_thresholds(X[pick], cores[pick], k, DEFAULT_FAR)
        limit = limits[min(int(mine.sum()), k) - 1]
        d = pairwise_distances(X[mine], X[rows])
        d[:, mine[rows]] = np.inf  # a core without the group's own faces
        # a core none of whose faces is under the limit from the group cannot pass the test
        reach = np.minimum.reduceat(d.min(axis=0), starts) < limit
        ends = np.r_[starts[1:], len(rows)]
        joins = any(_nearest_mean(d[:, s:e][:, np.isfinite(d[0, s:e])], k) < limit
                    for s, e in zip(starts[reach], ends[reach]))
        if not joins:
            out[mine] = fresh
            fresh += 1
    left, sizes = np.unique(out[np.isin(out, ids)], return_counts=True)
    out[np.isin(out, left[sizes < k])] = -1
    return out


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



__all__ = ["CLUSTER_METHODS", "THRESHOLD_SHARES", "DEFAULT_THRESHOLDS", "HYBRID_CORE_SIZE", "HYBRID_MIN_SAMPLES",
           "GRAPH_LIMIT",
           "ALGORITHMS", "ATTACH_RULES", "CONFIDENT_CORES", "IdentityClustering", "cluster_faces"]
