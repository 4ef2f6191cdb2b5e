"""Benchmark clustering: identity on the 96 LFW people, clothing on both player folders. Prints JSON.

Identity: every method of :data:`vision_lib.cluster.METHOD_PRESETS` on all LFW photos (the default
detector and descriptor, or ``--detector`` / ``--descriptor``; from the disk cache, the first run
detects faces), scored per photo on its subject face; baselines in the same run: K-Means with the
true k and Chinese Whispers. Then the raw footballer photos (default method), each photo scored by
the cluster of its largest face against its folder (``--baseline mtcnn dlib``: the old models too).
Subsets: the default against cores without density smoothing (``core_min_samples=1``) and against
the default before the look-alike split (``split_lookalikes=False``) on random 25 / 50 / 75 % of each
person's photos, both sets (a collection's first build is that small), and on each of the 8 people
with most photos alone.
Clothing: the default (court-masked colours), the known recipe (MobileNetV2 + voted region
histograms) and a plain baseline (HSV histogram of the whole crop + Ward), accuracy against
``labels_top.csv`` and the frame-pair check on both folders, plus timing of the clustering step.

    .venv/bin/python benchmarks/bench_cluster.py [--skip clothing] [--baseline mtcnn dlib]
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def identity(detector: str | None = None, descriptor: str | None = None) -> dict:
    from vision_lib import cluster, config

    start = time.perf_counter()
    faces = cluster.face_set(config.dataset("lfw"), labelled=True, progress=False, detector=detector,
                             descriptor=descriptor)
    prep = time.perf_counter() - start
    cluster.compare_presets(faces, {"warm-up": {}})  # first call pays imports; not part of any timing
    rows = cluster.compare_presets(faces)
    base = {r["name"]: r["seconds"] for r in rows}
    out = {"photos": len(faces.photos), "faces": len(faces), "photos_without_face": len(faces.rejected),
           "people": len(set(faces.photo_labels)), "detect_describe_seconds": round(prep, 1), "methods": {}}
    for r in rows:
        out["methods"][r["name"]] = {
            "clusters": r["n_clusters"], "true": r["n_true"], "unassigned": round(r["unassigned"], 4),
            "bcubed_f": round(r["bcubed_f"], 4), "bcubed_precision": round(r["bcubed_precision"], 4),
            "bcubed_recall": round(r["bcubed_recall"], 4), "pairwise_f": round(r["pairwise_f"], 4),
            "nmi": round(r["nmi"], 4), "ari": round(r["ari"], 4), "seconds": round(r["seconds"], 4),
            "time_vs_kmeans_true_k": round(r["seconds"] / base["kmeans true k"], 2),
            "distance": None if r["distance"] is None else round(r["distance"], 4),
        }
    default = out["methods"]["hybrid (default)"]
    out["default_bcubed_f_vs_chinese_whispers"] = round(default["bcubed_f"] / out["methods"]["chinese whispers, 5/6 cut"]["bcubed_f"], 4)
    out["default_bcubed_f_vs_kmeans_true_k"] = round(default["bcubed_f"] / out["methods"]["kmeans true k"]["bcubed_f"], 4)
    return out


def identity_footballers(detector: str | None = None, descriptor: str | None = None) -> dict:
    """Identity clustering of the raw footballer photos (default method), each photo scored by the
    cluster of its largest face against its folder (and, for contrast, by its subject face)."""
    from _common import labelled_faces, score_by_largest_face, score_by_subject_face

    from vision_lib import cluster

    faces, prep = labelled_faces("footballers", detector, descriptor)
    model = cluster.IdentityClustering(descriptor=faces.descriptor)
    cores = cluster.core_faces(faces)
    labels = cluster.cluster_table_faces(model, faces, cores=cores)
    other = cluster.cluster_table_faces(model, faces, not cluster.CONFIDENT_CORES, cores=cores)  # the other rule
    out = {"photos": len(faces.photos), "faces": len(faces), "photos_without_face": len(faces.rejected),
           "detect_describe_seconds": round(prep, 1), "confident_cores": cluster.CONFIDENT_CORES,
           "core_faces": int(cores.sum())}
    other_name = "largest_face_cores_from_every_face" if cluster.CONFIDENT_CORES else "largest_face_confident_cores"
    out["by_largest_face"] = score_by_largest_face(faces, labels)
    out["by_subject_face"] = score_by_subject_face(faces, labels)
    out[f"by_{other_name}"] = score_by_largest_face(faces, other)
    # the cores without density smoothing (core_min_samples=1; not the default), same run
    bare = cluster.IdentityClustering(descriptor=faces.descriptor, core_min_samples=1)
    out["by_largest_face_cores_without_smoothing"] = score_by_largest_face(faces, cluster.cluster_table_faces(bare, faces, cores=cores))
    return out


#: Shares of each person's photos clustered by :func:`subsets` (a collection's first builds are this small).
SUBSET_SHARES = (0.25, 0.5, 0.75)
SUBSET_SEEDS = 3


def subsets(detector: str | None = None, descriptor: str | None = None) -> dict:
    """The default identity clustering of random subsets of each person's photos (LFW scored on the
    subject face, footballers on the largest), against cores without density smoothing
    (``core_min_samples=1``) and the default before the look-alike split (``split_lookalikes=False``)
    on the same subsets: how a small collection's first build fares. Mean and
    lowest BCubed F over :data:`SUBSET_SEEDS` seeds per share."""
    from _common import labelled_faces, score_by_largest_face, score_by_subject_face, table_of_photos

    from vision_lib import cluster

    rules = {"default": {}, "cores_without_smoothing": {"core_min_samples": 1},
             "without_lookalike_split": {"split_lookalikes": False}}  # the default before 2026-12-07
    out = {}
    for dataset, score in (("lfw", score_by_subject_face), ("footballers", score_by_largest_face)):
        faces, _ = labelled_faces(dataset, detector, descriptor)
        by: dict[str, list[str]] = {}
        for photo, label in zip(faces.photos, faces.photo_labels):
            by.setdefault(label, []).append(photo)
        for share in SUBSET_SHARES:
            scores: dict[str, list[float]] = {r: [] for r in rules}
            for seed in range(SUBSET_SEEDS):
                rng = np.random.default_rng(seed)
                pick = [p for label in sorted(by) for p in
                        rng.choice(sorted(by[label]), max(1, round(len(by[label]) * share)), replace=False)]
                sub = table_of_photos(faces, pick)
                for rule, params in rules.items():
                    model = cluster.IdentityClustering(descriptor=faces.descriptor, **params)
                    scores[rule].append(score(sub, cluster.cluster_table_faces(model, sub))["bcubed_f"])
            out[f"{dataset}_{share}"] = {r: {"mean_bcubed_f": round(float(np.mean(v)), 4), "lowest": min(v)}
                                         for r, v in scores.items()}
        # the counter-case: one person's photos alone (the 8 people with most photos, each on its own)
        scores = {r: [] for r in rules}
        for label in sorted(by, key=lambda lab: (-len(by[lab]), lab))[:8]:
            sub = table_of_photos(faces, by[label])
            for rule, params in rules.items():
                model = cluster.IdentityClustering(descriptor=faces.descriptor, **params)
                scores[rule].append(score(sub, cluster.cluster_table_faces(model, sub))["bcubed_f"])
        out[f"{dataset}_one_person"] = {r: {"mean_bcubed_f": round(float(np.mean(v)), 4), "lowest": min(v)}
                                        for r, v in scores.items()}
    return out


def _plain_hsv(images) -> np.ndarray:
    from vision_lib.features import colour_histogram

    return np.stack([colour_histogram(im, bins=4, space="hsv") for im in images])


def _step_seconds(features: np.ndarray, groups: int = 2, repeat: int = 7) -> tuple[float, float]:
    """First and median time of the Ward step alone (what TeamClustering times)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fcluster(linkage(features, method="ward"), t=groups, criterion="maxclust")
        times.append(time.perf_counter() - t)
    return times[0], float(np.median(times))


