"""``vision-lib`` command line: a thin layer over the library, one sub-command per stage.

Each handler imports its stage lazily, so ``vision-lib compress`` never loads TensorFlow and
``vision-lib --help`` is instant.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from concurrent.futures import BrokenExecutor
from pathlib import Path

from . import names


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's default shown (unless its text already says it, or there is none to show)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings
                or isinstance(action.default, list)):
            return text
        return f"{text} (default: %(default)s)"


def _hidden_alias(p: argparse.ArgumentParser, flag: str, dest: str, **kwargs) -> None:
    """An older spelling of an option, still accepted, not shown in --help (one word per idea)."""
    p.add_argument(flag, dest=dest, help=argparse.SUPPRESS, **kwargs)


def _add_overwrite(p: argparse.ArgumentParser, what: str) -> None:
    """``--overwrite``: the one flag, on every command, that lets an output replace an earlier one."""
    p.add_argument("--overwrite", action="store_true", help=f"replace {what} (default: refuse)")


def _positive_or(word: str, cast: type, option: str, word_means=None):
    """An argparse type: ``word`` (giving ``word_means``) or a positive number of type ``cast``."""
    kind = "integer" if cast is int else "number"

    def parse(text: str):
        if text == word:
            return word_means
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"{option} must be '{word}' or a positive {kind}, not {text!r}")
        return value
    return parse


def _add_workers(p: argparse.ArgumentParser, quiet: bool = True) -> None:
    """The options of every command that works through many photos: ``--jobs``, ``--scheduler``
    (and ``--quiet``)."""
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="send batches of photos to this running Dask scheduler (tcp://host:8786) instead "
                        "of local processes (default: $VISION_LIB_SCHEDULER, else local); the workers "
                        "must see the photos at the same paths (docs/scale.md)")
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_models(p: argparse.ArgumentParser, detector: str | None = "", descriptor: str | None = "") -> None:
    """``--detector`` / ``--descriptor``, choices from the model registry (vision_lib.models: numpy
    only, so --help stays instant). The texts say what the default is where it differs; ``{detector}``
    and ``{descriptor}`` in them stand for the registry's defaults."""
    from .models import DEFAULT_DESCRIPTOR, DEFAULT_DETECTOR, DESCRIPTORS, DETECTORS

    defaults = {"detector": DEFAULT_DETECTOR, "descriptor": DEFAULT_DESCRIPTOR}
    if detector is not None:
        p.add_argument("--detector", choices=DETECTORS, default=None,
                       help=(detector or "face detector (default: {detector})").format(**defaults))
    if descriptor is not None:
        p.add_argument("--descriptor", choices=DESCRIPTORS, default=None,
                       help=(descriptor or "face descriptor (default: {descriptor}); distance thresholds "
                                           "follow it").format(**defaults))


# --------------------------------------------------------------------------- faces (issue 2)
def _add_faces(sub) -> None:
    p = sub.add_parser(
        "faces", help="detect, crop and align faces in a folder of photos",
        description="Detect faces in every photo under IN_DIR (recursively; photos are found by content, "
                    "not by extension) and write one crop per face under OUT_DIR, mirroring "
                    "IN_DIR's sub-folders, plus OUT_DIR/faces.csv (one row per face, face_index 0 = "
                    "largest) and OUT_DIR/rejected.csv (source,reason for every photo without a usable "
                    "face and every other file: not a photo, hidden, unreadable). Running it again "
                    "resumes. IN_DIR is never written to.")
    p.add_argument("in_dir", type=Path, help="folder of photos (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder (not inside IN_DIR)")
    _add_models(p, descriptor=None)
    p.add_argument("--align", action="store_true", help="save eye-aligned crops instead of boxes")
    p.add_argument("--min-size", type=int, default=20, help="smallest face side kept, in pixels")
    _add_workers(p)
    p.set_defaults(handler=_run_faces)


def _run_faces(args: argparse.Namespace) -> int:
    from .faces import export_faces

    summary = export_faces(
        args.in_dir, args.out, detector=args.detector, align=args.align, min_size=args.min_size,
        n_jobs=args.jobs, progress=not args.quiet,
    )
    print(summary)
    return 0 if summary.photos else 1


# --------------------------------------------------------------------------- features (issue 3)
def _add_features(sub) -> None:
    p = sub.add_parser(
        "features", help="feature vectors of a folder of photos, to a .npz table",
        description="Compute one feature row per face (descriptor: the face descriptor of --descriptor; "
                    "wavelet: the classic "
                    "4096-value recipe) or per photo (mobilenet: MobileNetV2 ImageNet 1280-d; histogram: "
                    "colour histograms of the upper and lower halves) for every photo under IN_DIR "
                    "(recursively), and write them to OUT.npz with where each row came from: arrays X, "
                    "source, label (first sub-folder), face_index, box, rejected_source, rejected_reason, "
                    "settings. Load with numpy.load or vision_lib.tables.FeatureTable.load.")
    p.add_argument("in_dir", type=Path, help="folder of photos (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    p.add_argument("--kind", choices=names.FEATURE_KINDS, default="descriptor",
                   help="per face: descriptor, wavelet; per photo: mobilenet, histogram")
    _add_models(p, detector="for per-face kinds (default: {detector} for descriptor, haar for wavelet)",
                descriptor="for --kind descriptor (default: {descriptor})")
    p.add_argument("--bins", type=int, default=8, help="histogram bins per colour channel")
    p.add_argument("--space", choices=names.HISTOGRAM_SPACES, default="hsv", help="histogram colour space")
    _add_overwrite(p, "an existing OUT file")
    _hidden_alias(p, "--force", "overwrite", action="store_true")
    _add_workers(p)
    p.set_defaults(handler=_run_features)


