"""ipywidgets controls for the notebooks.

:class:`CompressionExplorer`: pick a photo in a folder, slide k, toggle dithering; the compressed
image, its figures (PSNR, SSIM, bytes, ratios) and the colour-space view update in place. Work is
cached at three levels so moving around feels live:

* per photo: the pixels, their distinct colours (:func:`compress.colour_table`), a 256-colour
  K-Means palette with its Ward merges (:func:`compress.palette_tree`), the original's SSIM
  statistics and PNG sizes, and the colour-space background (sampled pixel cloud rendered once);
* per (photo, k): the palette; per (photo, k, dither): its palette PNG and figures, so going back is
  instant and the dithering toggle reuses the palette;
* the colour-space view redraws only the palette points over the cached background (Agg blitting).

**Live fits (default, ``live=True``).** A new k is fitted by :func:`compress.refit`: the k-colour
cut of the photo's Ward merge tree, 5 weighted Lloyd iterations on 6-bit bins, one exact Lloyd step,
then every pixel's exactly nearest colour. Its palette is not the one :func:`compress.quantize`
(the CLI) would give: over the Kodak photos the PSNR differs by a few hundredths of a dB on average,
at worst -0.27 dB, and more with dithering, either way (``benchmarks/bench_compress.py`` measures it). The figures shown are always those of the image
shown (PSNR from its exact squared error, SSIM and bytes of its palette PNG). ``live=False`` runs
:func:`compress.quantize` for every new view instead (slower, the CLI's palettes).

The computing side (:meth:`CompressionExplorer.update`) works without a front-end, which is how the
benchmark times it.

:class:`ClusterNamer`: browse the identity clusters of ``vision-lib cluster`` as face thumbnails,
name them, merge two, move a face, mark "not a person of interest" and save the names table that
``vision-lib train PHOTOS --names`` trains on; a thin layer over :mod:`vision_lib.naming`, with a
static :meth:`ClusterNamer.snapshot` for exported HTML.
"""
from __future__ import annotations

import html
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import compress, naming
from .io import load_image


@dataclass
class _Photo:
    image: np.ndarray
    histogram: compress.ColourBins | None  # live=False: what quantize() fits on
    table: compress.ColourTable | None  # live=True: distinct colours ...
    tree: compress.PaletteTree | None  # ... and the merge tree refit() starts from
    ssim: compress.SSIM
    original_bytes: int
    plain_png_bytes: int
    preview_png: bytes
    background: object  # Agg region of the rendered pixel cloud


