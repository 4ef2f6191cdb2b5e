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


def display_name(label: str) -> str:
    """A folder name as people read it: ``leo_messi`` -> ``Leo Messi``, ``Tony_Blair`` -> ``Tony Blair``."""
    words = str(label).replace("_", " ").replace("-", " ").split()
    return " ".join(w[:1].upper() + w[1:] for w in words) or str(label)


def percent(p: float) -> str:
    """A probability in whole percent, as the web page shows it: ``0.97`` -> ``"97%"``; never
    ``"100%"`` (``0.996`` -> ``">99%"``: rounding would claim certainty)."""
    return ">99%" if p >= 0.995 else f"{p:.0%}"


def closeness_words(rate: float | None) -> str | None:
    """What a face's ``stranger_rate`` means, in words a presenter can read out: ``0.0033`` ->
    ``"about 1 in 300 strangers look this close"`` (None: no open-set rule)."""
    if rate is None:
        return None
    if rate <= 0.001:
        return "fewer than 1 in 1,000 strangers look this close"
    return f"about 1 in {max(1, round(1 / rate)):,} strangers look this close"


def verdict_words(result: Mapping, n_people: int | None = None) -> str:
    """A photo's answer (``predict_*`` result: ``label`` and ``faces``) in one sentence, as the web
    page and ``vision-lib predict`` say it: ``"Leo Messi — about 1 in 300 strangers look this close"``,
    ``"Not sure who this is: ..."``, ``"Not one of the 6 people this model knows"``."""
    faces = result.get("faces") or []
    if "error" in result:
        return f"Not a usable photo: {result['error']}"
    if not faces:
        return "No face found in this photo"
    label = result.get("label")
    if label is None:
        if any(f.get("verdict") == "unsure" for f in faces):
            return "Not sure who this is: a face is close to someone it knows, but not close enough to name"
        return f"Not one of the {n_people} people this model knows" if n_people else "Not someone this model knows"
    face = next((f for f in faces if f.get("label") == label), {})
    close = closeness_words(face.get("stranger_rate"))
    return display_name(label) + (f" — {close}" if close else "")


def with_words(result: Mapping, n_people: int | None = None) -> dict:
    """A photo's prediction with its words, as ``vision-lib predict --json`` and the web page give
    it: ``answer`` (:func:`verdict_words`) and each face's ``closeness`` (:func:`closeness_words`).
    A result with an ``error`` is returned as it is."""
    if "error" in result:
        return dict(result)
    faces = [{**f, "closeness": closeness_words(f.get("stranger_rate"))} for f in result.get("faces", [])]
    return {**result, "faces": faces, "answer": verdict_words(result, n_people)}


