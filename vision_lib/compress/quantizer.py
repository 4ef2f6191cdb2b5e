"""The quantizer: exact assignment to a palette, :class:`ColourQuantizer` (weighted K-Means on the
histogram, then Lloyd steps), repeated fits for live widgets (:class:`ColourTable`, :class:`PaletteTree`)
and the :class:`Quantized` result.

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator

from ..io import check_rgb
from .bins import ColourBins, colour_bins
from .png import palette_png_bytes, write_new_file

__all__ = ["ColourQuantizer", "quantize", "ColourTable", "colour_table", "PaletteTree", "refit", "palette_tree", "Quantized", "map_to_palette"]


def _tree(palette: np.ndarray):
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(palette, dtype=np.float64))


def _assign(hist: ColourBins, palette: np.ndarray, max_candidates: int = 4):
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


def _pixel_labels(hist: ColourBins, palette: np.ndarray) -> np.ndarray:
    bin_label, _, pixel_mask, pixel_label = _assign(hist, palette)
    labels = bin_label[hist.inverse]
    labels[pixel_mask] = pixel_label
    return labels


def _lloyd_step(hist: ColourBins, palette: np.ndarray) -> tuple[np.ndarray, float]:
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
        histogram_: the :class:`ColourBins` of the fitted image.
    """

    def __init__(self, n_colors: int = 16, *, dither: bool = False, bits: int = 6, n_init: int = 3,
                 refine: int = 2, random_state: int | None = 0):
        self.n_colors = n_colors
        self.dither = dither
        self.bits = bits
        self.n_init = n_init
        self.refine = refine
        self.random_state = random_state

    def fit(self, image: np.ndarray, y=None, *, histogram: ColourBins | None = None) -> "ColourQuantizer":
        """Learn the palette of ``image`` (pass a precomputed ``histogram`` to skip binning)."""
        k = int(self.n_colors)
        if not 2 <= k <= 256:
            raise ValueError(f"n_colors must be between 2 and 256, got {self.n_colors}")
        # Pixels are assigned at one bit finer than the K-Means bins: far fewer boundary cases.
        hist = histogram if histogram is not None else colour_bins(image, min(self.bits + 1, 8))
        means, counts = hist.coarsen(self.bits)
        if len(counts) <= k and hist.bits < 8:
            hist = colour_bins(hist.pixels.reshape(*hist.shape, 3), 8)
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
            hist = colour_bins(image, min(self.bits + 1, 8))
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
    hist = colour_bins(image, bits)
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
             histogram: ColourBins | None = None, **params) -> Quantized:
    """Reduce an RGB uint8 image to at most ``k`` colours (2..256) with K-Means.

    Args:
        image: RGB uint8 array (H, W, 3).
        k: number of palette colours.
        dither: Floyd-Steinberg dithering with the fitted palette.
        random_state: seed of the K-Means initialisation; the same seed gives the same result.
        histogram: :func:`colour_bins` of ``image`` when already computed (widgets reuse it).
        **params: other :class:`ColourQuantizer` parameters (``bits``, ``n_init``, ``refine``).

    Returns:
        :class:`Quantized` with ``palette`` (n <= k colours), ``index`` map and ``image``.
    """
    start = time.perf_counter()
    q = ColourQuantizer(k, dither=dither, random_state=random_state, **params)
    q.fit(image, histogram=histogram)
    index = q.predict(None)
    return Quantized(q.palette_, index, int(k), bool(dither), "vision_lib", time.perf_counter() - start)
