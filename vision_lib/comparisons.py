"""The new face models beside the classic recipe, on the same photos: the numbers that the
notebooks' comparison figures draw (issue 18).

- :func:`detectors`: per detector, the share of photos with a face and the steady cost per photo;
- :func:`verification`: per descriptor, the distances of same-person and different-person pairs and
  the true-accept rate at a fixed false-accept rate;
- :func:`identity_models`: identity clustering (the default method) with each detector + descriptor
  pair, scored by BCubed F against the photos' folders;
- :func:`every_face_scores`: a clustering scored over every face, not only each photo's subject;
- a face collection that grows (notebook 04, docs/collection.md): :func:`split_photos` and
  :func:`table_of_photos` (the photos it starts from, those added later, one held out to search by),
  :func:`name_by_majority` (name the people as a user who knows them would) and
  :func:`found_their_people` (did the added photos join the right named person?),
  :func:`search_gallery` (a search's best matches as face crops).

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


# --------------------------------------------------------------------------- a collection that grows
def split_photos(faces, share: float = 0.5) -> tuple[list[str], list[str], str | None]:
    """A labelled face table's photos as a collection would meet them: ``(first, later, query)``.
    ``first``: the first ``share`` of each person's photos (by name; at least one), ``later``: the
    rest, ``query``: the last later photo of the person with the most photos, held out of both (a
    photo not in the collection to search by; None when no person has two later photos)."""
    by: dict[str, list[str]] = {}
    for p, lab in zip(faces.photos, faces.photo_labels):
        by.setdefault(lab, []).append(p)
    first, later, query = [], [], None
    for lab in sorted(by, key=lambda k: (-len(by[k]), k)):
        photos = sorted(by[lab])
        cut = max(1, round(len(photos) * share))
        rest = photos[cut:]
        if query is None and len(rest) >= 2:
            query, rest = rest[-1], rest[:-1]
        first += photos[:cut]
        later += rest
    return first, later, query


def table_of_photos(faces, photos: Sequence[str]):
    """The rows (and photos without a face) of ``photos`` in a face table, as a table of its own
    (what ``vision-lib features --kind descriptor`` would write for those photos)."""
    from .tables import FaceTable

    keep = set(photos)
    rows = np.array([s in keep for s in faces.sources], bool)
    take = np.flatnonzero(rows)
    labelled = faces.photo_labels is not None
    return FaceTable(faces.kind, faces.X[take], [faces.sources[i] for i in take], [faces.labels[i] for i in take],
                     faces.face_index[take], faces.boxes[take], [r for r in faces.rejected if r.source in keep],
                     dict(faces.settings), keypoints=faces.keypoints[take], scores=faces.scores[take],
                     sharpness=faces.sharpness[take], frontalness=faces.frontalness[take], subject=faces.subject[take],
                     photos=[p for p in faces.photos if p in keep],
                     photo_labels=[lab for p, lab in zip(faces.photos, faces.photo_labels) if p in keep] if labelled else None,
                     skipped=[r for r in faces.skipped if r.source in keep], root=faces.root)


def folder_names(faces) -> dict[str, str]:
    """Each photo's person, as a user would type the name (the folder's underscores as spaces)."""
    return {p: lab.replace("_", " ") for p, lab in zip(faces.photos, faces.photo_labels)}


#: The face of a photo its folder names, per way of scoring: the subject (the face the photo is framed
#: on: LFW's labels) or the largest face (the raw footballer photos, as ``bench_cluster.py`` scores them).
SCORED_FACE = ("subject", "largest")


def name_by_majority(collection, faces, *, by: str = "subject", review: bool = False) -> dict:
    """Name every person of ``collection`` (a :class:`vision_lib.Collection` of ``faces``' photos)
    as a user who knows the people of the folders would (``Collection.name``): after the folder most
    of its faces come from, counting the faces whose person the folder names (``by``: each photo's
    ``subject`` face, or its ``largest``; :data:`SCORED_FACE`), or all its faces when it has none of
    those. A second person of an already-given name is merged into the first (``Collection.merge``),
    as a user seeing the same person twice would.

    ``review``: the user also looks at each person's faces before naming it, and splits out the
    (counted) faces of another person of the folders (``Collection.split``): into that person when
    named already, else a new person named after them. Without it the user names by majority
    unseen (the issue's benchmark user); with it, by what a careful user who knows everyone of the
    folders would end up with.

    Returns ``{"named", "merged", "split_out"}``: people named, people merged into a named one, faces
    split out."""
    from collections import Counter

    if by not in SCORED_FACE:
        raise ValueError(f"by must be one of {', '.join(SCORED_FACE)}, not {by!r}")
    folder = folder_names(faces)
    df = collection.dataframe()
    df = df[df["person"].notna()]
    counted = df["subject"] if by == "subject" else df["face_index"] == 0
    named: dict[str, int] = {}
    merged = split_out = 0
    for person, rows in df.groupby("person"):
        mine = rows[counted[rows.index]]
        # a person with no counted face (background faces only): the user still recognises most of
        # them as one of the folders' people (a photo's person is not always its subject or largest face)
        votes = Counter(folder[s] for s in mine["source"]) or Counter(folder[s] for s in rows["source"])
        label = votes.most_common(1)[0][0]
        if review:
            others = mine[mine["source"].map(folder) != label]
            for other, part in others.groupby(others["source"].map(folder)):
                new = collection.split(int(person), part["face"].astype(int).tolist())
                split_out += len(part)
                if other in named:
                    collection.merge(named[other], new)
                else:
                    collection.name(new, other)
                    named[other] = new
        if label in named:
            collection.merge(named[label], int(person))
            merged += 1
        else:
            collection.name(int(person), label)
            named[label] = int(person)
    return {"named": len(named), "merged": merged, "split_out": split_out}


def found_their_people(collection, faces, photos: Sequence[str]) -> dict:
    """Of ``photos`` (added later) whose folder is a named person of ``collection``, the subject
    faces now with that person (``right``) and with another named person (``wrong``); the others
    are with an unnamed person or nobody. Counts, with ``total`` as the denominator."""
    folder = folder_names(faces)
    df = collection.dataframe()
    names = set(df["name"].dropna())
    wanted = set(photos)
    subjects = df[df["subject"] & df["source"].isin(wanted)]
    right = wrong = total = 0
    for source, name in zip(subjects["source"], subjects["name"]):
        if folder[source] not in names:
            continue
        total += 1
        got = name if isinstance(name, str) else None
        right += got == folder[source]
        wrong += got is not None and got != folder[source]
    return {"right": right, "wrong": wrong, "elsewhere": total - right - wrong, "total": total}


def search_gallery(collection, photo: str | os.PathLike, top: int = 6) -> tuple[list[dict], dict, dict]:
    """``Collection.search(photo)`` and its faces as galleries: ``(found, groups, titles)`` where
    ``groups`` maps one line per face of the photo (who it is said to be, with the stated
    stranger rate) to the face crop then its ``top`` best matches, and ``titles`` gives each
    thumbnail's caption (``query``, then each match's person and distance), ready for
    :func:`vision_lib.plotting.cluster_galleries`."""
    from .geometry import Face, crop
    from .io import load_image

    found = collection.search(photo, top=top)
    df = collection.dataframe().set_index("face")
    image = load_image(photo)
    groups, titles = {}, {}
    for k, hit in enumerate(found):
        who = hit["name"] or (f"person {hit['person']}" if hit["person"] is not None else "not anyone in the collection")
        rate = "" if hit["stranger_rate"] is None else f", stranger rate {hit['stranger_rate']:.3f}"
        key = f"face {k}: {who}{rate}"
        crops, caps = [crop(image, Face(tuple(hit["box"]), 1.0))], ["query"]
        for m in hit["matches"]:
            row = df.loc[m["face"]]
            crops.append(crop(load_image(collection.photo_path(m["photo"])),
                              Face((int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])), 1.0)))
            caps.append(f"{m['name'] or m['person'] or '-'} ({m['distance']:.2f})")
        groups[key], titles[key] = crops, caps
    return found, groups, titles


#: The public names of this module.
__all__ = ["CLASSIC", "modern", "detectors", "pair_distances", "true_accept_rate", "verification",
           "identity_models", "every_face_scores", "split_photos", "table_of_photos", "folder_names", "SCORED_FACE", "name_by_majority",
           "found_their_people", "search_gallery"]
