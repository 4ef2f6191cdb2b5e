"""The candidate search of a collection (vision_lib.collection.neighbours): the bound on faces the
index did not return, the HNSW graph above the flat threshold against the exact flat index on the
same build, and one index search per face per add."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from vision_lib import Collection
from vision_lib.collection import assign, neighbours
from vision_lib.models import get_descriptor
from vision_lib.tables import FaceTable

DESC = get_descriptor("facenet")


def _table(path: Path, X: np.ndarray, people: np.ndarray, tag: str) -> Path:
    src = [f"p{p:03d}/{tag}{i:04d}.jpg" for i, p in enumerate(people)]
    n = len(X)
    FaceTable("descriptor", np.asarray(X, np.float32), src, [s.split("/")[0] for s in src], np.zeros(n, int),
              np.tile([10, 10, 80, 80], (n, 1)), [], {"descriptor": DESC.id, "detector": "yunet",
                                                      "root": str(path.parent / "photos")},
              scores=np.full(n, 0.99)).save(path, overwrite=True)
    return path


def _crowded(n_people: int, per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """People whose faces crowd each other: centres near one another (several people within the
    same-person distance of a face, as on real face descriptors at scale), unit-length faces."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=DESC.dim)
    centres = base / np.linalg.norm(base) + rng.normal(scale=0.75 / np.sqrt(DESC.dim), size=(n_people, DESC.dim))
    X = np.repeat(centres, per, axis=0) + rng.normal(scale=0.55 / np.sqrt(DESC.dim), size=(n_people * per, DESC.dim))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), np.repeat(np.arange(n_people), per)


def _at(q: np.ndarray, radii: list[float], rng) -> np.ndarray:
    """Points at exactly these distances from ``q`` (directions orthogonal to each other)."""
    basis = np.linalg.qr(rng.normal(size=(len(q), len(radii))))[0].T
    return (q + np.asarray(radii)[:, None] * basis).astype(np.float32)


class _Store:
    """The two things a FaceIndex build reads of a store, over arrays."""

    def __init__(self, X):
        self.X, self.dim, self.meta = X, X.shape[1], {"descriptor": DESC.id}

    def vector_chunks(self, after: int = 0, where: str = ""):
        yield np.arange(1, len(self.X) + 1), self.X


def test_a_person_cut_from_the_candidates_is_scored_as_the_exact_rule_scores_it(tmp_path):
    rng = np.random.default_rng(0)
    q = np.zeros(DESC.dim, np.float32)
    q[0] = 1
    # A: 3 faces at 0.3; B: one face at 0.5 (among the 4 candidates) and four at 0.7 (cut, but
    # returned by the index's 4 x 4 neighbours); C: far faces filling the index's answer
    X = _at(q, [0.3, 0.3, 0.3, 0.5, 0.7, 0.7, 0.7, 0.7] + [1.6] * 12, rng)
    person = np.array([1, 1, 1, 2, 2, 2, 2, 2] + [3] * 12)
    index = neighbours.FaceIndex(tmp_path / "x.db")
    index.kind, index.index = "flat", None
    index._build(_Store(X), len(X))
    fid = np.arange(1, len(X) + 1)
    gallery = neighbours.IndexGallery(index, fid, person, lambda p: X[person == p])
    exact = neighbours.ArrayGallery(X, person)
    got = assign.person_distances(q[None], gallery, 5, candidates=4, cutoff=1.1)[0]
    want = assign.person_distances(q[None], exact, 5, candidates=4, cutoff=1.1)[0]
    assert got[2] == pytest.approx((0.5 + 4 * 0.7) / 5, abs=1e-5)  # was the bound (0.5 + 4 x 1.6) / 5 > 1.1
    assert got.keys() == want.keys() and all(got[p] == pytest.approx(want[p], abs=1e-5) for p in got)
    # far: no face in a person that was not returned is nearer than it
    dist, owner, far = gallery.nearest(q[None], 4)
    assert far[0] == pytest.approx(0.5, abs=1e-5) and owner[0].tolist() == [1, 1, 1, 2]


