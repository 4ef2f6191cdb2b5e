"""Example photos for the notebook and widgets: the Kodak set when present, else bundled images.

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np


__all__ = ["example_images", "example_names", "example_paths", "bundled_images", "graphic_image"]


def example_images(data_dir: str | os.PathLike | None = None, *, limit: int | None = None) -> dict[str, np.ndarray]:
    """Photos for the notebook: ``<data_dir>/kodak/`` when present, else images bundled with
    scikit-image / scikit-learn (so the notebook runs anywhere). Keys are :func:`example_names` of
    :func:`example_paths` (same order), values RGB uint8; unreadable files are left out.
    """
    folder = _kodak_folder(data_dir)
    if folder is None:
        return bundled_images(limit=limit)
    from itertools import islice

    from ..io import iter_loaded, list_images

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
    from ..io import iter_loaded, list_images

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
    from ..config import data_dir as default_data_dir

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    from ..io import list_images

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


def graphic_image(width: int = 768, height: int = 512, seed: int = 0) -> np.ndarray:
    """A generated few-colour graphic (a bar chart with a legend and labels on a flat background):
    the kind of image a palette wins on, beside the photos it does not."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
    img = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    base, left = height - 60, 70
    draw.line([(left, 30), (left, base), (width - 30, base)], fill=(40, 40, 40), width=2)
    n = 12
    step = (width - left - 60) / n
    for i in range(n):
        h = int(rng.uniform(0.15, 0.85) * (base - 40))
        x = left + 15 + i * step
        draw.rectangle([x, base - h, x + step * 0.7, base], fill=colours[i % len(colours)])
        draw.text((x, base + 10), f"Q{i + 1}", fill=(40, 40, 40))
    for j, c in enumerate(colours):
        draw.rectangle([width - 150, 30 + 22 * j, width - 136, 44 + 22 * j], fill=c)
        draw.text((width - 128, 31 + 22 * j), f"series {j + 1}", fill=(40, 40, 40))
    return np.asarray(img)
