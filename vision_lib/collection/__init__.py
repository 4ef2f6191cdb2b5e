"""A face collection that grows: photos added as they come, people that keep their ids and names,
search by face. One SQLite file (:mod:`vision_lib.store`; schema and workflow in docs/collection.md).

::

    from vision_lib import Collection

    people = Collection("people.db")          # created on the first add
    people.add(["photos/2026"])               # new photos join the people they are, the rest form new people
    people.name(3, "Ada")                     # every decision is saved at once
    people.merge(3, 7); people.hide(9)
    people.search("new.jpg")                  # who is in it, and where else they appear
    people.to_table(); people.dataframe()     # to the other stages

An add never renumbers or renames people and never moves a face the user placed; only
:meth:`Collection.recluster` (explicit) regroups the automatic assignments from scratch, still
keeping every user decision.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..store import SQLiteStore, check_file, file_handle
from .assign import CALIBRATION_PEOPLE, CANDIDATES, attach, calibrate, group_new, person_distances, rule_from_state, rule_state
from .indexing import BATCH, AddReport, add_inputs, root_of
from .neighbours import FaceIndex, IndexGallery

__all__ = ["Collection", "Person", "AddReport", "LOCAL_K", "SEARCH_TOP"]

#: Faces of a person the local test averages over (the hybrid clustering's core size: no new constant).
LOCAL_K = 5
#: Matches a search returns per face by default.
SEARCH_TOP = 10


@dataclass(frozen=True)
class Person:
    """One person of a collection: ``id`` (never reused or renumbered), ``name`` (None until the
    user names them), ``hidden`` ("not a person of interest"), and counts of faces and photos."""

    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int


class Collection:
    """A face collection in one SQLite file.

    Args:
        path: the ``.db`` file; created by the first :meth:`add` when missing (nothing else
            creates it). An existing file is checked read-only first: anything that is not a
            collection of this release (and, with ``descriptor``, of that descriptor) is refused
            with one line (``ValueError``) and left as it was.
        descriptor, detector: the models of a new collection (None: the defaults; a collection
            keeps the ones it was made with).
    """

    def __init__(self, path: str | os.PathLike, *, descriptor: str | None = None, detector: str | None = None):
        from ..models import get_descriptor

        self.path = Path(path)
        self._descriptor = descriptor
        self._detector = detector
        self._store: SQLiteStore | None = None
        self._cache: tuple | None = None
        self._nn = FaceIndex(self.path)  # people.db.faiss, kept in step with the file
        if self.path.exists() or self.path.is_symlink():
            self._open(None if descriptor is None else get_descriptor(descriptor).id)
            if detector is not None and detector != self.detector:
                raise ValueError(f"{self.path} is a collection of detector {self.detector}, not {detector} "
                                 "(its faces stay comparable only with its own models)")

    # ------------------------------------------------------------------ the file
    def _open(self, descriptor_id: str | None) -> None:
        self._store = SQLiteStore(self.path, descriptor_id)

    @property
    def store(self) -> SQLiteStore:
        """The open store; a missing file is a clear error (only :meth:`add` creates one)."""
        if self._store is None:
            if not self.path.exists():
                raise FileNotFoundError(f"no such collection: {self.path} (make one with `vision-lib index PHOTOS --db "
                                        f"{self.path}`)")
            self._open(None)
        return self._store

    def _create(self, descriptor: str | None) -> None:
        from ..models import DEFAULT_DETECTOR, get_descriptor

        model = get_descriptor(descriptor)
        meta = {"descriptor": model.id, "descriptor_name": model.name, "dim": model.dim,
                "threshold": model.threshold, "detector": self._detector or DEFAULT_DETECTOR}
        try:
            self._store = SQLiteStore.create(self.path, meta)
        except FileExistsError:  # another run created it meanwhile: use it (checked like any file)
            self._open(model.id)

    @property
    def descriptor(self) -> str:
        """The name of the collection's descriptor."""
        return self.store.meta["descriptor_name"]

    @property
    def detector(self) -> str:
        """The name of the collection's detector."""
        return self.store.meta["detector"]

    @property
    def same_person_distance(self) -> float:
        """The descriptor's same-person distance the local test uses."""
        return float(self.store.meta["threshold"])

    def close(self) -> None:
        """Close the file (also done when the object is collected)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _writer(self, wait: bool, quiet: bool) -> Iterator[None]:
        """One add (or recluster) at a time per file: an advisory lock on the file itself (SQLite's
        own locks are per transaction; two adds interleaving batches would extract photos twice)."""
        fd, local = file_handle(self.path)
        if not local.acquire(blocking=False):  # another Collection of this process is adding
            if not wait:
                raise BlockingIOError(f"another run is adding to {self.path}; try again when it has finished")
            local.acquire()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise BlockingIOError(f"another run is adding to {self.path}; try again when it has finished") from None
                if not quiet:
                    print(f"{self.path}: another run is adding to this collection; waiting for it to finish",
                          file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            local.release()

    # ------------------------------------------------------------------ adding
    def add(self, inputs: str | os.PathLike | Sequence[str | os.PathLike], *, n_jobs: int | None = None,
            progress: bool = True, batch: int = BATCH, wait: bool = True) -> AddReport:
        """Add folders, photos or descriptor tables (``vision-lib features --kind descriptor``), then
        assign the faces in no person (:mod:`vision_lib.collection.assign`).

        Unchanged photos are skipped, changed ones re-read, photos gone from a folder given whole
        removed; every file is accounted for in the returned :class:`AddReport` (and in the
        ``photos`` table). Resumable: a run stopped anywhere keeps its committed batches and the same
        call goes on. A second add on the same file waits (``wait=False``: ``BlockingIOError``)."""
        inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        kinds = [root_of(i) for i in inputs]  # every input checked before the file is created
        if self._store is None and not self.path.exists():
            self._create(self._table_descriptor(inputs, kinds))
        if any(kind != "table" for _, kind in kinds):
            self._check_model()
        with self._writer(wait, quiet=not progress):
            report = add_inputs(self.store, inputs, detector=self.detector, descriptor=self.descriptor,
                                n_jobs=n_jobs, progress=progress, batch=batch)
            report.attached, report.grouped, report.new_people = self._assign(progress)
        self._cache = None
        return report

    def _check_model(self) -> None:
        """Refuse to describe photos with another model than the collection's: the same name can
        compute other descriptors (``arcface`` with another file), which would never match its faces."""
        from ..models import get_descriptor

        now, mine = get_descriptor(self.descriptor).id, self.store.meta["descriptor"]
        if now != mine:
            raise ValueError(f"{self.path}: a collection of descriptor {mine}, but {self.descriptor} computes {now} "
                             "here (one collection, one descriptor: use the model file it was made with)")

    def _table_descriptor(self, inputs, kinds) -> str | None:
        """The descriptor a new collection takes: the one asked for, else the feature tables' (all
        alike, and known to this release), else None (the default); checked before the file exists."""
        from ..models import get_descriptor
        from ..tables import load_descriptor_table

        wanted = None if self._descriptor is None else get_descriptor(self._descriptor).id
        name = self._descriptor
        for item, (_, kind) in zip(inputs, kinds):
            if kind != "table":
                continue
            table = load_descriptor_table(item, "a collection")
            found = str(table.settings.get("descriptor"))
            if table.descriptor is None:
                raise ValueError(f"{item} holds descriptors {found}, which this vision_lib does not know")
            if wanted is not None and found != wanted:
                raise ValueError(f"{item} holds descriptors {found}, not {wanted} (one collection, one descriptor)")
            wanted, name = found, table.descriptor
        return name

    def recluster(self, *, progress: bool = True, wait: bool = True) -> AddReport:
        """Regroup every automatic assignment from scratch (an explicit action; adds never do it):
        people who keep no face the user placed, no name and are not hidden are dropped, their
        faces and every other automatic one are assigned again by the two phases. User-placed faces,
        names, hidden people and "not this person" decisions stay."""
        report = AddReport()
        with self._writer(wait, quiet=not progress), self.store.transaction():
            self.store.reset_auto()
            report.attached, report.grouped, report.new_people = self._assign(progress, everything=True)
        self._cache = None
        return report

    def _assign(self, progress: bool, everything: bool = False) -> tuple[int, int, int]:
        """The two phases over the faces in no person (and not left so by the user) that came since
        the last assignment (``meta.assigned_through``: a run killed before assigning leaves its
        faces to the next), with the older such faces within the same-person distance of them
        (``everything``: over all of them). Planned on a snapshot, then written in one short
        transaction that skips any face the user placed meanwhile (decisions never wait for a
        clustering). Returns (faces joined to existing people, faces grouped into new people, new people)."""
        plan, through, rule = self._plan(progress, everything)
        attached = grouped = new_people = 0
        store = self.store
        with store.transaction():
            for faces, target in plan:
                new = target is None
                if new:
                    target = store.new_person()
                    new_people += 1
                done = store.assign_free(faces, target)  # the user may have placed some meanwhile
                if new:
                    grouped += done
                else:
                    attached += done
            store.set_meta("assigned_through", str(through))
        if rule is None and store.get_meta("openset") is None and plan:  # the first people: calibrate on them
            rule = self._calibrate(*store.assignments()[:2])
        if rule is not None:  # what search states its stranger rates with
            store.set_meta("openset", rule_state(rule))
        return attached, grouped, new_people

    def _plan(self, progress: bool, everything: bool) -> tuple[list[tuple[np.ndarray, int | None]], int, object]:
        """``([(face ids, person or None for a new one)], last face id covered, the open-set rule
        calibrated on the people as they were)`` from one snapshot."""
        store = self.store
        with store.snapshot():
            fid, person, user = store.assignments()
            through = store.get_meta("assigned_through")
            forbidden: dict[int, set[int]] = {}
            for f, p in store.forbidden():
                forbidden.setdefault(f, set()).add(p)
            index = self._nn.sync(store)  # in the same snapshot: the index holds exactly these faces
            saved = store.get_meta("openset")
            decided = store.last_decision()
            clear = self._clear_mask(fid)
        last = int(fid.max(initial=0))
        free = (person < 0) & ~user
        todo = free & ((fid > int(through)) if through and not everything else True)
        t = self.same_person_distance
        if not todo.any():
            return [], last, None
        wide = IndexGallery.WIDEN * CANDIDATES
        known: dict = {}  # one index search per face for the whole add (both phases ask about the same faces)
        Xq = index.vectors_of(fid[todo])  # the index holds exactly the faces of this snapshot
        if (free & ~todo).any():  # unassigned faces the new ones may now complete into a person
            dist, near = IndexGallery(index, fid, person, store.person_vectors, known).neighbours(Xq, wide)
            dist, near = dist[:, :CANDIDATES], near[:, :CANDIDATES]
            near = np.unique(near[(dist < t) & (near >= 0)])
            pos = np.searchsorted(fid, near)
            older = pos[free[pos] & ~todo[pos]]
            if len(older):
                todo[older] = True
                Xq = index.vectors_of(fid[todo])
        rule = self._rule(fid, person, saved, decided)
        rows = np.flatnonzero(todo)
        found = np.full(len(rows), -1, np.int64)

        # People are known by their clear faces (cluster.core_faces: those IdentityClustering builds
        # its cores of, and attaches the others to): an unsure detection (crowd, a hand, blur) is no
        # one's face, and a person holding some would take in every new one (assign.py).
        before = person.copy()  # as in the file; this add's own attachments are found below

        clear_faces_of = _clear_faces(before, clear)
        index_rows = index.rows_of(fid)  # the index's row of each face

        # a person's clear faces: in the file (the index's copy of their descriptors, in step with it:
        # a query per person cost an add at 1M faces 3.6 s), and those this add gave it
        added: dict[int, np.ndarray] = {}  # this add's clear faces per person, once phase 1 found them
        held: dict[int, np.ndarray] = {}  # for both phases (those phase 1 adds to are read again)

        def vectors_of(p: int) -> np.ndarray:
            if p not in held:
                held[p] = np.concatenate([index.vectors_at(index_rows[clear_faces_of(p)]), added.get(p, Xq[:0])])
            return held[p]

        limit = None if rule is None else rule.threshold_
        gallery = IndexGallery(index, fid, np.where(clear, person, -1), vectors_of, known)
        found[:] = attach(Xq, gallery, t, LOCAL_K, forbidden=[forbidden.get(int(f)) for f in fid[rows]], limit=limit,
                          unsure=~clear[rows])
        plan = []
        for p in np.unique(found[found >= 0]).tolist():
            plan.append((fid[rows[found == p]], p))
            added[p] = Xq[(found == p) & clear[rows]]
            held.pop(p, None)
        person[rows] = found  # the gallery's persons too
        gallery = IndexGallery(index, fid, np.where(clear, person, -1), vectors_of, known)  # no person's faces cached
        rest = found < 0
        mask = clear[rows[rest]] if rest.any() else None  # the confident faces build the new groups' cores
        labels, joins = group_new(Xq[rest], gallery, t, LOCAL_K, descriptor=self.descriptor,
                                  core_mask=mask, limit=limit, progress=progress,
                                  group_limits=None if rule is None else rule.group_thresholds_)
        for g, target in enumerate(joins):
            members = fid[rows[rest][labels == g]]
            if target < 0 or any(int(target) in forbidden.get(int(f), ()) for f in members):
                plan.append((members, None))
            else:
                plan.append((members, int(target)))
        return plan, last, rule

    def _calibrate(self, fid: np.ndarray, person: np.ndarray, decided: int | None = None):
        """The open-set rule on the people as they are (only the faces it samples are read), with
        what :meth:`_rule` compares later: people of two faces or more, the last decision."""
        known = person >= 0

        def confident(rows: np.ndarray) -> np.ndarray:  # clear faces only calibrate (assign.calibrate)
            ids = fid[known][rows]
            order = np.argsort(ids, kind="stable")
            boxes, scores = self.store.face_geometry(ids)  # by id
            out = np.zeros(len(ids), bool)
            out[order] = self._core_mask(np.zeros((len(ids), 0)), boxes, scores)
            return out

        rule = calibrate(lambda r: self.store.vectors_of(fid[known][r]), person[known], LOCAL_K, confident=confident)
        if rule is not None:
            rule.people_, rule.decided_ = _eligible(person), self.store.last_decision() if decided is None else decided
        return rule

    def _rule(self, fid: np.ndarray, person: np.ndarray, saved: str | None, decided: int):
        """The rule saved by the last add while the people it was calibrated on still stand: no user
        decision since, and as many people of two faces (or, past the people calibration samples,
        fewer than a quarter more). Calibrating costs seconds whatever the size: an add of a few
        faces would spend most of its time there."""
        rule = rule_from_state(saved)
        # (a rule saved without the group limits, by an older release, is calibrated again)
        if rule is not None and rule.decided_ == decided and rule.group_thresholds_ is not None:
            n, then = _eligible(person), rule.people_
            if n == then or (then is not None and then >= CALIBRATION_PEOPLE and then <= n < 1.25 * then):
                return rule
        return self._calibrate(fid, person, decided)

    # ------------------------------------------------------------------ people and decisions
    def people(self, *, hidden: bool = True) -> list[Person]:
        """Every person (``hidden=False``: not the hidden ones), by id."""
        return [Person(i, n, bool(h), f, p) for i, n, h, f, p in self.store.people() if hidden or not h]

    def faces_of(self, person: int) -> list[int]:
        """The face ids of ``person``."""
        return self.store.faces_of(person)

    def _person(self, person: int) -> int:
        if self.store.person(person) is None:
            raise ValueError(f"no person {person} in {self.path}")
        return int(person)

    def _faces(self, faces: Sequence[int]) -> list[int]:
        faces = [int(f) for f in faces]
        found = set(self.store.persons_of(faces))
        missing = sorted(set(faces) - found)
        if missing:
            raise ValueError(f"no face {missing[0]} in {self.path}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return faces

    def name(self, person: int, name: str | None) -> None:
        """Name a person (None: no name). Naming confirms the person's faces: they count as placed
        by the user (a :meth:`recluster` keeps them)."""
        person = self._person(person)
        with self.store.transaction():
            self.store.update_person(person, name=name or None)
            self.store.assign(self.faces_of(person), person, "user")
            self.store.log("named", person, value=name)

    def merge(self, into: int, *others: int) -> None:
        """Merge ``others`` into ``into`` (their faces become ``into``'s, placed by the user; their ids are retired)."""
        into = self._person(into)
        with self.store.transaction():
            for other in others:
                other = self._person(other)
                if other == into:
                    continue
                faces = self.faces_of(other)
                self.store.assign(faces + self.faces_of(into), into, "user")
                self.store.delete_person(other)
                self.store.log("merged", into, other, faces)
        self._cache = None

    def split(self, person: int, faces: Sequence[int]) -> int:
        """Move ``faces`` of ``person`` into a new person (returned); both sides count as placed by the user."""
        person, faces = self._person(person), self._faces(faces)
        mine = set(self.faces_of(person))
        if not faces or not set(faces) <= mine:
            raise ValueError(f"split needs faces of person {person}")
        with self.store.transaction():
            new = self.store.new_person()
            self.store.assign(faces, new, "user")
            self.store.assign(sorted(mine - set(faces)), person, "user")
            self.store.log("split", person, new, faces)
        self._cache = None
        return new

    def move(self, faces: Sequence[int], person: int | None) -> None:
        """Place ``faces`` with ``person`` (None: with nobody, and never again automatically with the
        person each was in: "not this person")."""
        faces = self._faces(faces)
        target = None if person is None else self._person(person)
        with self.store.transaction():
            before = self.store.persons_of(faces)
            self.store.assign(faces, target, "user")
            for old in {p for p in before.values() if p is not None and p != target}:
                mine = [f for f, p in before.items() if p == old]
                self.store.forbid(mine, old)
                self.store.log("not-this-person", old, None, mine)
            self.store.log("moved", target, None, faces)
        self._cache = None

    def hide(self, person: int, hidden: bool = True) -> None:
        """Mark a person as not of interest (``hidden=False`` shows them again); faces keep joining them."""
        person = self._person(person)
        with self.store.transaction():
            self.store.update_person(person, hidden=int(bool(hidden)))
            self.store.log("not-of-interest", person, value="hidden" if hidden else "shown")

    def name_from_csv(self, path: str | os.PathLike) -> int:
        """Name people from a CSV with columns ``person,name`` (a name ``-``, as in ``names.csv``:
        hide the person, "not a person of interest"); every row is checked before any is applied.
        Returns the number of rows applied."""
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"person", "name"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected person,name")
            rows = []
            for line, r in enumerate(reader, start=2):
                try:
                    rows.append((self._person(int(r["person"])), (r["name"] or "").strip()))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{path}, line {line}: {exc}") from None
        for person, name in rows:
            if name == "-":
                self.hide(person)
            else:
                self.name(person, name or None)
        return len(rows)

    def write_faces_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """One row per face: ``source,face_index,person,name,decided_by`` (``person`` empty for a face
        in no person); an existing file is replaced only with ``overwrite``."""
        from ..io import check_output_file, csv_bytes, write_atomic

        path = check_output_file(path, overwrite=overwrite, what="faces table")
        df = self.dataframe()
        import pandas as pd

        rows = [[s, int(j), "" if pd.isna(p) else int(p), "" if pd.isna(n) else n, "" if pd.isna(d) else d]
                for s, j, p, n, d in zip(df["source"], df["face_index"], df["person"].astype(object),
                                         df["name"], df["decided_by"])]
        return write_atomic(path, csv_bytes(["source", "face_index", "person", "name", "decided_by"], rows))

    def decisions(self) -> list[dict]:
        """The user's decisions, oldest first."""
        keys = ("id", "at", "kind", "person", "other", "faces", "value")
        return [dict(zip(keys, r)) for r in self.store.decisions()]

    # ------------------------------------------------------------------ reading
    def photo_path(self, photo: int) -> Path:
        """The file of photo ``photo`` (an id of the ``photos`` table), only ever inside the folder
        it was added from (a feature table's: the folder the table records); ``ValueError`` otherwise."""
        row = self.store.photo_file(photo)
        if row is None:
            raise ValueError(f"no photo file {photo} in {self.path}")
        root = Path(row[0]).resolve()
        path = (root / row[1]).resolve()
        if not path.is_relative_to(root):
            raise ValueError(f"photo {photo} lies outside its folder {root}")
        return path

    def _rows(self) -> list[tuple]:
        return self.store.face_rows()

    def dataframe(self):
        """A pandas DataFrame, one row per face: ``face`` (id), ``photo`` (id), ``root``, ``source``,
        ``face_index``, ``x, y, w, h``, ``score``, ``sharpness``, ``frontalness``, ``subject``,
        ``person`` (nullable integer), ``name``, ``decided_by``, ``hidden``."""
        import pandas as pd

        columns, rows = self.store.face_table_rows()
        df = pd.DataFrame(rows, columns=columns)
        df["person"] = df["person"].astype("Int64")
        df["subject"] = df["subject"].astype(bool)
        df["hidden"] = df["hidden"].fillna(0).astype(bool)
        return df

    def _core_mask(self, X: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The faces confident enough to build the clustering's cores (:func:`vision_lib.cluster.core_faces`)."""
        from ..cluster import core_faces
        from ..tables import FaceTable

        n = len(X)
        return core_faces(FaceTable("descriptor", X, [""] * n, [""] * n, np.zeros(n, int), boxes, [],
                                    {"detector": self.detector}, scores=scores))

    def _clear_mask(self, fid: np.ndarray) -> np.ndarray:
        """:meth:`_core_mask` of every face ``fid`` (all the faces, by id) without reading their boxes
        and scores: SQLite lists the faces that are not clear (few), by the same two tests."""
        from ..cluster.export import confident_floor
        from ..faces.rating import MIN_SIZE

        return ~np.isin(fid, self.store.unclear_faces(confident_floor(self.detector), MIN_SIZE), assume_unique=True)

    def _faces_table(self):
        """Every face as a FaceTable (the rows of :meth:`to_table`)."""
        import json

        from ..tables import FaceTable

        data = self._rows()
        X = self.store.vectors()[1]
        roots = self.store.roots()
        folders = {f for _, _, f in roots.values()}
        one = len(folders) == 1 and None not in folders
        kps = [np.full((5, 2), np.nan) if r[8] is None else np.array(json.loads(r[8]), dtype=float) for r in data]
        col = lambda j: np.array([np.nan if r[j] is None else r[j] for r in data], float)  # noqa: E731
        sources = [r[2] for r in data]
        settings = {"descriptor": self.store.meta["descriptor"], "detector": self.detector,
                    "threshold": self.same_person_distance}
        return FaceTable("descriptor", X, sources, [s.split("/")[0] if "/" in s else "" for s in sources],
                         np.array([r[3] for r in data], int), np.array([r[4:8] for r in data], int).reshape(-1, 4),
                         [], settings, keypoints=np.array(kps).reshape(len(data), 5, 2), scores=col(9),
                         sharpness=col(10), frontalness=col(11), subject=np.array([bool(r[12]) for r in data]),
                         root=Path(next(iter(folders))) if one else None)

    def to_table(self):
        """Every face as a :class:`~vision_lib.tables.FaceTable` (``root``: the collection's folder
        when it has one; the photos without a face are not rows, see :meth:`not_used`)."""
        from ..io import Rejected

        table = self._faces_table()
        table.rejected = [Rejected(p, r or s) for _, p, s, r in self.store.not_used() if s == "rejected"]
        table.skipped = [Rejected(p, r or s) for _, p, s, r in self.store.not_used() if s == "skipped"]
        table.photos = list(dict.fromkeys(table.sources + [r.source for r in table.rejected]))
        return table

    def persons_of_faces(self) -> np.ndarray:
        """The person of each row of :meth:`to_table` (``-1``: none)."""
        return self.store.assignments()[1]

    def not_used(self) -> list[tuple[str, str, str, str]]:
        """Every file without a face: ``(root, source, status, reason)`` (status rejected, skipped or removed)."""
        roots = self.store.roots()
        return [(roots[r][2] or roots[r][0], p, s, reason or "") for r, p, s, reason in self.store.not_used()]

    # ------------------------------------------------------------------ search
    def _search_state(self) -> tuple:
        """The gallery (index, persons), the open-set rule and names, cached until the collection changes."""
        store = self.store
        stamp = store.stamp()
        if self._cache is None or self._cache[0] != stamp:
            with store.snapshot():
                fid, person, _ = store.assignments()
                index = self._nn.sync(store)
                saved = store.get_meta("openset")
                names = {i: n for i, n, *_ in store.people()}
                roots = store.roots()
                clear = self._clear_mask(fid)
            # calibrated by the last add (on the people as they were then); else now
            rule = rule_from_state(saved) if saved else self._calibrate(fid, person)
            # a person is known by their clear faces, as an add knows them (assign.py): the verdict
            # of a photo is the one an add would give it
            clear_faces_of = _clear_faces(person, clear)
            gallery = IndexGallery(index, fid, np.where(clear, person, -1), lambda p: store.vectors_of(fid[clear_faces_of(p)]))
            self._cache = (stamp, gallery, rule, names, roots)
        return self._cache[1:]

    def search(self, image, *, top: int = SEARCH_TOP) -> list[dict]:
        """For each face of ``image`` (a photo path or an RGB array): its ``box``, the ``person``
        it is (None: not anyone in this collection, by the same rule as an add) with ``name``,
        ``distance`` (to that person's nearest faces), ``stranger_rate`` (the share of the
        collection's strangers that come as close, as ``predict`` states it; None without two people
        to calibrate on) and ``matches``: the ``top`` nearest faces of the collection, best first
        (``source``, ``root``, ``photo``, ``face_index``, ``face``, ``person``, ``name``, ``distance``).
        Candidates come from the FAISS index beside the file; every distance stated is computed
        exactly from the candidates' descriptors."""
        from ..openset import pairwise

        boxes, Q, detected = self._describe(image)
        gallery, rule, names, roots = self._search_state()
        t = self.same_person_distance
        scores = person_distances(Q, gallery, LOCAL_K) if len(gallery) else [{} for _ in Q]
        unsure = ~self._core_mask(Q, np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(detected, np.float64))
        found = attach(Q, gallery, t, LOCAL_K, limit=None if rule is None else rule.threshold_, scores=scores,
                       unsure=unsure)
        _, near = gallery.index.search(Q, top)
        out = []
        for i, box in enumerate(boxes):
            p = int(found[i])
            best = min(scores[i], key=scores[i].get) if scores[i] else None
            d = scores[i].get(p if p >= 0 else best) if best is not None else None
            ids = near[i][near[i] >= 0]
            rows = self.store.face_rows_of(ids)
            ids = np.array([f for f in ids.tolist() if f in rows], np.int64)  # removed meanwhile: dropped
            exact = pairwise(Q[i:i + 1], self.store.vectors_of(ids))[0] if len(ids) else np.zeros(0)
            matches = []
            for j in np.argsort(exact, kind="stable"):
                r = rows[int(ids[j])]
                q = -1 if r[13] is None else int(r[13])
                matches.append({"source": r[2], "root": roots[r[1]][2] or roots[r[1]][0], "face_index": int(r[3]),
                                "face": int(r[0]), "photo": int(r[15]), "person": q if q >= 0 else None,
                                "name": names.get(q) if q >= 0 else None, "distance": round(float(exact[j]), 4)})
            out.append({"box": [int(v) for v in box], "person": p if p >= 0 else None,
                        "name": names.get(p) if p >= 0 else None,
                        "distance": None if d is None else round(float(d), 4),
                        "stranger_rate": None if rule is None or d is None else round(float(rule.far_at(d)), 5),
                        "matches": matches})
        return out

    def _describe(self, image) -> tuple[list, np.ndarray, np.ndarray]:
        """Boxes, descriptors and detector scores of the faces of a photo path (the add's own
        pipeline and cache) or an array."""
        from ..models import get_descriptor

        self._check_model()
        if isinstance(image, (str, os.PathLike)):
            from ..tables import face_table

            path = Path(image)
            if not path.is_file():
                raise FileNotFoundError(f"no such photo: {path}")
            table = face_table([path.resolve()], root=path.resolve().parent, detector=self.detector,
                               descriptor=self.descriptor, labelled=False, progress=False, n_jobs=1)
            if table.rejected and not len(table):
                reason = table.rejected[0].reason
                if reason != "no face found":
                    raise ValueError(f"{path}: {reason}")
            return [tuple(b) for b in table.boxes], np.asarray(table.X, np.float32), np.asarray(table.scores, np.float64)
        from ..faces import detect

        faces = detect(np.asarray(image), self.detector)
        X = get_descriptor(self.descriptor).describe(image, faces) if faces else np.zeros((0, 1), np.float32)
        return [f.box for f in faces], np.asarray(X, np.float32), np.array([f.score for f in faces], np.float64)


def _clear_faces(person: np.ndarray, clear: np.ndarray):
    """A function giving the rows (ascending) of a person's clear faces, ``person`` and ``clear``
    per face: found once by sorting, each person's a slice (an add at 1M faces asks for 20,000)."""
    mine = np.flatnonzero(clear & (person >= 0))
    order = mine[np.argsort(person[mine], kind="stable")]  # by person, then row
    ids, start, count = np.unique(person[order], return_index=True, return_counts=True)
    at = dict(zip(ids.tolist(), zip(start.tolist(), (start + count).tolist())))

    def of(p: int) -> np.ndarray:
        lo, hi = at.get(p, (0, 0))
        return order[lo:hi]

    return of


def _eligible(person: np.ndarray) -> int:
    """People with two faces or more (those the open-set rule can be calibrated on)."""
    return int((np.unique(person[person >= 0], return_counts=True)[1] >= 2).sum())


def is_collection(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a collection this release can open (checked read-only)."""
    try:
        check_file(path)
    except (OSError, ValueError):
        return False
    return True


__all__ += ["is_collection"]
