"""The stated ``far`` of the default open-set rule, checked on AT&T: a population no benchmark scores.

Until issue 34 this script *chose* ``classify.DEFAULT_FAR`` (``calibrate_far.py``, the AT&T protocol
of docs/decisions/default-far.md). Since issue 34 the rule is calibrated on the shipped curve of web
strangers (LFW calibration half, docs/openset.md), ``far`` is the share of stranger photos the rule
promises to name and 0.01 is the rate the library promises; nothing is chosen here any more. What
is left is a check on people and photos unlike LFW (grey 92x112 studio faces, ten near-identical
photos per person): with known AT&T people, does the share of the other AT&T people's photos named
stay near the stated rate?

* **Population**: ``$VISION_LIB_DATA/att_faces`` (40 people x 10 photos). LFW and the footballers,
  which ``bench_classify.py`` scores, are never read.
* **Features**: the library's default recipe (``classify.Recipe()``: YuNet + FaceNet).
* **Repeats**: for each of ``--repeats`` seeds and each number of known people in ``--known``
  (6, as the footballers model; 20, half of AT&T), that many people drawn at random as *known*,
  the others *strangers*. The known people's photos are split 70/30 (stratified, same seed);
  :func:`classify.train` on the 70 % as the default does (``--population web``: the shipped web
  curve; ``training``: the earlier calibration, leave one person out).
* **Measured** at each ``far`` of ``--grid`` (the rule re-thresholded with
  :meth:`OpenSetRule.threshold_for`, :func:`classify.photo_curve`): the share of the strangers'
  photos with a face that get a name (mean and max over the repeats, and the mean over the stated
  rate), and the known held-out photos' coverage and accuracy among those named.

Prints JSON. Usage: ``python benchmarks/far_on_att.py [--repeats 10] [--known 6 20] [--grid ...]
[--population web|training]``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from vision_lib import classify  # noqa: E402
from vision_lib.config import dataset  # noqa: E402
from vision_lib.io import photo_set  # noqa: E402

GRID = (0.005, 0.01, 0.02, 0.05, 0.1)


def one_draw(ps, photos: dict, n_known: int, seed: int, grid, population: str = "web") -> list[dict]:
    """Train on ``n_known`` people drawn with ``seed``; the curve over ``grid`` against the rest."""
    rng = np.random.default_rng(seed)
    known = set(rng.choice(ps.classes, n_known, replace=False).tolist())
    labels = np.asarray(ps.labels)
    known_set = ps.subset(np.flatnonzero(np.isin(labels, list(known))))
    strangers = [photos[p] for p, lab in zip(ps.paths, ps.labels) if lab not in known]
    train_set, test_set = classify.split(known_set, test_size=0.3, seed=seed)
    model = classify.train(train_set, photos=[photos[p] for p in train_set.paths], population=population,
                           progress=False)
    curve = classify.photo_curve(model, test_set, [photos[p] for p in test_set.paths], strangers, fars=grid)
    return [p for p in curve if p["far"] in grid]


def summarise(points: list[list[dict]], grid) -> list[dict]:
    out = []
    for i, far in enumerate(grid):
        rows = [curve[i] for curve in points]
        assert all(r["far"] == far for r in rows)
        named = np.array([r["strangers_named_share"] for r in rows])
        out.append({"far": far, "strangers_named_mean": round(float(named.mean()), 4),
                    "measured_over_stated": round(float(named.mean()) / far, 2),
                    "strangers_named_max": round(float(named.max()), 4),
                    "threshold_mean": round(float(np.mean([r["threshold"] for r in rows])), 4),
                    **{f"known_{k}_mean": round(float(np.mean([r[f"known_{k}"] for r in rows])), 4)
                       for k in ("coverage", "accuracy_named", "accuracy_with_face")}})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--known", type=int, nargs="+", default=[6, 20], help="numbers of known people")
    ap.add_argument("--grid", type=float, nargs="+", default=list(GRID))
    ap.add_argument("--population", choices=("web", "training"), default="web",
                    help="the rule's calibration strangers (train(population=...)); default: the library's")
    args = ap.parse_args()
    grid = tuple(sorted(args.grid))
    start = time.perf_counter()
    ps = photo_set(dataset("att_faces"), labelled=True)
    recipe = classify.Recipe()
    extracted = classify.extract(ps.paths, recipe, progress=False)
    photos = dict(zip(ps.paths, extracted))
    result = {"population": f"att_faces: {len(ps.classes)} people, {len(ps)} photos",
              "recipe": {"detector": recipe.detector, "descriptor": recipe.descriptor},
              "photos_with_face": sum(1 for ph in extracted if ph.faces),
              "protocol": "per repeat: n known people drawn at random, 70/30 split of their photos, "
                          f"classify.train on the 70 % (population={args.population!r}); strangers = all "
                          "photos of the other AT&T people; stated far against the share of their photos named",
              "repeats": args.repeats, "grid": list(grid), "calibration": args.population, "by_known": {}}
    for n in args.known:
        curves = [one_draw(ps, photos, n, seed, grid, args.population) for seed in range(args.repeats)]
        result["by_known"][str(n)] = summarise(curves, grid)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
