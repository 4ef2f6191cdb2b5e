"""Image compression by colour quantization: K-Means palettes, palette PNGs, honest quality figures.

The quantizer reaches full-image K-Means quality at a fraction of its cost:

1. **Colour histogram.** Pixels fall into ``2**bits`` bins per channel (7 bits: cubes of 2x2x2
   levels); each occupied bin keeps its pixel count and colour sum. A photo has a few thousand to a
   few tens of thousands of occupied bins instead of hundreds of thousands of pixels.
2. **Weighted K-Means** (scikit-learn, k-means++, ``sample_weight`` = counts, best of 3 starts) on
   the means of coarser 6-bit bins. The squared error of pixels equals the weighted error of their
   bin means plus a constant, so this is the pixel objective, with pixels of one bin kept together.
3. **Exact assignment and refinement.** A 7-bit bin whose whole cube is nearer to one palette
   colour than to any other sends all its pixels there; only pixels of bins straddling a boundary
   are compared with their bin's few contending colours (a KD-tree when there are many). Two Lloyd
   steps on these exact pixel assignments move the palette to the true pixel means, which lifts
   the small loss of step 2. Every pixel gets its exact nearest palette colour.

Dithering (Floyd-Steinberg) uses Pillow's C implementation with the fitted palette.
Palette PNGs are written by Pillow with as few bits per index as the palette allows (1, 2, 4, 8).
"""
from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from sklearn.base import BaseEstimator

from .io import ImageError, check_rgb, load_image

#: Methods :func:`quantize_with` knows, besides this module's own (``"vision_lib"``).
BASELINES = ("minibatch_kmeans", "kmeans", "median_cut", "fast_octree", "pngquant")


# --------------------------------------------------------------------------- histogram
@dataclass
class ColourHistogram:
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


