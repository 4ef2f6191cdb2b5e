"""The library's vocabulary of choices, in one light module (no scikit-learn, no TensorFlow).

Each stage defines what a choice does; this module defines which choices exist, once, so that the
stages, the notebooks and the ``vision-lib`` command line offer the same names (the CLI can build its
``--help`` without importing the stages). Detector and descriptor names live with the models, in
:mod:`vision_lib.models`.
"""
from __future__ import annotations

__all__ = ["FEATURE_KINDS", "HISTOGRAM_SPACES", "CLASSIFIERS", "AUTO_CLASSIFIERS", "CLUSTER_METHODS",
           "TEAM_METHODS", "AVERAGE_METHODS", "TRAINING_FEATURES", "DEFAULT_FAR"]

#: Feature tables: one row per face (``descriptor``, ``wavelet``) or per photo (``mobilenet``, ``histogram``).
FEATURE_KINDS = ("descriptor", "wavelet", "mobilenet", "histogram")
#: Colour spaces of the region histograms.
HISTOGRAM_SPACES = ("hsv", "rgb", "lab")
#: What a classifier of known people is trained on: the face descriptor, or the classic wavelet recipe.
TRAINING_FEATURES = ("embedding", "wavelet")
#: Classifiers of known people.
CLASSIFIERS = ("svm_rbf", "svm_linear", "logistic_regression", "random_forest", "knn")
#: Candidates of ``model="auto"``, in order of preference (random forests are left out: slow, and
#: never better on descriptors). The RBF SVM comes first: on the footballers' splits it answered
#: "unknown" less often than logistic regression at the same cross-validated accuracy.
AUTO_CLASSIFIERS = ("svm_rbf", "svm_linear", "logistic_regression", "knn")
#: Default false-accept rate of the open-set naming rule (``train(far=...)``, ``vision-lib train
#: --far``): the share of photos of strangers that may get a name, calibrated on the descriptor's
#: web-stranger curve (LFW, calibration half; docs/openset.md) where it has one, else on the other
#: people of the training folders. Half of the 2 % a web app may name (issue 19), a margin for
#: people and photos unlike LFW's; first chosen on AT&T (docs/decisions/default-far.md).
DEFAULT_FAR = 0.01
#: Identity clustering methods (number of people unknown); ``hybrid`` is the default.
CLUSTER_METHODS = ("hybrid", "agglomerative", "chinese_whispers", "hdbscan", "dbscan", "kmeans")
#: Clothing clustering of player crops.
TEAM_METHODS = ("colours", "recipe")
#: Average-face alignments: 68-landmark warp, five-point similarity, and two baselines.
AVERAGE_METHODS = ("landmarks", "similarity", "eyes", "naive")
