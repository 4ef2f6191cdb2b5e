"""Benchmark feature extraction: the wavelet recipe vs MobileNetV2, and the MobileNetV2 disk cache.

Prints one JSON object. Everything is compared within the same run (ratios), on real photos:
``$VISION_LIB_DATA/footballers`` (raw web photos, full size) for MobileNetV2 over files, and
centre crops of ``$VISION_LIB_DATA/lfw`` photos (LFW faces are centred) for per-crop costs.

    python benchmarks/bench_features.py [--photos 96] [--crops 200] [--batch-size 32]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=96, help="footballer photos for the file benchmark")
    parser.add_argument("--crops", type=int, default=200, help="LFW centre crops for per-crop costs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # A fresh cache for this run, so "uncached" really is uncached.
    os.environ["VISION_LIB_CACHE"] = tempfile.mkdtemp(prefix="bench_features_")

    import numpy as np

    from vision_lib import config, embeddings, features, io

    photos = io.photo_set(config.dataset("footballers"), labelled=True)
    photos = photos.limit(total=args.photos, per_label=-(-args.photos // len(photos.classes)), seed=args.seed)
    lfw = io.photo_set(config.dataset("lfw"), labelled=True).limit(total=args.crops, seed=args.seed)
    crops = [io.load_image(p)[35:115, 40:110] for p in lfw.paths]  # ~ the face in a 150x150 LFW photo

    embeddings.image_features(crops[:2], progress=False)  # load the model before timing

    wav, t_wav = _timed(features.WaveletFeatures().transform, crops)
    mob, t_mob = _timed(embeddings.image_features, crops, batch_size=args.batch_size, progress=False)
    _, t_mob1 = _timed(embeddings.image_features, crops[:32], batch_size=1, progress=False)
    hist, t_hist = _timed(features.ColourHistograms().transform, crops)

    uncached, t_unc = _timed(embeddings.image_features_paths, photos.paths, batch_size=args.batch_size,
                             progress=False)
    cached, t_cached = _timed(embeddings.image_features_paths, photos.paths, batch_size=args.batch_size,
                              progress=False)
    assert np.array_equal(uncached, cached, equal_nan=True)

    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 1)},
        "crops": len(crops),
        "wavelet_ms_per_crop": round(1000 * t_wav / len(crops), 2),
        "colour_histograms_ms_per_crop": round(1000 * t_hist / len(crops), 2),
        "mobilenet_crops_per_s": round(len(crops) / t_mob, 1),
        "mobilenet_over_wavelet_time_per_crop": round(t_mob / t_wav, 1),
        "mobilenet_batched_over_batch_1_speed": round((len(crops) / t_mob) / (32 / t_mob1), 2),
        "photos": len(photos),
        "mobilenet_photos_per_s_uncached": round(len(photos) / t_unc, 1),
        "mobilenet_photos_per_s_cached": round(len(photos) / t_cached, 1),
        "cache_speedup": round(t_unc / t_cached, 1),
        "feature_dims": {"wavelet": wav.shape[1], "colour_histograms": hist.shape[1], "mobilenet": mob.shape[1]},
    }, indent=2))


if __name__ == "__main__":
    main()
