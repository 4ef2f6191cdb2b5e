"""Training a :class:`~vision_lib.classify.FaceClassifier` from raw folders, one per person, or from
their face table (:func:`train`: the faces, cleaning, model choice, the unknown and open-set rules)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..extraction import PhotoFeatures, Recipe, extract
from ..faces import PhotoFaces
from ..io import EMPTY_FOLDER, PhotoSet, Rejected, photo_set
from ..names import DEFAULT_FAR
from ..tables import NO_FACE, FaceTable, face_table
from .classifier import SUBJECT_TIE, FaceClassifier
from .cleaning import Excluded, training_faces
from .selection import AUTO_MODELS, _fewest_train, _inner_folds, choose_model, compare_models, cv_folds, make_estimator

#: :data:`SUBJECT_TIE` as a share of a descriptor's same-person distance (it was set as 0.05 on
#: dlib's scale, whose ``threshold`` is 0.6), so that ``train`` scales it to any descriptor.
SUBJECT_TIE_SHARE = SUBJECT_TIE / 0.6
#: ``max_distance="adaptive"``: unknown beyond this many times the distance within which 95% of the
#: training faces lie from their own person's centroid (capped at the descriptor's same-person
#: distance, its ``threshold``). Tight identities (studio-like photos) get a tight open-set rule;
#: loose ones (varied web photos) keep that distance.
ADAPTIVE_FACTOR = 1.3


def _as_photo_set(data: PhotoSet | str | os.PathLike) -> PhotoSet:
    ps = data if isinstance(data, PhotoSet) else photo_set(data, labelled=True)
    if not ps.labels:
        raise ValueError(f"no photos in sub-folders of {ps.root}: expected one folder per person")
    if len(set(ps.labels)) < 2:
        raise ValueError(f"need at least two people (sub-folders) under {ps.root}, found {sorted(set(ps.labels))}")
    return ps


def _table_photos(table: FaceTable) -> tuple[list[PhotoFaces], list[str], list[Rejected]]:
    """A descriptor table as the per-photo records cleaning reads: ``(photos, labels, left_out)``,
    the photos in the table's order (those with a face and those without), ``left_out`` the
    table's other files and its photos outside a person's sub-folder."""
    root = table.root if table.root is not None else table.settings.get("root")
    where = (lambda s: Path(root) / s) if root is not None else Path
    rows = table.rows_by_source()
    why = {r.source: r.reason for r in table.rejected}
    labels = table.photo_labels if table.photo_labels is not None else \
        [p.split("/")[0] if "/" in p else "" for p in table.photos]
    photos, kept, left_out = [], [], list(table.skipped)
    for source, label in zip(table.photos, labels):
        if not label:
            left_out.append(Rejected(source, "not in a person's sub-folder (no label)"))
            continue
        idx = rows.get(source, [])
        error = None if idx else why.get(source, NO_FACE)
        D = table.X[idx].astype(np.float32)
        photos.append(PhotoFaces(where(source), [table.face(i) for i in idx], None,
                                 None if error == NO_FACE else error, D, None, D))
        kept.append(label)
    return photos, kept, left_out


def _table_recipe(table: FaceTable, detector: str | None, descriptor: str | None, retry: bool | None) -> Recipe:
    """The recipe of a descriptor table (what the model redoes on new photos); refuses a table of
    another kind, or one whose detector or descriptor differs from the requested one."""
    from ..models import get_descriptor

    if table.kind != "descriptor":
        raise ValueError(f"a face table of kind {table.kind!r} cannot train a classifier: it needs face "
                         "descriptors (`vision-lib features IN --kind descriptor`)")
    if table.descriptor is None:
        raise ValueError(f"the table's descriptor {table.settings.get('descriptor')!r} is not a registered "
                         "descriptor; describe the photos again (`vision-lib features IN --kind descriptor`)")
    if descriptor is not None and get_descriptor(descriptor).id != table.settings["descriptor"]:
        raise ValueError(f"the table holds {table.descriptor} descriptors ({table.settings['descriptor']}), not "
                         f"{descriptor} ({get_descriptor(descriptor).id}): describe the photos with --descriptor "
                         f"{descriptor}, or train without --descriptor")
    made_by = table.settings.get("detector")
    if detector is not None and made_by is not None and detector != made_by:
        raise ValueError(f"the table's faces were found by {made_by}, not {detector}: train without --detector "
                         "or describe the photos again")
    return Recipe("embedding", detector or made_by, retry=True if retry is None else retry,
                  descriptor=table.descriptor)


def unknown_threshold(estimator, X: np.ndarray, y: np.ndarray, quantile: float = 0.01,
                      cv: int | list[tuple[np.ndarray, np.ndarray]] = 5,
                      random_state: int = 0, n_jobs: int | None = None) -> float:
    """Probability under which a face is called unknown, from out-of-fold predictions on training data.

    It is the ``quantile`` of the out-of-fold top probability over the *correctly* recognised
    training faces: a new face is unknown when the model is less sure than it was for all but
    ``quantile`` of the faces it got right in cross-validation.
    """
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_predict

    from ..config import n_jobs as _n_jobs

    folds = cv_folds(X, y, cv, random_state) if isinstance(cv, int) else cv  # or the caller's folds
    proba = cross_val_predict(clone(estimator), X, y, cv=folds, method="predict_proba", n_jobs=_n_jobs(n_jobs))
    classes = np.unique(y)
    top = proba.max(axis=1)
    right = classes[proba.argmax(axis=1)] == y
    if not right.any():
        return 0.0
    return float(np.quantile(top[right], quantile))


def train(data: FaceTable | PhotoSet | str | os.PathLike, features: str = "embedding", detector: str | None = None, *,
          descriptor: str | None = None,
          model: str = "auto", clean: str | None = None, choose: str = "confident",
          threshold: float | None = None, unknown_quantile: float | None = 0.01,
          max_distance: float | str | None = None, sure_quantile: float | None = 0.95,
          subject_tie: float | None | str = "auto", min_size: int = 0,
          feature_params: dict | None = None, far: float | None = DEFAULT_FAR,
          strangers: "np.ndarray | PhotoSet | str | os.PathLike | None" = None, openset_score: str = "cohort", population: str = "web",
          retry: bool | None = None, random_state: int = 0, n_jobs: int | None = None, progress: bool = True,
          photos: Sequence[PhotoFeatures] | None = None) -> FaceClassifier:
    """Train a classifier of known people from a folder of sub-folders (one per person), uncurated.

    Args:
        data: a labelled :class:`~vision_lib.io.PhotoSet`, a folder ``<person>/<photos>`` or its
            face table (a descriptor :class:`~vision_lib.tables.FaceTable`, from
            :func:`~vision_lib.tables.face_table` or ``FaceTable.load`` of ``vision-lib features``:
            its detector and descriptor are the model's; ``detector``/``descriptor``, when given,
            must be the same). Descriptors of a folder come from that same builder, so a folder
            and its table train the same model.
        features: ``"embedding"`` (the face descriptor, default) or ``"wavelet"`` (classic recipe).
        detector: a name of :data:`vision_lib.models.DETECTORS` (default: the default detector for
            embeddings, Haar for wavelets).
        descriptor: a name of :data:`vision_lib.models.DESCRIPTORS` (None: the default); its
            ``threshold`` (same-person distance) is the default of every distance rule below.
        model: a name from :data:`MODELS`, or ``"auto"``: 5-fold cross-validation of
            :data:`AUTO_MODELS` on the cleaned training faces (``info_["comparison"]``), then the
            first of them not significantly worse than the most accurate (:func:`choose_model`).
        clean: ``"agreement"`` (default for embeddings), ``"largest"`` (default for the wavelet
            recipe: each photo's largest face, as in the classic recipe) or ``"none"``.
        choose: photo-level subject, ``"confident"`` (most confident known face) or ``"largest"``.
        threshold: same-person distance for cleaning (default: the descriptor's).
        unknown_quantile: see :func:`unknown_threshold` (None: never unknown by probability).
        max_distance: farther than this (descriptor distance) from the centroid of the predicted
            person's training faces is unknown (default: the descriptor's same-person distance for
            embeddings, none for wavelets); ``"adaptive"``: :data:`ADAPTIVE_FACTOR` times the 95%
            quantile of the training faces' distances to their own centroid, at most that distance.
        sure_quantile: with face descriptors, a face closer to its person's centroid than this
            quantile of the training faces' distances to their own centroids is not made unknown by
            a low probability (:attr:`FaceClassifier.sure_distance`; None: never).
        subject_tie: see :attr:`FaceClassifier.subject_tie` (photo subject among near-equal faces);
            ``"auto"``: :data:`SUBJECT_TIE_SHARE` of the descriptor's same-person distance.
        far: false-accept rate of the open-set naming rule (:class:`~vision_lib.openset.OpenSetRule`):
            the share of stranger photos it may name, calibrated on ``population`` (or on the
            other people of the training folders plus ``strangers``, when given); None: no
            open-set rule (the closed-set classifier names every face it is sure of).
        strangers: faces of people *not* in ``data`` for that calibration: a folder of photos (every
            face found counts), a :class:`~vision_lib.io.PhotoSet`, or an ``(n, dim)`` descriptor array.
        openset_score: ``"cohort"`` (cosine to the mean of the person's training faces, normalised
            by the web strangers' statistics: the score of the shipped curves; ``"direction"``, the
            plain cosine distance, for a descriptor without one), ``"direction"``, ``"centroid"``
            (distance to that mean, in the descriptor's metric) or ``"knn"`` (mean distance to the 3
            nearest); docs/openset.md.
        population: the calibration strangers without ``strangers``: ``"web"`` (the descriptor's
            curve measured on public web photos, :mod:`vision_lib.stranger_curves`, where it has
            one; else the training people) or ``"training"`` (the other people of ``data``, leave
            one person out).
        min_size: faces with a shorter side (px) are not used for training.
        retry: with the ``mtcnn`` detector, look again harder where it finds no face (default:
            True; other detectors never retry).
        photos: precomputed :func:`extract` results for ``data.paths`` (saves a pass; not with a table).

    Returns:
        A fitted :class:`FaceClassifier`; ``training_report_`` lists what was left out and why.
    """
    if isinstance(max_distance, str) and max_distance != "adaptive":
        raise ValueError(f"max_distance must be a number, None or 'adaptive', not {max_distance!r}")
    if isinstance(data, FaceTable):
        if features != "embedding" or photos is not None:
            raise ValueError("a face table trains on its face descriptors: features='embedding', no photos=")
        recipe = _table_recipe(data, detector, descriptor, retry)
        photos, labels, left_out = _table_photos(data)
        if len(set(labels)) < 2:
            raise ValueError(f"need at least two people (first sub-folders) in the table, found {sorted(set(labels))}")
        root = data.root if data.root is not None else data.settings.get("root", "")
    else:
        ps = _as_photo_set(data)
        labels, root = ps.labels, ps.root
        left_out = [Rejected(Path(r.source).relative_to(ps.root).as_posix(), r.reason) for r in ps.skipped]
        recipe = Recipe(features, detector or (None if features == "embedding" else "haar"), (),
                        tuple(sorted((feature_params or {}).items())), retry=True if retry is None else retry,
                        descriptor=descriptor)
    clean = clean or ("agreement" if features == "embedding" else "largest")
    same_person = recipe.descriptor_model.threshold
    if subject_tie == "auto":
        subject_tie = SUBJECT_TIE_SHARE * same_person
    start = time.perf_counter()
    if photos is None and features == "embedding":  # the one folder -> faces builder
        table = face_table(ps.paths, root=ps.root, detector=recipe.detector, descriptor=recipe.descriptor,
                           labelled=True, retry=recipe.retry, n_jobs=n_jobs, progress=progress)
        photos, _, _ = _table_photos(table)
    elif photos is None:  # the wavelet recipe: rows of 4096 values, descriptors beside them
        photos = extract(ps.paths, recipe, n_jobs=n_jobs, progress=progress)
    X, y, D, report = training_faces(photos, labels, clean, threshold, min_size, descriptor=recipe.descriptor)
    for r in left_out:  # every file of the folder is accounted for: non-photos, hidden, loose photos
        parts = Path(r.source).parts
        inside = len(parts) > 1 or (len(parts) == 1 and r.reason == EMPTY_FOLDER)  # an empty person folder
        report.excluded.append(Excluded(str(Path(root) / r.source), parts[0] if inside else "", r.reason))
    if len(set(y)) < 2:
        raise ValueError(f"after cleaning, faces of fewer than two people remain: {report.summary()}")
    _, counts = np.unique(y, return_counts=True)
    comparison = None
    if model == "auto":
        # Chosen on the training data only: e.g. calibrated SVMs suit 6 people with ~100 faces each
        # but not 96 people with ~15 each, where logistic regression or kNN do far better.
        comparison = compare_models(X, y, AUTO_MODELS, random_state=random_state, n_jobs=n_jobs) \
            if counts.min() >= 3 else [{"model": "svm_rbf"}]
        model = choose_model(comparison)
    unknown_below = 0.0
    # The out-of-fold threshold needs >= 3 faces per person (2 outer folds x 2 calibration folds).
    if unknown_quantile is not None and counts.min() >= 3:
        folds = cv_folds(X, y, 5, random_state)
        estimator = make_estimator(model, random_state, _inner_folds(y, len(folds)), _fewest_train(len(y), len(folds)))
        unknown_below = unknown_threshold(estimator, X, y, unknown_quantile, cv=folds, n_jobs=n_jobs)
    estimator = make_estimator(model, random_state, int(min(5, counts.min())), len(y))
    estimator.fit(X, y)
    if max_distance is None and features == "embedding":
        max_distance = same_person
    centroids = {str(c): D[y == c].mean(axis=0) for c in np.unique(y)} if D is not None and max_distance else {}
    sure_distance = None
    if centroids:
        own = np.linalg.norm(D - np.asarray([centroids[str(c)] for c in y]), axis=1)
        if sure_quantile is not None:
            sure_distance = float(np.quantile(own, sure_quantile))
        if max_distance == "adaptive":
            max_distance = float(min(same_person, ADAPTIVE_FACTOR * np.quantile(own, 0.95)))
    elif max_distance == "adaptive":
        raise ValueError("max_distance='adaptive' needs face descriptors of the training faces")
    rule = None
    if far is not None and D is not None:
        from ..openset import OpenSetRule

        rule = OpenSetRule(far=far, score=openset_score, metric=recipe.descriptor_model.metric,
                           population=population, descriptor=recipe.descriptor_model.id).fit(
            D, y, strangers=_stranger_descriptors(strangers, recipe, n_jobs, progress))
    info = {"model": model, "clean": clean, "n_photos": len(labels), "n_faces": len(y), "root": str(root),
            "seconds": round(time.perf_counter() - start, 1), "comparison": comparison,
            "openset": rule.summary() if rule is not None else None}
    return FaceClassifier(estimator, recipe, unknown_below, max_distance, choose, centroids, report, info,
                          sure_distance, subject_tie, rule)


def _stranger_descriptors(strangers, recipe: Recipe, n_jobs: int | None, progress: bool) -> np.ndarray | None:
    """Descriptors of every face in the stranger photos (or the array given)."""
    if strangers is None:
        return None
    if isinstance(strangers, np.ndarray):
        return strangers
    ps = strangers if isinstance(strangers, PhotoSet) else photo_set(strangers)
    if not len(ps):
        raise ValueError(f"no photos in {ps.root} for the stranger calibration")
    rows = [ph.descriptors for ph in extract(ps.paths, recipe, n_jobs=n_jobs, progress=progress)
            if ph.descriptors is not None and len(ph.descriptors)]
    if not rows:
        raise ValueError(f"no face found in the stranger photos under {ps.root}")
    return np.concatenate(rows)


#: The public names of this module.
__all__ = ["SUBJECT_TIE_SHARE", "ADAPTIVE_FACTOR", "DEFAULT_FAR", "unknown_threshold", "train"]
