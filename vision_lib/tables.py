"""The face table: every face found in the photos of a folder, one row each, the one type every
stage consumes (cluster, average, classify, ``vision-lib features``), saved as a plain ``.npz``.

One row per face: ``sources`` (the photo, relative to the folder), ``face_index`` (0 = largest),
``boxes``, ``keypoints`` (the five points), quality (``scores``, ``sharpness``, ``frontalness``),
``X`` (the descriptor or another feature row), ``labels`` (the photo's first sub-folder) and
``subject`` (the face the photo is framed on, :func:`subject_face`). Per photo: ``photos``,
``photo_labels`` and ``rejected`` (with why). :func:`face_table` builds it from a folder or a list
of photos (the one entry point; disk-cached detections and descriptors); :func:`folder_features`
(``vision-lib features``) also writes per-photo tables (MobileNetV2, colour histograms), whose
``face_index`` is -1.

The pipeline's folder -> table step: it imports the detection and feature layers, never a stage.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .features import region_histograms
from .geometry import KEYPOINTS, Face
from .io import Rejected
from .names import FEATURE_KINDS

__all__ = ["FaceTable", "FeatureTable", "face_table", "load_descriptor_table", "folder_features", "subject_face", "npz_path", "NO_FACE",
           "FACE_KINDS"]

#: Why a readable photo gave no row.
NO_FACE = "no face found"
#: Kinds with one row per face (the others of :data:`FEATURE_KINDS` have one row per photo).
FACE_KINDS = ("descriptor", "wavelet")

# What :func:`folder_features` (``vision-lib features``) computes, :data:`FEATURE_KINDS`: one row per face
# (``descriptor``: the face descriptor, see :mod:`vision_lib.models`; ``wavelet``: the 4096-value recipe) or
# one row per photo (``mobilenet``: MobileNetV2 ImageNet, 1280-d; ``histogram``: upper + lower region histograms).


def npz_path(path: str | Path) -> Path:
    """``path`` with the ``.npz`` suffix numpy adds when it is missing."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def subject_face(boxes: Sequence[Sequence[int]], shape: tuple[int, int] | None) -> int:
    """Index of the photo's subject among faces ordered largest first.

    A photo is framed on its subject: among the faces at least half as large (shorter side) as the
    largest one, the one whose centre is nearest the photo's centre. Smaller background faces
    never win, and with one face it is that face.
    """
    if len(boxes) == 0:
        raise ValueError("no faces")
    if shape is None or len(boxes) == 1:
        return 0
    h, w = shape
    sizes = np.array([min(b[2], b[3]) for b in boxes], float)
    cand = np.flatnonzero(sizes >= 0.5 * sizes.max())
    centres = np.array([(b[0] + b[2] / 2, b[1] + b[3] / 2) for b in boxes], float)
    dist = np.hypot(centres[:, 0] - w / 2, centres[:, 1] - h / 2)
    return int(cand[np.argmin(dist[cand])])


def _column(value, n: int, shape: tuple = (), fill=np.nan, dtype=np.float64) -> np.ndarray:
    if value is None:
        return np.full((n, *shape), fill, dtype=dtype)
    return np.asarray(value, dtype=dtype).reshape(n, *shape)


