"""Naming identity clusters by hand: plain functions over a names table (see docs/presentation.md).

The table is ``clusters.csv`` of ``vision-lib cluster`` (``source,face_index,cluster``) plus a
``name`` column: one row per face. ``name`` is empty for a face nobody has named yet, a person's
name, or :data:`NOT_OF_INTEREST` (``-``) for a face to leave out of training (bystanders, fans).
Cluster ``-1`` is "unassigned". Edit it in a spreadsheet or with these functions (the widget in
notebook 04 is a thin layer over them); :func:`named_faces` gives what a classifier trains on.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, replace
from pathlib import Path

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


def save_names(rows: list[Row], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the table; an existing file is replaced only with ``overwrite`` (via a temporary file)."""
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
    return [replace(r, name=name.strip()) if r.cluster == cluster else r for r in rows]


def merge_clusters(rows: list[Row], keep: int, other: int) -> list[Row]:
    """Move every face of ``other`` into ``keep``; faces without a name take ``keep``'s name."""
    names = {r.name for r in rows if r.cluster == keep and r.name}
    name = names.pop() if len(names) == 1 else ""
    return [replace(r, cluster=keep, name=r.name or name) if r.cluster == other else r for r in rows]


def move_face(rows: list[Row], source: str, face_index: int, cluster: int) -> list[Row]:
    """Move one face to ``cluster`` (``-1``: out of every cluster), taking that cluster's name."""
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


__all__ = ["NOT_OF_INTEREST", "COLUMNS", "Row", "load_names", "save_names", "name_cluster", "merge_clusters",
           "move_face", "named_faces"]
