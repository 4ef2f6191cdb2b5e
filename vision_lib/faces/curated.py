"""A gallery's faces of one person (:func:`curated_faces`): the best ranked, without grey or drawn
faces, other people or the same photo twice."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..geometry import Face, crop
from ..io import ImageError, load_image
from .export import row_quality
from .rating import MIN_SIZE, best_faces, colourfulness


#: Below this colourfulness a face is taken for a grey or sepia photo, a sketch or a drawing: the
#: "slightly colourful" anchor of Hasler & Süsstrunk's scale (0 "not colourful", 15 "slightly",
#: 33 "moderately"). (Chosen after a sepia sketch scored 9.7 on the footballer photos, where the
#: colour face crops seen scored 32-57; a gallery may lose a pale, cold-lit photo to it.)
MIN_COLOURFULNESS = 15.0
#: Two faces closer than this share of the descriptor's same-person distance are one photo twice
#: (a re-encoded or resized copy), not two photos of one person.
DUPLICATE_SHARE = 0.25


@dataclass
class Curated:
    """What :func:`curated_faces` kept (``index``: rows, best first) and what it left out, by reason."""

    index: list[int]
    left_out: dict[str, int] = field(default_factory=dict)

    def note(self) -> str:
        """``"left out: 2 duplicate, 1 another person"`` (empty when nothing was left out)."""
        return ("left out: " + ", ".join(f"{v} {k}" for k, v in sorted(self.left_out.items(), key=lambda kv: -kv[1]))
                if self.left_out else "")


def curated_faces(rows: Sequence[dict], root: str | os.PathLike, n: int, *, descriptor: str | None = None,
                  pool: int = 4, min_frontalness: float = 0.5, min_size: int = MIN_SIZE,
                  min_colourfulness: float = MIN_COLOURFULNESS, duplicate_share: float = DUPLICATE_SHARE) -> Curated:
    """The ``n`` best faces of one person's ``faces.csv`` rows (:func:`read_export`; photos under
    ``root``) for a gallery: ranked by :func:`best_faces`; among the ``pool * n`` best, a face is
    left out when

    - ``turned away or small``: under ``min_frontalness`` or ``min_size`` (as :func:`best_faces` ranks);
    - ``grey or drawn``: its :func:`colourfulness` is under ``min_colourfulness``;
    - ``another person``: its median descriptor distance to the folder's core faces is above the
      descriptor's own same-person distance. The core is the half of the photos' largest faces
      (``face_index`` 0: a folder's photos are mostly framed on its person) with the smallest median
      distance to each other; with fewer than 4 such faces the rule is skipped;
    - ``duplicate``: it is within ``duplicate_share`` of that distance of a face kept before it
      (the same photo twice).

    The faces kept are shown most typical first (smallest median distance to the core), so the
    gallery opens with the person, not with the sharpest drawing of them. The rules use only the descriptor's calibrated threshold, a published colour scale and the
    ranking's own limits, nothing fitted to a data set. A face whose photo cannot be read is left
    out as ``unreadable``.
    """
    from collections import Counter

    from ..models import describe_many, get_descriptor

    qualities = [row_quality(r) for r in rows]
    order = best_faces(qualities, max(1, pool * n), min_frontalness=min_frontalness, min_size=min_size)
    model = get_descriptor(descriptor)
    left_out: Counter = Counter()
    items, kept = [], []
    for i in order:
        q, row = qualities[i], rows[i]
        if q.size < min_size or (q.frontalness is not None and q.frontalness < min_frontalness):
            left_out["turned away or small"] += 1
            continue
        face = Face(tuple(int(float(row[k])) for k in ("x", "y", "w", "h")), float(row["score"]))
        try:
            image = load_image(Path(root) / row["source"])
            patch = crop(image, face, 0.0)
        except (ImageError, ValueError):  # unreadable now, or a box outside the photo
            left_out["unreadable"] += 1
            continue
        if colourfulness(patch) < min_colourfulness:
            left_out["grey or drawn"] += 1
            continue
        items.append((image, [face]))
        kept.append(i)
    if not kept:
        return Curated([], dict(left_out))
    X = np.concatenate(describe_many(model, items)).astype(np.float64)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    threshold = float(model.threshold)
    largest = np.array([str(rows[i].get("face_index", "0")) == "0" for i in kept])
    typical = np.zeros(len(kept))
    if largest.sum() >= 4:
        L = np.flatnonzero(largest)
        inner = D[np.ix_(L, L)] + np.diag(np.full(len(L), np.nan))
        core = L[np.argsort(np.nanmedian(inner, axis=1))[: max(2, len(L) // 2)]]
        typical = np.array([np.median([D[j, c] for c in core if c != j]) for j in range(len(kept))])
    chosen: list[int] = []  # counts are over the whole pool, so "left out" says what the gallery was spared
    # Most typical first: a drawing or cartoon in colour, or a look-alike, is farther from the
    # person's core faces than their photos are, so it falls to the end of the pool, not the front.
    for j in np.argsort(typical, kind="stable"):
        if typical[j] > threshold:
            left_out["another person"] += 1
        elif any(D[j, c] < duplicate_share * threshold for c in chosen):
            left_out["duplicate"] += 1
        else:
            chosen.append(j)
    return Curated([kept[j] for j in chosen[:n]], dict(left_out))


#: The public names of this module.
__all__ = ["MIN_COLOURFULNESS", "DUPLICATE_SHARE", "Curated", "curated_faces"]