@dataclass
class FaceTable:
    """Rows of a folder of photos (one per face, or one per photo for per-photo kinds), with where
    each row came from. The one folder-level type of the library (``FeatureTable`` and
    ``cluster.FaceSet`` are the same class under older names).

    ``sources`` are photo paths relative to the folder; ``labels`` the photo's first sub-folder (the
    person, in a one-folder-per-person layout; ``""`` for photos at the top). Per-face kinds fill
    ``face_index`` (0 = largest face) and ``boxes`` (``x, y, w, h``); per-photo kinds leave -1 there.
    ``rejected`` lists a :class:`~vision_lib.io.Rejected` (``source, reason``) for every photo that gave
    no row (no face, or it could not be read), ``skipped`` the other files under the folder (not photos
    by content); :attr:`not_used` both. (Tables written before ``skipped`` was saved apart load with
    both in ``rejected``.)

    Optional per-face columns (NaN, or the largest face as subject, when unknown, e.g. in ``.npz``
    files written before they existed): ``keypoints`` ``(n, 5, 2)`` in :data:`~vision_lib.geometry.KEYPOINTS`
    order, ``scores``, ``sharpness``, ``frontalness`` (see :class:`vision_lib.faces.FaceQuality`),
    ``subject`` (bool). ``photos`` lists every photo (with or without a face), ``photo_labels`` their
    labels (None when the folder is not labelled); ``root`` is the folder (None when the photos are not
    at hand, as for a table loaded from disk: then :attr:`paths` is empty).
    """

    kind: str
    X: np.ndarray
    sources: list[str]
    labels: list[str]
    face_index: np.ndarray
    boxes: np.ndarray
    rejected: list[Rejected]
    settings: dict
    keypoints: np.ndarray | None = None
    scores: np.ndarray | None = None
    sharpness: np.ndarray | None = None
    frontalness: np.ndarray | None = None
    subject: np.ndarray | None = None
    photos: list[str] | None = None
    photo_labels: list[str] | None = None
    skipped: list[Rejected] = field(default_factory=list)
    root: Path | None = None

    def __post_init__(self):
        n = len(self.sources)
        self.sources = list(self.sources)
        self.labels = list(self.labels)
        self.face_index = np.asarray(self.face_index, dtype=int).reshape(n)
        self.boxes = np.asarray(self.boxes, dtype=int).reshape(n, 4)
        self.rejected = [r if isinstance(r, Rejected) else Rejected(*r) for r in self.rejected]
        self.skipped = [r if isinstance(r, Rejected) else Rejected(*r) for r in self.skipped]
        self.keypoints = _column(self.keypoints, n, (len(KEYPOINTS), 2))
        self.scores, self.sharpness, self.frontalness = (_column(c, n) for c in (self.scores, self.sharpness,
                                                                                  self.frontalness))
        self.subject = (self.face_index == 0) if self.subject is None else np.asarray(self.subject, bool).reshape(n)
        if self.photos is None:
            self.photos = list(dict.fromkeys(self.sources + [r.source for r in self.rejected]))
        if self.root is not None:
            self.root = Path(self.root)

    def __len__(self) -> int:
        return len(self.sources)

    # -- views under the names the stages used
    @property
    def descriptors(self) -> np.ndarray:
        """``X`` as float64 (a descriptor table's face descriptors)."""
        return np.asarray(self.X, dtype=np.float64)

    @property
    def descriptor(self) -> str | None:
        """Name of the descriptor of a descriptor table (None: unknown or not registered)."""
        from .models import descriptor_for_id

        model = descriptor_for_id(str(self.settings.get("descriptor", ""))) if self.kind == "descriptor" else None
        return model.name if model is not None else None

    @property
    def paths(self) -> list[Path]:
        """The photo file of each row (empty when the photos are not at hand, ``root`` None)."""
        return [] if self.root is None else [self.root / s for s in self.sources]

    @property
    def labelled(self) -> bool:
        """True when the photos are labelled (one sub-folder per person)."""
        return self.photo_labels is not None

    @property
    def not_used(self) -> list[Rejected]:
        """Every file under the folder that gave no row, with why: ``rejected`` and ``skipped``, by source."""
        return sorted(self.rejected + self.skipped, key=lambda r: r.source)

    def face(self, i: int) -> Face:
        """Row ``i`` as a :class:`~vision_lib.geometry.Face` (box, score, the keypoints it has)."""
        kps = {k: (float(x), float(y)) for k, (x, y) in zip(KEYPOINTS, self.keypoints[i]) if not np.isnan(x)}
        score = float(self.scores[i])
        return Face(tuple(int(v) for v in self.boxes[i]), 1.0 if np.isnan(score) else score, kps)

    def quality(self, i: int):
        """Row ``i``'s :class:`~vision_lib.faces.FaceQuality`."""
        from .faces import FaceQuality

        front = float(self.frontalness[i])
        return FaceQuality(int(min(self.boxes[i][2], self.boxes[i][3])), float(self.sharpness[i]),
                           None if np.isnan(front) else front, float(self.scores[i]))

    def rows_by_source(self) -> dict[str, list[int]]:
        """``{photo: [row, ...]}`` in row order."""
        out: dict[str, list[int]] = {}
        for i, s in enumerate(self.sources):
            out.setdefault(s, []).append(i)
        return out

    def photo_clusters(self, labels: Sequence[int]) -> np.ndarray:
        """Cluster of each photo's subject face, ``-1`` when unassigned or no face was found."""
        where = {s: c for s, c, m in zip(self.sources, labels, self.subject) if m}
        return np.array([where.get(p, -1) for p in self.photos], dtype=int)

    def largest_face_clusters(self, labels: Sequence[int]) -> np.ndarray:
        """Cluster of each photo's largest face (``face_index`` 0), ``-1`` when unassigned or none."""
        where = {s: c for s, c, j in zip(self.sources, labels, self.face_index) if j == 0}
        return np.array([where.get(p, -1) for p in self.photos], dtype=int)

    # -- the file
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
        rejected = self.not_used  # one list, as files written before `skipped_source` have it
        settings = {"kind": self.kind, **self.settings}
        if self.photo_labels is not None:
            settings["labelled"] = True
        buf = io.BytesIO()  # then one rename: an interrupt never leaves (or, with --overwrite, destroys) half a file
        np.savez_compressed(
            buf, X=self.X, source=np.array(self.sources, dtype=str), label=np.array(self.labels, dtype=str),
            face_index=self.face_index, box=self.boxes,
            rejected_source=np.array([r.source for r in rejected], dtype=str),
            rejected_reason=np.array([r.reason for r in rejected], dtype=str),
            settings=np.array(json.dumps(settings)),
            # the columns added with the face table (older files load without them)
            keypoints=self.keypoints, score=self.scores, sharpness=self.sharpness, frontalness=self.frontalness,
            subject=self.subject, photo=np.array(self.photos, dtype=str),
            photo_label=np.array(self.photo_labels or [], dtype=str),
            skipped_source=np.array([r.source for r in self.skipped], dtype=str))
        return write_atomic(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "FaceTable":
        """A table written by :meth:`save`, by this or an older release (missing columns: unknown)."""
        import json

        with np.load(path, allow_pickle=False) as z:
            settings = json.loads(str(z["settings"]))
            kind, labelled = settings.pop("kind"), settings.pop("labelled", False)
            listed = [Rejected(s, r) for s, r in zip(z["rejected_source"].tolist(), z["rejected_reason"].tolist())]
            new = {k: z[k] for k in ("keypoints", "score", "sharpness", "frontalness", "subject") if k in z}
            other = set(z["skipped_source"].tolist()) if "skipped_source" in z else set()
            return cls(kind, z["X"], z["source"].tolist(), z["label"].tolist(), z["face_index"], z["box"],
                       [r for r in listed if r.source not in other],
                       settings, keypoints=new.get("keypoints"), scores=new.get("score"),
                       sharpness=new.get("sharpness"), frontalness=new.get("frontalness"), subject=new.get("subject"),
                       photos=z["photo"].tolist() if "photo" in z else None,
                       photo_labels=z["photo_label"].tolist() if labelled and "photo_label" in z else None,
                       skipped=[r for r in listed if r.source in other])

    def __str__(self) -> str:
        from collections import Counter

        photos = len(set(self.sources))
        reasons = Counter(r.reason for r in self.not_used)
        lines = [f"{self.kind}: {len(self.X)} rows x {self.X.shape[1]} values from {photos} photos"
                 + (f" ({len(set(self.labels) - {''})} labels)" if any(self.labels) else "")
                 + f"; {len(self.not_used)} files without a row (photos and other files)"]
        lines += [f"  {n:5d}  {r}" for r, n in reasons.most_common()]
        return "\n".join(lines)


#: The older name of :class:`FaceTable` (``vision-lib features`` tables).
FeatureTable = FaceTable


def load_descriptor_table(path: str | os.PathLike, purpose: str = "this") -> FaceTable:
    """The descriptor table at ``path`` (written by ``vision-lib features IN --kind descriptor``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not such a table (another file, or a table of another kind; the
            message says that ``purpose`` needs face descriptors).
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such folder or feature table: {path}")
    try:
        table = FaceTable.load(path)
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is neither a folder of photos nor a feature table written by "
                         f"`vision-lib features IN --kind descriptor` ({type(exc).__name__}: {exc})") from None
    if table.kind != "descriptor" or table.X.ndim != 2 or len(table.sources) != len(table.X):
        raise ValueError(f"{path} is a feature table of kind {table.kind!r}; {purpose} needs "
                         "face descriptors (`vision-lib features IN --kind descriptor`)")
    return table


def _photo_list(photos, root) -> tuple[Path | None, list[Path], list[Rejected]]:
    """The folder, its photos and its other files; or ``root`` (None: none) and the given photos."""
    from .io import scan_folder

    if isinstance(photos, (str, os.PathLike)):
        folder = Path(photos)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such folder: {folder}")
        scan = scan_folder(folder, recursive=True)
        return folder, scan.photos, scan.relative_skipped()
    return (Path(root) if root is not None else None), [Path(p) for p in photos], []


def face_table(photos: str | os.PathLike | Iterable[str | os.PathLike], *, root: str | os.PathLike | None = None,
               kind: str = "descriptor", detector: str | None = None, descriptor: str | None = None,
               labelled: bool | None = None, retry: bool = False, n_jobs: int | None = None,
               progress: bool = True) -> FaceTable:
    """Every face of every photo as a :class:`FaceTable`: the one folder -> faces entry point.

    Args:
        photos: a folder (every photo under it, found by content, recursively; its other files are
            ``skipped``) or a list of photo paths (``root``: the folder their ``sources`` are relative
            to; None keeps the paths as given).
        kind: ``"descriptor"`` (``X`` = the face descriptors, with detection qualities) or
            ``"wavelet"`` (``X`` = the classic 4096-value recipe; the Haar recipe by default).
        detector, descriptor: names of :mod:`vision_lib.models` (None: the defaults).
        labelled: first-level sub-folders are identities (``photo_labels``); ``None``: when every
            photo is in a sub-folder.
        retry: MTCNN's second look at photos where it found no face (the training recipe's).

    Detections and descriptors come from the disk cache when the photo was seen before. Unreadable
    photos and photos without a face are ``rejected`` with the reason, never fatal.
    """
    from .models import default_descriptor, get_descriptor

    if kind not in FACE_KINDS:
        raise ValueError(f"unknown kind {kind!r} of face table; choose from {FACE_KINDS}")
    folder, paths, skipped = _photo_list(photos, root)
    rel = [p.relative_to(folder).as_posix() if folder is not None else str(p) for p in paths]
    if labelled is None:
        labelled = bool(rel) and all("/" in r for r in rel)
    photo_labels = [r.split("/")[0] for r in rel] if labelled else None
    descriptor = descriptor or default_descriptor()
    settings: dict = {}
    if kind == "descriptor":
        from .extraction import Recipe, second_look
        from .faces import detect_paths

        results = detect_paths(paths, detector, descriptors=descriptor, n_jobs=n_jobs, progress=progress)
        recipe = Recipe("embedding", detector, descriptor=descriptor, retry=retry)
        results = second_look(results, recipe, n_jobs=n_jobs, progress=progress)
        dim = get_descriptor(descriptor).dim
        # `vision-lib cluster TABLE` takes the same-person distance from here
        settings = {"recipe": recipe.describe(), "detector": recipe.detector, "descriptor": recipe.descriptor_model.id,
                    "threshold": float(recipe.descriptor_model.threshold)}
    else:
        from .extraction import Recipe, extract

        recipe = Recipe("wavelet", detector or "haar", descriptor=descriptor, retry=retry)
        results = extract(paths, recipe, n_jobs=n_jobs, progress=progress)
        dim = 4096
        settings = {"recipe": recipe.describe(), "detector": recipe.detector}
    if folder is not None:
        settings["root"] = str(folder.resolve())
    rows, where, rejected = [], [], []
    for r, res in zip(rel, results):
        if res.error or not res.faces:
            rejected.append(Rejected(r, res.error or NO_FACE))
            continue
        X = res.descriptors if kind == "descriptor" else res.features
        main = subject_face([f.box for f in res.faces], res.shape)
        for j, f in enumerate(res.faces):
            q = res.qualities[j] if res.qualities is not None else None
            rows.append(X[j])
            where.append((r, j, f, q, j == main))
    label_of = dict(zip(rel, photo_labels)) if labelled else {}
    sources = [w[0] for w in where]
    return FaceTable(
        kind, np.asarray(rows, dtype=np.float32).reshape(len(rows), dim), sources,
        [label_of.get(s, s.split("/")[0] if "/" in s else "") for s in sources],
        np.array([w[1] for w in where], dtype=int), np.array([w[2].box for w in where], dtype=int),
        rejected, settings,
        keypoints=np.array([[w[2].keypoints.get(k, (np.nan, np.nan)) for k in KEYPOINTS] for w in where],
                           dtype=np.float64).reshape(len(where), len(KEYPOINTS), 2),
        scores=np.array([w[2].score for w in where], dtype=np.float64),
        sharpness=np.array([np.nan if w[3] is None else w[3].sharpness for w in where], dtype=np.float64),
        frontalness=np.array([np.nan if w[3] is None or w[3].frontalness is None else w[3].frontalness
                              for w in where], dtype=np.float64),
        subject=np.array([w[4] for w in where], dtype=bool), photos=rel, photo_labels=photo_labels,
        skipped=skipped, root=folder if folder is not None else Path("."))


def folder_features(in_dir: str | Path, kind: str = "descriptor", *, detector: str | None = None,
                    descriptor: str | None = None, bins: int = 8, space: str = "hsv", n_jobs: int | None = None,
                    progress: bool = True) -> FaceTable:
    """Features of every photo under ``in_dir`` (recursively) as a :class:`FaceTable`.

    ``descriptor`` and ``wavelet`` give a row per detected face (``detector``: the default detector
    for descriptors, the Haar recipe for wavelets, as in the classic recipe; ``descriptor``: a name
    of :data:`vision_lib.models.DESCRIPTORS`, None the default); ``mobilenet`` and
    ``histogram`` a row per photo (``bins`` and ``space`` for the histograms). Face detection,
    descriptors and MobileNetV2 features come from the disk cache when the photo was seen before.
    Photos are found by content (:func:`vision_lib.io.scan_folder`); unreadable photos, photos
    without a face are listed in ``rejected``, every other file under ``in_dir`` in ``skipped``
    (:attr:`FaceTable.not_used`: both), never fatal.
    """
    from .io import LoadReport, iter_loaded, scan_folder, too_few_photos

    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {FEATURE_KINDS}")
    root = Path(in_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    scan = scan_folder(root, recursive=True)
    paths = scan.photos
    if not paths:
        # The scan's own words (an empty folder is "empty", not "1 other file"), each file and why.
        raise FileNotFoundError(too_few_photos(
            root, 0, 1, scan.relative_skipped(),
            needs=f"put the photos in {root} or in its sub-folders (searched too; photos are found by content, not by extension)"))
    if kind in FACE_KINDS:  # the training recipe's detections (MTCNN's second look included)
        table = face_table(root, kind=kind, detector=detector, descriptor=descriptor, retry=True, n_jobs=n_jobs,
                           progress=progress)
        table.root = None  # a saved table does not travel with its photos
        return table
    source = {str(p): p.relative_to(root).as_posix() for p in paths}
    rows, where = [], []
    report = LoadReport()
    if kind == "mobilenet":
        from .embeddings import image_features_paths, mobilenet_model_id

        settings = {"model": mobilenet_model_id()}
        X = image_features_paths(paths, progress=progress, n_jobs=n_jobs, report=report)
        failed = {r.source for r in report.rejected}
        rows = [x for p, x in zip(paths, X) if str(p) not in failed]
        where = [source[str(p)] for p in paths if str(p) not in failed]
    else:
        from .progress import tqdm

        settings = {"bins": bins, "space": space, "regions": ["upper", "lower"]}
        for path in tqdm(paths, desc="histograms", unit="photo", disable=not progress):
            for p, image in iter_loaded([path], report):  # an unreadable photo goes to the report
                try:
                    h = region_histograms(image, bins=bins, space=space)
                except ValueError as exc:  # one odd photo is a rejected row, never the batch
                    report.reject(str(p), str(exc))
                    continue
                rows.append(np.concatenate([h["upper"], h["lower"]]))
                where.append(source[str(p)])
    skipped = scan.relative_skipped()
    rejected = sorted((Rejected(source.get(r.source, r.source), r.reason) for r in report.rejected),
                      key=lambda r: r.source)
    dim = {"mobilenet": 1280, "histogram": 2 * bins ** 3}[kind]
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
    return FaceTable(kind, X, where, [s.split("/")[0] if "/" in s else "" for s in where],
                     np.full(len(where), -1, dtype=int), np.full((len(where), 4), -1, dtype=int), rejected, settings,
                     photos=[source[str(p)] for p in paths], skipped=skipped)
