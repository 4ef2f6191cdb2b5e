"""Photos (or a feature table) into a collection's store: what is new, changed, unchanged or gone,
extraction in parallel batches, one writer committing each batch.

A photo is unchanged when its size and modification time are those recorded, or else when its
content hash (SHA-1) is; a changed photo's faces are replaced, a photo gone from a folder given
whole is marked ``removed`` and its faces deleted. Each batch (photos, their faces and descriptors)
is one transaction, so a run stopped anywhere (Ctrl-C, ``kill -9``, power loss) keeps whole batches
only, and the same command goes on from the first photo not committed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import Rejected
from ..store import SQLiteStore

__all__ = ["BATCH", "TABLE_BATCH", "AddReport", "add_inputs", "root_of", "folder_root"]

#: Photos per committed batch (each batch is extracted in parallel, then written by this process).
BATCH = 64
#: Photos of a feature table per committed batch.
TABLE_BATCH = 5000


@dataclass
class AddReport:
    """What an add did: photo counts, the files it could not use (with why), faces written and removed,
    and (after assignment) faces that joined existing people and new people made."""

    new: int = 0
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: list[Rejected] = field(default_factory=list)
    faces_added: int = 0
    faces_removed: int = 0
    attached: int = 0
    new_people: int = 0
    grouped: int = 0

    def summary(self) -> str:
        """One line for the command line."""
        return (f"{self.new} new photos, {len(self.changed)} changed, {self.unchanged} unchanged, "
                f"{len(self.removed)} removed; {len(self.rejected)} without a usable face, "
                f"{len(self.skipped)} other files (not photos); {self.faces_added} faces added, "
                f"{self.faces_removed} removed; {self.attached} faces joined existing people, "
                f"{self.grouped} formed {self.new_people} new people")


def root_of(item: str | os.PathLike) -> tuple[str, str]:
    """``(root path, kind)`` an input belongs to: a folder is its own root, a photo its folder's,
    any other file is read as a feature table (``"table"``)."""
    from ..io import sniff_file

    path = Path(item)
    if path.is_dir():
        return str(path.resolve()), "folder"
    if not path.exists():
        raise FileNotFoundError(f"no such folder, photo or feature table: {path}")
    if sniff_file(path)[0] is not None:
        return str(path.resolve().parent), "folder"
    return str(path.resolve()), "table"


def add_inputs(store: SQLiteStore, inputs: Sequence[str | os.PathLike], *, detector: str | None,
               descriptor: str, n_jobs: int | None = None, progress: bool = True, batch: int = BATCH) -> AddReport:
    """Bring every input (folders, photos, descriptor tables) into ``store``; see the module docstring."""
    report = AddReport()
    plans = [(Path(item), *folder_root(store, item)) for item in inputs]  # every input checked first
    for item, root, prefix in plans:
        if root is None:
            _add_table(store, item, report)
        else:
            _add_photos(store, item, root, prefix, report, detector=detector, descriptor=descriptor,
                        n_jobs=n_jobs, progress=progress, batch=batch)
    return report


def folder_root(store: SQLiteStore, item: str | os.PathLike) -> tuple[Path | None, str]:
    """``(root, prefix)`` of a folder or photo: the folder of the collection it lies in (its photos
    keep their paths relative to that folder: ``prefix`` + path under ``item``), or its own folder
    when it lies in none; ``(None, "")`` for a feature table. A folder that holds a folder already in
    the collection is refused (its photos would be there twice)."""
    path, kind = root_of(item)
    if kind == "table":
        return None, ""
    where = Path(path)
    folders = [Path(p) for p, k, _ in store.roots().values() if k == "folder"]
    outer = next((r for r in folders if where.is_relative_to(r)), None)
    inner = [r for r in folders if r != where and r.is_relative_to(where)]
    if outer is None and inner:
        raise ValueError(f"{item} holds {inner[0]}, already a folder of this collection (its photos would be "
                         f"there twice): add the folders inside it one by one, or start another collection")
    root = outer or where
    inside = where.relative_to(root).as_posix()
    return root, "" if inside == "." else inside + "/"


def _add_photos(store: SQLiteStore, item: Path, root: Path, prefix: str, report: AddReport, *, detector,
                descriptor, n_jobs, progress, batch) -> None:
    from ..cache import file_digest
    from ..io import cannot_read, scan_folder
    from ..progress import tqdm

    rid = store.root_id(str(root), "folder")
    scan = scan_folder(item)
    known = store.photos_of(rid)
    # sources as faces.csv gives them, relative to the collection's folder (a photo given alone: its name)
    rel = {p: prefix + (p.relative_to(item).as_posix() if item.is_dir() else p.name) for p in scan.photos}
    skipped = [Rejected(prefix + r.source, r.reason) for r in scan.relative_skipped()] if item.is_dir() else []
    if item.is_dir():  # the folder given whole: what the collection has under it and it no longer does is gone
        listed = set(rel.values()) | {r.source for r in skipped}
        gone = [path for path, row in known.items() if row[4] != "removed" and path not in listed
                and path.startswith(prefix)]
        report.removed += [p for p in gone if known[p][4] != "skipped"]  # photos; a gone other file is just gone
        report.faces_removed += store.remove_photos([known[p][0] for p in gone])
    report.skipped += skipped
    store.write_photos(rid, [(r.source, None, None, None, "skipped", r.reason) for r in skipped
                             if known.get(r.source, (None,) * 5)[4] != "skipped"], {})
    todo, touched = [], []
    for photo in scan.photos:
        source = rel[photo]
        old = known.get(source)
        try:
            st = photo.stat()
            if old and old[4] in ("ok", "rejected") and (old[2], old[3]) == (st.st_size, st.st_mtime_ns):
                report.unchanged += 1
                continue
            digest = file_digest(photo)
        except OSError as exc:
            report.rejected.append(Rejected(source, cannot_read(exc, photo)))
            store.write_photos(rid, [(source, None, None, None, "rejected", report.rejected[-1].reason)], {})
            continue
        if old and old[4] in ("ok", "rejected") and old[1] == digest:
            report.unchanged += 1
            touched.append((old[0], st.st_size, st.st_mtime_ns))
            continue
        if old and old[4] != "removed":
            report.changed.append(source)
        else:
            report.new += 1
        todo.append((photo, source, digest, st.st_size, st.st_mtime_ns))
    if touched:
        store.touch_photos(touched)
    with tqdm(total=len(todo), desc="index", unit="photo", disable=not progress or not todo) as bar:
        for start in range(0, len(todo), batch):
            part = todo[start:start + batch]
            report.faces_added += _extract_batch(store, rid, root, part, report, detector=detector,
                                                 descriptor=descriptor, n_jobs=n_jobs)
            bar.update(len(part))


def _extract_batch(store: SQLiteStore, rid: int, root: Path, part: list, report: AddReport, *, detector, descriptor,
                   n_jobs) -> int:
    """Faces of one batch of photos, extracted in parallel, written in one transaction."""
    from ..tables import face_table

    table = face_table([root / s for _, s, *_ in part], root=root, detector=detector, descriptor=descriptor,
                       labelled=False, n_jobs=n_jobs, progress=False)
    return _write_table_rows(store, rid, table, {s: (d, size, m) for _, s, d, size, m in part}, report)


def _write_table_rows(store: SQLiteStore, rid: int, table, photos: dict[str, tuple], report: AddReport,
                      rows: dict[str, list[int]] | None = None) -> int:
    """Write the photos ``{source: (hash, size, mtime_ns)}`` with their rows of ``table`` (``rows``:
    its :meth:`~vision_lib.tables.FaceTable.rows_by_source`, when known) and the reasons of those without a row."""
    why = {r.source: r.reason for r in table.rejected}
    rows = table.rows_by_source() if rows is None else rows
    faces = {s: [(int(table.face_index[i]), table.boxes[i], _keypoints(table.keypoints[i]), float(table.scores[i]),
                  float(table.sharpness[i]), float(table.frontalness[i]), bool(table.subject[i]), table.X[i])
                 for i in rows.get(s, [])] for s in photos}
    listed = []
    for s, (digest, size, mtime) in photos.items():
        status = "ok" if faces[s] else "rejected"
        reason = None if faces[s] else why.get(s, "no face found")
        if status == "rejected":
            report.rejected.append(Rejected(s, reason))
        listed.append((s, digest, size, mtime, status, reason))
    return store.write_photos(rid, listed, faces)


def _keypoints(points: np.ndarray) -> list | None:
    return None if np.isnan(points).all() else [[None if np.isnan(v) else round(float(v), 2) for v in p] for p in points]


def _add_table(store: SQLiteStore, path: Path, report: AddReport) -> None:
    """A descriptor table's photos and faces (no photo files needed): photos already in the
    collection from this table file are unchanged; photos it no longer has (written again) are removed."""
    from ..tables import load_descriptor_table

    table = load_descriptor_table(path, "a collection")
    mine = store.meta.get("descriptor")
    if str(table.settings.get("descriptor")) != mine:
        raise ValueError(f"{path} holds descriptors {table.settings.get('descriptor')}, the collection "
                         f"{mine} (one collection, one descriptor)")
    # keyed by the table file: another table (the next photos of the same folder) adds to the collection
    rid = store.root_id(str(path.resolve()), "table", table.settings.get("root"))
    known = store.photos_of(rid)
    skipped = {r.source for r in table.skipped}
    report.skipped += list(table.skipped)
    every = set(table.photos) | {r.source for r in table.not_used}
    gone = [p for p, row in known.items() if row[4] != "removed" and p not in every]
    report.removed += gone
    report.faces_removed += store.remove_photos([known[p][0] for p in gone])
    fresh = [s for s in table.photos if known.get(s, (None,) * 5)[4] in (None, "removed")]
    report.new += len(fresh)
    report.unchanged += len(table.photos) - len(fresh)
    store.write_photos(rid, [(r.source, None, None, None, "skipped", r.reason) for r in table.skipped
                             if known.get(r.source) is None], {})
    from ..progress import tqdm

    rows = table.rows_by_source()
    for start in tqdm(range(0, len(fresh), TABLE_BATCH), desc="index (table)", unit="batch",
                      disable=len(fresh) <= TABLE_BATCH):
        part = {s: (None, None, None) for s in fresh[start:start + TABLE_BATCH] if s not in skipped}
        report.faces_added += _write_table_rows(store, rid, table, part, report, rows)