def _two_copies(tmp_path: Path, monkeypatch) -> tuple[Path, Path, Path]:
    X, people = _crowded(40, 12, seed=3)
    first = np.arange(len(X)) % 12 < 9
    t1 = _table(tmp_path / "first.npz", X[first], people[first], "a")
    t2 = _table(tmp_path / "second.npz", X[~first], people[~first], "b")
    monkeypatch.setattr(neighbours, "FLAT_UP_TO", 10**9)
    with Collection(tmp_path / "flat.db") as built:
        built.add(t1, progress=False)
    shutil.copy(tmp_path / "flat.db", tmp_path / "graph.db")  # the same build; its index is made again
    return tmp_path / "flat.db", tmp_path / "graph.db", t2


def _persons_of_new_faces(db: Path, first_person: int) -> list[int]:
    """Per face of the add: the existing person it joined, -2 for a new person, -1 for none."""
    con = sqlite3.connect(db)
    try:
        return [-1 if p is None else (p if p <= first_person else -2) for p, in con.execute(
            "SELECT f.person FROM faces f JOIN photos p ON p.id = f.photo WHERE p.path LIKE '%/b%' ORDER BY f.id")]
    finally:
        con.close()


def test_the_hnsw_graph_attaches_the_faces_the_exact_flat_index_attaches(tmp_path, monkeypatch):
    flat, graph, more = _two_copies(tmp_path, monkeypatch)
    last = sqlite3.connect(flat).execute("SELECT max(id) FROM people").fetchone()[0]
    with Collection(flat) as people:
        exact = people.add(more, progress=False)
    monkeypatch.setattr(neighbours, "FLAT_UP_TO", 10)  # the graph path, on the same build
    with Collection(graph) as people:
        found = people.add(more, progress=False)
        assert people._nn.kind == "hnsw"
    assert exact.attached > 0 and len(people.people()) > 1
    assert (found.attached, found.grouped, found.new_people) == (exact.attached, exact.grouped, exact.new_people)
    assert _persons_of_new_faces(graph, last) == _persons_of_new_faces(flat, last)


def test_an_add_searches_the_index_once_per_new_face(tmp_path, monkeypatch):
    flat, _, more = _two_copies(tmp_path, monkeypatch)
    searched = []
    real = neighbours.FaceIndex.search

    def counting(self, Q, k, **kw):
        searched.append(len(Q))
        return real(self, Q, k, **kw)

    monkeypatch.setattr(neighbours.FaceIndex, "search", counting)
    with Collection(flat) as people:
        report = people.add(more, progress=False)
    assert report.faces_added == 40 * 3 and report.attached + report.grouped > 0
    assert sum(searched) == report.faces_added  # both phases reuse the one search of each new face


def test_the_index_gallery_answers_rows_asked_before_as_the_index_does(tmp_path, monkeypatch):
    X, person = _crowded(10, 6, seed=5)
    index = neighbours.FaceIndex(tmp_path / "x.db")
    index._build(_Store(X), len(X))
    fid = np.arange(1, len(X) + 1)
    gallery = neighbours.IndexGallery(index, fid, person, lambda p: X[person == p], known={})
    searched = []
    real = index.search
    monkeypatch.setattr(index, "search", lambda Q, k, **kw: searched.append(len(Q)) or real(Q, k, **kw))
    gallery.neighbours(X[:7], 20)
    for rows, k in ((slice(0, 7), 20), (slice(0, 7), 5), (slice(3, 12), 20)):  # asked, fewer, partly not
        d, i = gallery.neighbours(X[rows], k)
        d0, i0 = real(X[rows], k)
        assert np.array_equal(i, i0) and np.allclose(d, d0)
    assert searched == [7, 5]  # rows 7-11 only: the others were answered from the first search


