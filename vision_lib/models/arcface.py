"""ArcFace-convention ONNX recognition models (insightface format) as an opt-in descriptor.

The models of insightface's ``buffalo_l`` (``w600k_r50.onnx``: ResNet-50 trained on WebFace600K)
and ``antelopev2`` (``glintr100.onnx``), and any export with the same convention (AdaFace,
GhostFaceNets): a 112x112 RGB chip with the five keypoints on the standard ArcFace template
(:data:`~vision_lib.geometry.ARCFACE_112`), NCHW float input, a 512-d output, L2-normalised here.
They run with ONNX Runtime.

**Never chosen silently**: only ``--descriptor arcface`` or ``VISION_LIB_DESCRIPTOR=arcface``.
Getting the file is the user's act (insightface's weights are for non-commercial research only):
``vision-lib models fetch arcface --accept-license`` on a machine with internet, or a folder
holding it in ``$VISION_LIB_MODELS``. ``$VISION_LIB_ARCFACE_MODEL`` names another file of the same
convention in that folder (default ``w600k_r50.onnx``).

Every file is checked by SHA-256: against the published pin where one is known
(:data:`KNOWN_SHA256`), and against the hash recorded the first time a file of that name was used
(``model_hashes.json`` in the cache folder): a different file under the same name is refused.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ..geometry import ARCFACE_112, Face
from .chips import ChipDescriptor, template_chips, template_region
from .files import ENV_VAR, ModelFileError, file_sha256

__all__ = ["ARCFACE_SIZE", "DEFAULT_FILE", "KNOWN_SHA256", "LICENCE", "ArcFaceDescriptor", "arcface_folder",
           "arcface_path", "fetch_arcface", "input_normalisation"]

ARCFACE_SIZE = 112
#: The file looked for, unless ``$VISION_LIB_ARCFACE_MODEL`` names another.
DEFAULT_FILE = "w600k_r50.onnx"
FILE_ENV = "VISION_LIB_ARCFACE_MODEL"
#: Published SHA-256 of insightface's release files (several independent projects pin the same
#: values for the v0.7 release: ``w600k_r50.onnx`` 174,383,860 bytes, ``buffalo_l.zip``).
KNOWN_SHA256 = {"w600k_r50.onnx": "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43"}
RELEASE_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
RELEASE_SHA256 = "80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f"
LICENCE = ("insightface's pretrained models (buffalo_l, antelopev2, ...) are available for non-commercial "
           "research purposes only (insightface licence). By fetching them you accept that licence; "
           "vision_lib does not ship them and uses them only when asked (--descriptor arcface).")
#: Box margin (share of the box per side) for faces without keypoints (Haar).
BOX_MARGIN = 0.1


def arcface_folder() -> Path:
    """Where ``vision-lib models fetch arcface`` puts the file: inside the running environment."""
    return Path(sys.prefix) / "share" / "vision_lib" / "arcface"


def _file_name() -> str:
    return os.environ.get(FILE_ENV) or DEFAULT_FILE


def _fix_text(name: str) -> str:
    return (f"  Fix one of:\n"
            f"   - on a machine with internet: vision-lib models fetch arcface --accept-license\n"
            f"     (downloads insightface's buffalo_l release; non-commercial research use only);\n"
            f"   - or set {ENV_VAR} to a folder holding {name} (any insightface-format ArcFace ONNX model: "
            f"112x112 input, 512-d output; {FILE_ENV} names another file of that folder).")


def _hash_book() -> Path:
    from ..config import cache_dir

    return cache_dir() / "model_hashes.json"


def _check_recorded(name: str, path: Path, digest: str) -> None:
    """Refuse ``path`` when a file of the same name with another hash was used before; record it
    the first time (trust on first use, as SSH does with host keys)."""
    pinned = KNOWN_SHA256.get(name)
    if pinned is not None and digest != pinned:
        raise ModelFileError(f"arcface: {path} is not insightface's {name} (SHA-256 {digest}, published "
                             f"{pinned}); it may be damaged or another model: give it another file name.\n"
                             + _fix_text(name))
    book = _hash_book()
    known = json.loads(book.read_text()) if book.is_file() else {}
    if name in known and known[name]["sha256"] != digest:
        raise ModelFileError(f"arcface: {path} is not the {name} used before (SHA-256 {digest}, recorded "
                             f"{known[name]['sha256']} from {known[name]['path']} in {book}). Descriptors and "
                             "models made with the earlier file would not match it. Give a different model "
                             "another file name, or delete its entry in that file if the change is intended.")
    if name not in known:
        known[name] = {"sha256": digest, "path": str(path)}
        tmp = book.with_suffix(".part")
        tmp.write_text(json.dumps(known, indent=1) + "\n")
        os.replace(tmp, book)


def arcface_path() -> tuple[Path, str]:
    """``(path, sha256)`` of the checked ArcFace file: ``$VISION_LIB_MODELS``, then :func:`arcface_folder`.

    Raises:
        ModelFileError: not found (the message says how to get it), or a different file than the
            published or recorded one under that name.
    """
    name = _file_name()
    places = ([Path(os.environ[ENV_VAR]).expanduser() / name] if os.environ.get(ENV_VAR) else []) + \
        [arcface_folder() / name]
    for path in places:
        if path.is_file():
            digest = file_sha256(path)
            _check_recorded(name, path, digest)
            return path, digest
    raise ModelFileError(f"arcface: model file {name} not found.\n  Looked in: "
                         f"{', '.join(str(p) for p in places)}\n" + _fix_text(name))


def input_normalisation(path: str) -> tuple[float, float]:
    """``(mean, std)`` of the network's input, as insightface decides it: a graph that subtracts
    and multiplies in its first nodes takes raw 0..255 pixels, others ``(x - 127.5) / 127.5``."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    names = [n.name for n in graph.node[:8]]
    sub = any(n.startswith(("Sub", "_minus")) for n in names)
    mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if sub and mul else (127.5, 127.5)


