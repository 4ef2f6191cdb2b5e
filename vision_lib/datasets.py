"""Public face sets for machines without data of their own (needs internet once)."""
from __future__ import annotations

import os
from pathlib import Path


def fetch_lfw(out_dir: str | os.PathLike, *, min_faces_per_person: int = 20, timeout: float = 60.0) -> int:
    """Download Labeled Faces in the Wild (scikit-learn's loader) as ``out_dir/<Person>/<n>.jpg``.

    Returns the number of photos written. ``out_dir`` must be new or empty (a fetch never mixes into
    someone's photos). The archive itself is cached by scikit-learn (``~/scikit_learn_data``).
    ``timeout`` bounds each network operation: scikit-learn's downloader sets none, so a stalled
    connection would otherwise hang for ever.
    """
    import socket

    from PIL import Image
    from sklearn.datasets import fetch_lfw_people

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; fetch into a new folder")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        lfw = fetch_lfw_people(min_faces_per_person=min_faces_per_person, color=True, resize=1.0,
                               slice_=None, download_if_missing=True)
    except OSError as exc:  # no network, a stalled connection (timeout), or the mirror is down
        raise RuntimeError(
            f"Could not download LFW ({exc}). On a machine with internet run "
            f"`vision-lib fetch lfw --out {out_dir}`, or copy photos into {out_dir}/<person>/."
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)
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


#: The public names of this module.
__all__ = ["fetch_lfw"]
