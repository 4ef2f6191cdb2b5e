"""Loading photos robustly, and listing folders of photos.

Every photo becomes an RGB ``uint8`` array of shape ``(H, W, 3)``: EXIF orientation applied, alpha
flattened on white, grey / palette / CMYK / 16-bit converted. A file that cannot be used raises
:class:`ImageError` with a short, human-readable ``reason``; batch helpers turn that into a
:class:`Rejected` record instead of stopping. Originals are only ever opened for reading.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}
)
#: Photos above this many pixels are refused (a decompression bomb, or far beyond any camera).
MAX_PIXELS = 120_000_000


class ImageError(ValueError):
    """A file that cannot be used as a photo; ``reason`` says why in a few words."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class Rejected:
    """One input left out of a batch, and why."""

    source: str
    reason: str


def load_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo as an RGB uint8 array, whatever its mode, orientation or bit depth.

    Args:
        path: image file.
        max_pixels: refuse images with more pixels than this (checked from the header, before
            decoding, so a decompression bomb costs nothing).

    Raises:
        ImageError: unreadable, truncated, not an image, or too large.
    """
    path = Path(path)
    return _decode(path, path, lambda: _regular_file_size(path), max_pixels)


def _regular_file_size(path: Path) -> int:
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # reading a named pipe would wait for a writer for ever
        raise ImageError(path, "cannot read: not a regular file")
    return st.st_size


def load_image_bytes(data: bytes, *, name: str = "<bytes>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """:func:`load_image` for a photo held in memory (an upload): same conversions, same checks.

    Args:
        data: the encoded file (JPEG, PNG, ...).
        name: how the photo is named in error messages.
        max_pixels: as in :func:`load_image`.

    Raises:
        ImageError: empty, not an image, truncated, or too large.
    """
    from io import BytesIO

    return _decode(BytesIO(data), name, lambda: len(data), max_pixels)


def _decode(source, name, size, max_pixels: int) -> np.ndarray:
    # One decoding path for files and bytes, so EXIF, CMYK and bomb handling cannot drift apart.
    from PIL import Image, UnidentifiedImageError

    try:
        if size() == 0:
            raise ImageError(name, "empty file")
        # Pillow's own bomb check is global state; we check the header ourselves instead.
        with _pillow_bomb_check_off():
            with Image.open(source) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(name, f"too large: {w}x{h} pixels (limit {max_pixels:,})")
                if w < 2 or h < 2:
                    raise ImageError(name, f"too small: {w}x{h} pixels")
                img.load()
                return _to_rgb(_upright(img))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(name, "not an image (format not recognised)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on malformed files
        if isinstance(exc, OSError) and exc.errno is not None:  # the file system's answer, not the decoder's
            raise ImageError(name, f"cannot read: {exc.strerror or exc}") from None
        msg = str(exc).split("\n")[0] or type(exc).__name__
        if "truncated" in msg.lower():
            msg = "truncated image file"
        elif not isinstance(exc, (OSError, SyntaxError, ValueError, EOFError)):
            msg = f"{type(exc).__name__}: {msg}"
        raise ImageError(name, f"cannot decode: {msg}") from None


#: EXIF orientation (tag 0x0112) -> the PIL transpose that makes the photo upright.
_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
                6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def _upright(img):
    """The photo turned as its EXIF orientation says. Pillow's ``exif_transpose`` also rewrites the
    whole EXIF block and fails on a malformed tag elsewhere in it (a text WhitePoint, say): then
    the orientation tag alone is applied, so one odd camera field does not cost the photo."""
    from PIL import Image, ImageOps

    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - any failure inside the EXIF rewrite
        try:
            orientation = img.getexif().get(0x0112, 1)
        except Exception:  # noqa: BLE001 - unreadable EXIF: no orientation to apply
            orientation = 1
        method = _ORIENTATION.get(orientation)
        return img.transpose(getattr(Image.Transpose, method)) if method else img


class _pillow_bomb_check_off:
    """Pillow raises DecompressionBombError at 2x its global limit; we apply our own limit.

    Safe with threads (the web server decodes uploads concurrently): the global limit is saved by
    the first thread in and restored by the last one out, never left switched off.
    """

    _lock = threading.Lock()
    _users = 0
    _saved = None

    def __enter__(self):
        from PIL import Image

        cls = type(self)
        with cls._lock:
            if cls._users == 0:
                cls._saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
            cls._users += 1

    def __exit__(self, *exc):
        from PIL import Image

        cls = type(self)
        with cls._lock:
            cls._users -= 1
            if cls._users == 0:
                Image.MAX_IMAGE_PIXELS = cls._saved


def _to_rgb(img) -> np.ndarray:
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F" and np.nanmax(arr, initial=0.0) <= 1.0:
            top = 1.0  # a float image in 0..1 (scientific TIFFs), not a very dark 0..255 one
        else:
            top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        img = canvas
    arr = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(arr, dtype=np.uint8)


def check_rgb(image: np.ndarray, *, min_side: int = 2) -> np.ndarray:
    """``image`` as a contiguous ``(H, W, 3)`` uint8 array, or a ValueError that says what is wrong.

    uint8 passes unchanged; other integer types must lie in 0..255; float images must lie in 0..1
    (scikit-image's convention) and are scaled to 0..255. Grey or RGBA arrays are refused rather
    than guessed at (:func:`load_image` converts files; ``skimage.color`` converts arrays).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {image.shape}")
    if image.shape[0] < min_side or image.shape[1] < min_side:
        raise ValueError(f"image too small: {image.shape[1]}x{image.shape[0]} pixels")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype.kind in "iub":
        if image.size and (image.min() < 0 or image.max() > 255):
            raise ValueError(f"expected values 0..255 in a {image.dtype} image, got {image.min()}..{image.max()}")
        return np.ascontiguousarray(image, dtype=np.uint8)
    if image.dtype.kind == "f":
        if image.size and not (np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1):
            raise ValueError(f"expected a float image in 0..1 (or uint8 in 0..255), got {image.dtype} "
                             f"{np.nanmin(image):g}..{np.nanmax(image):g}")
        return np.ascontiguousarray(np.round(image * 255), dtype=np.uint8)
    raise ValueError(f"expected an RGB uint8 image, got dtype {image.dtype}")


#: How the project's CSV files are opened: UTF-8, and a file name that is not valid UTF-8 (raw bytes,
#: e.g. Latin-1 from an old camera or zip) is written back as the same bytes instead of failing.
CSV_TEXT = {"newline": "", "encoding": "utf-8", "errors": "surrogateescape"}


def flat_name(source: str) -> str:
    """One file name for a relative path, ``a/b/c.jpg`` -> ``a__b__c.jpg``, distinct for distinct paths.

    Names that could make two paths meet (a part with ``__``, ``%`` or an edge ``_``: ``x/y__z`` vs
    ``x__y/z``) have their ``_`` written ``%5F`` (and ``%`` as ``%25``), so the mapping is one-to-one.
    """
    def part(name: str) -> str:
        if "%" in name or "__" in name or name.startswith("_") or name.endswith("_"):
            return name.replace("%", "%25").replace("_", "%5F")
        return name

    return "__".join(part(p) for p in str(source).replace("\\", "/").split("/"))


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True when ``path`` is ``folder`` or lies below it (after resolving links); used to refuse
    outputs inside an input folder."""
    return Path(folder).resolve() in (Path(path).resolve(), *Path(path).resolve().parents)


def check_output_folder(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output folder that cannot be one: an existing file, or a path
    below a file (``FileExistsError`` naming it). Creates nothing."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        below = "" if existing == path else f", so {path} cannot be created"
        raise FileExistsError(f"{existing} exists and is not a folder{below}; choose another output folder")
    return path


def check_writable(folder: str | os.PathLike) -> Path:
    """Prove a file can be written in the existing ``folder`` (and leave nothing behind); raises
    ``OSError`` naming the folder. Permission bits alone do not tell (root, ACLs, read-only mounts)."""
    import tempfile

    folder = Path(folder)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(folder)) from None  # the folder, not the probe's name
    return folder


def make_writable_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) and prove a file can be written there; raises ``OSError``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return check_writable(path)


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` under a temporary name beside ``path``, then rename it into place, so an
    interrupted run never leaves a half-written file under the final name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them: for a few quick steps that
    must not be cut in the middle. Python runs signal handlers in the main thread only, so elsewhere
    this does nothing."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    # A handler set outside Python (getsignal gives None) is left alone: it could not be put back.
    previous = {s: h for s in (signal.SIGINT, signal.SIGTERM) if (h := signal.getsignal(s)) is not None}
    for s in previous:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            signal.raise_signal(caught[0])


#: Folders this process holds a lock on ((resolved path, thread) -> [open descriptor, depth]): the
#: lock is re-entrant within a thread, so a command may hold it for its whole run and the export
#: functions it calls too; another thread is kept out like another process.
_HELD: dict[tuple[Path, int], list[int]] = {}
_HELD_GUARD = threading.Lock()


@contextmanager
def folder_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Create ``path`` if needed, check a file can be written there, and hold an exclusive advisory
    lock (``flock``) on it, so a second run writing to the same folder stops at once
    (``BlockingIOError``) instead of mixing its files with this one's. Folders this call created
    are removed again if they are still empty on failure.

    Where the platform or file system has no ``flock`` the work goes on unlocked.
    """
    path = check_output_folder(path)
    created = [p for p in (path, *path.parents) if not (p.exists() or p.is_symlink())]
    key = None
    try:
        path.mkdir(parents=True, exist_ok=True)
        check_writable(path)  # an unwritable folder fails now, not after the work
        with signals_deferred(), _HELD_GUARD:  # never a descriptor without its entry, or the reverse
            key = _acquire((path.resolve(), threading.get_ident()), path)
        yield path
    except BaseException:
        if key is not None:  # only while holding the lock: a run that lost the race must not remove
            for folder in created:  # the winner's folder; deepest first, while empty
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise
    finally:
        if key is not None:
            with signals_deferred(), _HELD_GUARD:
                held = _HELD[key]
                held[1] -= 1
                if not held[1]:
                    del _HELD[key]
                    os.close(held[0])  # closing the descriptor releases the lock


def _acquire(key: tuple[Path, int], path: Path) -> tuple[Path, int]:
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        return key
    fd = os.open(key[0], os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BlockingIOError(f"another run is writing to {path}; wait for it to finish or choose "
                              "another output folder") from None
    except (ImportError, OSError):  # no flock here (Windows, some network file systems)
        pass
    _HELD[key] = [fd, 1]
    return key


#: Prefix of the hidden folder an export is assembled in, inside its output folder.
STAGING_PREFIX = ".vision-lib-part-"


def holds_no_output(path: str | os.PathLike) -> bool:
    """True when the folder ``path`` is empty but for the hidden staging folders of killed runs."""
    return all(p.name.startswith(STAGING_PREFIX) for p in Path(path).iterdir())


# Output folders of the commands that export a folder (cluster, teams): checked, locked, filled.
def prepare_output(out_dir: str | os.PathLike, in_dir: str | os.PathLike | None = None) -> Path:
    """Check ``out_dir`` (resolved, returned; created later by the lock): refuse one inside
    ``in_dir`` or one that already holds files."""
    out = check_output_folder(out_dir).resolve()
    if in_dir is not None and is_inside(out, in_dir):
        raise ValueError(f"output folder {out} is inside the input folder {Path(in_dir).resolve()}; choose another")
    if out.exists() and not holds_no_output(out):
        raise FileExistsError(f"output folder {out} is not empty; choose a new one (nothing was overwritten)")
    return out


@contextmanager
def locked_output(out_dir: str | os.PathLike, in_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """:func:`prepare_output`, then hold :func:`~vision_lib.io.folder_lock` on the folder, so a second
    run into it stops at once; checked again under the lock, since a run that just finished may have
    filled the folder in between."""
    with folder_lock(prepare_output(out_dir, in_dir)) as out:
        yield prepare_output(out, in_dir)


def copy_grouped(pairs: Iterable[tuple[Path, Path]], *, link: bool = False, n_jobs: int | None = None) -> int:
    """Copy (or hard-link) ``(source, target)`` pairs in parallel threads; never overwrite a target.

    Returns the number of files written. Originals are only read.
    """
    from joblib import Parallel, delayed

    pairs = list(dict.fromkeys((Path(s), Path(t)) for s, t in pairs))
    for folder in {t.parent for _, t in pairs}:
        folder.mkdir(parents=True, exist_ok=True)

    def one(src: Path, dst: Path) -> int:
        # Both ways create the target atomically ("x" mode, link(2)): no check-then-write race.
        try:
            if link:
                try:
                    os.link(src, dst)
                    return 1
                except FileExistsError:
                    raise
                except OSError:  # other file system, or links not allowed: fall back to a copy
                    pass
            with open(src, "rb") as fin, open(dst, "xb") as fout:
                shutil.copyfileobj(fin, fout)
            shutil.copystat(src, dst)
        except FileExistsError:
            raise FileExistsError(f"{dst} exists; refusing to overwrite") from None
        return 1

    # Copying is I/O bound: threads are enough and avoid process start-up.
    return sum(Parallel(n_jobs=min(8, max(1, len(pairs))), prefer="threads")(delayed(one)(s, t) for s, t in pairs))


@contextmanager
def staged_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden folder inside ``path`` (an output folder held with :func:`folder_lock`) to fill;
    when the block ends normally its contents move up into ``path``, folders first and files (such
    as a ``metrics.json``) last, with Ctrl-C and SIGTERM held back meanwhile. On any failure or
    interrupt whatever this call moved is taken out again and ``path`` is left as it was: readers
    never see a half-written export, and an interrupted run leaves a folder the same command can use
    again. Staging folders of killed runs are removed first.

    ``path`` itself is never replaced (a shell sitting in it keeps seeing it).
    """
    import shutil
    import tempfile

    path = Path(path)
    for stale in path.glob(STAGING_PREFIX + "*"):  # no live run owns them: we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=path))
    moved: list[Path] = []
    try:
        yield tmp
        with signals_deferred():
            for entry in sorted(tmp.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
                moved.append(_move_new(entry, path / entry.name))
        tmp.rmdir()
    except BaseException:
        for entry in moved:  # this run's own files: a partial export is worse than none
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_new(src: Path, dst: Path) -> Path:
    """Rename ``src`` to ``dst`` (same file system), refusing with ``FileExistsError`` to replace
    anything but an empty folder; returns ``dst``."""
    try:
        if src.is_dir():
            os.rename(src, dst)  # fails on a non-empty folder or a file there
        else:
            try:
                os.link(src, dst)  # unlike rename, fails if anything is there
            except OSError as exc:
                if exc.errno == errno.EEXIST or dst.exists() or dst.is_symlink():
                    raise FileExistsError(errno.EEXIST, "exists", str(dst)) from None
                os.rename(src, dst)  # no hard links here (FAT, exFAT, some network shares)
            else:
                os.unlink(src)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
            raise FileExistsError(f"{dst} appeared during this run; it was not overwritten and this "
                                  "run's export was taken out again") from exc
        raise
    return dst


def is_image_name(path: str | os.PathLike) -> bool:
    """True when the file name has a photo extension (content is checked only when loading)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Photo files under ``root`` (by extension), sorted, hidden files and folders skipped.

    Symlinked folders are followed (a person's folder linked in from elsewhere is that person's
    photos), each real folder once: a link loop, or a second link to a folder already listed, adds
    nothing. ``root`` may also be a single file, which is returned as a one-element list.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    found = []
    seen = {os.path.realpath(root)}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real not in seen:
                seen.add(real)
                keep.append(d)
        dirnames[:] = keep if recursive else []
        found += [Path(dirpath) / f for f in filenames if not f.startswith(".") and is_image_name(f)]
    return sorted(found)


@dataclass
class PhotoSet:
    """Photos under a root folder; ``labels[i]`` is the sub-folder name of ``paths[i]`` (or None)."""

    root: Path
    paths: list[Path]
    labels: list[str] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the root, with forward slashes (as written in reports)."""
        return Path(path).relative_to(self.root).as_posix()

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels or []))

    def subset(self, index: Iterable[int]) -> "PhotoSet":
        index = list(index)
        labels = [self.labels[i] for i in index] if self.labels is not None else None
        return PhotoSet(self.root, [self.paths[i] for i in index], labels)

    def limit(self, per_label: int | None = None, total: int | None = None, seed: int = 0) -> "PhotoSet":
        """A reproducible random subset: at most ``per_label`` photos per label and ``total`` overall."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.paths))
        keep, counts = [], {}
        for i in order:
            lab = self.labels[i] if self.labels is not None else None
            if per_label is not None and counts.get(lab, 0) >= per_label:
                continue
            counts[lab] = counts.get(lab, 0) + 1
            keep.append(i)
        return self.subset(sorted(keep[:total] if total is not None else keep))


def photo_set(root: str | os.PathLike, *, labelled: bool = False) -> PhotoSet:
    """All photos under ``root``; with ``labelled=True`` the label is the first sub-folder's name.

    Photos directly in ``root`` have no label and are left out of a labelled set.
    """
    root = Path(root)
    paths = list_images(root)
    if not labelled:
        return PhotoSet(root, paths)
    pairs = [(p, p.relative_to(root).parts[0]) for p in paths if len(p.relative_to(root).parts) > 1]
    return PhotoSet(root, [p for p, _ in pairs], [lab for _, lab in pairs])


@dataclass
class LoadReport:
    """What a batch kept and what it rejected (with reasons)."""

    rejected: list[Rejected] = field(default_factory=list)

    def reject(self, source: str, reason: str) -> None:
        self.rejected.append(Rejected(str(source), reason))


def iter_loaded(
    paths: Iterable[str | os.PathLike], report: LoadReport | None = None, **load_kw
) -> Iterator[tuple[Path, np.ndarray]]:
    """Yield ``(path, image)`` for every loadable photo; the rest go to ``report`` with a reason."""
    for p in paths:
        try:
            yield Path(p), load_image(p, **load_kw)
        except ImageError as exc:
            if report is not None:
                report.reject(str(p), exc.reason)


def resize_max_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longest side is at most ``max_side``; returns ``(image, scale)`` (scale <= 1)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


#: The public names of this module.
__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "ImageError", "Rejected", "load_image", "load_image_bytes",
           "check_rgb", "CSV_TEXT", "flat_name", "is_inside", "check_output_folder", "check_writable",
           "make_writable_folder", "write_atomic", "signals_deferred", "folder_lock", "STAGING_PREFIX",
           "holds_no_output", "prepare_output", "locked_output", "copy_grouped", "staged_folder",
           "is_image_name", "list_images", "PhotoSet", "photo_set", "LoadReport", "iter_loaded",
           "resize_max_side"]
