"""vision_lib: analyse photos of people, from raw folders to models, clusters and averages.

The common path is a handful of verbs (:mod:`vision_lib.api`, re-exported here): ``load_image``,
``detect_faces``, ``describe_faces``, ``faces_of_folder``, ``train``, ``predict``, ``cluster_identities``,
``average_faces``, ``quantize``.

Where everything lives, in layers that import only downwards (checked by import-linter in the tests):
app (``cli``; ``serve``, ``notebooks``, ``present``, ``widgets``, ``api``) -> stages (``classify``,
``cluster``, ``teams``, ``average``, ``compress``) -> pipeline (``tables``, ``extraction``,
``features``) -> ``faces`` / ``embeddings`` -> ``models`` -> ``geometry`` -> ``io``, ``config``,
``names``, ``native``, ``progress``:

==================  ===========================================================================
``io``              load any photo as RGB uint8 (EXIF, alpha, CMYK, 16-bit...), check arrays
                    (``check_rgb``), list folders, :class:`~vision_lib.io.PhotoSet`, rejection
                    records, output names and CSV text settings shared by every stage, and the
                    safe-output helpers (``folder_lock``, ``staged_folder``, ``write_atomic``)
``geometry``        the :class:`~vision_lib.geometry.Face` record (box, score, five keypoints), crop,
                    similarity transforms (numpy only; below the models)
``models``          face detectors (``yunet`` default, ``yunet_checked``, ``mtcnn``, ``haar``: ``DETECTORS``) and
                    descriptors (``facenet`` default, ``facenet_flip``, ``dlib``, ``faceres``,
                    ``facenet+faceres``, opt-in ``arcface``: ``DESCRIPTORS``), each with its own
                    same-person distance (``threshold``), as plug-ins by name (``get_detector``,
                    ``get_descriptor``); model files found and checked by SHA-256
``faces``           detect (by name, from ``models``), crop, align, quality, best-N, batch export
``features``        wavelet recipe, colour histograms of body regions (functions + transformers)
``extraction``      photos to a feature row per face, the way a saved model redoes it
``tables``          the face table: every face of a folder (source, box, keypoints, quality,
                    descriptor, label, subject) built by ``face_table``, saved as ``.npz``
                    (``vision-lib features``); every stage consumes it
``embeddings``      MobileNetV2 ImageNet features (lazy TensorFlow); the ``dlib`` descriptor's
                    functions re-exported from ``models.dlib``
``classify``        model comparison, cleaning of uncurated folders, predict, model bundles
``cluster``         identity clustering (number of people unknown) and its metrics
``store``           the SQLite file of a face collection: schema, checks, transactions
``collection``      :class:`~vision_lib.collection.Collection`: a face collection that grows
                    (add photos, people that keep their names, search by face)
``teams``           clothing clustering of player crops
``average``         aligned average faces per person or cluster
``compress``        K-Means colour quantization, palette PNGs, fidelity figures (a sub-package:
                    ``bins``, ``quantizer``, ``png``, ``metrics``, ``files``, ``baselines``...)
``widgets``         ipywidgets controls for the notebooks
``plotting``        galleries, boxes, projections (take an ``ax``; never reseed global RNGs)
``serve``           Flask web app: drop a photo, see who it is
``cli``             ``vision-lib`` command line (thin layer over the above)
``notebooks``       execute the numbered notebooks into ``reports/``
``present``         offline slide decks and a summary page from the executed notebooks
``api``             the facade: the verbs above
``names``           the library's vocabulary of choices (methods, kinds), shared with the CLI
``native``          TensorFlow imported without its C++ start-up notices
``progress``        progress bars: a widget in a Jupyter kernel, text on stderr elsewhere
``config``          ``VISION_LIB_DATA``, ``KERAS_HOME``, cache folder, worker count
``cache``           disk cache keyed by file content (joblib.Memory); files saved twice (same bytes)
``datasets``        fetch a public face set (LFW through scikit-learn) on a machine with internet
==================  ===========================================================================

Conventions: boxes are ``(x, y, w, h)`` in pixels of the original photo; images are RGB uint8
arrays (float in 0..1 accepted, as scikit-image does); importing ``vision_lib`` never imports TensorFlow (deep models load lazily on first use).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "io", "native", "names", "config", "cache", "geometry", "models", "faces", "embeddings", "features",
    "extraction", "tables",
    "classify", "cluster", "teams", "average", "compress", "widgets", "plotting", "serve", "cli", "notebooks",
    "present", "datasets", "api", "store", "collection",
}
#: Classes re-exported here (their module loads on first use).
_CLASSES = {"Collection": "collection"}
#: The facade (:mod:`vision_lib.api`): the common path in a handful of verbs.
_VERBS = {"load_image", "detect_faces", "describe_faces", "faces_of_folder", "train", "predict",
          "cluster_identities", "average_faces", "quantize"}


def __getattr__(name: str):
    # Lazy: `import vision_lib` loads nothing heavy; `vision_lib.faces` or `vision_lib.train` load on use.
    if name in _VERBS:
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    if name in _CLASSES:
        return getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'vision_lib' has no attribute {name!r}")


__all__ = sorted(_VERBS | _SUBMODULES | set(_CLASSES))
