"""Other quantizers to compare with (scikit-learn K-Means, Pillow's median cut and octree, pngquant),
and the comparison tables.

Part of :mod:`vision_lib.compress` (every public name is there too)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import check_rgb
from .metrics import fidelity
from .quantizer import Quantized, _dither, quantize

__all__ = ["quantize_with", "BASELINES", "pngquant_available", "compare_quantizers", "CODECS", "encode_with",
           "codec_at_bytes", "equal_bytes", "summarise", "format_table"]


#: Methods :func:`quantize_with` knows, besides this module's own (``"vision_lib"``).
BASELINES = ("minibatch_kmeans", "kmeans", "median_cut", "fast_octree", "pngquant")


def pngquant_available() -> bool:
    """True when the ``pngquant`` command is on PATH."""
    return shutil.which("pngquant") is not None


def quantize_with(method: str, image: np.ndarray, k: int = 16, *, dither: bool = False,
                  random_state: int | None = 0) -> Quantized:
    """Quantize with another method, for comparisons.

    Methods: ``"vision_lib"`` (this module), ``"minibatch_kmeans"`` and ``"kmeans"`` (scikit-learn
    on all pixels, defaults, as a typical script does; KMeans with ``n_init=1``), ``"median_cut"``
    and ``"fast_octree"`` (Pillow), ``"pngquant"`` (the command line tool, when installed).
    Dithering applies to the final mapping for every method (Pillow Floyd-Steinberg; pngquant's own).
    scikit-learn runs on one thread, like this module's quantizer, so times compare like for like
    (its default OpenMP threads made MiniBatchKMeans 10x slower on a busy 2-core machine).
    """
    image = check_rgb(image, min_side=1)
    start = time.perf_counter()
    if method == "vision_lib":
        return quantize(image, k, dither=dither, random_state=random_state)
    if method in ("minibatch_kmeans", "kmeans"):
        from sklearn.cluster import KMeans, MiniBatchKMeans
        from threadpoolctl import threadpool_limits

        pixels = image.reshape(-1, 3).astype(np.float64)
        model = (MiniBatchKMeans(n_clusters=k, random_state=random_state) if method == "minibatch_kmeans"
                 else KMeans(n_clusters=k, n_init=1, random_state=random_state))
        with threadpool_limits(1):
            labels = model.fit(pixels).predict(pixels)
        palette = np.clip(np.rint(model.cluster_centers_), 0, 255).astype(np.uint8)
        index = _dither(image, palette) if dither else labels.astype(np.uint8).reshape(image.shape[:2])
    elif method in ("median_cut", "fast_octree"):
        from PIL import Image

        how = Image.Quantize.MEDIANCUT if method == "median_cut" else Image.Quantize.FASTOCTREE
        d = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
        out = Image.fromarray(image, "RGB").quantize(k, method=how, dither=d)
        index = np.asarray(out)
        n = int(index.max()) + 1
        palette = np.asarray(out.getpalette()[: 3 * n], dtype=np.uint8).reshape(-1, 3)
    elif method == "pngquant":
        palette, index = _pngquant(image, k, dither)
    else:
        raise ValueError(f"unknown method {method!r}; use 'vision_lib' or one of {BASELINES}")
    return Quantized(palette, index, int(k), bool(dither), method, time.perf_counter() - start)


def _pngquant(image: np.ndarray, k: int, dither: bool) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    exe = shutil.which("pngquant")
    if exe is None:
        raise FileNotFoundError("pngquant is not installed (e.g. `apt-get install pngquant`)")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        Image.fromarray(image, "RGB").save(src, compress_level=1)
        cmd = [exe, str(k), "--force", "--output", str(Path(tmp) / "out.png")]
        if not dither:
            cmd.append("--nofs")
        subprocess.run(cmd + [str(src)], check=True, capture_output=True)
        with Image.open(Path(tmp) / "out.png") as out:
            out.load()
            index = np.asarray(out).copy()
            palette = np.asarray(out.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
    return palette[: int(index.max()) + 1], index


def compare_quantizers(image: np.ndarray, ks: Sequence[int] = (4, 8, 16, 32, 64), *,
                    methods: Sequence[str] = ("vision_lib",) + BASELINES, dither: bool = False,
                    random_state: int | None = 0, name: str = "") -> list[dict]:
    """One row per (method, k): seconds, PSNR, SSIM, palette PNG bytes (pngquant skipped if absent)."""
    rows = []
    for method in methods:
        if method == "pngquant" and not pngquant_available():
            continue
        for k in ks:
            q = quantize_with(method, image, k, dither=dither, random_state=random_state)
            rows.append({"image": name, "method": method, "k": int(k), "seconds": round(q.seconds, 4),
                         **fidelity(image, q), "bytes": len(q.png_bytes())})
    return rows


#: Lossy photo codecs (Pillow) compared at the palette PNG's byte budget.
CODECS = ("jpeg", "webp")


def encode_with(codec: str, image: np.ndarray, quality: int) -> bytes:
    """``image`` as a JPEG (4:2:0, optimized Huffman tables) or lossy WebP file at ``quality`` (1-100)."""
    import io

    from PIL import Image

    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    buf = io.BytesIO()
    options = {"optimize": True} if codec == "jpeg" else {"method": 4}
    Image.fromarray(check_rgb(image)).save(buf, format=codec.upper(), quality=int(quality), **options)
    return buf.getvalue()


def codec_at_bytes(codec: str, image: np.ndarray, budget: int) -> dict:
    """The best ``codec`` file of ``image`` within ``budget`` bytes: the highest quality (found by
    bisection: size grows with quality) whose file fits, with its bytes, PSNR and SSIM. When even
    quality 1 does not fit, that file is reported with ``fits`` False."""
    import io

    from PIL import Image

    lo, hi, best = 1, 100, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = encode_with(codec, image, mid)
        if len(data) <= budget:
            best, lo = (mid, data), mid + 1
        else:
            hi = mid - 1
    fits = best is not None
    quality, data = best if fits else (1, encode_with(codec, image, 1))
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return {"method": codec, "quality": quality, "bytes": len(data), "fits": fits, **fidelity(image, decoded)}


def equal_bytes(image: np.ndarray, q: Quantized, *, name: str = "", codecs: Sequence[str] = CODECS) -> list[dict]:
    """The palette PNG of ``q`` beside each codec at the same byte budget (the PNG's size): one row
    each with ``image``, ``method``, ``k``, ``bytes``, ``psnr``, ``ssim`` (and the codec's ``quality``)."""
    budget = len(q.png_bytes())
    rows = [{"image": name, "method": "palette PNG", "k": q.k, "bytes": budget, **fidelity(image, q)}]
    rows += [{"image": name, "k": q.k, **codec_at_bytes(c, image, budget)} for c in codecs]
    return rows


def summarise(rows: Sequence[dict], by: Sequence[str] = ("method", "k"),
              values: Sequence[str] = ("psnr", "ssim", "bytes", "seconds")) -> list[dict]:
    """Mean of ``values`` per group of rows (e.g. over images), groups in order of appearance."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[b] for b in by), []).append(r)
    out = []
    for key, members in groups.items():
        row = dict(zip(by, key))
        row["n"] = len(members)
        for v in values:
            xs = [m[v] for m in members if v in m and np.isfinite(m[v])]
            row[v] = round(float(np.mean(xs)), 4) if xs else float("nan")
        out.append(row)
    return out


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A fixed-width text table of dict rows (for notebooks and logs)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
