"""The new face models beside the classic recipe, on the same photos: the numbers that the
notebooks' comparison figures draw (issue 18).

- :func:`detectors`: per detector, the share of photos with a face and the steady cost per photo;
- :func:`verification`: per descriptor, the distances of same-person and different-person pairs and
  the true-accept rate at a fixed false-accept rate;
- :func:`identity_models`: identity clustering (the default method) with each detector + descriptor
  pair, scored by BCubed F against the photos' folders;
- :func:`every_face_scores`: a clustering scored over every face, not only each photo's subject.

The figures are in :mod:`vision_lib.plotting` (``detector_comparison``, ``distance_distributions``,
``metric_bars``).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

#: The classic recipe's models, and the defaults that replaced them.
CLASSIC = ("mtcnn", "dlib")


def modern() -> tuple[str, str]:
    """The default detector and descriptor (:mod:`vision_lib.models`)."""
    from .models import DEFAULT_DESCRIPTOR, DEFAULT_DETECTOR

    return DEFAULT_DETECTOR, DEFAULT_DESCRIPTOR


def detectors(found: Mapping[str, Sequence], timing_paths: Sequence[str | os.PathLike]) -> dict[str, dict]:
    """Per detector: :func:`vision_lib.faces.detection_stats` of its results in ``found`` (name ->
    the :func:`~vision_lib.faces.detect_paths` results of the same photos) plus ``seconds_per_photo``
    timed on ``timing_paths`` with the cache off (:func:`vision_lib.faces.time_detection`)."""
    from .faces import detection_stats, time_detection

    return {name: {**detection_stats(results),
                   "seconds_per_photo": time_detection(timing_paths, name)["seconds_per_photo"]}
            for name, results in found.items()}


def pair_distances(X: np.ndarray, labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances of every pair of rows of ``X``: ``(same label, different labels)``."""
    X = np.asarray(X, np.float64)
    labels = np.asarray([str(v) for v in labels])
    if len(X) != len(labels):
        raise ValueError(f"{len(X)} descriptors but {len(labels)} labels")
    i, j = np.triu_indices(len(X), 1)
    d = np.linalg.norm(X[i] - X[j], axis=1)
    same = labels[i] == labels[j]
    return d[same], d[~same]


def true_accept_rate(same: np.ndarray, other: np.ndarray, far: float) -> tuple[float, float]:
    """``(true-accept rate, threshold)`` at the distance that accepts a ``far`` share of the
    different-person pairs ``other``."""
    if len(other) == 0 or len(same) == 0:
        return float("nan"), float("nan")
    threshold = float(np.quantile(np.asarray(other, np.float64), far))
    return float(np.mean(np.asarray(same) <= threshold)), threshold


def verification(spaces: Mapping[str, np.ndarray], labels: Sequence, far: float = 0.01) -> dict[str, dict]:
    """Per descriptor (name -> descriptors of the same faces, in the same order as ``labels``): the
    ``same`` and ``other`` pair distances, the descriptor's own same-person ``threshold`` (when it is
    a registered descriptor), and ``tar`` with its ``threshold_at_far`` at ``far`` false accepts.

    The labels are the photos' folders: on raw web photos a few "same" pairs are not the same person,
    which lowers every descriptor's rate alike.
    """
    from .models import DESCRIPTORS, get_descriptor

    out = {}
    for name, X in spaces.items():
        same, other = pair_distances(X, labels)
        tar, at = true_accept_rate(same, other, far)
        out[name] = {"same": same, "other": other, "far": far, "tar": tar, "threshold_at_far": at,
                     "threshold": float(get_descriptor(name).threshold) if name in DESCRIPTORS else None}
    return out


def identity_models(root: str | os.PathLike, paths: Sequence[str | os.PathLike],
                    models: Sequence[tuple[str, str]] | None = None, *, progress: bool = False) -> list[dict]:
    """Identity clustering of the same labelled photos with each ``(detector, descriptor)`` pair of
    ``models`` (default: the defaults, then :data:`CLASSIC`), the default clustering method: one row
    each with ``name``, ``bcubed_f``, ``n_clusters``, ``n_true``, ``unassigned`` and ``seconds``
    (detection and description, from the disk cache when it has them, plus clustering).

    Each photo is scored by the cluster of its subject face against its folder, as
    :func:`vision_lib.cluster.compare_methods` does.
    """
    from .cluster import IdentityClustering, external_metrics, face_set

    rows = []
    for detector, descriptor in models or (modern(), CLASSIC):
        start = time.perf_counter()
        faces = face_set(Path(root), labelled=True, paths=list(paths), detector=detector, descriptor=descriptor,
                         progress=progress)
        labels = IdentityClustering(descriptor=descriptor).fit_predict(faces.descriptors)
        scores = external_metrics(faces.photo_labels, faces.photo_clusters(labels))
        rows.append({"name": f"{detector} + {descriptor}", "bcubed_f": scores["bcubed_f"],
                     "n_clusters": int(len(set(labels.tolist()) - {-1})), "n_true": len(set(faces.photo_labels)),
                     "unassigned": int(np.sum(labels < 0)), "seconds": time.perf_counter() - start})
    return rows


def every_face_scores(faces, labels: Sequence[int]) -> dict:
    """External metrics of an identity clustering over **every face** of a labelled face table,
    where :func:`vision_lib.cluster.compare_presets` scores each photo by its subject face only.

    A subject face's truth is its photo's folder. Any other face (a bystander, a team-mate) has no
    known identity, so each counts as a person of its own: a cluster that mixes bystanders into a
    person's faces, or groups strangers together, loses precision. (Two photos of one bystander
    are then scored as two people, so this figure is a lower bound.)"""
    from .cluster import external_metrics

    truth = [lab if s else f"other face {i}" for i, (lab, s) in enumerate(zip(faces.labels, faces.subject))]
    return external_metrics(truth, labels)


#: The public names of this module.
__all__ = ["CLASSIC", "modern", "detectors", "pair_distances", "true_accept_rate", "verification",
           "identity_models", "every_face_scores"]