def _run_features(args: argparse.Namespace) -> int:
    from .io import check_output_folder
    from .tables import folder_features, npz_path

    if args.bins < 1:
        raise ValueError("--bins must be at least 1")
    out = npz_path(args.out)
    if out.exists() and not args.overwrite:  # before the work, not after it
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    check_output_folder(out.parent)  # a folder that cannot hold the table fails now, not after the work
    table = folder_features(args.in_dir, args.kind, detector=args.detector, descriptor=args.descriptor,
                            bins=args.bins, space=args.space,
                            n_jobs=args.jobs, progress=not args.quiet)
    print(table)
    print(f"wrote {table.save(out, overwrite=args.overwrite)}")
    return 0 if len(table.X) else 1


# --------------------------------------------------------------------------- notebooks (issue 2)
def _add_notebooks(sub) -> None:
    p = sub.add_parser("notebooks", help="execute the notebook suite into a report folder",
                       description="Execute the numbered notebooks (papermill, parameters injected) into a "
                                   "report folder, with an HTML copy of each; exits 1 when one fails (0 when notebooks are "
                                   "only skipped for missing data, which is listed).")
    p.add_argument("--out", type=Path, default=Path("reports"), help="where executed copies and HTML go")
    p.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                   help="folder holding the NN_name.ipynb notebooks (default: $VISION_LIB_NOTEBOOKS, else "
                        "notebooks/ of the checkout or, installed, of the working folder)")
    p.add_argument("--only", nargs="*", help="notebook names or numbers to run (default: all)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a notebook parameter (value parsed as Python literal)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="notebooks run at once, each starting once the notebooks whose cached faces it reads "
                        "have ended (default: 2 with two cores or more, else 1; 1 runs them one after another)")
    p.set_defaults(handler=_run_notebooks)


def _run_notebooks(args: argparse.Namespace) -> int:
    import ast

    from .notebooks import run_notebooks, skipped_for_data

    params = {}
    for name, value in args.parameter:
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    try:
        results = run_notebooks(args.out, params=params, only=args.only, folder=args.notebooks, jobs=args.jobs)
    except KeyboardInterrupt:
        import logging

        # The aborted cell's asyncio task would log its whole traceback when collected at exit.
        logging.getLogger("asyncio").disabled = True
        raise
    # A notebook skipped for missing data is not a failure: its data set was listed with where to get it.
    return 0 if all(r.ok or skipped_for_data(r) for r in results) else 1


# --------------------------------------------------------------------------- present (issue 22)
def _add_present(sub) -> None:
    p = sub.add_parser("present", help="offline slide decks and a summary page from the executed notebooks",
                       description="Turn the executed notebooks of a report folder (what `vision-lib notebooks "
                                   "--out reports` writes) into one self-contained HTML slide deck each (code "
                                   "hidden, nothing fetched when opened) and a summary page index.html.")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="folder of executed notebooks")
    p.add_argument("--out", type=Path, default=None, help="where the decks go (default: REPORTS/slides)")
    _add_overwrite(p, "files that `present` did not write")
    _hidden_alias(p, "--force", "overwrite", action="store_true")
    p.set_defaults(handler=_run_present)


def _run_present(args: argparse.Namespace) -> int:
    from .present import build_presentation

    decks, summary = build_presentation(args.reports, args.out, force=args.overwrite)
    for d in decks:
        print(f"{d.path}: {len(d.slides)} slides" + (" (its notebook run failed)" if d.failed else ""))
    print(f"summary: {summary}")
    return 0


