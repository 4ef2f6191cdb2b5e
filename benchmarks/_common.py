"""Helpers shared by the benchmark scripts (not a benchmark itself): the faces of a labelled dataset
folder and how the identity benchmarks score a clustering of them."""
from __future__ import annotations

import dataclasses
import time
from typing import Iterable, Sequence

import numpy as np


def labelled_faces(dataset: str, detector: str | None = None, descriptor: str | None = None):
    """``(FaceTable of every face under the shared dataset folder, seconds it took)``; the disk cache
    makes every run after the first a read."""
    from vision_lib import cluster, config

    start = time.perf_counter()
    faces = cluster.face_set(config.dataset(dataset), labelled=True, progress=False, detector=detector,
                             descriptor=descriptor)
    return faces, time.perf_counter() - start


def bcubed(truth: Sequence, clusters: Sequence[int]) -> dict:
    """BCubed F, precision and recall (4 decimals) and the number of clusters."""
    from vision_lib.cluster import external_metrics

    m = external_metrics(truth, clusters)
    return {k: round(float(m[k]), 4) for k in ("bcubed_f", "bcubed_precision", "bcubed_recall")} | {
        "clusters": int(m["n_clusters"])}


def score_by_largest_face(faces, labels: Sequence[int]) -> dict:
    """BCubed of a face clustering, each photo scored by the cluster of its largest face against its folder."""
    return bcubed(faces.photo_labels, faces.largest_face_clusters(labels))


def score_by_subject_face(faces, labels: Sequence[int]) -> dict:
    """BCubed of a face clustering, each photo scored by the cluster of its subject face against its folder."""
    return bcubed(faces.photo_labels, faces.photo_clusters(labels))


def from_scratch(faces) -> np.ndarray:
    """The default identity clustering of every face (confident cores, as ``vision-lib cluster``)."""
    from vision_lib import cluster

    return cluster.cluster_table_faces(cluster.IdentityClustering(descriptor=faces.descriptor), faces)


def table_of_photos(faces, photos: Iterable[str]):
    """The rows (and unused files) of ``faces`` that belong to ``photos``, as a table of its own."""
    keep = set(photos)
    rows = np.array([s in keep for s in faces.sources], bool)
    pick = lambda a: None if a is None else np.asarray(a)[rows]  # noqa: E731
    return dataclasses.replace(
        faces, X=faces.X[rows], sources=[s for s, r in zip(faces.sources, rows) if r],
        labels=[s for s, r in zip(faces.labels, rows) if r], face_index=faces.face_index[rows], boxes=faces.boxes[rows],
        keypoints=pick(faces.keypoints), scores=pick(faces.scores), sharpness=pick(faces.sharpness),
        frontalness=pick(faces.frontalness), subject=pick(faces.subject),
        rejected=[r for r in faces.rejected if r.source in keep], skipped=[],
        photos=[p for p in faces.photos if p in keep],
        photo_labels=None if faces.photo_labels is None else [lab for p, lab in zip(faces.photos, faces.photo_labels) if p in keep])
