"""Find, crop, align and rate faces; detect (and describe) folders of photos; export crops.

Detectors are plug-ins of :mod:`vision_lib.models`, taken by name (:data:`DETECTORS`: ``yunet``,
``mtcnn``, ``haar``; default :data:`~vision_lib.models.DEFAULT_DETECTOR`), and so are the
descriptors :func:`detect_paths` computes with ``descriptors=<name>``.

Large photos are downscaled for detection and boxes are mapped back, so crops come from the
original pixels. Faces of a photo are always ordered largest first (``face_index`` 0 = largest).

One module per job, every public name re-exported here (``from vision_lib import faces; faces.X``):

==============  ==========================================================================
``detection``   :func:`detect` (one image), :func:`alignment_matrix`, :func:`align`, :data:`TEMPLATE`
``rating``      :class:`FaceQuality`, :func:`quality`, :func:`best_faces`, :func:`colourfulness`
``batch``       :func:`detect_paths` (many photos, in parallel, cached on disk), :class:`PhotoFaces`,
                :func:`detection_stats`, :func:`time_detection`
``export``      :func:`export_faces` (``vision-lib faces``), :func:`read_export`, :func:`manifest_by_folder`
``curated``     :func:`curated_faces`: a gallery's best faces of one person
``models``      :mod:`vision_lib.models` seen from inside the package (keeps the cache's keys)
==============  ==========================================================================
"""
from __future__ import annotations

# The detectors and the Face record live in the layers below; re-exported for existing callers.
from ..geometry import ARCFACE_112, KEYPOINTS, Face, crop, largest_first, similarity_transform  # noqa: F401
# Names the single-module faces.py imported, kept importable from here.
from ..io import CSV_TEXT, ImageError, check_rgb, is_inside, load_image  # noqa: F401
from ..models import DEFAULT_DETECTOR, DETECTORS, get_detector  # noqa: F401
from ..models.detectors import HaarDetector, MTCNNDetector, YuNetDetector  # noqa: F401
from ..parallel import map_chunks  # noqa: F401
from .batch import (_SPEED_ONLY, PhotoFaces, _cached_detections, _describe, _describe_cached,  # noqa: F401
                    _describe_impl, _detect_cached, _detect_cached_impl, _detect_chunk, _detect_path,
                    _detect_path_raw, _detect_uncached, _make_cached, _relax_loky_leak_check, _worker_params,
                    detect_paths, detection_stats, time_detection)
from .curated import DUPLICATE_SHARE, MIN_COLOURFULNESS, Curated, curated_faces
from .detection import _ARCFACE, _EYE_MID, TEMPLATE, align, alignment_matrix, detect  # noqa: F401
from .export import (_SETTINGS_FILE, FACES_COLUMNS, NOT_A_PHOTO, REJECTED_COLUMNS, ExportSummary,  # noqa: F401
                     _check_out_dir, _crop_stems, _drop_partial_last_line, _export_chunk, _export_one,
                     _prepare_out_dir, export_faces, manifest_by_folder, read_export, rejection_category,
                     row_quality)
from .rating import FaceQuality, best_faces, colourfulness, frontalness, quality, sharpness

# The disk cache pickles detections with their FaceQuality by class path: keep the paths of the
# single-module faces.py, so that entries written before and after the split load with either code.
FaceQuality.__module__ = PhotoFaces.__module__ = Curated.__module__ = ExportSummary.__module__ = __name__

#: The public names of this module.
__all__ = ["detect", "TEMPLATE", "alignment_matrix", "align", "FaceQuality", "frontalness", "sharpness",
           "quality", "best_faces", "colourfulness", "MIN_COLOURFULNESS", "DUPLICATE_SHARE", "Curated",
           "curated_faces", "PhotoFaces", "detect_paths", "detection_stats", "time_detection",
           "FACES_COLUMNS", "REJECTED_COLUMNS", "ExportSummary", "export_faces", "rejection_category",
           "read_export", "row_quality", "manifest_by_folder"]
