"""Naming identity clusters by hand: plain functions over a names table (see docs/presentation.md).

The table is ``clusters.csv`` of ``vision-lib cluster`` (``source,face_index,cluster``) plus a
``name`` column: one row per face. ``name`` is empty for a face nobody has named yet, a person's
name, or :data:`NOT_OF_INTEREST` (``-``) for a face to leave out of training (bystanders, fans).
Cluster ``-1`` is "unassigned". Edit it in a spreadsheet or with these functions (the widget in
notebook 04, :class:`vision_lib.widgets.ClusterNamer`, is a thin layer over them);
:func:`named_faces` gives what a classifier trains on and :func:`train_from_names` trains it
(``vision-lib train PHOTOS --names names.csv``).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # classify loads scikit-learn: only when training
    from .classify import FaceClassifier

NOT_OF_INTEREST = "-"
COLUMNS = ["source", "face_index", "cluster", "name"]


@dataclass(frozen=True)
class Row:
    source: str
    face_index: int
    cluster: int
    name: str = ""


def load_names(path: str | os.PathLike) -> list[Row]:
    """Read a names table (or a plain ``clusters.csv``: every name then empty)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"source", "face_index", "cluster"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected {','.join(COLUMNS)}")
        return [Row(r["source"], int(r["face_index"]), int(r["cluster"]), (r.get("name") or "").strip())
                for r in reader]


def rows_of(faces, labels: Sequence[int]) -> list[Row]:
    """The rows of a clustering done in Python: ``faces`` has ``sources`` and ``face_index`` (a
    :class:`~vision_lib.cluster.FaceSet`), ``labels`` one cluster per face (``-1`` = unassigned),
    as ``vision-lib cluster`` would write them to ``clusters.csv``."""
    if len(labels) != len(faces.sources):
        raise ValueError(f"{len(labels)} labels for {len(faces.sources)} faces")
    return [Row(str(s), int(j), int(c)) for s, j, c in zip(faces.sources, faces.face_index, labels)]


def check_cluster(cluster) -> int:
    """``cluster`` as a cluster id (a whole number, ``-1`` = unassigned), or ValueError: a table with
    another value there could not be loaded again (``load_names``, ``vision-lib train --names``)."""
    if isinstance(cluster, (bool, np.bool_)) or not isinstance(cluster, (int, np.integer)) or cluster < -1:
        raise ValueError(f"choose a cluster (a whole number, -1 = unassigned), not {cluster!r}")
    return int(cluster)


