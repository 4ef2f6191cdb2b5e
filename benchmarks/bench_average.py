"""Average faces: sharpness and identity preservation, against the naive and eye-aligned baselines.

For every person of the footballers (6) and LFW (96) sets, four averages are made in the same run:

* ``naive``      baseline: largest face of every photo, its square box resized, no alignment;
* ``eyes``       baseline: largest face of every photo, two-eye similarity alignment, no cleaning;
* ``similarity`` vision_lib: faces selected (quality + dlib identity), five-point alignment;
* ``landmarks``  vision_lib: same faces, then warped by dlib's 68 landmarks onto the mean shape.

Sharpness is the variance of the Laplacian of the grey average (all at the same size). Identity is
kept when the dlib descriptor of the average image is nearer to its own person's mean descriptor
than to any other person's. A person's mean descriptor is the mean over the largest face of each of
their photos (no cleaning, so it does not depend on any method's selection). The average image is
described after MTCNN finds its face; when MTCNN finds none, the known face box of the frame is
used instead, and the JSON counts how often (``frame_box_fallbacks``).

Usage: ``python benchmarks/bench_average.py [--limit N] [--sets footballers lfw] [--size 160]``
(``--limit`` = photos per person, for a quick look). Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vision_lib import average as A  # noqa: E402
from vision_lib.config import dataset  # noqa: E402
from vision_lib.io import photo_set  # noqa: E402

VARIANTS = {  # name: (alignment method, select faces?)
    "naive": ("naive", False),
    "eyes": ("eyes", False),
    "similarity": ("similarity", True),
    "landmarks": ("landmarks", True),
}


def evaluate(set_name: str, limit: int | None, size: int, seed: int) -> dict:
    ps = photo_set(dataset(set_name), labelled=True)
    if limit:
        ps = ps.limit(per_label=limit, seed=seed)
    groups: dict[str, list] = {}
    for p, lab in zip(ps.paths, ps.labels):
        groups.setdefault(lab, []).append(p)
    t0 = time.perf_counter()
    faces = A.collect_faces(groups, progress=False)
    detect_s = time.perf_counter() - t0
    names, means = A.group_mean_descriptors(faces)
    out = {"groups": len(names), "photos": len(ps), "detect_seconds_cached_or_not": round(detect_s, 1),
           "methods": {}}
    for label, (method, select) in VARIANTS.items():
        t0 = time.perf_counter()
        kept, sharp, used, fallbacks, misses, dist_own = 0, [], [], 0, [], []
        for name in names:
            res = A.average_group(faces[name], method=method, size=size, select=select)
            if res.image is None:
                misses.append({"group": name, "nearest": None})
                continue
            sharp.append(A.laplacian_sharpness(res.image))
            used.append(res.n_used / max(1, res.n_faces))
            check = A.identity_check(res, names, means)
            fallbacks += check.found == "frame box"
            dist_own.append(check.own)
            if check.kept:
                kept += 1
            else:
                misses.append({"group": name, "nearest": check.nearest})
        out["methods"][label] = {
            "identity_kept": kept,
            "identity_rate": round(kept / len(names), 4),
            "sharpness_min": round(float(np.min(sharp)), 2),
            "sharpness_median": round(float(np.median(sharp)), 2),
            "sharpness_max": round(float(np.max(sharp)), 2),
            "mean_fraction_of_faces_used": round(float(np.mean(used)), 3),
            "mean_distance_to_own_mean": round(float(np.mean(dist_own)), 4),
            "frame_box_fallbacks": fallbacks,
            "missed": misses[:20],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    base = out["methods"]["naive"]
    for m in out["methods"].values():
        m["sharpness_median_vs_naive"] = round(m["sharpness_median"] / base["sharpness_median"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["footballers", "lfw"])
    ap.add_argument("--limit", type=int, default=None, help="photos per person (default: all)")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    report = {"size": args.size, "limit_per_person": args.limit,
              "sets": {s: evaluate(s, args.limit, args.size, args.seed) for s in args.sets}}
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    targets = {}
    if "footballers" in report["sets"]:
        m = report["sets"]["footballers"]["methods"]["landmarks"]
        targets["footballers_identity_all"] = m["identity_kept"] == report["sets"]["footballers"]["groups"]
    if "lfw" in report["sets"]:
        targets["lfw_identity_rate_ge_0.95"] = report["sets"]["lfw"]["methods"]["landmarks"]["identity_rate"] >= 0.95
    report["targets_met"] = targets
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
