"""Scale benchmark: identity clustering at 10k / 100k / 1M faces, and extraction on Dask vs the local pool.

Prints JSON. Clustering inputs are made from real descriptors: the LFW photos described with the
library's default descriptor (``face_set``, disk-cached), then copies of the whole set, each turned by
its own random orthogonal rotation about the descriptors' mean (``graph_cluster.rotated_copies``);
the truth is copy x person. Each size runs in a fresh process so its peak memory (RSS high-water) is
its own. At the smallest size the exact method runs too (the baseline the graph algorithm is
compared with). Extraction throughput: the same photos described with caching off by the local pool
and by a local Dask cluster of 1 and 2 single-threaded workers; the 25,000-photo estimate is
``25000 / throughput``.

    flock /tmp/vision_heavy.lock python benchmarks/bench_scale.py --sizes 10000 100000 1000000
    python benchmarks/bench_scale.py --sizes 10000 --extract 0        # clustering only
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LFW = Path(os.environ.get("VISION_LIB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "lfw"
COLLECTION = 25_000  # photos in the collection the issue names


def lfw_descriptors(progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Subject-face descriptors and person labels of the LFW photos (library default descriptor, disk-cached)."""
    from vision_lib.cluster import face_set

    faces = face_set(LFW, labelled=True, progress=progress)
    keep = np.asarray(faces.subject, bool)
    return np.asarray(faces.descriptors)[keep], np.asarray(faces.labels)[keep]


def one_size(n: int, algorithm: str) -> dict:
    """Cluster ``n`` rotated-copy descriptors with ``algorithm``; run in its own process."""
    from vision_lib.cluster import IdentityClustering, external_metrics
    from vision_lib.graph_cluster import rotated_copies

    X, labels = lfw_descriptors()
    Y, truth = rotated_copies(X, labels, n)
    del X
    start = time.perf_counter()
    found = IdentityClustering(algorithm=algorithm).fit_predict(Y)
    seconds = time.perf_counter() - start
    m = external_metrics(truth, found)
    return {"faces": n, "algorithm": algorithm, "seconds": round(seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "bcubed_f": round(m["bcubed_f"], 4), "bcubed_precision": round(m["bcubed_precision"], 4),
            "bcubed_recall": round(m["bcubed_recall"], 4), "n_clusters": m["n_clusters"],
            "n_true": m["n_true"], "unassigned": round(m["unassigned"], 4)}


def _child(n: int, algorithm: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", str(n), algorithm], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def extraction(n_photos: int) -> dict:
    """Photos per second: local pool (all cores) vs a local Dask cluster of 1 and 2 workers."""
    from distributed import LocalCluster

    from vision_lib import parallel
    from vision_lib.faces import detect_paths
    from vision_lib.io import photo_set

    paths = sorted(photo_set(LFW).paths)[:n_photos]

    def run() -> tuple[float, list]:
        start = time.perf_counter()
        found = detect_paths(paths, descriptors=True, cache=False, progress=False)
        return time.perf_counter() - start, found

    detect_paths(paths[:2], descriptors=True, cache=False, progress=False, n_jobs=1)  # model load, not timed
    sec, base = run()
    rows = {"local_pool": {"seconds": round(sec, 1), "photos_per_s": round(len(paths) / sec, 3)}}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as c, \
                parallel.use_scheduler(c.scheduler_address):
            run_warm = detect_paths(paths[:2 * workers * 8], descriptors=True, cache=False, progress=False)  # workers load models
            sec, found = run()
        same = len(base) == len(found) and all(
            len(a.faces) == len(b.faces) and (a.descriptors is None) == (b.descriptors is None)
            and (a.descriptors is None or np.allclose(a.descriptors, b.descriptors, atol=1e-4))
            for a, b in zip(base, found))
        rows[f"dask_{workers}_workers"] = {"seconds": round(sec, 1), "photos_per_s": round(len(paths) / sec, 3),
                                           "same_as_local": bool(same), "warmup_photos": len(run_warm)}
    per_worker = rows["dask_1_workers"]["photos_per_s"]
    local = rows["local_pool"]["photos_per_s"]
    return {"photos": len(paths), "cpu_count": os.cpu_count(), **rows,
            "ratio_dask2_vs_local": round(rows["dask_2_workers"]["photos_per_s"] / local, 3),
            "ratio_dask1_vs_local": round(per_worker / local, 3),
            f"estimate_{COLLECTION}_photos": {
                "this_machine_local_pool_hours": round(COLLECTION / local / 3600, 2),
                "per_single_core_worker_hours": round(COLLECTION / per_worker / 3600, 2),
                "formula": f"hours on N single-core workers ~= {COLLECTION} / ({per_worker} * N) / 3600 "
                           "(linear in N while the photos' filesystem keeps up)"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--extract", type=int, default=48, help="photos for the extraction throughput (0: skip)")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(int(args.one[0]), args.one[1])))
        return
    X, labels = lfw_descriptors(progress=True)  # fills the disk cache once, before the timed children
    report: dict = {"source": {"photos_dir": str(LFW), "faces": len(X), "people": len(set(labels.tolist())),
                               "dim": int(X.shape[1])}, "clustering": []}
    for i, n in enumerate(sorted(args.sizes)):
        report["clustering"].append(_child(n, "auto"))
        if i == 0:  # the baseline: the exact method at the smallest size
            exact = _child(n, "exact")
            report["clustering"].append(exact)
            report["graph_vs_exact_bcubed_f_diff"] = round(report["clustering"][0]["bcubed_f"] - exact["bcubed_f"], 4)
        print(json.dumps(report["clustering"][-1]), file=sys.stderr, flush=True)
    if args.extract:
        report["extraction"] = extraction(args.extract)
    big = [r for r in report["clustering"] if r["faces"] >= 1_000_000 and r["algorithm"] == "auto"]
    if big:
        r = big[0]
        report["targets_1M"] = {"seconds_le_600": r["seconds"] <= 600, "peak_le_8GB": r["peak_rss_mb"] <= 8192,
                                "bcubed_f_ge_0.95": r["bcubed_f"] >= 0.95}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
