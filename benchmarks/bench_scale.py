"""Benchmark scale: identity clustering of 10k / 100k / 1M faces from a table, and extraction on Dask.

Clustering: the LFW photos are described with the default detector and descriptor (disk-cached), one
row per photo (its subject face), labelled by person. Copies of the whole set, each turned by its own
random orthogonal rotation about the descriptors' mean, make identity-structured descriptors at any
size (the within- and between-person geometry of real faces, new people in every copy; truth = copy x
person). Each size is written as the feature table `vision-lib features --kind descriptor` writes and
clustered by `vision-lib cluster TABLE.npz --out OUT` in a child process: wall seconds, the child's
peak memory (ru_maxrss) and BCubed F of clusters.csv against the truth. At 10k the exact method runs
on the same rows in the same run (BCubed F within 0.01 is the target).

Extraction: `features --kind descriptor` on footballer photos with the cache off, on the local pool
and on a local Dask cluster of 1 and 2 worker processes (one thread each); photos per second, the
ratio to the local pool, and whether rows and descriptors match the local run (to 1e-4).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--photos 120] [--skip extraction]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def lfw_rows() -> tuple[np.ndarray, np.ndarray, dict]:
    """Subject-face descriptors of the LFW photos with their person, and what described them."""
    from vision_lib import cluster, config
    from vision_lib.models import get_descriptor

    faces = cluster.face_set(config.dataset("lfw"), labelled=True, progress=False)
    keep = np.asarray(faces.subject, bool)
    X = np.asarray(faces.descriptors)[keep]
    labels = np.asarray(faces.labels)[keep]
    d = get_descriptor(faces.descriptor)
    return X, labels, {"descriptor": d.id, "threshold": float(d.threshold), "photos": len(faces.photos),
                       "rows": int(len(X)), "people": int(len(set(labels)))}


def write_table(X: np.ndarray, ident: np.ndarray, where: Path, info: dict, box: int = 0) -> Path:
    """A descriptor table of ``X`` (one photo per row, person folder ``p<identity>``); ``box``: the side
    of every face's box (0: none recorded; a collection counts only faces of a real size as clear)."""
    from vision_lib.tables import FeatureTable

    sources = [f"p{c}/f{i}.jpg" for i, c in enumerate(ident)]
    boxes = np.tile([0, 0, box, box], (len(X), 1))
    table = FeatureTable("descriptor", X, sources, [s.split("/")[0] for s in sources], np.zeros(len(X), int),
                         boxes, [], {"descriptor": info["descriptor"], "threshold": info["threshold"]})
    return table.save(where)


def bcubed(truth: np.ndarray, csv_path: Path) -> dict:
    from vision_lib.cluster import external_metrics

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    order = np.array([int(r["source"].split("/f")[1].split(".")[0]) for r in rows])
    labels = np.empty(len(rows), int)
    labels[order] = [int(r["cluster"]) for r in rows]
    m = external_metrics(truth, labels)
    return {k: round(float(m[k]), 4) for k in ("bcubed_f", "bcubed_precision", "bcubed_recall")} | {
        "unassigned": round(float(np.mean(labels < 0)), 4), "clusters": int(labels.max() + 1)}