def colour_histogram(image: np.ndarray, bits: int = 7) -> ColourHistogram:
    """Bin the colours of an RGB uint8 image (``bits`` per channel, 1..8; 8 = exact colours).

    7 bits (cubes of 2x2x2 levels) is the level the quantizer assigns pixels at; it fits its
    K-Means on the coarser :meth:`ColourHistogram.coarsen` of it.
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
    return ColourHistogram(bits, occupied.astype(np.int32), counts, sums, inverse, pixels, image.shape[:2])


# --------------------------------------------------------------------------- assignment
def _tree(palette: np.ndarray):
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(palette, dtype=np.float64))


def _assign(hist: ColourHistogram, palette: np.ndarray, max_candidates: int = 4):
    """Exact nearest palette colour for every pixel, mostly decided per bin.

    Returns ``(bin_label, ambiguous_bins, pixel_mask, pixel_label)`` where ``pixel_mask`` selects
    the pixels of ambiguous bins and ``pixel_label`` their own nearest colour.
    """
    palette = np.asarray(palette, dtype=np.float64)
    n_bins, n = len(hist.counts), len(palette)
    if n == 1:
        return np.zeros(n_bins, np.intp), np.zeros(n_bins, bool), np.zeros(len(hist.inverse), bool), np.zeros(0, np.intp)
    tree = _tree(palette)
    m = min(n, max_candidates)
    dist, idx = tree.query(hist.centres, k=m)
    bin_label = idx[:, 0]
    # Every colour of a bin's cube lies within `reach` of the cube's centre, so a palette colour
    # farther than d1 + 2 * reach from the centre is never the nearest for any pixel of the bin:
    # `need` counts the contenders (1 = the whole bin is decided).
    reach = hist.half_diagonal + 1e-9
    need = (dist <= dist[:, :1] + 2.0 * reach).sum(axis=1)
    if hist.bits == 8:
        need[:] = 1  # bins are single colours: the centre is the colour itself
    ambiguous = need > 1
    pixel_mask = ambiguous[hist.inverse]
    if not pixel_mask.any():
        return bin_label, ambiguous, pixel_mask, np.zeros(0, np.intp)
    pixel_bin = hist.inverse[pixel_mask]
    pixels = hist.pixels[pixel_mask].astype(np.float32)
    pixel_need = need[pixel_bin]
    if m < n:  # all m queried colours in reach: there may be more, unseen contenders
        pixel_need[pixel_need >= m] = n + 1
    pixel_label = np.empty(len(pixel_bin), np.intp)
    pal32 = palette.astype(np.float32)
    # Pixels choose among their bin's contenders only, in groups of equal width (most need 2);
    # bins with more contenders than were queried fall back to the KD-tree per pixel.
    lo = 1
    for width in sorted({min(w, m) for w in (2, 4, m)}):
        group = (pixel_need > lo) & (pixel_need <= width)
        lo = width
        if not group.any():
            continue
        cand = idx[pixel_bin[group], :width]
        diff = pixels[group, None, :] - pal32[cand]
        pixel_label[group] = cand[np.arange(len(cand)), np.einsum("ijk,ijk->ij", diff, diff).argmin(axis=1)]
    hard = pixel_need > m
    if hard.any():
        pixel_label[hard] = tree.query(pixels[hard].astype(np.float64))[1]
    return bin_label, ambiguous, pixel_mask, pixel_label


def _pixel_labels(hist: ColourHistogram, palette: np.ndarray) -> np.ndarray:
    bin_label, _, pixel_mask, pixel_label = _assign(hist, palette)
    labels = bin_label[hist.inverse]
    labels[pixel_mask] = pixel_label
    return labels


def _lloyd_step(hist: ColourHistogram, palette: np.ndarray) -> tuple[np.ndarray, float]:
    """One K-Means step on the exact pixel assignment; returns (new palette, pixel inertia before)."""
    n = len(palette)
    bin_label, ambiguous, pixel_mask, pixel_label = _assign(hist, palette)
    clear = ~ambiguous
    counts = np.bincount(bin_label[clear], weights=hist.counts[clear], minlength=n)
    counts += np.bincount(pixel_label, minlength=n)
    amb_pixels = hist.pixels[pixel_mask].astype(np.float64)
    sums = np.stack([
        np.bincount(bin_label[clear], weights=hist.sums[clear, c], minlength=n)
        + np.bincount(pixel_label, weights=amb_pixels[:, c], minlength=n)
        for c in range(3)
    ], axis=1)
    new = palette.astype(np.float64).copy()
    used = counts > 0
    new[used] = sums[used] / counts[used, None]  # an emptied colour keeps its place
    return new, float(counts.sum())


# --------------------------------------------------------------------------- estimator
class ColourQuantizer(BaseEstimator):
    """K-Means colour quantizer with scikit-learn conventions (``fit`` on one image learns its palette,
    ``predict`` maps an image onto it; ``get_params``/``set_params``/``clone`` work as for any estimator).

    Args:
        n_colors: palette size k, 2..256 (the palette is smaller when the image has fewer colours).
        dither: Floyd-Steinberg error diffusion in :meth:`predict` (hides banding, costs bytes).
        bits: bits per channel of the colour histogram the K-Means runs on (6 is a good default:
            higher is slower and barely better, lower is faster and coarser); pixels are
            assigned exactly, using bins one bit finer.
        n_init: K-Means restarts on the histogram (cheap there); the best one is kept.
        refine: Lloyd steps on exact pixel assignments after the histogram K-Means.
        random_state: seed of the k-means++ initialisation (same seed, same palette).

    Attributes:
        palette_: (n, 3) uint8 palette, sorted by luminance (dark to light).
        histogram_: the :class:`ColourHistogram` of the fitted image.
    """

    def __init__(self, n_colors: int = 16, *, dither: bool = False, bits: int = 6, n_init: int = 3,
                 refine: int = 2, random_state: int | None = 0):
        self.n_colors = n_colors
        self.dither = dither
        self.bits = bits
        self.n_init = n_init
        self.refine = refine
        self.random_state = random_state

    def fit(self, image: np.ndarray, y=None, *, histogram: ColourHistogram | None = None) -> "ColourQuantizer":
        """Learn the palette of ``image`` (pass a precomputed ``histogram`` to skip binning)."""
        k = int(self.n_colors)
        if not 2 <= k <= 256:
            raise ValueError(f"n_colors must be between 2 and 256, got {self.n_colors}")
        # Pixels are assigned at one bit finer than the K-Means bins: far fewer boundary cases.
        hist = histogram if histogram is not None else colour_histogram(image, min(self.bits + 1, 8))
        means, counts = hist.coarsen(self.bits)
        if len(counts) <= k and hist.bits < 8:
            hist = colour_histogram(hist.pixels.reshape(*hist.shape, 3), 8)
            means, counts = hist.means, hist.counts
        if len(counts) <= k:  # no more colours than palette entries: lossless
            palette = means
        else:
            palette = _weighted_kmeans(means, counts, k, self.n_init, self.random_state)
            for _ in range(max(0, int(self.refine))):
                palette, _ = _lloyd_step(hist, palette)
        self.palette_ = _final_palette(palette)
        self.histogram_ = hist
        return self

    def predict(self, image: np.ndarray | None = None) -> np.ndarray:
        """Palette index (H, W) uint8 of every pixel; ``None`` means the fitted image (fast path)."""
        if image is None:
            hist = self.histogram_
            image_shape = hist.shape
        else:
            image = check_rgb(image, min_side=1)
            hist, image_shape = None, image.shape[:2]
        if self.dither:
            rgb = image if image is not None else self.histogram_.pixels.reshape(*image_shape, 3)
            return _dither(rgb, self.palette_)
        if hist is None:
            hist = colour_histogram(image, min(self.bits + 1, 8))
        return _pixel_labels(hist, self.palette_).astype(np.uint8).reshape(image_shape)

    def transform(self, image: np.ndarray) -> np.ndarray:
        """The quantized image (RGB uint8): each pixel replaced by its palette colour."""
        return self.palette_[self.predict(image)]


def _weighted_kmeans(points: np.ndarray, weights: np.ndarray, k: int, n_init: int,
                     random_state: int | None) -> np.ndarray:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    # A few thousand 3-D points: OpenMP threads only add start-up and, on a busy machine, spinning.
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, n_init=max(1, int(n_init)), random_state=random_state)
        km.fit(points, sample_weight=weights)
    return km.cluster_centers_


def _dither(image: np.ndarray, palette: np.ndarray) -> np.ndarray:
    from PIL import Image

    # Every colour already in the palette: there is no error to diffuse, and Pillow's mapping is not
    # exactly-nearest, so map exactly (a lossless palette must stay lossless with dithering on).
    codes = (image[..., 0].astype(np.int32) << 16) | (image[..., 1].astype(np.int32) << 8) | image[..., 2]
    pal_codes = (palette[:, 0].astype(np.int32) << 16) | (palette[:, 1].astype(np.int32) << 8) | palette[:, 2]
    order = np.argsort(pal_codes)
    pos = np.clip(np.searchsorted(pal_codes[order], codes), 0, len(palette) - 1)
    if np.array_equal(pal_codes[order][pos], codes):
        return order[pos].astype(np.uint8)
    pal = Image.new("P", (1, 1))
    # Pad with copies of the first colour so that Pillow never maps to an unused (black) entry.
    flat = np.concatenate([palette, np.repeat(palette[:1], 256 - len(palette), axis=0)])
    pal.putpalette(flat.ravel().tolist())
    out = Image.fromarray(image, "RGB").quantize(palette=pal, dither=Image.Dither.FLOYDSTEINBERG)
    index = np.asarray(out).copy()
    index[index >= len(palette)] = 0  # padding entries are the first colour
    return index


def _final_palette(palette: np.ndarray) -> np.ndarray:
    """Round to uint8, drop duplicates, sort by luminance (dark to light)."""
    palette = np.unique(np.clip(np.rint(palette), 0, 255).astype(np.uint8), axis=0)
    order = np.argsort(palette.astype(np.float64) @ [0.299, 0.587, 0.114], kind="stable")
    return palette[order]


# --------------------------------------------------------------------------- repeated fits (live)
@dataclass
class ColourTable:
    """The distinct colours of one image with their pixel counts, for many fits of the same image.

    K-Means on the distinct colours weighted by their counts *is* K-Means on the pixels (same
    objective, same assignments), and a photo has far fewer distinct colours than pixels (13k-72k
    for the 393k pixels of a Kodak photo), so exact Lloyd steps and exact nearest-colour labels cost
    a fraction of the per-pixel ones: label every distinct colour once, then ``lut[inverse]``.

    Attributes:
        image: the image (H, W, 3) uint8.
        colours: distinct colours (n, 3) uint8; ``counts`` their pixels (n,).
        inverse: position in ``colours`` of every pixel (H*W,), int32.
        coarse: ``(means, counts)`` of the pixels in 6-bit bins, the points the K-Means iterates on.
    """

    image: np.ndarray
    colours: np.ndarray
    counts: np.ndarray
    inverse: np.ndarray
    coarse: tuple[np.ndarray, np.ndarray]

    @functools.cached_property
    def points(self) -> np.ndarray:
        """``colours`` as float64, for distances."""
        return self.colours.astype(np.float64)

    @functools.cached_property
    def _fine(self) -> "_Weighted":
        return _Weighted.of(self.points, self.counts)

    @functools.cached_property
    def _coarse(self) -> "_Weighted":
        return _Weighted.of(*self.coarse)

    def labels_to_index(self, labels: np.ndarray) -> np.ndarray:
        """Index map (H, W) uint8 from one palette label per distinct colour."""
        return labels.astype(np.uint8)[self.inverse].reshape(self.image.shape[:2])

    def squared_error(self, palette: np.ndarray, labels: np.ndarray) -> float:
        """Sum over pixels of the squared RGB error when colour i is shown as ``palette[labels[i]]``."""
        diff = self.points - np.asarray(palette, np.float64)[labels]
        return float(np.einsum("ij,ij,i->", diff, diff, self.counts.astype(np.float64)))


def colour_table(image: np.ndarray, *, bits: int = 6) -> ColourTable:
    """Distinct colours of an RGB uint8 image with their counts (and ``bits``-per-channel bins)."""
    image = check_rgb(image, min_side=1)
    hist = colour_histogram(image, bits)
    px = hist.pixels
    code = (px[:, 0].astype(np.int32) << 16) | (px[:, 1].astype(np.int32) << 8) | px[:, 2]
    codes, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    colours = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    return ColourTable(image, colours, counts, inverse.astype(np.int32).ravel(), (hist.means, hist.counts))


def _nearest(palette: np.ndarray, points32: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Index of the nearest palette colour of every point, by float32 matrix products.

    ``|p|^2 - 2 x.p`` ranks palette colours like the squared distance. With integer colours on both
    sides (uint8 palette, distinct colours) every term is an integer below 2**24, which float32
    holds exactly: the labels are then exact (ties go to the lower index). Bin means (not integer)
    may differ from exact only between colours tied within ~0.05 squared levels.
    """
    pal = np.asarray(palette, np.float32)
    if len(pal) == 1:
        return np.zeros(len(points32), np.intp)
    minus_2p, sq = -2.0 * pal.T, (pal * pal).sum(axis=1)
    out = np.empty(len(points32), np.intp)
    for s in range(0, len(points32), chunk):
        d = points32[s: s + chunk] @ minus_2p
        d += sq
        d.argmin(axis=1, out=out[s: s + chunk])
    return out


