"""The common path in a handful of verbs, re-exported from ``vision_lib`` (the facade).

In the spirit of face_recognition's verbs and insightface's ``FaceAnalysis``: plain arrays and paths
in, plain results out, models chosen by name (``detector=``, ``descriptor=``; ``None`` = the
measured defaults of :mod:`vision_lib.models`). Each verb is a few lines handing off to its stage,
whose module has the full set of options::

    import vision_lib as vl

    image = vl.load_image("photo.jpg")
    faces = vl.detect_faces(image)                      # [Face(box, score, keypoints)], largest first
    vectors = vl.describe_faces(image, faces)           # (n, d) float32
    model = vl.train("data/footballers")                # one sub-folder per person
    model = vl.train("photos", names="names.csv")       # or named clusters (docs/presentation.md)
    vl.predict(model, "new.jpg")                        # {"label", "faces": [...]}
    people = vl.faces_of_folder("data/lfw")             # every face of a folder, described
    labels = vl.cluster_identities(people)              # identities, number unknown
    averages = vl.average_faces("data/footballers")     # one aligned average per person
    small = vl.quantize(image, k=16)                    # K-Means colour quantization
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .io import load_image

if TYPE_CHECKING:  # the stages load scikit-learn / TensorFlow: only when a verb is called
    from .average import AverageFace
    from .classify import FaceClassifier
    from .tables import FaceTable
    from .compress import Quantized
    from .geometry import Face

__all__ = ["load_image", "detect_faces", "describe_faces", "faces_of_folder", "train", "predict",
           "cluster_identities", "average_faces", "quantize"]


def detect_faces(image: np.ndarray, detector: str | None = None, *, min_size: int = 0) -> list["Face"]:
    """Faces of an RGB image, largest first: box ``(x, y, w, h)``, score and five keypoints."""
    from .faces import detect

    return detect(image, detector, min_size=min_size)


def describe_faces(image: np.ndarray, faces: Sequence["Face"] | None = None, descriptor: str | None = None,
                   *, detector: str | None = None) -> np.ndarray:
    """One descriptor row per face (``faces`` detected first when not given); compare rows with the
    descriptor's metric and its ``threshold`` (``vision_lib.models.get_descriptor(name)``)."""
    from .models import get_descriptor

    faces = detect_faces(image, detector) if faces is None else faces
    return get_descriptor(descriptor).describe(image, faces)


def faces_of_folder(folder: str | os.PathLike, *, detector: str | None = None, descriptor: str | None = None,
                    n_jobs: int | None = None, progress: bool = True) -> "FaceTable":
    """Every face of every photo under ``folder`` as a :class:`~vision_lib.tables.FaceTable`: descriptor,
    box, keypoints, quality, source and label of each (disk-cached); photos that could not be read or
    show no face are in ``.rejected``. ``.save(path)`` writes the ``.npz`` of ``vision-lib features``."""
    from .tables import face_table

    return face_table(folder, detector=detector, descriptor=descriptor, n_jobs=n_jobs, progress=progress)


def train(folder: "str | os.PathLike | FaceTable", *, names=None, detector: str | None = None,
          descriptor: str | None = None, **options) -> "FaceClassifier":
    """A classifier of the people in ``folder`` (one sub-folder of raw photos per person, or its
    descriptor :class:`~vision_lib.tables.FaceTable`, e.g. ``tables.face_table(folder, retry=True)``);
    ``options`` go to :func:`vision_lib.classify.train`. With ``names`` (a names table: path or rows of
    :func:`vision_lib.naming.load_names`), ``folder`` is the unlabelled folder ``vision-lib cluster``
    ran on and the named faces train it (:func:`vision_lib.naming.train_from_names`)."""
    if names is not None:
        from .naming import train_from_names

        return train_from_names(names, folder, detector=detector, descriptor=descriptor, **options)
    from .classify import train as train_classifier

    return train_classifier(folder, detector=detector, descriptor=descriptor, **options)


def predict(model: "FaceClassifier | str | os.PathLike", photo: "np.ndarray | str | os.PathLike") -> dict:
    """Who is in ``photo`` (an RGB array or a path), by ``model`` (a classifier or a saved bundle):
    ``{"label": ..., "faces": [{"box", "label", ...}]}`` as ``vision-lib predict --json`` prints it."""
    from .classify import load_model

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if isinstance(photo, np.ndarray):
        return model.predict_image(photo)
    return model.predict_path(photo)


def cluster_identities(faces: "FaceTable | np.ndarray", method: str = "hybrid", **params) -> np.ndarray:
    """Identity labels (``-1`` = unassigned) of a :func:`faces_of_folder` result or of descriptor rows;
    the same-person distance follows the descriptor unless ``threshold=`` is given."""
    from .cluster import cluster_faces

    X = faces.descriptors if hasattr(faces, "descriptors") else np.asarray(faces)
    return cluster_faces(X, method=method, **params)


def average_faces(folder: str | os.PathLike, *, method: str = "landmarks", size: int = 160,
                  detector: str | None = None, descriptor: str | None = None,
                  progress: bool = True) -> list["AverageFace"]:
    """One aligned average face per sub-folder (person) of ``folder``; ``.image`` is the RGB average."""
    from .average import average_groups, groups_from_folder

    return average_groups(groups_from_folder(folder), method=method, size=size, detector=detector,
                          descriptor=descriptor, progress=progress)


def quantize(image: np.ndarray, k: int = 16, *, dither: bool = False) -> "Quantized":
    """``image`` reduced to ``k`` colours by K-Means (``.image``, ``.palette``, ``.png_bytes()``...)."""
    from .compress import quantize as kmeans_quantize

    return kmeans_quantize(image, k, dither=dither)