# --------------------------------------------------------------------------- fetch
def _add_fetch(sub) -> None:
    p = sub.add_parser("fetch", help="download a public face set (needs internet)")
    p.add_argument("dataset", choices=["lfw"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--min-faces", type=int, default=20, help="people with at least this many photos")
    p.set_defaults(handler=_run_fetch)


def _run_fetch(args: argparse.Namespace) -> int:
    from .datasets import fetch_lfw

    try:
        n = fetch_lfw(args.out, min_faces_per_person=args.min_faces)
    except RuntimeError as exc:  # no network: say so and how to get the photos instead
        print(f"vision-lib fetch: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} photos under {args.out}")
    return 0


# --------------------------------------------------------------------------- models (issue 34)
def _add_models_command(sub) -> None:
    p = sub.add_parser("models", help="get model files that do not ship with the library (needs internet)",
                       description="`vision-lib models fetch arcface --accept-license`: download insightface's "
                                   "buffalo_l release and keep its w600k_r50.onnx (non-commercial research use "
                                   "only) for `--descriptor arcface` (docs/models.md).")
    p.add_argument("action", choices=["fetch"])
    p.add_argument("model", choices=["arcface"])
    p.add_argument("--accept-license", action="store_true", help="accept the model's licence (printed)")
    p.add_argument("--dest", type=Path, default=None, help="folder to put the file in (default: inside the "
                   "environment; a folder of your own then goes in $VISION_LIB_MODELS)")
    p.set_defaults(handler=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from .models.arcface import LICENCE, fetch_arcface

    print(f"licence: {LICENCE}")
    path = fetch_arcface(args.accept_license, args.dest)
    print(f"wrote {path}; use it with --descriptor arcface (or VISION_LIB_DESCRIPTOR=arcface)")
    return 0


# --------------------------------------------------------------------------- train / predict (issue 3)
_max_distance = _positive_or("adaptive", float, "--max-distance", "adaptive")
_far = _positive_or("off", float, "--far", None)


def _add_train(sub) -> None:
    from .models import DEFAULT_DESCRIPTOR, same_person_distance  # numpy only; no model loads

    p = sub.add_parser("train", help="train a face classifier from a folder of sub-folders (one per person)",
                       description="Train from raw, uncurated folders: LABELLED_DIR/<person>/*.jpg. Faces of "
                       "other people and photos without the person are left out (and listed). Or from their "
                       "face table, TABLE.npz of `vision-lib features LABELLED_DIR --kind descriptor` (the same "
                       "model, without describing the photos again). Or, with "
                       "--names, from an unlabelled collection whose clusters were named by hand: "
                       "`vision-lib train PHOTOS --names names.csv --out MODEL` (docs/presentation.md). The "
                       "model file is a pickle: load only files you trust.")
    p.add_argument("labelled_dir", type=Path, metavar="LABELLED_DIR|TABLE.npz|PHOTOS", nargs="?",
                   help="folder with one sub-folder of photos per person, or its descriptor table; with --names, the folder "
                        "`vision-lib cluster` was run on (the table's sources are relative to it)")
    p.add_argument("--db", type=Path, default=None, help="train on the named people of this face collection instead "
                   "(a hidden person's faces calibrate the open-set rule as strangers)")
    p.add_argument("--names", type=Path, default=None, metavar="NAMES_CSV",
                   help="train on the named faces of this names table (`vision-lib cluster`'s clusters.csv "
                        "plus a name column; '-' = not a person of interest, left out and used as strangers)")
    p.add_argument("--out", type=Path, default=None, metavar="MODEL", help="where to write the model bundle (required)")
    _hidden_alias(p, "--model", "out", type=Path)
    p.add_argument("--features", choices=names.TRAINING_FEATURES, default="embedding",
                   help="the face descriptor (default) or the classic wavelet recipe")
    _add_models(p, detector="face detector (default: {detector} for embedding, haar for wavelet)")
    p.add_argument("--classifier", default="auto",
                   choices=("auto", *names.CLASSIFIERS),
                   help="auto (default): the best by cross-validation on the cleaned training faces")
    p.add_argument("--max-distance", type=_max_distance, default=None, metavar="D|adaptive",
                   help="a face farther than D (in the descriptor's own distance scale) from its person's training "
                   "centroid is unknown (default: the descriptor's same-person distance, its threshold: "
                   f"{same_person_distance(DEFAULT_DESCRIPTOR):g} for {DEFAULT_DESCRIPTOR}); 'adaptive' tightens it, never past that "
                   "distance, for people whose photos are alike (fewer strangers named, e.g. for a web app)")
    p.add_argument("--far", type=_far, default=names.DEFAULT_FAR, metavar="RATE|off",
                   help="open-set rule: name someone in at most RATE of the photos of strangers "
                   f"(default {names.DEFAULT_FAR}; calibrated on public web photos of strangers, shipped with the "
                   "library as numbers for the descriptor, else on the other people of LABELLED_DIR; "
                   "docs/openset.md); 'off': name every face the classifier is sure of")
    p.add_argument("--strangers", type=Path, default=None, metavar="DIR",
                   help="photos of people not in LABELLED_DIR (your own strangers): the calibration uses them "
                        "with the other people of LABELLED_DIR instead of the shipped web strangers")
    p.add_argument("--report", type=Path, default=None, metavar="CSV",
                   help="also write every training photo and face to this CSV: kept, or left out and why "
                        "(source, person, face, status, reason, distance)")
    _add_overwrite(p, "an existing model file (and --report file)")
    _hidden_alias(p, "--force", "overwrite", action="store_true")
    _add_workers(p)
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .classify import AUTO_MODELS, check_model_path, save_model, train
    from .io import list_images

    if args.out is None:
        raise ValueError("give the model file to write with --out MODEL")
    check_model_path(args.out, overwrite=args.overwrite)  # before the training work, not after it
    if args.report is not None:
        from .io import check_output_file

        if args.report.resolve() == args.out.resolve():
            raise ValueError("--report must be another file than the model (--out)")
        check_output_file(args.report, overwrite=args.overwrite, what="report")
    if (args.db is None) == (args.labelled_dir is None):
        raise ValueError("give LABELLED_DIR (or a table, or PHOTOS with --names), or --db COLLECTION, not both")
    if args.db is not None and (args.names is not None or args.features != "embedding"):
        raise ValueError("--db trains on the collection's named faces: --names and --features do not apply")
    table = None
    if args.db is None and args.names is None and args.labelled_dir.is_file():  # a descriptor table, or a clear error
        from .tables import load_descriptor_table

        if args.features != "embedding":
            raise ValueError("a face table trains on its face descriptors: --features wavelet does not apply")
        table = load_descriptor_table(args.labelled_dir, "training")
    elif args.db is None and not args.labelled_dir.is_dir():
        raise FileNotFoundError(f"no such folder: {args.labelled_dir}")
    if args.names is not None and args.features != "embedding":
        raise ValueError("--names trains on face descriptors: --features wavelet does not apply")
    loose = [] if args.names is not None or table is not None or args.db else list_images(args.labelled_dir, recursive=False)
    if loose:  # they have no person (sub-folder), so they cannot teach anything: say so
        print(f"note: {len(loose)} photos lie directly in {args.labelled_dir}, not in a person's sub-folder; "
              f"they are not used (e.g. {loose[0].name})")
    if args.far is not None and not args.far < 1:
        raise ValueError(f"--far must be below 1, not {args.far}")
    if args.strangers is not None and not args.strangers.is_dir():
        raise FileNotFoundError(f"no such folder: {args.strangers}")
    common = dict(detector=args.detector, descriptor=args.descriptor, model=args.classifier,
                  max_distance=args.max_distance, far=args.far, strangers=args.strangers, n_jobs=args.jobs,
                  progress=not args.quiet)
    if args.db is not None:
        from .collection_stages import train_from_collection

        common = {k: v for k, v in common.items() if k not in ("detector", "descriptor")}  # the collection's own
        model = train_from_collection(args.db, **common)
    elif args.names is not None:
        from .naming import train_from_names

        if not args.names.is_file():
            raise FileNotFoundError(f"no names table {args.names} (copy OUT/clusters.csv of `vision-lib cluster` "
                                    "and add a name column)")
        model = train_from_names(args.names, args.labelled_dir, **common)
    elif table is not None:
        model = train(table, **common)
    else:
        model = train(args.labelled_dir, features=args.features, **common)
    save_model(model, args.out, overwrite=args.overwrite)
    rep = model.training_report_
    print(f"trained {model!r}")
    scored = [r for r in model.info_.get("comparison") or [] if "accuracy" in r]
    why = ""
    if scored:
        cv = ", ".join(f"{r['model']} {r['accuracy']:.3f}" for r in scored)
        why = (f" (5-fold CV accuracy {cv}; the first of {', '.join(AUTO_MODELS)} not significantly worse"
               " than the best is kept)")
    print(f"  classifier: {model.info_['model']}{why}")
    print(f"  {len(rep.kept)} training faces from {len({k[0] for k in rep.kept})} photos")
    if model.openset_ is not None:
        o = model.openset_.summary()
        whom = {"web": f"web strangers ({o['n_strangers']['web']} photo-person pairs, LFW)",
                "training": f"{o['n_strangers']['other_people']} faces of the other people here",
                "supplied": f"{o['n_strangers']['supplied']} supplied stranger faces and "
                            f"{o['n_strangers']['other_people']} of the other people here"}[o["population"]]
        print(f"  open set: named only within {o['score']} distance {o['threshold_']} (false-accept rate "
              f"{o['far_']} of stranger photos, calibrated on {whom}; "
              f"{o['genuine_accepted']} of the training faces pass, leave one out)")
    if rep.excluded:  # counts only: the photo-by-photo list is --report's CSV (hundreds of lines otherwise)
        print(f"  left out: {len(rep.photos_excluded())} photos and "
              f"{len(rep.excluded) - len(rep.photos_excluded())} faces of kept photos, by reason:")
    for reason, n in rep.counts().items():
        print(f"  {n:6d}  {reason}")
    if rep.excluded and args.report is None:
        print("  (--report FILE.csv lists every photo and face with its reason)")
    print(f"wrote {args.out} (a pickle: load only files you trust)")
    if args.report is not None:
        from .io import check_output_file, csv_bytes, write_atomic

        check_output_file(args.report, overwrite=args.overwrite, what="report")  # still free after training
        write_atomic(args.report, csv_bytes(list(rep.COLUMNS), rep.rows()))
        print(f"wrote {args.report} ({len(rep.kept)} faces kept, {len(rep.excluded)} photos or faces left out)")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="who is in these photos, with a trained model",
                       description="Name the people in each photo (folders searched recursively) with a model "
                                   "written by `vision-lib train`: one line per photo, or one JSON object with "
                                   "--json. An unusable file gets an error line; the exit code is 1 if any did.")
    p.add_argument("--model", type=Path, default=None, help="model bundle written by `vision-lib train`")
    p.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                   help="photo or folder (searched recursively); without --model the first INPUT is the model")
    p.add_argument("--json", action="store_true", help="one JSON object per photo per line")
    _add_workers(p)
    p.set_defaults(handler=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    import json

    from .classify import load_model
    from .io import entry_word, scan_folder
    from .plotting import percent, verdict_words, with_words

    if args.model is None:  # the older form: `predict MODEL INPUT...`
        if len(args.inputs) < 2:
            raise ValueError("give the model with --model MODEL, then the photos or folders")
        args.model, args.inputs = args.inputs[0], args.inputs[1:]
    model = load_model(args.model)
    paths, skipped = [], []
    for item in args.inputs:
        if item.is_dir():
            scan = scan_folder(item, recursive=True)
            if not scan.photos:  # said, not silently skipped: an empty answer would look like a clean run
                print(f"vision-lib predict: no photos in {item}", file=sys.stderr)
            paths += scan.photos
            skipped += scan.skipped
        else:
            paths.append(item)  # a missing or unreadable file is reported in its own line
    failed = [r for r in skipped if entry_word(r) == "error"]  # broken.jpg: meant as a photo, so an error
    for r in skipped:  # every file of a folder gets its line; other files (notes.txt) are not errors
        word = entry_word(r)  # the same word as compress, and as a photo given by name that fails
        print(json.dumps({"path": r.source, word: r.reason}) if args.json else f"{r.source}\t{word}: {r.reason}",
              flush=True)
    if not paths:
        return 1
    n_people = len(getattr(model, "classes_", ()))  # for "Not one of the N people this model knows"
    results = model.predict_paths(paths, n_jobs=args.jobs,
                                  progress=not (args.quiet or args.json) and sys.stderr.isatty())
    for res in results:
        if args.json:  # with the words the web page shows (answer, closeness)
            print(json.dumps(with_words(res, n_people)), flush=True)
        elif "error" in res:
            print(f"{res['path']}\terror: {res['error']}")
        else:
            faces = ", ".join(f"{f['label']} {percent(f['probability'])}" if f["probability"] is not None
                              else f"{f['label']} ({f.get('verdict', 'unknown')})" for f in res["faces"]) or "no face"
            # Last, the answer in words a presenter can read out (as the web page says it).
            print(f"{res['path']}\t{res['label'] or '-'}\t({faces})\t{verdict_words(res, n_people)}")
    # As `compress`: every input gets its line, and the exit code says whether any of them failed.
    return 1 if failed or any("error" in res for res in results) else 0


# --------------------------------------------------------------------------- average (issue 5)
def _add_average(sub) -> None:
    p = sub.add_parser(
        "average", help="aligned average face per person or cluster",
        description="IN is a folder of sub-folders (one per person) or the clusters.csv written by "
                    "`vision-lib cluster` (or its output folder). Writes OUT_DIR/<group>.png and "
                    "OUT_DIR/averages.csv (group,n_faces,n_used), OUT_DIR/used.csv (group,source: the faces "
                    "used) and OUT_DIR/left_out.csv (group,source,reason); "
                    "existing files are never overwritten "
                    "unless --overwrite is given.")
    p.add_argument("in_path", type=Path, metavar="IN", nargs="?", help="folder of sub-folders, or clusters.csv")
    p.add_argument("--db", type=Path, default=None, help="a face collection, instead of IN (with --person)")
    p.add_argument("--person", default=None, metavar="N|NAME", help="with --db: the person (id or name) to average")
    p.add_argument("--out", type=Path, required=True, metavar="OUT_DIR", help="output folder (not inside IN)")
    p.add_argument("--method", choices=names.AVERAGE_METHODS, default="landmarks",
                   help="landmarks: warp dlib's 68 landmarks onto the mean shape (sharpest); "
                        "similarity: five-point similarity alignment only; eyes, naive: baselines")
    p.add_argument("--size", type=int, default=160, metavar="PX", help="side of the average images")
    p.add_argument("--root", type=Path, default=None,
                   help="folder the clusters.csv sources are relative to (default: from metrics.json)")
    p.add_argument("--no-identity", action="store_true",
                   help="keep faces of other people (no identity filter)")
    p.add_argument("--one-person", action="store_true",
                   help="IN is a flat folder of photos of one person: average them as one group named after "
                        "the folder (without it, a flat folder is refused: `vision-lib cluster` it first)")
    _add_models(p)
    _add_overwrite(p, "existing averages in OUT_DIR")
    _add_workers(p)
    p.set_defaults(handler=_run_average)


def _run_average(args: argparse.Namespace) -> int:
    from .average import average_groups, check_outputs, groups_from_input, write_averages
    from .io import EMPTY_FOLDER, is_inside

    if args.size < 16:
        raise ValueError("--size must be at least 16 pixels")
    folder_input = args.in_path is not None and args.in_path.is_dir() and not (args.in_path / "clusters.csv").is_file()
    if folder_input and is_inside(args.out, args.in_path):  # a later run would take the averages for photos
        raise ValueError(f"output folder {args.out} is inside the input folder {args.in_path}; choose another")
    if folder_input and not args.one_person and not any(
            d.is_dir() and not d.name.startswith(".") for d in args.in_path.iterdir()):
        raise ValueError(f"{args.in_path} has no person sub-folders: its photos would be averaged as one person "
                         f"'{args.in_path.resolve().name}'. If they show several people, group them first: "
                         f"`vision-lib cluster {args.in_path} --out CLUSTERS` then `vision-lib average CLUSTERS "
                         f"--out {args.out}`; if they are all one person, add --one-person")
    skipped: list = []
    if (args.db is None) == (args.in_path is None) or (args.db is None) != (args.person is None):
        raise ValueError("give IN, or --db COLLECTION with --person N|NAME")
    if args.db is not None:
        from .collection_stages import open_collection, person_group

        people = open_collection(args.db)
        groups = person_group(people, args.person)
        args.detector, args.descriptor = people.detector, people.descriptor  # the collection's own models
        for path, kind, _ in people.store.roots().values():
            if kind == "folder" and is_inside(args.out, path):  # the next index would take the averages for photos
                raise ValueError(f"output folder {args.out} is inside the collection's folder {path}; choose another")
    else:
        groups = groups_from_input(args.in_path, args.root, skipped=skipped)
        if folder_input and args.one_person and len(groups) > 1:
            raise ValueError(f"--one-person is for a flat folder; {args.in_path} has {len(groups)} person sub-folders")
    check_outputs(groups, args.out, overwrite=args.overwrite)  # before the work, not after it
    results = average_groups(groups, method=args.method, size=args.size, identity=not args.no_identity,
                             detector=args.detector, descriptor=args.descriptor,
                             n_jobs=args.jobs, progress=not args.quiet)
    table = write_averages(results, args.out, overwrite=args.overwrite, skipped=skipped)
    for r in results:
        why, none = (", ".join(f"{n} {reason}" for reason, n in r.reasons(which).items())
                     for which in ("left_out", "rejected"))
        print(f"{r.group}: {r.n_used}/{r.n_faces} faces used" + (f" (left out: {why})" if why else "")
              + (f"; {len(r.rejected)} photos without a usable face ({none})" if none else ""))
    empty = [(g, r) for g, r in skipped if r.reason == EMPTY_FOLDER]
    for group, r in empty:  # a person's folder with no photos gets its line, like the groups above
        print(f"{group or r.source}: {r.reason} (listed in left_out.csv)")
    if len(skipped) > len(empty):
        print(f"{len(skipped) - len(empty)} other files (not photos, hidden, or outside a sub-folder) are listed "
              "in left_out.csv")
    print(f"wrote {sum(r.image is not None for r in results)} averages and {table}")
    return 0


# --------------------------------------------------------------------------- serve (issue 7)
def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="web page that classifies a dropped photo",
                       description="Serve a page where a photo can be dropped (or chosen) and is "
                       "classified by MODEL; also POST /api/classify (multipart field 'file', or JSON "
                       "{\"image\": data URL}, or the raw photo with an image/* Content-Type), answering like `vision-lib predict --json`.")
    p.add_argument("--model", type=Path, default=None, help="model bundle written by `vision-lib train`")
    p.add_argument("--db", type=Path, default=None, help="a face collection (`vision-lib index`): who each face is "
                   "there, and a strip of the other photos of that person (with or without --model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port, printed at start)")
    p.add_argument("--max-upload-mb", type=float, default=10, help="largest photo accepted, in MB")
    p.add_argument("--max-megapixels", type=float, default=50,
                   help="largest photo decoded, in megapixels (bigger ones get a 400; default 50)")
    p.add_argument("--threads", type=int, default=4, help="server worker threads")
    p.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    if args.model is None and args.db is None:
        raise ValueError("give a model (--model, from `vision-lib train`) or a face collection (--db), or both")
    if args.model is not None and not args.model.is_file():
        raise FileNotFoundError(f"no such model file: {args.model} (make one with `vision-lib train`)")
    if args.max_upload_mb <= 0 or args.max_megapixels <= 0 or args.threads < 1 or not 0 <= args.port <= 65535:
        raise ValueError("--max-upload-mb and --max-megapixels must be > 0, --threads >= 1 and --port within 0..65535")
    serve(args.model, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, threads=args.threads,
          max_megapixels=args.max_megapixels, db=args.db)
    return 0


# --------------------------------------------------------------------------- cluster, teams (issue 4)
_k_value = _positive_or("auto", int, "--clusters")


def _add_cluster(sub) -> None:
    p = sub.add_parser("cluster", help="group faces by identity (number of people unknown)",
                       description="Detect faces, describe them (--detector, --descriptor), group them by person, and "
                       "write OUT/cluster_NN/ photo copies with OUT/cluster_NN/faces/ crops of the grouped faces (to check "
                       "each group), OUT/unassigned/, OUT/clusters.csv "
                       "(source,face_index,cluster; -1 = unassigned) and OUT/metrics.json. With labelled "
                       "sub-folders (one per person) the metrics also compare with the labels. IN may "
                       "also be the .npz table of `vision-lib features IN --kind descriptor` (no photo "
                       "copies then). Above 6000 faces the groups come from a k-nearest-neighbour graph "
                       "(linear memory; docs/scale.md).")
    p.add_argument("in_dir", type=Path, metavar="IN", help="folder of photos (searched recursively), or a descriptor table (.npz)")
    p.add_argument("--out", type=Path, required=True, help="new output folder (not inside IN_DIR)")
    p.add_argument("--method", choices=names.CLUSTER_METHODS, default="hybrid",
                   help="hybrid (default): HDBSCAN cores, other faces attached or grouped at the "
                        "descriptor's same-person distance")
    p.add_argument("--clusters", type=_k_value, default=None, metavar="auto|N",
                   help="number of people (default auto: found from face distances)")
    _hidden_alias(p, "--k", "clusters", type=_k_value)
    p.add_argument("--max-clusters", type=int, default=None, help="at most this many groups (closest merged)")
    p.add_argument("--threshold", type=float, default=None,
                   help="same-person distance for the threshold methods (default: the descriptor's; 5/6 of "
                        "it for chinese_whispers, dbscan)")
    _add_models(p)
    p.add_argument("--link", action="store_true", help="hard-link photos instead of copying them")
    _add_workers(p)
    p.set_defaults(handler=_run_cluster)


def _run_cluster(args: argparse.Namespace) -> int:
    import json

    from .cluster import cluster_folder, cluster_table

    if args.in_dir.is_dir():
        metrics = cluster_folder(args.in_dir, args.out, method=args.method, k=args.clusters,
                                 max_clusters=args.max_clusters, threshold=args.threshold, link=args.link,
                                 n_jobs=args.jobs, progress=not args.quiet, detector=args.detector,
                                 descriptor=args.descriptor)
    else:  # a descriptor table, or a clear error (never an empty result)
        metrics = cluster_table(args.in_dir, args.out, method=args.method, k=args.clusters,
                                max_clusters=args.max_clusters, threshold=args.threshold, progress=not args.quiet)
    internal = metrics["internal"]
    print(f"{metrics['faces']} faces in {metrics['photos']} photos -> {internal['n_clusters']} clusters, "
          f"{internal['n_unassigned']} unassigned; {metrics['photos_rejected']} photos without a usable face"
          + (f"; {metrics['files_skipped']} other files (not photos)" if metrics["files_skipped"] else ""))
    if "external" in metrics:
        ext = metrics["external"]
        print("against the folder names, scored per photo on its subject face (so n_clusters counts only "
              "clusters that hold some photo's subject face):")
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in ext.items()}, indent=1))
    listed = ", rejected.csv" if metrics["photos_rejected"] or metrics.get("files_skipped") else ""
    copies = " and the grouped copies (cluster_NN/faces/: the face of each copy)" if args.in_dir.is_dir() else ""
    print(f"wrote {args.out}/clusters.csv{listed}, metrics.json{copies}")
    return 0