def save_names(rows: list[Row], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the table; an existing file is replaced only with ``overwrite`` (via a temporary file).
    A row :func:`load_names` could not read back is refused before anything is written."""
    for r in rows:
        check_cluster(r.cluster)
        if isinstance(r.face_index, bool) or not isinstance(r.face_index, (int, np.integer)) or r.face_index < 0:
            raise ValueError(f"row {r}: face_index must be a whole number >= 0")
        if any(ch in r.name for ch in "\r\n"):
            raise ValueError(f"row {r}: a name must be one line")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows([r.source, r.face_index, r.cluster, r.name] for r in rows)
    os.replace(tmp, path)
    return path


def name_cluster(rows: list[Row], cluster: int, name: str) -> list[Row]:
    """Give every face of ``cluster`` the name ``name`` (``NOT_OF_INTEREST`` to leave them out)."""
    cluster = check_cluster(cluster)
    if any(ch in name for ch in "\r\n"):
        raise ValueError("a name must be one line")
    return [replace(r, name=name.strip()) if r.cluster == cluster else r for r in rows]


def merge_clusters(rows: list[Row], keep: int, other: int) -> list[Row]:
    """Move every face of ``other`` into ``keep``; faces without a name take ``keep``'s name."""
    keep, other = check_cluster(keep), check_cluster(other)
    names = {r.name for r in rows if r.cluster == keep and r.name}
    name = names.pop() if len(names) == 1 else ""
    return [replace(r, cluster=keep, name=r.name or name) if r.cluster == other else r for r in rows]


def move_face(rows: list[Row], source: str, face_index: int, cluster: int) -> list[Row]:
    """Move one face to ``cluster`` (``-1``: out of every cluster), taking that cluster's name."""
    cluster = check_cluster(cluster)
    if not any(r.source == source and r.face_index == face_index for r in rows):
        raise KeyError(f"no face {face_index} of {source} in the table")
    names = {r.name for r in rows if r.cluster == cluster and r.name} if cluster != -1 else set()
    name = names.pop() if len(names) == 1 else ""
    return [replace(r, cluster=cluster, name=name) if (r.source, r.face_index) == (source, face_index) else r
            for r in rows]


def named_faces(rows: list[Row]) -> dict[str, list[tuple[str, int]]]:
    """``{name: [(source, face_index), ...]}`` of the named faces (not-of-interest and unnamed left out)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for r in rows:
        if r.name and r.name != NOT_OF_INTEREST:
            out.setdefault(r.name, []).append((r.source, r.face_index))
    return out


# --------------------------------------------------------------------------- training from the names
#: Options of :func:`vision_lib.classify.train` that the names decide instead (which faces, which recipe).
_FIXED_BY_NAMES = ("clean", "min_size", "photos", "features", "retry", "feature_params")
NOT_NAMED = "not named"
MARKED_OUT = "not a person of interest (-)"


def train_from_names(names: "Sequence[Row] | str | os.PathLike", photos_root: str | os.PathLike, *,
                     detector: str | None = None, descriptor: str | None = None, marked_strangers: bool = True,
                     strangers=None, n_jobs: int | None = None, progress: bool = True,
                     **options) -> "FaceClassifier":
    """Train a classifier from the named faces of an unlabelled collection.

    Each named face (``source`` + ``face_index``) is one training face of that person, exactly as
    named: no automatic cleaning (the names are the truth). Faces named ``-`` and unnamed faces are
    left out, and so is a face that cannot be found; every one of them is in the model's
    ``training_report_`` with its reason.

    Args:
        names: a names table (path, or rows of :func:`load_names`).
        photos_root: the folder ``vision-lib cluster`` was run on: the table's sources are relative
            to it.
        detector, descriptor: as given to ``vision-lib cluster`` (None: the defaults). Faces are
            detected and described by the same cached pipeline as :func:`vision_lib.classify.train`,
            and numbered as ``cluster`` numbers them (0 = largest).
        marked_strangers: the faces marked ``-`` also calibrate the open-set rule as strangers
            (``info_["names"]["marked_strangers"]`` counts them).
        strangers: more stranger photos or descriptors (see :func:`vision_lib.classify.train`).
        options: the other options of :func:`vision_lib.classify.train` (``model``, ``far``, ...).

    Raises:
        ValueError: fewer than two people with at least two faces found.
    """
    from .classify import MIN_FACES_PER_PERSON, Excluded, PhotoFeatures, Recipe, TrainingReport, extract, train
    from .classify.training import _stranger_descriptors
    from .io import PhotoSet

    fixed = sorted(set(options) & set(_FIXED_BY_NAMES))
    if fixed:
        raise TypeError(f"training from names fixes {', '.join(fixed)} (each named face is used as named, "
                        "with the face descriptor)")
    table = str(names) if isinstance(names, (str, os.PathLike)) else None
    rows = load_names(names) if table is not None else list(names)
    root = Path(photos_root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root} (the folder `vision-lib cluster` was run on)")
    recipe = Recipe("embedding", detector, descriptor=descriptor)
    report = TrainingReport()
    wanted, seen = [], set()
    for r in rows:
        key = (r.source, r.face_index)
        if key in seen:
            reason = "listed twice in the names table (the first row counts)"
        elif not r.name:
            reason = NOT_NAMED
        elif not (root / r.source).is_file():
            reason = f"photo not found under {root}"
        else:
            reason = None
        seen.add(key)
        if reason is not None:
            report.excluded.append(Excluded(r.source, r.name, reason, r.face_index))
        else:  # faces marked "-" are looked up too: they may calibrate the open-set rule
            wanted.append(r)
    sources = sorted({r.source for r in wanted})
    found = dict(zip(sources, extract([root / s for s in sources], recipe, n_jobs=n_jobs, progress=progress)))
    faces: list[tuple[Row, PhotoFeatures]] = []
    marked = []
    for r in wanted:
        ph = found[r.source]
        n = len(ph.faces)
        if ph.error:
            reason = f"unreadable ({ph.error})"
        elif not 0 <= r.face_index < n:
            reason = (f"face {r.face_index} not found ({n} detected with {recipe.describe()}; was the table made "
                      "with other --detector/--descriptor settings, or the photo changed?)")
        else:
            reason = None
        if r.name == NOT_OF_INTEREST:
            report.excluded.append(Excluded(r.source, r.name, MARKED_OUT, r.face_index,
                                            ph.faces[r.face_index].box if reason is None else None))
            if reason is None and ph.descriptors is not None:
                marked.append(ph.descriptors[r.face_index])
        elif reason is not None:
            report.excluded.append(Excluded(r.source, r.name, reason, r.face_index))
        else:
            faces.append((r, ph))
    count: dict[str, int] = {}
    for r, _ in faces:
        count[r.name] = count.get(r.name, 0) + 1
    rare = {name for name, k in count.items() if k < MIN_FACES_PER_PERSON}
    for r, ph in faces:
        if r.name in rare:
            report.excluded.append(Excluded(r.source, r.name, f"person left out: fewer than {MIN_FACES_PER_PERSON} "
                                            "named faces found", r.face_index, ph.faces[r.face_index].box))
    faces = [(r, ph) for r, ph in faces if r.name not in rare]
    if len({r.name for r, _ in faces}) < 2:
        raise ValueError(f"the names table gives fewer than two people with {MIN_FACES_PER_PERSON}+ faces found "
                         f"under {root} ({len(faces)} usable named faces; left out: {report.counts()}): "
                         "name more clusters, and give the folder `vision-lib cluster` was run on")
    # One entry per named face, holding only that face: classify.train with clean="none" keeps it as named.
    ps = PhotoSet(root, [ph.path for _, ph in faces], [r.name for r, _ in faces])
    photos = [PhotoFeatures(ph.path, [ph.faces[r.face_index]], ph.features[r.face_index:r.face_index + 1],
                            None if ph.descriptors is None else ph.descriptors[r.face_index:r.face_index + 1])
              for r, ph in faces]
    supplied = [] if strangers is None else [_stranger_descriptors(strangers, recipe, n_jobs, progress)]
    if marked_strangers and marked:
        supplied.append(np.asarray(marked, np.float32))
    model = train(ps, detector=recipe.detector, descriptor=recipe.descriptor, clean="none", photos=photos,
                  strangers=np.concatenate(supplied) if supplied else None, n_jobs=n_jobs, progress=progress,
                  **options)
    report.kept = [(r.source, r.name, r.face_index, None) for r, _ in faces]
    model.training_report_ = report
    model.info_.update(n_photos=len({r.source for r, _ in faces}), root=str(root), clean="names", names={
        "table": table, "named_faces": len(faces), "people": len(count) - len(rare),
        "marked_strangers": len(marked) if marked_strangers else 0})
    return model


__all__ = ["NOT_OF_INTEREST", "COLUMNS", "Row", "load_names", "rows_of", "check_cluster", "save_names", "name_cluster", "merge_clusters",
           "move_face", "named_faces", "train_from_names"]