def test_a_small_add_leaves_the_index_file_and_the_next_use_appends_what_it_lacks(tmp_path):
    X, people = _crowded(40, 10, seed=7)
    db = tmp_path / "people.db"
    with Collection(db) as collection:
        collection.add(_table(tmp_path / "a.npz", X[:360], people[:360], "a"), progress=False)
    index = Path(f"{db}.faiss")
    written = index.read_bytes()
    with Collection(db) as collection:  # 20 faces: under SAVE_AFTER of the 360 the file holds
        assert collection.add(_table(tmp_path / "b.npz", X[360:380], people[360:380], "b"), progress=False).faces_added == 20
        assert collection._nn.last_action == "appended"
    assert index.read_bytes() == written
    with Collection(db) as collection:
        q = X[375:376]
        collection._describe = lambda image: ([(0, 0, 100, 100)], q, np.full(1, np.nan))
        found = collection.search(None, top=400)[0]["matches"]
        assert collection._nn.last_action == "appended" and len(found) == 380
        ids, V = collection.store.vectors()
        assert [m["face"] for m in found] == ids[np.argsort(np.linalg.norm(V - q, axis=1), kind="stable")].tolist()
    with Collection(db) as collection:  # 20 more: 40 since the file was written, past a tenth of 360
        collection.add(_table(tmp_path / "c.npz", X[380:], people[380:], "c"), progress=False)
    assert index.read_bytes() != written and b'"covers": [' in index.read_bytes()[-300:]
    with Collection(db) as collection:
        collection._describe = lambda image: ([(0, 0, 100, 100)], X[:1], np.full(1, np.nan))
        collection.search(None)
        assert collection._nn.last_action == "loaded" and collection._nn.covers == collection.store.face_stamp() == (400, 400)


def test_a_build_from_scratch_searches_nothing(tmp_path, monkeypatch):
    X, people = _crowded(20, 6, seed=9)
    searched = []
    real = neighbours.FaceIndex.search
    monkeypatch.setattr(neighbours.FaceIndex, "search", lambda self, Q, k, **kw: searched.append(len(Q)) or real(self, Q, k, **kw))
    with Collection(tmp_path / "people.db") as collection:
        report = collection.add(_table(tmp_path / "a.npz", X, people, "a"), progress=False)
    assert report.grouped > 0 and searched == []  # no person yet: nothing to look up (a million faces would cost minutes)


def test_an_adds_batch_scans_every_face_and_a_search_walks_the_graph(tmp_path, monkeypatch):
    X, _ = _crowded(50, 10, seed=1)
    flat = neighbours.FaceIndex(tmp_path / "flat.db")
    flat._build(_Store(X), len(X))
    monkeypatch.setattr(neighbours, "FLAT_UP_TO", 10)
    graph = neighbours.FaceIndex(tmp_path / "graph.db")
    graph._build(_Store(X), len(X))
    assert (flat.kind, graph.kind) == ("flat", "hnsw")
    batch = X[:neighbours.EXACT_FROM] + 0.01
    D0, I0 = flat.search(batch, 64)
    D1, I1 = graph.search(batch, 64)
    assert np.array_equal(I0, I1) and np.allclose(D0, D1)  # the flat index's answer, face for face
    graph.index.add_with_ids(X[:3] + 0.001, np.array([9001, 9002, 9003]))  # ids of faces added later
    assert graph.search(np.repeat(X[:3], 30, axis=0), 2)[1][::30, :2].tolist() == [[1, 9001], [2, 9002], [3, 9003]]
    walked = []
    inner = graph.index
    monkeypatch.setattr(graph, "index", type("Spy", (), {"ntotal": inner.ntotal, "index": inner.index, "id_map": inner.id_map,
                                                         "search": lambda self, Q, k: walked.append(len(Q)) or inner.search(Q, k)})())
    graph.search(X[:2], 10)
    assert walked == [2]  # a search's few faces go through the graph