def _add_teams(sub) -> None:
    p = sub.add_parser("teams", help="group player crops by clothing",
                       description="Split a folder of player crops into N groups (--clusters) by clothing colours (court "
                       "masked out); writes OUT/clusters.csv (source,cluster), OUT/group_NN/ copies and "
                       "OUT/summary.json.")
    p.add_argument("in_dir", type=Path, help="folder of player crops")
    p.add_argument("--out", type=Path, required=True, help="new output folder (not inside IN_DIR)")
    p.add_argument("--clusters", type=int, default=2, metavar="N", help="number of teams or players (default 2)")
    _hidden_alias(p, "--groups", "clusters", type=int)
    p.add_argument("--method", choices=names.TEAM_METHODS, default="colours",
                   help="colours: court-masked palette (default); recipe: MobileNetV2 + region histograms")
    p.add_argument("--court", type=Path, default=None, help="optional photo of the court (adds court colours)")
    p.add_argument("--link", action="store_true", help="hard-link crops instead of copying them")
    p.set_defaults(handler=_run_teams)


def _run_teams(args: argparse.Namespace) -> int:
    from .teams import teams_folder

    if args.clusters < 1:
        raise ValueError("--clusters must be at least 1")
    s = teams_folder(args.in_dir, args.out, groups=args.clusters, method=args.method, court=args.court, link=args.link)
    fp = s["frame_pairs"]
    print(f"{s['crops']} crops -> groups of {s['sizes']}; {len(s['rejected'])} files not used (see summary.json)")
    if fp["frames"]:
        print(f"frames whose two crops fell in different groups: {fp['frames_split']}/{fp['frames']}")
    print(f"wrote {args.out}/clusters.csv and the grouped copies")
    return 0


