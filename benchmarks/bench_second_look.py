"""The default detector's second look: photos with a face found, before and after, in one run.

Issue 34: find the faces YuNet misses (small, turned, cut by the edge) without more false
detections. Variants of :class:`vision_lib.models.detectors.YuNetDetector` (each extra look runs
only where every earlier look found nothing, so a variant differs from the default only on the
photos where the default finds no face):

* ``default``: 640 px, then 640 px with a 15 % black border (faces that fill the frame);
* ``+1280``: then the photo at up to 1280 px (small faces lost at 640);
* ``+turned``: then the photo turned by +-25 degrees (tilted heads);
* ``+1280+turned``: both.

Sets: the held-out footballer photos (the 30 % of ``classify.split``, seed 0, as bench_classify
scores), every LFW photo (each shows a face: a gain there is a face found, not a false one) and the
24 Kodak photos (most show no person: a gain there is listed by name, to look at). Prints JSON;
no cache (``VISION_LIB_CACHE=off``).

Usage: ``python benchmarks/bench_second_look.py``.
"""
from __future__ import annotations

import json
import os

os.environ["VISION_LIB_CACHE"] = "off"

from vision_lib import classify  # noqa: E402
from vision_lib.config import dataset  # noqa: E402
from vision_lib.io import ImageError, load_image, photo_set  # noqa: E402
from vision_lib.models.detectors import YuNetDetector  # noqa: E402

VARIANTS = {"default": {}, "+1280": {"second_look": (640, 1280)}, "+turned": {"rotations": (25, -25)},
            "+1280+turned": {"second_look": (640, 1280), "rotations": (25, -25)}}


def run(paths) -> dict:
    images = {}
    for p in paths:
        try:
            images[str(p)] = load_image(p)
        except ImageError:
            pass
    base = YuNetDetector(threads=1)
    found = {p: base.detect(im) for p, im in images.items()}
    missed = [p for p, f in found.items() if not f]
    out = {}
    for name, params in VARIANTS.items():
        det = YuNetDetector(threads=1, **params)
        gained = {p: len(det.detect(images[p])) for p in missed} if params else {}
        with_face = sum(bool(f) for f in found.values()) + sum(bool(n) for n in gained.values())
        out[name] = {"photos": len(images), "with_face": with_face,
                     "share_with_face": round(with_face / max(1, len(images)), 4),
                     "faces": sum(map(len, found.values())) + sum(gained.values()),
                     "gained": sorted(os.path.relpath(p, os.path.dirname(os.path.dirname(p)))
                                      for p, n in gained.items() if n)}
    return out


def main() -> None:
    fb = photo_set(dataset("footballers"), labelled=True)
    _, held_out = classify.split(fb, test_size=0.3, seed=0)
    result = {"footballers_held_out": run(held_out.paths),
              "lfw": run(photo_set(dataset("lfw"), labelled=True).paths),
              "kodak": run(photo_set(dataset("kodak")).paths)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
