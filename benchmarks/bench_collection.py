"""Benchmark face collections (issue 33): incremental against batch, the cost of an add, search, faults. Prints JSON.

Incremental: LFW (scored on each photo's subject face) and the raw footballer photos (scored on each
photo's largest face, as bench_cluster.py does). A collection is built from the first half of each
person's photos (a descriptor table of them: the same disk-cached faces every stage uses), every
person is named by ``vision_lib.comparisons.name_by_majority``: after the folder most of its scored
faces come from (each photo's subject or largest face; all its faces when it has none of those; a
second person of the same majority is merged into the first, as a user would), then the second half
is added. Two user
models, each in its own collection: the issue's (names by majority without looking: the targets) and
a user who reviews the faces before naming (splits out the faces of other people they know), which
separates the add's own errors from the first build's.
Reported: the share of second-half faces of named people now with the right named person and with
a wrong one, BCubed F of the final collection, and in the same run the from-scratch clustering of
every photo and a naive nearest-face rule (a new face joins the person of its nearest named face
when nearer than the descriptor's same-person distance; the rest are clustered into new people), and
the ideal add (every second-half scored face with the named person of its folder: the best any add
rule could reach after that first build and naming).

Search (LFW): every second-half photo of a person of the first-half collection searches that
collection (``Collection.search``, its faces already described: the subject face's descriptor);
mean average precision of the ranked matches (subject faces of the collection, relevant: the same
person), against exact nearest neighbours of the same descriptors.

Scale: descriptor tables of n faces made as bench_scale.py makes them (rotated copies of the LFW
subject faces), n + 1 % as a second table, 200 more as queries. In child processes (peak RSS of
each child): build a collection from the table, add the 1 %, then search each query (median and p95
latency after a warm-up query). Start-up is left out of the build and add timings: each child first
builds and adds to a throwaway collection of 32 generated faces (every lazy import of an add done).
Above the flat index's size (``neighbours.FLAT_UP_TO``) the same 1 % is also added to a copy of the
same build with the exact flat index forced, and the two adds are compared face by face.

Faults: a folder of LFW photos, half of it indexed and two people named; then ``vision-lib index``
of the whole folder (described for real: the disk cache off, so that kills land in the work) is killed (SIGKILL) at 10 random moments of a clean run's duration and run again;
each end state is compared with the clean run's: duplicate and missing faces, ``PRAGMA
integrity_check``, the named people's names and faces; then two ``index`` at once on one file.

    flock /tmp/vision_heavy.lock .venv/bin/python benchmarks/bench_collection.py [--skip scale faults] [--sizes 10000 100000]

Other splits of each person's photos (the same counts): ``--split alternate`` (every other photo
builds), ``--split random --seed N``; ``--reverse-halves`` swaps either. The incremental figures
depend on the split through the open-set limit the add calibrates (reported as
``add.open_set_limit``; docs/collection.md, "How robust is final within 0.01 of from scratch").
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bcubed, from_scratch, labelled_faces, table_of_photos  # noqa: E402

#: Photos of each person in the first half (the rest are added later).
FIRST_SHARE = 0.5
#: ``--reverse-halves``: build from the second half of each person's photos and add the first (the
#: same figures on another split: a check of the rule, not another protocol).
REVERSE_HALVES = False
#: ``--split``: which of each person's (sorted) photos make the first half: ``first`` (the first
#: half in name order), ``alternate`` (every other photo, from the first) or ``random`` (a random
#: half, :data:`SEED`); the same number of photos either way. Other splits check that a figure is
#: not one split's luck.
SPLIT = "first"
SEED = 0
QUERIES = 200
#: The box side of the scale tables' faces: a real face's size, so that a collection counts them as
#: clear faces (zero-size boxes are no one's face since collquality: nothing would join anyone).
SCALE_BOX = 160


# --------------------------------------------------------------------------- incremental
def halves(faces) -> tuple[list[str], list[str]]:
    """Each person's photos (sorted) split into a first and a second half (a person of one photo:
    first), as :data:`SPLIT` says."""
    by: dict[str, list[str]] = {}
    for p, lab in zip(faces.photos, faces.photo_labels):
        by.setdefault(lab, []).append(p)
    rng = random.Random(SEED)
    first, second = [], []
    for lab in sorted(by):  # a fixed order of people, so that a seed gives one split
        photos = sorted(by[lab])
        if SPLIT == "alternate":
            photos = photos[0::2] + photos[1::2]
        elif SPLIT == "random":
            rng.shuffle(photos)
        cut = max(1, round(len(photos) * FIRST_SHARE))
        first += photos[:cut]
        second += photos[cut:]
    return (second, first) if REVERSE_HALVES else (first, second)


def scoring_rows(faces, by: str) -> dict[str, int]:
    """``{photo: row}`` of the face each photo is scored on (``largest``: face_index 0; else its subject face)."""
    mask = faces.face_index == 0 if by == "largest" else np.asarray(faces.subject, bool)
    return {s: i for i, (s, m) in enumerate(zip(faces.sources, mask)) if m}


def attach_scores(faces, person: np.ndarray, name_of: dict, rows: dict[str, int], second: list[str],
                  named: set[str]) -> dict:
    """Right / wrong shares over the second-half photos of named people that have a scored face."""
    from vision_lib.comparisons import folder_names

    right = wrong = total = 0
    for p, lab in folder_names(faces).items():
        if lab not in named or p not in second or p not in rows:
            continue
        total += 1
        got = name_of.get(int(person[rows[p]]))
        right += got == lab
        wrong += got is not None and got != lab
    return {"faces": total, "right": round(right / max(total, 1), 4), "wrong": round(wrong / max(total, 1), 4),
            "right_count": right, "wrong_count": wrong}


def naive_nearest(X_old: np.ndarray, p_old: np.ndarray, X_new: np.ndarray, distance: float, descriptor) -> np.ndarray:
    """The naive rule: the person of the nearest assigned old face when nearer than ``distance``;
    the other new faces clustered (default IdentityClustering) into new people (ids after the old ones)."""
    from vision_lib.cluster import IdentityClustering
    from vision_lib.collection.assign import nearest

    keep = p_old >= 0
    d, j = nearest(X_new, X_old[keep], 1)
    out = np.where(d[:, 0] < distance, p_old[keep][j[:, 0]], -1)
    rest = np.flatnonzero(out < 0)
    if len(rest) > 1:
        lab = IdentityClustering(descriptor=descriptor, random_state=0).fit_predict(X_new[rest])
        out[rest] = np.where(lab >= 0, lab + p_old.max() + 1, -1)
    return out


def ideal_add(before: np.ndarray, name_of: dict, rows: dict[str, int], second: list[str], truth_of: dict) -> np.ndarray:
    """``before`` (the person of each face after the first build and naming) with every scored
    face of the ``second`` photos given the named person of its folder, or one new person per
    folder no one is named after: the ceiling of any add rule, the first build and naming being
    what they are (an add may not move the faces the user named)."""
    out = before.copy()
    person_of = {n: p for p, n in name_of.items()}
    fresh: dict[str, int] = {}
    for p in second:
        if p in rows:
            lab = truth_of[p]
            out[rows[p]] = person_of[lab] if lab in person_of else fresh.setdefault(lab, int(before.max()) + 1 + len(fresh))
    return out


def incremental(dataset: str, by: str, tmp: Path, search_too: bool = False, review: bool = False) -> dict:
    """The incremental run on one data set; ``review``: the user names after looking at the faces
    (:func:`vision_lib.comparisons.name_by_majority`)."""
    from vision_lib import Collection
    from vision_lib.collection.assign import rule_from_state
    from vision_lib.comparisons import folder_names, name_by_majority

    faces, prep = labelled_faces(dataset)
    truth_of = folder_names(faces)  # each photo's person, as the user names them
    first, second = halves(faces)
    second_set = set(second)
    tag = f"{dataset}_review" if review else dataset
    t1 = table_of_photos(faces, first).save(tmp / f"{tag}_first.npz")
    t2 = table_of_photos(faces, second).save(tmp / f"{tag}_second.npz")
    rows = scoring_rows(faces, by)
    key = {(s, int(j)): i for i, (s, j) in enumerate(zip(faces.sources, faces.face_index))}
    out = {"photos": len(faces.photos), "faces": len(faces), "first_half_photos": len(first),
           "second_half_photos": len(second), "scored_on": f"{by} face", "detect_describe_seconds": round(prep, 1)}

    people = Collection(tmp / f"{tag}.db")
    start = time.perf_counter()
    people.add([t1], progress=False)
    out["build_seconds"] = round(time.perf_counter() - start, 2)
    named_by = name_by_majority(people, faces, by=by, review=review)
    out |= {"user": "reviews the faces (splits out other known people)" if review else "names by majority unseen",
            "people_named": named_by["named"], "people_merged_into_a_named_one": named_by["merged"],
            "faces_split_out": named_by["split_out"]}

    def state():
        """Person of each row of ``faces`` (-1: none) and the names of the named people."""
        df = people.dataframe()
        df = df[df["person"].notna()]
        person = np.full(len(faces), -1, np.int64)
        person[[key[(s, int(j))] for s, j in zip(df["source"], df["face_index"])]] = df["person"].astype(int)
        return person, {int(p): n for p, n in zip(df["person"], df["name"]) if isinstance(n, str)}

    before, name_of = state()
    named = set(name_of.values())
    # the first build as named (what an add can no longer change), scored on the first-half photos
    out["first_half_named"] = {"bcubed": bcubed([truth_of[p] for p in first], [before[rows[p]] if p in rows else -1 for p in first])}
    result = {}
    if search_too:
        result["search"] = search_quality(people, faces, rows, second, truth_of)

    start = time.perf_counter()
    report = people.add([t2], progress=False)
    out["add_seconds"] = round(time.perf_counter() - start, 2)
    out["add"] = {"faces_added": report.faces_added, "attached_to_existing": report.attached,
                  "grouped": report.grouped, "new_people": report.new_people}
    rule = rule_from_state(people.store.get_meta("openset"))  # the limit the add used (it decides the faces left out)
    out["add"]["open_set_limit"] = None if rule is None else round(float(rule.threshold_), 4)
    after, name_of = state()
    out["collection"] = attach_scores(faces, after, name_of, rows, second_set, named) | {
        "bcubed": bcubed(faces.photo_labels, [after[rows[p]] if p in rows else -1 for p in faces.photos])}
    out["collection"]["user_faces_kept"] = bool(np.all(after[before >= 0] == before[before >= 0]))

    old = np.array([s not in second_set for s in faces.sources])
    naive = before.copy()
    naive[~old] = naive_nearest(faces.X[old], before[old], faces.X[~old], people.same_person_distance, faces.descriptor)
    out["naive_nearest_face"] = attach_scores(faces, naive, name_of, rows, second_set, named) | {
        "bcubed": bcubed(faces.photo_labels, [naive[rows[p]] if p in rows else -1 for p in faces.photos])}

    # the best any add could do after this first build and naming: every scored second-half face
    # with the named person of its folder (one new person per folder of no named person)
    ideal = ideal_add(before, name_of, rows, second, truth_of)
    out["ideal_add"] = {"bcubed": bcubed(faces.photo_labels, [ideal[rows[p]] if p in rows else -1 for p in faces.photos])}

    start = time.perf_counter()
    scratch = from_scratch(faces)
    out["from_scratch_seconds"] = round(time.perf_counter() - start, 2)
    out["from_scratch"] = {"bcubed": bcubed(faces.photo_labels, [scratch[rows[p]] if p in rows else -1 for p in faces.photos])}
    f0 = out["from_scratch"]["bcubed"]["bcubed_f"]
    out["collection_minus_from_scratch_bcubed_f"] = round(out["collection"]["bcubed"]["bcubed_f"] - f0, 4)
    out["naive_minus_from_scratch_bcubed_f"] = round(out["naive_nearest_face"]["bcubed"]["bcubed_f"] - f0, 4)
    out["ideal_add_minus_from_scratch_bcubed_f"] = round(out["ideal_add"]["bcubed"]["bcubed_f"] - f0, 4)
    people.close()
    return out | result


# --------------------------------------------------------------------------- search
def search_described(people, boxes: list, Q: np.ndarray, top: int, detected=None) -> list[dict]:
    """``Collection.search`` for faces already described (the collection has no such entry point:
    its describing step is replaced by the given boxes, descriptors and detector scores: ``detected``,
    None: unknown)."""
    detected = np.full(len(Q), np.nan) if detected is None else detected
    people._describe = lambda image: (boxes, np.asarray(Q, np.float32), np.asarray(detected, np.float64))
    try:
        return people.search(None, top=top)
    finally:
        del people._describe


def average_precision(relevant: np.ndarray, total: int) -> float:
    """AP of a ranked list of relevance flags when ``total`` items are relevant."""
    hits = np.cumsum(relevant)
    return float((hits / np.arange(1, len(relevant) + 1))[relevant].sum() / max(total, 1))


def search_quality(people, faces, rows: dict[str, int], second: list[str], truth_of: dict) -> dict:
    df = people.dataframe()
    subject = df[df["subject"]]
    in_col = Counter(truth_of[s] for s in subject["source"])
    n = len(df)
    key = {(s, int(j)): k for k, (s, j) in enumerate(zip(faces.sources, faces.face_index))}
    Xc = faces.X[[key[(s, int(j))] for s, j in zip(subject["source"], subject["face_index"])]]
    labels_c = np.array([truth_of[s] for s in subject["source"]])
    subject_faces = set(subject["face"].astype(int))
    ap, ap_exact, verdict = [], [], []
    latency = []
    for p in second:
        lab = truth_of[p]
        if p not in rows or not in_col.get(lab):
            continue
        i = rows[p]
        t = time.perf_counter()
        found = search_described(people, [tuple(faces.boxes[i])], faces.X[i:i + 1], top=n, detected=faces.scores[i:i + 1])[0]
        latency.append(time.perf_counter() - t)
        ranked = [m for m in found["matches"] if m["face"] in subject_faces]
        ap.append(average_precision(np.array([truth_of[m["source"]] == lab for m in ranked]), in_col[lab]))
        order = np.argsort(np.linalg.norm(Xc - faces.X[i], axis=1), kind="stable")
        ap_exact.append(average_precision(labels_c[order] == lab, in_col[lab]))
        verdict.append(found["name"] == lab)
    return {"queries": len(ap), "collection_subject_faces": len(subject), "mean_average_precision": round(float(np.mean(ap)), 4),
            "exact_nearest_neighbours_map": round(float(np.mean(ap_exact)), 4),
            "person_found_is_right": round(float(np.mean(verdict)), 4),
            "median_latency_ms_full_ranking": round(1000 * float(np.median(latency)), 1)}


# --------------------------------------------------------------------------- scale (children)
def warm_up(descriptor_id: str, threshold: float, dim: int) -> None:
    """Every lazy import of a build and an add, done on a throwaway collection of 32 generated faces."""
    from bench_scale import write_table

    from vision_lib import Collection

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, dim))
    X = (np.repeat(centres / np.linalg.norm(centres, axis=1, keepdims=True), 8, axis=0)
         + rng.normal(scale=0.02, size=(32, dim))).astype(np.float32)
    info = {"descriptor": descriptor_id, "threshold": threshold}
    with tempfile.TemporaryDirectory(prefix="bench_collection_warm_") as tmp:
        halves = [write_table(X[i::2], np.repeat(np.arange(4), 8)[i::2], Path(tmp) / f"{i}.npz", info, box=SCALE_BOX)
                  for i in (0, 1)]
        with Collection(Path(tmp) / "warm.db") as people:
            for table in halves:
                people.add([table], progress=False)


def child(args: list[str]) -> None:
    """``build DB TABLE`` / ``add DB TABLE`` / ``add-flat DB TABLE`` (the exact flat index forced) /
    ``search DB QUERIES.npy``: one timed step, JSON on stdout."""
    from vision_lib import Collection
    from vision_lib.collection import neighbours
    from vision_lib.models import get_descriptor

    step, db, what = args
    out: dict = {}
    if step in ("build", "add", "add-flat"):
        model = get_descriptor(None)
        warm_up(model.id, model.threshold, model.dim)
        out["start_up"] = "left out (a throwaway collection built and added to first, in this process)"
    if step == "add-flat":
        neighbours.FLAT_UP_TO = 1 << 62
    people = Collection(db)
    if step in ("build", "add", "add-flat"):
        start = time.perf_counter()
        report = people.add([what], progress=False)
        out |= {"seconds": round(time.perf_counter() - start, 2), "faces_added": report.faces_added,
                "attached": report.attached, "grouped": report.grouped, "new_people": report.new_people,
                "index": people._nn.kind}
    else:
        Q = np.load(what)
        box = [(0, 0, 100, 100)]
        start = time.perf_counter()
        search_described(people, box, Q[:1], 10)  # loads the index, the people and the open-set rule once
        out["first_query_seconds"] = round(time.perf_counter() - start, 2)
        times = []
        for q in Q:
            t = time.perf_counter()
            search_described(people, box, q[None], 10)
            times.append(time.perf_counter() - t)
        out |= {"queries": len(Q), "median_ms": round(1000 * float(np.median(times)), 1),
                "p95_ms": round(1000 * float(np.percentile(times, 95)), 1), "index": people._nn.kind}
    out["peak_memory_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(out))


def run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if proc.returncode:
        return {"exit_code": proc.returncode, "stderr": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def new_faces(db: Path, after_face: int, after_person: int) -> np.ndarray:
    """Per face with an id above ``after_face``: the existing person it joined, -2 a new person, -1 none."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT COALESCE(person, -1) FROM faces WHERE id > ? ORDER BY id", (after_face,)).fetchall()
    finally:
        con.close()
    p = np.array([r[0] for r in rows], np.int64)
    return np.where(p > after_person, -2, p)


