"""Model bundles: :func:`save_model` / :func:`load_model`, checked before the estimator is unpickled.

Bundles are **pickles**: loading one can run arbitrary code, so load only files you trust.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..extraction import Recipe
from ..io import check_output_file, write_atomic
from .classifier import CHOICES, FaceClassifier

BUNDLE_FORMAT = 1
#: Packages whose versions are recorded in a bundle and must match when loading it.
VERSIONED = ("numpy", "scikit-learn", "dlib", "vision_lib")


class ModelBundleError(ValueError):
    """A saved model that cannot be used here (other versions, unknown recipe, not a bundle)."""


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import sklearn

    from .. import __version__

    out = {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "vision_lib": __version__}
    try:
        import dlib

        out["dlib"] = dlib.__version__
    except ImportError:  # pragma: no cover - dlib comes with the ``deep`` extra (the ``dlib`` descriptor, landmarks)
        try:
            out["dlib"] = md.version("dlib-bin")
        except md.PackageNotFoundError:
            out["dlib"] = "missing"
    return out


def check_model_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse, before any training, a path :func:`save_model` would refuse or fail to write: an
    existing file without ``overwrite``, anything that is not a regular file (a folder, a device),
    or a folder that cannot be written."""
    return check_output_file(path, overwrite=overwrite, what="model")


