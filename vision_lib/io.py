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
from typing import Iterable, Iterator, Sequence

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

    def __iter__(self):
        """``source, reason = rejected`` (as the ``(source, reason)`` pairs of older tables)."""
        return iter((self.source, self.reason))


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
        raise ImageError(name, _unidentified_reason(source)) from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on malformed files
        if isinstance(exc, OSError) and exc.errno is not None:  # the file system's answer, not the decoder's
            raise ImageError(name, cannot_read(exc, source if isinstance(source, Path) else None)) from None
        msg = str(exc).split("\n")[0] or type(exc).__name__
        if "truncated" in msg.lower():
            msg = "truncated image file"
        elif not isinstance(exc, (OSError, SyntaxError, ValueError, EOFError)):
            msg = f"{type(exc).__name__}: {msg}"
        raise ImageError(name, f"cannot decode: {msg}") from None


def _unidentified_reason(source) -> str:
    """Why Pillow found no image in ``source`` (a path or a BytesIO), in the words of a folder scan."""
    fmt, reason = sniff_file(source) if isinstance(source, Path) else sniff_bytes(source.getvalue()[:SNIFF_BYTES])
    return reason or f"cannot decode: not a valid {fmt} file"


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
    below a file (``FileExistsError`` naming it), or one that cannot be written into or created
    (``OSError`` naming the folder that refuses, see :func:`check_writable`). Creates nothing."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        below = "" if existing == path else f", so {path} cannot be created"
        raise FileExistsError(f"{existing} exists and is not a folder{below}; choose another output folder")
    check_writable(existing)  # the folder itself, or the one it would be created in
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


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False, what: str = "output") -> Path:
    """Refuse, before any work, a file path that a later write would refuse or fail: an existing
    file without ``overwrite`` (``FileExistsError``), anything that is not a regular file (a folder,
    a device), or a folder that cannot be written (``PermissionError``). Creates the missing folders.
    ``what`` names the file in the messages (``"model"``, ``"report"``)."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise FileExistsError(f"{path} exists and is not a regular file; choose another {what} path")
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    try:
        check_output_folder(path.parent)
        make_writable_folder(path.parent)
    except FileExistsError:  # a file where the folder should be: its own message
        raise
    except OSError as exc:
        raise PermissionError(f"cannot write a {what} into {path.parent}: {exc.strerror or exc}") from None
    return path


def csv_bytes(header: list[str], rows: Iterable[list]) -> bytes:
    """A CSV file's bytes (header line, then ``rows``), as ``open(..., **CSV_TEXT)`` would write
    them: for :func:`write_atomic`, so a table is never left half written."""
    import csv
    import io

    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(CSV_TEXT["encoding"], CSV_TEXT["errors"])


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
    """True when the file name has a usual photo extension. Folder scans go by content instead
    (:func:`sniff_file`); this is only a hint, e.g. for naming outputs."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


#: How many bytes of a file are read to tell what it is.
SNIFF_BYTES = 4096

