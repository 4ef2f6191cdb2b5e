"""Who is in a photo: train from raw folders (one per person), compare models, predict, save bundles.

The pipeline, as :func:`train` runs it:

1. **Features per face** (:class:`Recipe`): the default is faces of the default detector
   (:data:`~vision_lib.models.DEFAULT_DETECTOR`) described by the default descriptor
   (:data:`~vision_lib.models.DEFAULT_DESCRIPTOR`; any of :data:`~vision_lib.models.DESCRIPTORS`
   by ``descriptor=``) (``features="embedding"``); the classic recipe is Haar faces described by the
   4096-value wavelet recipe of :mod:`vision_lib.features` (``features="wavelet"``). The recipe's
   descriptors are computed for every face in both recipes, because they drive the cleaning.
2. **Cleaning uncurated folders** (:func:`select_faces`, ``clean="agreement"``): web photos filed
   under a person also show team-mates, crowds, other people alone, or no face. For each folder we
   find the identity most photos agree on (the face with the most photos holding a face within
   the descriptor's same-person distance, its ``threshold``), then repeat: centroid of the chosen
   faces, each photo's face closest to it if within that distance, re-estimate, until nothing
   changes. Faces closer to another
   folder's centroid than to their own are left out as well (a photo filed in the wrong folder).
   Everything left out is recorded with its reason in :class:`TrainingReport`.
3. **Classifier**: a scikit-learn pipeline with probability output, by default chosen among SVMs,
   logistic regression and kNN by cross-validation on the cleaned faces (:func:`compare_models`):
   an RBF SVM unless another is significantly more accurate (:func:`choose_model`).
4. **Prediction** (:meth:`FaceClassifier.predict_image`): every face gets a label and a probability;
   it is named only when it passes the open-set rule calibrated on strangers
   (:mod:`vision_lib.openset`, docs/openset.md: the face's ``verdict`` and ``stranger_rate``);
   a face is ``"unknown"`` when the classifier is less sure than :attr:`FaceClassifier.unknown_below`
   (chosen by cross-validation on the training faces) or (by default in the embedding
   recipe) when it lies farther than the descriptor's same-person distance (its ``threshold``)
   from the centroid of the predicted person's training faces. A hesitant
   probability alone does not make a face unknown when it lies as close to that centroid as most
   of the person's own training faces (:attr:`FaceClassifier.sure_distance`). The photo's label
   (its subject) is the known face closest to its person's centroid, except that the largest known
   face within :data:`SUBJECT_TIE` of the closest wins; None when there is no face or only unknown
   ones. The result lists faces most probable first. With the ``mtcnn`` detector, where it finds
   no face at all, it looks once more, harder (:func:`detect_harder`).

Model bundles (:func:`save_model` / :func:`load_model`) are **pickles**: loading one can run
arbitrary code, so load only files you trust. Loading checks the bundle's format, recipe and the
versions of numpy, scikit-learn, dlib and vision_lib, and refuses a mismatch with a clear message.

One module per job, every public name re-exported here (``from vision_lib import classify; classify.X``):

==============  ==========================================================================
``cleaning``    :func:`select_faces`, :func:`clean_training_set`, :class:`TrainingReport`,
                :func:`training_faces` (step 2)
``selection``   :func:`make_estimator`, :func:`compare_models`, :func:`choose_model` (step 3)
``classifier``  :class:`FaceClassifier` and its predictions, :class:`FacePrediction` (step 4)
``training``    :func:`train` (steps 1-3 and the unknown and open-set rules)
``evaluation``  :class:`Evaluation`, :func:`evaluate`, :func:`split` (copies kept on one side),
                :func:`split_per_person` (N training photos per person), :func:`photo_curve`
``bundles``     :func:`save_model`, :func:`load_model`, :class:`ModelBundleError`
==============  ==========================================================================

Features per face (step 1) come from :mod:`vision_lib.extraction` (re-exported here: :class:`Recipe`,
:class:`PhotoFeatures`, :func:`extract`).
"""
from __future__ import annotations

# Documented as classify.copy_groups / copied_files (docs/faces.md, notebook 01) until they moved beside
# file_digest: kept working here.
from ..cache import copied_files, copy_groups  # noqa: F401 (re-exported)
from ..extraction import (FEATURES, RETRY_BORDER, RETRY_PARAMS, PhotoFeatures, Recipe,  # noqa: F401 (re-exported)
                          detect_harder, extract, recipe_faces, recipe_features)
# Names the single-module classify.py imported, kept importable from here.
from ..faces import Face  # noqa: F401
from ..io import PhotoSet, check_output_folder, make_writable_folder, photo_set, write_atomic  # noqa: F401
from ..models import same_person_distance  # noqa: F401
from ..names import AUTO_CLASSIFIERS, CLASSIFIERS  # noqa: F401
from .bundles import BUNDLE_FORMAT, VERSIONED, ModelBundleError, check_model_path, load_model, read_header, save_model
from .classifier import CHOICES, SUBJECT_TIE, UNKNOWN, FaceClassifier, FacePrediction
from .cleaning import (CLEANING, MIN_FACES_PER_PERSON, Excluded, TrainingReport, clean_training_set, select_faces,
                       training_faces, training_matrix)
from .evaluation import CURVE_FARS, Evaluation, evaluate, photo_curve, split, split_per_person
from .selection import AUTO_MODELS, MODELS, choose_model, compare_models, make_estimator, mcnemar_p
from .training import ADAPTIVE_FACTOR, DEFAULT_FAR, SUBJECT_TIE_SHARE, train, unknown_threshold  # noqa: F401

# A model bundle pickles its training report by class path: keep the path of the single-module
# classify.py, so that bundles written before and after the split load with either code.
Excluded.__module__ = TrainingReport.__module__ = __name__

#: The public names of this module.
__all__ = ["CURVE_FARS", "photo_curve", "CLEANING", "CHOICES", "SUBJECT_TIE", "SUBJECT_TIE_SHARE", "ADAPTIVE_FACTOR", "UNKNOWN",
           "BUNDLE_FORMAT", "VERSIONED", "Excluded", "TrainingReport", "select_faces", "clean_training_set",
           "make_estimator", "MODELS", "AUTO_MODELS", "compare_models", "mcnemar_p", "choose_model",
           "FacePrediction", "FaceClassifier", "MIN_FACES_PER_PERSON", "training_matrix", "training_faces",
           "unknown_threshold", "train", "Evaluation", "evaluate", "split", "split_per_person", "ModelBundleError",
           "check_model_path", "save_model", "read_header", "load_model"]
