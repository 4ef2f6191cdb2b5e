"""The nearest-neighbour index beside a collection (``people.db.faiss``) and the galleries the two
phases and search look people up in.

The database is the truth. The index file (magic, FAISS bytes, a JSON header, its length) records what it covers: the largest face id and the
number of faces at that point (ids are never reused, so that pair names one set of faces), the
descriptor, and a CRC of the FAISS bytes. At every use it is checked against the database: faces
added since are appended; a face removed since (the covered count no longer matches), another
descriptor, an unreadable, truncated or corrupted file, or a missing one: rebuilt from the
descriptors, read in chunks. It is written atomically (a temporary file renamed over it) after a
rebuild or once :data:`SAVE_AFTER` more faces were appended; a folder that cannot be written keeps
it in memory only.

Up to :data:`FLAT_UP_TO` faces it is a flat index; above, a FAISS HNSW graph
(``IndexHNSWFlat``, :data:`HNSW_M` links, searched with :data:`EF_SEARCH`), which new faces join
without retraining and which keeps the float32 vectors. An add's searches scan every face of those
vectors (and of the faces appended since, which wait beside the graph until it is walked or
written), exact at every size; the graph answers a search's few faces. IVF-Flat (as the graph clustering uses) was tried first and dropped, and the graph is not
used for adds: the add's rule needs each face's 64 nearest faces in a person, which on face
descriptors lie near the same-person distance, far neighbours (on rotated LFW copies the exact 64
needed a third of an IVF's lists probed, median; the graph changed 1,862 of 10,000 decisions of an
add at 1M faces against the flat index: docs/collection.md).
"""
from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["FLAT_UP_TO", "HNSW_M", "EF_SEARCH", "EXACT_FROM", "SAVE_AFTER", "FaceIndex", "ArrayGallery", "IndexGallery"]

#: Faces up to which the index is exact (a flat pass costs an add O(new x n): above, a graph).
FLAT_UP_TO = 50_000
#: Links per face of the HNSW graph, and the candidates kept while building it.
HNSW_M, EF_CONSTRUCTION = 32, 80
#: Candidates kept while searching the graph (at least the 256 an add asks per face).
EF_SEARCH = 256
#: Searches of this many faces or more (an add's) scan every face instead of walking the graph: the
#: add's rule hinges on neighbours about the same-person distance away, which the graph misses often
#: enough to change decisions (1M faces: 1,862 of 10,000 against the flat index); a search's few
#: faces take the graph (3.9 ms a query at 1M).
EXACT_FROM = 64
#: The file is written again once the faces appended since it was written pass this share of the
#: faces it holds (or when rebuilt): an add of 1 % does not rewrite a million faces; the next use
#: appends the faces it lacks from the database, as after any add of another process.
SAVE_AFTER = 0.1
_MAGIC = b"VLFAISS1"


#: Searches of fewer faces (or, in the flat index, of fewer distances) run on one thread: they gain
#: nothing from more, and OpenMP's threads waiting for a busy core made one HNSW query of 100k faces
#: 7.5 ms instead of 0.6 ms.
ONE_THREAD_BELOW, ONE_THREAD_FLAT_BELOW = 64, 20_000_000


def _faiss(threads: int | None = None):
    import faiss

    from ..config import n_jobs

    faiss.omp_set_num_threads(threads or n_jobs(None))
    return faiss


