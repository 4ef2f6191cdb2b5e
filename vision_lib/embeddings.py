"""Deep features: MobileNetV2 ImageNet features, and dlib's ResNet face descriptor (128-d) functions.

The face descriptors of every stage come from the registry of :mod:`vision_lib.models`
(:data:`~vision_lib.models.DESCRIPTORS`, default :data:`~vision_lib.models.DEFAULT_DESCRIPTOR`),
each with its own same-person distance (``threshold``). This module re-exports the functions of
one of them, ``dlib`` (:mod:`vision_lib.models.dlib`), for existing callers, and keeps
:class:`FaceDescriptors`, a scikit-learn transformer of dlib descriptors. dlib's models ship inside
the ``face-recognition-models`` package; they load lazily, once per process. Same-person dlib
descriptors are typically closer than 0.6 (Euclidean), as dlib documents. By default
:func:`face_descriptors` describes each face twice, aligned by the detector's five keypoints and
by dlib's 5-point shape predictor, and averages the two descriptors
(``benchmarks/bench_classify.py`` and ``bench_cluster.py`` measure why).

MobileNetV2 (Keras, ImageNet weights, no top, global average pool: 1280-d) loads lazily too;
TensorFlow is imported only when features are first computed. Weights come from the normal Keras
cache (``$KERAS_HOME/models/``); when missing and not downloadable, :class:`WeightsNotFoundError`
says how to provide them. :func:`image_features_paths` caches features on disk by file content and
model, so a second run over the same photos is near-instant.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .geometry import Face
from .io import cannot_read, check_rgb
from .models.transform import ImageTransformer

# dlib's descriptor lives in the models layer; re-exported here for existing callers.
from .models.dlib import (  # noqa: E402,F401
    ALIGNMENTS, CHIP_KEYPOINTS, CHIP_SIZE, DEFAULT_ALIGN, DEFAULT_FLIP, DLIB_SAME_PERSON_DISTANCE, _dlib_models,
    descriptor_id, dlib_shape, face_chips, face_descriptors,
)


# --------------------------------------------------------------------------- MobileNetV2 ImageNet
#: Keras's file name for MobileNetV2 (alpha 1.0, 224x224, no top) ImageNet weights, looked up in
#: ``$KERAS_HOME/models/`` (the normal Keras weights cache).
MOBILENET_WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
#: Where Keras downloads that file from (users with internet get it on first use).
MOBILENET_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + MOBILENET_WEIGHTS_FILE
MOBILENET_SIZE = 224
MOBILENET_DIM = 1280


class WeightsNotFoundError(FileNotFoundError):
    """Model weights are neither in the cache nor downloadable; the message says how to provide them."""


def keras_home() -> Path:
    """Keras's cache folder, by Keras's own rule: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras``
    when the home folder is not writable)."""
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def _weights_help(searched: Sequence[Path], why: str) -> str:
    return (
        f"MobileNetV2 ImageNet weights not found ({why}).\n"
        f"  Looked for: {', '.join(str(p) for p in searched)}\n"
        f"  Fix one of:\n"
        f"   - set KERAS_HOME to a folder containing models/{MOBILENET_WEIGHTS_FILE}\n"
        f"     (e.g. KERAS_HOME=../shared/models/keras in this project's development setup);\n"
        f"   - pass weights=<path to {MOBILENET_WEIGHTS_FILE}>;\n"
        f"   - on a machine with internet, run once so Keras caches it from {MOBILENET_WEIGHTS_URL}."
    )


def mobilenet_weights_path(weights: str | os.PathLike = "imagenet", *, download: bool | None = None,
                           timeout: float = 30.0) -> Path:
    """Path of the MobileNetV2 no-top weights file; downloads it into the Keras cache if allowed.

    ``weights`` is ``"imagenet"`` (use the Keras cache) or a path to the ``.h5`` file. The cache is
    checked first, so no network call happens when the file is there. A download (only when
    missing; disabled by ``download=False`` or ``VISION_LIB_OFFLINE=1``) has a ``timeout`` per
    network operation, so a machine without internet fails in seconds instead of hanging.

    Raises:
        WeightsNotFoundError: with a message saying how to provide the file.
    """
    if str(weights) != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(_weights_help([path], "no such file"))
        return path
    home = keras_home()
    searched = [home / "models" / MOBILENET_WEIGHTS_FILE]
    writable = os.access(home, os.W_OK) or not home.exists()
    if not writable:
        # Keras itself falls back to /tmp/.keras when its home is read-only: look there too.
        searched.append(Path("/tmp/.keras/models") / MOBILENET_WEIGHTS_FILE)
    target = searched[-1]
    if not os.environ.get("KERAS_HOME"):
        # The Makefile's default when KERAS_HOME is unset: ../shared/models/keras beside the checkout.
        from .config import SHARED_DIR

        searched.append(SHARED_DIR / "models" / "keras" / "models" / MOBILENET_WEIGHTS_FILE)
    for path in searched:
        if path.is_file():
            return path
    if download is None:
        download = os.environ.get("VISION_LIB_OFFLINE", "") in ("", "0")
    if not download:
        raise WeightsNotFoundError(_weights_help(searched, "not in the Keras cache; downloads are off"))
    try:
        _download(MOBILENET_WEIGHTS_URL, target, timeout)
    except OSError as exc:  # URLError, timeouts, read-only folders
        reason = getattr(exc, "reason", None) or exc
        raise WeightsNotFoundError(_weights_help(searched, f"download failed: {reason}")) from None
    return target


def _download(url: str, target: Path, timeout: float) -> None:
    """Fetch ``url`` to ``target`` atomically (a partial file never looks like a cached one)."""
    import tempfile
    import urllib.request

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@functools.lru_cache(maxsize=2)
def _mobilenet(weights_path: str):
    """The Keras model, built once per process and weights file (TensorFlow imported here only)."""
    from .native import import_quietly

    import_quietly("tensorflow")  # without its C++ start-up notices on stderr
    from keras.applications import MobileNetV2

    return MobileNetV2(weights=weights_path, include_top=False, pooling="avg",
                       input_shape=(MOBILENET_SIZE, MOBILENET_SIZE, 3))


def _mobilenet_input(image: np.ndarray) -> np.ndarray:
    """Resize (whole image, aspect not kept: as Keras's own pipelines do) and scale to [-1, 1]."""
    import cv2

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if (h >= MOBILENET_SIZE and w >= MOBILENET_SIZE) else cv2.INTER_LINEAR
    small = cv2.resize(np.ascontiguousarray(image, dtype=np.uint8), (MOBILENET_SIZE, MOBILENET_SIZE),
                       interpolation=interp)
    # Same arithmetic as keras.applications.mobilenet_v2.preprocess_input ("tf" mode), without TF.
    return small.astype(np.float32) / 127.5 - 1.0


def image_features(images: Sequence[np.ndarray], batch_size: int = 32, progress: bool = True,
                   weights: str | os.PathLike = "imagenet") -> np.ndarray:
    """MobileNetV2 ImageNet features (no top, global average pool): ``float32 (n, 1280)``.

    Images (RGB uint8, any size) are resized to 224x224 and run in batches of ``batch_size``;
    TensorFlow uses all cores. The model loads lazily, once per process.

    Raises:
        WeightsNotFoundError: weights missing and not downloadable (message says how to fix).
    """
    from .progress import tqdm

    n = len(images)
    if n == 0:
        return np.zeros((0, MOBILENET_DIM), dtype=np.float32)
    model = _mobilenet(str(mobilenet_weights_path(weights)))
    out = np.empty((n, MOBILENET_DIM), dtype=np.float32)
    with tqdm(total=n, desc="MobileNetV2", unit="image", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            batch = np.stack([_mobilenet_input(im) for im in images[start:start + batch_size]])
            out[start:start + len(batch)] = np.asarray(model.predict_on_batch(batch))
            bar.update(len(batch))
    return out


def mobilenet_model_id(weights: str | os.PathLike = "imagenet") -> str:
    """Cache key part naming the model *and* its weights file's content (different files that
    claim to be the same ImageNet weights need not give the same features)."""
    from .cache import file_digest

    return f"mobilenet_v2_1.0_{MOBILENET_SIZE}_avg:{file_digest(mobilenet_weights_path(weights))}"


def _stored_features(digest: str, model_id: str, path: str | None = None,
                     precomputed: np.ndarray | None = None) -> np.ndarray:
    # Cached per (file content, model); `path` and `precomputed` are not part of the key. Batches
    # compute the misses together and pass them in as `precomputed` to store them.
    if precomputed is not None:
        return precomputed
    from .io import load_image

    return image_features([load_image(path)], progress=False)[0]


@functools.lru_cache(maxsize=1)
def _feature_store():
    from .cache import memory

    return memory().cache(_stored_features, ignore=["path", "precomputed"])


def image_features_paths(paths: Sequence[str | os.PathLike], batch_size: int = 32, progress: bool = True,
                         weights: str | os.PathLike = "imagenet", cache: bool = True,
                         n_jobs: int | None = None, report=None) -> np.ndarray:
    """MobileNetV2 features of photo files, ``float32 (n, 1280)``, disk-cached by content and model.

    A second run over the same photos only reads the cache. Photos are decoded by ``n_jobs``
    threads while TensorFlow runs. An unreadable file gives a row of NaN and, when ``report``
    (a :class:`vision_lib.io.LoadReport`) is given, a rejection with its reason; the batch goes on.
    ``VISION_LIB_CACHE=off`` disables the cache.
    """
    from joblib import Parallel, delayed
    from .progress import tqdm

    from .cache import file_digest
    from .config import n_jobs as _n_jobs
    from .io import ImageError, load_image

    paths = [Path(p) for p in paths]
    out = np.full((len(paths), MOBILENET_DIM), np.nan, dtype=np.float32)
    if not paths:
        return out
    use_cache = cache and os.environ.get("VISION_LIB_CACHE") != "off"
    store = _feature_store() if use_cache else None
    model_id = mobilenet_model_id(weights) if use_cache else ""
    weights_path = str(mobilenet_weights_path(weights))

    def reject(i: int, reason: str) -> None:
        if report is not None:
            report.reject(str(paths[i]), reason)

    todo, digests = [], {}
    bar = tqdm(total=len(paths), desc="MobileNetV2", unit="photo", disable=not progress)
    for i, p in enumerate(paths):
        if use_cache:
            try:
                digests[i] = file_digest(p)
            except OSError as exc:
                reject(i, cannot_read(exc, p))
                bar.update(1)
                continue
            if store.check_call_in_cache(digests[i], model_id):
                out[i] = store(digests[i], model_id, path=str(p))
                bar.update(1)
                continue
        todo.append(i)

    def load(i: int):
        try:
            return _mobilenet_input(load_image(paths[i])), None
        except ImageError as exc:
            return None, exc.reason
        except OSError as exc:
            return None, cannot_read(exc, paths[i])

    # Threads: Pillow and OpenCV release the GIL while decoding and resizing.
    pool = Parallel(n_jobs=_n_jobs(n_jobs), backend="threading")
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        loaded = pool(delayed(load)(i) for i in chunk)
        ok = [(i, x) for i, (x, err) in zip(chunk, loaded) if x is not None]
        for i, (_, err) in zip(chunk, loaded):
            if err is not None:
                reject(i, err)
        if ok:
            feats = np.asarray(_mobilenet(weights_path).predict_on_batch(np.stack([x for _, x in ok])))
            for (i, _), f in zip(ok, feats):
                out[i] = f
                if use_cache:
                    store(digests[i], model_id, precomputed=out[i].copy())
        bar.update(len(chunk))
    bar.close()
    return out


# --------------------------------------------------------------------------- scikit-learn transformers
class MobileNetFeatures(ImageTransformer):
    """scikit-learn transformer: images (RGB arrays) or photo paths -> ``(n, 1280)`` MobileNetV2 features.

    Paths go through the disk cache (:func:`image_features_paths`); arrays are computed directly.
    A path that cannot be read gives a row of NaN (rows stay aligned with ``X``) and a
    ``UserWarning`` naming the file and the reason; drop those rows before a classifier.
    """

    _n_features_out = MOBILENET_DIM

    def __init__(self, batch_size: int = 32, weights: str = "imagenet", progress: bool = False):
        self.batch_size = batch_size
        self.weights = weights
        self.progress = progress

    def transform(self, X) -> np.ndarray:
        X = list(X)
        if X and all(isinstance(x, (str, os.PathLike)) for x in X):
            from .io import LoadReport

            report = LoadReport()
            out = image_features_paths(X, self.batch_size, self.progress, self.weights, report=report)
            if report.rejected:
                import warnings

                listed = "; ".join(f"{r.source}: {r.reason}" for r in report.rejected[:5])
                more = f" (and {len(report.rejected) - 5} more)" if len(report.rejected) > 5 else ""
                warnings.warn(f"{len(report.rejected)} of {len(X)} photos could not be read, their rows are NaN: "
                              f"{listed}{more}", UserWarning, stacklevel=2)
            return out
        return image_features(X, self.batch_size, self.progress, self.weights)


def face_box_in_crop(shape: tuple[int, ...], margin: float = 0.2) -> Face:
    """The face inside a crop made by :func:`vision_lib.faces.crop` with the same ``margin``."""
    h, w = int(shape[0]), int(shape[1])
    fw, fh = w / (1 + 2 * margin), h / (1 + 2 * margin)
    return Face((int(round(fw * margin)), int(round(fh * margin)), int(round(fw)), int(round(fh))), 1.0)


class FaceDescriptors(ImageTransformer):
    """scikit-learn transformer: face crops -> ``(n, 128)`` dlib ResNet descriptors.

    Each item is a crop made with ``faces.crop(image, face, margin)`` (the face box is recovered
    from ``margin``), or an ``(image, Face)`` pair to describe a detected face in a whole photo.
    Alignment as in :func:`face_descriptors`; crops carry no keypoints, so they are aligned by dlib's
    5-point shape predictor only.
    """

    _n_features_out = 128

    def __init__(self, margin: float = 0.2, jitters: int = 0, align: str | None = None, flip: bool | None = None):
        self.margin = margin
        self.jitters = jitters
        self.align = align
        self.flip = flip

    def transform(self, X) -> np.ndarray:
        rows = []
        for item in X:
            image, face = item if isinstance(item, tuple) else (item, face_box_in_crop(np.shape(item), self.margin))
            rows.append(face_descriptors(image, [face], self.jitters, self.align, self.flip)[0])
        return np.stack(rows) if rows else np.zeros((0, 128), dtype=np.float32)


#: The public names of this module.
__all__ = ["MOBILENET_WEIGHTS_FILE", "MOBILENET_WEIGHTS_URL", "MOBILENET_SIZE", "MOBILENET_DIM",
           "WeightsNotFoundError", "keras_home", "mobilenet_weights_path", "image_features",
           "mobilenet_model_id", "image_features_paths", "MobileNetFeatures", "face_box_in_crop",
           "FaceDescriptors"]
