"""Tables over many photos (notebook 06): each photo is one task of the parallel map
(:mod:`vision_lib.parallel`: both cores, or a Dask cluster), rows in the photos' order.

The quantizers run on one thread each (see :func:`~vision_lib.compress.quantize_with`), so the
seconds a row reports are one core's whether the photos run side by side or one after another. Part of :mod:`vision_lib.compress` (every public name is there too).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..parallel import map_ordered
from .baselines import compare_quantizers, equal_bytes
from .metrics import size_report
from .png import plain_png_bytes
from .quantizer import quantize

__all__ = ["size_table", "equal_bytes_table", "compare_table"]


def size_table(images: Mapping[str, np.ndarray], ks: Sequence[int], *,
               files: Mapping[str, str | os.PathLike] | None = None, random_state: int | None = 0,
               n_jobs: int | None = None) -> list[dict]:
    """One row per (photo, k): :func:`~vision_lib.compress.size_report` of the photo quantized to
    ``k`` colours (``image``, ``seconds`` of the quantization), against the size of ``files[name]``
    when given; the plain PNG of each photo is encoded once, not once per k."""
    sizes = {name: Path(files[name]).stat().st_size for name in images} if files else {}
    return _over_photos(_size_rows, images, {"ks": [int(k) for k in ks], "random_state": random_state},
                        {name: {"original_bytes": sizes.get(name)} for name in images}, n_jobs)


def equal_bytes_table(images: Mapping[str, np.ndarray], k: int, *, random_state: int | None = 0,
                      n_jobs: int | None = None) -> list[dict]:
    """:func:`~vision_lib.compress.equal_bytes` of every photo quantized to ``k`` colours: its
    palette PNG beside JPEG and WebP at the same bytes."""
    return _over_photos(_equal_bytes_rows, images, {"k": int(k), "random_state": random_state}, {}, n_jobs)


def compare_table(images: Mapping[str, np.ndarray], ks: Sequence[int], *, methods: Sequence[str] | None = None,
                  random_state: int | None = 0, n_jobs: int | None = None) -> list[dict]:
    """:func:`~vision_lib.compress.compare_quantizers` of every photo (``methods`` None: all of them)."""
    options = {"ks": [int(k) for k in ks], "random_state": random_state, **({"methods": list(methods)} if methods else {})}
    return _over_photos(compare_quantizers, images, options, {}, n_jobs)


def _size_rows(image: np.ndarray, *, name: str, ks: list[int], random_state, original_bytes: int | None) -> list[dict]:
    plain = len(plain_png_bytes(image))
    rows = []
    for k in ks:
        q = quantize(image, k, random_state=random_state)
        rows.append({"image": name, **size_report(image, q, original_bytes=original_bytes, plain_png=plain),
                     "seconds": q.seconds})
    return rows


def _equal_bytes_rows(image: np.ndarray, *, name: str, k: int, random_state) -> list[dict]:
    return equal_bytes(image, quantize(image, k, random_state=random_state), name=name)


def _over_photos(func: Callable[..., list[dict]], images: Mapping[str, np.ndarray], options: dict,
                 per_photo: Mapping[str, dict], n_jobs: int | None) -> list[dict]:
    items = [(name, image, dict(per_photo.get(name, {}))) for name, image in images.items()]
    return map_ordered(_photo_rows, items, (func, options), n_jobs=n_jobs, progress=False, chunk=1)


def _photo_rows(batch: list[tuple], func: Callable[..., list[dict]], options: dict) -> list[dict]:
    return [row for name, image, extra in batch for row in func(image, name=name, **options, **extra)]
