"""Measure a descriptor's curve of web strangers (the open-set rule's default population).

Protocol (issue 34; docs/openset.md, "Where the strangers come from"):

* **Population**: the people of ``$VISION_LIB_DATA/lfw`` whose half is ``"calibrate"``
  (:func:`vision_lib.openset.lfw_half`: first hex digit of the SHA-256 of the folder name 0-7).
  The other half is never read here: ``bench_classify.py`` scores strangers on it.
* **Faces**: the default recipe's detector with ``--descriptor`` (every face of every photo); a
  person's own face in a photo is its largest face (LFW photos are centred on the person).
* **Curve**: each person's centroid (their own faces) against every photo of the other people of
  the half, the photo's closest face kept: the per-person rate at each ``cohort`` score (the
  cosine to the centroid normalised by the half's mean and spread of faces along it, those moments
  leaving the person's own faces out; :func:`vision_lib.stranger_curves.measure_curve`).

Prints JSON; ``--write`` stores the curve in ``vision_lib/stranger_curves.json`` under the
descriptor's id (numbers only: quantiles and the faces' mean and covariance; no face, descriptor
or name). Run it for a descriptor that has no
curve yet (e.g. ``arcface`` with the real weights) before trusting its ``--far``:
``python benchmarks/stranger_curve.py --descriptor arcface --write``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vision_lib import classify  # noqa: E402
from vision_lib.config import dataset  # noqa: E402
from vision_lib.io import photo_set  # noqa: E402
from vision_lib.openset import lfw_half  # noqa: E402
from vision_lib.stranger_curves import CURVES_FILE, measure_curve  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--descriptor", default=None, help="descriptor name (default: the default descriptor)")
    ap.add_argument("--write", action="store_true", help=f"store the curve in {CURVES_FILE.name}")
    args = ap.parse_args()
    start = time.perf_counter()
    ps = photo_set(dataset("lfw"), labelled=True)
    half = ps.subset([i for i, lab in enumerate(ps.labels) if lfw_half(lab) == "calibrate"])
    recipe = classify.Recipe(descriptor=args.descriptor)
    photos, people, subject = [], [], []
    for ph, who in zip(classify.extract(half.paths, recipe, progress=False), half.labels):
        if ph.descriptors is None or not len(ph.descriptors):
            continue
        photos.append(ph.descriptors)
        people.append(who)
        subject.append(max(range(len(ph.faces)), key=lambda i: ph.faces[i].box[2] * ph.faces[i].box[3]))
    curve = measure_curve(photos, people, subject)
    curve.update(population="LFW, calibration half (vision_lib.openset.lfw_half), every face of every photo",
                 detector=recipe.detector or "default", measured=time.strftime("%Y-%m-%d"))
    did = recipe.descriptor_model.id
    if args.write:
        data = json.loads(CURVES_FILE.read_text()) if CURVES_FILE.is_file() else {}
        data[did] = {"cohort": curve}  # one score per descriptor
        CURVES_FILE.write_text(json.dumps(data, separators=(",", ":")) + "\n")  # compact: a 128x128 covariance
    print(json.dumps({"descriptor": did, "people": curve["people"], "photos": curve["photos"],
                      "pairs": curve["pairs"], "written": args.write,
                      "seconds": round(time.perf_counter() - start, 1),
                      "curve": {k: v for k, v in curve.items() if k not in ("mean", "cov")}}, indent=1))


if __name__ == "__main__":
    main()
