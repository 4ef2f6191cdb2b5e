"""Photos in, files out: one import path (``vision_lib.io``) for three concerns, each in its own module.

- :mod:`~vision_lib.io.decode`: one photo -> an RGB ``uint8`` array (EXIF, CMYK, 16-bit, bombs).
- :mod:`~vision_lib.io.jpeg`: JPEGs through libjpeg-turbo directly (scaled, or only down to the rows needed).
- :mod:`~vision_lib.io.sniff`: what a file is, by its first bytes.
- :mod:`~vision_lib.io.scan`: folders -> photos and skipped entries with a reason; labelled sets.
- :mod:`~vision_lib.io.outputs`: output checks, atomic writes, folder locks, staged folders.
- :mod:`~vision_lib.io.reasons`: :class:`ImageError`, :class:`Rejected`, :func:`cannot_read`.

A file that cannot be used raises :class:`ImageError` with a short ``reason``; batch helpers turn
that into a :class:`Rejected` record instead of stopping. Originals are only ever opened for reading.
"""
from __future__ import annotations

from .decode import MAX_PIXELS, Decoded, check_rgb, load_image, load_image_bytes, load_image_reduced, resize_max_side
from .outputs import (CSV_TEXT, STAGING_PREFIX, check_output_file, check_output_folder, check_writable, copy_grouped,
                      csv_bytes, flat_name, folder_lock, holds_no_output, is_inside, locked_output,
                      make_writable_folder, prepare_output, signals_deferred, staged_folder, write_atomic)
from .reasons import ImageError, Rejected, cannot_read
from .scan import (EMPTY_FOLDER, LISTED_AT_MOST, FolderScan, LoadReport, PhotoSet, entry_word, iter_loaded,
                   list_images, named_like_a_photo, photo_set, scan_folder, too_few_photos)
from .sniff import IMAGE_EXTENSIONS, SNIFF_BYTES, is_image_name, sniff_bytes, sniff_file

from . import decode, outputs, reasons, scan, sniff

#: The public names of this package: those of its modules.
__all__ = [*decode.__all__, *sniff.__all__, *scan.__all__, *outputs.__all__, *reasons.__all__]