@dataclass
class _Weighted:
    """Weighted points for Lloyd iterations: float32 copy for distances, weighted sums precomputed."""

    points32: np.ndarray
    weights: np.ndarray
    weighted: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def of(cls, points: np.ndarray, weights: np.ndarray) -> "_Weighted":
        w = np.asarray(weights, np.float64)
        return cls(np.asarray(points, np.float32), w, tuple(points[:, c] * w for c in range(3)))

    def lloyd(self, centres: np.ndarray, n_iter: int, tol: float = 1e-3) -> np.ndarray:
        """At most ``n_iter`` weighted K-Means steps; emptied centres stay where they are.

        Stops early once a step moves less than ``tol`` of the total weight to another centre.
        """
        centres = np.asarray(centres, np.float64).copy()
        n, previous = len(centres), None
        total = self.weights.sum()
        for _ in range(max(0, int(n_iter))):
            labels = _nearest(centres, self.points32)
            if previous is not None and self.weights[labels != previous].sum() <= tol * total:
                break
            counts = np.bincount(labels, weights=self.weights, minlength=n)
            used = counts > 0
            for c in range(3):
                centres[used, c] = np.bincount(labels, weights=self.weighted[c], minlength=n)[used] / counts[used]
            previous = labels
        return centres


@dataclass
class PaletteTree:
    """A fitted palette of up to 256 colours and the Ward merges that reduce it to any smaller k.

    Merging the two colours whose union adds the least squared error (Ward's criterion, the
    "pairwise nearest neighbour" codebook design) gives, for every k, a starting palette that is
    already close to a K-Means optimum: :func:`refit` only polishes it.

    Attributes:
        centres: (m, 3) float64 palette, m <= 256; ``weights`` (m,) its pixel counts.
        merges: (m - 1, 2) pairs ``(i, j)``: colour ``j`` merges into ``i``, in order.
    """

    centres: np.ndarray
    weights: np.ndarray
    merges: np.ndarray

    def cut(self, k: int) -> np.ndarray:
        """The ``min(k, m)`` weighted-mean colours left after the first ``m - k`` merges."""
        c, w = self.centres.copy(), self.weights.astype(np.float64).copy()
        alive = np.ones(len(c), bool)
        for i, j in self.merges[: max(0, len(c) - int(k))]:
            c[i] = (c[i] * w[i] + c[j] * w[j]) / (w[i] + w[j])
            w[i] += w[j]
            alive[j] = False
        return c[alive]