def short_text(text, width: int = 14, lines: int = 2) -> str:
    """``text`` for a caption: underscores as spaces, wrapped at word boundaries into at most ``lines``
    lines of about ``width`` characters; what does not fit is cut at a word boundary and marked "…"
    (a single word longer than a line is cut inside, with "…"). ``"Serena_Williams"`` -> ``"Serena\nWilliams"``."""
    import textwrap

    words = str(text).replace("_", " ").split()
    if not words:
        return ""
    wrapped = textwrap.wrap(" ".join(words), width, break_long_words=False, break_on_hyphens=False)
    wrapped = [w if len(w) <= width else w[: width - 1] + "…" for w in wrapped]
    if len(wrapped) > lines:
        last = wrapped[lines - 1]
        wrapped = wrapped[: lines - 1] + [(last if len(last) < width else last[: width - 1].rsplit(" ", 1)[0]) + "…"]
    return "\n".join(wrapped)


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
    """Each face crop next to its wavelet image, ``ncols`` pairs per row; returns the figure.

    The wavelet images are stretched for display (see :func:`display_stretch`): their details are
    small values that would show nearly black on the 0..255 scale.
    """
    fig, axes = grid(len(crops), ncols, (size, size * 1.15), per_item=(1, 2))
    for i, (crop, wav) in enumerate(zip(crops, wavelets)):
        r, c = divmod(i, ncols)
        axes[r, 2 * c].imshow(crop)
        axes[r, 2 * c + 1].imshow(display_stretch(wav), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            axes[r, 2 * c].set_title(short_text(titles[i], 18, 1), fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def display_stretch(image: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """``image`` as floats in [0, 1] for display: 0 stays black, the ``percentile``-th value becomes
    white (brighter values clip). A blank image stays black."""
    image = np.asarray(image, np.float64)
    top = np.percentile(image, percentile) if image.size else 0.0
    if top <= 0:
        top = image.max() if image.size and image.max() > 0 else 1.0
    return np.clip(image / top, 0.0, 1.0)


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


def _colour_key(label) -> str:
    return str(label).split(" (")[0].replace("_", " ")


def top_colours(labels: Sequence, top: int = 10) -> dict[str, object]:
    """The colours :func:`projection` gives the ``top`` largest groups of ``labels`` (pass them to
    another panel's ``colours`` so one person keeps one colour)."""
    from collections import Counter

    names = [name for name, _ in sorted(Counter(str(v) for v in labels).items(), key=lambda kv: -kv[1])][:top]
    return _label_colours(names)


def projection(ax, points: np.ndarray, labels: Sequence, title: str | None = None, legend: bool = True,
               marker_size: float = 18, top: int | None = None, grey: Sequence[str] = ("unassigned",),
               other: str = "others", colours: Mapping[str, object] | None = None):
    """Scatter 2-D ``points`` coloured by ``labels`` (one colour per distinct label, in order seen).

    With ``top``, only the ``top`` largest groups get a colour (and a legend entry, with their size);
    the other groups are drawn in light grey as ``other``. Labels starting with a word of ``grey``
    (e.g. "unassigned") are always grey. The legend sits beside the axes. ``colours`` fixes the
    colour of some groups (e.g. :func:`top_colours` of another panel), matched by name without
    a trailing count and with underscores as spaces, so "Tony_Blair" and the caption
    "Tony Blair (144/145)" share one colour; other coloured groups get the colours left.
    """
    from collections import Counter

    points = np.asarray(points)
    labels = [str(lab) for lab in labels]
    counts = Counter(labels)
    greys = [name for name in dict.fromkeys(labels) if name.startswith(tuple(grey))]
    coloured = [name for name in dict.fromkeys(labels) if name not in greys]
    if top is not None:
        coloured = [name for name, _ in sorted(counts.items(), key=lambda kv: -kv[1]) if name not in greys][:top]
    if colours is None:
        colours = _label_colours(coloured)
    else:
        given = {_colour_key(k): v for k, v in colours.items()}
        spare = [c for c in _label_colours([f"#{i}" for i in range(20)]).values() if c not in given.values()]
        colours = {name: given[_colour_key(name)] if _colour_key(name) in given else spare.pop(0) for name in coloured}
    layers = [(other, [lab not in colours and lab not in greys for lab in labels], "0.85", 1)]
    layers += [(name, [lab == name for lab in labels], "0.55", 1) for name in greys]
    layers += [(name, [lab == name for lab in labels], colours[name], 2) for name in colours]
    for name, sel, colour, zorder in layers:
        sel = np.array(sel, bool)
        if not sel.any():
            continue
        if name == other and name not in colours:
            text = f"{other} ({len({lab for lab, s in zip(labels, sel) if s})} groups)"
        else:
            text = short_text(name, 32, 1)
            if top is not None and not name.endswith(")"):  # a caption such as "Serena Williams (12/13)" has its count
                text += f" ({counts[name]})"
        ax.scatter(points[sel, 0], points[sel, 1], s=marker_size, color=colour, label=text,
                   edgecolors="white", linewidths=0.3, zorder=zorder)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(fontsize=8, markerscale=1.2, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


# --------------------------------------------------------------------------- average faces (issue 5)
def average_grid(rows: Mapping[str, Sequence], size: float = 1.7, max_title: int = 18,
                 names: Mapping[str, str] | None = None):
    """Average faces side by side: one row per method, one column per group.

    ``rows`` maps a row title (e.g. ``"naive mean"``) to :class:`vision_lib.average.AverageFace`
    results for the same groups in the same order; each face is titled with its group (or
    ``names[group]``, e.g. a caption saying who is in a cluster) and how many faces it used out of
    how many the group offered. Returns the figure.
    """
    import matplotlib.pyplot as plt

    titles = list(rows)
    ncols = max((len(r) for r in rows.values()), default=0)
    if not ncols:  # nothing to show (e.g. no cluster with enough faces): say so, not a matplotlib error
        fig, ax = plt.subplots(figsize=(4 * size, size))
        ax.axis("off")
        ax.text(0.5, 0.5, "no groups to show", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(len(titles), ncols, figsize=(ncols * size, len(titles) * size * (1.4 if names else 1.25)),
                             squeeze=False)
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
            caption = short_text((names or {}).get(res.group, res.group), max_title, 2 if names else 1)
            ax.set_title(f"{caption}\n{res.n_used}/{res.n_faces} faces", fontsize=8)
        axes[r, 0].set_ylabel(short_text(title, 22, 2), fontsize=9)
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
    # a share cannot pass 1: the upper whisker stops there, and the axis leaves room for its cap
    xerr = np.vstack([err, np.minimum(err, np.clip(1.0 - values, 0.0, None))])
    ax.barh(y, values, xerr=xerr, color="tab:blue", alpha=0.8, capsize=3)
    # the values are written at the bars' foot: the axis starts far enough left of the lowest
    # whisker for a label to fit before it (a long whisker crossed its own label)
    low = (values - err).min(initial=1.0)
    left = max(0.0, min(values.min(initial=1.0) - 0.15, low - 0.15 * (1.0 - low) - 0.03))
    for k, v in enumerate(values):
        ax.text(left + 0.005, k, f"{v:.3f}", va="center", ha="left", color="white", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left, 1.0 + 0.02 * (1.0 - left))
    ax.set_xlabel(f"cross-validated {metric} (mean ± std over folds)")
    return ax


def confusion(ax, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str] | None = None,
              title: str | None = None, max_label: int = 18):
    """A confusion matrix as a heat map with counts (rows: truth, columns: prediction)."""
    matrix = np.asarray(matrix)
    cols = list(rows) if cols is None else list(cols)
    short = [short_text(s, max_label, 2) for s in list(rows) + cols]  # whole words on two lines, never cut mid-name
    ax.imshow(matrix, cmap="Blues")
    top = matrix.max() if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > top / 2 else "black")
    ax.set_xticks(range(len(cols)), short[len(rows):], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), short[: len(rows)], fontsize=8)
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
        text = (f"{display_name(face['label'])} {percent(face['probability'])}" if face.get("probability") is not None
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
    # symlog's own ticks leave a single label on a 0-30 % axis: fixed ticks, as percentages
    from matplotlib.ticker import FixedLocator, NullLocator, PercentFormatter

    top = max(x, default=1.0)
    ax.xaxis.set_major_locator(FixedLocator([t for t in (0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1) if t <= 1.5 * top + 0.01]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(PercentFormatter(1, decimals=0))
    ax.set_xlabel("stranger photos named (share)")
    ax.set_ylabel("known photos named right (share)" if known == "known_accuracy_all" else known)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --------------------------------------------------------------------------- clustering (issue 4)
def cluster_galleries(groups: Mapping[str, Sequence[np.ndarray]], per_group: int = 8, size: float = 1.1,
                      titles: Mapping[str, Sequence[str]] | None = None, note: str | None = None,
                      fontsize: float = 6):
    """One row per group (its name on the left), up to ``per_group`` thumbnails each; returns the figure.
    ``fontsize`` is the thumbnail titles' (group names and the note are a third larger).

    ``groups`` maps a group name (e.g. ``Serena Williams (12/13)`` or ``unassigned (8)``) to its
    images; names and thumbnail titles are wrapped at word boundaries (:func:`short_text`).
    ``note`` is a line of explanation under the galleries (e.g. what "bystanders" means).
    """
    import matplotlib.pyplot as plt

    if per_group < 1:
        raise ValueError(f"per_group must be at least 1, got {per_group}")
    names = list(groups)
    nrows = max(1, len(names))
    height = nrows * size * (1.25 if titles is not None else 1.05) + (0.35 if note else 0)
    fig, axes = plt.subplots(nrows, per_group + 1, figsize=((per_group + 1.6) * size, height), squeeze=False,
                             layout="constrained", width_ratios=[1.6] + [1] * per_group)
    for ax in axes.ravel():
        ax.axis("off")
    for r, name in enumerate(names):
        axes[r, 0].text(1.0, 0.5, short_text(name, 20, 3), transform=axes[r, 0].transAxes, ha="right",
                        va="center", fontsize=fontsize * 4 / 3)
        for c, img in enumerate(list(groups[name])[:per_group]):
            axes[r, c + 1].imshow(img)
            if titles is not None and c < len(titles.get(name, [])):
                axes[r, c + 1].set_title(short_text(titles[name][c], 13, 2), fontsize=fontsize)
    if note:
        fig.supxlabel(note, fontsize=fontsize * 4 / 3, color="0.3", wrap=True)
    return fig


#: What the junk captions of :func:`cluster_captions` mean, for a line under the galleries.
JUNK_NOTE = ("bystanders: a cluster whose faces are mostly not their photo's subject (small background faces: "
             "fans, team-mates); unassigned: faces close to no cluster. Both are shown last.")


def cluster_captions(labels: Sequence[int], folders: Sequence[str | None] | None = None,
                     subject: Sequence[bool] | None = None, *, majority: float = 0.5) -> dict[int, str]:
    """A caption per cluster saying who is in it, from the faces' cluster ``labels`` (``-1`` =
    unassigned), the photo folder of each face (``folders``; None for an unlabelled collection) and
    whether each face is its photo's subject (``subject``; a face that is not says nothing about who
    it is, whatever its photo's folder).

    - ``"Serena Williams (12/13)"``: more than ``majority`` of the cluster's faces are subject faces
      of photos of one folder (underscores shown as spaces);
    - ``"bystanders (129)"``: more than half of its faces are not their photo's subject;
    - ``"mixed (9)"``: labels exist but none has a majority; ``"cluster 3 (9)"`` without labels;
    - ``"unassigned (8)"`` for ``-1``.

    Returns ``{cluster: caption}``, clusters in the order of :func:`junk_last`.
    """
    from collections import Counter

    labels = np.asarray(labels, int)
    if folders is not None and len(folders) != len(labels) or subject is not None and len(subject) != len(labels):
        raise ValueError(f"labels, folders and subject must have one entry per face ({len(labels)})")
    captions = {}
    for c in dict.fromkeys(labels.tolist()):
        idx = np.flatnonzero(labels == c)
        n = len(idx)
        subj = np.ones(n, bool) if subject is None else np.asarray(subject, bool)[idx]
        if c < 0:
            captions[c] = f"unassigned ({n})"
            continue
        votes = Counter(folders[i] for i, s in zip(idx, subj) if s and folders[i] is not None) if folders else Counter()
        name, count = votes.most_common(1)[0] if votes else (None, 0)
        if name is not None and count > majority * n:
            captions[c] = f"{str(name).replace('_', ' ')} ({count}/{n})"
        elif (~subj).sum() > 0.5 * n:
            captions[c] = f"bystanders ({n})"
        elif folders is not None:
            captions[c] = f"mixed ({n})"
        else:
            captions[c] = f"cluster {c} ({n})"
    sizes = Counter(labels.tolist())
    return {c: captions[c] for c in junk_last(captions, sizes)}


def junk_last(captions: Mapping[int, str], sizes: Mapping[int, int]) -> list[int]:
    """Clusters ordered for display: the people (named or not) largest first, then "mixed", then
    "bystanders", then "unassigned"."""
    def rank(c):
        text = captions[c]
        kind = 3 if c < 0 else 2 if text.startswith("bystanders") else 1 if text.startswith("mixed") else 0
        return kind, -sizes[c], c

    return sorted(captions, key=rank)


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
                name: str = "method", values: bool = False):
    """Grouped bars: one group per row (``row[name]``), one bar per metric; with ``values`` each
    bar is labelled with its value. Returns ``ax``."""
    width = 0.8 / max(1, len(metrics))
    x = np.arange(len(rows))
    for j, m in enumerate(metrics):
        vals = [float(r.get(m) or 0.0) for r in rows]
        bars = ax.bar(x + j * width - 0.4 + width / 2, vals, width, label=m)
        if values:
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=7, padding=1)
    ax.set_xticks(x, [str(r[name]) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return ax


# --------------------------------------------------------------------------- faces (issue 2)
def draw_faces(ax, image: np.ndarray, faces: Sequence, colour="lime", label: str | None = None,
               keypoints: bool = True, linewidth: float = 2.0, show_image: bool = True, text_at: str | None = "top"):
    """Show ``image`` with each face's ``(x, y, w, h)`` box, score and keypoints; returns ``ax``.

    Call it twice on the same ``ax`` (the second with ``show_image=False``) to compare detectors;
    ``text_at`` puts the "index: score" label above the box (``"top"``), under it (``"bottom"``) or
    nowhere (None), so two detectors' labels of one face do not cover each other.
    """
    from matplotlib.patches import Rectangle

    if show_image:
        ax.imshow(image)
    for i, face in enumerate(faces):
        x, y, w, h = face.box
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=linewidth,
                               label=label if i == 0 else None))
        if text_at is not None:
            ax.text(x, y - 2 if text_at == "top" else y + h + 2, f"{i}: {face.score:.2f}", color="black", fontsize=7,
                    va="bottom" if text_at == "top" else "top", bbox=dict(facecolor=colour, alpha=0.8, pad=1, linewidth=0))
        if keypoints and face.keypoints:
            pts = np.array(list(face.keypoints.values()))
            ax.scatter(pts[:, 0], pts[:, 1], s=8, c=[colour], edgecolors="black", linewidths=0.4)
    ax.axis("off")
    return ax


#: Box colours of the detectors in comparison figures.
DETECTOR_COLOURS = {"yunet": "lime", "mtcnn": "deepskyblue", "haar": "orange"}


def detections(ax, image: np.ndarray, by_detector: Mapping[str, Sequence], colours: Mapping[str, str] | None = None):
    """``image`` with the faces of several detectors (name -> faces), each in its own colour
    (:data:`DETECTOR_COLOURS` by default) and named in the legend; returns ``ax``. The first
    detector's scores are written above its boxes, the second's under them, the others' not at all
    (so they never cover each other; the Haar recipe's score is always 1)."""
    colours = {**DETECTOR_COLOURS, **(colours or {})}
    for k, (name, found) in enumerate(by_detector.items()):
        colour = colours.get(name, f"C{k}")
        draw_faces(ax, image, found, colour=colour, show_image=k == 0, text_at={0: "top", 1: "bottom"}.get(k))
        ax.plot([], [], color=colour, linewidth=2, label=f"{name} ({len(found)})")  # in the legend even with no face
    ax.legend(fontsize=7, loc="lower left", framealpha=0.8, title="faces found", title_fontsize=7)
    return ax


def gallery(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 8,
            size: float = 1.4, suptitle: str | None = None, title_width: int = 14):
    """A grid of images (``ncols`` per row) with optional titles; returns the figure.

    Titles are wrapped at word boundaries (:func:`short_text`, two lines of ``title_width``
    characters) and the figure is laid out with Matplotlib's constrained layout, so neither the
    titles nor ``suptitle`` run under the row above.
    """
    import matplotlib.pyplot as plt

    n_rows = max(1, -(-len(images) // ncols))
    lines = max((short_text(t, title_width).count("\n") + 1 for t in titles), default=0) if titles is not None else 0
    fig, axes = plt.subplots(n_rows, ncols, figsize=(ncols * size, n_rows * size * (1 + 0.12 * lines) + 0.4 * bool(suptitle)),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for k, img in enumerate(images):
        ax = axes[k // ncols, k % ncols]
        ax.imshow(img, cmap="gray" if np.ndim(img) == 2 else None)
        if titles is not None:
            ax.set_title(short_text(titles[k], title_width), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
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
    names, values = [short_text(k, 30, 1) for k, _ in items], [v for _, v in items]
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
    ms = [1000 * float(stats[n]["seconds_per_photo"]) for n in names]
    bars = ax_speed.bar(names, ms, color=colours)
    ax_speed.bar_label(bars, labels=[f"{m:.0f}" for m in ms], fontsize=8)
    ax_speed.set_ylabel("ms per photo (one process, cache off)")
    ax_speed.margins(y=0.15)
    return axes



def distance_distributions(axes, verification: Mapping[str, Mapping], bins: int = 40):
    """One axis per descriptor: histograms of the distances of same-person pairs (green) and of
    different-person pairs (grey), the descriptor's same-person threshold (dashed) and the distance
    at the fixed false-accept rate (solid), titled with the true-accept rate there. ``verification``
    is :func:`vision_lib.comparisons.verification`'s result. Returns ``axes``."""
    for ax, (name, v) in zip(np.ravel(axes), verification.items()):
        same, other = np.asarray(v["same"]), np.asarray(v["other"])
        values = np.concatenate([same, other])
        edges = np.linspace(values.min(), values.max(), bins + 1) if values.size else bins
        ax.hist(other, bins=edges, density=True, color="0.6", alpha=0.7, label=f"different people ({len(other)})")
        ax.hist(same, bins=edges, density=True, color="tab:green", alpha=0.6, label=f"same folder ({len(same)})")
        if v.get("threshold") is not None:
            ax.axvline(v["threshold"], color="black", linestyle="--", linewidth=1,
                       label=f"same-person threshold {v['threshold']:.2f}")
        if np.isfinite(v.get("threshold_at_far", np.nan)):
            ax.axvline(v["threshold_at_far"], color="tab:red", linewidth=1.2,
                       label=f"{v['far']:.0%} false accepts")
        ax.set_title(f"{name}: {v['tar']:.0%} of same-folder pairs accepted at {v['far']:.0%} false accepts",
                     fontsize=9)
        ax.set_xlabel("descriptor distance")
        ax.set_yticks([])
        ax.legend(fontsize=7, frameon=False, loc="upper right")
    return axes


def model_bars(ax, per_set: Mapping[str, Sequence[Mapping]], metric: str = "bcubed_f", name: str = "name",
               ylabel: str | None = None):
    """Grouped bars: one group per data set (``per_set``: set -> rows, e.g.
    :func:`vision_lib.comparisons.identity_models`), one bar per model (``row[name]``) in the same
    colour across sets, each labelled with its ``metric``. Returns ``ax``."""
    sets = list(per_set)
    models = list(dict.fromkeys(r[name] for rows in per_set.values() for r in rows))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(sets))
    for j, model in enumerate(models):
        vals = [next((float(r[metric]) for r in per_set[s] if r[name] == model), np.nan) for s in sets]
        bars = ax.bar(x + j * width - 0.4 + width / 2, vals, width, label=model, color=f"C{j}")
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=8, padding=1)
    ax.set_xticks(x, sets)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(ylabel or metric)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax

#: The public names of this module.
__all__ = ["display_name", "percent", "closeness_words", "verdict_words", "with_words", "grid", "wavelet_pairs", "draw_regions", "colour_histogram_bars", "projection", "average_grid",
           "left_out_bars", "model_comparison", "confusion", "boxed_thumbnails", "excluded_thumbnails",
           "predicted_faces", "cluster_galleries", "masked_crops", "metric_bars", "draw_faces", "gallery",
           "count_bars", "detector_comparison", "short_text", "display_stretch", "cluster_captions", "junk_last",
           "JUNK_NOTE", "distance_distributions", "DETECTOR_COLOURS", "detections", "model_bars", "top_colours"]