# --------------------------------------------------------------------------- compress (issue 6)
def _add_compress(sub) -> None:
    p = sub.add_parser("compress", help="K-Means colour quantization to palette PNGs (JSON line per photo)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMG", help="photos (or folders of photos)")
    p.add_argument("--k", type=int, default=16, help="palette colours, 2..256 (default 16)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for <name>_k<k>.png files (a folder input's sub-folders are mirrored)")
    p.add_argument("--dither", action="store_true", help="Floyd-Steinberg dithering")
    _add_overwrite(p, "existing outputs")
    p.add_argument("--optimize", action="store_true", help="zlib level 9: slightly smaller, slower")
    p.add_argument("--seed", type=int, default=0, help="K-Means initialisation seed")
    p.add_argument("--max-megapixels", type=float, default=50,
                   help="larger photos are refused with a reason (memory: ~125 bytes per pixel; default 50)")
    p.set_defaults(handler=_run_compress)


def _run_compress(args: argparse.Namespace) -> int:
    from .compress import compress_files, output_names, to_jsonl
    from .io import EMPTY_FOLDER, check_output_folder, entry_word, is_inside, scan_folder

    if not 2 <= args.k <= 256:
        raise ValueError(f"--k must be between 2 and 256, got {args.k}")
    if args.max_megapixels <= 0:
        raise ValueError(f"--max-megapixels must be positive, got {args.max_megapixels}")
    check_output_folder(args.out)  # before quantizing anything
    paths, relative, skipped = [], [], []
    for item in args.images:  # folders expand to their photos; files (even unreadable) are kept
        if item.is_dir():
            if is_inside(args.out, item):  # a later run would compress the outputs as photos
                raise ValueError(f"output folder {args.out} is inside the input folder {item}; choose another")
            scan = scan_folder(item)
            found = scan.photos
            skipped += scan.skipped
            paths += found
            relative += [p.relative_to(item) for p in found]  # sub-folders are mirrored under --out
        else:
            if args.out.resolve() == item.parent.resolve():  # outputs among the originals
                raise ValueError(f"output folder {args.out} is the folder of the input {item}; choose another")
            paths.append(item)
            relative.append(Path(item.name))
    failed = 0
    for r in skipped:  # a folder's other files get their line too; broken.jpg (meant as a photo) is a failure
        word = entry_word(r)
        failed += word == "error"
        print(to_jsonl({"path": r.source, word: r.reason}), flush=True)
    inputs = len(paths) + failed  # the photos plus the broken files meant as photos, each counted once
    skipped = [r for r in skipped if entry_word(r) == "skipped"]
    out_names = output_names(relative, args.k, args.dither)
    for record in compress_files(paths, args.out, args.k, names=out_names, dither=args.dither, overwrite=args.overwrite,
                                 optimize=args.optimize, random_state=args.seed,
                                 max_megapixels=args.max_megapixels):
        failed += "error" in record
        print(to_jsonl(record), flush=True)
    if failed:
        print(f"vision-lib compress: {failed} of {inputs} inputs failed (see their JSON lines)",
              file=sys.stderr)
    if skipped:
        empty = sum(r.reason == EMPTY_FOLDER for r in skipped)
        what = [f"{len(skipped) - empty} files are not photos"] * (len(skipped) > empty) + [
            f"{empty} folders hold no photos"] * bool(empty)
        print(f"vision-lib compress: in the input folders, {' and '.join(what)} (see their \"skipped\" JSON lines)",
              file=sys.stderr)
    return 1 if failed else 0


