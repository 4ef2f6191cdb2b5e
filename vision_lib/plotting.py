"""Figures for the notebooks: galleries, boxes, projections.

Every function draws on a given Matplotlib ``ax`` (or makes its own figure when none is given) and
returns what it drew on; none touches NumPy's global random state (colours come from colormaps).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def _label_colours(labels: Sequence) -> dict:
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(labels))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def grid(n: int, ncols: int, cell: tuple[float, float] = (1.6, 1.8), per_item: tuple[int, int] = (1, 1)):
    """A figure with room for ``n`` items, ``ncols`` per row, every axis blank (no ticks). Each item
    takes ``per_item`` (rows, columns) axes of ``cell`` (width, height) inches. Returns ``(fig, axes)``,
    ``axes`` a 2-D array; item ``k``'s first axis is ``axes[(k // ncols) * per_item[0], (k % ncols) * per_item[1]]``."""
    import matplotlib.pyplot as plt

    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    rows, cols = max(1, -(-n // ncols)) * per_item[0], ncols * per_item[1]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell[0], rows * cell[1]), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes


# --------------------------------------------------------------------------- features (issue 3)
def wavelet_pairs(crops: Sequence[np.ndarray], wavelets: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                  ncols: int = 4, size: float = 1.6):
    """Each face crop next to its wavelet image, ``ncols`` pairs per row; returns the figure."""
    fig, axes = grid(len(crops), ncols, (size, size * 1.15), per_item=(1, 2))
    for i, (crop, wav) in enumerate(zip(crops, wavelets)):
        r, c = divmod(i, ncols)
        axes[r, 2 * c].imshow(crop)
        axes[r, 2 * c + 1].imshow(wav, cmap="gray", vmin=0, vmax=255)
        if titles is not None:
            axes[r, 2 * c].set_title(str(titles[i]), fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def draw_regions(ax, image: np.ndarray, boxes: Mapping[str, tuple[int, int, int, int]], linewidth: float = 2.0):
    """Show ``image`` with each named ``(x, y, w, h)`` box outlined and labelled."""
    from matplotlib.patches import Rectangle

    ax.imshow(image)
    colours = _label_colours(list(boxes))
    for name, (x, y, w, h) in boxes.items():
        # Inset by half a line so adjacent bands (upper / lower) stay distinguishable.
        ax.add_patch(Rectangle((x + 1, y + 1), w - 2, h - 2, fill=False, edgecolor=colours[name], linewidth=linewidth))
        ax.text(x + 3, y + 3, name, color="white", fontsize=8, va="top",
                bbox=dict(facecolor=colours[name], alpha=0.8, pad=1, linewidth=0))
    ax.axis("off")
    return ax


def colour_histogram_bars(ax, hist: np.ndarray, bins: int, space: str = "hsv", top: int = 20):
    """The ``top`` largest bins of a 3-D colour histogram as bars painted in each bin's colour."""
    import cv2

    hist = np.asarray(hist).reshape(-1)
    if hist.size != bins ** 3:
        raise ValueError(f"expected a histogram of bins**3 = {bins ** 3} values, got {hist.size}")
    order = np.argsort(hist)[::-1][:top]
    idx = np.stack(np.unravel_index(order, (bins,) * 3), axis=1)
    scale = np.array([180 if space == "hsv" else 256, 256, 256], float)
    centres = ((idx + 0.5) * scale / bins).astype(np.uint8)[None]
    if space == "hsv":
        rgb = cv2.cvtColor(centres, cv2.COLOR_HSV2RGB)[0]
    elif space == "lab":
        rgb = cv2.cvtColor(centres, cv2.COLOR_LAB2RGB)[0]
    else:
        rgb = centres[0]
    ax.bar(range(len(order)), hist[order], color=rgb / 255.0, edgecolor="0.3", linewidth=0.5)
    ax.set_xticks([])
    ax.set_ylabel("share of pixels")
    return ax


def projection(ax, points: np.ndarray, labels: Sequence, title: str | None = None, legend: bool = True,
               marker_size: float = 18):
    """Scatter 2-D ``points`` coloured by ``labels`` (one colour per distinct label, in order seen)."""
    points = np.asarray(points)
    labels = list(labels)
    colours = _label_colours(labels)
    for name, colour in colours.items():
        sel = np.array([lab == name for lab in labels])
        ax.scatter(points[sel, 0], points[sel, 1], s=marker_size, color=colour, label=str(name),
                   edgecolors="white", linewidths=0.3)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=7, markerscale=1.2, frameon=False, loc="best")
    return ax


# --------------------------------------------------------------------------- average faces (issue 5)
def average_grid(rows: Mapping[str, Sequence], size: float = 1.7, max_title: int = 18):
    """Average faces side by side: one row per method, one column per group.

    ``rows`` maps a row title (e.g. ``"naive mean"``) to :class:`vision_lib.average.AverageFace`
    results for the same groups in the same order; each face is titled with how many faces it used
    out of how many the group offered. Returns the figure.
    """
    import matplotlib.pyplot as plt

    titles = list(rows)
    ncols = max((len(r) for r in rows.values()), default=0)
    if not ncols:  # nothing to show (e.g. no cluster with enough faces): say so, not a matplotlib error
        fig, ax = plt.subplots(figsize=(4 * size, size))
        ax.axis("off")
        ax.text(0.5, 0.5, "no groups to show", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(len(titles), ncols, figsize=(ncols * size, len(titles) * size * 1.25), squeeze=False)
    for r, title in enumerate(titles):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(rows[title]):
                continue
            res = rows[title][c]
            if res.image is not None:
                ax.imshow(res.image)
            name = res.group if len(res.group) <= max_title else res.group[: max_title - 1] + "…"
            ax.set_title(f"{name}\n{res.n_used}/{res.n_faces} faces", fontsize=8)
        axes[r, 0].set_ylabel(title, fontsize=9)
    fig.tight_layout()
    return fig


def left_out_bars(ax, results: Sequence, colours: Mapping[str, object] | None = None):
    """Horizontal stacked bars per group: faces used, then faces left out by reason."""
    import matplotlib.pyplot as plt

    reasons = list(dict.fromkeys(k for r in results for k in r.reasons()))
    cmap = plt.get_cmap("tab10")
    colours = dict(colours or {})
    colours.setdefault("used", "tab:green")
    for i, reason in enumerate(reasons):
        colours.setdefault(reason, cmap((i + 3) % cmap.N))
    y = np.arange(len(results))
    left = np.zeros(len(results))
    for key in ["used", *reasons]:
        values = np.array([r.n_used if key == "used" else r.reasons().get(key, 0) for r in results], float)
        ax.barh(y, values, left=left, color=colours[key], label=key)
        left += values
    ax.set_yticks(y, [r.group for r in results], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("photos / faces")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


# --------------------------------------------------------------------------- classification (issue 3)
def model_comparison(ax, rows: Sequence[Mapping], metric: str = "accuracy"):
    """Horizontal bars of cross-validated ``metric`` (with its std when given) per model."""
    names = [r["model"] for r in rows]
    values = np.array([r[metric] for r in rows], float)
    err = np.array([r.get(f"{metric}_std", 0.0) for r in rows], float)
    y = np.arange(len(rows))
    ax.barh(y, values, xerr=err, color="tab:blue", alpha=0.8, capsize=3)
    left = max(0.0, values.min(initial=1.0) - 0.15)
    for k, v in enumerate(values):  # at the bar's foot, clear of its error bar
        ax.text(left + 0.005, k, f"{v:.3f}", va="center", ha="left", color="white", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left, 1.0)
    ax.set_xlabel(f"cross-validated {metric}")
    return ax


def confusion(ax, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str] | None = None,
              title: str | None = None, max_label: int = 14):
    """A confusion matrix as a heat map with counts (rows: truth, columns: prediction)."""
    matrix = np.asarray(matrix)
    cols = list(rows) if cols is None else list(cols)
    short = [s if len(s) <= max_label else s[: max_label - 1] + "…" for s in list(rows) + cols]
    ax.imshow(matrix, cmap="Blues")
    top = matrix.max() if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > top / 2 else "black")
    ax.set_xticks(range(len(cols)), short[len(rows):], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), short[: len(rows)], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("folder (truth)")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def boxed_thumbnails(images: Sequence[np.ndarray], boxes: Sequence, titles: Sequence[str] | None = None,
                     ncols: int = 6, size: float = 1.8, context: float = 0.6, colour: str = "red"):
    """Thumbnails around a box of each image (``context`` = margin as a share of the box size),
    with the box drawn; a None box shows the whole photo. Returns the figure."""
    from matplotlib.patches import Rectangle

    lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    fig, axes = grid(len(images), ncols, (size, max(size * 1.25, size + 0.15 * lines + 0.1)))  # room for the titles
    for k, (img, box) in enumerate(zip(images, boxes)):
        ax = axes.flat[k]
        H, W = img.shape[:2]
        x0, y0, x1, y1 = 0, 0, W, H
        if box is not None:
            x, y, w, h = box
            m = int(max(w, h) * context)
            x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(W, x + w + m), min(H, y + h + m)
            ax.add_patch(Rectangle((x - x0, y - y0), w, h, fill=False, edgecolor=colour, linewidth=1.5))
        ax.imshow(img[y0:y1, x0:x1])
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=7)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 24, lines: int = 2) -> str:
    """``text`` on at most ``lines`` lines of ``width`` characters, cut between words (an ellipsis
    when words are left out), never inside one."""
    import textwrap

    parts = textwrap.wrap(text, width)
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] += " …"
    return "\n".join(parts)