def palette_tree(table: ColourTable, *, size: int = 256, n_init: int = 1, refine: int = 2,
                 random_state: int | None = 0) -> PaletteTree:
    """Fit a ``size``-colour palette (K-Means as in :class:`ColourQuantizer`) and its Ward merges.

    The one-off cost per image behind :func:`refit`'s fast fits at any k <= ``size``.
    """
    if len(table.colours) <= size:  # few colours: all of them, exactly
        centres, weights = table.points.copy(), table.counts.astype(np.float64)
    else:
        means, counts = table.coarse
        centres = _weighted_kmeans(means, counts, size, n_init, random_state)
        centres = table._fine.lloyd(centres, refine)
        weights = np.bincount(_nearest(centres, table._fine.points32), weights=table._fine.weights,
                              minlength=len(centres))
        centres, weights = centres[weights > 0], weights[weights > 0]
    return PaletteTree(centres, weights, _ward_merges(centres, weights))


def _ward_merges(centres: np.ndarray, weights: np.ndarray) -> np.ndarray:
    c, w = centres.astype(np.float64).copy(), weights.astype(np.float64).copy()
    n = len(c)
    cost = ((c[:, None] - c[None]) ** 2).sum(-1) * (w[:, None] * w[None] / (w[:, None] + w[None]))
    np.fill_diagonal(cost, np.inf)
    alive = np.ones(n, bool)
    merges = np.empty((max(0, n - 1), 2), np.intp)
    for step in range(n - 1):
        i, j = divmod(int(np.argmin(cost)), n)
        if w[i] < w[j]:
            i, j = j, i
        c[i] = (c[i] * w[i] + c[j] * w[j]) / (w[i] + w[j])
        w[i] += w[j]
        alive[j] = False
        cost[j, :] = cost[:, j] = np.inf
        row = ((c - c[i]) ** 2).sum(1) * (w * w[i] / (w + w[i]))
        row[~alive] = np.inf
        row[i] = np.inf
        cost[i, :] = cost[:, i] = row
        merges[step] = i, j
    return merges


def refit(table: ColourTable, tree: PaletteTree, k: int, *, dither: bool = False,
          n_iter: int = 5, refine: int = 1) -> "Quantized":
    """Quantize the image of ``table`` to ``k`` colours, fast, starting from ``tree``'s merges.

    The widget's live path: the ``k``-colour cut of :func:`palette_tree`, then ``n_iter`` weighted
    Lloyd iterations on the 6-bit bins (one start, no restarts), ``refine`` exact Lloyd steps on
    the distinct colours, and the exact nearest palette colour for every pixel (or
    Floyd-Steinberg with ``dither``). Deterministic: the same table, tree and k give the same
    result whatever was fitted before. Its quality is close to :func:`quantize`'s but not
    identical (the tests bound the PSNR gap; ``benchmarks/bench_compress.py`` measures it).
    """
    start = time.perf_counter()
    k = int(k)
    if not 2 <= k <= 256:
        raise ValueError(f"k must be between 2 and 256, got {k}")
    if k >= len(tree.centres):  # the tree's own palette (already refined), or every colour
        palette = tree.centres
    else:
        palette = table._coarse.lloyd(tree.cut(k), n_iter)
        palette = table._fine.lloyd(palette, refine)
    q = map_to_palette(table, _final_palette(palette), dither=dither)
    q.k, q.seconds = k, time.perf_counter() - start
    return q


