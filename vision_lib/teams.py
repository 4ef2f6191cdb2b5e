"""Clothing clustering: split crops of players into teams (or players) by what they wear.

Two methods behind :class:`TeamClustering`:

* ``"colours"`` (default), built for small broadcast crops where the court fills most pixels:

  1. **Court model, learned from the crops themselves.** A person crop is framed on the person,
     so its border is mostly court and its centre mostly player. Colours (Lab, 16 levels per
     channel) that are at least ``court_ratio`` times more frequent in the crops' centres than on
     their borders are player; the rest (court, its lines, its shadows) is masked out. An image
     of the empty court (``court=``) can be added to the border statistics.
  2. **Clothing colours.** A palette of ``palette_size`` colours is learned (K-Means) from the
     player pixels of all crops; each crop becomes the share of its player pixels near each
     palette colour (soft assignment, then square root: Hellinger geometry). Orientation plays no
     part, so upside-down crops need nothing special.
  3. **Ward agglomerative clustering** into ``groups``.

* ``"recipe"``, the known recipe, kept for comparison: MobileNetV2 ImageNet features plus few-bin
  HSV histograms of the upper and lower halves; per crop, the region whose histogram correlates
  less with that region's average histogram over all crops is the more distinctive one and gets
  the crop's vote; the winning region's histograms join the (standardised) deep features;
  agglomerative clustering into ``groups``.

Checks: :func:`accuracy` against labels (best matching of groups to labels) and
:func:`frame_pair_agreement`, a label-free check for folders where every frame contributes one
crop of each player (the two crops of a frame should land in different groups).
"""
from __future__ import annotations

import csv
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from .io import CSV_TEXT
from .names import TEAM_METHODS

_LEVELS = 16  # Lab quantisation for the court model (16**3 colour cells)


# --------------------------------------------------------------------------- court / player masks
def _lab(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2LAB)


def _cells(image: np.ndarray) -> np.ndarray:
    q = _lab(image).astype(np.int32) // (256 // _LEVELS)
    return (q[..., 0] * _LEVELS + q[..., 1]) * _LEVELS + q[..., 2]