def excluded_thumbnails(items: Sequence, n: int = 18, title: str = "", ncols: int = 6):
    """What training left out (:class:`vision_lib.classify.Excluded` items, the first ``n``): each
    photo titled with its folder, the reason and, when recognised, the known person the face looks
    like (``~``), the face boxed. Returns the figure, or None when there is nothing to show."""
    from .io import load_image

    items = list(items)[:n]
    if not items:
        return None
    titles = [f"{e.label}\n{_wrap(e.reason.split(' (')[0])}" + (f"\n~ {e.looks_like}" if e.looks_like else "")
              for e in items]
    fig = boxed_thumbnails([load_image(e.path) for e in items], [e.box for e in items], titles, ncols=ncols)
    fig.suptitle(title, y=1.02)
    return fig


def predicted_faces(ax, image: np.ndarray, result: Mapping, title: str | None = None):
    """A photo with each predicted face boxed: green for the photo's label, orange for other known
    people, grey for ``unknown``; each box titled with its label and probability (its verdict,
    "unknown" or "not sure", when the model does not name it)."""
    from matplotlib.patches import Rectangle

    ax.imshow(image)
    for face in result.get("faces", []):
        x, y, w, h = face["box"]
        if face["label"] == "unknown":
            colour = "0.6"
        elif face["label"] == result.get("label"):
            colour = "limegreen"
        else:
            colour = "orange"
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=2))
        # An unknown face carries no probability (docs/openset.md): its verdict instead.
        text = (f"{face['label']} {face['probability']:.2f}" if face.get("probability") is not None
                else ("not sure" if face.get("verdict") == "unsure" else "unknown"))
        # Above the box (inside its top edge when the box touches the top of the photo), from the
        # box's left edge, or its right edge in the right half, so that the label stays in the photo.
        top, right = y < 0.06 * image.shape[0], x + w / 2 > image.shape[1] / 2
        label = ax.text(min(x + w, image.shape[1]) if right else max(0, x), y + 2 if top else y - 2, text,
                        color="black", fontsize=7, va="top" if top else "bottom", ha="right" if right else "left",
                        bbox=dict(facecolor=colour, alpha=0.8, pad=1, linewidth=0), clip_on=True)
        _inside_photo(ax, label, image.shape[1])
    ax.set_title(title if title is not None else f"label: {result.get('label')}", fontsize=8)
    ax.axis("off")
    return ax


