"""Decoding one photo: every photo becomes an RGB ``uint8`` array of shape ``(H, W, 3)``, EXIF
orientation applied, alpha flattened on white, grey / palette / CMYK / 16-bit converted. A file that
cannot be used raises :class:`ImageError` with a short, human-readable ``reason``. Originals are only
ever opened for reading."""
from __future__ import annotations

import functools
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .jpeg import FAST_MODES, decode_jpeg, decode_jpeg_rows, out_size
from .reasons import ImageError, cannot_read
from .sniff import SNIFF_BYTES, sniff_bytes, sniff_file

#: Photos above this many pixels are refused (a decompression bomb, or far beyond any camera).
MAX_PIXELS = 120_000_000


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
    return _decode(path, path, lambda: _regular_file_size(path), max_pixels).image


@dataclass(frozen=True)
class Decoded:
    """A photo decoded at some scale: ``image`` (RGB uint8) is the whole photo, whose upright size
    is ``shape`` ``(H, W)``, with every side multiplied by ``scale`` (1, 1/2, 1/4 or 1/8).
    ``complete`` is False when only a ``region`` was asked for and the decoder stopped below it:
    pixels outside that region may then be black."""

    image: np.ndarray
    scale: float
    shape: tuple[int, int]
    complete: bool = True


#: The reductions a JPEG decoder does inside its inverse DCT (libjpeg's 1/2, 1/4, 1/8), largest first.
_DCT_REDUCTIONS = (8, 4, 2)


def load_image_reduced(path: str | os.PathLike, min_side: int, *, max_pixels: int = MAX_PIXELS,
                       region: tuple[int, int, int, int] | None = None) -> Decoded:
    """:func:`load_image` decoding only what is needed: a JPEG at the smallest DCT scale (1/2, 1/4
    or 1/8 of its sides) whose longest side is still at least ``min_side``; other formats, and
    JPEGs too small to reduce, whole (``scale`` 1). The reduction happens inside the decoder, so a
    12 MP JPEG read for a 640 px detector costs a fraction of a full decode. Same conversions and
    checks as :func:`load_image` (EXIF orientation, CMYK, bombs).

    ``region`` ``(x0, y0, x1, y1)``, in the upright whole photo's pixels, is the part that is
    needed: a sequential JPEG is then decoded only down to the last row of the file that holds
    it (the rest of its data is skipped, not decoded) and the result is ``complete`` False.

    Raises:
        ImageError: as :func:`load_image`.
    """
    path = Path(path)
    return _decode(path, path, lambda: _regular_file_size(path), max_pixels, min_side=min_side, region=region)


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

    return _decode(BytesIO(data), name, lambda: len(data), max_pixels).image