def map_to_palette(table: ColourTable, palette: np.ndarray, *, dither: bool = False) -> "Quantized":
    """Every pixel of ``table``'s image to its exactly nearest ``palette`` colour (or dithered)."""
    start = time.perf_counter()
    palette = np.asarray(palette, np.uint8)
    if dither:  # Pillow's error diffusion picks the colours itself
        labels, index = None, _dither(table.image, palette)
    else:
        labels = _nearest(palette, table._fine.points32)
        index = table.labels_to_index(labels)
    return Quantized(palette, index, len(palette), bool(dither), "vision_lib_live",
                     time.perf_counter() - start, colour_labels=labels)


# --------------------------------------------------------------------------- results
@dataclass
class Quantized:
    """A quantized image: ``palette[index]`` is the reconstruction."""

    palette: np.ndarray  # (n, 3) uint8, n <= k
    index: np.ndarray  # (H, W) uint8
    k: int
    dither: bool = False
    method: str = "vision_lib"
    seconds: float = 0.0
    #: :func:`refit` / :func:`map_to_palette` only: palette index of each of the image's distinct
    #: colours (exactly nearest), e.g. for :meth:`ColourTable.squared_error`
    colour_labels: np.ndarray | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        """The reconstructed RGB uint8 image."""
        return np.take(self.palette, self.index, axis=0)  # much faster than palette[index]

    def png_bytes(self, *, optimize: bool = False) -> bytes:
        """The indexed (palette) PNG, as bytes."""
        return palette_png_bytes(self.palette, self.index, optimize=optimize)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False, optimize: bool = False) -> int:
        """Write the palette PNG; refuses to replace an existing file unless ``overwrite``. Returns bytes."""
        return write_new_file(path, self.png_bytes(optimize=optimize), overwrite=overwrite)


def quantize(image: np.ndarray, k: int = 16, *, dither: bool = False, random_state: int | None = 0,
             histogram: ColourHistogram | None = None, **params) -> Quantized:
    """Reduce an RGB uint8 image to at most ``k`` colours (2..256) with K-Means.

    Args:
        image: RGB uint8 array (H, W, 3).
        k: number of palette colours.
        dither: Floyd-Steinberg dithering with the fitted palette.
        random_state: seed of the K-Means initialisation; the same seed gives the same result.
        histogram: :func:`colour_histogram` of ``image`` when already computed (widgets reuse it).
        **params: other :class:`ColourQuantizer` parameters (``bits``, ``n_init``, ``refine``).

    Returns:
        :class:`Quantized` with ``palette`` (n <= k colours), ``index`` map and ``image``.
    """
    start = time.perf_counter()
    q = ColourQuantizer(k, dither=dither, random_state=random_state, **params)
    q.fit(image, histogram=histogram)
    index = q.predict(None)
    return Quantized(q.palette_, index, int(k), bool(dither), "vision_lib", time.perf_counter() - start)


# --------------------------------------------------------------------------- PNG and files
def palette_png_bytes(palette: np.ndarray, index: np.ndarray, *, optimize: bool = False) -> bytes:
    """Encode an index map and its palette as an indexed PNG (1/2/4/8 bits per pixel, by Pillow).

    Up to 16 colours the packed rows are run-length friendly and zlib's RLE strategy is both the
    smallest and the fastest encoding (measured on photos); above that, zlib level 6, or level 9
    with ``optimize`` (0.5-2.5 % smaller, about 3x slower).
    """
    import zlib

    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(index, dtype=np.uint8), "P")
    img.putpalette(np.asarray(palette, dtype=np.uint8).ravel().tolist())  # only n entries: fewer bits
    if len(palette) <= 16:
        options = {"compress_level": 9 if optimize else 6, "compress_type": zlib.Z_RLE}
    else:
        options = {"compress_level": 9 if optimize else 6}
    buf = io.BytesIO()
    img.save(buf, "PNG", **options)
    return buf.getvalue()


def plain_png_bytes(image: np.ndarray, *, optimize: bool = False) -> bytes:
    """The image as an ordinary (truecolour) PNG, the lossless reference for sizes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(check_rgb(image, min_side=1), "RGB").save(buf, "PNG", optimize=optimize)
    return buf.getvalue()


def write_new_file(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> int:
    """Write ``data`` to ``path``; an existing file is an error unless ``overwrite``. Returns bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if overwrite else "xb"  # "x" fails atomically if the file appeared meanwhile
    try:
        with open(path, mode) as f:
            f.write(data)
    except FileExistsError:
        raise FileExistsError(f"{path} exists (pass overwrite / --overwrite to replace it)") from None
    return len(data)


def output_name(source: str | os.PathLike, k: int, dither: bool = False) -> str:
    """File name of the palette PNG made from ``source``: ``<stem>_k<k>[_dither].png``."""
    return f"{Path(source).stem}_k{k}{'_dither' if dither else ''}.png"


