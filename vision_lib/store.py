"""The store of a face collection: one SQLite file (``people.db``), its schema, and the checks that
refuse a file that is not one.

:class:`SQLiteStore` is the only implementation; :class:`Store` lists what
:class:`vision_lib.collection.Collection` asks of a store, so a server database (PostgreSQL with
pgvector) can be added behind the same methods. The schema is in docs/collection.md and versioned
(``PRAGMA user_version`` = :data:`SCHEMA_VERSION`, and ``meta.app`` = :data:`APP`). A file is
checked read-only before anything is written to it (:func:`check_file`): a text file, another
SQLite database, a truncated file, a newer schema or a collection of another descriptor is refused
with one line (``ValueError``) and left byte for byte as it was.

Every write is one transaction (WAL journal: a crash, ``kill -9`` or power loss leaves the last
committed state); the descriptors are float32 blobs, one per face.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

__all__ = ["APP", "SCHEMA_VERSION", "DECISIONS", "PHOTO_STATUSES", "Store", "SQLiteStore", "check_file",
           "FaceRow", "PhotoRow", "file_handle"]

#: ``meta.app`` of every collection file.
APP = "vision_lib collection"
#: The schema this release reads and writes (``PRAGMA user_version``).
SCHEMA_VERSION = 1
#: The user's decisions, as logged in ``decisions.kind``.
DECISIONS = ("named", "merged", "split", "moved", "not-this-person", "not-of-interest")
#: ``photos.status``: faces found; no usable face (``reason``); not a photo (``reason``); gone from its root.
PHOTO_STATUSES = ("ok", "rejected", "skipped", "removed")

_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE roots (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, kind TEXT NOT NULL CHECK (kind IN ('folder', 'table')),
    photos TEXT);
CREATE TABLE photos (
    id INTEGER PRIMARY KEY, root INTEGER NOT NULL REFERENCES roots(id), path TEXT NOT NULL,
    hash TEXT, size INTEGER, mtime_ns INTEGER,
    status TEXT NOT NULL CHECK (status IN ('ok', 'rejected', 'skipped', 'removed')), reason TEXT,
    UNIQUE (root, path));
CREATE TABLE people (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, hidden INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL);
CREATE TABLE faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT, photo INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    face_index INTEGER NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL,
    keypoints TEXT, score REAL, sharpness REAL, frontalness REAL, subject INTEGER NOT NULL DEFAULT 0,
    person INTEGER REFERENCES people(id), decided_by TEXT CHECK (decided_by IN ('auto', 'user')),
    UNIQUE (photo, face_index));
CREATE INDEX faces_person ON faces(person);
CREATE TABLE descriptors (face INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE, vector BLOB NOT NULL);
CREATE TABLE not_person (face INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person INTEGER NOT NULL, PRIMARY KEY (face, person));
CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('named', 'merged', 'split', 'moved', 'not-this-person', 'not-of-interest')),
    person INTEGER, other INTEGER, faces TEXT, value TEXT);
"""

#: One face as written by an add: its photo's ``(root, path)`` is given with the batch.
FaceRow = tuple  # (face_index, box(4), keypoints list|None, score, sharpness, frontalness, subject, vector float32)
#: One photo as written by an add: ``(path, hash, size, mtime_ns, status, reason)``.
PhotoRow = tuple


def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is not usable as a face collection: {why} (the file was left as it was)")


_HANDLES: dict[tuple[int, int], tuple[int, threading.Lock]] = {}


