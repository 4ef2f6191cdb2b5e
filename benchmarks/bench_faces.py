"""Face detection on the footballer photos: coverage and speed, Haar recipe vs MTCNN (cache off).

Prints one JSON object. Every detector runs on the same photos in the same run, with the disk
cache off (``VISION_LIB_CACHE=off``) and worker start-up (TensorFlow import) included in the time,
because that is what a user waits for. Also times the ``mtcnn`` package's own eager path on a
subset (one process, model loaded first), as the baseline for the graph-compiled networks.

    .venv/bin/python benchmarks/bench_faces.py              # whole folder (a few minutes)
    .venv/bin/python benchmarks/bench_faces.py --limit 10   # 10 photos per player

Timings on a shared machine are noisy: quote the ratios; the load average is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
os.environ["VISION_LIB_CACHE"] = "off"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live workers, so far."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:  # a worker that just exited
            pass
    return total


def run(paths, detector: str, n_jobs: int | None, warm_up: bool = False, **params) -> dict:
    from vision_lib.faces import time_detection

    cpu = cpu_seconds()
    # Without warm-up, start-up (TensorFlow import in each worker) counts: a user waits for it too.
    stats = time_detection(paths, detector, n_jobs=n_jobs, warm_up=warm_up, **params)
    out = {k: stats[k] for k in ("photos", "coverage", "unreadable", "seconds", "photos_per_s")}
    # CPU seconds per photo hardly depend on what else runs on the machine (wall time does).
    out["cpu_seconds_per_photo"] = round((cpu_seconds() - cpu) / max(1, len(paths)), 3)
    return out


def main(argv=None) -> int:
    from vision_lib.config import dataset, n_jobs
    from vision_lib.io import photo_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="photos per player (default: all)")
    ap.add_argument("--baseline-limit", type=int, default=10,
                    help="photos per player for the eager-MTCNN baseline (0: skip)")
    ap.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    photos = photo_set(dataset("footballers"), labelled=True)
    chosen = photos.limit(per_label=args.limit, seed=args.seed) if args.limit else photos
    load_before = os.getloadavg()[0]
    out = {
        "data": str(photos.root),
        "photos": len(chosen),
        "players": len(chosen.classes),
        "workers": n_jobs(args.jobs),
        "cache": "off",
        "load_average_before": round(load_before, 2),
    }
    out["haar"] = run(chosen.paths, "haar", args.jobs)
    out["mtcnn"] = run(chosen.paths, "mtcnn", args.jobs)
    if args.baseline_limit:
        sub = photos.limit(per_label=args.baseline_limit, seed=args.seed + 1)
        out["baseline_subset"] = len(sub)
        # Steady per-photo cost in one process, model loaded first: graph-compiled vs eager networks.
        out["mtcnn_eager_subset"] = run(sub.paths, "mtcnn", 1, warm_up=True, compiled=False)
        out["mtcnn_compiled_subset"] = run(sub.paths, "mtcnn", 1, warm_up=True)
        out["speedup_compiled_vs_eager"] = round(
            out["mtcnn_compiled_subset"]["photos_per_s"] / out["mtcnn_eager_subset"]["photos_per_s"], 2)
    out["coverage_mtcnn_vs_haar"] = round(out["mtcnn"]["coverage"] / max(1e-9, out["haar"]["coverage"]), 2)
    out["speed_haar_vs_mtcnn"] = round(out["haar"]["photos_per_s"] / out["mtcnn"]["photos_per_s"], 2)
    # The target: the whole folder (1,028 photos) in under 2.5 minutes on 2 cores.
    out["mtcnn_minutes_per_1028_photos"] = round(1028 / out["mtcnn"]["photos_per_s"] / 60, 2)
    # What two otherwise idle cores would take, from the CPU time actually spent (start-up included).
    out["mtcnn_minutes_per_1028_photos_from_cpu_time_on_2_cores"] = round(
        1028 * out["mtcnn"]["cpu_seconds_per_photo"] / 2 / 60, 2)
    out["load_average_after"] = round(os.getloadavg()[0], 2)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