def test_the_clear_mask_read_from_sqlite_is_the_core_mask_of_every_face(tmp_path):
    """An add lists the faces that are not clear in SQLite (not every face's box and score): the same
    mask as cluster.core_faces on the boxes and scores, unknown (NaN) scores and small boxes included."""
    from vision_lib.faces.rating import MIN_SIZE
    from vision_lib.models import get_detector

    rng = np.random.default_rng(3)
    n = 300
    floor = get_detector("yunet").confident_score
    X = rng.normal(size=(n, DESC.dim)).astype(np.float32)
    src = [f"p{i % 7:03d}/g{i:04d}.jpg" for i in range(n)]
    side = rng.choice([MIN_SIZE - 1, MIN_SIZE, MIN_SIZE + 1, 12, 90], size=(n, 2))
    boxes = np.column_stack([rng.integers(0, 50, (n, 2)), side])
    scores = rng.choice([floor - 0.01, floor, floor + 0.01, 0.2, 0.99, np.nan], size=n)
    path = FaceTable("descriptor", X, src, [s.split("/")[0] for s in src], np.zeros(n, int), boxes, [],
                     {"descriptor": DESC.id, "detector": "yunet", "root": str(tmp_path / "photos")},
                     scores=scores).save(tmp_path / "mixed.npz", overwrite=True)
    people = Collection(tmp_path / "mixed.db")
    people.add([path], progress=False)
    fid = people.store.assignments()[0]
    boxes_read, scores_read = people.store.face_geometry()
    assert len(fid) == n and np.isnan(scores_read).sum() == np.isnan(scores).sum() > 0
    expected = people._core_mask(np.zeros((n, 0)), boxes_read, scores_read)
    assert 0 < expected.sum() < n  # both kinds present, else the comparison proves nothing
    np.testing.assert_array_equal(people._clear_mask(fid), expected)
    # and against the table's own values (the store keeps them as given)
    sure = np.isnan(scores) | (scores >= floor)
    np.testing.assert_array_equal(people._clear_mask(fid), sure & (side.min(axis=1) >= MIN_SIZE))


def test_the_assignments_read_as_one_string_are_those_of_every_face_by_id(tmp_path):
    """store.assignments parses one string of (id, person) in whatever order SQLite scans: the same
    arrays as a query ordered by id, with the faces the user placed flagged."""
    X, people = _crowded(6, 12, seed=5)
    people_ = Collection(tmp_path / "a.db")
    people_.add([_table(tmp_path / "a.npz", X, people, "a")], progress=False)
    store = people_.store
    fid, person, user = store.assignments()
    with store.transaction():
        store.assign(fid[[3, 40]], int(person.max()), "user")
        store.assign(fid[[7]], None, "user")
    fid, person, user = store.assignments()
    rows = np.array(store.con.execute("SELECT id, COALESCE(person, -1), decided_by IS 'user' FROM faces ORDER BY id")
                    .fetchall(), np.int64)
    assert len(np.unique(person[person >= 0])) > 1 and user.sum() == 3
    np.testing.assert_array_equal(fid, rows[:, 0])
    np.testing.assert_array_equal(person, rows[:, 1])
    np.testing.assert_array_equal(user, rows[:, 2] == 1)


