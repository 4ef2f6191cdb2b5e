"""The faces a clustering reads (a folder, a descriptor table) and what it writes: ``OUT/cluster_NN/``
photo copies, ``clusters.csv``, ``rejected.csv`` and ``metrics.json``."""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..io import CSV_TEXT, copy_grouped, flat_name, locked_output
from ..tables import FaceTable, face_table
from .estimator import CONFIDENT_CORES, IdentityClustering
from .metrics import external_metrics, internal_metrics


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


def confident_floor(detector: str | None) -> float:
    """The detector score from which a face is confident (:func:`core_faces`): the detector's own
    ``confident_score``, or -inf for a detector not in the registry."""
    from ..models import DETECTORS, get_detector

    return get_detector(detector).confident_score if detector in DETECTORS else -np.inf


def core_faces(faces: FaceTable) -> np.ndarray:
    """The faces of ``faces`` confident enough to build the cores of ``hybrid`` (``core_mask`` of
    :meth:`IdentityClustering.fit`): detector score at least the detector's own ``confident_score``
    (as :func:`vision_lib.average.select_for_average` uses it) and shorter box side at least
    :data:`vision_lib.faces.rating.MIN_SIZE`. An unknown score (NaN: a table written before scores
    were kept), or a detector not in the registry, does not count against a face."""
    from ..faces.rating import MIN_SIZE

    floor = confident_floor(faces.settings.get("detector"))
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
    from ..faces.export import write_face_crops
    from ..io import staged_folder

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
    from ..tables import load_descriptor_table as load

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


__all__ = ["FaceSet", "face_set", "core_faces", "cluster_table_faces", "group_folder", "export_clusters",
           "cluster_folder", "load_descriptor_table", "table_threshold", "table_faces", "cluster_table"]
