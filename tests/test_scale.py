"""Scale: clustering a descriptor table, the k-NN graph clustering, and the one parallel map (local / Dask)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vision_lib import parallel
from vision_lib.cli import main
from vision_lib.cluster import IdentityClustering, external_metrics
from vision_lib.tables import FeatureTable
from vision_lib.graph_cluster import rotated_copies, threshold_clusters


def _people(n_people: int = 30, per: int = 8, d: int = 16, spread: float = 0.08, seed: int = 0):
    """Identity-structured points: people far apart (well beyond 0.6), faces close to their person."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, d))
    centres *= 2.0 / np.linalg.norm(centres, axis=1, keepdims=True)
    X = np.repeat(centres, per, axis=0) + rng.normal(scale=spread, size=(n_people * per, d))
    return X, np.repeat(np.arange(n_people), per)


def _table(tmp_path: Path, X: np.ndarray, person: np.ndarray, settings: dict | None = None) -> Path:
    sources = [f"p{p:02d}/img{i:03d}.jpg" for i, p in enumerate(person)]
    table = FeatureTable(kind="descriptor", X=X, sources=sources, labels=[s.split("/")[0] for s in sources],
                         face_index=np.zeros(len(X), int), boxes=np.zeros((len(X), 4), int),
                         rejected=[("p00/broken.jpg", "not an image")], settings=settings or {})
    return table.save(tmp_path / "table.npz")


