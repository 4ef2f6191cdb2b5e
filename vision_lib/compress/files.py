"""Photo files in, palette PNGs out (``vision-lib compress``): one record per photo, never a crash.

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..io import ImageError, load_image
from .metrics import fidelity
from .png import output_name, output_names, write_new_file
from .quantizer import quantize

__all__ = ["MAX_MEGAPIXELS", "compress_file", "compress_files", "to_jsonl"]


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
        record.update(fidelity(image, q))
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




def to_jsonl(record: dict) -> str:
    """One JSON line (floats like inf become strings so every line parses)."""
    return json.dumps({k: (str(v) if isinstance(v, float) and not np.isfinite(v) else v)
                       for k, v in record.items()})