def save_model(model: FaceClassifier, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a model bundle (a pickle: estimator + labels + feature recipe + package versions).

    Refuses to replace an existing file unless ``overwrite`` (see :func:`check_model_path`). The
    file is written under a temporary name and renamed, so an existing bundle is never left half
    written. Bundles are pickles: share and load only files you trust.
    """
    import hashlib

    path = check_model_path(path, overwrite=overwrite)
    header = {
        "format": BUNDLE_FORMAT, "kind": "vision_lib.FaceClassifier", "versions": _versions(),
        "recipe": asdict(model.recipe), "descriptor": model.recipe.descriptor_model.id, "labels": model.classes_,
        "unknown_below": model.unknown_below, "max_distance": model.max_distance, "choose": model.choose,
        "sure_distance": model.sure_distance, "subject_tie": model.subject_tie,
        "openset": None if model.openset_ is None else model.openset_.summary(),
        "info": model.info_,
    }
    # The header holds only plain Python values, so it can be checked before the estimator is unpickled.
    body = pickle.dumps({"estimator": model.estimator, "centroids": model.centroids_,
                         "training_report": model.training_report_, "openset": model.openset_}, protocol=5)
    # A damaged body can still unpickle (zeroed bytes inside an array): the checksum catches it.
    header["body_sha256"] = hashlib.sha256(body).hexdigest()
    return write_atomic(path, pickle.dumps({"header": header, "body": body}, protocol=5))


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles only plain Python containers and scalars (the bundle's outer layer)."""

    def find_class(self, module, name):
        raise ModelBundleError(f"not a vision_lib model bundle (it refers to {module}.{name})")


def read_header(path: str | os.PathLike) -> dict:
    """The bundle's outer record, ``{"header": {format, versions, recipe, labels, ...}, "body": bytes}``,
    read without unpickling the estimator (``body`` stays the estimator's pickled bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            outer = _PlainUnpickler(f).load()
    except ModelBundleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise ModelBundleError(f"{path}: not a vision_lib model bundle ({type(exc).__name__}: {exc})") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("header"), dict) or "body" not in outer:
        raise ModelBundleError(f"{path}: not a vision_lib model bundle")
    return outer


def load_model(path: str | os.PathLike, *, check_versions: bool = True) -> FaceClassifier:
    """Load a bundle written by :func:`save_model`, refusing a mismatch of recipe or versions.

    **Bundles are pickles: loading one can run arbitrary code. Load only files you trust.**
    The header (plain values only) is read and checked first; the estimator is unpickled only
    when the bundle format, recipe and the versions of numpy, scikit-learn, dlib and vision_lib
    match this installation (``check_versions=False`` skips the version check, at your own risk).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    outer = read_header(path)
    header = outer["header"]
    if header.get("kind") != "vision_lib.FaceClassifier" or header.get("format") != BUNDLE_FORMAT:
        raise ModelBundleError(f"{path}: bundle format {header.get('format')!r} is not {BUNDLE_FORMAT}; "
                               "retrain the model with this vision_lib")
    _check_body(path, header, outer["body"])
    from ..models import descriptor_for_id

    fields = dict(header["recipe"])
    if "descriptor" not in fields and isinstance(header.get("descriptor"), str):
        # Bundles from before the descriptor registry: their descriptor is named by its id alone.
        known = descriptor_for_id(header["descriptor"])
        fields["descriptor"] = known.name if known is not None else "dlib"
    try:
        recipe = Recipe(**{k: (tuple(tuple(x) for x in v) if isinstance(v, (list, tuple)) else v)
                           for k, v in fields.items()})
    except (TypeError, ValueError) as exc:
        raise ModelBundleError(f"{path}: unknown feature recipe {header.get('recipe')} ({exc}); "
                               "retrain the model with this vision_lib") from None
    here = recipe.descriptor_model.id
    if header.get("descriptor") != here:
        # Always checked: descriptors of another model, version or alignment live in another space.
        raise ModelBundleError(f"{path}: trained on face descriptors {header.get('descriptor')!r}, but this "
                               f"vision_lib's {recipe.descriptor!r} descriptor computes {here!r}; retrain with "
                               f"`vision-lib train --descriptor {recipe.descriptor}`")
    if check_versions:
        here = _versions()
        saved = header.get("versions", {})
        diff = [f"{k} {saved.get(k, '?')} (bundle) vs {here.get(k)} (installed)" for k in VERSIONED
                if saved.get(k) != here.get(k)]
        if diff:
            raise ModelBundleError(
                f"{path} was saved with other package versions: " + "; ".join(diff)
                + ". Retrain with `vision-lib train`, or install the bundle's versions.")
    if "openset" not in header:
        # Without the stranger calibration it would name every face as one of its people.
        raise ModelBundleError(f"{path}: saved before open-set calibration (it would put a known name on "
                               "strangers); retrain it with `vision-lib train` (see docs/openset.md)")
    try:
        body = pickle.loads(outer["body"])
        model = FaceClassifier(body["estimator"], recipe, header["unknown_below"], header["max_distance"],
                               header["choose"], body["centroids"], body["training_report"], header.get("info"),
                               header.get("sure_distance"), header.get("subject_tie"), body.get("openset"))
        same_labels = model.classes_ == list(header["labels"])
    except Exception as exc:  # noqa: BLE001 - whatever a damaged pickle raises, the answer is the same
        raise ModelBundleError(f"{path}: damaged model bundle ({type(exc).__name__}: {exc}); "
                               "retrain it with `vision-lib train`") from None
    if not same_labels:
        raise ModelBundleError(f"{path}: labels in the header do not match the estimator's classes")
    return model


def _check_body(path: Path, header: dict, body) -> None:
    """Refuse a bundle whose header fields have the wrong types or whose body fails its checksum."""
    import hashlib
    from numbers import Real

    def number(v, none_ok=True):
        return (v is None and none_ok) or (isinstance(v, Real) and not isinstance(v, bool))

    problems = [name for name, ok in (
        ("versions", isinstance(header.get("versions"), dict)),
        ("recipe", isinstance(header.get("recipe"), dict)),
        ("labels", isinstance(header.get("labels"), (list, tuple)) and all(isinstance(x, str) for x in header["labels"])),
        ("unknown_below", number(header.get("unknown_below", "missing"), none_ok=False)),
        ("max_distance", number(header.get("max_distance"))),
        ("sure_distance", number(header.get("sure_distance"))),
        ("subject_tie", number(header.get("subject_tie"))),
        ("choose", header.get("choose") in CHOICES),
        ("body", isinstance(body, bytes)),
    ) if not ok]
    if problems:
        raise ModelBundleError(f"{path}: damaged model bundle (bad {', '.join(problems)}); retrain it with `vision-lib train`")
    expected = header.get("body_sha256")  # bundles written before the checksum have none
    if expected is not None and hashlib.sha256(body).hexdigest() != expected:
        raise ModelBundleError(f"{path}: damaged model bundle (checksum mismatch); retrain it or copy it again")


#: The public names of this module.
__all__ = ["BUNDLE_FORMAT", "VERSIONED", "ModelBundleError", "check_model_path", "save_model", "read_header", "load_model"]