class CompressionExplorer:
    """Interactive colour-quantization explorer over the photos of a folder.

    Args:
        images: a folder of photos or a list of photo paths.
        k: initial number of colours (2..256).
        dither: initial dithering state.
        n_points: pixels sampled for the colour-space cloud.
        random_state: seed for the quantizer and the pixel sample.
        live: fast fits for new k (:func:`compress.refit`, see the module docstring) instead of
            :func:`compress.quantize` for each.

    Use ``display(explorer.widget)`` in a notebook; :meth:`update` recomputes (with caches) and
    refreshes the controls, returning the figures of the current view.
    """

    def __init__(self, images: str | os.PathLike | Sequence[str | os.PathLike], *, k: int = 16,
                 dither: bool = False, n_points: int = 1500, random_state: int | None = 0,
                 live: bool = True):
        from .io import list_images

        if isinstance(images, (str, os.PathLike)):
            paths = list_images(images)
        else:
            paths = [Path(p) for p in images]
        if not paths:
            raise FileNotFoundError(f"no photos in {images}")
        self.paths = paths
        self.names = _unique_names(paths)
        self.k, self.dither, self.path = int(k), bool(dither), paths[0]
        self.n_points = n_points
        self.random_state = random_state
        self.live = bool(live)
        self._photos: dict[Path, _Photo] = {}
        self._palettes: dict[tuple[Path, int], np.ndarray] = {}
        self._results: dict[tuple[Path, int, bool], dict] = {}
        self._figure = None
        self._controls = None
        self._pool = None
        self.last_seconds: float | None = None

    # ------------------------------------------------------------------ computing
    def update(self, path: str | os.PathLike | None = None, k: int | None = None,
               dither: bool | None = None) -> dict:
        """Show ``path`` at ``k`` colours (``None`` keeps the current value); returns the figures."""
        start, cpu = time.perf_counter(), time.process_time()
        if path is not None:
            self.path = Path(path)
        if k is not None:
            if int(k) != k or not 2 <= int(k) <= 256:  # checked before it is kept: a bad k must not stick
                raise ValueError(f"k must be a whole number between 2 and 256, got {k!r}")
            self.k = int(k)
        if dither is not None:
            self.dither = bool(dither)
        photo = self._photo(self.path)
        key = (self.path, self.k, self.dither)
        cached = key in self._results
        if not cached:
            q = self._quantize(photo)
            # zlib (in Pillow) and OpenCV release the GIL: encode the palette PNG on the second core
            # while this thread computes the quality figures and the colour-space view.
            png_job = self._encoder().submit(q.png_bytes)
            if self.live and not q.dither:  # exact squared error from the distinct colours: cheap
                sse = photo.table.squared_error(q.palette, q.colour_labels)
                value = 10.0 * np.log10(255.0 ** 2 * photo.image.size / sse) if sse > 0 else float("inf")
            else:
                value = compress.psnr(photo.image, q.image)
            ssim = photo.ssim(q)
            colour_space = self._colour_space_png(photo, q.palette)
            png = png_job.result()
            report = {"k": self.k, "colors": len(q.palette), "dither": self.dither, "bytes": len(png),
                      "psnr": round(float(value), 4), "ssim": round(ssim, 5),
                      "original_bytes": photo.original_bytes,
                      "ratio": round(photo.original_bytes / len(png), 3),
                      "plain_png_bytes": photo.plain_png_bytes,
                      "ratio_vs_plain_png": round(photo.plain_png_bytes / len(png), 3),
                      "fit": "live" if self.live else "full", "fit_seconds": round(q.seconds, 4)}
            self._results[key] = {"png": png, "palette": q.palette, "report": report,
                                  "colour_space": colour_space}
        result = self._results[key]
        self._refresh(photo, result)
        self.last_seconds = time.perf_counter() - start
        return {**result["report"], "cached": cached, "seconds": round(self.last_seconds, 4),
                "cpu_seconds": round(time.process_time() - cpu, 4)}

    def _encoder(self):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png")
        return self._pool

    def _quantize(self, photo: _Photo) -> compress.Quantized:
        if not self.live:
            return compress.quantize(photo.image, self.k, dither=self.dither, random_state=self.random_state,
                                     histogram=photo.histogram)
        palette = self._palettes.get((self.path, self.k))
        if palette is not None:  # the same k with dithering toggled: same palette
            q = compress.map_to_palette(photo.table, palette, dither=self.dither)
            q.k = self.k
        else:
            q = compress.refit(photo.table, photo.tree, self.k, dither=self.dither)
            self._palettes[(self.path, self.k)] = q.palette
        return q

    def _photo(self, path: Path) -> _Photo:
        if path not in self._photos:
            image = load_image(path)
            if self.live:
                hist, table = None, compress.colour_table(image)
                tree = compress.palette_tree(table, random_state=self.random_state)
            else:
                hist, table, tree = compress.colour_bins(image), None, None
            self._photos[path] = _Photo(
                image, hist, table, tree, compress.SSIM(image), path.stat().st_size,
                len(compress.plain_png_bytes(image)), _fast_png(image), self._colour_space_background(image),
            )
        return self._photos[path]

    # ------------------------------------------------------------------ colour space (Agg blitting)
    def _colour_space_background(self, image: np.ndarray):
        fig = self._colour_figure()
        ax, cloud = fig.axes[0], self._cloud
        pts = compress.sample_pixels(image, self.n_points, self.random_state)
        cloud._offsets3d = (pts[:, 0], pts[:, 1], pts[:, 2])
        cloud.set_facecolors(pts / 255.0)
        self._palette_points.set_visible(False)
        fig.canvas.draw()
        self._palette_points.set_visible(True)
        return fig.canvas.copy_from_bbox(ax.bbox)

    def _colour_space_png(self, photo: _Photo, palette: np.ndarray) -> bytes:
        fig = self._colour_figure()
        canvas, pal = fig.canvas, self._palette_points
        canvas.restore_region(photo.background)
        pal._offsets3d = (palette[:, 0], palette[:, 1], palette[:, 2])
        pal.set_facecolors(palette / 255.0)
        pal.do_3d_projection()
        fig.axes[0].draw_artist(pal)
        return _fast_png(np.asarray(canvas.buffer_rgba())[..., :3])

    def _colour_figure(self):
        if self._figure is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(4.2, 4.2), dpi=80)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot(projection="3d")
            self._cloud = ax.scatter([0], [0], [0], s=3, alpha=0.35, depthshade=False)
            self._palette_points = ax.scatter([0], [0], [0], s=80, edgecolors="black", linewidths=1.0,
                                              depthshade=False, animated=True)
            ax.set(xlim=(0, 255), ylim=(0, 255), zlim=(0, 255), xlabel="R", ylabel="G", zlabel="B")
            ax.set_title("pixels (dots) and palette (circles)", fontsize=9)
            self._figure = fig
        return self._figure

    # ------------------------------------------------------------------ widgets
    @property
    def widget(self):
        """The ipywidgets box (built on first use, then updated in place)."""
        if self._controls is None:
            self._build()
            self._show()
        return self._controls["box"]

    def _build(self) -> None:
        import ipywidgets as w

        names = dict(zip(self.names, self.paths))
        image_box = w.Dropdown(options=list(names.items()), value=self.path, description="photo",
                               layout=w.Layout(width="auto", max_width="100%"))
        k_box = w.IntSlider(value=self.k, min=2, max=256, step=1, description="k colours",
                            continuous_update=False)
        dither_box = w.ToggleButton(value=self.dither, description="dithering")
        # Each image keeps its own aspect ratio: a width and height:auto (a flex row would otherwise
        # stretch it to the tallest item's height), in a row that wraps in a narrow window.
        images = {name: w.Image(format="png", layout=w.Layout(width="100%", height="auto", object_fit="contain"))
                  for name in ("original", "compressed", "space")}
        captions = {name: w.HTML(f"<b>{text}</b>") for name, text in
                    (("original", "original"), ("compressed", "quantized"), ("space", "colour space"))}
        columns = [w.VBox([captions[name], images[name]],
                          layout=w.Layout(width=f"{width}px", max_width="100%", margin="0 8px 8px 0"))
                   for name, width in (("original", 400), ("compressed", 400), ("space", 336))]
        figures, busy = w.HTML(), w.HTML()
        image_box.observe(lambda ch: self._show(path=ch["new"]), names="value")
        k_box.observe(lambda ch: self._show(k=ch["new"]), names="value")
        dither_box.observe(lambda ch: self._show(dither=ch["new"]), names="value")
        wrap = w.Layout(display="flex", flex_flow="row wrap", align_items="flex-start")
        box = w.VBox([w.Box([image_box, k_box, dither_box], layout=wrap), busy,
                      w.Box(columns, layout=wrap), figures])
        box.add_class("vl-explorer")
        self._controls = {"box": box, **images, "captions": captions, "figures": figures, "busy": busy,
                          "image": image_box, "k": k_box, "dither": dither_box}

    def _show(self, **change) -> None:
        """A control moved: update, and show an unreadable photo's reason in the figures area
        (an exception in an ipywidgets observer would only reach the kernel log)."""
        from .io import ImageError

        c = self._controls
        path = Path(change["path"]) if change.get("path") is not None else self.path
        first_view = path not in self._photos
        if first_view:  # seconds of work ahead: say so, and dim the previous photo meanwhile
            c["busy"].value = (f'<div class="vl-busy">Working: first view of <b>{html.escape(path.name)}</b> '
                               "(its colour tree: a few seconds; later changes are instant)...</div>")
            c["box"].add_class("vl-working")
        try:
            self.update(**change)
        except ImageError as exc:
            for name in ("original", "compressed", "space"):
                c[name].value = b""
            c["figures"].value = f"<b>Cannot show {html.escape(exc.path)}</b>: {html.escape(exc.reason)}"
        finally:
            if first_view:
                c["busy"].value = ""
                c["box"].remove_class("vl-working")

    def _refresh(self, photo: _Photo, result: dict) -> None:
        c = self._controls
        if c is None:
            return
        if c["original"].value != photo.preview_png:
            c["original"].value = photo.preview_png
        c["compressed"].value = result["png"]
        c["space"].value = result["colour_space"]
        r = result["report"]
        c["captions"]["original"].value = f"<b>original</b> ({photo.image.shape[1]}x{photo.image.shape[0]})"
        c["captions"]["compressed"].value = (f"<b>quantized</b>: {r['colors']} colours"
                                             + (", dithered" if r["dither"] else ""))
        c["figures"].value = _BUSY_STYLE + _figures_html(r)

    def snapshot(self) -> "Snapshot":
        """A static copy of the current view (photo, quantized photo, colour space and figures) as
        inline HTML images: what the exported HTML report and the slide decks show, where the live
        widget cannot run."""
        self.update()
        photo, result = self._photo(self.path), self._results[(self.path, self.k, self.dither)]
        return Snapshot(photo.preview_png, result["png"], result["colour_space"], result["report"],
                        self.path.name)


