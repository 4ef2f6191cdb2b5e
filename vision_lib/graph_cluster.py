"""Identity clustering that scales: a k-nearest-neighbour graph, then exact work on small pieces.

:class:`~vision_lib.cluster.IdentityClustering` switches to this above
:data:`~vision_lib.cluster.GRAPH_LIMIT` faces (``algorithm="auto"``). The meaning is that of the
default method's threshold rule: two faces are the same person when they are closer than the
same-person ``threshold`` (given by the caller: it belongs to the descriptor), a group's faces are
on average closer than it (average linkage), a face with no fellow group member within
``outlier_distance`` is unassigned, and so is every face of a group smaller than the minimum size.

1. :func:`knn_graph`: the ``k`` nearest neighbours of every face with FAISS (IVF index; chosen by
   measurement against FAISS HNSW, hnswlib and pynndescent, see docs/scale.md). Memory ``n * k``.
2. :func:`same_person_components`: connected components of the graph's edges shorter than the
   threshold. Average linkage at the threshold never merges two faces that no chain of such edges
   joins (a merge needs some pair closer than the threshold), so every group of the exact method
   lies inside one component (up to the neighbours the graph keeps).
3. Each component is clustered exactly (the caller's exact method, by default average linkage cut
   at the threshold, then the outlier rule), in memory quadratic only in the component's size. A
   component larger than ``max_exact`` (people chained through look-alikes) is split again on
   shorter edges (:func:`_pieces`) until its pieces are small enough.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

#: Neighbours per face in the graph. Enough for a person's faces to stay connected through
#: their close neighbours; more only adds cross-person edges that step 3 cuts again.
DEFAULT_K = 16

#: Components up to this size are clustered with exact (dense) average linkage: the pairwise
#: distances of 3000 faces take 36 MB.
MAX_EXACT = 3000


def knn_graph(X: np.ndarray, k: int = DEFAULT_K, *, n_jobs: int | None = None, progress: bool = False,
              nprobe: int = 16, batch: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``k`` nearest neighbours (self excluded) of every row of ``X``, with FAISS' IVF index.

    FAISS IVF-Flat (``4 sqrt(n)`` lists trained on a seeded sample, ``nprobe`` lists searched) was the
    fastest of FAISS HNSW/IVF, hnswlib and pynndescent at 100k and kept the best recall at 1M of the
    fast ones (docs/scale.md). Memory: the vectors once plus ``n * k``.

    Returns ``(distances, indices)``, both ``(n, k)``: Euclidean distances (float32, ascending) and
    row numbers (int64, ``-1`` where fewer than ``k`` were found).
    """
    import faiss
    from .progress import tqdm

    from .config import n_jobs as _n_jobs

    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    k = min(int(k), max(n - 1, 0))
    if k == 0:
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    faiss.omp_set_num_threads(_n_jobs(n_jobs))
    lists = max(1, min(int(4 * np.sqrt(n)), n // 39))  # FAISS wants >= 39 training points per list
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, lists)
    sample = np.random.default_rng(seed).choice(n, min(n, 40 * lists), replace=False)
    index.train(X[np.sort(sample)])
    index.nprobe = min(nprobe, lists)
    with tqdm(total=2 * n, desc="k-NN graph (build, search)", unit="face", disable=not progress) as bar:
        for start in range(0, n, batch):
            index.add(X[start:start + batch])
            bar.update(len(X[start:start + batch]))
        dist = np.empty((n, k), np.float32)
        idx = np.empty((n, k), np.int64)
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            D, I = index.search(X[start:stop], k + 1)
            dist[start:stop], idx[start:stop] = _drop_self(D, I, np.arange(start, stop), k)
            bar.update(stop - start)
    np.sqrt(np.maximum(dist, 0, out=dist), out=dist)  # FAISS gives squared L2
    dist[idx < 0] = np.inf
    return dist, idx


def _drop_self(D: np.ndarray, I: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` neighbours of each row other than the row itself (and exact duplicates' order kept)."""
    not_self = I != rows[:, None]
    # Rows where self was not returned (an approximate search can miss it) keep their first k.
    order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)


def same_person_components(dist: np.ndarray, idx: np.ndarray, threshold: float) -> np.ndarray:
    """Component number of every face in the graph of the edges shorter than ``threshold``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, k = idx.shape
    keep = (dist < threshold) & (idx >= 0)
    rows = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None], (n, k))[keep]
    cols = idx[keep].astype(np.int32)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=True, connection="weak")[1]


def threshold_clusters(X: np.ndarray, threshold: float, *, outlier_distance: float | None = None,
                       k: int = DEFAULT_K, max_exact: int = MAX_EXACT, n_jobs: int | None = None,
                       progress: bool = False, graph: tuple[np.ndarray, np.ndarray] | None = None,
                       cluster_piece: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Labels (``-1`` = unassigned) of average linkage cut at ``threshold``, computed per component
    of the k-NN graph (see the module docstring); memory linear in the number of faces.

    A face with no fellow member within ``outlier_distance`` (``None``: no such rule) and a face
    alone in its group are unassigned. ``graph`` = ``(distances, indices)`` reuses a k-NN graph.
    ``cluster_piece(X_piece, rows) -> labels`` (``-1`` = unassigned; ``rows``: the piece's rows of
    ``X``) replaces the average linkage on each piece: :class:`~vision_lib.cluster.IdentityClustering` passes its exact method, so the graph
    algorithm means the same as the exact one, piece by piece.
    """
    from .progress import tqdm

    X = np.asarray(X)
    n = len(X)
    labels = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return labels
    dist, idx = graph if graph is not None else knn_graph(X, k, n_jobs=n_jobs, progress=progress)
    pieces = _pieces(np.arange(n), dist, idx, threshold, max_exact)
    next_label = 0
    with tqdm(total=sum(len(p) for p in pieces), desc="clusters (per component)", unit="face",
              disable=not progress) as bar:
        for members in pieces:
            part = (_exact_part(X[members], threshold, outlier_distance) if cluster_piece is None
                    else np.asarray(cluster_piece(X[members], members), dtype=np.int64))
            assigned = part >= 0
            labels[members[assigned]] = part[assigned] + next_label
            if assigned.any():
                next_label += int(part.max()) + 1
            bar.update(len(members))
    return labels


def _pieces(members: np.ndarray, dist: np.ndarray, idx: np.ndarray, edge: float, max_exact: int,
            shrink: float = 0.95) -> list[np.ndarray]:
    """The components (of two or more faces) of ``members`` in the graph of edges shorter than ``edge``;
    a component larger than ``max_exact`` is split again with edges ``shrink`` times shorter.

    Why: at the same-person distance, look-alikes chain many people into one component; the tighter
    edges cut those chains between people first (a person's own faces are closer together), so the
    pieces are clustered exactly. A person split across two pieces at this step stays split.
    """
    local = np.full(len(idx), -1, dtype=np.int64)
    local[members] = np.arange(len(members))
    nb = np.where(idx[members] >= 0, local[np.maximum(idx[members], 0)], -1)
    comp = same_person_components(np.where(nb >= 0, dist[members], np.inf), nb, edge)
    order = np.argsort(comp, kind="stable")
    out: list[np.ndarray] = []
    for piece in np.split(order, np.flatnonzero(np.diff(comp[order])) + 1):
        if len(piece) < 2:
            continue  # alone in its component: unassigned
        if len(piece) <= max_exact:
            out.append(members[piece])
        else:
            out += _pieces(members[piece], dist, idx, edge * shrink, max_exact, shrink)
    return out


def _exact_part(Xc: np.ndarray, threshold: float, outlier: float | None) -> np.ndarray:
    """Average linkage at ``threshold`` on one component, then the outlier rule; 0.. or -1."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform

    d = pdist(Xc)
    # fcluster keeps merges at or below the cut; scikit-learn's distance_threshold (the exact method)
    # merges strictly below it. The largest float below the threshold makes them agree.
    part = fcluster(linkage(d, "average"), np.nextafter(threshold, -np.inf), "distance") - 1
    return _outliers_unassigned(squareform(d), part, outlier)


def _outliers_unassigned(D: np.ndarray, part: np.ndarray, outlier: float | None) -> np.ndarray:
    """``part`` with -1 for faces whose nearest fellow member is farther than ``outlier`` (and for
    faces alone in their group)."""
    part = np.asarray(part, dtype=np.int64).copy()
    D = np.where(part[:, None] == part[None, :], D, np.inf)
    np.fill_diagonal(D, np.inf)
    nearest = D.min(axis=1)
    part[nearest == np.inf] = -1
    if outlier is not None:
        part[nearest > outlier] = -1
    return part


def rotated_copies(X: np.ndarray, labels, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` identity-structured descriptors made from real ones: copies of the whole set ``X``, each
    turned by its own random orthogonal rotation about the set's mean (the within- and between-person
    geometry of real faces, new people in every copy); the first copy is ``X`` itself.

    Returns ``(descriptors (n, d) float32, identity (n,) int)``, identity = copy x person.
    """
    from scipy.stats import ortho_group

    X = np.asarray(X, dtype=np.float64)
    person = np.unique(np.asarray(labels).astype(str), return_inverse=True)[1]
    m, d = X.shape
    mean = X.mean(axis=0)
    copies = -(-int(n) // m)
    rng = np.random.default_rng(seed)
    out = np.empty((copies * m, d), np.float32)
    for c in range(copies):
        R = np.eye(d) if c == 0 else ortho_group.rvs(d, random_state=rng)
        out[c * m:(c + 1) * m] = (X - mean) @ R.T + mean
    identity = (np.arange(copies)[:, None] * (person.max() + 1) + person[None, :]).ravel()
    return out[:n], identity[:n]


#: The public names of this module.
__all__ = ["DEFAULT_K", "MAX_EXACT", "knn_graph", "same_person_components", "threshold_clusters",
           "rotated_copies"]
