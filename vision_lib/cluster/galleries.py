"""Method comparisons and galleries for notebook 04 and the benchmark."""
from __future__ import annotations

import time
from typing import Iterable, Sequence

import numpy as np

from ..models import same_person_distance
from ..tables import FaceTable
from .estimator import CONFIDENT_CORES, IdentityClustering
from .export import cluster_table_faces, core_faces, group_folder
from .metrics import external_metrics, internal_metrics


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

    from ..faces import Face, crop
    from ..io import load_image

    out = []
    for i in index:
        image = load_image(faces.paths[i])
        patch = crop(image, Face(tuple(int(v) for v in faces.boxes[i]), 1.0), margin)
        out.append(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return out




__all__ = ["METHOD_PRESETS", "compare_presets", "compare_methods", "format_rows", "gallery_groups", "face_thumbnails"]