# --------------------------------------------------------------------------- collection (issue 33)
def _add_index(sub) -> None:
    p = sub.add_parser("index", help="add photos (or a descriptor table) to a face collection",
                       description="Add folders, photos or `features --kind descriptor` tables to the collection "
                       "DB (created when missing): unchanged photos are skipped, changed ones re-read, photos gone "
                       "from a folder removed; new faces join the people they are, the rest form new people. Every "
                       "file is accounted for; stopped at any point, the same command goes on (docs/collection.md).")
    p.add_argument("inputs", type=Path, nargs="+", metavar="PHOTOS_OR_TABLE",
                   help="folder (searched recursively), photo, or descriptor table (.npz)")
    p.add_argument("--db", type=Path, required=True, help="the collection file (e.g. people.db)")
    _add_models(p, detector="face detector of a new collection (default: {detector})",
                descriptor="face descriptor of a new collection (default: {descriptor}; a table's own)")
    _add_workers(p)
    p.set_defaults(handler=_run_index)


def _listed(title: str, items: list) -> None:
    from .io import LISTED_AT_MOST

    for item in items[:LISTED_AT_MOST]:
        print(f"  {title}: {item}")
    if len(items) > LISTED_AT_MOST:
        print(f"  {title}: ... and {len(items) - LISTED_AT_MOST} more")