#: Leading bytes of the photo formats the decoder (Pillow) reads -> format name.
_PHOTO_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"), (b"MM\x00+", "TIFF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"), (b"\xff\x4f\xff\x51", "JPEG2000"),
)
#: Leading bytes of common files that are not photos -> what they are (as the reason says it).
_OTHER_MAGIC = (
    (b"%PDF-", "PDF document"), (b"%!PS", "PostScript document"), (b"\xc5\xd0\xd3\xc6", "PostScript document"),
    (b"PK\x03\x04", "ZIP archive (or an Office document)"), (b"PK\x05\x06", "ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip archive"), (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"), (b"Rar!", "RAR archive"),
    (b"BZh", "bzip2 archive"), (b"\xfd7zXZ\x00", "xz archive"), (b"\x28\xb5\x2f\xfd", "zstd archive"),
    (b"\x1aE\xdf\xa3", "video (Matroska/WebM)"), (b"OggS", "audio or video (Ogg)"), (b"ID3", "audio (MP3)"),
    (b"fLaC", "audio (FLAC)"), (b"\x7fELF", "program (ELF)"), (b"MZ", "program (Windows)"),
    (b"SQLite format 3\x00", "SQLite database"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Office document"),
    (b"8BPS", "Photoshop document"), (b"\x00\x00\x01\x00", "icon"), (b"\x93NUMPY", "NumPy array"),
    (b"\x89HDF\r\n\x1a\n", "HDF5 file"), (b"{\\rtf", "RTF document"),
)
#: ISO media (``ftyp``) brands of still photos: AVIF, and HEIC/HEIF (iPhone photos).
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def _pillow_reads(fmt: str) -> bool:
    """True when this Pillow can decode ``fmt`` (AVIF, JPEG 2000 and HEIF depend on how it was built)."""
    from PIL import Image

    if fmt == "HEIF":
        try:  # a plug-in, when installed; Pillow alone does not read HEIC
            from pillow_heif import register_heif_opener
        except ImportError:
            return False
        register_heif_opener()
        return True
    Image.init()
    return fmt in Image.OPEN


def sniff_bytes(head: bytes) -> tuple[str | None, str | None]:
    """What the leading bytes of a file say it is: ``(photo format, None)`` for a photo this
    install can decode, else ``(None, reason)`` ("not a photo: text file", "empty file", ...).

    Decided by content alone, never by the name: a JPEG called ``IMG_0001`` or ``notes.txt`` is a
    photo, a text file called ``a.jpg`` is not. A photo format recognised here may still turn out
    truncated or corrupt when decoded (:func:`load_image` says so then).
    """
    if not head:
        return None, "empty file"
    fmt = next((f for magic, f in _PHOTO_MAGIC if head.startswith(magic)), None)
    if fmt is None:
        if head[:2] == b"BM" and len(head) >= 18 and head[6:10] == b"\x00\x00\x00\x00":  # reserved bytes
            fmt = "BMP"
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            fmt = "WEBP"
        elif len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
            fmt = "PPM"  # PBM/PGM/PPM (as in att_faces)
        elif head[4:8] == b"ftyp":
            brands = {head[i:i + 4] for i in range(8, min(len(head), int.from_bytes(head[:4], "big")), 4)}
            if brands & _AVIF_BRANDS:
                fmt = "AVIF"
            elif brands & _HEIF_BRANDS:
                fmt = "HEIF"
            else:
                return None, "not a photo: video (MP4/QuickTime)"
        elif head[:4] == b"RIFF":
            return None, "not a photo: audio or video (RIFF)"
    if fmt is not None:
        if _pillow_reads(fmt):
            return fmt, None
        hint = " (pip install pillow-heif)" if fmt == "HEIF" else ""
        return None, f"photo format not supported here: {fmt}{hint}"
    what = next((w for magic, w in _OTHER_MAGIC if head.startswith(magic)), None)
    return None, f"not a photo: {what or _text_kind(head) or 'unknown format'}"


def _text_kind(head: bytes) -> str | None:
    """"SVG drawing", "HTML page", "XML file" or "text file" when ``head`` reads as text, else None."""
    import codecs

    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head[2:].decode("utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be", "ignore")
    elif b"\x00" in head:
        return None
    else:
        try:  # a multi-byte character cut at the end of the sample is still text
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            text = head.decode("latin-1")
            if sum(c < 32 and c not in b"\t\n\r\f" for c in head) > len(head) // 100:
                return None  # control bytes: binary, not Latin-1 text
    low = text.lstrip("\ufeff \t\r\n").lower()
    if "<svg" in low:
        return "SVG drawing"
    if low.startswith(("<!doctype html", "<html")) or "<html" in low[:512]:
        return "HTML page"
    if low.startswith("<?xml"):
        return "XML file"
    return "text file"


def cannot_read(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """The reason for a file that could not be opened, in the same words whether it was found in a
    folder or named on the command line (a broken link is said to be one, not "No such file")."""
    if exc.errno == errno.ELOOP:
        return "cannot read: symbolic link loop"
    if exc.errno == errno.ENOENT and path is not None and Path(path).is_symlink():
        return "cannot read: broken link (its target does not exist)"
    return f"cannot read: {exc.strerror or exc}"


def sniff_file(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """:func:`sniff_bytes` of a file's first bytes; files that cannot be read (broken links, link
    loops, folders, pipes, no permission) get a reason too. Only reads, and only regular files."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        return None, cannot_read(exc, path)
    if not stat.S_ISREG(st.st_mode):
        return None, "cannot read: a folder" if stat.S_ISDIR(st.st_mode) else "cannot read: not a regular file"
    if st.st_size == 0:
        return None, "empty file"
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    return sniff_bytes(head)


#: The reason of a searched folder with no visible entry (nothing, or only hidden files) in a scan.
EMPTY_FOLDER = "empty folder: no photos"


@dataclass
class FolderScan:
    """Every entry under a folder: the photos (by content), and everything else with its reason.

    ``photos`` and ``skipped`` sources are paths under ``root`` (as ``root / relative``), sorted.
    Nothing is left out unlisted: hidden files and folders, non-photos, unreadable files, link loops,
    (when not recursive) sub-folders, and folders with nothing but hidden files in them (reason
    :data:`EMPTY_FOLDER`, source the folder) all appear in ``skipped``.
    """

    root: Path
    photos: list[Path] = field(default_factory=list)
    skipped: list[Rejected] = field(default_factory=list)

    def relative_skipped(self) -> list[Rejected]:
        """``skipped`` with sources relative to ``root`` (forward slashes), as reports write them."""
        return [Rejected(_relative(r.source, self.root), r.reason) for r in self.skipped]


def named_like_a_photo(skipped: Rejected) -> bool:
    """True for a skipped entry that was meant to be a photo: a visible file with a photo's extension
    (``broken.jpg``: text inside, a broken link, empty). Commands that answer for every photo
    (predict, compress) report these as failures; other files (``notes.txt``) are just skipped."""
    name = Path(skipped.source).name
    return is_image_name(name) and not name.startswith(".") and not skipped.reason.startswith(
        ("hidden", "sub-folder", "link to a folder", EMPTY_FOLDER))


def entry_word(skipped: Rejected) -> str:
    """The word of a skipped entry's line in the commands that answer for every photo (predict,
    compress): ``"error"``, as for a photo they could not decode, when it was meant to be a photo
    (:func:`named_like_a_photo`) or could not be read at all, so may well be one (``IMG_0002``, no
    extension, behind a broken link); else ``"skipped"`` (``notes.txt``, hidden files, empty folders)."""
    return "error" if named_like_a_photo(skipped) or skipped.reason.startswith("cannot read:") else "skipped"


#: At most this many entries are listed in a :func:`too_few_photos` message (the rest are counted).
LISTED_AT_MOST = 10


def too_few_photos(root: str | os.PathLike, found: int, need: int, not_used: Sequence[Rejected], *,
                   what: str = "photos", needs: str = "") -> str:
    """The message for a folder that gave fewer than ``need`` usable ``what`` (a plural noun): how many
    it gave, every entry not used and why (``not_used``, sources relative to ``root``; the first
    :data:`LISTED_AT_MOST`), then ``needs``: what the command needs, i.e. the fix."""
    root = Path(root)
    noun = what[:-1] if found == 1 and what.endswith("s") else what
    head = f"{found or 'no'} usable {noun} in {root}" + (f" ({need} needed)" if need > 1 else "")
    lines = []
    if not found and [(r.source, r.reason) for r in not_used] == [(".", EMPTY_FOLDER)]:
        head += ": the folder is empty"  # not "1 other file": the only entry is the folder itself
    elif not_used:
        head += f"; {len(not_used)} {'entry' if len(not_used) == 1 else 'entries'} not used:"
        lines = [f"  {root if r.source == '.' else r.source}: {r.reason}" for r in not_used[:LISTED_AT_MOST]]
        lines += [f"  ... and {len(not_used) - LISTED_AT_MOST} more"] * (len(not_used) > LISTED_AT_MOST)
    return "\n".join([head, *lines] + [needs] * bool(needs))


def _relative(source: str | os.PathLike, root: Path) -> str:
    try:
        return Path(source).relative_to(root).as_posix()
    except ValueError:  # not under root (a file given directly)
        return str(source)


def scan_folder(root: str | os.PathLike, *, recursive: bool = True) -> FolderScan:
    """Sort every file under ``root`` into photos (decided by content, see :func:`sniff_file`) and
    skipped entries with a reason. Only reads (the first :data:`SNIFF_BYTES` of each file).

    Symlinked folders are followed (a person's folder linked in from elsewhere is that person's
    photos), each real folder once: a link loop, or a second link to a folder already searched, is
    listed as skipped. ``root`` may also be a single file, which is returned as the one photo (its
    problems, if any, are reported when it is loaded).
    """
    root = Path(root)
    if root.is_file():
        return FolderScan(root, [root])
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    scan = FolderScan(root)
    seen = {os.path.realpath(root)}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it)
        except OSError as exc:
            scan.skipped.append(Rejected(str(folder), f"cannot read folder: {exc.strerror or exc}"))
            continue
        below = []
        if all(name.startswith(".") for name in names):
            # Said, not silent: a person's folder with nothing in it (or only .DS_Store) would
            # otherwise just be missing from the results.
            scan.skipped.append(Rejected(str(folder), EMPTY_FOLDER))
        for name in names:
            path = folder / name
            try:
                is_dir = path.is_dir()
            except OSError:  # a link loop: sniff_file gives the reason
                is_dir = False
            if name.startswith("."):
                scan.skipped.append(Rejected(str(path), "hidden folder (not searched)" if is_dir else "hidden file"))
            elif not is_dir:
                fmt, reason = sniff_file(path)
                if fmt is not None:
                    scan.photos.append(path)
                else:
                    scan.skipped.append(Rejected(str(path), reason))
            elif not recursive:
                scan.skipped.append(Rejected(str(path), "sub-folder (not searched)"))
            elif (real := os.path.realpath(path)) in seen:
                scan.skipped.append(Rejected(str(path), "link to a folder already searched (a loop or a duplicate)"))
            else:
                seen.add(real)
                below.append(path)
        stack += reversed(below)
    scan.photos.sort()
    scan.skipped.sort(key=lambda r: r.source)
    return scan


def list_images(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """The photos of :func:`scan_folder` (by content, sorted); hidden files and folders skipped.
    Use :func:`scan_folder` to also know what was skipped, and why."""
    return scan_folder(root, recursive=recursive).photos


@dataclass
class PhotoSet:
    """Photos under a root folder; ``labels[i]`` is the sub-folder name of ``paths[i]`` (or None)."""

    root: Path
    paths: list[Path]
    labels: list[str] | None = None
    #: Everything else under ``root``, with its reason (non-photos, hidden files, and in a labelled
    #: set the photos outside any sub-folder); sources as ``root / relative``.
    skipped: list[Rejected] = field(default_factory=list)

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
        return PhotoSet(self.root, [self.paths[i] for i in index], labels, list(self.skipped))

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

    Photos directly in ``root`` have no label and are left out of a labelled set (listed in
    ``skipped``, as are all files that are not photos).
    """
    root = Path(root)
    scan = scan_folder(root)
    if not labelled:
        return PhotoSet(root, scan.photos, skipped=scan.skipped)
    pairs = [(p, p.relative_to(root).parts[0]) for p in scan.photos if len(p.relative_to(root).parts) > 1]
    loose = [Rejected(str(p), "not in a person's sub-folder (no label)") for p in scan.photos
             if len(p.relative_to(root).parts) == 1]
    return PhotoSet(root, [p for p, _ in pairs], [lab for _, lab in pairs],
                    sorted(scan.skipped + loose, key=lambda r: r.source))


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
           "check_rgb", "CSV_TEXT", "csv_bytes", "flat_name", "is_inside", "check_output_folder",
           "check_output_file", "check_writable", "make_writable_folder", "write_atomic", "signals_deferred", "folder_lock", "STAGING_PREFIX",
           "holds_no_output", "prepare_output", "locked_output", "copy_grouped", "staged_folder",
           "is_image_name", "cannot_read", "named_like_a_photo", "entry_word", "EMPTY_FOLDER", "LISTED_AT_MOST", "too_few_photos", "list_images", "PhotoSet", "photo_set", "LoadReport", "iter_loaded",
           "resize_max_side"]
