"""Scale: clustering a descriptor table, the k-NN graph method, and the parallel map on Dask."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vision_lib import parallel
from vision_lib.cli import main
from vision_lib.cluster import IdentityClustering, external_metrics
from vision_lib.tables import FeatureTable
from vision_lib.graph_cluster import rotated_copies, threshold_clusters


def _people(rng, n_people=30, per=12, d=32, spread=0.04):
    centres = rng.normal(size=(n_people, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    X = np.repeat(centres, per, axis=0) + rng.normal(scale=spread, size=(n_people * per, d))
    return X.astype(np.float32), np.repeat(np.arange(n_people), per)


def test_graph_method_agrees_with_the_exact_one(rng):
    X, truth = _people(rng)
    exact = IdentityClustering(method="agglomerative", threshold=0.6, algorithm="exact").fit_predict(X)
    graph = IdentityClustering(method="agglomerative", threshold=0.6, algorithm="graph").fit_predict(X)
    f_exact = external_metrics(truth, exact)["bcubed_f"]
    f_graph = external_metrics(truth, graph)["bcubed_f"]
    assert f_exact > 0.95 and abs(f_graph - f_exact) <= 0.01


def test_graph_unassigns_strangers(rng):
    X, _ = _people(rng, n_people=10)
    loners = rng.normal(size=(15, X.shape[1])).astype(np.float32) * 3  # far from everyone and each other
    labels = threshold_clusters(np.vstack([X, loners]), 0.6, outlier_distance=0.6)
    assert (labels[-15:] == -1).all() and (labels[:-15] >= 0).mean() > 0.95


def test_auto_switches_to_the_graph_above_the_limit(monkeypatch, rng):
    from vision_lib import cluster

    X, truth = _people(rng, n_people=20, per=10)
    monkeypatch.setattr(cluster, "GRAPH_LIMIT", 100)
    model = IdentityClustering(method="hybrid", threshold=0.6)
    assert model._use_graph(len(X)) and external_metrics(truth, model.fit_predict(X))["bcubed_f"] > 0.95


def test_rotated_copies_keep_distances_and_make_new_people(rng):
    X, truth = _people(rng, n_people=5, per=4)
    Y, ident = rotated_copies(X, truth, 3 * len(X), seed=1)
    assert Y.shape == (60, X.shape[1]) and len(np.unique(ident)) == 15
    from scipy.spatial.distance import pdist

    np.testing.assert_allclose(pdist(Y[20:40]), pdist(X), rtol=1e-4, atol=1e-4)


def _table(tmp_path: Path, rng) -> Path:
    X, truth = _people(rng, n_people=6, per=8)
    sources = [f"person{t}/photo{i}.jpg" for i, t in enumerate(truth)]
    table = FeatureTable("descriptor", X, sources, [s.split("/")[0] for s in sources],
                         np.zeros(len(X), int), np.tile([0, 0, 10, 10], (len(X), 1)),
                         [("person0/broken.jpg", "not an image")], {"threshold": 0.6})
    return table.save(tmp_path / "faces.npz")


def test_cluster_command_takes_a_descriptor_table(tmp_path, rng):
    path = _table(tmp_path, rng)
    assert main(["cluster", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    with open(tmp_path / "out" / "clusters.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 48 and set(rows[0]) == {"source", "face_index", "cluster"}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["faces"] == 48 and metrics["external"]["bcubed_f"] > 0.95
    assert not any(p.is_dir() for p in (tmp_path / "out").iterdir())  # no photo copies without photos


@pytest.mark.parametrize("content", [b"", b"just some text\n", b"PK\x03\x04 not a real zip"])
def test_anything_else_is_an_error(tmp_path, content, capsys):
    bad = tmp_path / "table.npz"
    bad.write_bytes(content)
    assert main(["cluster", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "neither a folder of photos nor a feature table" in capsys.readouterr().err
    assert main(["cluster", str(tmp_path / "missing"), "--out", str(tmp_path / "out2")]) == 2
    assert not (tmp_path / "out").exists()


def test_a_table_of_another_kind_is_refused(tmp_path, rng, capsys):
    table = FeatureTable("histogram", rng.random((4, 8)), ["a.jpg"] * 4, [""] * 4, -np.ones(4, int),
                         -np.ones((4, 4), int), [], {})
    path = table.save(tmp_path / "hist.npz")
    assert main(["cluster", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "face descriptors" in capsys.readouterr().err


def _square(chunk, offset):
    return [x * x + offset for x in chunk]


def test_parallel_map_on_dask_equals_the_local_pool(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("VISION_LIB_CACHE", str(tmp_path / "cache"))
    items = list(range(50))
    local = parallel.map_ordered(_square, items, (3,), n_jobs=1, progress=False, chunk=7)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with parallel.use_scheduler(cluster.scheduler_address):
            remote = parallel.map_ordered(_square, items, (3,), progress=False, chunk=7)
        ran = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.task_prefixes])
    assert remote == local == [x * x + 3 for x in items]
    assert any("vision_lib" in k for k in ran)
    assert not any((tmp_path / "cache" / "dask_runs").glob("*"))  # a finished run leaves no journal


def test_an_interrupted_dask_run_resumes_from_its_journal(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("VISION_LIB_CACHE", str(tmp_path / "cache"))
    items = list(range(40))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with parallel.use_scheduler(cluster.scheduler_address):
            seen = []
            with pytest.raises(KeyboardInterrupt):
                for i, part in parallel.map_chunks(_square, [items[i:i + 5] for i in range(0, 40, 5)], (0,)):
                    seen.append(i)
                    if len(seen) == 3:
                        raise KeyboardInterrupt  # the user stops the run after three batches
            journal = list((tmp_path / "cache" / "dask_runs").glob("*/*.pkl"))
            assert len(journal) >= 3
            done = parallel.map_ordered(_square, items, (0,), progress=False, chunk=5)
    assert done == [x * x for x in items]


def test_a_scheduler_that_is_not_there_is_one_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("VISION_LIB_CACHE", str(tmp_path / "cache"))
    with parallel.use_scheduler("tcp://127.0.0.1:9"), pytest.raises(OSError, match="dask scheduler"):
        parallel.map_ordered(_square, [1, 2], (0,), progress=False)