@functools.lru_cache(maxsize=2)
def _session(path: str, digest: str, threads: int | None):
    """The ONNX Runtime session and input normalisation of a file (``digest`` keys the cache)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape
    if len(shape) != 4 or shape[1] != 3 or shape[2:] != [ARCFACE_SIZE, ARCFACE_SIZE]:
        raise ModelFileError(f"arcface: {path} takes input {shape}, not (batch, 3, 112, 112): not an "
                             "insightface-format recognition model")
    fixed = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return sess, input_normalisation(path), fixed


def face_chips(image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """``(n, 112, 112, 3)`` uint8 chips: five keypoints onto the ArcFace template; a face without
    keypoints gets its box grown by :data:`BOX_MARGIN` per side, resized."""
    return template_chips(image, faces, ARCFACE_112, ARCFACE_SIZE, BOX_MARGIN)


class ArcFaceDescriptor(ChipDescriptor):
    """512-d ArcFace descriptors (insightface-format ONNX), L2-normalised, Euclidean.

    Args:
        threads: ONNX Runtime intra-op threads (None: its default; pool workers 1).
        batch: faces per network call (default 32; a model with a fixed batch size gets that size).
    """

    name = "arcface"
    version = "onnx/arcface112-template/l2"
    dim = 512
    metric = "euclidean"
    #: Same-person distance: **not measured here** (the weights cannot be had on this machine). A
    #: placeholder, cosine similarity 0.28 on L2-normalised descriptors (sqrt(2 * (1 - 0.28)) =
    #: 1.2); run ``benchmarks/bench_models.py --descriptors arcface ...`` ("calibration") on a
    #: machine with the file and set it from there (docs/models.md, "arcface").
    threshold = 1.2

    @property
    def id(self) -> str:
        """Name, file and hash: descriptors of another file never share a cache entry or a model.
        Without the file, an id that matches no cache (loading a bundle then says what is missing)."""
        try:
            path, digest = arcface_path()
        except ModelFileError:
            return f"arcface/{_file_name()}/missing/{self.version}"
        return f"arcface/{path.name}/{digest[:16]}/{self.version}"

    def chips(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return face_chips(image, faces)

    def region(self, faces: Sequence[Face]) -> tuple[float, float, float, float] | None:
        return template_region(faces, ARCFACE_112, ARCFACE_SIZE, BOX_MARGIN)

    def _net(self):
        path, digest = arcface_path()
        return _session(str(path), digest, self.threads)

    def describe_chips(self, chips: np.ndarray) -> np.ndarray:
        sess, _, fixed = self._net()
        if fixed is not None:
            self.batch = fixed  # an export with a fixed batch dimension takes exactly that many
        return super().describe_chips(chips)

    def _run(self, net, chips: np.ndarray) -> np.ndarray:
        sess, (mean, std), fixed = net
        x = ((chips.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
        n = len(x)
        if fixed is not None and n < fixed:
            x = np.concatenate([x, np.zeros((fixed - n, *x.shape[1:]), np.float32)])
        out = sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x)})[0]
        return np.asarray(out, np.float32).reshape(len(x), -1)[:n]


def fetch_arcface(accept_license: bool, dest: str | os.PathLike | None = None, url: str = RELEASE_URL) -> Path:
    """Download insightface's ``buffalo_l`` release, keep ``w600k_r50.onnx`` (checked by SHA-256)
    in ``dest`` (default :func:`arcface_folder`). Needs ``accept_license``: see :data:`LICENCE`.

    Raises:
        PermissionError: the licence was not accepted.
        ModelFileError: the download failed or a file differs from the published one.
    """
    import shutil
    import tempfile
    import urllib.request
    import zipfile

    if not accept_license:
        raise PermissionError("arcface: " + LICENCE + " Run again with --accept-license to fetch it.")
    dest = Path(dest) if dest is not None else arcface_folder()
    target = dest / DEFAULT_FILE
    if target.is_file() and file_sha256(target) == KNOWN_SHA256[DEFAULT_FILE]:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "buffalo_l.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as src, open(archive, "wb") as out:
                shutil.copyfileobj(src, out)
        except OSError as e:
            raise ModelFileError(f"arcface: could not download {url} ({e}). On a machine without internet, "
                                 f"copy {DEFAULT_FILE} from buffalo_l.zip into a folder and set {ENV_VAR} "
                                 "to it.") from e
        if file_sha256(archive) != RELEASE_SHA256:
            raise ModelFileError(f"arcface: {url} is not the published buffalo_l.zip (SHA-256 differs from "
                                 f"{RELEASE_SHA256})")
        with zipfile.ZipFile(archive) as z:
            member = next((m for m in z.namelist() if m.rsplit("/", 1)[-1] == DEFAULT_FILE), None)
            if member is None:
                raise ModelFileError(f"arcface: {url} holds no {DEFAULT_FILE}")
            part = target.with_suffix(".part")
            with z.open(member) as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out)
        if file_sha256(part) != KNOWN_SHA256[DEFAULT_FILE]:
            part.unlink()
            raise ModelFileError(f"arcface: {member} is not the published {DEFAULT_FILE}")
        os.replace(part, target)  # whole files only
    return target