def _inside_photo(ax, label, width: int) -> None:
    """Shift a face label sideways so that it does not run past either side of a ``width``-px photo
    (measured at the figure's current size)."""
    get_renderer = getattr(ax.figure.canvas, "get_renderer", None)
    if get_renderer is None:  # a backend that cannot measure text: leave the label where it is
        return
    ax.apply_aspect()
    box = label.get_window_extent(get_renderer())
    to_data = ax.transData.inverted()
    (x0, _), (x1, _) = to_data.transform((box.x0, box.y0)), to_data.transform((box.x1, box.y0))
    x0, x1 = min(x0, x1), max(x0, x1)
    shift = (width - x1) if x1 > width else (-x0 if x0 < 0 else 0.0)
    if shift:
        label.set_x(label.get_position()[0] + shift)


def openset_curve(ax, curve: Sequence[Mapping], known: str = "known_accuracy_all", title: str | None = None):
    """The open-set trade-off from :func:`vision_lib.classify.photo_curve`: share of stranger photos
    named (x) against share of known photos named right (y), one point per threshold, the model's
    default operating point (``"default": True``) marked."""
    x = [p["strangers_named_share"] for p in curve]
    y = [p[known] for p in curve]
    ax.plot(x, y, "o-", color="tab:blue", markersize=4, label="threshold")
    for p in curve:
        if p.get("default"):
            ax.plot(p["strangers_named_share"], p[known], "*", color="crimson", markersize=14,
                    label=f"default (threshold {p['threshold']:.3f})")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("stranger photos named (share)")
    ax.set_ylabel("known photos named right (share)" if known == "known_accuracy_all" else known)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --------------------------------------------------------------------------- clustering (issue 4)
