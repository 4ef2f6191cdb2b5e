"""The default detector's second look: photos with a face found, before and after, in one run.

Issue 34: find the faces YuNet misses (small, turned, cut by the edge) without more false
detections. Variants of :class:`vision_lib.models.detectors.YuNetDetector` (each extra look runs
only where every earlier look found nothing, so a variant differs from the default only on the
photos where the default finds no face):

* ``before``: 640 px, then 640 px with a 15 % black border (the default until 2026-12-07);
* ``+320``: then 320 px with the border (a face larger than YuNet's largest anchors at 640 px:
  a close-up that fills or overflows the frame);
* ``+1280``: then the photo at up to 1280 px (small faces lost at 640);
* ``+turned``: then the photo turned by +-25 degrees (tilted heads);
* ``default``: the detector's defaults now.

Sets: the **training** footballer photos (the 70 % of ``classify.split``, seed 0: the development
set where a look is chosen, by looking at its gains), the **held-out** footballer photos (the 30 %
bench_classify scores: measured once a look is chosen), every LFW photo (each shows a face: a gain
there is a face found, not a false one) and the 24 Kodak photos (most show no person: a gain there
is listed by name, to look at). Each gain is listed with its score. Prints JSON; no cache
(``VISION_LIB_CACHE=off``).

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

BEFORE = {"second_look": (640,)}
VARIANTS = {"before": BEFORE, "+320": {"second_look": (640, 320)}, "+1280": {"second_look": (640, 1280)},
            "+turned": {**BEFORE, "rotations": (25, -25)}, "default": {}}


def run(paths) -> dict:
    images = {}
    for p in paths:
        try:
            images[str(p)] = load_image(p)
        except ImageError:
            pass
    base = YuNetDetector(threads=1, **BEFORE)
    found = {p: base.detect(im) for p, im in images.items()}
    missed = [p for p, f in found.items() if not f]
    out = {}
    for name, params in VARIANTS.items():
        det = YuNetDetector(threads=1, **params)
        # every look beyond ``before`` runs only where it found nothing: the rest is unchanged
        gained = {p: det.detect(images[p]) for p in missed} if params is not BEFORE else {}
        with_face = sum(bool(f) for f in found.values()) + sum(bool(f) for f in gained.values())
        out[name] = {"photos": len(images), "with_face": with_face,
                     "share_with_face": round(with_face / max(1, len(images)), 4),
                     "faces": sum(map(len, found.values())) + sum(map(len, gained.values())),
                     "gained": {os.path.relpath(p, os.path.dirname(os.path.dirname(p))): [round(f.score, 2) for f in fs]
                                for p, fs in sorted(gained.items()) if fs}}
    return out


def main() -> None:
    fb = photo_set(dataset("footballers"), labelled=True)
    training, held_out = classify.split(fb, test_size=0.3, seed=0)
    result = {"footballers_training": run(training.paths), "footballers_held_out": run(held_out.paths),
              "lfw": run(photo_set(dataset("lfw"), labelled=True).paths),
              "kodak": run(photo_set(dataset("kodak")).paths)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
