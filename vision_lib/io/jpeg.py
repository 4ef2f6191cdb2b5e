"""JPEGs decoded by libjpeg-turbo straight into a numpy array (the ``simplejpeg`` wheel, which bundles
it), at a reduced scale when asked: the same pixels as Pillow's decoder (also libjpeg-turbo, same
IDCT and upsampling; identical in ``tests/test_io.py``) without Pillow's copies, which cost a 12 MP
photo about four times its decode (docs/scale.md). :func:`decode_jpeg` answers None whenever it
should not or cannot decode the file (package missing, CMYK, a file libjpeg warns about): the
caller then decodes it with Pillow, as before, so odd files keep Pillow's behaviour and reasons.
"""
from __future__ import annotations

import numpy as np

#: Pillow modes of the JPEGs decoded here: libjpeg converts YCbCr, RGB and grey to RGB itself.
#: CMYK / YCCK stay with Pillow (Adobe's inverted CMYK is Pillow's to undo).
FAST_MODES = ("RGB", "L")


def decode_jpeg(data: bytes, size: tuple[int, int], reduction: int = 1) -> np.ndarray | None:
    """The JPEG ``data`` (``size`` = ``(W, H)`` as its header says) as an RGB uint8 array with
    sides divided by ``reduction`` (1, 2, 4 or 8; rounded up, as libjpeg does), in the file's own
    orientation; None when libjpeg-turbo cannot decode it cleanly here."""
    try:
        import simplejpeg
    except ImportError:  # an install without the wheel: Pillow decodes everything
        return None
    w, h = size
    want = (-(-h // reduction), -(-w // reduction))
    try:
        # strict: a warning (truncated data, corrupt marker) is an error here, so Pillow decides.
        image = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=want[1], min_height=want[0], strict=True)
    except Exception:  # noqa: BLE001 - any failure of the fast path falls back to Pillow
        return None
    return image if image.shape[:2] == want else None


__all__ = ["FAST_MODES", "decode_jpeg"]
