"""A folder to face crops (``vision-lib faces``): :func:`export_faces` writes a crop per face,
``faces.csv`` and ``rejected.csv``, resumes an interrupted run, and never writes into its input."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..geometry import crop
from ..io import CSV_TEXT, ImageError, is_inside, load_image
from ..models import DEFAULT_DETECTOR, DETECTORS
from ..parallel import map_chunks
from .batch import _detect_path_raw, _worker_params
from .detection import align
from .rating import FaceQuality


#: Columns of ``faces.csv`` (one row per kept face) and ``rejected.csv`` (one row per photo left out).
FACES_COLUMNS = ("source", "face_index", "x", "y", "w", "h", "score", "crop", "size", "sharpness",
                 "frontalness", "photo_width", "photo_height")
REJECTED_COLUMNS = ("source", "reason")
_SETTINGS_FILE = "export.json"


@dataclass
class ExportSummary:
    """What :func:`export_faces` did: counts of this run, plus what an earlier run had already done."""

    in_dir: Path
    out_dir: Path
    photos: int = 0
    with_faces: int = 0
    faces: int = 0
    rejected: int = 0
    resumed: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    #: Files under ``in_dir`` that are not photos (by content), hidden or unreadable, by reason; all
    #: of them are rows of rejected.csv too.
    skipped: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        done = self.with_faces + self.rejected
        others = sum(self.skipped.values())
        lines = [
            f"{done} photos in {self.seconds:.1f} s: {self.with_faces} with faces ({self.faces} faces), "
            f"{self.rejected} rejected" + (f"; {self.resumed} already done by an earlier run" if self.resumed else ""),
            f"faces:    {self.out_dir / 'faces.csv'}",
            f"rejected: {self.out_dir / 'rejected.csv'}",
        ]
        lines += [f"  {n:5d}  {r}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1])]
        if others:
            lines.append(f"{others} other files, not photos, also listed in rejected.csv:")
            lines += [f"  {n:5d}  {r}" for r, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


def export_faces(in_dir: str | os.PathLike, out_dir: str | os.PathLike, detector: str | None = None,
                 align: bool = False, min_size: int = 20, n_jobs: int | None = None, *,
                 margin: float = 0.2, size: int = 160, progress: bool = True, cache: bool = True,
                 chunk_size: int = 8, paths: Iterable[str | os.PathLike] | None = None) -> ExportSummary:
    """Detect faces in every photo under ``in_dir`` and save one crop per face under ``out_dir``.

    Crops mirror ``in_dir``'s sub-folders (``<sub>/<photo stem>_face<i>.jpg``, ``i`` = 0 for the
    largest face). ``out_dir/faces.csv`` gets one row per face (``source`` relative to ``in_dir``,
    box, score, crop path relative to ``out_dir``, quality); ``out_dir/rejected.csv`` one row per
    photo without a usable face, with the reason (unreadable file, no face, only small faces).
    Photos are found by content, not by name (a JPEG without an extension is a photo); every other
    file under ``in_dir`` (text, SVG, PDF, empty, hidden, unreadable, ...) is a row of
    ``rejected.csv`` too, with its reason, and is counted in ``summary.skipped``.

    Rows are written as photos finish, so an interrupted run keeps its progress, and running the
    same command again resumes: photos already listed in either CSV are skipped. A photo's rows are
    all or nothing: one cut short by a crash is removed and the photo redone.

    Args:
        detector: a name of :data:`DETECTORS` (None: the default detector).
        align: save ``size`` x ``size`` crops with the eyes on :data:`TEMPLATE` instead of box crops.
        min_size: faces whose shorter side is under this many pixels (of the original) are dropped.
        n_jobs: worker processes (None: all cores).
        margin: box crops grow by this fraction of the face size on every side.
        paths: only these photos (all under ``in_dir``), e.g. a :meth:`PhotoSet.limit` subset.

    Raises:
        ValueError: ``out_dir`` is ``in_dir``, inside it, or contains it.
        FileExistsError: ``out_dir`` holds other files than an earlier export, or one made with other
            settings.
    """
    import csv
    import json
    import time

    from ..progress import tqdm

    from ..io import folder_lock, scan_folder

    detector = DEFAULT_DETECTOR if detector is None else detector
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose from {', '.join(DETECTORS)}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"no such folder: {in_dir}")
    _check_out_dir(in_dir, out_dir)
    settings = {"detector": detector, "align": bool(align), "min_size": int(min_size),
                "margin": float(margin), "size": int(size)}
    faces_csv, rejected_csv = out_dir / "faces.csv", out_dir / "rejected.csv"
    # Held for the whole run: a second run into the same folder would append the same rows again.
    with folder_lock(out_dir):
        done = _prepare_out_dir(out_dir, settings)

        start = time.perf_counter()
        skipped = []
        if paths is None:
            scan = scan_folder(in_dir)
            paths, skipped = scan.photos, scan.relative_skipped()
        else:
            paths = [Path(p) for p in paths]
        try:
            sources = {p: p.relative_to(in_dir).as_posix() for p in paths}
        except ValueError:
            raise ValueError(f"every path must lie under {in_dir}") from None
        summary = ExportSummary(in_dir, out_dir, photos=len(paths))
        for r in skipped:
            key = r.reason.split(" (")[0]
            summary.skipped[key] = summary.skipped.get(key, 0) + 1
        todo = [p for p in paths if sources[p] not in done]
        summary.resumed = len(paths) - len(todo)
        names = _crop_stems(todo, in_dir, taken=_recorded_crop_stems(faces_csv) if summary.resumed else ())
        chunks = [[(p, sources[p], names[p]) for p in todo[i:i + chunk_size]]
                  for i in range(0, len(todo), chunk_size)]
        args = (detector, out_dir, settings, cache)
        with open(faces_csv, "a", **CSV_TEXT) as f_ok, \
                open(rejected_csv, "a", **CSV_TEXT) as f_bad, \
                tqdm(total=len(paths), initial=summary.resumed, desc=f"faces ({detector})", unit="photo",
                     disable=not progress) as bar:
            ok, bad = csv.writer(f_ok), csv.writer(f_bad)
            bad.writerows([r.source, r.reason] for r in skipped if r.source not in done)
            for _, part in map_chunks(_export_chunk, chunks, args, n_jobs=n_jobs, bar=bar, threads=True):
                for source, rows, reason in part:
                    if reason is None:
                        # All rows of a photo in one write, flushed at once: a crash leaves none or
                        # all of them (a cut write is caught on resume by _drop_unfinished_photo).
                        f_ok.write(_csv_rows(rows))
                        f_ok.flush()
                        summary.with_faces += 1
                        summary.faces += len(rows)
                    else:
                        bad.writerow([source, reason])
                        f_bad.flush()
                        summary.rejected += 1
                        key = rejection_category(reason)
                        summary.reasons[key] = summary.reasons.get(key, 0) + 1
        summary.seconds = time.perf_counter() - start
        (out_dir / _SETTINGS_FILE).write_text(json.dumps({**settings, "last_run": str(summary).splitlines()[0]},
                                                         indent=1), encoding="utf-8")
        return summary


#: How the reasons of a folder scan's non-photo entries begin (see :func:`vision_lib.io.scan_folder`).
NOT_A_PHOTO = ("not a photo", "hidden ", "photo format not supported", "sub-folder", "link to a folder",
               "empty folder")


def rejection_category(reason: str) -> str:
    """Coarse group of a rejection reason: ``"no face found"``, ``"only small faces"``,
    ``"failed"`` (an unexpected error), ``"not a photo"`` (a folder scan's other files: text, hidden,
    ...) or ``"unreadable file"`` (any :class:`~vision_lib.io.ImageError`)."""
    if reason.startswith(NOT_A_PHOTO):
        return "not a photo"
    if reason.startswith("no face"):
        return "no face found"
    if reason.startswith("only faces smaller"):
        return "only small faces"
    if reason.startswith("failed"):
        return "failed"
    return "unreadable file"


def _check_out_dir(in_dir: Path, out_dir: Path) -> None:
    if is_inside(out_dir, in_dir):
        raise ValueError(f"refusing to write into the input folder: {out_dir} is inside {in_dir}; "
                         "choose an --out folder outside it (originals are never modified)")
    if is_inside(in_dir, out_dir):
        raise ValueError(f"refusing to write into {out_dir}: it contains the input folder {in_dir}; "
                         "choose an --out folder beside it")


def _prepare_out_dir(out_dir: Path, settings: dict) -> set[str]:
    """Create or validate ``out_dir``; returns the sources an earlier run already finished."""
    import csv
    import json

    from ..io import check_output_folder

    faces_csv, rejected_csv = out_dir / "faces.csv", out_dir / "rejected.csv"
    check_output_folder(out_dir)
    ours = faces_csv.is_file() and rejected_csv.is_file()
    if out_dir.is_dir() and any(out_dir.iterdir()) and not ours:
        raise FileExistsError(f"{out_dir} is not empty and holds no earlier face export (faces.csv and "
                              "rejected.csv); choose an empty or new folder so nothing is overwritten")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not ours:
        for path, cols in ((faces_csv, FACES_COLUMNS), (rejected_csv, REJECTED_COLUMNS)):
            with open(path, "w", **CSV_TEXT) as f:
                csv.writer(f).writerow(cols)
        (out_dir / _SETTINGS_FILE).write_text(json.dumps(settings, indent=1), encoding="utf-8")
        return set()
    settings_file = out_dir / _SETTINGS_FILE
    previous = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
    changed = {k: (previous.get(k), v) for k, v in settings.items() if previous.get(k) != v}
    if changed:
        what = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise FileExistsError(f"{out_dir} holds an export made with other settings ({what}); "
                              "use a new --out folder, or the same settings to resume")
    done = set()
    for path, cols in ((faces_csv, FACES_COLUMNS), (rejected_csv, REJECTED_COLUMNS)):
        _drop_partial_last_line(path)
        if path == faces_csv:
            _drop_unfinished_photo(faces_csv, out_dir)
        with open(path, **CSV_TEXT) as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None or tuple(header) != cols:
                raise FileExistsError(f"{path} does not have the expected columns {cols}; not resuming")
            done.update(row[0] for row in rows if len(row) == len(cols))
    return done


def _drop_partial_last_line(path: Path) -> None:
    # A run killed in the middle of a write leaves a line without its newline: cut it off, so the
    # photo is redone instead of half-listed.
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _csv_rows(rows: list[list]) -> str:
    """``rows`` as the CSV text ``csv.writer`` writes (one string, for a single write)."""
    import csv
    import io

    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def _drop_unfinished_photo(faces_csv: Path, out_dir: Path) -> None:
    """Remove the rows of the last photo of ``faces_csv`` when they are not all there, so a resume
    redoes that photo whole instead of counting it done with faces missing.

    A photo's rows are appended together, after all its crops are saved, so only the last photo of
    the file can be cut short, and a cut shows: its rows are not faces 0..n-1, or the crop of face
    n (``<stem>_face<n>.jpg``) is on disk without a row. The file is replaced atomically.
    """
    import csv

    from ..io import write_atomic

    with open(faces_csv, **CSV_TEXT) as f:
        rows = list(csv.reader(f))
    if len(rows) < 2 or len(rows[-1]) != len(FACES_COLUMNS):
        return
    source, start = rows[-1][0], len(rows)
    while start > 1 and rows[start - 1][0] == source and len(rows[start - 1]) == len(FACES_COLUMNS):
        start -= 1
    last = rows[start:]
    stem = last[0][FACES_COLUMNS.index("crop")].rsplit("_face", 1)[0]
    if ([r[1] for r in last] == [str(i) for i in range(len(last))]
            and not (out_dir / f"{stem}_face{len(last)}.jpg").exists()):
        return
    write_atomic(faces_csv, _csv_rows(rows[:start]).encode("utf-8", "surrogateescape"))


def _crop_stems(paths: list[Path], in_dir: Path, taken: Iterable[str] = ()) -> dict[Path, str]:
    """Crop file stem per photo (relative to the output root): the photo's stem, plus its
    extension when two photos of a folder share a stem (``a.jpg`` and ``a.png``), or when ``taken``
    (the stems of crops an earlier run already listed) holds it: a resumed export never writes over
    the crop of a photo it did before (``a.png`` arriving after ``a.jpg`` was exported)."""
    seen: dict[tuple, int] = {}
    for p in paths:
        key = (p.parent, p.stem.lower())
        seen[key] = seen.get(key, 0) + 1
    used = set(taken)
    out = {}
    for p in paths:
        rel = p.relative_to(in_dir)
        with_ext = (rel.parent / f"{p.stem}_{p.suffix.lstrip('.').lower()}").as_posix()
        stem = (rel.parent / p.stem).as_posix() if seen[(p.parent, p.stem.lower())] == 1 else with_ext
        if stem in used:
            stem = with_ext
        final, n = stem, 1
        while final in used:
            n += 1
            final = f"{stem}_{n}"
        used.add(final)
        out[p] = final
    return out


def _recorded_crop_stems(faces_csv: Path) -> set[str]:
    """Stems of the crops ``faces.csv`` lists (``p/a`` for ``p/a_face0.jpg``)."""
    import csv
    import re

    with open(faces_csv, **CSV_TEXT) as f:
        return {re.sub(r"_face\d+\.jpg$", "", row["crop"]) for row in csv.DictReader(f) if row.get("crop")}


def _export_chunk(items: list[tuple[Path, str, str]], detector: str, out_dir: Path, settings: dict,
                  use_cache: bool, threads: int | None) -> list[tuple[str, list[list], str | None]]:
    params = _worker_params(detector, {}, threads)
    results = []
    for path, source, stem in items:
        try:
            results.append(_export_one(path, source, stem, detector, params, out_dir, settings, use_cache))
        except Exception as exc:  # bad input never stops the batch: record it and go on
            results.append((source, [], f"failed: {type(exc).__name__}: {exc}"[:300]))
    return results


def _export_one(path: Path, source: str, stem: str, detector: str, params: dict, out_dir: Path,
                settings: dict, use_cache: bool) -> tuple[str, list[list], str | None]:
    from PIL import Image

    from ..cache import enabled

    image = None
    if not (use_cache and enabled()):
        # Uncached: decode once, for detection and crops alike.
        try:
            image = load_image(path)
        except ImageError as exc:
            return source, [], exc.reason
    faces, shape, error, _, qualities = _detect_path_raw(path, detector, params, use_cache, False, image=image)
    if error:
        return source, [], error
    min_size = settings["min_size"]
    kept = [(f, q) for f, q in zip(faces, qualities) if f.size >= min_size]
    if not kept:
        if faces:
            return source, [], f"only faces smaller than {min_size} px (largest {faces[0].size} px)"
        return source, [], "no face found"
    if image is None:
        image = load_image(path)
    rows = []
    for i, (face, q) in enumerate(kept):
        if settings["align"]:
            pixels = align(image, face, size=settings["size"])
        else:
            pixels = crop(image, face, margin=settings["margin"])
        rel = f"{stem}_face{i}.jpg"
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target, quality=95)
        x, y, w, h = face.box
        rows.append([source, i, x, y, w, h, round(face.score, 4), rel, q.size, round(q.sharpness, 1),
                     "" if q.frontalness is None else round(q.frontalness, 3), shape[1], shape[0]])
    return source, rows, None


def read_export(out_dir: str | os.PathLike, sources: Iterable[str] | None = None):
    """``(faces, rejected)`` tables of an export as lists of dicts (see :data:`FACES_COLUMNS`).

    ``sources``: keep only the rows of these photos (paths relative to the input folder, as in the
    ``source`` column), e.g. this run's photos when an export folder was resumed with others.
    """
    import csv

    out_dir = Path(out_dir)
    keep = None if sources is None else set(map(str, sources))
    tables = []
    for name in ("faces.csv", "rejected.csv"):
        with open(out_dir / name, **CSV_TEXT) as f:
            tables.append([row for row in csv.DictReader(f) if keep is None or row["source"] in keep])
    return tuple(tables)


def row_quality(row: dict) -> FaceQuality:
    """The :class:`FaceQuality` of a ``faces.csv`` row (as read by :func:`read_export`)."""
    front = row.get("frontalness")
    return FaceQuality(int(row["size"]), float(row["sharpness"]), float(front) if front not in (None, "") else None,
                       float(row["score"]))


def manifest_by_folder(kept: Sequence[dict], rejected: Sequence[dict]) -> list[dict]:
    """One row per top-level sub-folder (a person): photos, photos kept, faces, and the rejected
    photos by :func:`rejection_category`; from the tables of :func:`read_export`."""
    def folder(source: str) -> str:
        return source.split("/")[0] if "/" in source else "."

    from ..io import EMPTY_FOLDER

    table: dict[str, dict] = {}
    cats = ("no face found", "only small faces", "unreadable file", "failed", "not a photo")
    empty = [r for r in rejected if r["reason"] == EMPTY_FOLDER]  # the folder itself: no photo of it
    rejected = [r for r in rejected if r["reason"] != EMPTY_FOLDER]

    def row(name: str) -> dict:
        return table.setdefault(name, {"folder": name, "photos": 0, "kept": 0, "faces": 0, **{c: 0 for c in cats}})

    for r in empty:  # an empty person folder still gets its row, with 0 photos
        row(r["source"].split("/")[0])
    for src in sorted({r["source"] for r in kept} | {r["source"] for r in rejected}, key=folder):
        row(folder(src))["photos"] += 1
    for src in {r["source"] for r in kept}:
        table[folder(src)]["kept"] += 1
    for r in kept:
        table[folder(r["source"])]["faces"] += 1
    for r in rejected:
        table[folder(r["source"])][rejection_category(r["reason"])] += 1
    return [table[k] for k in sorted(table)]


def write_face_crops(items: Iterable[tuple[str | os.PathLike, Sequence[int], str | os.PathLike]], *,
                     margin: float = 0.2, max_side: int = 160) -> int:
    """Save a JPEG crop of each face ``(photo, box (x, y, w, h), target)``; returns how many were written.

    For people checking a grouping (``vision-lib cluster`` writes ``cluster_NN/faces/``): a whole
    photo copy does not say which of its faces belongs to the group. Each photo is read once; the
    crop is the box grown by ``margin``, at most ``max_side`` px. A target that exists is never
    replaced (FileExistsError); a photo that cannot be read any more, or an empty box, is skipped."""
    from joblib import Parallel, delayed
    from PIL import Image

    from ..geometry import Face

    by_photo: dict[Path, list[tuple[tuple[int, ...], Path]]] = {}
    for photo, box, target in items:
        by_photo.setdefault(Path(photo), []).append((tuple(int(v) for v in box), Path(target)))
    for folder in {t.parent for faces in by_photo.values() for _, t in faces}:
        folder.mkdir(parents=True, exist_ok=True)

    def one(photo: Path, faces: list) -> int:
        try:
            image = load_image(photo)
        except ImageError:
            return 0
        written = 0
        for box, target in faces:
            try:
                face = Image.fromarray(crop(image, Face(box, 1.0), margin))
            except ValueError:  # no box (a table without boxes) or one outside the photo: nothing to show
                continue
            face.thumbnail((max_side, max_side))
            try:
                with open(target, "xb") as f:  # atomic "create or fail": never over an existing file
                    face.save(f, "JPEG", quality=90)
            except FileExistsError:
                raise FileExistsError(f"{target} exists; refusing to overwrite") from None
            written += 1
        return written

    # Decoding and encoding release the GIL: threads, no process start-up.
    return sum(Parallel(n_jobs=min(4, max(1, len(by_photo))), prefer="threads")(
        delayed(one)(p, f) for p, f in by_photo.items()))


#: The public names of this module.
__all__ = ["FACES_COLUMNS", "REJECTED_COLUMNS", "ExportSummary", "export_faces", "NOT_A_PHOTO",
           "rejection_category", "read_export", "row_quality", "manifest_by_folder", "write_face_crops"]
