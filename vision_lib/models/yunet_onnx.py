"""YuNet under ONNX Runtime, with the detections of OpenCV's ``cv2.FaceDetectorYN``.

The 2023mar ONNX file declares a fixed ``1x3x640x640`` input. OpenCV's ``FaceDetectorYN`` re-shapes
the network to each photo (padded to a multiple of 32) itself; ONNX Runtime takes the shape from the
file, so :func:`free_size_model` parses the checked file (protobuf, no code in it runs) and leaves
the input's height and width free and the stored output shapes out: the same weights and operators,
any size. On one thread it runs about 2.6x faster than OpenCV's DNN module on the same file
(docs/models.md).

:func:`yunet_rows` then does what ``FaceDetectorYN::detect`` does (OpenCV 4.x,
``modules/objdetect/src/face_detect.cpp``): BGR values as floats, padded with zeros on the bottom and
right to a multiple of 32; each stride's (8, 16, 32) priors decoded; score
``sqrt(clip(cls) * clip(obj))``; boxes suppressed by ``cv2.dnn.NMSBoxes`` on their truncated
integer boxes. Rows as OpenCV gives them: ``x, y, w, h``, five keypoints (the subject's right eye,
left eye, nose, right and left mouth corners) and the score.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["STRIDES", "free_size_model", "yunet_rows", "yunet_session"]

#: The feature strides of YuNet's three heads; the padded input is a multiple of the largest.
STRIDES = (8, 16, 32)
#: OpenCV's bound on the candidates kept by non-maximum suppression (``FaceDetectorYN``'s ``top_k``).
TOP_K = 5000


def free_size_model(path: str) -> bytes:
    """The ONNX model at ``path`` with its input's height and width free (``dim_param``) and no stored
    output or intermediate shapes (they name 640x640), serialised for ONNX Runtime."""
    import onnx

    model = onnx.load(path, load_external_data=False)  # the checked file alone
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]
    return model.SerializeToString()


@functools.lru_cache(maxsize=2)
def yunet_session(path: str, threads: int | None):
    """The ONNX Runtime session of the YuNet file at ``path`` (checked by the caller), built once per
    process, file and thread count (``threads`` None: ONNX Runtime's default, every core)."""
    try:
        import onnx  # noqa: F401  (free_size_model's)
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(f"YuNet runs under ONNX Runtime and needs {exc.name}: pip install onnxruntime onnx "
                          "(pinned in requirements.txt)") from exc

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(free_size_model(path), options, providers=["CPUExecutionProvider"])


def _input_blob(rgb: np.ndarray, border: int) -> np.ndarray:
    """``(1, 3, H, W)`` float32 BGR: the photo inside a black border of ``border`` px, padded with
    zeros on the bottom and right to multiples of 32 (what OpenCV builds from the bordered BGR photo)."""
    h, w = rgb.shape[:2]
    step = STRIDES[-1]
    H, W = -(-(h + 2 * border) // step) * step, -(-(w + 2 * border) // step) * step
    blob = np.zeros((1, 3, H, W), np.float32)
    blob[0, :, border:border + h, border:border + w] = rgb[..., ::-1].transpose(2, 0, 1)
    return blob


def _decode(outputs: dict, H: int, W: int, min_score: float) -> np.ndarray:
    """``(n, 15)`` float32 rows of every prior scoring at least ``min_score``, strides in order and
    each stride's grid row by row (NMS breaks ties by this order, as OpenCV's)."""
    rows = []
    for s in STRIDES:
        cols = W // s
        cls, obj = (np.clip(outputs[f"{k}_{s}"].reshape(-1), 0, 1) for k in ("cls", "obj"))
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= np.float32(min_score))
        grid = np.stack([keep % cols, keep // cols], 1).astype(np.float32)  # (c, r) of each prior
        bbox = outputs[f"bbox_{s}"].reshape(-1, 4)[keep]
        kps = outputs[f"kps_{s}"].reshape(-1, 5, 2)[keep]
        stride = np.float32(s)
        centre = (grid + bbox[:, :2]) * stride
        size = np.exp(bbox[:, 2:]) * stride
        points = (kps + grid[:, None, :]) * stride
        rows.append(np.concatenate([centre - size / np.float32(2), size, points.reshape(-1, 10),
                                    score[keep, None]], 1))
    return np.concatenate(rows).astype(np.float32)


def yunet_rows(session, rgb: np.ndarray, border: int, min_score: float, nms: float) -> np.ndarray:
    """``(n, 15)`` float32 detections of the RGB uint8 photo ``rgb`` inside a black border of
    ``border`` px, in the bordered photo's pixels, as ``cv2.FaceDetectorYN.detect`` gives them
    (highest score first after suppression)."""
    import cv2

    blob = _input_blob(rgb, border)
    names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in STRIDES]
    outputs = dict(zip(names, session.run(names, {session.get_inputs()[0].name: blob})))
    rows = _decode(outputs, blob.shape[2], blob.shape[3], min_score)
    if len(rows) <= 1:  # OpenCV suppresses only from two candidates on
        return rows
    boxes = rows[:, :4].astype(np.int32)  # OpenCV's Rect2i: truncated towards zero
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), rows[:, 14].tolist(), float(min_score), float(nms), top_k=TOP_K)
    return rows[np.asarray(keep, int).reshape(-1)]