def _border_and_centre(shape: tuple[int, int], border: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of a crop's frame (``border`` of the shorter side) and its central ellipse."""
    h, w = shape
    b = max(2, int(round(min(h, w) * border)))
    frame = np.zeros((h, w), bool)
    frame[:b] = frame[-b:] = True
    frame[:, :b] = frame[:, -b:] = True
    yy, xx = np.mgrid[:h, :w]
    centre = ((yy - h / 2) / (0.3 * h)) ** 2 + ((xx - w / 2) / (0.25 * w)) ** 2 <= 1.0
    return frame, centre


@dataclass
class CourtModel:
    """Per Lab colour cell, how much more often it appears in crop centres than on crop borders."""

    ratio: np.ndarray
    threshold: float = 2.0

    def mask(self, image: np.ndarray) -> np.ndarray:
        """Player (True) vs court (False) pixels of one crop, cleaned of isolated pixels."""
        import cv2

        m = (self.ratio[_cells(image)] > self.threshold).astype(np.uint8)
        return cv2.medianBlur(m, 3).astype(bool)


def fit_court_model(images: Sequence[np.ndarray], court: np.ndarray | None = None,
                    threshold: float = 2.0) -> CourtModel:
    """Learn which colours are court from the crops' borders vs centres (plus ``court`` pixels)."""
    n = _LEVELS ** 3
    border_hist, centre_hist = np.zeros(n), np.zeros(n)
    for im in images:
        cells = _cells(im)
        frame, centre = _border_and_centre(cells.shape)
        border_hist += np.bincount(cells[frame], minlength=n)
        centre_hist += np.bincount(cells[centre], minlength=n)
    border_hist /= max(1.0, border_hist.sum())
    if court is not None:
        court_hist = np.bincount(_cells(court).ravel(), minlength=n).astype(float)
        border_hist = (border_hist + court_hist / court_hist.sum()) / 2
    centre_hist /= max(1.0, centre_hist.sum())
    eps = 1e-4  # colours seen in neither place stay neutral (ratio 1: court)
    return CourtModel((centre_hist + eps) / (border_hist + eps), threshold)


def player_masks(images: Sequence[np.ndarray], court: np.ndarray | None = None,
                 threshold: float = 2.0) -> list[np.ndarray]:
    """Player masks for a batch of crops with a court model learned from the same batch."""
    model = fit_court_model(images, court, threshold)
    return [model.mask(im) for im in images]


# --------------------------------------------------------------------------- colour features
class ClothingColours:
    """Soft histogram of player pixels over a palette learned (K-Means, Lab) from all crops."""

    def __init__(self, palette_size: int = 16, random_state: int | None = 0, sample: int = 10_000):
        self.palette_size = palette_size
        self.random_state = random_state
        self.sample = sample

    def fit(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> "ClothingColours":
        from sklearn.cluster import KMeans

        pix = np.concatenate([_lab(im)[m] for im, m in zip(images, masks)]).astype(np.float64)
        if len(pix) < self.palette_size:
            raise ValueError("too few player pixels to learn a palette (are the crops empty?)")
        rng = np.random.default_rng(self.random_state)
        if len(pix) > self.sample:
            pix = pix[rng.choice(len(pix), self.sample, replace=False)]
        km = KMeans(self.palette_size, n_init=4, random_state=self.random_state).fit(pix)
        self.palette_ = km.cluster_centers_
        d = np.sqrt(((self.palette_[:, None] - self.palette_[None]) ** 2).sum(-1))
        # Soft assignment width: half the typical distance between palette colours.
        self.sigma_ = float(np.median(d[np.triu_indices(len(d), 1)]) / 2)
        return self

    def transform(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
        rows = []
        for im, m in zip(images, masks):
            pix = _lab(im)[m].astype(np.float64)
            if len(pix) < 20:  # (almost) nothing left after masking: fall back to the whole crop
                pix = _lab(im).reshape(-1, 3).astype(np.float64)
            d2 = ((pix[:, None, :] - self.palette_[None]) ** 2).sum(-1)
            w = np.exp(-(d2 - d2.min(1, keepdims=True)) / (2 * self.sigma_ ** 2))
            w /= w.sum(1, keepdims=True)
            rows.append(np.sqrt(w.mean(0)))
        return np.array(rows)


# --------------------------------------------------------------------------- the known recipe
def region_vote(images: Sequence[np.ndarray], masks: Sequence[np.ndarray] | None = None, bins: int = 4,
                space: str = "hsv") -> tuple[str, dict[str, int], dict[str, np.ndarray]]:
    """Which body region (``upper``/``lower``) tells the crops apart best, by a per-crop vote.

    Each crop votes for the region whose histogram correlates *less* with that region's average
    histogram over all crops (the region where it differs most from the crowd). Returns
    ``(winner, votes, histograms)`` with ``histograms[region]`` of shape ``(n, bins**3)``.
    """
    from .features import histogram_correlation, region_histograms

    regions = ("upper", "lower")
    per = [region_histograms(im, regions, bins=bins, space=space, mask=None if masks is None else masks[i])
           for i, im in enumerate(images)]
    hists = {r: np.stack([p[r] for p in per]) for r in regions}
    mean = {r: hists[r].mean(0) for r in regions}
    votes = dict.fromkeys(regions, 0)
    for i in range(len(images)):
        corr = {r: histogram_correlation(hists[r][i], mean[r]) for r in regions}
        votes[min(regions, key=lambda r: corr[r])] += 1
    return max(regions, key=lambda r: votes[r]), votes, hists


def _standardise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, np.float64)
    sd = X.std(0)
    return (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)


# --------------------------------------------------------------------------- estimator
class TeamClustering(ClusterMixin, BaseEstimator):
    """Group player crops (RGB arrays) by clothing; see the module docstring for the methods.

    Args:
        groups: number of teams / players.
        method: ``"colours"`` (default) or ``"recipe"``.
        palette_size: colours in the learned palette (``colours``).
        court_ratio: a colour is player when it is this many times more frequent in crop centres
            than on borders (``colours``).
        court: optional RGB image of the court, added to the court statistics.
        bins: histogram bins per channel (``recipe``).
        random_state: seed for the palette's K-Means.

    Attributes:
        labels_, masks_ (player masks, ``colours``; all True when ``court_masked_`` is False because
        the mask kept under 5% of the pixels on average), features_ (what was clustered),
        cluster_seconds_ (time of the clustering step alone), vote_ (``recipe``: winner and votes).
    """

    def __init__(self, groups: int = 2, method: str = "colours", palette_size: int = 16,
                 court_ratio: float = 2.0, court: np.ndarray | None = None, bins: int = 4,
                 random_state: int | None = 0):
        self.groups = groups
        self.method = method
        self.palette_size = palette_size
        self.court_ratio = court_ratio
        self.court = court
        self.bins = bins
        self.random_state = random_state

    def fit(self, X: Sequence[np.ndarray], y=None, deep_features: np.ndarray | None = None) -> "TeamClustering":
        """``X``: list of RGB crops. ``deep_features`` (recipe): precomputed MobileNetV2 rows."""
        from scipy.cluster.hierarchy import fcluster, linkage

        images = list(X)
        if len(images) < self.groups:
            raise ValueError(f"need at least {self.groups} crops to make {self.groups} groups, got {len(images)}: "
                             "give more crops, or ask for fewer groups (groups=)")
        if self.method == "colours":
            self.masks_ = player_masks(images, self.court, self.court_ratio)
            # Crops that are not court-dominated (tight crops, plain backgrounds) leave almost
            # nothing to tell apart: then describe the whole crops instead of a sliver.
            self.court_masked_ = float(np.mean([m.mean() for m in self.masks_])) >= 0.05
            if not self.court_masked_:
                self.masks_ = [np.ones(im.shape[:2], bool) for im in images]
            colours = ClothingColours(self.palette_size, self.random_state).fit(images, self.masks_)
            self.features_ = colours.transform(images, self.masks_)
            self.palette_ = colours.palette_
        elif self.method == "recipe":
            if deep_features is None:
                from .embeddings import image_features

                deep_features = image_features(images, progress=False)
            winner, votes, hists = region_vote(images, bins=self.bins)
            self.vote_ = {"winner": winner, "votes": votes}
            self.masks_ = None
            # Both blocks standardised, the histogram block weighted like the deep block.
            deep = _standardise(deep_features) / np.sqrt(deep_features.shape[1])
            hist = _standardise(hists[winner]) / np.sqrt(hists[winner].shape[1])
            self.features_ = np.hstack([deep, hist])
        else:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(TEAM_METHODS)}")
        # SciPy's Ward linkage directly: the same tree as scikit-learn's AgglomerativeClustering,
        # without its per-call overhead (about 20 ms), so the step stays well under 50 ms.
        start = time.perf_counter()
        tree = linkage(self.features_, method="ward")
        self.labels_ = fcluster(tree, t=self.groups, criterion="maxclust").astype(int) - 1
        self.cluster_seconds_ = time.perf_counter() - start
        return self


# --------------------------------------------------------------------------- checks
def accuracy(truth: Sequence, labels: Sequence[int]) -> float:
    """Share of labelled crops in the group matched to their label (best one-to-one matching).

    Items whose truth is ``None`` or empty are left out.
    """
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    keep = [i for i, t in enumerate(truth) if t not in (None, "")]
    if not keep:
        raise ValueError("no labelled items")
    t = [str(truth[i]) for i in keep]
    c = contingency_matrix(t, np.asarray(labels)[keep])
    rows, cols = linear_sum_assignment(-c)
    return float(c[rows, cols].sum() / len(keep))


def frame_of(source: str) -> str:
    """Frame number of a crop named ``<frame>_<...>.jpg``."""
    return Path(source).name.split("_")[0]


def frame_pair_agreement(sources: Sequence[str], labels: Sequence[int]) -> dict:
    """Label-free check: share of frames with exactly two crops whose crops are in different groups.

    Valid when each frame holds one crop of each of two players (as in ``players/``); frames with
    another number of crops are counted in ``frames_skipped``.
    """
    by_frame: dict[str, list[int]] = defaultdict(list)
    for s, lab in zip(sources, labels):
        by_frame[frame_of(s)].append(int(lab))
    pairs = [v for v in by_frame.values() if len(v) == 2]
    ok = sum(v[0] != v[1] for v in pairs)
    return {"frames": len(pairs), "frames_split": ok, "agreement": ok / len(pairs) if pairs else float("nan"),
            "frames_skipped": len(by_frame) - len(pairs)}


def read_labels(csv_path: str | os.PathLike, folder: str | None = None) -> dict[str, str]:
    """``{file: label}`` from a ``folder,file,player_label`` CSV (rows of ``folder`` only if given)."""
    with open(csv_path, **CSV_TEXT) as f:
        return {r["file"]: r["player_label"] for r in csv.DictReader(f)
                if folder is None or r.get("folder") == folder}


# --------------------------------------------------------------------------- folders
@dataclass
class Crops:
    """Loaded crops of a folder; ``sources`` relative to ``root``; ``rejected`` unreadable files."""

    root: Path
    paths: list[Path]
    sources: list[str]
    images: list[np.ndarray]
    rejected: list


#: Crops are described at most this large (longest side, px): a player crop is a few hundred pixels;
#: a 100-megapixel "crop" would otherwise need tens of GB for its soft colour histogram.
CROP_MAX_SIDE = 512
#: A crop whose colours vary less than this (largest per-channel standard deviation, 0..255) is one flat
#: colour (a blank or fully transparent file): nothing to describe, and it would form a group of its own.
BLANK_STD = 2.0


def load_crops(folder: str | os.PathLike, *, recursive: bool = False, limit: int | None = None) -> Crops:
    """Every readable crop in ``folder``, larger ones shrunk to :data:`CROP_MAX_SIDE`; unreadable and
    blank (one flat colour) files are recorded in ``rejected``, never fatal, as is every file that is
    not a photo (by content: text, hidden, ...). With ``limit``, only the first ``limit`` photos in
    name order (a quick look)."""
    from .io import LoadReport, iter_loaded, resize_max_side, scan_folder

    root = Path(folder)
    report = LoadReport()
    scan = scan_folder(root, recursive=recursive)
    paths, images = [], []
    for p, im in iter_loaded(scan.photos[:limit], report):
        if float(im.reshape(-1, 3).std(axis=0).max()) < BLANK_STD:
            report.reject(str(p), "blank: one flat colour, no player to describe")
            continue
        paths.append(p)
        images.append(resize_max_side(im, CROP_MAX_SIDE)[0])
    sources = [p.relative_to(root).as_posix() for p in paths]
    rejected = [type(r)(Path(r.source).relative_to(root).as_posix(), r.reason) for r in report.rejected]
    rejected = sorted(rejected + scan.relative_skipped(), key=lambda r: r.source)
    return Crops(root, paths, sources, images, rejected)


def teams_folder(in_dir: str | os.PathLike, out_dir: str | os.PathLike, *, groups: int = 2,
                 method: str = "colours", court: str | os.PathLike | None = None, link: bool = False) -> dict:
    """Cluster the crops of ``in_dir``; write ``clusters.csv`` (``source,cluster``) and ``group_NN/`` copies.

    Returns a summary (counts per group, timing, frame-pair check, rejected files).
    """
    import json

    from .io import copy_grouped, flat_name, load_image, locked_output, staged_folder, too_few_photos

    # As in cluster.export_clusters: assembled in a hidden folder and moved into place, so an
    # interrupt leaves the folder as it was, and re-usable.
    with locked_output(out_dir, in_dir) as out:
        crops = load_crops(in_dir)
        if len(crops.images) < groups:  # say which files were left out and why, not just "got 0"
            raise ValueError(too_few_photos(
                in_dir, len(crops.images), groups, crops.rejected, what="crops",
                needs=f"teams needs at least {groups} player crop{'s' * (groups > 1)} (readable photos) directly "
                      f"in {in_dir}: its sub-folders are not searched"
                      + ("; or ask for fewer groups (--clusters)" if groups > 1 else "")))
        model = TeamClustering(groups=groups, method=method,
                               court=None if court is None else load_image(court)).fit(crops.images)
        pairs = frame_pair_agreement(crops.sources, model.labels_)
        if not pairs["frames"]:  # no frame of two crops: null, as NaN is not JSON (summary.json)
            pairs["agreement"] = None
        summary = {
            "crops": len(crops.sources), "method": method, "groups": groups,
            "sizes": np.bincount(model.labels_, minlength=groups).tolist(),
            "cluster_seconds": model.cluster_seconds_,
            "frame_pairs": pairs,
            "rejected": [{"source": r.source, "reason": r.reason} for r in crops.rejected],
        }
        with staged_folder(out) as tmp:
            with open(tmp / "clusters.csv", "w", **CSV_TEXT) as f:
                w = csv.writer(f)
                w.writerow(["source", "cluster"])
                w.writerows(zip(crops.sources, model.labels_.tolist()))
            copy_grouped(((p, tmp / f"group_{c:02d}" / flat_name(s))
                          for p, s, c in zip(crops.paths, crops.sources, model.labels_)), link=link)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


#: The public names of this module.
__all__ = ["CourtModel", "fit_court_model", "player_masks", "ClothingColours", "region_vote",
           "TeamClustering", "accuracy", "frame_of", "frame_pair_agreement", "read_labels", "Crops",
           "CROP_MAX_SIDE", "BLANK_STD", "load_crops", "teams_folder"]