def output_names(sources: Sequence[str | os.PathLike], k: int, dither: bool = False) -> list[str]:
    """One distinct output name per source, for a batch written to one folder.

    ``sources`` are the photos' paths relative to what the user named (a file's own name, or its
    path under a folder given as input), so sub-folders are mirrored: ``a/001.jpg`` and ``b/001.jpg``
    give ``a/001_k16.png`` and ``b/001_k16.png``. Where two photos would still share a name
    (``face.bmp`` and ``face.webp``) the extension joins the stem (``face_bmp_k16.png``); a photo
    listed twice gets ``_2``, ``_3``.
    """
    plain = [Path(s).parent / output_name(s, k, dither) for s in sources]
    owners: dict[Path, set[str]] = {}
    for source, name in zip(sources, plain):
        owners.setdefault(name, set()).add(Path(source).as_posix())
    out, used = [], set()
    for source, name in zip(sources, plain):
        if len(owners[name]) > 1:
            source = Path(source)
            name = source.parent / output_name(f"{source.stem}_{source.suffix.lstrip('.').lower()}", k, dither)
        final, n = name, 1
        while final in used:
            n += 1
            final = name.with_name(f"{name.stem}_{n}{name.suffix}")
        used.add(final)
        out.append(final.as_posix())
    return out


# --------------------------------------------------------------------------- quality
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


def quality(original: np.ndarray, q: Quantized | np.ndarray) -> dict:
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
           **quality(original, q), "bits_per_pixel": round(8 * len(data) / q.index.size, 4)}
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
MAX_MEGAPIXELS = 50


def compress_file(path: str | os.PathLike, out_dir: str | os.PathLike, k: int = 16, *,
                  dither: bool = False, overwrite: bool = False, optimize: bool = False,
                  random_state: int | None = 0, name: str | None = None,
                  max_megapixels: float = MAX_MEGAPIXELS) -> dict:
    """Quantize one photo file into ``out_dir`` as a palette PNG and describe the result.

    Never raises for a bad input: an unreadable photo or an existing output gives a record with an
    ``error`` instead. Keys: ``path, k, psnr, ssim, bytes, original_bytes, ratio, out, seconds``.
    """
    start = time.perf_counter()
    path = Path(path)
    target = Path(out_dir) / (name or output_name(path, k, dither))
    record: dict = {"path": str(path), "k": int(k)}
    try:
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists (pass --overwrite to replace it)")
        image = load_image(path, max_pixels=int(max_megapixels * 1_000_000))
        q = quantize(image, k, dither=dither, random_state=random_state)
        data = q.png_bytes(optimize=optimize)
        write_new_file(target, data, overwrite=overwrite)
        original_bytes = path.stat().st_size
        record.update(quality(image, q))
        record.update(bytes=len(data), original_bytes=original_bytes,
                      ratio=round(original_bytes / len(data), 4), out=str(target))
    except ImageError as exc:
        record["error"] = exc.reason
    except FileExistsError as exc:
        record["error"] = str(exc)
    except OSError as exc:
        record["error"] = f"{exc.strerror or type(exc).__name__}: {exc.filename or path}"
    record["seconds"] = round(time.perf_counter() - start, 4)
    return record


def compress_files(paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike, k: int = 16, *,
                   names: Sequence[str] | None = None, **kwargs) -> Iterable[dict]:
    """Yield :func:`compress_file` records for many photos (one bad photo never stops the rest).

    ``names``: output names relative to ``out_dir`` (default :func:`output_names` of the file names,
    distinct within the batch). An output that would land on one of the inputs is refused, even
    with ``overwrite``: originals are never replaced.
    """
    import scipy.spatial  # noqa: F401 - imported up front so the first photo's seconds are its own
    import sklearn.cluster  # noqa: F401

    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else output_names([p.name for p in paths], k, kwargs.get("dither", False))
    inputs = {os.path.realpath(p) for p in paths}
    for p, name in zip(paths, names):
        if os.path.realpath(Path(out_dir) / name) in inputs:
            yield {"path": str(p), "k": int(k), "error": f"output {Path(out_dir) / name} is one of the inputs; "
                                                         "choose another --out", "seconds": 0.0}
            continue
        yield compress_file(p, out_dir, k, name=name, **kwargs)


# --------------------------------------------------------------------------- other quantizers
def pngquant_available() -> bool:
    """True when the ``pngquant`` command is on PATH."""
    return shutil.which("pngquant") is not None


