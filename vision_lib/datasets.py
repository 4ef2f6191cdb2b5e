"""Public face sets for machines without data of their own (needs internet once)."""
from __future__ import annotations

import os
from pathlib import Path


def fetch_lfw(out_dir: str | os.PathLike, *, min_faces_per_person: int = 20) -> int:
    """Download Labeled Faces in the Wild (scikit-learn's loader) as ``out_dir/<Person>/<n>.jpg``.

    Returns the number of photos written. Existing files are never overwritten.
    """
    from PIL import Image
    from sklearn.datasets import fetch_lfw_people

    try:
        lfw = fetch_lfw_people(min_faces_per_person=min_faces_per_person, color=True, resize=1.0,
                               slice_=None, download_if_missing=True)
    except OSError as exc:  # no network, or the mirror is down
        raise RuntimeError(
            f"Could not download LFW ({exc}). On a machine with internet run "
            f"`vision-lib fetch lfw --out {out_dir}`, or copy photos into {out_dir}/<person>/."
        ) from exc
    out_dir = Path(out_dir)
    written = 0
    counts: dict[str, int] = {}
    for image, target in zip(lfw.images, lfw.target):
        name = str(lfw.target_names[target]).replace(" ", "_")
        counts[name] = counts.get(name, 0) + 1
        path = out_dir / name / f"{name}_{counts[name]:04d}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = image if image.max() > 1.0 else image * 255.0
        Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(path, quality=95)
        written += 1
    return written
