"""Scores of a trained classifier on labelled photos (:class:`Evaluation`), the train / test splits
(:func:`split`, :func:`split_per_person`), and the open-set curve (:func:`photo_curve`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..cache import copy_groups
from ..extraction import PhotoFeatures, extract
from ..io import PhotoSet
from .classifier import FaceClassifier
from .training import _as_photo_set


@dataclass
class Evaluation:
    """Photo-level scores against folder names (the truth is the folder, even when it is wrong)."""

    paths: list[str]
    truth: list[str]
    predicted: list[str | None]
    results: list[dict]

    @property
    def with_face(self) -> np.ndarray:
        return np.array([bool(r.get("faces")) for r in self.results])

    @property
    def covered(self) -> np.ndarray:
        return np.array([p is not None for p in self.predicted])

    def scores(self) -> dict:
        """Photo-level scores (truth = folder name):

        ``accuracy_with_face``: right answers / photos where a face was found ("unknown" counts as
        wrong); ``accuracy_named``: right answers / photos where the model names someone;
        ``accuracy_all``: right answers / all photos; ``coverage``: share of photos where it names
        someone; ``face_coverage``: share of photos where a face was found."""
        right = np.array([p == t for p, t in zip(self.predicted, self.truth)])
        cov, face = self.covered, self.with_face
        n = len(self.truth)
        return {
            "photos": n,
            "accuracy_with_face": float(right[face].mean()) if face.any() else 0.0,
            "accuracy_named": float(right[cov].mean()) if cov.any() else 0.0,
            "accuracy_all": float(right.mean()) if n else 0.0,
            "coverage": float(cov.mean()) if n else 0.0,
            "face_coverage": float(face.mean()) if n else 0.0,
            "photos_with_face": int(face.sum()),
            "errors": int(sum(1 for r in self.results if "error" in r)),
        }

    def labels(self) -> list[str]:
        return sorted(set(self.truth))

    def confusion(self) -> tuple[np.ndarray, list[str]]:
        """Confusion matrix (rows truth, columns prediction) with a last column for "no answer"."""
        from sklearn.metrics import confusion_matrix

        labs = self.labels()
        pred = [p if p is not None else "(none)" for p in self.predicted]
        cols = labs + ["(none)"]
        return confusion_matrix(self.truth, pred, labels=cols)[: len(labs)], cols

    def report(self) -> str:
        """scikit-learn classification report over the photos where a face was found, a photo with
        no answer counting as a miss: per person, precision is over the photos named as them and
        recall over their photos; the micro average row gives ``accuracy_named`` (precision) and
        ``accuracy_with_face`` (recall) of :meth:`scores`."""
        from sklearn.metrics import classification_report

        face = self.with_face
        pred = np.array([p if p is not None else "(no answer)" for p in self.predicted], dtype=object)[face]
        return classification_report(np.asarray(self.truth)[face], pred.astype(str), labels=self.labels(),
                                     zero_division=0, digits=3)

    def mistakes(self) -> list[dict]:
        return [{**r, "truth": t} for r, t, p in zip(self.results, self.truth, self.predicted) if p != t]


def evaluate(model: FaceClassifier, data: PhotoSet, *, photos: Sequence[PhotoFeatures] | None = None,
             progress: bool = True, n_jobs: int | None = None) -> Evaluation:
    """Predict every photo of a labelled set and compare with its folder name."""
    if photos is None:
        photos = extract(data.paths, model.recipe, n_jobs=n_jobs, progress=progress)
    results = model.predict_photos(photos)
    return Evaluation([str(p) for p in data.paths], list(data.labels), [r.get("label") for r in results], results)


def split(data: PhotoSet | str | os.PathLike, test_size: float = 0.3, seed: int = 0) -> tuple[PhotoSet, PhotoSet]:
    """A stratified, reproducible train / test split of a labelled photo set.

    Copies stay together: files with the same bytes (a photo saved twice in a scraped folder) go to
    the same side, so no held-out photo is one the model was trained on. Copies that were re-encoded
    or resized are not detected. A person with a single photo (or a single photo and its copies)
    cannot be in both parts: it goes to training, with a warning naming the person. For a set
    without copies the split is what a plain stratified split of the photos gives.
    """
    import warnings

    from sklearn.model_selection import train_test_split

    ps = _as_photo_set(data)
    labels = np.asarray(ps.labels)
    group_of = copy_groups(ps.paths)
    first = np.unique(group_of, return_index=True)[1]  # one photo per group stands for its copies
    names, counts = np.unique(labels[first], return_counts=True)
    single = set(names[counts < 2].tolist())
    firsts = np.sort(first[~np.isin(labels[first], list(single))])
    if single:
        warnings.warn(f"{len(single)} people have a single photo, kept for training only: "
                      f"{', '.join(sorted(single))}", UserWarning, stacklevel=2)
    tr_first, _ = train_test_split(firsts, test_size=test_size, random_state=seed, stratify=labels[firsts])
    train_groups = set(group_of[tr_first].tolist()) | set(group_of[np.isin(labels, list(single))].tolist())
    in_train = np.isin(group_of, list(train_groups))
    return ps.subset(np.flatnonzero(in_train).tolist()), ps.subset(np.flatnonzero(~in_train).tolist())


def split_per_person(data: PhotoSet | str | os.PathLike, per_person: int, seed: int = 0,
                     people: Iterable[str] | None = None) -> tuple[PhotoSet, PhotoSet]:
    """``per_person`` photos of each person for training (:meth:`~vision_lib.io.PhotoSet.limit`'s
    reproducible pick), and the other photos held out, in folder order.

    A file with the same bytes as a training photo that was not picked (a photo saved twice) is in
    neither part: holding it out would test the model on a photo it was trained on. ``people``: only
    these sub-folders (default: all); the pick is made among their photos.
    """
    ps = _as_photo_set(data)
    if people is not None:
        people = set(people)
        ps = ps.subset(i for i, lab in enumerate(ps.labels) if lab in people)
    training = ps.limit(per_label=per_person, seed=seed)
    copies = copy_groups(ps.paths)
    picked = set(training.paths)
    used = {g for p, g in zip(ps.paths, copies) if p in picked}
    return training, ps.subset(i for i, g in enumerate(copies) if g not in used)


#: False-accept rates at which :func:`photo_curve` evaluates a model (its own ``far`` is added).
CURVE_FARS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def photo_curve(model, known_set, known_photos, strangers, fars: Sequence[float] = CURVE_FARS) -> list[dict]:
    """A trained :class:`~vision_lib.classify.FaceClassifier` at the thresholds its rule gives for
    ``fars`` (and at its own, marked ``default``): per point, the share of stranger photos (with a
    face) it names, the number of stranger faces shown with a probability (named), and on the
    labelled ``known_set`` (its :func:`~vision_lib.classify.extract` results ``known_photos``)
    accuracy over the photos it names, coverage and accuracy over photos with a face."""
    rule = model.openset_
    kept = rule.threshold_, rule.far_
    points = sorted({*fars, rule.far})
    out = []
    try:
        for far in points:
            rule.threshold_, rule.far_ = rule.threshold_for(far)
            res = model.predict_photos(strangers)
            with_face = [r for r in res if r.get("faces")]
            named = sum(r.get("label") is not None for r in with_face)
            known = evaluate(model, known_set, photos=known_photos, progress=False).scores()
            out.append({"far": far, "threshold": round(rule.threshold_, 4), "promised_far": round(rule.far_, 5),
                        "strangers_named_share": round(named / max(1, len(with_face)), 4),
                        "stranger_faces_with_probability": sum(f.get("probability") is not None
                                                               for r in with_face for f in r["faces"]),
                        "known_accuracy_named": round(known["accuracy_named"], 4),
                        "known_coverage": round(known["coverage"], 4),
                        "known_accuracy_with_face": round(known["accuracy_with_face"], 4),
                        "known_accuracy_all": round(known["accuracy_all"], 4),
                        **({"default": True} if far == rule.far else {})})
    finally:
        rule.threshold_, rule.far_ = kept
    return out


#: The public names of this module.
__all__ = ["Evaluation", "evaluate", "split", "split_per_person", "CURVE_FARS", "photo_curve"]
