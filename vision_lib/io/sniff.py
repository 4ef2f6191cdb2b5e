"""What a file is, by its first bytes (never by its name): a photo this install decodes, or a
reason it is not one."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .reasons import cannot_read

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}
)


def is_image_name(path: str | os.PathLike) -> bool:
    """True when the file name has a usual photo extension. Folder scans go by content instead
    (:func:`sniff_file`); this is only a hint, e.g. for naming outputs."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


#: How many bytes of a file are read to tell what it is.
SNIFF_BYTES = 4096

#: Leading bytes of the photo formats the decoder (Pillow) reads -> format name.
_PHOTO_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"), (b"MM\x00+", "TIFF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"), (b"\xff\x4f\xff\x51", "JPEG2000"),
)
#: Leading bytes of common files that are not photos -> what they are (as the reason says it).
_OTHER_MAGIC = (
    (b"%PDF-", "PDF document"), (b"%!PS", "PostScript document"), (b"\xc5\xd0\xd3\xc6", "PostScript document"),
    (b"PK\x03\x04", "ZIP archive (or an Office document)"), (b"PK\x05\x06", "ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip archive"), (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"), (b"Rar!", "RAR archive"),
    (b"BZh", "bzip2 archive"), (b"\xfd7zXZ\x00", "xz archive"), (b"\x28\xb5\x2f\xfd", "zstd archive"),
    (b"\x1aE\xdf\xa3", "video (Matroska/WebM)"), (b"OggS", "audio or video (Ogg)"), (b"ID3", "audio (MP3)"),
    (b"fLaC", "audio (FLAC)"), (b"\x7fELF", "program (ELF)"), (b"MZ", "program (Windows)"),
    (b"SQLite format 3\x00", "SQLite database"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Office document"),
    (b"8BPS", "Photoshop document"), (b"\x00\x00\x01\x00", "icon"), (b"\x93NUMPY", "NumPy array"),
    (b"\x89HDF\r\n\x1a\n", "HDF5 file"), (b"{\\rtf", "RTF document"),
)
#: ISO media (``ftyp``) brands of still photos: AVIF, and HEIC/HEIF (iPhone photos).
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def _pillow_reads(fmt: str) -> bool:
    """True when this Pillow can decode ``fmt`` (AVIF, JPEG 2000 and HEIF depend on how it was built)."""
    from PIL import Image

    if fmt == "HEIF":
        try:  # a plug-in, when installed; Pillow alone does not read HEIC
            from pillow_heif import register_heif_opener
        except ImportError:
            return False
        register_heif_opener()
        return True
    Image.init()
    return fmt in Image.OPEN


def sniff_bytes(head: bytes) -> tuple[str | None, str | None]:
    """What the leading bytes of a file say it is: ``(photo format, None)`` for a photo this
    install can decode, else ``(None, reason)`` ("not a photo: text file", "empty file", ...).

    Decided by content alone, never by the name: a JPEG called ``IMG_0001`` or ``notes.txt`` is a
    photo, a text file called ``a.jpg`` is not. A photo format recognised here may still turn out
    truncated or corrupt when decoded (:func:`load_image` says so then).
    """
    if not head:
        return None, "empty file"
    fmt = next((f for magic, f in _PHOTO_MAGIC if head.startswith(magic)), None)
    if fmt is None:
        if head[:2] == b"BM" and len(head) >= 18 and head[6:10] == b"\x00\x00\x00\x00":  # reserved bytes
            fmt = "BMP"
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            fmt = "WEBP"
        elif len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
            fmt = "PPM"  # PBM/PGM/PPM (as in att_faces)
        elif head[4:8] == b"ftyp":
            brands = {head[i:i + 4] for i in range(8, min(len(head), int.from_bytes(head[:4], "big")), 4)}
            if brands & _AVIF_BRANDS:
                fmt = "AVIF"
            elif brands & _HEIF_BRANDS:
                fmt = "HEIF"
            else:
                return None, "not a photo: video (MP4/QuickTime)"
        elif head[:4] == b"RIFF":
            return None, "not a photo: audio or video (RIFF)"
    if fmt is not None:
        if _pillow_reads(fmt):
            return fmt, None
        hint = " (pip install pillow-heif)" if fmt == "HEIF" else ""
        return None, f"photo format not supported here: {fmt}{hint}"
    what = next((w for magic, w in _OTHER_MAGIC if head.startswith(magic)), None)
    return None, f"not a photo: {what or _text_kind(head) or 'unknown format'}"


def _text_kind(head: bytes) -> str | None:
    """"SVG drawing", "HTML page", "XML file" or "text file" when ``head`` reads as text, else None."""
    import codecs

    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head[2:].decode("utf-16-le" if head.startswith(codecs.BOM_UTF16_LE) else "utf-16-be", "ignore")
    elif b"\x00" in head:
        return None
    else:
        try:  # a multi-byte character cut at the end of the sample is still text
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            text = head.decode("latin-1")
            if sum(c < 32 and c not in b"\t\n\r\f" for c in head) > len(head) // 100:
                return None  # control bytes: binary, not Latin-1 text
    low = text.lstrip("\ufeff \t\r\n").lower()
    if "<svg" in low:
        return "SVG drawing"
    if low.startswith(("<!doctype html", "<html")) or "<html" in low[:512]:
        return "HTML page"
    if low.startswith("<?xml"):
        return "XML file"
    return "text file"


def sniff_file(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """:func:`sniff_bytes` of a file's first bytes; files that cannot be read (broken links, link
    loops, folders, pipes, no permission) get a reason too. Only reads, and only regular files."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        return None, cannot_read(exc, path)
    if not stat.S_ISREG(st.st_mode):
        return None, "cannot read: a folder" if stat.S_ISDIR(st.st_mode) else "cannot read: not a regular file"
    if st.st_size == 0:
        return None, "empty file"
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    return sniff_bytes(head)


__all__ = ["IMAGE_EXTENSIONS", "SNIFF_BYTES", "is_image_name", "sniff_bytes", "sniff_file"]