#: Dims the explorer while a new photo is prepared (the page's stylesheet; no script).
_BUSY_STYLE = ("<style>.vl-working .widget-image{opacity:.35;transition:opacity .2s}"
               ".vl-busy{padding:4px 8px;background:#fff3cd;border:1px solid #e0c36c;border-radius:4px}</style>")


class Snapshot:
    """The explorer's view frozen: displays as HTML with the images inlined (no widget, no CDN),
    framed and titled as a snapshot so that it is not taken for a second, frozen explorer."""

    def __init__(self, original: bytes, compressed: bytes, colour_space: bytes, report: dict, name: str = ""):
        self.original, self.compressed, self.colour_space, self.report = original, compressed, colour_space, report
        self.name = name

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        import base64
        import html

        r = self.report
        captions = ("original", f"quantized: {r['colors']} colours" + (", dithered" if r["dither"] else ""),
                    "colour space")
        imgs = "".join(
            f'<figure style="margin:0 8px 8px 0;width:{width}px;max-width:100%">'
            f'<figcaption style="font-weight:bold">{caption}</figcaption>'
            f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{caption}" '
            f'style="width:100%;height:auto"></figure>'
            for png, caption, width in zip((self.original, self.compressed, self.colour_space), captions,
                                           (400, 400, 336)))
        title = (f"Snapshot (a still picture for exported pages): {html.escape(self.name)} at k={r['k']}"
                 if self.name else f"Snapshot (a still picture for exported pages) at k={r['k']}")
        text = (f"k={r['k']}: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.3f}, palette PNG {r['bytes'] / 1024:.1f} KiB "
                f"(1/{r['ratio']:.1f} of the original file)")
        return {"text/html": f'<div class="vl-snapshot" style="border:1px dashed #999;padding:6px;background:#f7f7f7">'
                             f'<div style="color:#555;font-style:italic;margin-bottom:4px">{title}</div>'
                             f'<div style="display:flex;flex-wrap:wrap;align-items:flex-start">{imgs}</div>'
                             f"<div>{_figures_html(r)}</div></div>", "text/plain": text}


