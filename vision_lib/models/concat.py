"""Two registered descriptors side by side: each L2-normalised, concatenated, divided by sqrt(2).

The squared distance of two such rows is the mean of the parts' squared distances, so one
threshold on the result weighs both networks alike (``bench_models.py``'s ``facenet+dlib`` row is
built the same way).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..geometry import Face

__all__ = ["ConcatDescriptor"]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ConcatDescriptor:
    """The concatenation of the descriptors named ``parts`` (registry names), L2-normalised.

    Args:
        parts: registered descriptor names, in order.
        threshold: same-person distance of the concatenation (calibrated per combination).
        threads: passed to each part.
    """

    metric = "euclidean"

    def __init__(self, parts: Sequence[str], threshold: float, threads: int | None = None):
        from . import get_descriptor

        self.parts = [get_descriptor(p) if threads is None else get_descriptor(p, threads=threads) for p in parts]
        self.name = "+".join(parts)
        self.threshold = threshold
        self.dim = sum(p.dim for p in self.parts)

    @property
    def id(self) -> str:
        return "concat-l2/" + "+".join(p.id for p in self.parts)

    def _join(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        if len(rows[0]) == 0:
            return np.zeros((0, self.dim), np.float32)
        return (np.hstack([_unit(r) for r in rows]) / np.sqrt(len(rows))).astype(np.float32)

    def describe(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """``(len(faces), dim)`` float32: every part's descriptors of the faces, joined."""
        return self._join([p.describe(image, faces) for p in self.parts])

    def describe_many(self, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> list[np.ndarray]:
        """:meth:`describe` of many ``(image, faces)`` pairs, each part batching them its own way."""
        from . import describe_many

        per_part = [describe_many(p, items) for p in self.parts]
        return [self._join(rows) for rows in zip(*per_part)]
