"""The trained classifier of known people (:class:`FaceClassifier`) and its predictions per face
(:class:`FacePrediction`) and per photo."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..extraction import PhotoFeatures, Recipe, extract, recipe_faces, recipe_features
from ..faces import Face
from .cleaning import TrainingReport

#: Photo-level choice of the subject: most confident known face, or simply the largest face.
CHOICES = ("confident", "largest")
#: With face descriptors, known faces at most this much farther from their person's centroid than
#: the closest one count as equally confident, and the largest of them is the photo's subject (the
#: person a photo is *of* is usually its biggest face). 0.05 is on dlib's scale (its same-person
#: distance 0.6), well inside that descriptor's noise; ``train`` scales it to the recipe's descriptor
#: (:data:`~vision_lib.classify.training.SUBJECT_TIE_SHARE` of its ``threshold``).
SUBJECT_TIE = 0.05
UNKNOWN = "unknown"


@dataclass
class FacePrediction:
    """One face of a photo: its box, label (``"unknown"`` when unsure), probability of the best
    class, that class, and the distance to that person's training centroid, in the recipe's descriptor
    space (None without a distance rule or descriptors)."""

    box: tuple[int, int, int, int]
    label: str
    probability: float
    best: str
    distance: float | None = None
    #: Open-set rule (:mod:`vision_lib.openset`): the estimated share of strangers who come at least
    #: this close to ``best``'s training faces, and the verdict (``"named"``, ``"unsure"``, ``"stranger"``).
    stranger_rate: float | None = None
    verdict: str | None = None

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN

    def as_dict(self) -> dict:
        """The face as ``predict --json`` prints it. ``probability`` is the classifier's probability
        among the known people, given only for a named face (an unknown face carries no percentage)."""
        out = {"box": [int(v) for v in self.box], "label": self.label,
               "probability": round(float(self.probability), 4) if self.known else None}
        if self.verdict is not None:
            out.update(verdict=self.verdict, stranger_rate=round(float(self.stranger_rate), 4))
        return out


class FaceClassifier:
    """A trained classifier of known people (see the module docstring for the pipeline).

    Attributes:
        estimator: fitted scikit-learn classifier with ``predict_proba``.
        recipe: how faces and features are computed (:class:`Recipe`).
        classes_: the known people (the estimator's classes).
        unknown_below: probability under which a face is ``"unknown"``.
        max_distance: with face descriptors, a face farther than this (in the recipe descriptor's
            metric) from the centroid of its predicted person's training faces is ``"unknown"``
            (None: no distance check; ``train`` defaults it to the descriptor's ``threshold``).
        sure_distance: with face descriptors, a face at most this far from its person's centroid
            is not made unknown by a low probability (None: the probability rule always applies).
        subject_tie: with face descriptors, the largest known face within this distance of the
            closest one comes first and is the photo's subject (None: the closest always; the
            default :data:`SUBJECT_TIE` is on dlib's scale, ``train`` scales it to the descriptor).
        choose: how the photo's subject is chosen (``"confident"`` or ``"largest"``).
        openset_: the naming rule calibrated on strangers (:class:`~vision_lib.openset.OpenSetRule`,
            fitted on the training descriptors): a face is named only when it passes it too.
        training_report_: what training kept and left out (:class:`TrainingReport`).
    """

    def __init__(self, estimator, recipe: Recipe, unknown_below: float = 0.0, max_distance: float | None = None,
                 choose: str = "confident", centroids: dict[str, np.ndarray] | None = None,
                 training_report: TrainingReport | None = None, info: dict | None = None,
                 sure_distance: float | None = None, subject_tie: float | None = SUBJECT_TIE,
                 openset=None):
        if choose not in CHOICES:
            raise ValueError(f"unknown choice {choose!r}; choose from {CHOICES}")
        self.estimator = estimator
        self.recipe = recipe
        self.unknown_below = float(unknown_below)
        self.max_distance = max_distance
        self.sure_distance = sure_distance
        self.subject_tie = subject_tie
        self.choose = choose
        self.centroids_ = centroids or {}
        self.openset_ = openset
        self.training_report_ = training_report or TrainingReport()
        self.info_ = info or {}

    @property
    def classes_(self) -> list[str]:
        return [str(c) for c in self.estimator.classes_]

    def __repr__(self) -> str:
        model = self.info_.get("model")
        return (f"FaceClassifier({len(self.classes_)} people, {self.recipe.describe()}, "
                + (f"{model}, " if model else "") + f"unknown below p={self.unknown_below:.2f}"
                + (f" unless distance <= {self.sure_distance:.2f}" if self.sure_distance is not None else "")
                + (f", or distance > {self.max_distance:.2f}" if self.max_distance else "")
                + (f", named only under {self.openset_.score} distance {self.openset_.threshold_:.3f} "
                   f"(FAR {self.openset_.far_:.3g})" if self.openset_ is not None else "") + ")")

    # -- faces -> predictions
    def predict_features(self, faces: Sequence[Face], X: np.ndarray, descriptors: np.ndarray | None = None
                         ) -> list[FacePrediction]:
        """Predictions for faces whose feature rows are ``X``: known faces first, most confident first
        (closest to their person's centroid when descriptors are given, else most probable; a
        larger known face nearly as close, within :attr:`subject_tie`, goes first)."""
        if not len(faces):
            return []
        proba = self.estimator.predict_proba(np.asarray(X))
        classes = self.classes_
        preds = []
        for k, f in enumerate(faces):
            c = int(np.argmax(proba[k]))
            p = float(proba[k, c])
            best = classes[c]
            dist = None
            if self.max_distance is not None and descriptors is not None and best in self.centroids_:
                dist = float(np.linalg.norm(self.centroids_[best] - descriptors[k]))
            # A low probability often means two known people look alike *to the classifier*; a face
            # as close to its person as most of their own training faces is still that person.
            sure = dist is not None and self.sure_distance is not None and dist <= self.sure_distance
            unknown = (p < self.unknown_below and not sure) or (dist is not None and dist > self.max_distance)
            rate = verdict = None
            if self.openset_ is not None and descriptors is not None:
                # The closed-set answer is given only where strangers rarely come this close.
                score = float(self.openset_.score_for(descriptors[k:k + 1], [best])[0])
                rate, verdict = self.openset_.far_at(score), self.openset_.verdict(score, not unknown)
                unknown = verdict != "named"
            preds.append(FacePrediction(tuple(int(v) for v in f.box), UNKNOWN if unknown else best, p, best, dist,
                                        rate, verdict))
        # Most confident first: closest to its person's centroid (descriptor space) when distances are
        # known, which separates the subject from look-alike strangers far better than the SVM's
        # probability does; otherwise the probability. Unknown faces come last.
        preds = sorted(preds, key=lambda q: (not q.known, q.distance if q.distance is not None else 0.0,
                                             -q.probability))
        known = [q for q in preds if q.known and q.distance is not None]
        if self.subject_tie is not None and len(known) > 1:
            # A near-tie in distance says nothing about who the photo is of; its size does.
            big = max(known, key=lambda q: q.box[2] * q.box[3])
            if big.distance - known[0].distance <= self.subject_tie:
                preds.remove(big)
                preds.insert(0, big)
        return preds

    def subject(self, preds: Sequence[FacePrediction]) -> str | None:
        """The photo's label from :meth:`predict_features`' order: its first known face (closest to
        its person's centroid, or a larger face within :attr:`subject_tie`), or with
        ``choose="largest"`` the largest face's label."""
        if not preds:
            return None
        if self.choose == "largest":
            big = max(preds, key=lambda q: q.box[2] * q.box[3])
            return big.label if big.known else None
        return preds[0].label if preds[0].known else None

    def _result(self, preds: list[FacePrediction]) -> dict:
        # The list reads most probable first, as the probabilities it shows say. The photo's label
        # comes from the subject rule instead (closest to a centroid, larger face on a near-tie):
        # taking the most probable known face named 2-11 fewer footballer photos right per split.
        # Unknown faces (no probability shown) come last; stable: ties keep the subject order.
        listed = sorted(preds, key=lambda q: (not q.known, -round(float(q.probability), 4) if q.known else 0.0))
        return {"label": self.subject(preds), "faces": [q.as_dict() for q in listed]}

    # -- public prediction API
    def predict_image(self, image: np.ndarray) -> dict:
        """``{"label": <the photo's subject or None>, "faces": [{"box", "label", "probability"}, ...]}``,
        faces most probable first (the subject is not always the first: see :meth:`subject`)."""
        faces = recipe_faces(image, self.recipe)
        X, desc = recipe_features(image, faces, self.recipe)
        return self._result(self.predict_features(faces, X, desc))

    def predict_path(self, path: str | os.PathLike) -> dict:
        """Like :meth:`predict_image` plus ``"path"``; an unusable file gives ``{"path", "error"}``."""
        return self.predict_paths([path], progress=False)[0]

    def predict_paths(self, paths: Iterable[str | os.PathLike], *, n_jobs: int | None = None,
                      progress: bool = True) -> list[dict]:
        """:meth:`predict_path` for many files (parallel detection, disk-cached)."""
        return [self._photo_result(ph) for ph in extract(paths, self.recipe, n_jobs=n_jobs, progress=progress)]

    def predict_photos(self, photos: Sequence[PhotoFeatures]) -> list[dict]:
        """Predictions for photos already run through :func:`extract` with this model's recipe."""
        return [self._photo_result(ph) for ph in photos]

    def _photo_result(self, ph: PhotoFeatures) -> dict:
        if ph.error:
            return {"path": str(ph.path), "error": ph.error}
        return {"path": str(ph.path), **self._result(self.predict_features(ph.faces, ph.features, ph.descriptors))}


#: The public names of this module.
__all__ = ["CHOICES", "SUBJECT_TIE", "UNKNOWN", "FacePrediction", "FaceClassifier"]
