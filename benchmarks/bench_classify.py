"""Who is in the photo: the default recipe against the classic recipe and the plain deep baseline.

On a FIXED held-out split (30% of each person's photos, stratified, seed 0) of
``$VISION_LIB_DATA/footballers`` (6 players, raw web photos) and of ``$VISION_LIB_DATA/lfw``
(96 people), three recipes are trained on the rest and scored in the same run:

* ``classic``   Haar faces (two eyes) + wavelet recipe (4096 values) + SVM; largest face of each
                training photo; the photo's label is its most confident face.
* ``reference`` MTCNN + dlib descriptor + SVM, largest face of each photo for training and for the
                answer, no cleaning, no "unknown" (no open-set rule either: ``far=None``).
* ``default_mtcnn_dlib`` the default pipeline below with MTCNN + dlib (the models it had before).
* ``default_facenet+faceres`` the default pipeline with the ``facenet+faceres`` descriptor.
* ``default``   vision_lib's default: its default detector and descriptor (YuNet + FaceNet) + the classifier chosen by cross-validation on
                the training faces (``model="auto"``), training folders cleaned by agreement,
                the photo's label is its most confident *known* face (unknown below thresholds
                learnt from the training data; a hesitant probability does not make a face unknown
                when it is as close to its person as 95% of their training faces; of known faces
                within 0.05 of the closest, the largest is the subject).

Ablation: the default model with each of its two photo-level rules switched off, scored on the
same test photos in the same run (``sure_distance`` and ``subject_tie`` set to None).

Scoring is honest: the truth is the folder name, even for test photos that show somebody else.
``accuracy_with_face`` = right answers / photos where a face was found ("unknown" counts as wrong);
``accuracy_named`` = right answers / photos where the model names someone; ``accuracy_all`` =
right answers / all test photos (no answer counts as wrong); ``coverage`` = share of test photos
where the model names someone; ``face_coverage`` = share where a face was found. Ratios against the
reference are printed too.

Training CV: the default pipeline (cleaning included) cross-validated over the training photos only
(5 folds), as evidence independent of the held-out split.

Other splits: the default (and each ``default_*`` recipe) trained and scored on ``--other-seeds`` further random 30% splits (the
same photos, other partitions): how much the fixed split's figure owes to which photos it drew.

Open set: the default model trained on one set names someone in how many photos of the *other*
set (strangers), at its distance rule, at two stricter ones and at the value ``max_distance="adaptive"``
learns from the training faces, with the cost on known people.

Stated against measured (issue 34, ``far_table`` of each ``open_set_rule*``): for far in
{0.005, 0.01, 0.02, 0.05, 0.1}, the share of stranger photos named against the stated rate, and the
share of held-out photos named and named right, default marked. The LFW strangers of the
footballers model are only the people of the scoring half (:func:`vision_lib.openset.lfw_half`);
the shipped web-stranger curve was measured on the other half (``benchmarks/stranger_curve.py``).
``open_set_rule_training_population`` is the same model calibrated the earlier way (the training
people, leave one person out), scored on the same photos.

Ceiling (issue 34, ``ceiling``): what the descriptor and classifier allow on the held-out photos
whatever the open-set rule: photos named right with no rule at all, by other photo-level decisions,
and which rule turns down the rest (:func:`ceiling`).

Open-set rule (issue 19, ``open_set_rule``): the default model's naming rule calibrated on strangers
(:mod:`vision_lib.openset`): its calibration, the share of the *other* set's photos (with a face)
it names, known accuracy and coverage on the held-out photos at the default ``far``, and the curve
over the rule's threshold (strangers named against known photos named right), default marked.
Calibration uses the shipped curve of the descriptor (LFW calibration half) and the training faces
of the split; neither the held-out photos nor the scored strangers are seen by training or calibration.

``targets_met`` says whether the default meets the issue's target on the fixed footballers split
(>= 0.96 accuracy on photos with a face, coverage >= 0.97), coverage read both ways: share named,
and share with a face found (the reading the issue's reference figures imply).

Usage: ``python benchmarks/bench_classify.py [--sets footballers lfw] [--recipes ...] [--limit N]
[--other-seeds 1 2 3 4] [--no-strangers] [--no-training-cv] [--no-ablation] [--strangers DIR]``. The
open-set figures alone: ``--recipes default --other-seeds --no-training-cv --no-ablation``.

Supplied strangers (``--strangers DIR``, issue 19): the default is trained a second time on the same
training photos with ``strangers=DIR`` (every face in those photos joins the calibration strangers),
and its rule is scored like ``open_set_rule`` as ``open_set_rule_supplied_strangers``, whose
``separation`` names DIR. DIR must be a set this benchmark does not score (AT&T), and the comparison
needs the open-set check on (not with ``--no-strangers``).
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
from vision_lib.openset import lfw_half  # noqa: E402

RECIPES = {
    "classic": dict(features="wavelet", detector="haar", model="svm_rbf", clean="largest", choose="confident"),
    "reference": dict(features="embedding", detector="mtcnn", descriptor="dlib", model="svm_rbf", clean="largest",
                      choose="largest", unknown_quantile=None, max_distance=float("inf"), far=None),
    # The default pipeline with the models it had before the registry's measured defaults.
    "default_mtcnn_dlib": dict(detector="mtcnn", descriptor="dlib"),
    # The default pipeline with FaceNet and HSE FaceRes concatenated (docs/models.md).
    "default_facenet+faceres": dict(descriptor="facenet+faceres"),
    "default": dict(),
}


def strangers(model: classify.FaceClassifier, test_set, photos, others, adaptive: float) -> dict:
    """How often the model names someone in photos of *other* people (an open-set check), and what a
    stricter distance rule (fixed, or ``max_distance="adaptive"``'s value) would cost on the known
    people's test photos."""
    out = {}
    kept = model.max_distance
    same = model.recipe.descriptor_model.threshold  # the stricter rules: dlib's 0.55 and 0.5, as shares
    for max_distance, note in ((kept, " (default)"), (same * 0.55 / 0.6, ""), (same * 0.5 / 0.6, ""),
                               (adaptive, " (adaptive)")):
        model.max_distance = max_distance
        res = model.predict_photos(others)
        with_face = [r for r in res if r.get("faces")]
        named = sum(r.get("label") is not None for r in with_face)
        known = classify.evaluate(model, test_set, photos=photos, progress=False).scores()
        model.max_distance = kept
        out[f"max_distance {max_distance:.3f}{note}"] = {
            "strangers_with_face": len(with_face), "strangers_named_share": round(named / max(1, len(with_face)), 4),
            "known_accuracy_with_face": round(known["accuracy_with_face"], 4),
            "known_accuracy_named": round(known["accuracy_named"], 4), "known_coverage": round(known["coverage"], 4)}
    return out


SEPARATION = ("train: the training part of the split (cleaned faces); calibrate: the descriptor's shipped "
              "web-stranger curve (LFW people of the calibration half, vision_lib.openset.lfw_half) where "
              "it has one (calibration.population 'web'), else the same training faces, each person "
              "against the other people's galleries (leave one person out), no supplied strangers; test: "
              "the held-out part of the split and the photos of the other set (LFW: the scoring half "
              "only), never seen by training or calibration")


def separation(supplied: str | None = None) -> str:
    """The JSON's account of what trains, calibrates and tests; ``supplied``: where the supplied
    stranger photos of the calibration came from (None: none supplied)."""
    if supplied is None:
        return SEPARATION
    return SEPARATION.replace("no supplied strangers", f"plus every face found in the supplied stranger photos "
                                                      f"under {supplied} (scored against all galleries; that "
                                                      "set is not scored here)")


#: The stated rates of the issue-34 table: stated against measured, and the cost on known people.
FAR_TABLE = (0.005, 0.01, 0.02, 0.05, 0.1)


def far_table(curve: list[dict]) -> list[dict]:
    """Per stated ``far`` of :data:`FAR_TABLE`: the share of stranger photos named (measured), its
    ratio to the stated rate, and the held-out known photos named and named right; default marked."""
    rows = []
    for p in curve:
        if p["far"] in FAR_TABLE:
            rows.append({"far": p["far"], "measured_strangers_named": p["strangers_named_share"],
                         "measured_over_stated": round(p["strangers_named_share"] / p["far"], 2),
                         "known_named": p["known_coverage"], "known_named_right": p["known_accuracy_named"],
                         **({"default": True} if p.get("default") else {})})
    return rows


def open_set_rule(model: classify.FaceClassifier, test_set, photos, others, supplied: str | None = None) -> dict:
    """The open-set rule at its default threshold and over a range of thresholds
    (:func:`vision_lib.classify.photo_curve`): strangers (the other set's photos with a face) named,
    and the known test photos named right / named. ``supplied``: the folder of supplied calibration
    strangers the model was trained with, if any (stated in ``separation``)."""
    from vision_lib.classify import photo_curve

    curve = photo_curve(model, test_set, photos, others)
    return {"calibration": model.openset_.summary(), "separation": separation(supplied),
            "strangers_with_face": sum(1 for ph in others if ph.faces),
            "at_default": next(p for p in curve if p.get("default")), "far_table": far_table(curve), "curve": curve}


def training_cv(train_set, photos, folds: int = 5, seed: int = 0, **recipe) -> dict:
    """The whole pipeline (cleaning included) cross-validated over the *training* photos: evidence
    that does not touch the held-out split, for choices made while looking at it."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    from vision_lib.cache import copy_groups

    labels = np.asarray(train_set.labels)
    pooled = classify.Evaluation([], [], [], [])
    # Copies of a photo (same bytes) stay in one fold, as classify.split keeps them on one side.
    folding = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    for a, b in folding.split(labels, labels, groups=copy_groups(train_set.paths)):
        a, b = sorted(a), sorted(b)
        model = classify.train(train_set.subset(a), **recipe, photos=[photos[i] for i in a], progress=False)
        ev = classify.evaluate(model, train_set.subset(b), photos=[photos[i] for i in b], progress=False)
        for part in ("paths", "truth", "predicted", "results"):
            getattr(pooled, part).extend(getattr(ev, part))
    scores = pooled.scores()
    return {"folds": folds, "photos": scores["photos"], "photos_with_face": scores["photos_with_face"],
            **{k: round(scores[k], 4) for k in ("accuracy_with_face", "accuracy_named", "coverage")}}


def ablation(model: classify.FaceClassifier, test_set, photos) -> dict:
    """The default's scores with each photo-level rule switched off (same model, same photos)."""
    out = {}
    for rule in ("sure_distance", "subject_tie"):
        kept = getattr(model, rule)
        setattr(model, rule, None)
        scores = classify.evaluate(model, test_set, photos=photos, progress=False).scores()
        setattr(model, rule, kept)
        out[f"without {rule}"] = {k: round(scores[k], 4) for k in ("accuracy_with_face", "accuracy_named", "coverage")}
    return out


def other_splits(ps, photos: dict, seeds: list[int], test_size: float, **recipe) -> dict:
    """The default recipe on further random splits of the same photos (``photos``: path -> the
    :func:`classify.extract` result the fixed split already computed)."""
    import numpy as np

    per_seed, models = [], []
    for seed in seeds:
        train_set, test_set = classify.split(ps, test_size=test_size, seed=seed)
        model = classify.train(train_set, **recipe, photos=[photos[p] for p in train_set.paths], progress=False)
        per_seed.append(classify.evaluate(model, test_set, photos=[photos[p] for p in test_set.paths],
                                          progress=False).scores())
        models.append(model.info_["model"])
    out = {"seeds": seeds, "model": models}
    for k in ("accuracy_with_face", "accuracy_named", "coverage"):
        v = np.array([s[k] for s in per_seed])
        out[k] = {"each": [round(float(x), 4) for x in v], "mean": round(float(v.mean()), 4),
                  "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}
    return out


def ceiling(model: classify.FaceClassifier, test_set, photos) -> dict:
    """What the descriptor and classifier allow on the held-out photos, whatever the open-set rule
    (issue 34): photos answered right with no rule at all (closed set: every photo with a face named),
    by two other photo-level decisions (the face nearest to any training face, its person; the best
    cohort score over faces and people), the photos where some face's nearest training face is the
    folder's person, and which rule turns down the player's closest face in the photos left unnamed.
    A diagnosis, to read the targets against: nothing here is tuned."""
    import copy

    import numpy as np

    rule, truth = model.openset_, list(test_set.labels)
    closed = copy.copy(model)
    closed.openset_, closed.unknown_below, closed.max_distance = None, 0.0, float("inf")
    only_rule = copy.copy(closed)
    only_rule.openset_ = rule
    out = {"photos": len(truth), "photos_with_face": sum(1 for ph in photos if ph.faces)}
    for name, m in (("closed_set", closed), ("open_set_rule_alone", only_rule), ("default", model)):
        labels = [r.get("label") for r in m.predict_photos(photos)]
        out[name] = {"named": sum(x is not None for x in labels), "right": sum(x == t for x, t in zip(labels, truth))}
    if rule is None:
        return out
    G = np.concatenate([rule.galleries_[c] for c in rule.classes_])
    owner = np.concatenate([[c] * len(rule.galleries_[c]) for c in rule.classes_])
    nearest_right = cohort_right = some_nearest = single = single_other = 0
    why: dict[str, int] = {}
    default_labels = [r.get("label") for r in model.predict_photos(photos)]
    for ph, t, named in zip(photos, truth, default_labels):
        if not ph.faces:
            continue
        D = np.asarray(ph.descriptors, np.float64)
        dist = np.linalg.norm(D[:, None] - G[None], axis=2)
        nn = owner[dist.argmin(axis=1)]
        nearest_right += nn[dist.min(axis=1).argmin()] == t
        some_nearest += t in nn
        single += len(D) == 1
        single_other += len(D) == 1 and nn[0] != t
        S = rule.scores(D)
        cohort_right += rule.classes_[np.unravel_index(S.argmin(), S.shape)[1]] == t
        if named is None:
            best = np.asarray(model.classes_)[model.estimator.predict_proba(ph.features).argmax(axis=1)]
            ks = [k for k in range(len(D)) if best[k] == t and t in rule.classes_]
            if not ks:
                key = "no face classified as the player"
            else:
                k = min(ks, key=lambda k: S[k, rule.classes_.index(t)])
                dc = float(np.linalg.norm(model.centroids_[t] - D[k])) if t in model.centroids_ else 0.0
                p = float(model.estimator.predict_proba(ph.features[k:k + 1]).max())
                sure = model.sure_distance is not None and dc <= model.sure_distance
                key = "+".join(r for r, hit in (("open_set", not rule.accept(S[k, rule.classes_.index(t)])),
                                                ("max_distance", model.max_distance is not None and dc > model.max_distance),
                                                ("probability", p < model.unknown_below and not sure)) if hit) or "other"
            why[key] = why.get(key, 0) + 1
    out.update({"nearest_training_face_right": int(nearest_right), "best_cohort_score_right": int(cohort_right),
                "some_face_nearest_is_the_player": int(some_nearest), "single_face_photos": int(single),
                "single_face_nearest_is_another_person": int(single_other), "unnamed_with_face_turned_down_by": why})
    return out


def run_set(name: str, recipes: list[str], test_size: float, seed: int, limit: int | None,
            other: str | None = None, other_seeds: list[int] = (), cv: bool = True, ablate: bool = True,
            supplied: str | None = None) -> dict:
    ps = photo_set(dataset(name), labelled=True)
    if limit:
        ps = ps.limit(per_label=limit, seed=seed)
    train_set, test_set = classify.split(ps, test_size=test_size, seed=seed)
    out = {"people": len(ps.classes), "train_photos": len(train_set), "test_photos": len(test_set)}
    for r in recipes:
        start = time.perf_counter()
        # The default's training photos are extracted once, for training and for the training CV.
        train_photos = classify.extract(train_set.paths, classify.Recipe(), progress=False) if r == "default" else None
        model = classify.train(train_set, **RECIPES[r], photos=train_photos, progress=False)
        photos = classify.extract(test_set.paths, model.recipe, progress=False)
        ev = classify.evaluate(model, test_set, photos=photos, progress=False)
        rep = model.training_report_
        out[r] = {**ev.scores(), "model": model.info_["model"], "training_faces": len(rep.kept),
                  "excluded": rep.counts(),
                  "unknown_below": round(model.unknown_below, 3),
                  "sure_distance": None if model.sure_distance is None else round(model.sure_distance, 3),
                  "seconds": round(time.perf_counter() - start, 1)}
        if r == "default":
            if ablate:
                out[r]["ablation"] = ablation(model, test_set, photos)
            if cv:
                out[r]["training_cv"] = training_cv(train_set, train_photos, **RECIPES[r])
        if other_seeds and r.startswith("default"):  # the default pipeline, with its models or others
            if train_photos is None:
                train_photos = classify.extract(train_set.paths, model.recipe, progress=False)
            extracted = dict(zip(train_set.paths + test_set.paths, train_photos + photos))
            out[r]["other_splits"] = other_splits(ps, extracted, list(other_seeds), test_size, **RECIPES[r])
        if r == "default" and other:
            others = photo_set(dataset(other), labelled=True)
            if other == "lfw":  # strangers only from the half of LFW the shipped curves never saw
                others = others.subset([i for i, lab in enumerate(others.labels) if lfw_half(lab) == "score"])
            other_photos = classify.extract(others.paths, model.recipe, progress=False)
            adaptive = classify.train(train_set, **RECIPES[r], max_distance="adaptive", photos=train_photos,
                                      progress=False).max_distance
            out[r]["open_set"] = {"strangers": f"all photos of {other}",
                                  **strangers(model, test_set, photos, other_photos, adaptive)}
            what = f"all photos of {other}" + (" people of the scoring half (lfw_half)" if other == "lfw" else "")
            if model.openset_ is not None:
                out[r]["open_set_rule"] = {"strangers": what, **open_set_rule(model, test_set, photos, other_photos)}
                out[r]["ceiling"] = ceiling(model, test_set, photos)
                # The same model calibrated the earlier way (the training people, leave one person
                # out), scored on the same photos: the before of the web curves.
                lopo = classify.train(train_set, **RECIPES[r], population="training", photos=train_photos,
                                      progress=False)
                out[r]["open_set_rule_training_population"] = {
                    "strangers": what, **open_set_rule(lopo, test_set, photos, other_photos)}
            if model.openset_ is not None and supplied is not None:
                # The same training photos and split, the rule calibrated with the supplied strangers
                # pooled in: compared with open_set_rule above, the only difference is the calibration.
                with_supplied = classify.train(train_set, **RECIPES[r], strangers=supplied, photos=train_photos,
                                               progress=False)
                out[r]["open_set_rule_supplied_strangers"] = {
                    "strangers": f"all photos of {other}", "supplied_strangers": str(supplied),
                    **open_set_rule(with_supplied, test_set, photos, other_photos, str(supplied))}
    if "reference" in out:
        for r in recipes:
            if r != "reference":
                for k in ("accuracy_with_face", "accuracy_named", "accuracy_all"):
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
    ap.add_argument("--other-seeds", type=int, nargs="*", default=[1, 2, 3, 4],
                    help="further random splits to score the default on (none: skip)")
    ap.add_argument("--no-strangers", dest="strangers", action="store_false",
                    help="skip the open-set check (the default model on the other set's photos)")
    ap.add_argument("--no-training-cv", dest="cv", action="store_false", help="skip the training CV")
    ap.add_argument("--no-ablation", dest="ablate", action="store_false", help="skip the ablation")
    ap.add_argument("--strangers", metavar="DIR", dest="supplied_strangers", default=None,
                    help="also calibrate the default's open-set rule with the photos under DIR as supplied "
                         "strangers (train(strangers=DIR)), scored beside the rule without them: "
                         "open_set_rule_supplied_strangers; DIR must not be a scored set (e.g. AT&T)")
    args = ap.parse_args()
    if args.supplied_strangers is not None:
        if not args.strangers:
            ap.error("--strangers DIR is scored by the open-set check, which --no-strangers skips")
        scored = {os.path.realpath(dataset(n)) for n in ("footballers", "lfw")}
        if os.path.realpath(args.supplied_strangers) in scored:
            ap.error(f"--strangers {args.supplied_strangers} is a set this benchmark scores; use an unscored one (AT&T)")
    result = {"split": {"test_size": args.test_size, "seed": args.seed, "stratified": True,
                        "copies": "files with the same bytes kept on one side (classify.split)"},
              "scoring": "truth = folder name; accuracy_with_face over photos with a face found (unknown = wrong); "
                         "accuracy_named over photos the model names someone in; "
                         "accuracy_all over all test photos; coverage = share named"}
    for name in args.sets:
        other = next((o for o in ("lfw", "footballers") if o != name), None) if args.strangers else None
        result[name] = run_set(name, args.recipes, args.test_size, args.seed, args.limit, other,
                               [s for s in args.other_seeds if s != args.seed], args.cv, args.ablate,
                               args.supplied_strangers)
        print(json.dumps({name: result[name]}), flush=True, file=__import__("sys").stderr)
    fb = result.get("footballers", {}).get("default")
    if fb:  # the target for the default, on the fixed split of the footballers
        result["targets_met"] = {"footballers_accuracy_with_face_ge_0.96": fb["accuracy_with_face"] >= 0.96,
                                 "footballers_coverage_ge_0.97": fb["coverage"] >= 0.97,
                                 # The reference figures (0.90 of found faces, 0.88 of all
                                 # photos) imply coverage = share of photos with a face found; the
                                 # line above is the stricter share named. Both are printed.
                                 "footballers_face_coverage_ge_0.97": fb["face_coverage"] >= 0.97}
        table = fb.get("open_set_rule", {}).get("far_table")
        if table:  # issue 34: the stated rate means what it says, within 0.5x-2x, at 0.01 and 0.05
            at = {row["far"]: row for row in table}
            result["targets_met"].update({
                f"far_{f}_measured_within_0.5x_2x": 0.5 <= at[f]["measured_over_stated"] <= 2.0
                for f in (0.01, 0.05) if f in at})
        rule = fb.get("open_set_rule", {}).get("at_default")
        if rule:  # issue 19's targets at the default open-set rule
            result["targets_met"].update({
                "lfw_photos_named_by_footballers_model_le_0.02": rule["strangers_named_share"] <= 0.02,
                "footballers_accuracy_named_ge_0.97": rule["known_accuracy_named"] >= 0.97,
                "footballers_coverage_ge_0.95": rule["known_coverage"] >= 0.95,
                "footballers_accuracy_with_face_ge_0.95": rule["known_accuracy_with_face"] >= 0.95,
                "no_stranger_face_with_a_probability": rule["stranger_faces_with_probability"] == 0})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
