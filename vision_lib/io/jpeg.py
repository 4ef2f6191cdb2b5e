"""JPEGs decoded by libjpeg-turbo straight into a numpy array (the ``simplejpeg`` wheel, which bundles
it), at a reduced scale when asked: the same pixels as Pillow's decoder (also libjpeg-turbo, same
IDCT and upsampling; identical in ``tests/test_io.py``) without Pillow's copies, which cost a 12 MP
photo about four times its decode (docs/scale.md). Both functions answer None whenever they should
not or cannot decode the file (package missing, CMYK, a file libjpeg warns about): the caller then
decodes it another way, as before, so odd files keep Pillow's behaviour and reasons.
"""
from __future__ import annotations

import re
import struct

import numpy as np

#: Pillow modes of the JPEGs decoded here: libjpeg converts YCbCr, RGB and grey to RGB itself.
#: CMYK / YCCK stay with Pillow (Adobe's inverted CMYK is Pillow's to undo).
FAST_MODES = ("RGB", "L")

#: Full-size rows decoded below the last one asked for: libjpeg's chroma upsampling looks one row
#: of blocks further, so the last rows of a shortened decode differ from the whole decode's.
_ROW_MARGIN = 32
#: libjpeg's only complaint when a shortened stream stops before the rest of the data (which it
#: then skips to the end marker without decoding): any other warning means a damaged file.
_STOPPED_EARLY = re.compile(r"Corrupt JPEG data: \d+ extraneous bytes before marker 0x(d[0-79])")


def decode_jpeg(data: bytes, size: tuple[int, int], reduction: int = 1) -> np.ndarray | None:
    """The JPEG ``data`` (``size`` = ``(W, H)`` as its header says) as an RGB uint8 array with
    sides divided by ``reduction`` (1, 2, 4 or 8; rounded up, as libjpeg does), in the file's own
    orientation; None when libjpeg-turbo cannot decode it cleanly here."""
    simplejpeg = _simplejpeg()
    if simplejpeg is None:
        return None
    want = out_size(size, reduction)
    try:
        # strict: a warning (truncated data, corrupt marker) is an error here, so Pillow decides.
        image = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=want[1], min_height=want[0], strict=True)
    except Exception:  # noqa: BLE001 - any failure of the fast path falls back to Pillow
        return None
    return image if image.shape[:2] == want else None


def decode_jpeg_rows(data: bytes, size: tuple[int, int], reduction: int, rows: int,
                     out: np.ndarray | None = None) -> np.ndarray | None:
    """:func:`decode_jpeg` of only the file's first ``rows`` rows (full-size pixels, plus the
    margin libjpeg needs): the stream's frame is declared that short, so libjpeg stops decoding
    there and skips the rest. Returns the decoded band (the top of the whole decode, at
    ``reduction``; the same pixels, tested), written into the top of ``out`` when given (an array
    of the whole decode's shape). None when this cannot be done (a progressive or 12-bit JPEG,
    rows reaching the bottom, any decoder warning): decode whole."""
    simplejpeg = _simplejpeg()
    short = _shortened(data, size[1], rows)
    if simplejpeg is None or short is None:
        return None
    data, band = short
    # Always a buffer of our own: the decoder's warning at the early stop is raised as an error,
    # after it has written every row into the buffer (an array it allocated itself would be lost).
    shape = (-(-band // reduction), out_size(size, reduction)[1], 3)
    image = np.empty(shape, np.uint8) if out is None else out[:shape[0]]
    try:
        simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=shape[1], min_height=shape[0], strict=True,
                               buffer=image)
    except ValueError as exc:
        if not _STOPPED_EARLY.fullmatch(str(exc)):
            return None
    except Exception:  # noqa: BLE001 - as decode_jpeg
        return None
    return image


def _simplejpeg():
    try:
        import simplejpeg
    except ImportError:  # an install without the wheel: Pillow decodes everything
        return None
    return simplejpeg


def out_size(size: tuple[int, int], reduction: int) -> tuple[int, int]:
    """``(rows, columns)`` of a decode of a ``(width, height)`` photo at 1/``reduction``."""
    w, h = size
    return -(-h // reduction), -(-w // reduction)


def _shortened(data: bytes, height: int, rows: int) -> tuple[bytes, int] | None:
    """``data`` with its frame header saying it is ``rows`` (plus a margin, whole 16-row MCUs) high,
    and that height; None unless it is a sequential 8-bit Huffman JPEG of ``height`` rows that
    this shortens."""
    band = -(-(rows + _ROW_MARGIN) // 16) * 16
    if band >= height or data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xC0, 0xC1):  # baseline / extended sequential: scanlines in file order
            precision, declared = data[i + 4], struct.unpack(">H", data[i + 5:i + 7])[0]
            if precision != 8 or declared != height:
                return None
            return data[:i + 5] + struct.pack(">H", band) + data[i + 7:], band
        if (0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker in (0xDA, 0xD9):
            return None  # progressive, lossless, arithmetic, or no frame before the scan
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


__all__ = ["FAST_MODES", "decode_jpeg", "decode_jpeg_rows", "out_size"]
