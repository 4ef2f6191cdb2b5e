"""Method comparisons for notebook 04 and the benchmark."""
from __future__ import annotations

import time
from typing import Sequence

from ..models import same_person_distance
from ..tables import FaceTable
from .estimator import CONFIDENT_CORES, IdentityClustering
from .export import cluster_table_faces, core_faces
from .metrics import external_metrics, internal_metrics


#: Named settings compared in notebook 04 and the benchmark (``k="true"``: the known number of people).
#: Cuts are shares of the descriptor's same-person distance (``threshold_share``; none given: the
#: method's :data:`THRESHOLD_SHARES`), so a preset means the same for any descriptor; each row of
#: :func:`compare_presets` says the distance it used (``distance``).
METHOD_PRESETS: dict[str, dict] = {
    "hybrid (default)": {"method": "hybrid"},
    "hybrid, attach by mean (before 2026-12-02)": {"method": "hybrid", "attach": "mean"},
    "hybrid, cores from every face (before 2026-12-02)": {"method": "hybrid", "confident_cores": False},
    "hybrid, cores without density smoothing (min_samples 1)": {"method": "hybrid", "core_min_samples": 1},
    "hybrid, no look-alike split (before 2026-12-07)": {"method": "hybrid", "split_lookalikes": False},
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


__all__ = ["METHOD_PRESETS", "compare_presets", "compare_methods", "format_rows"]