def file_handle(path: str | os.PathLike) -> tuple[int, threading.Lock]:
    """A read-only descriptor of ``path`` (and a lock for this process's threads), one per file and
    process, never closed: closing any descriptor of a file drops every POSIX lock the process holds
    on it, SQLite's included (an open connection would then see its WAL checkpointed away under it)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    if key not in _HANDLES:
        _HANDLES[key] = (os.open(path, os.O_RDONLY), threading.Lock())
    return _HANDLES[key]


def check_file(path: str | os.PathLike, descriptor_id: str | None = None) -> dict:
    """The ``meta`` of the collection at ``path``, read without writing anything; ``ValueError``
    (one line) when the file is not a collection this release can use: not SQLite (a text file, an
    empty file), SQLite but not a collection, truncated, a newer or unknown schema, or (with
    ``descriptor_id``) a collection of another descriptor."""
    path = Path(path)
    head = os.pread(file_handle(path)[0], 100, 0)  # a missing or unreadable file: the OSError says so
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise _refuse(path, "not a SQLite database")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages, valid_for, changes = (int.from_bytes(head[a:a + 4], "big") for a in (28, 92, 24))
    size = path.stat().st_size
    wal = Path(f"{path}-wal")
    # The header's page count is valid when its change counter matches; without a WAL file beside
    # it the file must hold every page (a copy cut short fails here, not in the middle of a query).
    if not (wal.exists() and wal.stat().st_size) and valid_for == changes and (size < pages * page or size % page):
        raise _refuse(path, f"truncated ({size} bytes of the {pages * page} its header promises)")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise _refuse(path, f"SQLite cannot open it ({exc})") from None
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        meta = dict(con.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
    except sqlite3.Error as exc:
        raise _refuse(path, f"SQLite cannot read it ({exc})") from None
    finally:
        con.close()
    if meta.get("app") != APP:
        raise _refuse(path, "a SQLite database, but not a vision_lib collection")
    if version > SCHEMA_VERSION or str(version) != meta.get("schema"):
        raise _refuse(path, f"schema {version} (this vision_lib reads schema {SCHEMA_VERSION}; "
                            "a newer vision_lib wrote it)" if version > SCHEMA_VERSION else
                      f"unknown schema {version} / {meta.get('schema')}")
    if descriptor_id is not None and meta.get("descriptor") != descriptor_id:
        raise _refuse(path, f"a collection of descriptor {meta.get('descriptor')}, not {descriptor_id} "
                            "(one collection, one descriptor)")
    return meta


class Store(Protocol):
    """What a collection asks of its store (:class:`SQLiteStore`; a server database could follow)."""

    meta: dict

    def transaction(self) -> contextlib.AbstractContextManager: ...
    def snapshot(self) -> contextlib.AbstractContextManager: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def stamp(self) -> tuple: ...
    # photos and faces
    def root_id(self, path: str, kind: str, photos: str | None = None) -> int: ...
    def roots(self) -> dict[int, tuple[str, str, str | None]]: ...
    def photos_of(self, root: int) -> dict[str, tuple]: ...
    def write_photos(self, root: int, photos: Sequence[PhotoRow], faces: dict[str, list[FaceRow]]) -> int: ...
    def touch_photos(self, rows: Iterable[tuple[int, int, int]]) -> None: ...
    def remove_photos(self, ids: Sequence[int]) -> int: ...
    def photo_file(self, photo: int) -> tuple[str, str] | None: ...
    def not_used(self) -> list[tuple[int, str, str, str]]: ...
    def vectors(self) -> tuple[np.ndarray, np.ndarray]: ...
    def face_stamp(self) -> tuple[int, int]: ...
    def count_through(self, last: int) -> int: ...
    def vector_chunks(self, after: int = 0, where: str = "") -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
    def vectors_of(self, faces: Sequence[int]) -> np.ndarray: ...
    def person_vectors(self, person: int) -> np.ndarray: ...
    def face_rows_of(self, faces: Sequence[int]) -> dict[int, tuple]: ...
    def face_rows(self) -> list[tuple]: ...
    def face_table_rows(self) -> tuple[list[str], list[tuple]]: ...
    def face_geometry(self, faces: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def unclear_faces(self, score: float, side: int) -> np.ndarray: ...
    # people and decisions
    def assignments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(face ids, person (-1: none), placed by the user)`` ordered by face id."""
        rows = self.con.execute("SELECT id, COALESCE(person, -1) FROM faces ORDER BY id").fetchall()
        arr = np.array(rows, np.int64).reshape(len(rows), 2)  # one C conversion, no loop per face
        # two values a face, not three: the faces the user placed are few, found apart
        user = np.fromiter((r[0] for r in self.con.execute("SELECT id FROM faces WHERE decided_by = 'user'")), np.int64)
        return arr[:, 0].copy(), arr[:, 1].copy(), np.isin(arr[:, 0], user)

    def assign(self, faces: Sequence[int], person: int | None, by: str | None) -> None: ...
    def assign_free(self, faces: Sequence[int], person: int) -> int: ...
    def reset_auto(self) -> None: ...
    def faces_of(self, person: int) -> list[int]: ...
    def persons_of(self, faces: Sequence[int]) -> dict[int, int | None]: ...
    def new_person(self, name: str | None = None) -> int: ...
    def people(self) -> list[tuple]: ...
    def person(self, person: int) -> tuple | None: ...
    def update_person(self, person: int, **values) -> None: ...
    def delete_person(self, person: int) -> None: ...
    def forbid(self, faces: Sequence[int], person: int) -> None: ...
    def forbidden(self) -> set[tuple[int, int]]: ...
    def log(self, kind: str, person=None, other=None, faces=(), value=None) -> None: ...
    def decisions(self) -> list[tuple]: ...
    def last_decision(self) -> int: ...


