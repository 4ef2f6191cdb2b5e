"""What descriptors that run a network on aligned face chips share: batching, L2 normalisation,
``describe`` / ``describe_many``. A subclass says how to cut chips (:meth:`ChipDescriptor.chips`),
which network to run (:meth:`ChipDescriptor._net`) and how to feed it (:meth:`ChipDescriptor._run`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..geometry import Face, crop, grown_box, template_transform, warp_to_template
from ..io import check_rgb

__all__ = ["ChipDescriptor", "template_chips", "template_region"]


def template_chips(image: np.ndarray, faces: Sequence[Face], template: np.ndarray, size: int,
                   margin: float) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 chips: each face's five keypoints onto ``template`` (pixels of
    the chip); a face without keypoints (Haar) gets its box grown by ``margin`` per side, resized."""
    import cv2

    out = np.empty((len(faces), size, size, 3), np.uint8)
    for i, f in enumerate(faces):
        chip = warp_to_template(image, f, template, size)
        if chip is None:
            chip = cv2.resize(crop(image, f, margin=margin), (size, size), interpolation=cv2.INTER_AREA)
        out[i] = chip
    return out


def template_region(faces: Sequence[Face], template: np.ndarray, size: int,
                    margin: float) -> tuple[float, float, float, float] | None:
    """``(x0, y0, x1, y1)``: the part of the image :func:`template_chips` reads for ``faces`` (same
    arguments), in the image's pixels: each chip's square mapped back through its similarity, or the
    box grown by ``margin`` for a face without keypoints; None for no faces. Bilinear sampling
    reads one pixel further: callers pad. A photo decoded for its faces is decoded only this far
    (:func:`vision_lib.faces.scaled.face_view`)."""
    import cv2

    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float)
    xs, ys = [], []
    for f in faces:
        M = template_transform(f, template)
        if M is not None:
            pts = corners @ cv2.invertAffineTransform(M).T
            xs += [pts[:, 0].min(), pts[:, 0].max()]
            ys += [pts[:, 1].min(), pts[:, 1].max()]
        else:  # crop()'s box grown by margin
            x0, y0, x1, y1 = grown_box(f, margin)
            xs += [x0, x1]
            ys += [y0, y1]
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


class ChipDescriptor:
    """Descriptors of aligned face chips, ``batch`` chips per network call, L2-normalised.

    Args:
        threads: TensorFlow threads for this process (None: TensorFlow's default; pool workers 1).
        batch: faces per network call.
    """

    dim: int

    def __init__(self, threads: int | None = None, batch: int = 32):
        self.threads = threads
        self.batch = batch

    def chips(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """``(n, size, size, 3)`` uint8 chips of ``faces`` in the RGB ``image``."""
        raise NotImplementedError

    def region(self, faces: Sequence[Face]) -> tuple[float, float, float, float] | None:
        """``(x0, y0, x1, y1)``: the part of an image that :meth:`chips` of ``faces`` reads, when
        the descriptor knows it (:func:`template_region`); None: unknown (a second decode of a
        camera photo then keeps a generous margin around the faces)."""
        return None

    def _net(self):
        """The network (loaded once per process)."""
        raise NotImplementedError

    def _run(self, net, chips: np.ndarray) -> np.ndarray:
        """Network outputs of one batch of chips (L2-normalised afterwards by :meth:`describe_chips`)."""
        raise NotImplementedError

    def describe_chips(self, chips: np.ndarray) -> np.ndarray:
        """Descriptors of aligned uint8 chips, ``batch`` per call."""
        n = len(chips)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        net = self._net()
        out = np.empty((n, self.dim), np.float32)
        for s in range(0, n, self.batch):
            out[s:s + self.batch] = self._run(net, chips[s:s + self.batch])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def describe(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """``(len(faces), dim)`` float32 descriptors of ``faces`` in the RGB ``image``."""
        image = check_rgb(image)
        return self.describe_chips(self.chips(image, faces))

    def describe_many(self, items: Sequence[tuple[np.ndarray, Sequence[Face]]]) -> list[np.ndarray]:
        """:meth:`describe` of many ``(image, faces)`` pairs, their faces batched together."""
        chips = [self.chips(check_rgb(image), faces) for image, faces in items]
        if not chips:
            return []
        rows = self.describe_chips(np.concatenate(chips))
        return np.split(rows, np.cumsum([len(c) for c in chips])[:-1])
