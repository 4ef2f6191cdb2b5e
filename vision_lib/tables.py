"""A folder of photos to a feature table (``vision-lib features``): one row per face or per photo,
with where each row came from, saved as a plain ``.npz`` (no pickle).

The pipeline's folder -> table step: per-face kinds go through :func:`vision_lib.extraction.extract`
(the same detections and descriptors, from the same cache, as every other stage), per-photo kinds
through :mod:`vision_lib.embeddings` and :mod:`vision_lib.features`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .features import region_histograms
from .names import FEATURE_KINDS

__all__ = ["FeatureTable", "folder_features", "npz_path"]


# What :func:`folder_features` (``vision-lib features``) computes, :data:`FEATURE_KINDS`: one row per face
# (``descriptor``: the face descriptor, see :mod:`vision_lib.models`; ``wavelet``: the 4096-value recipe) or
# one row per photo (``mobilenet``: MobileNetV2 ImageNet, 1280-d; ``histogram``: upper + lower region histograms).


def npz_path(path: str | Path) -> Path:
    """``path`` with the ``.npz`` suffix numpy adds when it is missing."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


@dataclass
class FeatureTable:
    """Feature rows of a folder of photos, with where each row came from.

    ``sources`` are photo paths relative to the folder; ``labels`` the photo's first sub-folder (the
    person, in a one-folder-per-person layout; ``""`` for photos at the top). Per-face kinds fill
    ``face_index`` (0 = largest face) and ``boxes`` (``x, y, w, h``); per-photo kinds leave -1 there.
    ``rejected`` lists ``(source, reason)`` for every photo that gave no row.
    """

    kind: str
    X: np.ndarray
    sources: list[str]
    labels: list[str]
    face_index: np.ndarray
    boxes: np.ndarray
    rejected: list[tuple[str, str]]
    settings: dict

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a compressed ``.npz`` (the suffix is added when missing); refuses to replace a file
        unless ``overwrite``. ``np.load`` reads it back; so does :meth:`load`."""
        import io
        import json

        from .io import check_output_folder, write_atomic

        path = npz_path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
        check_output_folder(path.parent).mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()  # then one rename: an interrupt never leaves (or, with --overwrite, destroys) half a file
        np.savez_compressed(
            buf, X=self.X, source=np.array(self.sources, dtype=str), label=np.array(self.labels, dtype=str),
            face_index=self.face_index, box=self.boxes,
            rejected_source=np.array([s for s, _ in self.rejected], dtype=str),
            rejected_reason=np.array([r for _, r in self.rejected], dtype=str),
            settings=np.array(json.dumps({"kind": self.kind, **self.settings})))
        return write_atomic(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "FeatureTable":
        import json

        with np.load(path, allow_pickle=False) as z:
            settings = json.loads(str(z["settings"]))
            return cls(settings.pop("kind"), z["X"], z["source"].tolist(), z["label"].tolist(), z["face_index"],
                       z["box"], list(zip(z["rejected_source"].tolist(), z["rejected_reason"].tolist())), settings)

    def __str__(self) -> str:
        from collections import Counter

        photos = len(set(self.sources))
        reasons = Counter(r for _, r in self.rejected)
        lines = [f"{self.kind}: {len(self.X)} rows x {self.X.shape[1]} values from {photos} photos"
                 + (f" ({len(set(self.labels) - {''})} labels)" if any(self.labels) else "")
                 + f"; {len(self.rejected)} files without a row (photos and other files)"]
        lines += [f"  {n:5d}  {r}" for r, n in reasons.most_common()]
        return "\n".join(lines)


def folder_features(in_dir: str | Path, kind: str = "descriptor", *, detector: str | None = None,
                    descriptor: str | None = None, bins: int = 8, space: str = "hsv", n_jobs: int | None = None,
                    progress: bool = True) -> FeatureTable:
    """Features of every photo under ``in_dir`` (recursively) as a :class:`FeatureTable`.

    ``descriptor`` and ``wavelet`` give a row per detected face (``detector``: the default detector
    for descriptors, the Haar recipe for wavelets, as in the classic recipe; ``descriptor``: a name
    of :data:`vision_lib.models.DESCRIPTORS`, None the default); ``mobilenet`` and
    ``histogram`` a row per photo (``bins`` and ``space`` for the histograms). Face detection,
    descriptors and MobileNetV2 features come from the disk cache when the photo was seen before.
    Photos are found by content (:func:`vision_lib.io.scan_folder`); unreadable photos, photos
    without a face and every other file under ``in_dir`` are listed in ``rejected``, never fatal.
    """
    from .io import LoadReport, iter_loaded, scan_folder

    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {FEATURE_KINDS}")
    root = Path(in_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    scan = scan_folder(root, recursive=True)
    paths = scan.photos
    if not paths:
        raise FileNotFoundError(f"no photos under {root} ({len(scan.skipped)} other files)")
    source = {str(p): p.relative_to(root).as_posix() for p in paths}
    rows, where, rejected = [], [], []
    settings: dict = {}
    if kind in ("descriptor", "wavelet"):
        from .extraction import Recipe, extract

        recipe = Recipe("embedding" if kind == "descriptor" else "wavelet",
                        detector or (None if kind == "descriptor" else "haar"), descriptor=descriptor)
        settings = {"recipe": recipe.describe(), "detector": recipe.detector, "root": str(root.resolve())}
        if kind == "descriptor":  # `vision-lib cluster TABLE` takes the same-person distance from here
            settings["descriptor"] = recipe.descriptor_model.id
            settings["threshold"] = float(recipe.descriptor_model.threshold)
        for p, ph in zip(paths, extract(paths, recipe, n_jobs=n_jobs, progress=progress)):
            if ph.error or not ph.faces:
                rejected.append((source[str(p)], ph.error or "no face found"))
            for j, (face, x) in enumerate(zip(ph.faces, ph.features)):
                rows.append(x)
                where.append((source[str(p)], j, face.box))
    else:
        report = LoadReport()
        if kind == "mobilenet":
            from .embeddings import image_features_paths, mobilenet_model_id

            settings = {"model": mobilenet_model_id()}
            X = image_features_paths(paths, progress=progress, n_jobs=n_jobs, report=report)
            failed = {r.source for r in report.rejected}
            rows = [x for p, x in zip(paths, X) if str(p) not in failed]
            where = [(source[str(p)], -1, (-1,) * 4) for p in paths if str(p) not in failed]
        else:
            from tqdm.auto import tqdm

            settings = {"bins": bins, "space": space, "regions": ["upper", "lower"]}
            for path in tqdm(paths, desc="histograms", unit="photo", disable=not progress):
                for p, image in iter_loaded([path], report):  # an unreadable photo goes to the report
                    try:
                        h = region_histograms(image, bins=bins, space=space)
                    except ValueError as exc:  # one odd photo is a rejected row, never the batch
                        report.reject(str(p), str(exc))
                        continue
                    rows.append(np.concatenate([h["upper"], h["lower"]]))
                    where.append((source[str(p)], -1, (-1,) * 4))
        rejected = [(source.get(r.source, r.source), r.reason) for r in report.rejected]
    rejected = sorted(rejected + [(r.source, r.reason) for r in scan.relative_skipped()])
    from .models import get_descriptor

    dim = {"descriptor": get_descriptor(descriptor).dim, "wavelet": 4096, "mobilenet": 1280, "histogram": 2 * bins ** 3}[kind]
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
    labels = [s.split("/")[0] if "/" in s else "" for s, _, _ in where]
    return FeatureTable(kind, X, [s for s, _, _ in where], labels,
                        np.array([j for _, j, _ in where], dtype=int),
                        np.array([b for _, _, b in where], dtype=int).reshape(-1, 4), rejected, settings)