def _run_index(args: argparse.Namespace) -> int:
    from .collection import Collection

    # Closed on return (its WAL checkpointed then), not whenever a garbage collection frees it.
    with Collection(args.db, descriptor=args.descriptor, detector=args.detector) as people:
        report = people.add(args.inputs, n_jobs=args.jobs, progress=not args.quiet)
        print(report.summary())
        _listed("changed", report.changed)
        _listed("removed", report.removed)
        _listed("no usable face", [f"{r.source} ({r.reason})" for r in report.rejected])
        _listed("skipped", [f"{r.source} ({r.reason})" for r in report.skipped])
        print(f"{args.db}: {len(people.people())} people; `vision-lib people --db {args.db}` lists them")
        return 0


def _add_people(sub) -> None:
    p = sub.add_parser("people", help="list, export or name the people of a face collection",
                       description="One line per person (id, name, faces, photos); --faces writes one row per "
                       "face; --names reads a CSV of person,name and names those people (saved at once).")
    p.add_argument("--db", type=Path, required=True, help="the collection file")
    p.add_argument("--json", action="store_true", help="one JSON object per person")
    p.add_argument("--faces", type=Path, default=None, metavar="OUT.csv",
                   help="write source,face_index,person,name,decided_by (one row per face)")
    p.add_argument("--names", type=Path, default=None, metavar="IN.csv", help="name people from a person,name CSV")
    _add_overwrite(p, "an existing --faces file")
    p.set_defaults(handler=_run_people)


