"""Hand-made features: the wavelet recipe for face crops, and colour histograms of body regions.

Plain functions over RGB ``uint8`` arrays, plus scikit-learn transformers that wrap them so they
can sit in a :class:`~sklearn.pipeline.Pipeline` (``transform`` takes a list of images, because
crops differ in size).

* **Wavelet recipe** (the classic face classifier): the crop resized to 32x32x3 (3072 values),
  stacked with a 32x32 "wavelet image" (1024 values) that keeps only the detail coefficients of a
  2-D Haar decomposition, i.e. the edges: 4096 values in all.
* **Region colour histograms**: a 3-D colour histogram (``bins`` per channel) of each named region
  of a person crop, normalised to sum 1, optionally restricted to a foreground mask. Used here and
  by the clothing clustering (shirt vs shorts colours).
* **Feature tables** (:func:`folder_features`, ``vision-lib features``): any of these, face
  descriptors (any of :data:`vision_lib.models.DESCRIPTORS`, default
  :data:`~vision_lib.models.DEFAULT_DESCRIPTOR`) or MobileNetV2 features for every photo of a
  folder, with where each row came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .models.transform import ImageTransformer
from .io import check_rgb

#: Named regions of a person crop as ``(top, bottom)`` fractions of its height, full width.
#: ``upper`` is the top half (head and shirt of a standing player), ``lower`` the bottom half
#: (shorts and legs); ``full`` is the whole crop. Any ``(top, bottom)`` pair may be passed instead.
REGIONS: dict[str, tuple[float, float]] = {
    "full": (0.0, 1.0),
    "upper": (0.0, 0.5),
    "lower": (0.5, 1.0),
}

#: Colour spaces for histograms and their per-channel value ranges (OpenCV's 8-bit conventions:
#: hue is 0..179).
COLOUR_SPACES: dict[str, tuple[tuple[int, int], ...]] = {
    "hsv": ((0, 180), (0, 256), (0, 256)),
    "rgb": ((0, 256), (0, 256), (0, 256)),
    "lab": ((0, 256), (0, 256), (0, 256)),
}


# --------------------------------------------------------------------------- wavelet recipe
def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    # INTER_AREA when shrinking (no aliasing), bilinear when enlarging a small crop.
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def wavelet_image(image_rgb: np.ndarray, wavelet: str = "haar", level: int = 5, size: int = 32) -> np.ndarray:
    """The detail ("edges") image of the wavelet recipe, ``uint8`` of shape ``(size, size)``.

    Grey, scaled to [0, 1], ``pywt.wavedec2(grey, wavelet, level)``, approximation coefficients
    set to zero, ``waverec2``, times 255, clipped to 0..255 and resized to ``size`` x ``size``.

    ``level`` is capped at the deepest level the crop allows (tiny crops), so pywt's boundary
    warning never fires. Negative details are clipped to 0: the recipe's bare ``uint8`` cast would
    wrap them to bright values, which NumPy leaves undefined (platform dependent).
    """
    import cv2
    import pywt

    grey = cv2.cvtColor(check_rgb(image_rgb), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    max_level = pywt.dwt_max_level(min(grey.shape), pywt.Wavelet(wavelet).dec_len)
    coeffs = pywt.wavedec2(grey, wavelet, level=max(1, min(level, max_level)))
    coeffs = list(coeffs)
    coeffs[0] = np.zeros_like(coeffs[0])
    detail = pywt.waverec2(coeffs, wavelet)[: grey.shape[0], : grey.shape[1]]
    detail = np.clip(detail * 255.0, 0, 255).astype(np.uint8)
    return _resize(detail, size)


def wavelet_features(image_rgb: np.ndarray, size: int = 32, wavelet: str = "haar", level: int = 5) -> np.ndarray:
    """The classic 4096-value face vector: resized crop (size*size*3) then wavelet image (size*size).

    Values are the raw 0..255 pixel values as ``float32`` (scale them in the model's pipeline).
    """
    image_rgb = check_rgb(image_rgb)
    small = _resize(image_rgb, size).reshape(-1)
    edges = wavelet_image(image_rgb, wavelet=wavelet, level=level, size=size).reshape(-1)
    return np.concatenate([small, edges]).astype(np.float32)


class WaveletFeatures(ImageTransformer):
    """scikit-learn transformer: list of RGB crops -> ``(n, size*size*4)`` wavelet-recipe vectors.

    Stateless (``fit`` learns nothing), so it is safe anywhere in a Pipeline.
    """

    def __init__(self, size: int = 32, wavelet: str = "haar", level: int = 5):
        self.size = size
        self.wavelet = wavelet
        self.level = level

    @property
    def _n_features_out(self) -> int:
        return self.size * self.size * 4

    def transform(self, X: Sequence[np.ndarray]) -> np.ndarray:
        if not len(X):
            return np.zeros((0, self._n_features_out), dtype=np.float32)
        return np.stack([wavelet_features(im, self.size, self.wavelet, self.level) for im in X])


# --------------------------------------------------------------------------- colour histograms
def _region_fractions(region: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(region, str):
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; choose from {sorted(REGIONS)} or pass (top, bottom)")
        return REGIONS[region]
    top, bottom = (float(v) for v in region)
    if not 0.0 <= top < bottom <= 1.0:
        raise ValueError(f"region {region!r} must be (top, bottom) fractions with 0 <= top < bottom <= 1")
    return top, bottom


def _region_name(region: str | tuple[float, float]) -> str:
    return region if isinstance(region, str) else f"{region[0]:g}-{region[1]:g}"


def region_boxes(shape: tuple[int, ...], regions: Iterable[str | tuple[float, float]] = ("upper", "lower")
                 ) -> dict[str, tuple[int, int, int, int]]:
    """``(x, y, w, h)`` of each region in an image of ``shape``; see :data:`REGIONS`.

    Regions are horizontal bands over the full width (a person crop is roughly the body's box);
    a ``(top, bottom)`` pair is named ``"top-bottom"`` in the result.
    """
    h, w = int(shape[0]), int(shape[1])
    boxes = {}
    for region in regions:
        top, bottom = _region_fractions(region)
        y0, y1 = int(round(top * h)), int(round(bottom * h))
        boxes[_region_name(region)] = (0, y0, w, max(1, y1 - y0))
    return boxes


def _convert(image_rgb: np.ndarray, space: str) -> np.ndarray:
    import cv2

    if space not in COLOUR_SPACES:
        raise ValueError(f"unknown colour space {space!r}; choose from {sorted(COLOUR_SPACES)}")
    if space == "rgb":
        return image_rgb
    code = {"hsv": cv2.COLOR_RGB2HSV, "lab": cv2.COLOR_RGB2LAB}[space]
    return cv2.cvtColor(image_rgb, code)


def colour_histogram(image_rgb: np.ndarray, bins: int = 8, space: str = "hsv",
                     mask: np.ndarray | None = None) -> np.ndarray:
    """3-D colour histogram (``bins`` per channel, flattened to ``bins**3``) normalised to sum 1.

    ``mask`` (same height and width, non-zero = keep) restricts it to foreground pixels; an empty
    region or mask gives all zeros.
    """
    import cv2

    image = _convert(check_rgb(image_rgb, min_side=1), space)  # a 1-pixel-high region still has colours
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape[:2] != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape[:2]} differs from image shape {image.shape[:2]}")
        mask = (mask > 0).astype(np.uint8)
    ranges = [v for r in COLOUR_SPACES[space] for v in r]
    hist = cv2.calcHist([image], [0, 1, 2], mask, [bins] * 3, ranges).reshape(-1)
    total = hist.sum()
    return (hist / total if total > 0 else hist).astype(np.float32)


def region_histograms(image_rgb: np.ndarray, regions: Iterable[str | tuple[float, float]] = ("upper", "lower"),
                      bins: int = 8, space: str = "hsv", mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Normalised colour histogram of each region of a person crop: ``{region: (bins**3,)}``.

    Args:
        image_rgb: RGB uint8 crop of one person.
        regions: names from :data:`REGIONS` or ``(top, bottom)`` height fractions.
        bins: bins per colour channel.
        space: ``"hsv"`` (default; hue is robust to shading), ``"rgb"`` or ``"lab"``.
        mask: optional foreground mask of the whole crop (e.g. from background subtraction).
    """
    image_rgb = check_rgb(image_rgb)
    out = {}
    for name, (x, y, w, h) in region_boxes(image_rgb.shape, regions).items():
        sub_mask = None if mask is None else np.asarray(mask)[y:y + h, x:x + w]
        out[name] = colour_histogram(image_rgb[y:y + h, x:x + w], bins, space, sub_mask)
    return out


def histogram_correlation(h1: np.ndarray, h2: np.ndarray) -> float:
    """Pearson correlation of two histograms (OpenCV ``HISTCMP_CORREL``): 1 = same shape."""
    import cv2

    a, b = np.asarray(h1, np.float32).reshape(-1), np.asarray(h2, np.float32).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"histograms differ in size: {a.size} vs {b.size}")
    return float(cv2.compareHist(a, b, cv2.HISTCMP_CORREL))


class ColourHistograms(ImageTransformer):
    """scikit-learn transformer: list of person crops -> concatenated region histograms.

    Each item of ``X`` is an RGB crop, or an ``(image, mask)`` pair to count only foreground
    pixels. Output shape ``(n, len(regions) * bins**3)``, regions in the given order.
    """

    def __init__(self, regions: Sequence[str | tuple[float, float]] = ("upper", "lower"), bins: int = 8,
                 space: str = "hsv"):
        self.regions = regions
        self.bins = bins
        self.space = space

    @property
    def _n_features_out(self) -> int:
        return len(self.regions) * self.bins ** 3

    def transform(self, X) -> np.ndarray:
        rows = []
        for item in X:
            # A pair may come as a list too (e.g. after a round trip through JSON or zip(*...)).
            pair = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], np.ndarray)
            image, mask = item if pair else (item, None)
            hists = region_histograms(image, self.regions, self.bins, self.space, mask)
            rows.append(np.concatenate(list(hists.values())))
        if not rows:
            return np.zeros((0, self._n_features_out), dtype=np.float32)
        return np.stack(rows)