class FaceIndex:
    """The FAISS index of a collection's faces, kept in step with its store (:meth:`sync`) and
    searched by face id (:meth:`search`)."""

    def __init__(self, db_path: str | os.PathLike):
        self.file = Path(f"{db_path}.faiss")
        self.index = None
        self.covers = (0, 0)  # (largest face id, faces) the index holds
        self.trained_on = 0
        self.kind = ""
        self.saved = 0  # faces held by the file as last read or written
        self._id_rows: np.ndarray | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # appended faces the graph has not taken yet
        self._all: tuple | None = None  # (ids, vectors, order by id or None) of every face, as scanned
        self.last_action = ""  # "loaded", "appended", "rebuilt", "" (already in step): for tests and reports

    # ------------------------------------------------------------------ keeping in step
    def sync(self, store) -> "FaceIndex":
        """Bring the index in step with ``store`` (loaded from its file, appended to or rebuilt)."""
        self.last_action = ""
        now = store.face_stamp()
        if self.index is not None and self.covers == now:
            return self
        if self.index is None:
            self._load(store)
            if self.index is not None and self.covers == now:
                self.last_action = "loaded"
                return self
        last, count = self.covers
        appendable = (self.index is not None and last <= now[0] and store.count_through(last) == count
                      and self._kind_for(now[1]) == self.kind)
        if appendable:
            for ids, X in store.vector_chunks(after=last):
                self._append(ids, X)
            self.last_action = "appended"
        else:
            self._build(store, now[1])
            self.last_action = "rebuilt"
        self.covers = now
        if self.last_action == "rebuilt" or now[1] - self.saved > SAVE_AFTER * self.saved:
            self._save(store)
        return self

    def _append(self, ids: np.ndarray, X: np.ndarray) -> None:
        """New faces: into a flat index at once; a graph takes them when it is next walked or written
        (:meth:`_flush`). An add only scans: inserting 10,000 faces into a graph of a million took
        2 s, thrown away when the add does not write the file (:data:`SAVE_AFTER`)."""
        if self.kind == "hnsw":
            self._pending.append((ids, X))
        else:
            self.index.add_with_ids(X, ids)
        self._all = None

    def _flush(self) -> None:
        """The faces kept aside by :meth:`_append` into the graph."""
        for ids, X in self._pending:
            self.index.add_with_ids(X, ids)
        self._pending, self._all = [], None

    @staticmethod
    def _kind_for(n: int) -> str:
        return "flat" if n <= FLAT_UP_TO else "hnsw"

    def _build(self, store, n: int) -> None:
        faiss = _faiss()
        d = store.dim
        self.kind = self._kind_for(n)
        self._id_rows = None
        if self.kind == "flat":
            self.index = faiss.IndexIDMap2(faiss.IndexFlatL2(d))
        else:
            graph = faiss.IndexHNSWFlat(d, HNSW_M)
            graph.hnsw.efConstruction = EF_CONSTRUCTION
            self.index = faiss.IndexIDMap2(graph)
            self._tune()
        self.trained_on = n
        self._pending, self._all = [], None
        for ids, X in store.vector_chunks():
            self.index.add_with_ids(X, ids)

    def _load(self, store) -> None:
        """The saved index when it is whole and of this collection's descriptor; else none (rebuilt).
        Layout: magic, the FAISS bytes, a JSON header, the header's length (4 bytes): streamed both
        ways, so the index is never held twice in memory."""
        try:
            with open(self.file, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < 12 or f.read(8) != _MAGIC:
                    raise ValueError("not an index file")
                f.seek(size - 4)
                n = struct.unpack("<I", f.read(4))[0]
                body = size - 4 - n - 8
                if body < 0:
                    raise ValueError("truncated")
                f.seek(8 + body)
                head = json.loads(f.read(n))
                if head["descriptor"] != store.meta.get("descriptor") or head["dim"] != store.dim:
                    raise ValueError("another descriptor")
                f.seek(8)
                crc, left = 0, body
                while left:  # the checksum before FAISS reads a byte of it
                    chunk = f.read(min(left, 1 << 24))
                    crc, left = zlib.crc32(chunk, crc), left - len(chunk)
                if crc != head["crc"]:
                    raise ValueError("checksum differs")
                f.seek(8)
                faiss = _faiss()
                index = faiss.read_index(faiss.PyCallbackIOReader(f.read))
            if index.ntotal != head["covers"][1]:
                raise ValueError("face count differs")
        except FileNotFoundError:
            return
        except Exception as exc:  # noqa: BLE001 - any damage: the database is the truth, rebuild
            print(f"{self.file}: unreadable ({str(exc)[:80]}); rebuilding it from the collection", file=sys.stderr)
            return
        self.index, self.covers, self.kind, self.trained_on = index, tuple(head["covers"]), head["kind"], head["trained_on"]
        self.saved = self.covers[1]
        self._id_rows, self._pending, self._all = None, [], None
        self._tune()

    def _tune(self) -> None:
        if self.kind == "hnsw":
            _faiss().downcast_index(self.index.index).hnsw.efSearch = EF_SEARCH

    def _save(self, store) -> None:
        self._flush()
        tmp = self.file.with_name(f".{self.file.name}.part-{os.getpid()}")
        crc = 0
        try:
            with open(tmp, "wb") as f:
                def write(chunk: bytes) -> None:
                    nonlocal crc
                    crc = zlib.crc32(chunk, crc)
                    f.write(chunk)

                f.write(_MAGIC)
                faiss = _faiss()
                faiss.write_index(self.index, faiss.PyCallbackIOWriter(write))
                head = json.dumps({"covers": list(self.covers), "kind": self.kind, "trained_on": self.trained_on,
                                   "descriptor": store.meta.get("descriptor"), "dim": store.dim, "crc": crc}).encode()
                f.write(head + struct.pack("<I", len(head)))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.file)
            self.saved = self.covers[1]
        except OSError:  # a read-only folder: the index lives in memory only
            tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ searching
    @property
    def ntotal(self) -> int:
        """Faces the index holds (a graph's and those it has not taken yet)."""
        return int(self.index.ntotal) + sum(len(p[0]) for p in self._pending)

    def _ids(self) -> np.ndarray:
        """Face id of each row of the index's storage (kept until the index grows)."""
        if self._id_rows is None or len(self._id_rows) != self.index.ntotal:
            self._id_rows = _faiss().vector_to_array(self.index.id_map)
        return self._id_rows

    def faces(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(face ids, blocks of descriptors)`` of every face the index holds, in the order a scan
        sees them: the index's own float32 vectors (not a copy), then the faces a graph has not
        taken yet (one array): the same rows, in the same order, as a flat index of the same faces.
        Not concatenated: at 1M faces that copy (512 MB) cost an add 1.4 s."""
        if self._all is None or len(self._all[0]) != self.ntotal:  # the index grew: its storage may have moved
            faiss = _faiss()
            inner = self.index.index if self.kind == "flat" else faiss.downcast_index(self.index.index).storage
            flat = faiss.downcast_index(inner)
            blocks = [faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)]
            ids = self._ids()
            if self._pending:
                blocks.append(np.concatenate([p[1] for p in self._pending]))
                ids = np.concatenate([ids] + [np.asarray(p[0], np.int64) for p in self._pending])
            # by id as built and appended (else the order that sorts them, for vectors_of)
            self._all = (ids, blocks, None if np.all(ids[1:] > ids[:-1]) else np.argsort(ids, kind="stable"))
        return self._all[:2]

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The descriptors of faces ``ids`` (faces the index holds; those the database holds for them:
        the index is kept in step with it), in the order given."""
        return self.vectors_at(self.rows_of(ids))

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The rows of faces ``ids`` in the order a scan sees them (for :meth:`vectors_at`)."""
        self.faces()  # in step with the index's rows
        held, _, order = self._all
        ids = np.asarray(ids, np.int64)
        rows = np.searchsorted(held, ids) if order is None else order[np.searchsorted(held[order], ids)]
        rows = np.minimum(rows, len(held) - 1)
        if len(ids) and np.any(held[rows] != ids):
            raise KeyError("faces the index does not hold")
        return rows

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """The descriptors of the faces at ``rows`` (of :meth:`rows_of`, while the index holds the same faces)."""
        blocks = self.faces()[1]
        first = len(blocks[0])
        if len(blocks) == 1 or not len(rows) or rows.max() < first:
            return blocks[0][rows]
        later = rows >= first
        out = np.empty((len(rows), blocks[0].shape[1]), np.float32)
        out[~later], out[later] = blocks[0][rows[~later]], blocks[1][rows[later] - first]
        return out

    @staticmethod
    def _scan(Q: np.ndarray, blocks: list[np.ndarray], k: int, faiss) -> tuple[np.ndarray, np.ndarray]:
        """``faiss.knn`` of ``Q`` over the rows of ``blocks`` as if one array (squared distances,
        row numbers, ascending): each block scanned apart, the answers merged by (distance, row),
        the order FAISS keeps among equal distances (its heaps break ties by the lower row): each
        block's answer is in that order and the blocks' rows follow each other, so a stable sort
        by distance alone merges them."""
        found, start = [], 0
        for X in blocks:
            if len(X):
                D, rows = faiss.knn(Q, X, min(k, len(X)))
                found.append((np.where(rows >= 0, D, np.inf), np.where(rows >= 0, rows + start, np.iinfo(np.int64).max)))
            start += len(X)
        if len(found) == 1:
            return found[0]
        D, rows = (np.concatenate(part, axis=1) for part in zip(*found))
        best = np.argsort(D, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(D, best, axis=1), np.take_along_axis(rows, best, axis=1)

    def search(self, Q: np.ndarray, k: int, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, face ids)`` of the ``k`` nearest faces of each row of ``Q``, ascending
        (Euclidean; ``inf`` / ``-1`` where fewer were found). ``exact``: scan every face (None:
        when ``Q`` has :data:`EXACT_FROM` rows or more, an add's batch)."""
        Q = np.ascontiguousarray(Q, np.float32)
        total = self.ntotal
        k = min(int(k), total)
        if k == 0 or not len(Q):
            return np.full((len(Q), max(k, 0)), np.inf, np.float32), np.full((len(Q), max(k, 0)), -1, np.int64)
        small = len(Q) < ONE_THREAD_BELOW or (self.kind == "flat" and len(Q) * total < ONE_THREAD_FLAT_BELOW)
        faiss = _faiss(1 if small else None)
        if exact or (exact is None and len(Q) >= EXACT_FROM):
            # an add's batch: every face scanned (a graph's own float32 vectors, then those it has
            # not taken yet: a flat index's rows, in the order one scan of them gives), so the add
            # decides as the flat index would; the graph answers the few faces of a search
            held, blocks = self.faces()
            D, rows = self._scan(Q, blocks, k, faiss)
            ids = np.where((rows >= 0) & (rows < len(held)), held[np.clip(rows, 0, len(held) - 1)], -1)
        else:
            self._flush()
            D, ids = self.index.search(Q, k)
        D = np.sqrt(np.maximum(D, 0))
        D[ids < 0] = np.inf
        return D, ids


class ArrayGallery:
    """People's faces held in memory (``X`` rows, ``person`` per row, all >= 0): exact search."""

    def __init__(self, X: np.ndarray, person: np.ndarray):
        self.X, self.person = np.asarray(X, np.float32), np.asarray(person)

    def __len__(self) -> int:
        return len(self.X)

    def nearest(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(distances, person per neighbour, distance beyond which faces were not looked at)``."""
        from .assign import nearest

        dist, idx = nearest(Q, self.X, k)
        far = dist[:, -1] if dist.shape[1] else np.full(len(Q), np.inf, np.float32)
        return dist, self.person[idx], far

    def sizes(self) -> dict[int, int]:
        return dict(zip(*(v.tolist() for v in np.unique(self.person, return_counts=True))))

    def vectors_of(self, person: int) -> np.ndarray:
        return self.X[self.person == person]


class IndexGallery:
    """The assigned faces of a collection through its :class:`FaceIndex`: ``fid`` (sorted face ids)
    and ``person`` (per face, ``-1``: none; a gallery is made again after the caller assigns faces:
    its sizes are counted once); ``person_vectors`` reads a person's descriptors from the store for
    the exact checks; ``known``: see :meth:`neighbours`."""

    #: Neighbours asked of the index per candidate wanted (the index also holds faces in no person).
    WIDEN = 4
    #: Rows of one search whose answers are kept for the next (a search of more is not kept: memory).
    REMEMBER = 100_000

    def __init__(self, index: FaceIndex, fid: np.ndarray, person: np.ndarray,
                 person_vectors: Callable[[int], np.ndarray], known: dict | None = None):
        self.index, self.fid, self.person, self.person_vectors = index, fid, person, person_vectors
        self._members: dict[int, np.ndarray] = {}
        self._sizes: dict[int, int] | None = None
        self._by_id: np.ndarray | None = None
        self._known = known  # row bytes -> (distances, ids) of the index's answers, shared between galleries

    def __len__(self) -> int:
        self.sizes()
        return self._count

    def neighbours(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The index's ``k`` nearest faces of each row of ``Q`` (any person or none). With ``known``
        (a dict shared by the galleries of one add), rows asked before with at least ``k`` are
        answered from it and the others searched once and kept (up to :data:`REMEMBER` rows at a
        time): the phases of an add ask about the same new faces."""
        Q = np.ascontiguousarray(Q, np.float32)
        if self._known is None or not len(Q) or len(Q) > self.REMEMBER:
            return self.index.search(Q, k)
        # an add's: exact however few rows are missing (the older faces a second search asks about)
        keys = [q.tobytes() for q in Q]
        want = min(k, self.index.ntotal)
        missing = [i for i, key in enumerate(keys) if key not in self._known or len(self._known[key][0]) < want]
        if missing:
            D, ids = self.index.search(Q[missing], k, exact=True)
            for i, d, j in zip(missing, D, ids):
                self._known[keys[i]] = (d, j)
        got = [self._known[key] for key in keys]
        return np.array([g[0][:want] for g in got]), np.array([g[1][:want] for g in got])

    def persons_of(self, ids: np.ndarray) -> np.ndarray:
        """The person of each face id (``-1``: none, or not a face any more)."""
        if self._by_id is None:  # one array by face id (ids are dense: AUTOINCREMENT), not a search per id
            top = int(self.fid[-1]) if len(self.fid) else 0
            self._by_id = np.full(top + 1, -1, np.int64)
            self._by_id[self.fid] = self.person
        ids = np.asarray(ids, np.int64)
        ok = (ids >= 0) & (ids < len(self._by_id))
        return np.where(ok, self._by_id[np.where(ok, ids, 0)], -1)

    def nearest(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`ArrayGallery.nearest`, among the faces in a person: the index's ``WIDEN * k``
        nearest faces, those in no person dropped; ``far``: no face in a person that was not
        returned is nearer."""
        D, ids = self.neighbours(Q, self.WIDEN * k)
        p = self.persons_of(ids)
        keep = p >= 0
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # assigned first, distance order kept
        dist = np.take_along_axis(np.where(keep, D, np.inf), order, axis=1)
        # Faces not looked at are at least this far: the farthest returned, unless k assigned faces
        # were kept, then the k-th of them (those between it and the farthest were cut, not absent;
        # a person's face among them is nearer than the farthest, so that bound would be too high).
        far = D[:, -1] if D.shape[1] else np.full(len(Q), np.inf, np.float32)
        if dist.shape[1] == k and k:
            far = np.where(np.isfinite(dist[:, -1]), dist[:, -1], far)
        return dist, np.take_along_axis(p, order, axis=1), far

    def sizes(self) -> dict[int, int]:
        if self._sizes is None:  # once per gallery: a search or a phase asks it for every face
            p = self.person[self.person >= 0]
            self._sizes = dict(zip(*(v.tolist() for v in np.unique(p, return_counts=True))))
            self._count = len(p)
        return self._sizes

    def vectors_of(self, person: int) -> np.ndarray:
        if person not in self._members:
            self._members[person] = self.person_vectors(person)
        return self._members[person]