def compare_with_flat(db: Path, flat: Path, before: tuple[int, int], row: dict) -> dict:
    """The add through the collection's index against the same add with the exact flat index."""
    a, b = new_faces(db, *before), new_faces(flat, *before)
    return {"faces": int(len(a)), "same_decision": int((a == b).sum()),
            "attached_index_vs_flat": [int((a >= 0).sum()), int((b >= 0).sum())],
            "grouped_index_vs_flat": [int((a == -2).sum()), int((b == -2).sum())],
            "joined_another_existing_person": int(((a >= 0) & (b >= 0) & (a != b)).sum()),
            "flat_add_seconds_index_built_in_it": row.get("seconds")}


def scale(sizes: list[int], tmp: Path, keep: Path | None = None) -> dict:
    from bench_scale import lfw_rows, write_table

    from vision_lib.collection import neighbours
    from vision_lib.graph_cluster import rotated_copies

    X0, labels, info = lfw_rows()
    rows = []
    for n in sizes:
        extra = max(1, n // 100)
        X, ident = rotated_copies(X0, labels, n + extra + QUERIES, seed=0)
        base = write_table(X[:n], ident[:n], tmp / f"base_{n}.npz", info, box=SCALE_BOX)
        more = write_table(X[n:n + extra], ident[n:n + extra], tmp / f"more_{n}.npz", info, box=SCALE_BOX)
        np.save(tmp / f"queries_{n}.npy", X[n + extra:])
        db = tmp / f"scale_{n}.db"
        row = {"faces": n, "added": extra, "build": run_child("build", str(db), str(base))}
        if keep is not None and db.exists():  # the build as it was, before the add (for profiling an add)
            keep.mkdir(parents=True, exist_ok=True)
            for f in (db, Path(f"{db}.faiss")):
                if f.exists():
                    shutil.copy(f, keep / f.name)
        flat = None
        if n > neighbours.FLAT_UP_TO and db.exists():  # the same build, to add the same 1 % with the exact index
            flat = tmp / f"flat_{n}.db"
            shutil.copy(db, flat)
            con = sqlite3.connect(db)
            before = tuple(int(v or 0) for v in con.execute("SELECT (SELECT max(id) FROM faces), (SELECT max(id) FROM people)").fetchone())
            con.close()
        row["add_1_percent"] = run_child("add", str(db), str(more))
        if "seconds" in row["build"] and "seconds" in row["add_1_percent"]:
            row["add_over_build"] = round(row["add_1_percent"]["seconds"] / row["build"]["seconds"], 4)
        if flat is not None:
            exact = run_child("add-flat", str(flat), str(more))
            row["index_vs_exact_flat"] = compare_with_flat(db, flat, before, exact) if "seconds" in exact else exact
            for f in tmp.glob(f"flat_{n}.db*"):
                f.unlink()
        row["search"] = run_child("search", str(db), str(tmp / f"queries_{n}.npy"))
        row["db_mb"] = round(db.stat().st_size / 2**20, 1)
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
        for f in tmp.glob(f"*_{n}.*"):
            f.unlink()
    return {"source": info, "sizes": rows}


# --------------------------------------------------------------------------- faults
def _faces(db: Path) -> list[tuple[str, int]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(p, j) for p, j in con.execute("SELECT p.path, f.face_index FROM faces f JOIN photos p ON p.id = f.photo")]
    finally:
        con.close()


def _state(db: Path) -> dict:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        named = sorted(con.execute("SELECT pe.name, p.path, f.face_index FROM faces f JOIN photos p ON p.id = f.photo "
                                   "JOIN people pe ON pe.id = f.person WHERE pe.name IS NOT NULL AND f.decided_by = 'user'"))
    finally:
        con.close()
    return {"integrity": ok, "named_faces": named}


def _index(folder: Path, db: Path, quiet: bool = True) -> list[str]:
    return [sys.executable, "-m", "vision_lib", "index", str(folder), "--db", str(db)] + (["--quiet"] if quiet else [])


#: The fault runs describe the photos for real (no disk cache), so that a kill lands in the work, not only in start-up.
_NO_CACHE = {**os.environ, "VISION_LIB_CACHE": "off"}


def faults(tmp: Path, photos: int, kills: int, seed: int = 0) -> dict:
    from vision_lib import Collection, config

    rng = random.Random(seed)
    root = config.dataset("lfw")
    chosen = sorted(root.rglob("*.jpg"))[:: max(1, len(list(root.rglob("*.jpg"))) // photos)][:photos]
    folder = tmp / "photos"
    for i, p in enumerate(chosen):
        if i % 2 == 0:
            (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, folder / p.parent.name / p.name)
    base = tmp / "base.db"
    subprocess.run(_index(folder, base), check=True, capture_output=True, env=_NO_CACHE)
    with Collection(base) as people:  # the user's decisions before the faults
        big = sorted(people.people(), key=lambda q: -q.faces)[:2]
        for k, person in enumerate(big):
            people.name(person.id, f"named {k}")
    for p in chosen[1::2]:
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, folder / p.parent.name / p.name)
    decided = _state(base)["named_faces"]

    clean = tmp / "clean.db"
    shutil.copy2(base, clean)
    start = time.perf_counter()
    subprocess.run(_index(folder, clean), check=True, capture_output=True, env=_NO_CACHE)
    duration = time.perf_counter() - start
    clean_faces = Counter(_faces(clean))
    runs = []
    for k in range(kills):
        db = tmp / f"kill_{k}.db"
        shutil.copy2(base, db)
        at = rng.uniform(0, duration)
        proc = subprocess.Popen(_index(folder, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_NO_CACHE)
        try:
            proc.wait(timeout=at)
            killed = False
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
        at_kill = len(_faces(db))
        again = subprocess.run(_index(folder, db), capture_output=True, text=True, env=_NO_CACHE)
        got = Counter(_faces(db))
        state = _state(db)
        runs.append({"kill_at_seconds": round(at, 2), "killed_before_end": killed, "faces_at_kill": at_kill,
                     "rerun_exit_code": again.returncode,
                     "duplicates": sum(c - 1 for c in got.values() if c > 1),
                     "missing_vs_clean": sum((clean_faces - got).values()), "extra_vs_clean": sum((got - clean_faces).values()),
                     "integrity_check": state["integrity"],
                     "user_decisions_kept": set(decided) <= set(state["named_faces"])})
    both = tmp / "both.db"
    shutil.copy2(base, both)
    procs = []
    for _ in range(2):  # the second starts while the first describes photos
        procs.append(subprocess.Popen(_index(folder, both, quiet=False), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=_NO_CACHE))
        time.sleep(duration / 4)
    outs = [p.communicate() for p in procs]
    got = Counter(_faces(both))
    two = {"exit_codes": [p.returncode for p in procs],
           "a_run_said_it_waits": any("waiting" in e for _, e in outs),
           "duplicates": sum(c - 1 for c in got.values() if c > 1),
           "missing_vs_clean": sum((clean_faces - got).values()), "integrity_check": _state(both)["integrity"]}
    base_faces = len(_faces(base))
    return {"photos": len(chosen), "base_faces": base_faces, "clean_faces": sum(clean_faces.values()), "named_faces": len(decided),
            "clean_run_seconds": round(duration, 1), "kills": runs,
            "all_kills_exact": all(r["duplicates"] == 0 and r["missing_vs_clean"] == 0 and r["extra_vs_clean"] == 0
                                   and r["integrity_check"] == "ok" and r["user_decisions_kept"]
                                   and r["rerun_exit_code"] == 0 for r in runs),
            "kills_that_hit_a_running_index": sum(r["killed_before_end"] for r in runs),
            "kills_after_some_new_faces_were_written": sum(r["killed_before_end"] and base_faces < r["faces_at_kill"]
                                                           for r in runs),
            "two_index_at_once": two}


# --------------------------------------------------------------------------- targets
def targets(result: dict) -> dict:
    def get(*keys):
        node = result
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return None
            node = node[k]
        return node

    def check(value, ok):
        return None if value is None else bool(ok(value))

    out = {}
    for name, right, wrong in (("lfw", 0.95, 0.005), ("footballers", 0.85, 0.01)):
        out[f"{name}: right >= {right}"] = check(get(f"incremental_{name}", "collection", "right"), lambda v: v >= right)
        out[f"{name}: wrong <= {wrong}"] = check(get(f"incremental_{name}", "collection", "wrong"), lambda v: v <= wrong)
        out[f"{name}: BCubed F within 0.01 of from scratch"] = check(
            get(f"incremental_{name}", "collection_minus_from_scratch_bcubed_f"), lambda v: abs(v) <= 0.01)
    out["search: MAP >= 0.95 on LFW"] = check(get("incremental_lfw", "search", "mean_average_precision"), lambda v: v >= 0.95)
    for row in get("scale", "sizes") or []:
        n = row["faces"]
        out[f"{n}: add 1 % <= 3 % of build"] = check(row.get("add_over_build"), lambda v: v <= 0.03)
        if n >= 1_000_000:
            out["1M: build <= 600 s"] = check(row["build"].get("seconds"), lambda v: v <= 600)
            out["1M: peak <= 8 GB"] = check(max(row[k].get("peak_memory_gb", 0) for k in ("build", "add_1_percent", "search")),
                                            lambda v: v <= 8)
            out["1M: search <= 50 ms (median)"] = check(row["search"].get("median_ms"), lambda v: v <= 50)
        same = row.get("index_vs_exact_flat", {})
        if "same_decision" in same:
            out[f"{n}: index decides as the exact flat index (>= 99 %)"] = same["same_decision"] >= 0.99 * same["faces"]
    out["faults: every kill exact"] = get("faults", "all_kills_exact")
    two = get("faults", "two_index_at_once")
    out["faults: two index at once wait, exact"] = None if two is None else (
        two["exit_codes"] == [0, 0] and two["a_run_said_it_waits"] and two["duplicates"] == 0 and two["missing_vs_clean"] == 0)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip", nargs="*", default=[], choices=["lfw", "footballers", "review", "scale", "faults"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--fault-photos", type=int, default=200, help="LFW photos of the fault runs")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--keep", type=Path, help="copy each scale build (before its add) into this folder")
    ap.add_argument("--reverse-halves", action="store_true",
                    help="build from the second half of each person's photos, add the first")
    ap.add_argument("--split", choices=["first", "alternate", "random"], default="first",
                    help="which of each person's sorted photos build: the first half, every other one, a random half")
    ap.add_argument("--seed", type=int, default=0, help="the random split's seed")
    args = ap.parse_args()
    global REVERSE_HALVES, SPLIT, SEED
    REVERSE_HALVES, SPLIT, SEED = args.reverse_halves, args.split, args.seed
    result: dict = {"machine": {"cores": os.cpu_count(), "load_average": os.getloadavg()},
                    "halves": "reversed" if REVERSE_HALVES else "first builds",
                    "split": SPLIT + (f" (seed {SEED})" if SPLIT == "random" else "")}
    with tempfile.TemporaryDirectory(prefix="bench_collection_") as tmp:
        tmp = Path(tmp)
        if "lfw" not in args.skip:
            result["incremental_lfw"] = incremental("lfw", "subject", tmp, search_too=True)
            print(json.dumps(result["incremental_lfw"]), file=sys.stderr, flush=True)
        if "footballers" not in args.skip:
            result["incremental_footballers"] = incremental("footballers", "largest", tmp)
            print(json.dumps(result["incremental_footballers"]), file=sys.stderr, flush=True)
        for name, by in (("lfw", "subject"), ("footballers", "largest")):
            if name not in args.skip and "review" not in args.skip:  # the other user model, same run
                result[f"incremental_{name}_reviewing_user"] = incremental(name, by, tmp, review=True)
                print(json.dumps(result[f"incremental_{name}_reviewing_user"]), file=sys.stderr, flush=True)
        if "faults" not in args.skip:
            (tmp / "faults").mkdir()
            result["faults"] = faults(tmp / "faults", args.fault_photos, args.kills)
            print(json.dumps(result["faults"]), file=sys.stderr, flush=True)
        if "scale" not in args.skip:
            (tmp / "scale").mkdir()
            result["scale"] = scale(args.sizes, tmp / "scale", args.keep)
    result["targets"] = targets(result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