def _decode(source, name, size, max_pixels: int, min_side: int | None = None, region=None) -> Decoded:
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
                reduction = _reduction(img, min_side) if min_side else 1
                image, complete = _decode_fast(img, source, reduction, region)
                if image is None:  # Pillow: every format, and the JPEGs the fast path leaves
                    reduction = _reduce_in_decoder(img, reduction)
                    img.load()
                    image = _to_rgb(_upright(img))
                turned = (image.shape[1], image.shape[0]) != (-(-w // reduction), -(-h // reduction))
                return Decoded(image, 1.0 / reduction, (w, h) if turned else (h, w), complete)
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


def _reduction(img, min_side: int) -> int:
    """The largest DCT reduction (8, 4, 2) of a JPEG whose longest side stays at least ``min_side``
    (1: none, and for every other format)."""
    if img.format not in _JPEG_FORMATS:
        return 1
    side = max(img.size)
    return next((k for k in _DCT_REDUCTIONS if -(-side // k) >= min_side), 1)


def _reduce_in_decoder(img, reduction: int) -> int:
    """Ask Pillow's JPEG decoder (``draft``) for ``reduction``; returns the reduction it will make
    (1 when none: ``draft`` may refuse)."""
    if reduction == 1:
        return 1
    w, h = img.size
    # The mode is kept (CMYK stays CMYK until _to_rgb); Pillow divides by these sizes, rounding down.
    img.draft(img.mode, (w // reduction, h // reduction))
    # What the decoder will really do: its output size is the original's divided by k, rounded up.
    return next((k for k in _DCT_REDUCTIONS if img.size == (-(-w // k), -(-h // k))), 1)


def _decode_fast(img, source, reduction: int, region) -> tuple[np.ndarray | None, bool]:
    """``(image, complete)``: the upright RGB photo decoded by libjpeg-turbo directly (:mod:`.jpeg`),
    only down to the file row that ``region`` needs when it is given; image None when that path
    does not apply (not a plain RGB / grey JPEG, unreadable EXIF, a decoder warning)."""
    if img.format not in _JPEG_FORMATS or img.mode not in FAST_MODES:
        return None, True
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a malformed EXIF block: _upright's fallbacks decide
        return None, True
    if not isinstance(orientation, int):  # an odd tag's type: _upright decides too
        return None, True
    # An MPO (phones' JPEGs with a depth map or a preview) starts with its primary JPEG.
    data = source.read_bytes() if isinstance(source, Path) else source.getvalue()
    if region is not None:
        image = _rows_upright(data, img.size, reduction, _file_rows(region, orientation, img.size[1]), orientation)
        if image is not None:
            return image, False
    image = decode_jpeg(data, img.size, reduction)
    return (None if image is None else _turned(image, orientation)), True


def _rows_upright(data: bytes, size: tuple[int, int], reduction: int, rows: int, orientation: int) -> np.ndarray | None:
    """The upright photo at ``reduction`` with only the file's first ``rows`` rows decoded
    (:func:`~.jpeg.decode_jpeg_rows`), black elsewhere; None when that cannot be done. Only the
    decoded band is turned: turning the whole array would cost more than decoding it (a 12 MP photo
    turned at 1/1: 20 ms) and write every one of its black pages."""
    shape = (*out_size(size, reduction), 3)  # the file's; np.zeros' pages stay unwritten until used
    if orientation not in _ORIENTATION:  # upright already: decoded straight into the whole array
        whole = np.zeros(shape, np.uint8)
        return whole if decode_jpeg_rows(data, size, reduction, rows, out=whole) is not None else None
    band = decode_jpeg_rows(data, size, reduction, rows)
    if band is None:
        return None
    band = _turned(band, orientation)
    whole = np.zeros((shape[1], shape[0], 3) if orientation >= 5 else shape, np.uint8)  # 5-8 turn by a quarter
    n, m = band.shape[:2]
    # Where the file's top rows land once turned (as _file_rows counts them): top, bottom, left, right.
    whole[{2: np.s_[:n], 3: np.s_[-n:], 4: np.s_[-n:], 5: np.s_[:, :m], 8: np.s_[:, :m],
           6: np.s_[:, -m:], 7: np.s_[:, -m:]}[orientation]] = band
    return whole


def _file_rows(region, orientation: int, file_height: int) -> int:
    """How many of the file's rows (from the top, full size) hold the upright ``region``
    ``(x0, y0, x1, y1)``, given the EXIF ``orientation`` that turns the file upright."""
    x0, y0, x1, y1 = (int(v) for v in region)
    # The upright side that runs along the file's rows, and whether it runs backwards (_turns).
    return {3: file_height - y0, 4: file_height - y0, 5: x1, 8: x1,
            6: file_height - x0, 7: file_height - x0}.get(orientation, y1)


#: Formats whose files are JPEG streams (an MPO's first image is a plain JPEG at offset 0).
_JPEG_FORMATS = ("JPEG", "MPO")


def _turned(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` turned as EXIF ``orientation`` says: Pillow's transposes (:data:`_ORIENTATION`),
    by OpenCV, whose contiguous copies cost a fraction of numpy's strided ones (a 1000x750 decode
    turned by a quarter: 0.4 ms against 3.4; tests compare the pixels with Pillow's)."""
    turn = _turns().get(orientation)
    return image if turn is None else turn(image)


@functools.cache
def _turns() -> dict:
    import cv2  # here, not at import: the CLI starts without OpenCV

    return {2: lambda a: cv2.flip(a, 1), 3: lambda a: cv2.flip(a, -1), 4: lambda a: cv2.flip(a, 0),
            5: cv2.transpose, 6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
            7: lambda a: cv2.flip(cv2.transpose(a), -1), 8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)}


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
        if img.getexif().get(0x0112, 1) == 1:
            return img  # upright already (most photos): no copy of a 12 MP decode
    except Exception:  # noqa: BLE001 - unreadable EXIF: exif_transpose and the fallback decide
        pass
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
    arr = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))  # convert() would copy an RGB photo
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

def resize_max_side(image: np.ndarray, max_side: int, *, smooth: bool = True) -> tuple[np.ndarray, float]:
    """Downscale so the longest side is at most ``max_side``; returns ``(image, scale)`` (scale <= 1).
    ``smooth``: pixel-area averaging (OpenCV's ``INTER_AREA``); False: bilinear (``INTER_LINEAR``),
    several times cheaper, for an image the decoder has already reduced (``Decoded.scale`` < 1)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if smooth else cv2.INTER_LINEAR), scale


__all__ = ["MAX_PIXELS", "Decoded", "load_image", "load_image_bytes", "load_image_reduced", "check_rgb", "resize_max_side"]
