"""Plots of the notebook: pixels in colour space, original beside quantized, rate against quality.

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations
from typing import Sequence

import numpy as np

from .metrics import fidelity
from .quantizer import Quantized

__all__ = ["sample_pixels", "plot_colour_space", "plot_side_by_side", "plot_rate_quality", "plot_equal_bytes"]


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
    report = report or {**fidelity(image, q), "bytes": len(q.png_bytes())}
    axes[0].imshow(image)
    axes[0].set_title("original")
    axes[1].imshow(q.image)
    axes[1].set_title(f"k={q.k}{' dithered' if q.dither else ''}: {report['psnr']:.2f} dB, "
                      f"SSIM {report['ssim']:.3f}, {report['bytes'] / 1024:.0f} KiB")
    for ax in axes:
        ax.axis("off")
    return axes


def plot_rate_quality(rows: Sequence[dict], axes=None, *, x: str = "k"):
    """PSNR and bytes against k (one line per method) from :func:`compare_quantizers`-style rows."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    # This library's line is drawn last, thick and on top: it often lies on full-pixel K-Means's,
    # which is drawn dashed with hollow markers so both stay visible.
    methods = [m for m in methods if m != "vision_lib"] + (["vision_lib"] if "vision_lib" in methods else [])
    for m in methods:
        sub = sorted((r for r in rows if r["method"] == m), key=lambda r: r[x])
        xs = [r[x] for r in sub]
        style = ({"lw": 3, "marker": "o", "zorder": 5, "color": "black"} if m == "vision_lib" else
                 {"lw": 1.5, "ls": "--", "marker": "s", "mfc": "none", "ms": 9} if m == "kmeans" else
                 {"lw": 1.2, "marker": "."})
        axes[0].plot(xs, [r["psnr"] for r in sub], label=m, **style)
        axes[1].plot(xs, [r["bytes"] / 1024 for r in sub], label=m, **style)
    for ax, ylabel in zip(axes, ("PSNR (dB)", "palette PNG (KiB)")):
        ax.set_xscale("log", base=2)
        ax.set(xlabel=x, ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return axes


def plot_equal_bytes(rows: Sequence[dict], ax=None):
    """PSNR of each method of :func:`~vision_lib.compress.equal_bytes` rows, one group of bars per
    image (methods side by side at the same byte budget)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.8), layout="constrained")
    names = list(dict.fromkeys(r["image"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    psnr = {(r["image"], r["method"]): r["psnr"] for r in rows}
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        ax.bar(np.arange(len(names)) + (j - (len(methods) - 1) / 2) * width,
               [psnr.get((n, method), np.nan) for n in names], width, label=method)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("PSNR (dB) at equal bytes")
    ax.legend(ncols=len(methods))
    return ax
