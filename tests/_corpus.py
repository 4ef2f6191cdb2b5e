"""Generated inputs for the io and faces tests: the bad-input corpus of issue 2 (and a held output lock).

Everything is made here (never committed images); the face photos are copies of a real photo
passed in by the test (from ../shared), converted to the awkward formats.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

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


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims ``width`` x ``height`` pixels (a bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


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
    # Ignored by design: not a photo extension, and hidden files.
    (root / "README.txt").write_text("not a photo: ignored by extension\n")
    (root / ".hidden.jpg").write_bytes(jpeg)

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
    import os

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)