def quantize_with(method: str, image: np.ndarray, k: int = 16, *, dither: bool = False,
                  random_state: int | None = 0) -> Quantized:
    """Quantize with another method, for comparisons.

    Methods: ``"vision_lib"`` (this module), ``"minibatch_kmeans"`` and ``"kmeans"`` (scikit-learn
    on all pixels, defaults, as a typical script does; KMeans with ``n_init=1``), ``"median_cut"``
    and ``"fast_octree"`` (Pillow), ``"pngquant"`` (the command line tool, when installed).
    Dithering applies to the final mapping for every method (Pillow Floyd-Steinberg; pngquant's own).
    scikit-learn runs on one thread, like this module's quantizer, so times compare like for like
    (its default OpenMP threads made MiniBatchKMeans 10x slower on a busy 2-core machine).
    """
    image = check_rgb(image, min_side=1)
    start = time.perf_counter()
    if method == "vision_lib":
        return quantize(image, k, dither=dither, random_state=random_state)
    if method in ("minibatch_kmeans", "kmeans"):
        from sklearn.cluster import KMeans, MiniBatchKMeans
        from threadpoolctl import threadpool_limits

        pixels = image.reshape(-1, 3).astype(np.float64)
        model = (MiniBatchKMeans(n_clusters=k, random_state=random_state) if method == "minibatch_kmeans"
                 else KMeans(n_clusters=k, n_init=1, random_state=random_state))
        with threadpool_limits(1):
            labels = model.fit(pixels).predict(pixels)
        palette = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
        index = _dither(image, palette) if dither else labels.astype(np.uint8).reshape(image.shape[:2])
    elif method in ("median_cut", "fast_octree"):
        from PIL import Image

        how = Image.Quantize.MEDIANCUT if method == "median_cut" else Image.Quantize.FASTOCTREE
        d = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
        out = Image.fromarray(image, "RGB").quantize(k, method=how, dither=d)
        index = np.asarray(out)
        n = int(index.max()) + 1
        palette = np.asarray(out.getpalette()[: 3 * n], dtype=np.uint8).reshape(-1, 3)
    elif method == "pngquant":
        palette, index = _pngquant(image, k, dither)
    else:
        raise ValueError(f"unknown method {method!r}; use 'vision_lib' or one of {BASELINES}")
    return Quantized(palette, index, int(k), bool(dither), method, time.perf_counter() - start)


def _pngquant(image: np.ndarray, k: int, dither: bool) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    exe = shutil.which("pngquant")
    if exe is None:
        raise FileNotFoundError("pngquant is not installed (e.g. `apt-get install pngquant`)")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        Image.fromarray(image, "RGB").save(src, compress_level=1)
        cmd = [exe, str(k), "--force", "--output", str(Path(tmp) / "out.png")]
        if not dither:
            cmd.append("--nofs")
        subprocess.run(cmd + [str(src)], check=True, capture_output=True)
        with Image.open(Path(tmp) / "out.png") as out:
            out.load()
            index = np.asarray(out).copy()
            palette = np.asarray(out.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
    return palette[: int(index.max()) + 1], index


def compare_methods(image: np.ndarray, ks: Sequence[int] = (4, 8, 16, 32, 64), *,
                    methods: Sequence[str] = ("vision_lib",) + BASELINES, dither: bool = False,
                    random_state: int | None = 0, name: str = "") -> list[dict]:
    """One row per (method, k): seconds, PSNR, SSIM, palette PNG bytes (pngquant skipped if absent)."""
    rows = []
    for method in methods:
        if method == "pngquant" and not pngquant_available():
            continue
        for k in ks:
            q = quantize_with(method, image, k, dither=dither, random_state=random_state)
            rows.append({"image": name, "method": method, "k": int(k), "seconds": round(q.seconds, 4),
                         **quality(image, q), "bytes": len(q.png_bytes())})
    return rows


def summarise(rows: Sequence[dict], by: Sequence[str] = ("method", "k"),
              values: Sequence[str] = ("psnr", "ssim", "bytes", "seconds")) -> list[dict]:
    """Mean of ``values`` per group of rows (e.g. over images), groups in order of appearance."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r)
    out = []
    for key, members in groups.items():
        row = dict(zip(by, key))
        row["n"] = len(members)
        for v in values:
            xs = [m[v] for m in members if v in m and np.isfinite(m[v])]
            row[v] = round(float(np.mean(xs)), 4) if xs else float("nan")
        out.append(row)
    return out


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A fixed-width text table of dict rows (for notebooks and logs)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


# --------------------------------------------------------------------------- example images
def example_images(data_dir: str | os.PathLike | None = None, *, limit: int | None = None) -> dict[str, np.ndarray]:
    """Photos for the notebook: ``<data_dir>/kodak/`` when present, else images bundled with
    scikit-image / scikit-learn (so the notebook runs anywhere). Keys are :func:`example_names` of
    :func:`example_paths` (same order), values RGB uint8; unreadable files are left out.
    """
    folder = _kodak_folder(data_dir)
    if folder is None:
        return bundled_images(limit=limit)
    from itertools import islice

    from .io import iter_loaded, list_images

    # One decoding pass, stopping at `limit` readable photos (the same ones example_paths lists).
    loaded = list(islice(iter_loaded(list_images(folder, recursive=False)), limit))
    return dict(zip(example_names([p for p, _ in loaded]), (img for _, img in loaded)))


def example_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """A distinct short name per file: its stem, or its whole name when two files share a stem
    (``a.png`` and ``a.jpg`` are different photos)."""
    stems = [Path(p).stem for p in paths]
    return [Path(p).name if stems.count(s) > 1 else s for p, s in zip(paths, stems)]


def example_paths(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Files of :func:`example_images` (bundled images are written to a temporary folder once).
    Files that cannot be read are left out, as :func:`example_images` leaves them out."""
    from .io import iter_loaded, list_images

    folder = _kodak_folder(data_dir)
    if folder is not None:
        return [p for p, _ in iter_loaded(list_images(folder, recursive=False))]
    tmp = Path(tempfile.gettempdir()) / "vision_lib_bundled_images"
    tmp.mkdir(exist_ok=True)
    paths = []
    for name, img in bundled_images().items():
        p = tmp / f"{name}.png"
        if not p.exists():
            from PIL import Image

            Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def _kodak_folder(data_dir) -> Path | None:
    from .config import data_dir as default_data_dir

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    from .io import list_images

    kodak = root / "kodak"
    if kodak.is_dir() and list_images(kodak, recursive=False):  # any format, not only the PNGs
        return kodak
    return root if root.is_dir() and any(root.glob("*.png")) else None


def bundled_images(*, limit: int | None = None) -> dict[str, np.ndarray]:
    """Colour photos that ship with scikit-image and scikit-learn (no download)."""
    out: dict[str, np.ndarray] = {}
    from skimage import data

    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        try:
            out[name] = np.ascontiguousarray(getattr(data, name)()[..., :3], dtype=np.uint8)
        except Exception:  # pragma: no cover - a data file missing from an unusual install
            continue
    try:
        from sklearn.datasets import load_sample_images

        for fname, img in zip(load_sample_images().filenames, load_sample_images().images):
            out[Path(fname).stem] = np.ascontiguousarray(img, dtype=np.uint8)
    except Exception:  # pragma: no cover
        pass
    names = list(out)[:limit] if limit else list(out)
    return {n: out[n] for n in names}


# --------------------------------------------------------------------------- plots
def sample_pixels(image: np.ndarray, n: int = 2000, random_state: int | None = 0) -> np.ndarray:
    """``n`` random pixels (n, 3) of an image, without touching global random state."""
    pixels = image.reshape(-1, 3)
    rng = np.random.default_rng(random_state)
    return pixels[rng.choice(len(pixels), size=min(n, len(pixels)), replace=False)]


def plot_colour_space(image: np.ndarray, palette: np.ndarray | None = None, ax=None, *, n: int = 2000,
                      random_state: int | None = 0, title: str | None = None):
    """3-D RGB scatter of sampled pixels (in their own colours) and the palette (large, outlined)."""
    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.figure(figsize=(5, 5)).add_subplot(projection="3d")
    pts = sample_pixels(image, n, random_state)
    ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], c=pts / 255.0, s=3, alpha=0.35, depthshade=False)
    if palette is not None:
        pal = np.asarray(palette)
        ax.scatter(pal[:, 0], pal[:, 1], pal[:, 2], c=pal / 255.0, s=90, edgecolors="black",
                   linewidths=1.0, depthshade=False, alpha=1.0)
    ax.set(xlim=(0, 255), ylim=(0, 255), zlim=(0, 255), xlabel="R", ylabel="G", zlabel="B")
    if title:
        ax.set_title(title)
    return ax