def test_the_scan_of_a_graph_and_the_faces_beside_it_is_one_scan_of_all_of_them():
    """FaceIndex._scan over the graph's vectors and the faces waiting beside it (no 512 MB copy at
    1M): the distances and rows of one faiss.knn over both, bit for bit, copies across the blocks
    (equal distances: the lower row first) and blocks smaller than k included."""
    import faiss

    rng = np.random.default_rng(4)
    for n1, n2 in ((500, 40), (30, 300), (700, 1)):
        X1 = rng.normal(size=(n1, 16)).astype(np.float32)
        X2 = rng.normal(size=(n2, 16)).astype(np.float32)
        X2[: n2 // 2 + 1] = X1[rng.integers(0, n1, n2 // 2 + 1)]  # the same faces in both blocks
        X1[:4] = X1[4]
        Q = np.concatenate([rng.normal(size=(40, 16)), X1[:5], X2[:3]]).astype(np.float32)
        for k in (1, 7, 99, 100, 256, n1 + n2):
            k = min(k, n1 + n2)
            D, rows = neighbours.FaceIndex._scan(Q, [X1, X2], k, faiss)
            D0, rows0 = faiss.knn(Q, np.concatenate([X1, X2]), k)
            assert np.array_equal(rows, rows0) and np.array_equal(D, D0)


def test_the_face_stamp_counts_every_face_and_those_up_to_an_id_after_a_removal(tmp_path):
    X, people = _crowded(5, 8, seed=2)
    with Collection(tmp_path / "a.db") as collection:
        collection.add(_table(tmp_path / "a.npz", X, people, "a"), progress=False)
        store = collection.store
        with store.transaction():
            store.con.execute("DELETE FROM faces WHERE id IN (3, 17, 38)")
        count = lambda sql: store.con.execute(sql).fetchone()[0]
        assert store.face_stamp() == (count("SELECT max(face) FROM descriptors"), count("SELECT count(*) FROM descriptors")) == (40, 37)
        assert [store.count_through(i) for i in (2, 3, 20, 40)] == [
            count(f"SELECT count(*) FROM descriptors WHERE face <= {i}") for i in (2, 3, 20, 40)] == [2, 2, 18, 37]


def test_phase_2_scores_exactly_only_the_people_every_face_of_a_group_has_and_joins_as_the_full_table():
    """person_distances with ``groups`` (phase 2): the people among the candidates of every face of
    a group keep their exact scores; group_new joins what the table over every person (a face
    without the person counting as infinitely far) joins."""
    from vision_lib.collection.assign import group_new, person_distances

    X, person = _crowded(12, 16, seed=11)
    known = np.arange(len(X)) % 16 < 12
    gallery = neighbours.ArrayGallery(X[known], person[known])
    new, who = X[~known], person[~known]  # faces between two people: both among the candidates, or one
    Q = np.concatenate([(new[who == a] + new[who == b]) / 2 for a, b in ((0, 1), (3, 4), (7, 8))]).astype(np.float32)
    groups = np.repeat(np.arange(3), 4)
    groups[[0, 4, 8]] = 3  # and a group of faces of several people
    full = person_distances(Q, gallery, 5, candidates=6)
    some = person_distances(Q, gallery, 5, candidates=6, groups=groups)
    shared = 0
    for g in np.unique(groups):
        mine = np.flatnonzero(groups == g)
        common = set(full[mine[0]]).intersection(*(full[i] for i in mine[1:]))
        shared += len(common)
        for i in mine:
            assert full[i].keys() == some[i].keys()
            assert all(full[i][p] == some[i][p] for p in common)
            assert all(some[i][p] <= full[i][p] for p in full[i])  # a bound at most
    assert shared and any(full[i] != some[i] for i in range(len(Q)))  # the filter left some people out
    labels, joins = group_new(new, gallery, DESC.threshold, 5, descriptor="facenet")
    rows = np.flatnonzero(labels >= 0)
    scores = person_distances(new[rows], gallery, 5, cutoff=DESC.threshold)
    for g, target in enumerate(joins):
        mine = [scores[i] for i in np.flatnonzero(labels[rows] == g)]
        people = list(set().union(*mine))
        mean = {p: np.mean([s.get(p, np.inf) for s in mine]) for p in people}
        near = [p for p, d in mean.items() if d < DESC.threshold]
        assert target == (near[0] if len(near) == 1 else -1)
    assert len(joins) > 1 and (joins >= 0).any() and (joins < 0).any()