def cluster_galleries(groups: Mapping[str, Sequence[np.ndarray]], per_group: int = 8, size: float = 1.1,
                      titles: Mapping[str, Sequence[str]] | None = None):
    """One row per group (its name on the left), up to ``per_group`` thumbnails each; returns the figure.

    ``groups`` maps a group name (e.g. ``cluster_03 (12)`` or ``unassigned``) to its images.
    """
    import matplotlib.pyplot as plt

    if per_group < 1:
        raise ValueError(f"per_group must be at least 1, got {per_group}")
    names = list(groups)
    nrows = max(1, len(names))
    fig, axes = plt.subplots(nrows, per_group, figsize=(per_group * size, nrows * size * 1.1), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, name in enumerate(names):
        for c, img in enumerate(list(groups[name])[:per_group]):
            axes[r, c].imshow(img)
            if titles is not None and c < len(titles.get(name, [])):
                axes[r, c].set_title(str(titles[name][c]), fontsize=6)
        axes[r, 0].text(-0.08, 0.5, str(name), transform=axes[r, 0].transAxes, ha="right", va="center",
                        fontsize=8)
    fig.tight_layout()
    return fig


def masked_crops(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], ncols: int = 8, size: float = 1.2,
                 titles: Sequence[str] | None = None, fill=(255, 0, 255)):
    """Each crop above its player mask (masked-out pixels painted ``fill``); returns the figure."""
    fig, axes = grid(len(images), ncols, (size, size * 1.1), per_item=(2, 1))
    for k, (img, mask) in enumerate(zip(images, masks)):
        r, c = divmod(k, ncols)
        shown = np.array(img, copy=True)
        shown[~np.asarray(mask, bool)] = fill
        axes[2 * r, c].imshow(img)
        axes[2 * r + 1, c].imshow(shown)
        if titles is not None:
            axes[2 * r, c].set_title(str(titles[k]), fontsize=6)
    fig.tight_layout()
    return fig