def histograms_by_region(hists: Sequence[Mapping[str, np.ndarray]], region: str) -> np.ndarray:
    """Stack one region's histograms from many :func:`region_histograms` results: ``(n, bins**3)``."""
    return np.stack([h[region] for h in hists])


# --------------------------------------------------------------------------- comparing feature spaces
@dataclass
class FaceSamples:
    """The largest face of each photo that has one: crop, face descriptor, label and source."""

    paths: list[Path]
    labels: list[str | None]
    crops: list[np.ndarray]
    descriptors: np.ndarray | None
    boxes: list[tuple[int, int, int, int]]

    def __len__(self) -> int:
        return len(self.paths)


def largest_face_crops(results, labels: Sequence[str | None] | None = None, margin: float = 0.2) -> FaceSamples:
    """Crop the largest face of every photo of a :class:`~vision_lib.tables.FaceTable` (its rows with
    ``face_index`` 0; ``labels`` default to the table's) or of :func:`vision_lib.faces.detect_paths` results.

    Photos without a face or that failed to load are left out (``len`` tells how many remain);
    ``descriptors`` holds the descriptor rows when there are some (a descriptor table, or detection
    asked for them).
    """
    from .faces import crop
    from .io import ImageError, load_image

    if hasattr(results, "face_index"):  # a face table: one record per photo, its largest face
        table = results
        first = [i for i in range(len(table)) if table.face_index[i] == 0]
        labels = [table.labels[i] for i in first] if labels is None else list(labels)
        paths = table.paths
        results = [_Largest(paths[i], [table.face(i)], table.X[i:i + 1] if table.kind == "descriptor" else None)
                   for i in first]
    labels = list(labels) if labels is not None else [None] * len(results)
    keep = FaceSamples([], [], [], None, [])
    desc = []
    for res, label in zip(results, labels):
        if res.error or not res.faces:
            continue
        try:
            image = load_image(res.path)
        except ImageError:
            continue
        keep.paths.append(Path(res.path))
        keep.labels.append(label)
        keep.crops.append(crop(image, res.faces[0], margin))
        keep.boxes.append(tuple(res.faces[0].box))
        if res.descriptors is not None:
            desc.append(res.descriptors[0])
    if desc and len(desc) == len(keep.paths):
        keep.descriptors = np.stack(desc).astype(np.float32)
    return keep