class SQLiteStore:
    """A collection in one SQLite file (WAL, foreign keys on). Open an existing file with
    ``SQLiteStore(path)`` (checked first by :func:`check_file`), create one with
    :meth:`create` (refuses to replace any file)."""

    def __init__(self, path: str | os.PathLike, descriptor_id: str | None = None, *, timeout: float = 60.0):
        self.path = Path(path)
        self.meta = check_file(self.path, descriptor_id)  # before the first write
        self.con = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self.con.execute("PRAGMA foreign_keys = ON")
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable up to the last checkpoint
        self._depth = 0

    @classmethod
    def create(cls, path: str | os.PathLike, meta: dict) -> "SQLiteStore":
        """A new collection at ``path`` (which must not exist), built under a temporary name and
        linked into place: a crash never leaves a file that is half a collection."""
        path = Path(path)
        if path.exists() or path.is_symlink():
            raise FileExistsError(f"{path} exists")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"no such folder: {path.parent}")
        tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            with con:
                con.executemany("INSERT INTO meta VALUES (?, ?)",
                                [(k, str(v)) for k, v in {"app": APP, "schema": SCHEMA_VERSION, **meta}.items()])
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.close()  # the WAL is checkpointed into the file and removed
            os.link(tmp, path)  # never replaces a file another run created meanwhile
        except FileExistsError:
            raise FileExistsError(f"{path} exists (created meanwhile by another run)") from None
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)
        return cls(path)

    def close(self) -> None:
        self.con.close()

    # ------------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: a second writer waits); nested calls join it."""
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        try:
            self.con.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            else:
                self.con.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked too long, read-only file, disk full: one line
            raise OSError(f"{self.path}: {exc} (nothing of this step was saved)") from None
        finally:
            self._depth = 0

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same state (WAL: writers go on meanwhile)."""
        if self._depth:
            yield self.con
            return
        self.con.execute("BEGIN")
        self._depth = 1
        try:
            yield self.con
        finally:
            self._depth = 0
            self.con.execute("COMMIT")

    # ------------------------------------------------------------------ photos and faces
    def root_id(self, path: str, kind: str, photos: str | None = None) -> int:
        """The id of root ``path`` (a folder, or a feature table), added when new; ``photos``: the
        folder its photo paths are relative to (a folder's is itself; a table's is the one it records)."""
        with self.transaction() as con:
            con.execute("INSERT OR IGNORE INTO roots (path, kind, photos) VALUES (?, ?, ?)",
                        (path, kind, path if kind == "folder" else photos))
            return con.execute("SELECT id FROM roots WHERE path = ?", (path,)).fetchone()[0]

    def roots(self) -> dict[int, tuple[str, str, str | None]]:
        """``{id: (path, kind, photo folder)}``."""
        return {i: (p, k, f) for i, p, k, f in self.con.execute("SELECT id, path, kind, photos FROM roots")}

    def photos_of(self, root: int) -> dict[str, tuple]:
        """``{path: (id, hash, size, mtime_ns, status)}`` of a root."""
        return {r[0]: r[1:] for r in self.con.execute(
            "SELECT path, id, hash, size, mtime_ns, status FROM photos WHERE root = ?", (root,))}

    def write_photos(self, root: int, photos: Sequence[PhotoRow], faces: dict[str, list[FaceRow]]) -> int:
        """Write (or replace, with their faces) these photos of ``root`` and their faces, in one
        transaction; returns the number of faces written."""
        n = 0
        with self.transaction() as con:
            for path, digest, size, mtime, status, reason in photos:
                con.execute("DELETE FROM faces WHERE photo IN (SELECT id FROM photos WHERE root = ? AND path = ?)",
                            (root, path))
                con.execute("INSERT INTO photos (root, path, hash, size, mtime_ns, status, reason) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (root, path) DO UPDATE SET hash = excluded.hash, "
                            "size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status, "
                            "reason = excluded.reason", (root, path, digest, size, mtime, status, reason))
                rows = faces.get(path, [])
                if not rows:
                    continue
                photo = con.execute("SELECT id FROM photos WHERE root = ? AND path = ?", (root, path)).fetchone()[0]
                for j, box, kps, score, sharp, front, subject, vector in rows:
                    cur = con.execute(
                        "INSERT INTO faces (photo, face_index, x, y, w, h, keypoints, score, sharpness, frontalness, "
                        "subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (photo, int(j), *(int(v) for v in box), None if kps is None else json.dumps(kps),
                         _real(score), _real(sharp), _real(front), int(bool(subject))))
                    con.execute("INSERT INTO descriptors VALUES (?, ?)",
                                (cur.lastrowid, np.asarray(vector, np.float32).tobytes()))
                    n += 1
        return n

    def touch_photos(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """Record a new modification time (``(id, size, mtime_ns)``) of photos whose content is unchanged."""
        with self.transaction() as con:
            con.executemany("UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?", [(s, m, i) for i, s, m in rows])

    def remove_photos(self, ids: Sequence[int]) -> int:
        """Mark photos gone from their root and delete their faces; returns the faces deleted."""
        with self.transaction() as con:
            n = 0
            for i in ids:
                n += con.execute("DELETE FROM faces WHERE photo = ?", (int(i),)).rowcount
                con.execute("UPDATE photos SET status = 'removed', reason = 'no longer in its folder' WHERE id = ?",
                            (int(i),))
            return n

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(face ids, descriptors)`` of every face, ordered by id (float32), read in chunks."""
        parts = list(self.vector_chunks())
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    @property
    def dim(self) -> int:
        """The descriptor's length."""
        return int(self.meta.get("dim", 0))

    def _matrix(self, blobs: Sequence[bytes]) -> np.ndarray:
        return np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), self.dim)

    def face_stamp(self) -> tuple[int, int]:
        """``(largest face id, number of faces)`` (every face has its descriptor): ids are never
        reused (AUTOINCREMENT), so the faces seen at one stamp are the faces at the same stamp later.
        Counted on the smallest index of ``faces`` (a few bytes a face), not on the descriptors."""
        last = self.con.execute("SELECT max(id) FROM faces").fetchone()[0]
        n = self.con.execute("SELECT count(*) FROM faces").fetchone()[0]
        return int(last or 0), int(n)

    def count_through(self, last: int) -> int:
        """How many faces have an id up to ``last``: all of them but those after it (a range of the
        newest ids, so the cost is that of the faces added since)."""
        after = self.con.execute("SELECT count(*) FROM faces WHERE id > ?", (int(last),)).fetchone()[0]
        return self.face_stamp()[1] - int(after)

    def vector_chunks(self, after: int = 0, where: str = "", chunk: int = 50_000
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(face ids, descriptors)`` of the faces with an id above ``after`` (and ``where``: a fixed
        SQL condition on ``face``), by id, ``chunk`` at a time (memory bounded by the chunk)."""
        last = int(after)
        while True:
            rows = self.con.execute(f"SELECT face, vector FROM descriptors WHERE face > ? {where} ORDER BY face "
                                    "LIMIT ?", (last, chunk)).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            yield ids, self._matrix([r[1] for r in rows])
            last = int(ids[-1])

    def vectors_of(self, faces: Sequence[int]) -> np.ndarray:
        """The descriptors of ``faces`` (ids that exist), in the order given."""
        faces = [int(f) for f in faces]
        found: dict[int, bytes] = {}
        for start in range(0, len(faces), 500):  # SQLite's limit on parameters
            part = faces[start:start + 500]
            found.update(self.con.execute(f"SELECT face, vector FROM descriptors WHERE face IN "
                                          f"({','.join('?' * len(part))})", part))
        return self._matrix([found[f] for f in faces]) if faces else np.zeros((0, self.dim), np.float32)

    def person_vectors(self, person: int) -> np.ndarray:
        """The descriptors of ``person``'s faces, by face id."""
        rows = self.con.execute("SELECT d.vector FROM faces f JOIN descriptors d ON d.face = f.id WHERE f.person = ? "
                                "ORDER BY f.id", (int(person),)).fetchall()
        return self._matrix([r[0] for r in rows]) if rows else np.zeros((0, self.dim), np.float32)

    def face_rows(self) -> list[tuple]:
        """Every face with its photo, ordered by face id: ``(id, root, path, face_index, x, y, w, h,
        keypoints, score, sharpness, frontalness, subject, person, decided_by, photo)``."""
        return self.con.execute(
            "SELECT f.id, p.root, p.path, f.face_index, f.x, f.y, f.w, f.h, f.keypoints, f.score, f.sharpness, "
            "f.frontalness, f.subject, f.person, f.decided_by, f.photo FROM faces f JOIN photos p ON p.id = f.photo "
            "ORDER BY f.id").fetchall()

    def face_rows_of(self, faces: Sequence[int]) -> dict[int, tuple]:
        """``{id: row of :meth:`face_rows`}`` for those of ``faces`` that exist."""
        faces = [int(f) for f in faces]
        out: dict[int, tuple] = {}
        for start in range(0, len(faces), 500):
            part = faces[start:start + 500]
            out.update((r[0], r) for r in self.con.execute(
                "SELECT f.id, p.root, p.path, f.face_index, f.x, f.y, f.w, f.h, f.keypoints, f.score, f.sharpness, "
                "f.frontalness, f.subject, f.person, f.decided_by, f.photo FROM faces f JOIN photos p ON p.id = f.photo "
                f"WHERE f.id IN ({','.join('?' * len(part))})", part))
        return out

    def not_used(self) -> list[tuple[int, str, str, str]]:
        """Photos and files without a face: ``(root, path, status, reason)``."""
        return self.con.execute("SELECT root, path, status, reason FROM photos WHERE status != 'ok' "
                                "ORDER BY root, path").fetchall()

    def photo_file(self, photo: int) -> tuple[str, str] | None:
        """``(photo folder of its root, path)`` of a photo (None: no such photo or no folder known)."""
        row = self.con.execute("SELECT r.photos, p.path FROM photos p JOIN roots r ON r.id = p.root WHERE p.id = ?",
                               (int(photo),)).fetchone()
        return None if row is None or row[0] is None else row

    def face_geometry(self, faces: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes (n, 4), detector scores (NaN: unknown))`` of every face (or of ``faces``), ordered by id."""
        if faces is None:
            rows = self.con.execute("SELECT x, y, w, h, score FROM faces ORDER BY id").fetchall()
        else:
            faces, rows = sorted(int(f) for f in faces), []
            for start in range(0, len(faces), 500):
                part = faces[start:start + 500]
                rows += self.con.execute(f"SELECT x, y, w, h, score FROM faces WHERE id IN ({','.join('?' * len(part))}) "
                                         "ORDER BY id", part).fetchall()
        arr = np.array(rows, dtype=float).reshape(len(rows), 5)
        return arr[:, :4].astype(int), arr[:, 4]

    def unclear_faces(self, score: float, side: int) -> np.ndarray:
        """Ids (ascending) of the faces whose detector score is below ``score`` or whose shorter box
        side is below ``side``; an unknown score (NULL) is not below. Only these rows leave SQLite:
        an add asks for them over the whole collection, and they are few."""
        cur = self.con.execute("SELECT id FROM faces WHERE score < ? OR min(w, h) < ? ORDER BY id", (float(score), int(side)))
        return np.fromiter((r[0] for r in cur), np.int64)

    def face_table_rows(self) -> tuple[list[str], list[tuple]]:
        """``(columns, rows)``: one row per face with its photo, root and person (for a DataFrame)."""
        cur = self.con.execute(
            "SELECT f.id AS face, f.photo, COALESCE(r.photos, r.path) AS root, p.path AS source, f.face_index, f.x, f.y, "
            "f.w, f.h, f.score, f.sharpness, f.frontalness, f.subject, f.person, pe.name, f.decided_by, pe.hidden "
            "FROM faces f JOIN photos p ON p.id = f.photo JOIN roots r ON r.id = p.root "
            "LEFT JOIN people pe ON pe.id = f.person ORDER BY f.id")
        return [c[0] for c in cur.description], cur.fetchall()

    def get_meta(self, key: str) -> str | None:
        """A ``meta`` value (None: not set)."""
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        """Set a ``meta`` value (not ``app``, ``schema`` or ``descriptor``: those make the file what it is)."""
        if key in ("app", "schema", "descriptor"):
            raise ValueError(f"meta {key} is fixed")
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    def stamp(self) -> tuple:
        """Changes whenever the file changes (for caches), in O(1): ``PRAGMA data_version`` moves when
        another connection (or process) commits, ``total_changes`` when this one writes."""
        return self.con.execute("PRAGMA data_version").fetchone()[0], self.con.total_changes

    # ------------------------------------------------------------------ people
    def assignments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(face ids, person (-1: none), placed by the user)`` ordered by face id."""
        # one string of every (id, person) parsed in C: no Python tuple per face (an add reads them all)
        text = self.con.execute("SELECT group_concat(id || ',' || COALESCE(person, -1)) FROM faces").fetchone()[0]
        arr = np.fromstring(text or "", np.int64, sep=",").reshape(-1, 2)
        if np.any(arr[1:, 0] < arr[:-1, 0]):  # in the order SQLite scanned (often the person index)
            arr = arr[np.argsort(arr[:, 0])]
        # the faces the user placed are few, listed apart
        user = np.fromiter((r[0] for r in self.con.execute("SELECT id FROM faces WHERE decided_by = 'user'")), np.int64)
        return arr[:, 0].copy(), arr[:, 1].copy(), np.isin(arr[:, 0], user)

    def assign(self, faces: Sequence[int], person: int | None, by: str | None) -> None:
        """Give ``faces`` to ``person`` (None: to nobody), decided ``by`` ``"auto"`` or ``"user"``."""
        with self.transaction() as con:
            con.executemany("UPDATE faces SET person = ?, decided_by = ? WHERE id = ?",
                            [(person, by, int(f)) for f in faces])

    def assign_free(self, faces: Sequence[int], person: int) -> int:
        """Give ``faces`` to ``person`` automatically, only those still in no person and not placed by
        the user, never against a "not this person", never to a person merged away meanwhile;
        returns how many were given."""
        with self.transaction() as con:
            return con.executemany(
                "UPDATE faces SET person = ?, decided_by = 'auto' WHERE id = ? AND person IS NULL AND decided_by IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM not_person WHERE face = ? AND person = ?) "
                "AND EXISTS (SELECT 1 FROM people WHERE id = ?)",
                [(int(person), f, f, int(person), int(person)) for f in map(int, faces)]).rowcount

    def reset_auto(self) -> None:
        """Undo every automatic assignment and drop the people left with no face, no name and not hidden."""
        with self.transaction() as con:
            con.execute("UPDATE faces SET person = NULL, decided_by = NULL WHERE decided_by = 'auto'")
            con.execute("DELETE FROM people WHERE name IS NULL AND hidden = 0 AND id NOT IN "
                        "(SELECT person FROM faces WHERE person IS NOT NULL)")

    def faces_of(self, person: int) -> list[int]:
        """The face ids of ``person``."""
        return [r[0] for r in self.con.execute("SELECT id FROM faces WHERE person = ? ORDER BY id", (int(person),))]

    def persons_of(self, faces: Sequence[int]) -> dict[int, int | None]:
        """``{face: person or None}`` for those of ``faces`` that exist."""
        faces = [int(f) for f in faces]
        out: dict[int, int | None] = {}
        for start in range(0, len(faces), 500):  # SQLite's limit on parameters
            part = faces[start:start + 500]
            out.update(self.con.execute(f"SELECT id, person FROM faces WHERE id IN ({','.join('?' * len(part))})", part))
        return out

    def new_person(self, name: str | None = None) -> int:
        """A new person's id (ids are never reused: AUTOINCREMENT)."""
        with self.transaction() as con:
            return con.execute("INSERT INTO people (name, created) VALUES (?, ?)", (name, time.time())).lastrowid

    def people(self) -> list[tuple]:
        """``(id, name, hidden, faces, photos)`` of every person, by id."""
        return self.con.execute(
            "SELECT pe.id, pe.name, pe.hidden, COUNT(f.id), COUNT(DISTINCT f.photo) FROM people pe "
            "LEFT JOIN faces f ON f.person = pe.id GROUP BY pe.id ORDER BY pe.id").fetchall()

    def person(self, person: int) -> tuple | None:
        """``(id, name, hidden)`` or None."""
        return self.con.execute("SELECT id, name, hidden FROM people WHERE id = ?", (int(person),)).fetchone()

    def update_person(self, person: int, **values) -> None:
        """Set ``name`` and/or ``hidden`` of a person."""
        with self.transaction() as con:
            for key, value in values.items():
                if key not in ("name", "hidden"):
                    raise ValueError(f"unknown column {key}")
                con.execute(f"UPDATE people SET {key} = ? WHERE id = ?", (value, int(person)))

    def delete_person(self, person: int) -> None:
        """Delete a person who holds no face (merged into another)."""
        with self.transaction() as con:
            con.execute("DELETE FROM people WHERE id = ? AND NOT EXISTS (SELECT 1 FROM faces WHERE person = ?)",
                        (int(person), int(person)))

    def forbid(self, faces: Sequence[int], person: int) -> None:
        """Record that ``faces`` are not ``person`` (never attached there again automatically)."""
        with self.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO not_person VALUES (?, ?)", [(int(f), int(person)) for f in faces])

    def forbidden(self) -> set[tuple[int, int]]:
        """Every ``(face, person)`` the user said is not that person."""
        return set(self.con.execute("SELECT face, person FROM not_person"))

    def log(self, kind: str, person=None, other=None, faces=(), value=None) -> None:
        """Append a user decision to ``decisions``."""
        if kind not in DECISIONS:
            raise ValueError(f"unknown decision {kind!r}")
        with self.transaction() as con:
            con.execute("INSERT INTO decisions (at, kind, person, other, faces, value) VALUES (?, ?, ?, ?, ?, ?)",
                        (time.time(), kind, person, other, json.dumps([int(f) for f in faces]) if len(faces) else None,
                         value))

    def last_decision(self) -> int:
        """The id of the last user decision (0: none)."""
        return int(self.con.execute("SELECT COALESCE(max(id), 0) FROM decisions").fetchone()[0])

    def decisions(self) -> list[tuple]:
        """The decisions log: ``(id, at, kind, person, other, faces, value)``."""
        return self.con.execute("SELECT id, at, kind, person, other, faces, value FROM decisions ORDER BY id").fetchall()


def _real(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