def metric_bars(ax, rows: Sequence[Mapping], metrics: Sequence[str] = ("bcubed_f", "pairwise_f", "nmi"),
                name: str = "method"):
    """Grouped bars: one group per row (``row[name]``), one bar per metric; returns ``ax``."""
    width = 0.8 / max(1, len(metrics))
    x = np.arange(len(rows))
    for j, m in enumerate(metrics):
        vals = [float(r.get(m) or 0.0) for r in rows]
        ax.bar(x + j * width - 0.4 + width / 2, vals, width, label=m)
    ax.set_xticks(x, [str(r[name]) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return ax


# --------------------------------------------------------------------------- faces (issue 2)
def draw_faces(ax, image: np.ndarray, faces: Sequence, colour="lime", label: str | None = None,
               keypoints: bool = True, linewidth: float = 2.0, show_image: bool = True):
    """Show ``image`` with each face's ``(x, y, w, h)`` box, score and keypoints; returns ``ax``.

    Call it twice on the same ``ax`` (the second with ``show_image=False``) to compare detectors.
    """
    from matplotlib.patches import Rectangle

    if show_image:
        ax.imshow(image)
    for i, face in enumerate(faces):
        x, y, w, h = face.box
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=linewidth,
                               label=label if i == 0 else None))
        ax.text(x, y - 2, f"{i}: {face.score:.2f}", color="black", fontsize=7, va="bottom",
                bbox=dict(facecolor=colour, alpha=0.8, pad=1, linewidth=0))
        if keypoints and face.keypoints:
            pts = np.array(list(face.keypoints.values()))
            ax.scatter(pts[:, 0], pts[:, 1], s=8, c=[colour], edgecolors="black", linewidths=0.4)
    ax.axis("off")
    return ax


def gallery(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 8,
            size: float = 1.4, suptitle: str | None = None):
    """A grid of images (``ncols`` per row) with optional titles; returns the figure."""
    fig, axes = grid(len(images), ncols, (size, size * 1.15))
    for k, img in enumerate(images):
        ax = axes[k // ncols, k % ncols]
        ax.imshow(img, cmap="gray" if np.ndim(img) == 2 else None)
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def count_bars(ax, counts: Mapping[str, int], title: str | None = None, xlabel: str = "photos"):
    """Horizontal bars of ``counts`` (largest on top), each labelled with its value; returns ``ax``."""
    if title:
        ax.set_title(title)
    if not counts:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
        return ax
    items = sorted(counts.items(), key=lambda kv: kv[1])
    names, values = [str(k) for k, _ in items], [v for _, v in items]
    bars = ax.barh(names, values, color="tab:red" if len(names) < 2 else None)
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    return ax


def detector_comparison(axes, stats: Mapping[str, Mapping]):
    """Side by side: share of photos with a face, and seconds per photo, one bar per detector.

    ``stats`` maps a detector name to a dict with ``coverage`` and ``seconds_per_photo`` (as from
    :func:`vision_lib.faces.detection_stats` / :func:`vision_lib.faces.time_detection`).
    """
    ax_cov, ax_speed = axes
    names = list(stats)
    colours = [f"C{i}" for i in range(len(names))]
    cov = [float(stats[n]["coverage"]) for n in names]
    bars = ax_cov.bar(names, cov, color=colours)
    ax_cov.bar_label(bars, labels=[f"{c:.2f}" for c in cov], fontsize=8)
    ax_cov.set_ylim(0, 1.1)
    ax_cov.set_ylabel("share of photos with >= 1 face")
    spp = [float(stats[n]["seconds_per_photo"]) for n in names]
    bars = ax_speed.bar(names, spp, color=colours)
    ax_speed.bar_label(bars, labels=[f"{s:.2f}" for s in spp], fontsize=8)
    ax_speed.set_ylabel("seconds per photo (one process)")
    ax_speed.margins(y=0.15)
    return axes


#: The public names of this module.
__all__ = ["grid", "wavelet_pairs", "draw_regions", "colour_histogram_bars", "projection", "average_grid",
           "left_out_bars", "model_comparison", "confusion", "boxed_thumbnails", "excluded_thumbnails",
           "predicted_faces", "cluster_galleries", "masked_crops", "metric_bars", "draw_faces", "gallery",
           "count_bars", "detector_comparison"]
