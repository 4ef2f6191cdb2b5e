"""Benchmark the first answer of `vision-lib serve` after it says ready (issue 36).

Starts the real server (`python -m vision_lib serve --port 0`) and, the moment it prints its URL,
sends a held-out 1024-px footballer photo with a face; then ``--photos`` more, one at a time. The
first answer is compared with the median of the later ones (same run, same server). With
``--compare-with DIR`` the same is done, in alternation, with the package found in DIR (e.g. a
checkout of the previous version) first on ``PYTHONPATH``: the baseline's first answer.

    python benchmarks/bench_serve_first.py [--model BUNDLE] [--photos 8] [--rounds 2] [--compare-with DIR]

Prints one JSON object on stdout. Target: first answer <= 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import TIMEOUT, make_bundle, photos_1024, start_server  # noqa: E402


def one_server(model: Path, photos: list[tuple[str, bytes]], pythonpath: str) -> dict:
    """Start a server, time its first answer and the next ones, stop it."""
    import requests

    # `python -m vision_lib` imports from its working folder first: start it in the checkout to time,
    # with that checkout on PYTHONPATH too, and an empty disk cache (no answer known in advance).
    saved, cwd = {k: os.environ.get(k) for k in ("PYTHONPATH", "VISION_LIB_CACHE")}, os.getcwd()
    os.environ["PYTHONPATH"] = pythonpath
    os.environ["VISION_LIB_CACHE"] = tempfile.mkdtemp(prefix="bench_serve_first_cache_")
    os.chdir(pythonpath)
    try:
        proc, url, startup = start_server(model, 10, 2)
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        times, faces = [], []
        for name, data in photos:
            t0 = time.perf_counter()
            r = requests.post(url + "api/classify", files={"file": (name, data, "image/jpeg")}, timeout=TIMEOUT)
            times.append(time.perf_counter() - t0)
            faces.append(len(r.json().get("faces", [])) if r.status_code == 200 else -1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    later = float(np.median(times[1:]))
    return {"startup_s": round(startup, 2), "first_s": round(times[0], 3), "later_p50_s": round(later, 3),
            "first_over_later": round(times[0] / later, 2), "faces_in_first_photo": faces[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="bundle from `vision-lib train` (default: train a small one)")
    ap.add_argument("--photos", type=int, default=8, help="photos per server start (the first is timed alone)")
    ap.add_argument("--rounds", type=int, default=2, help="server starts per version")
    ap.add_argument("--compare-with", help="a checkout whose vision_lib serves as the baseline")
    args = ap.parse_args()

    from vision_lib.config import dataset

    footballers = dataset("footballers")
    tmp = Path(tempfile.mkdtemp(prefix="bench_serve_first_"))
    model, labelled = (args.model.resolve(), []) if args.model else make_bundle(footballers, tmp, per_player=8)
    paths = [p for p, _ in labelled] or sorted(footballers.rglob("*.jpg"))[::37]
    photos = photos_1024(paths[: args.photos * args.rounds])
    ours = str(Path(__file__).resolve().parent.parent)
    runs: dict[str, list[dict]] = {"this": [], "baseline": []}
    for k in range(args.rounds):
        batch = photos[k * args.photos:(k + 1) * args.photos]  # a different first photo each round
        runs["this"].append(one_server(model, batch, ours))
        if args.compare_with:
            runs["baseline"].append(one_server(model, batch, str(Path(args.compare_with).resolve())))
    out = {"target_first_s": 0.5, "photos_per_start": args.photos, "runs": runs,
           "this_first_s_max": max(r["first_s"] for r in runs["this"])}
    if runs["baseline"]:
        out["baseline_first_over_this_first"] = round(
            float(np.median([b["first_s"] for b in runs["baseline"]]) / np.median([t["first_s"] for t in runs["this"]])), 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
