"""Generated inputs for the io and faces tests: the bad-input corpus of issue 2 (and a held output lock),
and the model tests' look-ups of real data (:data:`LFW`, :func:`lfw_photos`, :func:`have_model_files`).

Everything is made here (never committed images); the face photos are copies of a real photo
passed in by the test (from the real data sets), converted to the awkward formats.
"""
from __future__ import annotations

import hashlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from vision_lib import config

# One PNG-header forger for the test corpus and the web-app abuse driver (light imports only).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from serve_abuse import png_claiming  # noqa: E402,F401  (re-exported to the tests)

#: The LFW photos (one folder per person) the model tests read, when present.
LFW = config.dataset("lfw", required=False)  # the library's rule, as the conftest fixtures


def lfw_photos(n_people: int, per_person: int) -> list[tuple[str, Path]]:
    """``(person, photo)`` for the first ``per_person`` photos of the first ``n_people`` people of
    :data:`LFW`, both in name order."""
    people = sorted(p for p in LFW.iterdir() if p.is_dir())[:n_people]
    return [(p.name, f) for p in people for f in sorted(p.glob("*.jpg"))[:per_person]]


def have_model_files(*keys: str) -> bool:
    """Whether every model file of ``keys`` (:mod:`vision_lib.models.files` names) is installed."""
    from vision_lib.models import files

    try:
        for k in keys:
            files.model_path(k)
        return True
    except files.ModelFileError:
        return False


#: EXIF tag number of Orientation; 6 means "rotate 90 degrees clockwise to display".
ORIENTATION = 0x0112

#: file name -> the rejection reason expected (a substring), for files that must be rejected.
EXPECTED_REASONS = {
    "empty.jpg": "empty file",
    "truncated.jpg": "truncated",
    "notes_named_like_a_photo.jpg": "not a photo: text file",
    "one_pixel.png": "too small",
    "bomb_40000x40000.png": "too large",
    "no_face/sky.jpg": "no face found",
}


def noise_jpeg_bytes(size=(200, 150), seed=0) -> bytes:
    from io import BytesIO

    rng = np.random.default_rng(seed)
    buf = BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def save_exif_rotated(rgb: np.ndarray, path: Path, *, malformed: bool = False) -> None:
    """Save ``rgb`` so that it *displays* as ``rgb``: pixels stored rotated 90 degrees
    counter-clockwise, with EXIF orientation 6 telling viewers to rotate them back.

    ``malformed``: the EXIF block also holds WhitePoint (0x013E, a RATIONAL) written as the text
    "cam", as odd cameras and editors do; Pillow's ``exif_transpose`` raises TypeError on it.
    """
    import struct

    stored = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, k=1)))
    if malformed:
        ifd = (struct.pack("<H", 2) + struct.pack("<HHI", ORIENTATION, 3, 1) + struct.pack("<HH", 6, 0)
               + struct.pack("<HHI", 0x013E, 2, 4) + b"cam\x00" + struct.pack("<I", 0))
        exif_bytes = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    else:
        exif = Image.Exif()
        exif[ORIENTATION] = 6
        exif_bytes = exif.tobytes()
    stored.save(path, "JPEG", quality=95, exif=exif_bytes)