# --------------------------------------------------------------------------- cluster TABLE
def test_cluster_table_writes_the_folder_outputs(tmp_path):
    X, person = _people()
    path = _table(tmp_path, X, person)
    out = tmp_path / "out"
    assert main(["cluster", str(path), "--out", str(out)]) == 0
    with open(out / "clusters.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["source", "face_index", "cluster"]
    assert len(rows) == len(X)
    found = np.array([int(r["cluster"]) for r in rows])
    assert external_metrics(person, found)["bcubed_f"] > 0.99
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["faces"] == len(X) and metrics["photos_rejected"] == 1
    assert not [p for p in out.iterdir() if p.is_dir()]  # no photo copies without photos


def test_cluster_table_takes_the_threshold_the_table_records(tmp_path):
    X, person = _people(spread=0.02)
    X = X * 0.1  # every distance scaled: 0.6 would join everyone, the recorded 0.06 separates the people
    path = _table(tmp_path, X, person, {"threshold": 0.06})
    out = tmp_path / "out"
    assert main(["cluster", str(path), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"]["threshold"] == pytest.approx(0.06)
    assert metrics["internal"]["n_clusters"] == len(np.unique(person))


@pytest.mark.parametrize("content", [b"not a zip at all", b"", b"PK\x03\x04 not a real zip", None])
def test_cluster_of_neither_folder_nor_table_is_an_error(tmp_path, content, capsys):
    path = tmp_path / "thing.npz"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    assert main(["cluster", str(path), "--out", str(out)]) != 0
    assert not (out / "clusters.csv").exists()
    assert str(path) in capsys.readouterr().err


def test_cluster_of_a_table_of_another_kind_is_an_error(tmp_path):
    table = FeatureTable(kind="mobilenet", X=np.zeros((3, 4)), sources=["a.jpg", "b.jpg", "c.jpg"],
                         labels=["", "", ""], face_index=np.full(3, -1), boxes=np.zeros((3, 4), int),
                         rejected=[], settings={})
    path = table.save(tmp_path / "t.npz")
    assert main(["cluster", str(path), "--out", str(tmp_path / "out")]) != 0


def test_cluster_real_table(lfw_dir, tmp_path):
    """A real small table: descriptors of a few LFW people, clustered from the .npz."""
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[:3]
    small = tmp_path / "photos"
    for p in people:
        (small / p.name).mkdir(parents=True)
        for photo in sorted(p.iterdir())[:4]:
            shutil.copy(photo, small / p.name / photo.name)
    table = tmp_path / "t.npz"
    assert main(["features", str(small), "--kind", "descriptor", "--out", str(table), "--jobs", "1"]) == 0
    out = tmp_path / "out"
    assert main(["cluster", str(table), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["faces"] >= 10 and metrics["internal"]["n_clusters"] >= 2
    assert (out / "clusters.csv").read_text().count("\n") == metrics["faces"] + 1


# --------------------------------------------------------------------------- graph clustering
def _graph_runs(monkeypatch) -> list[int]:
    """The sizes of the inputs the k-NN graph clustering ran on. The exact method finds these
    well-separated people too: only this says the graph did the work."""
    from vision_lib import graph_cluster

    ran, graph = [], graph_cluster.threshold_clusters

    def counted(X, *args, **kwargs):
        ran.append(len(X))
        return graph(X, *args, **kwargs)

    monkeypatch.setattr(graph_cluster, "threshold_clusters", counted)
    return ran


def test_graph_matches_exact_on_identity_structured_points(monkeypatch):
    X, person = _people(n_people=60, per=6, spread=0.05, seed=1)
    ran = _graph_runs(monkeypatch)
    exact = IdentityClustering(algorithm="exact").fit_predict(X)
    assert ran == []
    graph = IdentityClustering(algorithm="graph").fit_predict(X)
    assert ran == [len(X)]
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(exact, graph) > 0.99
    assert external_metrics(person, graph)["bcubed_f"] > 0.99


def test_graph_splits_pieces_larger_than_max_exact_and_keeps_people():
    X, person = _people(n_people=20, per=10, spread=0.05, seed=2)
    labels = threshold_clusters(X, 0.6, max_exact=15)  # one person per piece at most
    assert external_metrics(person, labels)["bcubed_f"] > 0.95
    # Those people are far apart: each is its own component and nothing is split. Eight people in a
    # row 0.5 apart are chained into one component of 80 at 0.6; only the split keeps them apart
    # (one exact clustering of the chain merges neighbours: BCubed F 0.67).
    rng = np.random.default_rng(4)
    step = rng.normal(size=16)
    step *= 0.5 / np.linalg.norm(step)
    chain = np.vstack([k * step + rng.normal(scale=0.01, size=(10, 16)) for k in range(8)])
    labels = threshold_clusters(chain, 0.6, max_exact=15)
    assert external_metrics(np.repeat(np.arange(8), 10), labels)["bcubed_f"] > 0.95


def test_graph_threshold_comes_from_the_caller():
    X, person = _people(n_people=10, per=6, spread=0.02, seed=3)
    X = X * 0.1
    assert len(set(threshold_clusters(X, 0.6).tolist()) - {-1}) == 1  # 0.6 is far too wide here
    assert len(set(threshold_clusters(X, 0.06).tolist()) - {-1}) == 10


def test_rotated_copies_keep_within_person_distances():
    X, person = _people(n_people=5, per=4)
    Y, ident = rotated_copies(X, person, 3 * len(X))
    from scipy.spatial.distance import pdist

    m = len(X)
    assert np.allclose(pdist(Y[m:2 * m]), pdist(X), atol=1e-5)  # a rotation keeps every distance
    assert len(np.unique(ident)) == 15 and not np.allclose(Y[m:2 * m], X)


# --------------------------------------------------------------------------- parallel map
def _square_chunk(chunk, offset, threads=None):
    return [x * x + offset for x in chunk]


def _logging_chunk(chunk, log_dir, threads=None):
    for x in chunk:
        (Path(log_dir) / f"{x}.done").write_text("")
    return [x + 1 for x in chunk]


def test_map_ordered_local_in_order():
    assert parallel.map_ordered(_square_chunk, list(range(20)), (1,), n_jobs=2, progress=False, chunk=3) == \
        [x * x + 1 for x in range(20)]


def _pids_of_nested_map(chunk, threads=None):
    import os

    inner = parallel.map_ordered(_pid_chunk, list(range(8)), n_jobs=2, progress=False, chunk=2)
    return [(os.getpid(), set(inner))]


def _pid_chunk(chunk, threads=None):
    import os

    return [os.getpid() for _ in chunk]


def test_a_map_inside_a_pool_worker_runs_in_that_worker():
    runs = parallel.map_ordered(_pids_of_nested_map, [0, 1], n_jobs=2, progress=False, chunk=1)
    assert all(inner == {worker} for worker, inner in runs)  # no pool of pools


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    # In-process workers (threads): the Dask path without starting processes.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        yield cluster


def test_dask_map_gives_the_local_result_and_resumes(dask_cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "journal_dir", lambda: tmp_path / "journal")
    log = tmp_path / "log"
    log.mkdir()
    items = list(range(40))
    chunks = [items[i:i + 4] for i in range(0, 40, 4)]
    local = parallel.map_ordered(_logging_chunk, items, (str(log),), n_jobs=1, progress=False, chunk=4)
    with parallel.use_scheduler(dask_cluster.scheduler_address):
        run = parallel.map_chunks(_logging_chunk, chunks, (str(log),))
        done = [next(run) for _ in range(3)]
        run.close()  # a crash after three finished batches: they wait in the journal
        assert len(list((tmp_path / "journal").rglob("*.pkl"))) == 3
        for f in log.iterdir():
            f.unlink()
        again = parallel.map_ordered(_logging_chunk, items, (str(log),), progress=False, chunk=4)
    assert again == local
    rerun = {int(f.stem) for f in log.iterdir()}
    assert not rerun & {x for i, _ in done for x in chunks[i]}  # finished batches were not sent again
    assert not list((tmp_path / "journal").rglob("*.pkl"))  # the run completed: nothing left to resume


def test_features_on_dask_equal_local(dask_cluster, lfw_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "journal_dir", lambda: tmp_path / "journal")
    sent = []  # the batches that went to the scheduler: without them "remote" is the local run again
    dask_map = parallel._dask_map

    def seen(address, func, chunks, *rest):
        sent.append((address, len(chunks)))
        return dask_map(address, func, chunks, *rest)

    monkeypatch.setattr(parallel, "_dask_map", seen)
    person = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[0]
    small = tmp_path / "photos" / person.name
    small.mkdir(parents=True)
    for photo in sorted(person.iterdir())[:4]:
        shutil.copy(photo, small / photo.name)
    from vision_lib.tables import folder_features

    local = folder_features(small.parent, "descriptor", n_jobs=1, progress=False)
    with parallel.use_scheduler(dask_cluster.scheduler_address):
        remote = folder_features(small.parent, "descriptor", progress=False)
    assert sent and all(address == dask_cluster.scheduler_address and n > 0 for address, n in sent), sent
    assert remote.sources == local.sources and np.array_equal(remote.face_index, local.face_index)
    assert np.allclose(remote.X, local.X, atol=1e-4)


def test_graph_unassigns_strangers(monkeypatch):
    X, _ = _people(n_people=10, spread=0.05)
    loners = np.random.default_rng(5).normal(size=(15, X.shape[1])) * 3  # far from everyone and each other
    ran = _graph_runs(monkeypatch)
    labels = IdentityClustering(algorithm="graph", threshold=0.6).fit_predict(np.vstack([X, loners]))
    assert ran == [len(X) + 15]
    assert (labels[-15:] == -1).all() and (labels[:-15] >= 0).mean() > 0.95


def test_auto_switches_to_the_graph_above_the_limit(monkeypatch):
    from vision_lib import cluster

    X, person = _people(n_people=20, per=10, spread=0.05)
    monkeypatch.setattr(cluster.estimator, "GRAPH_LIMIT", 100)
    ran = _graph_runs(monkeypatch)
    model = IdentityClustering(threshold=0.6)
    assert model._use_graph(len(X)) and external_metrics(person, model.fit_predict(X))["bcubed_f"] > 0.95
    assert ran == [len(X)]


def test_a_scheduler_that_is_not_there_is_one_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "journal_dir", lambda: tmp_path / "journal")
    with parallel.use_scheduler("tcp://127.0.0.1:9"), pytest.raises(OSError, match="dask scheduler"):
        parallel.map_ordered(_square_chunk, [1, 2], (0,), progress=False)