@dataclass
class _Largest:
    """A face table row as the photo record :func:`largest_face_crops` reads."""

    path: Path
    faces: list
    descriptors: np.ndarray | None
    error: str | None = None


#: The older name of :func:`largest_face_crops` (notebook 02).
largest_faces = largest_face_crops


def project_2d(X: np.ndarray, method: str = "pca", random_state: int | None = 0) -> np.ndarray:
    """2-D view of feature rows for plotting: standardised, then PCA, or t-SNE on 50 PCA components."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    # One thread: for a few hundred points OpenMP/BLAS threads only add spin-waiting, and on a busy
    # 2-core machine t-SNE ran 30x slower with two threads than with one (90 s vs 3 s, measured).
    with threadpool_limits(1):
        X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
        if method == "pca":
            return PCA(2, random_state=random_state).fit_transform(X)
        reduced = PCA(min(50, *X.shape), random_state=random_state).fit_transform(X)
        perplexity = float(min(30, max(2, (len(X) - 1) // 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=random_state).fit_transform(reduced)


def neighbour_accuracy(X: np.ndarray, labels: Sequence, metric: str = "euclidean", standardise: bool = False) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy: how often a row's closest other row shares its label.

    A model-free measure of how well a feature space groups people (1.0 = every face's nearest
    neighbour is the same person).
    """
    from sklearn.metrics import pairwise_distances
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    if standardise:
        X = StandardScaler().fit_transform(X)
    labels = np.asarray(labels)
    if len(X) < 2:
        raise ValueError("need at least two rows")
    D = pairwise_distances(X, metric=metric)
    np.fill_diagonal(D, np.inf)
    return float(np.mean(labels[D.argmin(axis=1)] == labels))


#: The public names of this module.
__all__ = ["REGIONS", "COLOUR_SPACES", "wavelet_image", "wavelet_features", "WaveletFeatures",
           "region_boxes", "colour_histogram", "region_histograms", "histogram_correlation",
           "ColourHistograms", "histograms_by_region", "FaceSamples", "largest_face_crops", "largest_faces", "project_2d",
           "neighbour_accuracy"]
