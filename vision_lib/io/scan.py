"""Scanning folders: every entry under a folder sorted into photos and skipped entries with a
reason, labelled photo sets, and batches that list what they could not load."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .decode import load_image
from .reasons import ImageError, Rejected
from .sniff import is_image_name, sniff_file

#: The reason of a searched folder with no visible entry (nothing, or only hidden files) in a scan.
EMPTY_FOLDER = "empty folder: no photos"


@dataclass
class FolderScan:
    """Every entry under a folder: the photos (by content), and everything else with its reason.

    ``photos`` and ``skipped`` sources are paths under ``root`` (as ``root / relative``), sorted.
    Nothing is left out unlisted: hidden files and folders, non-photos, unreadable files, link loops,
    (when not recursive) sub-folders, and folders with nothing but hidden files in them (reason
    :data:`EMPTY_FOLDER`, source the folder) all appear in ``skipped``.
    """

    root: Path
    photos: list[Path] = field(default_factory=list)
    skipped: list[Rejected] = field(default_factory=list)

    def relative_skipped(self) -> list[Rejected]:
        """``skipped`` with sources relative to ``root`` (forward slashes), as reports write them."""
        return [Rejected(_relative(r.source, self.root), r.reason) for r in self.skipped]


def named_like_a_photo(skipped: Rejected) -> bool:
    """True for a skipped entry that was meant to be a photo: a visible file with a photo's extension
    (``broken.jpg``: text inside, a broken link, empty). Commands that answer for every photo
    (predict, compress) report these as failures; other files (``notes.txt``) are just skipped."""
    name = Path(skipped.source).name
    return is_image_name(name) and not name.startswith(".") and not skipped.reason.startswith(
        ("hidden", "sub-folder", "link to a folder", EMPTY_FOLDER))


def entry_word(skipped: Rejected) -> str:
    """The word of a skipped entry's line in the commands that answer for every photo (predict,
    compress): ``"error"``, as for a photo they could not decode, when it was meant to be a photo
    (:func:`named_like_a_photo`) or could not be read at all, so may well be one (``IMG_0002``, no
    extension, behind a broken link); else ``"skipped"`` (``notes.txt``, hidden files, empty folders)."""
    return "error" if named_like_a_photo(skipped) or skipped.reason.startswith("cannot read:") else "skipped"


#: At most this many entries are listed in a :func:`too_few_photos` message (the rest are counted).
LISTED_AT_MOST = 10


def too_few_photos(root: str | os.PathLike, found: int, need: int, not_used: Sequence[Rejected], *,
                   what: str = "photos", needs: str = "") -> str:
    """The message for a folder that gave fewer than ``need`` usable ``what`` (a plural noun): how many
    it gave, every entry not used and why (``not_used``, sources relative to ``root``; the first
    :data:`LISTED_AT_MOST`), then ``needs``: what the command needs, i.e. the fix."""
    root = Path(root)
    noun = what[:-1] if found == 1 and what.endswith("s") else what
    head = f"{found or 'no'} usable {noun} in {root}" + (f" ({need} needed)" if need > 1 else "")
    lines = []
    if not found and [(r.source, r.reason) for r in not_used] == [(".", EMPTY_FOLDER)]:
        head += ": the folder is empty"  # not "1 other file": the only entry is the folder itself
    elif not_used:
        head += f"; {len(not_used)} {'entry' if len(not_used) == 1 else 'entries'} not used:"
        lines = [f"  {root if r.source == '.' else r.source}: {r.reason}" for r in not_used[:LISTED_AT_MOST]]
        lines += [f"  ... and {len(not_used) - LISTED_AT_MOST} more"] * (len(not_used) > LISTED_AT_MOST)
    return "\n".join([head, *lines] + [needs] * bool(needs))


def _relative(source: str | os.PathLike, root: Path) -> str:
    try:
        return Path(source).relative_to(root).as_posix()
    except ValueError:  # not under root (a file given directly)
        return str(source)


def scan_folder(root: str | os.PathLike, *, recursive: bool = True) -> FolderScan:
    """Sort every file under ``root`` into photos (decided by content, see :func:`sniff_file`) and
    skipped entries with a reason. Only reads (the first :data:`SNIFF_BYTES` of each file).

    Symlinked folders are followed (a person's folder linked in from elsewhere is that person's
    photos), each real folder once: a link loop, or a second link to a folder already searched, is
    listed as skipped. ``root`` may also be a single file, which is returned as the one photo (its
    problems, if any, are reported when it is loaded).
    """
    root = Path(root)
    if root.is_file():
        return FolderScan(root, [root])
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    scan = FolderScan(root)
    seen = {os.path.realpath(root)}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it)
        except OSError as exc:
            scan.skipped.append(Rejected(str(folder), f"cannot read folder: {exc.strerror or exc}"))
            continue
        below = []
        if all(name.startswith(".") for name in names):
            # Said, not silent: a person's folder with nothing in it (or only .DS_Store) would
            # otherwise just be missing from the results.
            scan.skipped.append(Rejected(str(folder), EMPTY_FOLDER))
        for name in names:
            path = folder / name
            try:
                is_dir = path.is_dir()
            except OSError:  # a link loop: sniff_file gives the reason
                is_dir = False
            if name.startswith("."):
                scan.skipped.append(Rejected(str(path), "hidden folder (not searched)" if is_dir else "hidden file"))
            elif not is_dir:
                fmt, reason = sniff_file(path)
                if fmt is not None:
                    scan.photos.append(path)
                else:
                    scan.skipped.append(Rejected(str(path), reason))
            elif not recursive:
                scan.skipped.append(Rejected(str(path), "sub-folder (not searched)"))
            elif (real := os.path.realpath(path)) in seen:
                scan.skipped.append(Rejected(str(path), "link to a folder already searched (a loop or a duplicate)"))
            else:
                seen.add(real)
                below.append(path)
        stack += reversed(below)
    scan.photos.sort()
    scan.skipped.sort(key=lambda r: r.source)
    return scan


def list_images(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """The photos of :func:`scan_folder` (by content, sorted); hidden files and folders skipped.
    Use :func:`scan_folder` to also know what was skipped, and why."""
    return scan_folder(root, recursive=recursive).photos


@dataclass
class PhotoSet:
    """Photos under a root folder; ``labels[i]`` is the sub-folder name of ``paths[i]`` (or None)."""

    root: Path
    paths: list[Path]
    labels: list[str] | None = None
    #: Everything else under ``root``, with its reason (non-photos, hidden files, and in a labelled
    #: set the photos outside any sub-folder); sources as ``root / relative``.
    skipped: list[Rejected] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the root, with forward slashes (as written in reports)."""
        return Path(path).relative_to(self.root).as_posix()

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels or []))

    def subset(self, index: Iterable[int]) -> "PhotoSet":
        index = list(index)
        labels = [self.labels[i] for i in index] if self.labels is not None else None
        return PhotoSet(self.root, [self.paths[i] for i in index], labels, list(self.skipped))

    def limit(self, per_label: int | None = None, total: int | None = None, seed: int = 0) -> "PhotoSet":
        """A reproducible random subset: at most ``per_label`` photos per label and ``total`` overall."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.paths))
        keep, counts = [], {}
        for i in order:
            lab = self.labels[i] if self.labels is not None else None
            if per_label is not None and counts.get(lab, 0) >= per_label:
                continue
            counts[lab] = counts.get(lab, 0) + 1
            keep.append(i)
        return self.subset(sorted(keep[:total] if total is not None else keep))

    def people(self, n: int | None, seed: int = 0) -> "PhotoSet":
        """All the photos of ``n`` labels drawn at random (reproducible; None, or more than there
        are: every label). A few people drawn from a larger draw (``people(40).people(8)``) keep to
        its photos, so the faces cached for the larger draw serve both."""
        classes = self.classes
        if n is None or n >= len(classes):
            return self.subset(range(len(self.paths)))
        chosen = set(np.random.default_rng(seed).choice(classes, size=n, replace=False))
        return self.subset(i for i, label in enumerate(self.labels) if label in chosen)


def photo_set(root: str | os.PathLike, *, labelled: bool = False) -> PhotoSet:
    """All photos under ``root``; with ``labelled=True`` the label is the first sub-folder's name.

    Photos directly in ``root`` have no label and are left out of a labelled set (listed in
    ``skipped``, as are all files that are not photos).
    """
    root = Path(root)
    scan = scan_folder(root)
    if not labelled:
        return PhotoSet(root, scan.photos, skipped=scan.skipped)
    pairs = [(p, p.relative_to(root).parts[0]) for p in scan.photos if len(p.relative_to(root).parts) > 1]
    loose = [Rejected(str(p), "not in a person's sub-folder (no label)") for p in scan.photos
             if len(p.relative_to(root).parts) == 1]
    return PhotoSet(root, [p for p, _ in pairs], [lab for _, lab in pairs],
                    sorted(scan.skipped + loose, key=lambda r: r.source))


@dataclass
class LoadReport:
    """What a batch kept and what it rejected (with reasons)."""

    rejected: list[Rejected] = field(default_factory=list)

    def reject(self, source: str, reason: str) -> None:
        self.rejected.append(Rejected(str(source), reason))


def iter_loaded(
    paths: Iterable[str | os.PathLike], report: LoadReport | None = None, **load_kw
) -> Iterator[tuple[Path, np.ndarray]]:
    """Yield ``(path, image)`` for every loadable photo; the rest go to ``report`` with a reason."""
    for p in paths:
        try:
            yield Path(p), load_image(p, **load_kw)
        except ImageError as exc:
            if report is not None:
                report.reject(str(p), exc.reason)


__all__ = ["EMPTY_FOLDER", "FolderScan", "named_like_a_photo", "entry_word", "LISTED_AT_MOST", "too_few_photos",
           "scan_folder", "list_images", "PhotoSet", "photo_set", "LoadReport", "iter_loaded"]