def make_bad_corpus(root: Path, face_photo: Path | None = None) -> dict[str, str]:
    """Write the bad-input corpus under ``root``; returns ``{relative name: what it is}``.

    With ``face_photo``, the format cases (CMYK, 16-bit, RGBA, EXIF-rotated, non-ASCII name) are
    conversions of that real photo, so they are expected to yield a face; without it they are
    synthetic pictures (and expected to be rejected as faceless).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "no_face").mkdir()
    (root / "formats").mkdir()
    made = {}

    def add(name: str, what: str) -> Path:
        made[name] = what
        return root / name

    add("empty.jpg", "zero-byte file").write_bytes(b"")
    jpeg = noise_jpeg_bytes()
    add("truncated.jpg", "JPEG cut in half").write_bytes(jpeg[: len(jpeg) // 2])
    add("notes_named_like_a_photo.jpg", "text file named .jpg").write_text("shopping list: milk, eggs\n")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(add("one_pixel.png", "1x1 image"))
    add("bomb_40000x40000.png", "PNG header claiming 40000x40000").write_bytes(png_claiming(40000, 40000))
    # A smooth sky-like gradient with a little noise: a real-looking photo with no face in it.
    yy, xx = np.mgrid[0:240, 0:320]
    sky = np.stack([90 + yy * 0.3, 140 + yy * 0.2, 230 - xx * 0.1], axis=2)
    sky += np.random.default_rng(1).normal(0, 3, sky.shape)
    Image.fromarray(sky.clip(0, 255).astype(np.uint8)).save(add("no_face/sky.jpg", "photo without a face"),
                                                            quality=90)
    # Not photos by content, and hidden files: listed with their reason, never processed.
    add("README.txt", "text file").write_text("not a photo: a text file\n")
    add(".hidden.jpg", "hidden file").write_bytes(jpeg)

    if face_photo is not None:
        rgb = np.asarray(Image.open(face_photo).convert("RGB"))
    else:
        rgb = np.asarray(Image.fromarray(sky.clip(0, 255).astype(np.uint8)))
    Image.fromarray(rgb).convert("CMYK").save(add("formats/cmyk.jpg", "CMYK JPEG"), quality=95)
    grey16 = (np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(grey16).save(add("formats/grey16.png", "16-bit PNG"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, : rgb.shape[1] // 10, 3] = 0  # transparent strip on the left
    Image.fromarray(rgba, "RGBA").save(add("formats/rgba.png", "RGBA PNG"))
    save_exif_rotated(rgb, add("formats/exif_rotated.jpg", "EXIF-rotated photo"))
    Image.fromarray(rgb).save(add("formats/Ibrahimović_élan_照片.jpg", "non-ASCII file name"), quality=95)
    return made


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (hidden ones too), by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def held_by_another_run(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s output lock as a concurrent run would (its own open file description)."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


def make_mixed_folder(root: Path, face_photo: Path) -> tuple[set[str], set[str], dict[str, str]]:
    """A folder as users have them: odd-but-valid photos (no or wrong extension, upper case, CMYK,
    16-bit, EXIF-rotated, progressive, grey, small, WebP/BMP/TIFF/GIF/PGM, nested) made from the real
    ``face_photo``, beside files that are not photos (text, SVG, PDF, HTML, ZIP, random bytes, zero
    bytes, hidden files and folders, a link loop, a broken link) and a truncated photo.

    Returns ``(photos with the face, valid photos without a face, {other entry: expected reason})``,
    names relative to ``root``; the reasons are substrings of what the scan or the loader says.
    """
    import os
    import zipfile
    from io import BytesIO

    root.mkdir(parents=True, exist_ok=True)
    img = Image.open(face_photo).convert("RGB")
    rgb = np.asarray(img)
    jpeg = BytesIO()
    img.save(jpeg, "JPEG", quality=92)
    jpeg = jpeg.getvalue()
    with_face: dict[str, object] = {
        "IMG_0001": jpeg,  # no extension, as phone exports and messaging apps produce
        "holiday.txt": jpeg,  # a photo with a wrong extension
        "UPPER.JPG": jpeg,
        "png_named.jpeg": lambda p: img.save(p, "PNG"),
        "cmyk.jpg": lambda p: img.convert("CMYK").save(p, "JPEG", quality=95),
        "grey16.png": lambda p: Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257).save(p, "PNG"),
        "exif_rotated.jpg": lambda p: save_exif_rotated(rgb, p),
        "progressive.jpg": lambda p: img.save(p, "JPEG", quality=90, progressive=True),
        "grey.jpg": lambda p: img.convert("L").save(p, "JPEG", quality=92),
        "small.jpg": lambda p: img.resize((img.width // 3, img.height // 3)).save(p, "JPEG", quality=92),
        "photo.webp": lambda p: img.save(p, "WEBP", quality=90),
        "photo.bmp": lambda p: img.save(p, "BMP"),
        "photo.tif": lambda p: img.save(p, "TIFF"),
        "photo.gif": lambda p: img.save(p, "GIF"),
        "att_style.pgm": lambda p: img.convert("L").save(p, "PPM"),  # binary P5, as in data/att_faces
        "a/b/c/deep.jpg": jpeg,  # nested folders
    }
    for name, make in with_face.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make) if isinstance(make, bytes) else make(path)
    Image.new("RGB", (8, 8), (40, 90, 200)).save(root / "tiny_8x8.png")
    zipped = BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("a.txt", "x")
    others = {
        "notes.txt": ("shopping list: milk, eggs\n", "not a photo: text file"),
        "fake_photo.png": ("just text named .png\n", "not a photo: text file"),
        "drawing.svg": ('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n',
                        "not a photo: SVG drawing"),
        "drawing_no_ext": ('<svg xmlns="http://www.w3.org/2000/svg" width="10"/>', "not a photo: SVG drawing"),
        "paper.pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "not a photo: PDF document"),
        "page.html": ("<!DOCTYPE html><html><body>hi</body></html>", "not a photo: HTML page"),
        "archive.zip": (zipped.getvalue(), "not a photo: ZIP archive"),
        "random.bin": (np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes(),
                       "not a photo: unknown format"),
        "zero.jpg": (b"", "empty file"),
        "truncated.jpg": (jpeg[: len(jpeg) // 3], "truncated"),
        ".hidden.jpg": (jpeg, "hidden file"),
        "a/.DS_Store": (b"\x00\x00\x00\x01Bud1", "hidden file"),
        ".git/config": ("[core]\n", None),  # inside the hidden folder below: not listed on its own
    }
    expected = {}
    for name, (data, reason) in others.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if reason is not None:
            expected[name] = reason
    expected[".git"] = "hidden folder"
    os.symlink(".", root / "a" / "loop")  # a folder link back up: a loop
    expected["a/loop"] = "link to a folder already searched"
    os.symlink("self_link", root / "self_link")  # a link to itself
    expected["self_link"] = "symbolic link loop"
    os.symlink("deleted.jpg", root / "gone.jpg")
    expected["gone.jpg"] = "broken link"
    return set(with_face), {"tiny_8x8.png"}, expected


def entries(root: Path) -> set[str]:
    """Every entry a folder scan must account for: files and links, and hidden folders as one entry."""
    import os

    found = set()
    for dirpath, dirnames, filenames in os.walk(root):  # links are not followed: each is one entry
        rel = Path(dirpath).relative_to(root)
        for d in list(dirnames):
            if d.startswith(".") or os.path.islink(os.path.join(dirpath, d)):
                found.add((rel / d).as_posix())
                dirnames.remove(d)
        found.update((rel / f).as_posix() for f in filenames)
    return found


def tree_state(root: Path) -> dict[str, str]:
    """:func:`tree_digest` plus every link's target and every entry's mode: "no input changed"."""
    import os

    state = tree_digest(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            key = p.relative_to(root).as_posix()
            st = os.lstat(p)
            state[key + "#mode"] = f"{st.st_mode:o} {st.st_mtime_ns}"
            if p.is_symlink():
                state[key + "#link"] = os.readlink(p)
    return state