def _run_people(args: argparse.Namespace) -> int:
    import json

    from .collection import Collection

    with Collection(args.db) as people:
        people.store  # noqa: B018 (a missing file is one clear error: only `index` creates a collection)
        if args.names is not None:
            people.name_from_csv(args.names)
        if args.faces is not None:
            print(f"wrote {people.write_faces_csv(args.faces, overwrite=args.overwrite)}")
            return 0
        for person in people.people():
            if args.json:
                print(json.dumps({"id": person.id, "name": person.name, "faces": person.faces, "photos": person.photos,
                                  "hidden": person.hidden}))
            else:
                print(f"{person.id}\t{person.name or ''}\t{person.faces} faces\t{person.photos} photos"
                      + ("\thidden" if person.hidden else ""))
        return 0


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="who is in a photo, and where else they appear in a face collection",
                       description="For each face of PHOTO: the person of the collection it is (or none), its "
                       "stranger_rate, and the nearest faces of the collection, best first.")
    p.add_argument("photo", type=Path, metavar="PHOTO")
    p.add_argument("--db", type=Path, required=True, help="the collection file")
    p.add_argument("--json", action="store_true", help="one JSON object per face")
    p.add_argument("--top", type=int, default=10, help="matches per face")
    p.set_defaults(handler=_run_search)


def _run_search(args: argparse.Namespace) -> int:
    import json

    from .collection import Collection

    with Collection(args.db) as people:
        people.store  # noqa: B018 (a missing file is one clear error)
        faces = people.search(args.photo, top=args.top)
        if not faces and not args.json:
            print(f"{args.photo}: no face found")
        for face in faces:
            if args.json:
                print(json.dumps(face))
                continue
            who = face["name"] or (f"person {face['person']}" if face["person"] is not None else "not anyone in this collection")
            rate = "" if face["stranger_rate"] is None else f" (stranger_rate {face['stranger_rate']:.4f})"
            print(f"{args.photo} {tuple(face['box'])}: {who}{rate}")
            for m in face["matches"]:
                print(f"  {m['distance']:.3f}  {m['source']}#{m['face_index']}  "
                      + (m["name"] or (f"person {m['person']}" if m["person"] is not None else "-")))
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vision-lib", description="Analyse photos of people: faces, features, models, clusters."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # In pipeline order (notebooks 01-06), then the app and the suite.
    for add in (_add_faces, _add_features, _add_train, _add_predict, _add_cluster, _add_teams, _add_average,
                _add_compress, _add_serve, _add_notebooks, _add_present, _add_fetch, _add_models_command, _add_index,
                _add_people, _add_search):
        add(sub)
    for action in sub._choices_actions:  # every command: a description, and its defaults shown
        command = sub.choices[action.dest]
        command.formatter_class = _HelpFormatter
        if not command.description:
            command.description = action.help[0].upper() + action.help[1:] + "."
    return parser


def _short_warning(message, category, filename, lineno, line=None) -> str:
    # On a terminal a warning is a message for the user, not a pointer into library source.
    return f"{category.__name__}: {message}\n"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that clean-up (temporary files and folders, worker processes) runs."""


def _terminate(signum, frame):
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _short_warning
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    from .parallel import use_scheduler  # light: imports no stage and no Dask

    try:
        with use_scheduler(getattr(args, "scheduler", None)):
            return int(args.handler(args) or 0)
    except KeyboardInterrupt as stop:  # Ctrl-C: a line, not a traceback; finished outputs stay (resume where offered)
        terminated = isinstance(stop, _Terminated)
        print(f"\nvision-lib {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # `vision-lib predict ... --json | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except (OSError, ValueError) as exc:  # missing, existing or unwritable files, bad values: one line
        print(f"vision-lib {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenExecutor as exc:  # a worker process was killed (by hand, or out of memory): no traceback
        print(f"vision-lib {args.command}: error: {' '.join(str(exc).split())} Finished outputs stay; "
              "run the command again (faces resumes where it stopped).", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


#: The public names of this module.
__all__ = ["build_parser", "main"]
