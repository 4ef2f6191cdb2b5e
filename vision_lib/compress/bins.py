"""The colour histogram of an image: the occupied bins of its colour cube, with counts and colour sums
(what the quantizer fits instead of every pixel).

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..io import check_rgb

__all__ = ["ColourBins", "colour_bins"]


@dataclass
class ColourBins:
    """Occupied colour bins of one image (reusable across k, e.g. by the widget).

    Attributes:
        bits: bits per channel of the bins (bins are cubes of ``2**(8-bits)`` levels).
        codes: code ``(r << 2*bits) | (g << bits) | b`` of each occupied bin, shape (n_bins,).
        counts: pixels per occupied bin, shape (n_bins,).
        sums: colour sum per occupied bin, shape (n_bins, 3), float64.
        inverse: occupied-bin position of every pixel, shape (H*W,), int32.
        pixels: the image's pixels, shape (H*W, 3), uint8.
        shape: the image's (H, W).
    """

    bits: int
    codes: np.ndarray
    counts: np.ndarray
    sums: np.ndarray
    inverse: np.ndarray
    pixels: np.ndarray
    shape: tuple[int, int]

    @property
    def means(self) -> np.ndarray:
        return self.sums / self.counts[:, None]

    @functools.cached_property
    def centres(self) -> np.ndarray:
        """Centre of each bin's cube of colours (not the mean of its pixels)."""
        b, mask = self.bits, (1 << self.bits) - 1
        q = np.stack([(self.codes >> (2 * b)) & mask, (self.codes >> b) & mask, self.codes & mask], axis=1)
        step = 1 << (8 - b)
        return q.astype(np.float64) * step + (step - 1) / 2.0

    def coarsen(self, bits: int) -> tuple[np.ndarray, np.ndarray]:
        """``(means, counts)`` of the same pixels in coarser bins (``bits`` <= ``self.bits``)."""
        shift = self.bits - bits
        if shift <= 0:
            return self.means, self.counts
        mask = (1 << self.bits) - 1
        r, g, b = (self.codes >> (2 * self.bits)) & mask, (self.codes >> self.bits) & mask, self.codes & mask
        code = ((r >> shift) << (2 * bits)) | ((g >> shift) << bits) | (b >> shift)
        _, inverse = np.unique(code, return_inverse=True)
        counts = np.bincount(inverse, weights=self.counts)
        sums = np.stack([np.bincount(inverse, weights=self.sums[:, c]) for c in range(3)], axis=1)
        return sums / counts[:, None], counts

    @property
    def half_diagonal(self) -> float:
        return (((1 << (8 - self.bits)) - 1) / 2.0) * np.sqrt(3.0)


def colour_bins(image: np.ndarray, bits: int = 7) -> ColourBins:
    """Bin the colours of an RGB uint8 image (``bits`` per channel, 1..8; 8 = exact colours).

    7 bits (cubes of 2x2x2 levels) is the level the quantizer assigns pixels at; it fits its
    K-Means on the coarser :meth:`ColourBins.coarsen` of it.
    """
    image = check_rgb(image, min_side=1)
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be 1..8, got {bits}")
    pixels = np.ascontiguousarray(image.reshape(-1, 3))
    shift = 8 - bits
    q = pixels >> shift if shift else pixels
    code = (q[:, 0].astype(np.int32) << (2 * bits)) | (q[:, 1].astype(np.int32) << bits) | q[:, 2]
    if bits <= 7:  # bincount over at most 2**21 bins is faster than sorting
        n_codes = 1 << (3 * bits)
        counts = np.bincount(code, minlength=n_codes)
        occupied = np.flatnonzero(counts)
        position = np.zeros(n_codes, dtype=np.int32)
        position[occupied] = np.arange(len(occupied), dtype=np.int32)
        inverse = position[code]
        counts = counts[occupied]
    else:
        occupied, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
        inverse = inverse.astype(np.int32).ravel()
    sums = np.stack(
        [np.bincount(inverse, weights=pixels[:, c], minlength=len(occupied)) for c in range(3)], axis=1
    )
    return ColourBins(bits, occupied.astype(np.int32), counts, sums, inverse, pixels, image.shape[:2])