def _figures_html(r: dict) -> str:
    """The figures line under the explorer's images."""
    return (
        f"<b>k={r['k']}</b> ({r['colors']} colours{', dithered' if r['dither'] else ''}): "
        f"PSNR <b>{r['psnr']:.2f} dB</b>, SSIM <b>{r['ssim']:.3f}</b>; palette PNG "
        f"<b>{r['bytes'] / 1024:.1f} KiB</b> = 1/{r['ratio']:.1f} of the original file "
        f"({r['original_bytes'] / 1024:.0f} KiB), 1/{r['ratio_vs_plain_png']:.1f} of a plain PNG "
        f"({r['plain_png_bytes'] / 1024:.0f} KiB)"
        + ("<br><small>live fit: a fast K-Means started from the photo's 256-colour fit; its "
           "palette differs from <code>vision-lib compress</code>'s: PSNR usually within 0.1 dB, "
           "more with dithering, either way. The figures are those of the image shown.</small>"
           if r.get("fit") == "live" else "")
    )

def _fast_png(rgb: np.ndarray) -> bytes:
    # Previews only (not measured): fastest zlib level.
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


# --------------------------------------------------------------------------- naming clusters by hand
class ClusterNamer:
    """Browse identity clusters as face thumbnails and name them (docs/presentation.md).

    Clusters come largest first; clusters of background faces (more than half of their faces not
    their photo's subject), unassigned faces (``-1``) and clusters marked "not a person of
    interest" come last. Every edit is a :mod:`vision_lib.naming` function on :attr:`rows`, so the
    methods (:meth:`name`, :meth:`merge`, :meth:`move`, :meth:`save`) work without a front-end too;
    an edit that cannot do what it says raises ValueError and changes nothing (the widget shows the
    reason). A large cluster is shown a page at a time; naming it, or marking it out, is refused
    until every page has been seen.

    Args:
        names: a names table or ``clusters.csv`` (path), or rows of :func:`naming.load_names`.
        photos_root: the folder ``vision-lib cluster`` was run on (the sources are relative to it).
        out: where :meth:`save` writes by default (default: ``names.csv`` beside a ``names`` path,
            else in the working folder); kept as an absolute path.
        boxes: ``{(source, face_index): (x, y, w, h)}`` of the faces; default: detected (disk-cached,
            the same detector and numbering as ``vision-lib cluster``) when first shown.
        subjects: the faces that are their photo's subject (``(source, face_index)``; default: face 0,
            the largest, as ``vision-lib cluster`` numbers them).
        detector, descriptor: as given to ``vision-lib cluster`` (None: the defaults).
        thumb: thumbnail side (px); per_cluster: faces per page.
    """

    def __init__(self, names: "Sequence[naming.Row] | str | os.PathLike", photos_root: str | os.PathLike, *,
                 out: str | os.PathLike | None = None, boxes: dict | None = None, subjects=None,
                 detector: str | None = None, descriptor: str | None = None, thumb: int = 72,
                 per_cluster: int = 48, progress: bool = False):
        from_path = isinstance(names, (str, os.PathLike))
        self.rows: list[naming.Row] = naming.load_names(names) if from_path else list(names)
        self.root = Path(photos_root)
        default = Path(names).with_name("names.csv") if from_path else Path("names.csv")
        self.out = Path(out if out is not None else default).expanduser().resolve()
        self.detector, self.descriptor, self.progress = detector, descriptor, progress
        self.thumb, self.per_cluster = int(thumb), max(1, int(per_cluster))
        self.subjects = None if subjects is None else {(str(s), int(j)) for s, j in subjects}
        self._boxes: dict = dict(boxes) if boxes is not None else {}
        self._detect = boxes is None
        self._looked: set[str] = set()
        self._thumbs: dict[tuple[str, int], bytes] = {}
        #: Faces whose thumbnail could not be made, with the reason: ``{(source, face_index): reason}``.
        self.problems: dict[tuple[str, int], str] = {}
        self.current: int | None = None
        self.page = 0
        self._seen: dict[int, set[int]] = {}  # cluster -> pages shown since its faces last changed
        self._ticked: set[tuple[str, int]] = set()
        self._controls: dict | None = None
        self._refreshing = False

    @classmethod
    def from_collection(cls, collection, **options) -> "CollectionNamer":
        """The namer on a face collection, saving every decision to it at once (:class:`CollectionNamer`)."""
        return CollectionNamer(collection, **options)

    # ------------------------------------------------------------------ the table
    def clusters(self) -> list[int]:
        """Cluster ids: people largest first, then clusters of background faces, unassigned (-1) and
        clusters all marked ``-``."""
        size: dict[int, int] = {}
        for r in self.rows:
            size[r.cluster] = size.get(r.cluster, 0) + 1
        return sorted(size, key=lambda c: (c == -1, self._marked_out(c), self.background(c), -size[c], c))

    def faces(self, cluster: int) -> list[naming.Row]:
        return [r for r in self.rows if r.cluster == cluster]

    def _marked_out(self, cluster: int) -> bool:
        return all(r.name == naming.NOT_OF_INTEREST for r in self.faces(cluster))

    def background(self, cluster: int) -> bool:
        """True when more than half of the cluster's faces are not their photo's subject (fans,
        team-mates: rarely a person to name)."""
        faces = self.faces(cluster)
        if self.subjects is None:
            others = sum(r.face_index != 0 for r in faces)
        else:
            others = sum((r.source, r.face_index) not in self.subjects for r in faces)
        return cluster != -1 and others > 0.5 * len(faces)

    def label(self, cluster: int) -> str:
        """``cluster 3: Ann (12 faces)``; unnamed, mixed, background and not-of-interest clusters said so."""
        faces = self.faces(cluster)
        names = sorted({r.name for r in faces if r.name})
        who = (", ".join("not of interest" if n == naming.NOT_OF_INTEREST else n for n in names) or "unnamed")
        if names and any(not r.name for r in faces):
            who += " + unnamed"
        if not names and self.background(cluster):
            who += ", mostly background faces"
        head = "unassigned" if cluster == -1 else f"cluster {cluster}"
        return f"{head}: {who} ({len(faces)} face{'s' if len(faces) != 1 else ''})"

    def pages(self, cluster: int) -> int:
        return max(1, -(-len(self.faces(cluster)) // self.per_cluster))

    def unseen(self, cluster: int) -> int:
        """How many faces of ``cluster`` have not been shown (pages not yet visited)."""
        seen = self._seen.get(cluster, set())
        n = len(self.faces(cluster))
        return sum(min(self.per_cluster, n - p * self.per_cluster) for p in range(self.pages(cluster)) if p not in seen)

    def name(self, cluster: int, name: str, *, seen_only: bool = False) -> None:
        """Name every face of ``cluster`` (``naming.NOT_OF_INTEREST``: leave them out of training).
        With ``seen_only`` (the widget), refused while some of its faces were never shown."""
        if not name.strip():
            raise ValueError("type a name first (or mark the cluster not of interest)")
        self._check_seen(cluster, seen_only, "naming it" if name != naming.NOT_OF_INTEREST else "marking it out")
        self.rows = naming.name_cluster(self.rows, cluster, name)

    def _check_seen(self, cluster, seen_only: bool, what: str) -> None:
        if cluster is None or not self.faces(cluster):
            raise ValueError("choose a cluster first")
        missing = self.unseen(cluster) if seen_only else 0
        if missing:
            raise ValueError(f"{missing} of this cluster's {len(self.faces(cluster))} faces were not shown yet: "
                             f"page through them (next) before {what}")

    def merge(self, keep: int, other: int) -> None:
        """Move every face of ``other`` into ``keep``."""
        if other is None:
            raise ValueError("choose the cluster to merge into this one (the 'with' menu)")
        if keep == other:
            raise ValueError("choose another cluster to merge")
        if not self.faces(other):
            raise ValueError(f"there is no cluster {other}")
        self.rows = naming.merge_clusters(self.rows, keep, other)
        self._seen.pop(keep, None)  # new faces there, not seen yet

    def move(self, faces: "Sequence[tuple[str, int]]", cluster: int) -> None:
        """Move faces ``(source, face_index)`` to ``cluster`` (``-1``: out of every cluster)."""
        faces = list(faces)
        if not faces:
            raise ValueError("tick the faces to move first")
        if cluster is None:
            raise ValueError("choose where to move them (the 'to' menu)")
        cluster = naming.check_cluster(cluster)
        rows = self.rows
        for source, index in faces:  # all or nothing: self.rows changes only if every face moved
            rows = naming.move_face(rows, source, index, cluster)
        self.rows = rows
        self._seen.pop(cluster, None)

    def save(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> Path:
        """Write the names table (to :attr:`out` by default); an existing file only with ``overwrite``."""
        path = Path(path if path not in (None, "") else self.out).expanduser().resolve()
        return naming.save_names(self.rows, path, overwrite=overwrite)

    # ------------------------------------------------------------------ thumbnails
    def _photo(self, source: str) -> Path:
        """The file of a row's photo."""
        return self.root / source

    def _find_boxes(self, rows: Sequence[naming.Row]) -> None:
        if not self._detect:
            return
        todo = sorted({r.source for r in rows} - self._looked)
        if not todo:
            return
        from .faces import detect_paths

        found = detect_paths([self.root / s for s in todo], self.detector, descriptors=self.descriptor or True,
                             progress=self.progress)
        for source, pf in zip(todo, found):
            self._looked.add(source)
            if pf.error:
                self.problems.update({(r.source, r.face_index): pf.error for r in self.rows if r.source == source})
            for j, f in enumerate(pf.faces):
                self._boxes[(source, j)] = f.box

    def thumbnails(self, rows: Sequence[naming.Row]) -> list[bytes]:
        """A PNG thumbnail per face (a grey square where it cannot be made: see :attr:`problems`)."""
        from PIL import Image

        from .geometry import Face, crop
        from .io import ImageError

        rows = list(rows)
        self._find_boxes([r for r in rows if (r.source, r.face_index) not in self._thumbs])
        images: dict[str, np.ndarray] = {}
        out = []
        for r in rows:
            key = (r.source, r.face_index)
            if key not in self._thumbs:
                box = self._boxes.get(key)
                face = None
                try:
                    if box is None:
                        raise ValueError(self.problems.get(key) or f"face {r.face_index} not found in the photo")
                    if r.source not in images:
                        images[r.source] = load_image(self._photo(r.source))
                    face = crop(images[r.source], Face(tuple(int(v) for v in box), 1.0))
                except (ImageError, ValueError, OSError) as exc:
                    self.problems[key] = getattr(exc, "reason", None) or str(exc)
                if face is None:
                    face = np.full((self.thumb, self.thumb, 3), 200, np.uint8)
                self._thumbs[key] = _fast_png(np.asarray(Image.fromarray(face).resize((self.thumb, self.thumb))))
            out.append(self._thumbs[key])
        return out

    # ------------------------------------------------------------------ static copy
    def snapshot(self, *, max_clusters: int = 12, max_faces: int = 10) -> "NamesSnapshot":
        """The clusters as one image (a row of thumbnails per cluster, with its current name) and
        the table in words: what exported HTML and slide decks show where the widget cannot run."""
        from PIL import Image, ImageDraw

        shown = self.clusters()[:max_clusters]
        text_w, t, gap = 260, self.thumb, 4
        cols = max([min(max_faces, len(self.faces(c))) for c in shown], default=1)
        sheet = Image.new("RGB", (text_w + cols * (t + gap), max(1, len(shown)) * (t + gap)), "white")
        draw = ImageDraw.Draw(sheet)
        for k, c in enumerate(shown):
            y = k * (t + gap)
            faces = self.faces(c)
            label = self.label(c)
            draw.text((4, y + t // 2 - 12), label if len(label) <= 40 else label[:37] + "...", fill="black")
            if len(faces) > max_faces:
                draw.text((4, y + t // 2 + 2), f"(first {max_faces} shown)", fill="grey")
            for i, png in enumerate(self.thumbnails(faces[:max_faces])):
                sheet.paste(Image.open(io.BytesIO(png)).convert("RGB"), (text_w + i * (t + gap), y))
        buf = io.BytesIO()
        sheet.save(buf, "PNG")
        hidden = len(self.clusters()) - len(shown)
        return NamesSnapshot(buf.getvalue(), [self.label(c) for c in shown], hidden)

    # ------------------------------------------------------------------ widgets
    @property
    def widget(self):
        """The ipywidgets box (built on first use, then updated in place)."""
        if self._controls is None:
            self._build()
        return self._controls["box"]

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _build(self) -> None:
        import ipywidgets as w

        auto = w.Layout(width="auto")
        wide = w.Layout(width="640px", max_width="100%")
        c = self._controls = {
            "cluster": w.Dropdown(description="cluster", layout=wide),
            "name": w.Text(placeholder="person's name", description="name", layout=w.Layout(width="320px")),
            "name_button": w.Button(description="Name cluster", button_style="primary", layout=auto),
            "out_button": w.Button(description="Not a person of interest", layout=auto),
            "merge": w.Dropdown(description="with", layout=wide),
            "merge_button": w.Button(description="Merge it into this cluster", layout=auto),
            "move": w.Dropdown(description="to", layout=wide),
            "move_button": w.Button(description="Move ticked faces", layout=auto),
            "prev": w.Button(description="◀ previous", layout=auto),
            "next": w.Button(description="next ▶", layout=auto),
            "page": w.HTML(),
            "path": w.Text(value=str(self.out), description="save as", layout=w.Layout(width="640px", max_width="100%")),
            "overwrite": w.Checkbox(value=False, description="overwrite", indent=False, layout=auto),
            "save_button": w.Button(description="Save", layout=auto),
            "grid": w.GridBox(layout=w.Layout(grid_template_columns=f"repeat(auto-fill, {self.thumb + 48}px)",
                                              grid_gap="6px")),
            "status": w.HTML(layout=w.Layout(min_height="1.5em")),
            "cells": [],
        }
        c["cluster"].observe(lambda ch: self._select(ch["new"]), names="value")
        c["name_button"].on_click(lambda _: self._act(
            lambda: self.name(self.current, c["name"].value, seen_only=True)))
        c["out_button"].on_click(lambda _: self._act(
            lambda: self.name(self.current, naming.NOT_OF_INTEREST, seen_only=True)))
        c["merge_button"].on_click(lambda _: self._act(lambda: self.merge(self.current, c["merge"].value)))
        c["move_button"].on_click(lambda _: self._act(self._move))
        c["prev"].on_click(lambda _: self._turn(-1))
        c["next"].on_click(lambda _: self._turn(+1))
        c["save_button"].on_click(lambda _: self._act(self._save, refresh=False))
        row = w.Layout(display="flex", flex_flow="row wrap", align_items="center")
        c["box"] = w.VBox([
            w.Box([c["cluster"]], layout=row), w.Box([c["name"], c["name_button"], c["out_button"]], layout=row),
            w.Box([c["merge"], c["merge_button"]], layout=row), w.Box([c["move"], c["move_button"]], layout=row),
            w.Box([c["path"], c["overwrite"], c["save_button"]], layout=row),
            c["status"],  # above the grid: seen where the buttons are, however long the grid
            w.Box([c["prev"], c["page"], c["next"]], layout=row), c["grid"]])
        c["box"].add_class("vl-namer")
        c["status"].add_class("vl-status")
        self._refresh()
        c["status"].value = html.escape(f"Saves to {self.out}")

    def _cell(self, i: int):
        """Grid cell ``i`` (thumbnail, tick box, full file name), made once and reused: a cluster
        switch only changes values (new widgets per switch took 0.6 s)."""
        import ipywidgets as w

        c = self._controls
        while len(c["cells"]) <= i:
            k = len(c["cells"])
            image = w.Image(format="png", width=self.thumb, height=self.thumb)
            tick = w.Checkbox(value=False, description="tick", indent=False, layout=w.Layout(width="auto"))
            caption = w.HTML(layout=w.Layout(width=f"{self.thumb + 44}px"))
            tick.observe(lambda ch, k=k: self._tick(k, ch["new"]), names="value")
            c["cells"].append({"box": w.VBox([image, tick, caption]), "image": image, "tick": tick,
                               "caption": caption, "key": None})
        return c["cells"][i]

    def _tick(self, i: int, value: bool) -> None:
        key = self._controls["cells"][i]["key"]
        if self._refreshing or key is None:
            return
        (self._ticked.add if value else self._ticked.discard)(key)

    def ticked(self) -> list[tuple[str, int]]:
        """The faces of the current cluster whose box is ticked (on any of its pages)."""
        here = {(r.source, r.face_index) for r in self.faces(self.current)} if self.current is not None else set()
        return sorted(self._ticked & here)

    def _move(self) -> None:
        self.move(self.ticked(), self._controls["move"].value)
        self._ticked.clear()

    def _select(self, cluster) -> None:
        if not self._refreshing and cluster is not None and cluster != self.current:
            self.current, self.page = cluster, 0
            self._ticked.clear()
            self._refresh()

    def _turn(self, step: int) -> None:
        self.page = min(max(0, self.page + step), self.pages(self.current) - 1) if self.current is not None else 0
        self._refresh()

    def _save(self) -> str:
        c = self._controls
        path = self.save(c["path"].value.strip() or None, overwrite=c["overwrite"].value)
        c["path"].value = str(path)
        return f"saved {len(self.rows)} rows to {path}"

    def _act(self, action, refresh: bool = True) -> None:
        """Run an edit and redraw; a refusal is shown under the grid and changes nothing (an
        exception in a callback would only reach the kernel log)."""
        try:
            said = action()
        except (ValueError, KeyError, OSError) as exc:
            self._controls["status"].value = f"<b>Not done</b>: {html.escape(str(exc).strip(chr(39)), quote=False)}"
            return
        if refresh:
            self._refresh()
        self._controls["status"].value = html.escape(said if isinstance(said, str) else self._summary(), quote=False)

    def _summary(self) -> str:
        named = naming.named_faces(self.rows)
        return (f"{sum(map(len, named.values()))} faces named ({len(named)} people), "
                f"{sum(r.name == naming.NOT_OF_INTEREST for r in self.rows)} not of interest, "
                f"{sum(not r.name for r in self.rows)} unnamed; not saved yet ({self.out})")

    def _refresh(self) -> None:
        c = self._controls
        order = self.clusters()
        if self.current not in order:
            self.current, self.page = (order[0] if order else None), 0
        options = [(self.label(k), k) for k in order]
        others = [o for o in options if o[1] not in (self.current, -1)]
        self._refreshing = True  # new options move the dropdowns' values: not a choice of the user
        try:
            if tuple(c["cluster"].options) != tuple(options):
                c["cluster"].options = options
            c["cluster"].value = self.current
            # Nothing pre-selected: a second click must not merge or move into a cluster nobody chose.
            merge = [("(choose a cluster)", None)] + others
            move = [("(choose where)", None), ("out of every cluster (-1)", -1)] + others
            for name, opts in (("merge", merge), ("move", move)):
                if tuple(c[name].options) != tuple(opts):
                    c[name].options = opts
                c[name].index = None  # then 0: always sent, whatever the page last showed
                c[name].index = 0  # the "(choose ...)" entry, whose value is None
            self._show_page()
        finally:
            self._refreshing = False
        faces = self.faces(self.current) if self.current is not None else []
        c["name"].value = next((r.name for r in faces if r.name and r.name != naming.NOT_OF_INTEREST), "")

    def _show_page(self) -> None:
        c = self._controls
        faces = self.faces(self.current) if self.current is not None else []
        self.page = min(self.page, self.pages(self.current) - 1) if faces else 0
        start = self.page * self.per_cluster
        shown = faces[start:start + self.per_cluster]
        if faces:
            self._seen.setdefault(self.current, set()).add(self.page)
        for i, (r, png) in enumerate(zip(shown, self.thumbnails(shown))):
            cell, key = self._cell(i), (r.source, r.face_index)
            if cell["image"].value != png:
                cell["image"].value = png
            cell["key"] = key
            cell["tick"].value = key in self._ticked
            cell["caption"].value = (f'<div style="font-size:11px;line-height:1.2;word-break:break-all">'
                                     f"{html.escape(r.source)} #{r.face_index}</div>")
            cell["box"].layout.display = None
        for cell in c["cells"][len(shown):]:
            cell["key"] = None
            cell["box"].layout.display = "none"
        boxes = [cell["box"] for cell in c["cells"]]
        if list(c["grid"].children) != boxes:
            c["grid"].children = boxes
        n, pages = len(faces), self.pages(self.current) if faces else 1
        c["page"].value = (f"&nbsp;faces {start + 1}-{start + len(shown)} of {n} (page {self.page + 1} of {pages})&nbsp;"
                           if n else "&nbsp;no faces&nbsp;")
        c["prev"].disabled, c["next"].disabled = self.page == 0, self.page >= pages - 1


class CollectionNamer(ClusterNamer):
    """:class:`ClusterNamer` on a face collection (:class:`vision_lib.Collection`, docs/collection.md):
    its people are the clusters (by person id), a face in no person is unassigned (``-1``). Every
    decision is saved to the collection at once through its methods (name, merge, move, "not a
    person of interest" = :meth:`~vision_lib.Collection.hide`), then the rows are read back from it:
    what is shown is always what the file holds. A refused decision raises ValueError (the widget
    says why) and leaves the file as it was. **Save** still exports the names table
    (``cluster`` = person id). Boxes come from the collection: nothing is detected again.

    Args:
        collection: an open :class:`vision_lib.Collection`.
        out: where **Save** exports the names table (default: ``names.csv`` beside the collection).
        thumb, per_cluster: as :class:`ClusterNamer`.
    """

    def __init__(self, collection, *, out: str | os.PathLike | None = None, thumb: int = 72,
                 per_cluster: int = 48, progress: bool = False):
        self.collection = collection
        super().__init__([], Path(collection.path).parent, boxes={}, thumb=thumb, per_cluster=per_cluster,
                         out=out if out is not None else Path(collection.path).with_name("names.csv"), progress=progress)
        self.reload()

    def reload(self) -> None:
        """Read the rows again from the collection (after an add made elsewhere, say). With photos
        under several folders a row's source is the photo's full path (a relative one may repeat)."""
        import pandas as pd

        df = self.collection.dataframe()
        several = df["root"].nunique() > 1
        rows, self._face_ids, self._photo_ids, subjects = [], {}, {}, set()
        for face, photo, root, source, j, x, y, w, h, person, name, hidden, subject in zip(
                df["face"], df["photo"], df["root"], df["source"], df["face_index"], df["x"], df["y"], df["w"],
                df["h"], df["person"], df["name"], df["hidden"], df["subject"]):
            src = str(Path(root) / source) if several else source
            key = (src, int(j))
            cluster = -1 if pd.isna(person) else int(person)
            label = naming.NOT_OF_INTEREST if hidden and cluster >= 0 else (name if isinstance(name, str) else "")
            rows.append(naming.Row(src, int(j), cluster, label))
            self._face_ids[key], self._photo_ids[src] = int(face), int(photo)
            self._boxes[key] = (int(x), int(y), int(w), int(h))
            if subject:
                subjects.add(key)
        self.rows, self.subjects = rows, subjects

    def _saved(self, write) -> None:
        """Run one decision on the collection, then show what the file holds (also after a refusal)."""
        try:
            write()
        finally:
            self.reload()

    def _person(self, cluster, what: str) -> int:
        if cluster == -1:
            raise ValueError(f"the unassigned faces are in no person: tick them and move them to a person before {what}")
        return cluster

    def name(self, cluster: int, name: str, *, seen_only: bool = False) -> None:
        """Name person ``cluster`` (``naming.NOT_OF_INTEREST``: hide them, "not a person of interest")."""
        self._person(cluster, "naming them")
        hidden = bool(self.faces(cluster)) and self._marked_out(cluster)
        super().name(cluster, name, seen_only=seen_only)  # its checks; the rows are read back below
        name = name.strip()

        def write():
            if name == naming.NOT_OF_INTEREST:
                self.collection.hide(cluster)
                return
            self.collection.name(cluster, name)
            if hidden:  # named after all: of interest again
                self.collection.hide(cluster, False)

        self._saved(write)

    def merge(self, keep: int, other: int) -> None:
        """Merge person ``other`` into person ``keep`` (``other``'s id is retired)."""
        self._person(keep, "merging")
        self._person(other, "merging")
        super().merge(keep, other)
        self._saved(lambda: self.collection.merge(keep, other))

    def move(self, faces: "Sequence[tuple[str, int]]", cluster: int) -> None:
        """Move faces ``(source, face_index)`` to person ``cluster`` (``-1``: to nobody, and never
        again automatically with the person each was in)."""
        faces = list(faces)
        super().move(faces, cluster)
        ids = [self._face_ids[f] for f in faces]
        self._saved(lambda: self.collection.move(ids, None if cluster == -1 else cluster))

    def label(self, cluster: int) -> str:
        """``person 3: Ann (12 faces)``; as :meth:`ClusterNamer.label` otherwise."""
        text = super().label(cluster)
        return "person" + text[len("cluster"):] if text.startswith("cluster ") else text

    def _photo(self, source: str) -> Path:
        return self.collection.photo_path(self._photo_ids[source])

    def _summary(self) -> str:
        return super()._summary().rsplit("; ", 1)[0] + f"; saved in {self.collection.path}"

    def _build(self) -> None:
        super()._build()
        self._controls["status"].value = html.escape(f"Every decision is saved in {self.collection.path} at once")


class NamesSnapshot:
    """The clusters and their names frozen as an image (inline PNG: no widget, no CDN)."""

    def __init__(self, png: bytes, labels: list[str], hidden: int = 0):
        self.png, self.labels, self.hidden = png, labels, hidden

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        import base64
        import html

        more = f" (+{self.hidden} smaller clusters not shown)" if self.hidden else ""
        text = "; ".join(self.labels) + more
        return {"text/html": f'<div><img src="data:image/png;base64,{base64.b64encode(self.png).decode("ascii")}" '
                             f'alt="clusters and their names" style="max-width:100%"><div>'
                             f"{html.escape(text)}</div></div>",
                "text/plain": text}


#: The public names of this module.
__all__ = ["CompressionExplorer", "ClusterNamer", "CollectionNamer"]