def clothing() -> dict:
    from scipy.cluster.hierarchy import fcluster, linkage

    from vision_lib import config, teams
    from vision_lib.embeddings import image_features_paths

    root = config.dataset("players")
    labels = teams.read_labels(root / "labels_top.csv", "two_players_top")
    out = {}
    for folder in ("two_players_top", "two_players_bot"):
        crops = teams.load_crops(root / folder)
        truth = [labels.get(s) for s in crops.sources] if folder == "two_players_top" else None
        res = {}

        def score(name, lab, extra=None):
            r = {"frame_pairs_split": round(teams.frame_pair_agreement(crops.sources, lab)["agreement"], 4)}
            if truth is not None:
                r["accuracy"] = round(teams.accuracy(truth, lab), 4)
            r.update(extra or {})
            res[name] = r

        t = time.perf_counter()
        model = teams.TeamClustering().fit(crops.images)
        total = time.perf_counter() - t
        first, median = _step_seconds(model.features_)
        score("colours (default)", model.labels_, {
            "cluster_step_seconds_in_fit": round(model.cluster_seconds_, 5),
            "cluster_step_seconds_median": round(median, 5), "features_plus_cluster_seconds": round(total, 2)})

        deep = image_features_paths(crops.paths, progress=False)
        recipe = teams.TeamClustering(method="recipe").fit(crops.images, deep_features=deep)
        score("recipe (MobileNetV2 + voted region)", recipe.labels_, {
            "vote": recipe.vote_, "cluster_step_seconds_in_fit": round(recipe.cluster_seconds_, 5)})

        plain = _plain_hsv(crops.images)
        score("baseline plain HSV + Ward", fcluster(linkage(plain, "ward"), 2, "maxclust") - 1)
        out[folder] = res
        out[folder]["crops"] = len(crops.sources)
    return out


def main(argv=None) -> None:
    import argparse

    from vision_lib.models import DEFAULT_DESCRIPTOR, DEFAULT_DETECTOR, DESCRIPTORS, DETECTORS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", choices=DETECTORS, default=None, help=f"default: {DEFAULT_DETECTOR}")
    ap.add_argument("--descriptor", choices=DESCRIPTORS, default=None, help=f"default: {DEFAULT_DESCRIPTOR}")
    ap.add_argument("--baseline", nargs=2, metavar=("DETECTOR", "DESCRIPTOR"), default=None,
                    help="also the footballers' identity clustering with these models (e.g. mtcnn dlib)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["lfw", "footballers", "subsets", "clothing"])
    args = ap.parse_args(argv)
    result = {"models": {"detector": args.detector or DEFAULT_DETECTOR, "descriptor": args.descriptor or DEFAULT_DESCRIPTOR}}
    if "lfw" not in args.skip:
        result["identity_lfw"] = identity(args.detector, args.descriptor)
    if "footballers" not in args.skip:
        result["identity_footballers"] = identity_footballers(args.detector, args.descriptor)
        if args.baseline:
            result["identity_footballers_baseline"] = {"models": args.baseline, **identity_footballers(*args.baseline)}
    if "subsets" not in args.skip:
        result["identity_subsets"] = subsets(args.detector, args.descriptor)
    if "clothing" not in args.skip:
        result["clothing"] = clothing()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
