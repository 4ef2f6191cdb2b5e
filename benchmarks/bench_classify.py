"""Who is in the photo: the default recipe against the classic recipe and the plain deep baseline.

On a FIXED held-out split (30% of each person's photos, stratified, seed 0) of
``$VISION_LIB_DATA/footballers`` (6 players, raw web photos) and of ``$VISION_LIB_DATA/lfw``
(96 people), three recipes are trained on the rest and scored in the same run:

* ``classic``   Haar faces (two eyes) + wavelet recipe (4096 values) + SVM; largest face of each
                training photo; the photo's label is its most confident face.
* ``reference`` MTCNN + dlib descriptor + SVM, largest face of each photo for training and for the
                answer, no cleaning, no "unknown".
* ``default``   vision_lib's default: MTCNN + dlib + the classifier chosen by cross-validation on
                the training faces (``model="auto"``), training folders cleaned by agreement,
                the photo's label is its most confident *known* face (unknown below thresholds
                learnt from the training data).

Scoring is honest: the truth is the folder name, even for test photos that show somebody else.
``accuracy_with_face`` = right answers / photos where the model names someone; ``accuracy_all`` =
right answers / all test photos (no answer counts as wrong); ``coverage`` = share of test photos
where the model names someone. Ratios against the reference are printed too.

Usage: ``python benchmarks/bench_classify.py [--sets footballers lfw] [--recipes ...] [--limit N]``.
Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vision_lib import classify  # noqa: E402
from vision_lib.config import dataset  # noqa: E402
from vision_lib.io import photo_set  # noqa: E402

RECIPES = {
    "classic": dict(features="wavelet", detector="haar", model="svm_rbf", clean="largest", choose="confident"),
    "reference": dict(features="embedding", detector="mtcnn", model="svm_rbf", clean="largest", choose="largest",
                      unknown_quantile=None, max_distance=float("inf")),
    "default": dict(),
}


def run_set(name: str, recipes: list[str], test_size: float, seed: int, limit: int | None) -> dict:
    ps = photo_set(dataset(name), labelled=True)
    if limit:
        ps = ps.limit(per_label=limit, seed=seed)
    train_set, test_set = classify.split(ps, test_size=test_size, seed=seed)
    out = {"people": len(ps.classes), "train_photos": len(train_set), "test_photos": len(test_set)}
    for r in recipes:
        start = time.perf_counter()
        model = classify.train(train_set, **RECIPES[r], progress=False)
        ev = classify.evaluate(model, test_set, progress=False)
        rep = model.training_report_
        out[r] = {**ev.scores(), "model": model.info_["model"], "training_faces": len(rep.kept),
                  "excluded": rep.counts(),
                  "unknown_below": round(model.unknown_below, 3), "seconds": round(time.perf_counter() - start, 1)}
    if "reference" in out:
        for r in recipes:
            if r != "reference":
                for k in ("accuracy_with_face", "accuracy_all"):
                    ref = out["reference"][k]
                    out[r][f"{k}_vs_reference"] = round(out[r][k] / ref, 3) if ref else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=["footballers", "lfw"])
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--test-size", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="photos per person (quick look)")
    args = ap.parse_args()
    result = {"split": {"test_size": args.test_size, "seed": args.seed, "stratified": True},
              "scoring": "truth = folder name; accuracy_with_face over photos the model names someone in; "
                         "accuracy_all over all test photos; coverage = share named"}
    for name in args.sets:
        result[name] = run_set(name, args.recipes, args.test_size, args.seed, args.limit)
        print(json.dumps({name: result[name]}), flush=True, file=__import__("sys").stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