def cluster_size(X0: np.ndarray, labels: np.ndarray, info: dict, n: int, tmp: Path) -> dict:
    from vision_lib.graph_cluster import rotated_copies

    X, ident = rotated_copies(X0, labels, n, seed=0)
    table = write_table(X, ident, tmp / f"faces_{n}.npz", info)
    out = tmp / f"out_{n}"
    cmd = [sys.executable, "-m", "vision_lib", "cluster", str(table), "--out", str(out), "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest child so far
    row = {"faces": n, "true_people": int(len(np.unique(ident))), "exit_code": proc.returncode,
           "seconds": round(seconds, 1), "peak_memory_gb": round(peak / 2**20, 2),
           "peak_is_this_run": peak > before}
    if proc.returncode:
        row["stderr"] = proc.stderr[-2000:]
        return row
    row |= bcubed(ident, out / "clusters.csv")
    row["algorithm"] = "graph" if n > _graph_limit() else "exact"
    if n <= 20000:  # the exact method on the same rows, same run
        from vision_lib.cluster import IdentityClustering, external_metrics

        t = time.perf_counter()
        exact = IdentityClustering(algorithm="exact", descriptor=_name(info)).fit_predict(X)
        row["exact_seconds"] = round(time.perf_counter() - t, 1)
        row["exact_bcubed_f"] = round(float(external_metrics(ident, exact)["bcubed_f"]), 4)
        graph = IdentityClustering(algorithm="graph", descriptor=_name(info)).fit_predict(X)
        row["graph_bcubed_f"] = round(float(external_metrics(ident, graph)["bcubed_f"]), 4)
        row["graph_minus_exact_bcubed_f"] = round(row["graph_bcubed_f"] - row["exact_bcubed_f"], 4)
    return row


def _graph_limit() -> int:
    from vision_lib.cluster import GRAPH_LIMIT

    return GRAPH_LIMIT


def _name(info: dict) -> str | None:
    from vision_lib.models import descriptor_for_id

    d = descriptor_for_id(info["descriptor"])
    return d.name if d else None


def extraction(photos: int) -> dict:
    """features --kind descriptor, cache off: the local pool against a local Dask cluster of 1 and 2 workers."""
    os.environ["VISION_LIB_CACHE"] = "off"
    from distributed import Client, LocalCluster

    from vision_lib import config, io, parallel, tables

    root = config.dataset("footballers")
    sample = Path(tempfile.mkdtemp(prefix="bench_scale_photos_"))
    for p in io.list_images(root)[:: max(1, len(io.list_images(root)) // photos)][:photos]:
        (sample / p.parent.name).mkdir(exist_ok=True)
        (sample / p.parent.name / p.name).symlink_to(p)
    runs = {}

    def timed(label: str):
        start = time.perf_counter()
        table = tables.folder_features(sample, "descriptor", progress=False)
        runs[label] = (time.perf_counter() - start, table)

    timed("local pool (2 processes)")
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
                Client(cl) as client:
            client.run(lambda: __import__("vision_lib.faces"))  # worker start-up is not photo throughput
            with parallel.use_scheduler(cl.scheduler_address):
                timed(f"dask, {workers} worker{'s' if workers > 1 else ''}")
            ran = client.run_on_scheduler(lambda dask_scheduler: sum(
                1 for k in dask_scheduler.task_prefixes if "vision_lib" in str(k)))
        runs[f"dask, {workers} worker{'s' if workers > 1 else ''}"] += (ran,)
    base_s, base = runs["local pool (2 processes)"][:2]
    out = {"photos": photos, "runs": {}}
    for label, (seconds, table, *ran) in runs.items():
        same = (table.sources == base.sources and np.array_equal(table.face_index, base.face_index)
                and table.X.shape == base.X.shape and bool(np.allclose(table.X, base.X, atol=1e-4)))
        out["runs"][label] = {"seconds": round(seconds, 1), "photos_per_second": round(photos / seconds, 2),
                              "throughput_vs_local_pool": round(base_s / seconds, 2), "same_rows_as_local": same}
        if ran:
            out["runs"][label]["scheduler_task_prefixes_of_vision_lib"] = ran[0]
    per_worker = out["runs"]["dask, 1 worker"]["photos_per_second"]
    out["estimate_25000_photos_minutes"] = {
        "this machine (local pool)": round(25000 / out["runs"]["local pool (2 processes)"]["photos_per_second"] / 60, 1),
        **{f"{n} one-core Dask workers (linear in workers, photos on shared storage)": round(25000 / (per_worker * n) / 60, 1)
           for n in (2, 8, 32)},
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--photos", type=int, default=120, help="footballer photos for the extraction timing")
    ap.add_argument("--skip", nargs="*", default=[], choices=["clustering", "extraction"])
    args = ap.parse_args()
    result: dict = {"machine": {"cores": os.cpu_count(), "load_average": os.getloadavg()}}
    if "clustering" not in args.skip:
        X0, labels, info = lfw_rows()
        result["source"] = info
        rows = []
        with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
            for n in args.sizes:
                rows.append(cluster_size(X0, labels, info, n, Path(tmp)))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        result["clustering"] = rows
        big = [r for r in rows if r["faces"] >= 1_000_000 and not r["exit_code"]]
        result["targets"] = {
            "1M: <= 600 s": big[0]["seconds"] <= 600 if big else None,
            "1M: peak <= 8 GB": big[0]["peak_memory_gb"] <= 8 if big else None,
            "1M: BCubed F >= 0.95": big[0]["bcubed_f"] >= 0.95 if big else None,
            "10k: graph within 0.01 of exact": next((abs(r["graph_minus_exact_bcubed_f"]) <= 0.01 for r in rows
                                                     if "graph_minus_exact_bcubed_f" in r), None),
        }
    if "extraction" not in args.skip:
        result["extraction"] = extraction(args.photos)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