def plot_side_by_side(image: np.ndarray, q: Quantized, axes=None, *, report: dict | None = None):
    """Original and quantized image next to each other, with PSNR/SSIM/bytes in the title."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4))
    report = report or {**quality(image, q), "bytes": len(q.png_bytes())}
    axes[0].imshow(image)
    axes[0].set_title("original")
    axes[1].imshow(q.image)
    axes[1].set_title(f"k={q.k}{' dithered' if q.dither else ''}: {report['psnr']:.2f} dB, "
                      f"SSIM {report['ssim']:.3f}, {report['bytes'] / 1024:.0f} KiB")
    for ax in axes:
        ax.axis("off")
    return axes


def plot_rate_quality(rows: Sequence[dict], axes=None, *, x: str = "k"):
    """PSNR and bytes against k (one line per method) from :func:`compare_methods`-style rows."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        sub = sorted((r for r in rows if r["method"] == m), key=lambda r: r[x])
        xs = [r[x] for r in sub]
        axes[0].plot(xs, [r["psnr"] for r in sub], marker="o", label=m)
        axes[1].plot(xs, [r["bytes"] / 1024 for r in sub], marker="o", label=m)
    for ax, ylabel in zip(axes, ("PSNR (dB)", "palette PNG (KiB)")):
        ax.set_xscale("log", base=2)
        ax.set(xlabel=x, ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return axes


def to_jsonl(record: dict) -> str:
    """One JSON line (floats like inf become strings so every line parses)."""
    return json.dumps({k: (str(v) if isinstance(v, float) and not np.isfinite(v) else v)
                       for k, v in record.items()})


#: The public names of this module.
__all__ = ["BASELINES", "ColourHistogram", "colour_histogram", "ColourQuantizer", "ColourTable",
           "colour_table", "PaletteTree", "palette_tree", "refit", "map_to_palette", "Quantized", "quantize",
           "palette_png_bytes", "plain_png_bytes", "write_new_file", "output_name", "output_names", "psnr",
           "ssim", "SSIM", "quality", "size_report", "MAX_MEGAPIXELS", "compress_file", "compress_files",
           "pngquant_available", "quantize_with", "compare_methods", "summarise", "format_table",
           "example_images", "example_names", "example_paths", "bundled_images", "sample_pixels",
           "plot_colour_space", "plot_side_by_side", "plot_rate_quality", "to_jsonl"]
