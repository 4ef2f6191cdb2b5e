"""How close a quantized image is to its original (PSNR, SSIM) and how small its file is.

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations


import numpy as np

from .png import plain_png_bytes
from .quantizer import Quantized

__all__ = ["fidelity", "psnr", "ssim", "SSIM", "size_report"]


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all channels (inf for identical images)."""
    diff = reference.astype(np.float64) - test.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM over the RGB channels, as ``skimage.metrics.structural_similarity``.

    Same definition and defaults (7x7 uniform window, smaller on tiny images, sample covariance,
    K1=0.01, K2=0.03, data_range=255, borders cropped, channel mean) computed with OpenCV box
    filters in float32 on centred values, several times faster; the tests check it agrees with
    scikit-image to 1e-6. Comparing many images with one reference: :class:`SSIM`.
    """
    return SSIM(reference)(test)


class SSIM:
    """:func:`ssim` against one fixed reference, its local statistics computed once.

    ``SSIM(original)(test)`` equals ``ssim(original, test)``; ``test`` may also be a
    :class:`Quantized`, read straight from its palette and index map.
    """

    def __init__(self, reference: np.ndarray):
        side = min(reference.shape[:2])
        self.win = 7 if side >= 7 else side - (1 - side % 2)  # tiny images: the largest odd window
        self.shape = reference.shape
        if self.win < 3:
            return
        x = reference.astype(np.float32) - 128.0  # centring keeps float32 variances accurate
        self._x = x
        self._mx = mx = self._box(x)
        var_x = self._box(x * x)
        var_x -= mx * mx
        self._var_x = var_x  # biased local variance; the sample correction comes later
        mx128 = mx + 128.0  # means were shifted by -128: the luminance term needs them in 0..255
        self._mx128 = mx128
        self._lum_x = mx128 * mx128 + (0.01 * 255) ** 2

    def _box(self, z: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.blur(z, (self.win, self.win), borderType=cv2.BORDER_REFLECT)

    def __call__(self, test) -> float:
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        if self.win < 3:
            return float("nan")
        if isinstance(test, Quantized):
            y = np.take(test.palette.astype(np.float32) - 128.0, test.index, axis=0)
        else:
            if np.shape(test) != self.shape:
                raise ValueError(f"test image shape {np.shape(test)} != reference {self.shape}")
            y = test.astype(np.float32) - 128.0
        win, x, mx = self.win, self._x, self._mx
        cov = win * win / (win * win - 1.0)
        my = self._box(y)
        cov_xy = self._box(x * y)
        cov_xy -= mx * my
        cov_xy *= 2 * cov
        cov_xy += c2
        var_sum = self._box(y * y)
        var_sum -= my * my
        var_sum += self._var_x
        var_sum *= cov
        var_sum += c2
        my += 128.0
        lum_num = self._mx128 * my
        lum_num *= 2
        lum_num += c1
        my *= my
        my += self._lum_x  # my now holds the luminance denominator
        lum_num *= cov_xy
        my *= var_sum
        lum_num /= my
        pad = (win - 1) // 2
        return float(lum_num[pad:-pad, pad:-pad].mean(dtype=np.float64))


def fidelity(original: np.ndarray, q: Quantized | np.ndarray) -> dict:
    """PSNR (dB) and SSIM of a quantized image against the original."""
    rec = q.image if isinstance(q, Quantized) else q
    return {"psnr": round(float(psnr(original, rec)), 4), "ssim": round(ssim(original, rec), 5)}


def size_report(original: np.ndarray, q: Quantized, *, original_bytes: int | None = None,
                png_bytes: bytes | None = None, plain_png: bool | int = True) -> dict:
    """Bytes of the palette PNG vs the original file and vs a plain PNG of the original, plus quality.

    Ratios are ``reference bytes / palette PNG bytes`` (higher = smaller file). ``plain_png``: True
    encodes the plain PNG here, an int is its size already measured (one encoding for many k), False
    leaves it out.
    """
    data = png_bytes if png_bytes is not None else q.png_bytes()
    out = {"k": q.k, "colors": len(q.palette), "dither": q.dither, "bytes": len(data),
           **fidelity(original, q), "bits_per_pixel": round(8 * len(data) / q.index.size, 4)}
    if original_bytes is not None:
        out["original_bytes"] = int(original_bytes)
        out["ratio"] = round(original_bytes / len(data), 4)
    if plain_png is not False:
        plain = len(plain_png_bytes(original)) if plain_png is True else int(plain_png)
        out["plain_png_bytes"] = plain
        out["ratio_vs_plain_png"] = round(plain / len(data), 4)
    return out


#: Largest photo compressed, in megapixels: quantizing needs ~125 bytes per pixel at its peak (a 100 MP
#: flat PNG of 290 KB took 12.5 GB), so bigger inputs are refused with that reason, not run out of memory.
