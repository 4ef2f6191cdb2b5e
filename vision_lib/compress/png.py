"""Palette and plain PNG bytes, writing a file without replacing one, output names.

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import check_rgb

__all__ = ["palette_png_bytes", "plain_png_bytes", "write_new_file", "output_name", "output_names"]


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
