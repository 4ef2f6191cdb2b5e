"""Image compression by colour quantization: K-Means palettes, palette PNGs, honest quality figures.

The quantizer reaches full-image K-Means quality at a fraction of its cost:

1. **Colour histogram.** Pixels fall into ``2**bits`` bins per channel (7 bits: cubes of 2x2x2
   levels); each occupied bin keeps its pixel count and colour sum. A photo has a few thousand to a
   few tens of thousands of occupied bins instead of hundreds of thousands of pixels.
2. **Weighted K-Means** (scikit-learn, k-means++, ``sample_weight`` = counts, best of 3 starts) on
   the means of coarser 6-bit bins. The squared error of pixels equals the weighted error of their
   bin means plus a constant, so this is the pixel objective, with pixels of one bin kept together.
3. **Exact assignment and refinement.** A 7-bit bin whose whole cube is nearer to one palette
   colour than to any other sends all its pixels there; only pixels of bins straddling a boundary
   are compared with their bin's few contending colours (a KD-tree when there are many). Two Lloyd
   steps on these exact pixel assignments move the palette to the true pixel means, which lifts
   the small loss of step 2. Every pixel gets its exact nearest palette colour.

Dithering (Floyd-Steinberg) uses Pillow's C implementation with the fitted palette.
Palette PNGs are written by Pillow with as few bits per index as the palette allows (1, 2, 4, 8).

One module per job, every public name re-exported here (``from vision_lib import compress; compress.X``):

==============  ==========================================================================
``bins``        :func:`colour_bins`: the occupied bins of the colour cube (step 1)
``quantizer``   :class:`ColourQuantizer`, :func:`quantize`, :class:`Quantized`; repeated fits for
                live widgets (:class:`ColourTable`, :class:`PaletteTree`, :func:`refit`)
``png``         palette and plain PNG bytes, :func:`write_new_file`, output names
``metrics``     :func:`psnr`, :func:`ssim`, :func:`fidelity` (both), :func:`size_report`
``files``       :func:`compress_file`, :func:`compress_files` (``vision-lib compress``)
``baselines``   :func:`quantize_with` (scikit-learn, Pillow, pngquant), :func:`compare_quantizers`,
                JPEG and WebP at the palette PNG's bytes (:func:`equal_bytes`)
``tables``      the tables above over many photos, on every core (:func:`size_table`,
                :func:`equal_bytes_table`, :func:`compare_table`)
``examples``    the Kodak photos or the bundled images
``plots``       the notebook's plots
==============  ==========================================================================
"""
from __future__ import annotations

from ..io import load_image  # noqa: F401 (used by the tests as compress.load_image)
from .baselines import (BASELINES, CODECS, codec_at_bytes, compare_quantizers, encode_with, equal_bytes, format_table,
                        pngquant_available, quantize_with, summarise)
from .bins import ColourBins, colour_bins
from .examples import bundled_images, example_images, example_names, example_paths, graphic_image
from .files import MAX_MEGAPIXELS, compress_file, compress_files, to_jsonl
from .metrics import SSIM, fidelity, psnr, size_report, ssim
from .plots import plot_colour_space, plot_equal_bytes, plot_rate_quality, plot_side_by_side, sample_pixels
from .png import output_name, output_names, palette_png_bytes, plain_png_bytes, write_new_file
from .quantizer import (ColourQuantizer, ColourTable, PaletteTree, Quantized, _dither, _nearest,  # noqa: F401
                        colour_table, map_to_palette, palette_tree, quantize, refit)
from .tables import compare_table, equal_bytes_table, size_table

#: Older names (notebook 06 and widgets used them): a colour *histogram* is a feature of
#: :mod:`vision_lib.features`, *quality* a face's (:class:`vision_lib.faces.FaceQuality`), and
#: *compare_methods* the clustering presets' comparison.
ColourHistogram = ColourBins
colour_histogram = colour_bins
quality = fidelity
compare_methods = compare_quantizers

#: The public names of this package.
__all__ = ["BASELINES", "ColourBins", "colour_bins", "ColourQuantizer", "ColourTable",
           "colour_table", "PaletteTree", "palette_tree", "refit", "map_to_palette", "Quantized", "quantize",
           "palette_png_bytes", "plain_png_bytes", "write_new_file", "output_name", "output_names", "psnr",
           "ssim", "SSIM", "fidelity", "size_report", "MAX_MEGAPIXELS", "compress_file", "compress_files",
           "pngquant_available", "quantize_with", "compare_quantizers", "CODECS", "encode_with", "codec_at_bytes",
           "equal_bytes", "summarise", "format_table", "graphic_image",
           "example_images", "example_names", "example_paths", "bundled_images", "sample_pixels",
           "plot_colour_space", "plot_side_by_side", "plot_rate_quality", "plot_equal_bytes", "to_jsonl",
           "size_table", "equal_bytes_table", "compare_table",
           "ColourHistogram", "colour_histogram", "quality", "compare_methods"]
