"""Face models side by side: detectors, descriptors, and the whole people pipeline vs the classic one.

Prints one JSON object, everything measured in the same run with the disk cache off
(``VISION_LIB_CACHE=off``), models loaded before the clock starts (steady per-photo cost):

* ``detectors``: per detector of :data:`vision_lib.models.DETECTORS`, the share of footballer
  photos with at least one face (``coverage``), faces per photo, and ms per photo (one process,
  one thread: CPU cost, comparable across machines up to their speed).
* ``descriptors``: per descriptor (and the concatenation of both, L2-normalised halves), ms per
  face (batched per photo) and true-accept rates at 1e-3 and 1e-2 false accepts on pairs built
  from folders (largest face per photo, faces found by one detector for all): every pair of
  photos of one folder is a positive, every pair across folders a negative. LFW and footballers.
* ``facenet_variants``: FaceNet's network with its batch normalisation folded into the
  convolutions (as the descriptor runs it) against the plain Keras network: CPU ms per face at
  batch 1 and 16 and the largest difference of the descriptors (LFW faces, 2 per person); and,
  when the optional packages are installed (tf2onnx, onnxruntime, openvino), the same network
  under ONNX Runtime and OpenVINO, float32, one thread, and quantized to int8 (calibrated on 200
  AT&T faces) under OpenVINO, with its true-accept rates beside float32's.
* ``latency``: ``predict_image`` (the web app's work per upload, no HTTP) of small bundles
  trained with the default models and with MTCNN + dlib, median ms on held-out 1024-px photos.
* ``calibration``: on the AT&T faces (a set no other benchmark scores), the false-accept rate of
  dlib's documented 0.6 and the distance of every other descriptor at the same false-accept
  rate: how each descriptor's ``threshold`` was chosen (docs/models.md).
* ``pipeline``: detect -> describe -> cluster of ~80 footballer photos, this library's defaults
  (``cluster.face_set`` + ``IdentityClustering``) against the classic reference (the ``mtcnn``
  package's MTCNN called eagerly, one dlib descriptor pass on dlib's 5-point alignment, Chinese
  Whispers via ``dlib.chinese_whispers_clustering`` at 0.5), one process each: the time ratio,
  and BCubed F of both (each photo scored by the cluster of its largest face against its folder);
  and ``time_ratio_defaults_both_sides``: both sides as users run them, each in a fresh process
  with its own default threading (the reference's TensorFlow unlimited, ours ``n_jobs=None``).

    python benchmarks/bench_models.py                       # ~5 min on one free core
    python benchmarks/bench_models.py --per-person 20 --lfw-per-person 3 --pipeline-photos 40
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_models.py --skip detectors descriptors \
        facenet_variants calibration latency   # the race as an AVX2-only CPU runs TensorFlow

Timings on a shared machine are noisy: quote the ratios; the load average is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ["VISION_LIB_CACHE"] = "off"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _single_thread() -> None:
    """One OpenCV and one TensorFlow thread: per-photo CPU cost, as one pool worker sees it."""
    import cv2

    from vision_lib.models.detectors import tensorflow

    cv2.setNumThreads(1)
    tensorflow(1)


def machine() -> dict:
    """The CPU the figures were measured on: the one-process ratio depends on its vector units
    (oneDNN's convolutions gain more from AVX-512 than the reference's MTCNN and dlib do), and
    ``ONEDNN_MAX_CPU_ISA`` (e.g. ``AVX2``) caps what oneDNN, so TensorFlow and OpenVINO, may use,
    which reproduces an AVX2-only CPU's TensorFlow on an AVX-512 one (ONNX Runtime ignores it)."""
    import platform

    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux: the model name from platform only
        pass
    return {"cpu": model, "cores": os.cpu_count(), "avx2": "avx2" in flags if flags else None,
            "avx512": "avx512f" in flags if flags else None,
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}


def bench_detectors(paths, names) -> tuple[dict, dict]:
    """Coverage and ms per photo per detector; also returns the detections per detector."""
    from vision_lib.io import ImageError, load_image
    from vision_lib.models import get_detector

    images = {}
    for p in paths:
        try:
            images[p] = load_image(p)
        except ImageError:
            pass
    out, found = {}, {}
    variants = [(n, {}) for n in names]
    if "yunet" in names:  # the speed / coverage trade-off of its working size
        variants.append(("yunet", {"max_side": 1024}))
    for name, params in variants:
        key = name + "".join(f" {k}={v}" for k, v in params.items())
        det = get_detector(name, threads=1, **params) if name in ("mtcnn", "yunet") else get_detector(name)
        det.detect(next(iter(images.values())))  # load the model before the clock
        start = time.perf_counter()
        found[key] = {p: det.detect(im) for p, im in images.items()}
        seconds = time.perf_counter() - start
        n = len(images)
        out[key] = {"photos": n, "coverage": round(sum(bool(f) for f in found[key].values()) / n, 4),
                     "faces_per_photo": round(sum(map(len, found[key].values())) / n, 3),
                     "ms_per_photo": round(1000 * seconds / n, 1)}
    return out, found


def describe_largest(photos: dict, names) -> tuple[dict, dict]:
    """Descriptors of the largest face of each photo (``photos``: path -> (label, image, faces))."""
    from vision_lib.models import get_descriptor

    rows, timing = {}, {}
    keep = [(p, lab, im, fs[:1]) for p, (lab, im, fs) in photos.items() if fs]
    for name in names:
        d = get_descriptor(name)
        d.describe(keep[0][2], keep[0][3])  # load the model before the clock
        start = time.perf_counter()
        rows[name] = [d.describe(im, fs)[0] for _, _, im, fs in keep]
        timing[name] = 1000 * (time.perf_counter() - start) / len(keep)
    return {"labels": [lab for _, lab, _, _ in keep], **rows}, timing


def pair_distances(X, labels):
    """Distances of all positive and all negative pairs (rows of ``X``, labels per row)."""
    import numpy as np
    from scipy.spatial.distance import pdist

    labels = np.asarray(labels)
    d = pdist(np.asarray(X, np.float64))
    i, j = np.triu_indices(len(labels), 1)
    same = labels[i] == labels[j]
    return d[same], d[~same]


def tar_at(pos, neg, far: float) -> float:
    """True-accept rate at the threshold giving ``far`` false accepts on the negatives."""
    import numpy as np

    thr = np.quantile(neg, far)
    return float(np.mean(pos <= thr))


def _concat(a, b):
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return np.hstack([a, b]) / np.sqrt(2)


def verification(described: dict, names) -> dict:
    import numpy as np

    out = {}
    sets = {n: described[n] for n in names}
    if "facenet" in sets and "dlib" in sets:
        sets["facenet+dlib"] = _concat(sets["facenet"], sets["dlib"])
    for name, X in sets.items():
        pos, neg = pair_distances(X, described["labels"])
        out[name] = {"tar_at_far_1e-3": round(tar_at(pos, neg, 1e-3), 4), "tar_at_far_1e-2": round(tar_at(pos, neg, 1e-2), 4),
                     "positives": int(len(pos)), "negatives": int(len(neg)),
                     "median_same": round(float(np.median(pos)), 3), "median_other": round(float(np.median(neg)), 3)}
    return out


def load_set(photo_set, detections=None, detector: str = "yunet") -> dict:
    """path -> (label, image, faces) for a photo set (faces: given detections, else ``detector``)."""
    from vision_lib.io import ImageError, load_image
    from vision_lib.models import get_detector

    det = get_detector(detector)
    out = {}
    for p, lab in zip(photo_set.paths, photo_set.labels):
        try:
            im = load_image(p)
        except ImageError:
            continue
        out[p] = (lab, im, detections[p] if detections is not None and p in detections else det.detect(im))
    return out


def calibration(att_root, names, detector: str) -> dict:
    """Distance of each descriptor at the false-accept rate dlib's 0.6 has on the AT&T faces."""
    import numpy as np

    from vision_lib.io import photo_set
    from vision_lib.models import get_descriptor

    photos = load_set(photo_set(att_root, labelled=True), detector=detector)
    described, _ = describe_largest(photos, names)
    pos_d, neg_d = pair_distances(described["dlib"], described["labels"])
    dlib_thr = get_descriptor("dlib").threshold  # dlib's documented same-person distance
    far = float(np.mean(neg_d <= dlib_thr))
    out = {"photos": len(photos), "with_face": len(described["labels"]), "dlib_documented": {
        "threshold": dlib_thr, "far": round(far, 5), "tar": round(float(np.mean(pos_d <= dlib_thr)), 4)}}
    for name in names:
        pos, neg = pair_distances(described[name], described["labels"])
        thr = float(np.quantile(neg, far))
        out[name] = {"distance_at_same_far": round(thr, 3), "tar_there": round(float(np.mean(pos <= thr)), 4),
                     "registered_threshold": get_descriptor(name).threshold,
                     "far_at_registered": round(float(np.mean(neg <= get_descriptor(name).threshold)), 5),
                     "tar_at_registered": round(float(np.mean(pos <= get_descriptor(name).threshold)), 4)}
    return out


def cpu_ms_per_face(run, x) -> dict:
    """CPU ms per face of ``run`` (a network call on a batch) at batch 1 and 16, after one warm-up call."""
    out = {}
    for batch in (1, 16):
        reps = max(2, 48 // batch)
        run(x[:batch])
        cpu = time.process_time()
        for _ in range(reps):
            run(x[:batch])
        out[f"cpu_ms_per_face_batch_{batch}"] = round(1000 * (time.process_time() - cpu) / reps / batch, 2)
    return out


def facenet_variants(photos: dict, calibration_photos: dict | None = None) -> dict:
    """FaceNet's network as built (batch normalisation folded into the convolutions) against the
    plain Keras network with its BatchNormalization layers: ms per face at batch 1 and 16 (one
    thread, CPU time) and the largest difference of the L2-normalised descriptors; then the other
    runtimes (:func:`other_runtimes`), int8 calibrated on ``calibration_photos``' faces."""
    import numpy as np

    from vision_lib.models import get_descriptor
    from vision_lib.models.facenet import (FACENET_SIZE, build_inception_resnet_v1, face_chips,
                                           load_weights_by_name, prewhiten)
    from vision_lib.models.detectors import tensorflow
    from vision_lib.models.files import model_path

    tf = tensorflow(1)
    chips = np.concatenate([face_chips(im, fs[:1]) for _, im, fs in photos.values() if fs])
    labels = [lab for lab, _, fs in photos.values() if fs]
    x = prewhiten(chips)
    out = {"faces": len(chips)}
    rows = {}
    for name, fold in (("plain", False), ("folded", True)):
        model = build_inception_resnet_v1(fold_batchnorm=fold)
        load_weights_by_name(model, str(model_path("facenet")))
        net = tf.function(lambda v, m=model: m(v, training=False),
                          input_signature=[tf.TensorSpec((None, FACENET_SIZE, FACENET_SIZE, 3), tf.float32)])
        r = np.concatenate([np.asarray(net(x[s:s + 16])) for s in range(0, len(x), 16)])
        rows[name] = r / np.linalg.norm(r, axis=1, keepdims=True)
        out[name] = cpu_ms_per_face(net, x)
    out["max_abs_difference"] = float(np.abs(rows["folded"] - rows["plain"]).max())
    desc = get_descriptor("facenet").describe_chips(chips)
    out["descriptor_vs_plain_max_abs_difference"] = float(np.abs(desc - rows["plain"]).max())
    calib = None
    if calibration_photos:
        calib = prewhiten(np.concatenate([face_chips(im, fs[:1]) for _, im, fs in calibration_photos.values() if fs]))
    out.update(other_runtimes(net, x, rows["folded"], labels, calib))
    return out


def other_runtimes(net, x, reference, labels=None, calibration=None) -> dict:
    """The folded network exported to ONNX (tf2onnx) and run by ONNX Runtime and by OpenVINO, float32,
    one thread: CPU ms per face at batch 1 and 16 and the largest difference from TensorFlow's
    L2-normalised descriptors. With ``calibration`` (prewhitened chips of a set no benchmark
    scores) also ``openvino_int8``: the network quantized by ONNX Runtime's ``quantize_static``
    (QDQ, 7-bit int8 weights per channel, uint8 activations) and run by OpenVINO, with true-accept rates
    on ``x``'s pairs (``labels``) beside float32's: lower precision is another descriptor. Optional
    packages, not in requirements.txt: each runtime missing is reported as skipped, with the
    install line."""
    import tempfile

    import numpy as np

    def l2(r):
        r = np.asarray(r, np.float64)
        return r / np.linalg.norm(r, axis=1, keepdims=True)

    def verify(X) -> dict:
        pos, neg = pair_distances(X, labels)
        return {"tar_at_far_1e-3": round(tar_at(pos, neg, 1e-3), 4), "tar_at_far_1e-2": round(tar_at(pos, neg, 1e-2), 4)}

    def measure(run, verified: bool = False) -> dict:
        got = l2(np.concatenate([run(x[s:s + 16]) for s in range(0, len(x), 16)]))
        return {"max_abs_difference_vs_tensorflow": float(np.abs(got - reference).max()), **cpu_ms_per_face(run, x),
                **(verify(got) if verified and labels is not None else {})}

    try:
        import onnx
        import tf2onnx
    except ImportError:
        return {"onnx": "skipped: pip install tf2onnx onnx (and onnxruntime, openvino) to compare runtimes"}
    import tensorflow as tf

    spec = (tf.TensorSpec((None, *x.shape[1:]), tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(net.python_function), input_signature=spec, opset=17)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "facenet.onnx")
        onnx.save(proto, path)
        try:
            import onnxruntime as ort
        except ImportError:
            out["onnxruntime"] = "skipped: pip install onnxruntime"
        else:
            so = ort.SessionOptions()
            so.intra_op_num_threads = so.inter_op_num_threads = 1
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            out["onnxruntime"] = {"version": ort.__version__, **measure(lambda b: sess.run(None, {"input": b})[0])}
        try:
            import openvino as ov
        except ImportError:
            out["openvino"] = "skipped: pip install openvino"
        else:
            # float32 asked for: on CPUs with bfloat16 units OpenVINO would otherwise run in bfloat16.
            config = {"INFERENCE_NUM_THREADS": "1", "INFERENCE_PRECISION_HINT": "f32"}
            compiled = ov.Core().compile_model(path, "CPU", config)
            out["openvino"] = {"version": ov.__version__, **measure(lambda b: compiled(b)[0])}
            if calibration is not None and "version" in out.get("onnxruntime", {}):
                int8 = os.path.join(tmp, "facenet_int8.onnx")
                _quantize(path, int8, calibration, tmp)
                q8 = ov.Core().compile_model(int8, "CPU", config)
                out["openvino_int8"] = {"calibration_faces": len(calibration), **measure(lambda b: q8(b)[0], True)}
                if labels is not None:
                    out["tensorflow_float32_verification"] = verify(reference)
    return out


def _quantize(path: str, out: str, calibration, tmp: str) -> None:
    """ONNX Runtime's static int8 quantization of the model at ``path`` into ``out``, its activation
    ranges from ``calibration`` (batches of 8)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": calibration[i:i + 8]} for i in range(0, len(calibration), 8)])

        def get_next(self):
            return next(self.batches, None)

    pre = os.path.join(tmp, "facenet_pre.onnx")
    quant_pre_process(path, pre, skip_symbolic_shape=True)
    # reduce_range: 7-bit weights. With 8 bits, CPUs without int8 dot products (AVX2) saturate
    # 16-bit sums and describe a face differently from CPUs with them (measured: docs/models.md).
    quantize_static(pre, out, Batches(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def predict_latency(footballers, photos: int, recipes) -> dict:
    """In-process latency of ``predict_image`` (what the web app runs per upload, without HTTP) for
    small bundles trained with each ``(detector, descriptor)`` of ``recipes``: bench_serve.py's
    training set (3 players x 8 photos) and held-out photos scaled to 1024 px, decoding included,
    one thread, each model warmed on the first photo."""
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_serve import PLAYERS, photos_1024

    from vision_lib.classify import split_per_person, train
    from vision_lib.io import load_image_bytes

    training, held = split_per_person(footballers, 8, seed=0, people=PLAYERS)  # bench_serve's pick
    held = held.paths
    data = photos_1024([held[i] for i in np.random.default_rng(2).permutation(len(held))[:photos]])
    out = {"photos": len(data)}
    for det, desc in recipes:
        model = train(training, detector=det, descriptor=desc, n_jobs=1, progress=False)
        model.predict_image(load_image_bytes(data[0][1]))
        times = []
        for name, blob in data:
            t0 = time.perf_counter()
            model.predict_image(load_image_bytes(blob, name=name))
            times.append(time.perf_counter() - t0)
        out[f"{det}+{desc}"] = {"median_ms": round(1000 * float(np.median(times)), 1),
                                "mean_ms": round(1000 * float(np.mean(times)), 1)}
    keys = [f"{d}+{e}" for d, e in recipes]
    out["median_ratio_first_vs_second"] = round(out[keys[0]]["median_ms"] / out[keys[1]]["median_ms"], 3)
    return out


def bcubed_by_photo(photo_labels, photo_clusters) -> float:
    from vision_lib.cluster import external_metrics

    return round(external_metrics(photo_labels, photo_clusters)["bcubed_f"], 4)


def reference_pipeline(paths, labels, threads: int | None = 1) -> tuple[float, float, int]:
    """The classic people pipeline, timed: eager MTCNN, one dlib pass, Chinese Whispers (0.5).
    ``threads`` TensorFlow threads; None leaves TensorFlow's defaults (as a user's script would).
    Returns ``((seconds, cpu_seconds), bcubed_f, faces)``."""
    import dlib
    import numpy as np
    from mtcnn import MTCNN

    from vision_lib.io import ImageError, load_image
    from vision_lib.models.detectors import tensorflow
    from vision_lib.models.dlib import _dlib_models

    tensorflow(threads)
    mtcnn = MTCNN(device="CPU:0")
    shape5, resnet = _dlib_models()
    mtcnn.detect_faces(load_image(paths[0]))  # load the models before the clock
    start, cpu = time.perf_counter(), time.process_time()
    vecs, owner = [], []
    for k, p in enumerate(paths):  # decoding counts, as it does for ours
        try:
            im = load_image(p)
        except ImageError:
            continue
        dets = sorted(mtcnn.detect_faces(im), key=lambda d: -d["box"][2] * d["box"][3])
        for d in dets:
            if d["confidence"] < 0.9:
                continue
            x, y, w, h = (int(v) for v in d["box"])
            shape = shape5(im, dlib.rectangle(max(0, x), max(0, y), x + w, y + h))
            vecs.append(resnet.compute_face_descriptor(im, shape))
            owner.append(k)
    groups = dlib.chinese_whispers_clustering(vecs, 0.5) if vecs else []
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    clusters = np.full(len(paths), -1)
    first = {}
    for o, g in zip(owner, groups):
        first.setdefault(o, g)  # largest face of the photo comes first
    for o, g in first.items():
        clusters[o] = g
    return (seconds, cpu), bcubed_by_photo(labels, clusters), len(vecs)


def our_pipeline(root, paths, detector, descriptor, n_jobs: int | None = 1) -> tuple[float, float, int]:
    """This library's people pipeline, timed: ``face_set`` + ``IdentityClustering``; ``n_jobs`` 1 is
    one process, None every core (the pool's workers warmed up first, as in a long job)."""
    from vision_lib.cluster import IdentityClustering, face_set

    import numpy as np

    from vision_lib import models
    from vision_lib.geometry import KEYPOINTS, Face

    # Load the models before the clock: this process's (a generated face, so the network surely
    # runs), and with several jobs every worker's (two chunks of photos).
    kps = dict(zip(KEYPOINTS, [(40, 50), (80, 50), (60, 70), (45, 90), (75, 90)]))
    models.get_descriptor(descriptor).describe(np.full((140, 120, 3), 128, np.uint8), [Face((20, 20, 80, 100), 1.0, kps)])
    models.get_detector(detector).detect(np.zeros((64, 64, 3), np.uint8))
    # The clustering's own imports (scikit-learn) too: the reference's dlib is imported before its clock.
    IdentityClustering(descriptor=descriptor).fit_predict(np.random.default_rng(0).normal(size=(4, 128)))
    if n_jobs != 1:
        face_set(root, paths=paths[:16], labelled=True, n_jobs=n_jobs, progress=False, detector=detector,
                 descriptor=descriptor)
    start, cpu = time.perf_counter(), time.process_time()
    faces = face_set(root, paths=paths, labelled=True, n_jobs=n_jobs, progress=False, detector=detector,
                     descriptor=descriptor)
    labels = IdentityClustering(descriptor=faces.descriptor).fit_predict(faces.descriptors)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu  # cpu: this process only
    # Scored like the reference: each photo by the cluster of its largest face.
    return (seconds, cpu), bcubed_by_photo(faces.photo_labels, faces.largest_face_clusters(labels)), len(faces)


def _defaults_side(side: str, race_file: str) -> dict:
    """One side of the race with every default thread setting (no :func:`_single_thread`), run in
    a fresh process (TensorFlow's threads are fixed per process): the reference as a user's script
    would run it, ours as ``vision-lib cluster`` does (``n_jobs=None``, the library's pool)."""
    from pathlib import Path

    with open(race_file) as f:
        race = json.load(f)
    paths = [Path(p) for p in race["paths"]]
    if side == "reference":
        (s, _), f_, n = reference_pipeline(paths, race["labels"], threads=None)
    else:
        (s, _), f_, n = our_pipeline(Path(race["root"]), paths, None, None, n_jobs=None)
    return {"seconds": s, "bcubed_f": f_, "faces": n}


def race_with_defaults(race) -> dict:
    """Both sides of the race, each in its own fresh process with its default threading, one
    after the other: ``{"reference": ..., "ours": ...}`` as :func:`_defaults_side` returns them."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"root": str(race.root), "paths": [str(p) for p in race.paths], "labels": race.labels}, f)
    try:
        out = {}
        for side in ("reference", "ours"):
            run = subprocess.run([sys.executable, __file__, "--defaults-side", side, "--race-file", f.name],
                                 capture_output=True, text=True)
            if run.returncode:
                raise RuntimeError(f"the {side} side failed:\n{run.stderr[-3000:]}")
            out[side] = json.loads(run.stdout.strip().splitlines()[-1])
        return out
    finally:
        os.unlink(f.name)


def main(argv=None) -> int:
    from vision_lib import models
    from vision_lib.config import dataset
    from vision_lib.io import photo_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-person", type=int, default=50, help="footballer photos per player (default 50)")
    ap.add_argument("--lfw-per-person", type=int, default=4, help="LFW photos per person (96 people; default 4)")
    ap.add_argument("--pipeline-photos", type=int, default=80, help="footballer photos for the pipeline race")
    ap.add_argument("--detectors", nargs="+", default=list(models.DETECTORS), choices=models.DETECTORS)
    # arcface is opt-in (the user's file): measured only when named.
    ap.add_argument("--descriptors", nargs="+", default=[d for d in models.DESCRIPTORS if d != "arcface"],
                    choices=models.DESCRIPTORS)
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["detectors", "descriptors", "facenet_variants", "calibration", "pipeline", "latency"])
    ap.add_argument("--latency-photos", type=int, default=20, help="held-out photos for the latency comparison")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--defaults-side", choices=["reference", "ours"], help=argparse.SUPPRESS)
    ap.add_argument("--race-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.defaults_side:  # a child of race_with_defaults: no thread limits here
        print(json.dumps(_defaults_side(args.defaults_side, args.race_file)))
        return 0
    _single_thread()
    report = {"machine": machine(), "load_average": [round(x, 2) for x in os.getloadavg()],
              "defaults": {"detector": models.DEFAULT_DETECTOR, "descriptor": models.DEFAULT_DESCRIPTOR}}
    fb = photo_set(dataset("footballers"), labelled=True).limit(per_label=args.per_person, seed=args.seed)
    found = None
    if "detectors" not in args.skip:
        report["detectors"], found = bench_detectors(fb.paths, args.detectors)
    if "descriptors" not in args.skip:
        # One detector's faces for every descriptor: the default one.
        det = models.DEFAULT_DETECTOR
        report["descriptors"] = {"faces_by": det}
        for name, ps in (("footballers", fb),
                         ("lfw", photo_set(dataset("lfw"), labelled=True).limit(per_label=args.lfw_per_person,
                                                                                 seed=args.seed))):
            photos = load_set(ps, found.get(det) if found and name == "footballers" else None, det)
            described, ms = describe_largest(photos, args.descriptors)
            report["descriptors"][name] = verification(described, args.descriptors)
            report["descriptors"][name]["photos"] = len(photos)
            for n, v in ms.items():
                report["descriptors"].setdefault("ms_per_face", {}).setdefault(n, []).append(round(v, 1))
    if "facenet_variants" not in args.skip:
        import importlib.util

        # int8 calibration faces only when the quantizer is there: AT&T, which no benchmark scores.
        att = (load_set(photo_set(dataset("att_faces"), labelled=True).limit(total=200, seed=args.seed))
               if importlib.util.find_spec("onnxruntime") else None)
        report["facenet_variants"] = facenet_variants(load_set(
            photo_set(dataset("lfw"), labelled=True).limit(per_label=2, seed=args.seed + 2)), att)
    if "calibration" not in args.skip and "dlib" in args.descriptors:
        report["calibration"] = {"set": "att_faces", **calibration(dataset("att_faces"), args.descriptors,
                                                                   models.DEFAULT_DETECTOR)}
    if "pipeline" not in args.skip:
        race = photo_set(dataset("footballers"), labelled=True).limit(total=args.pipeline_photos, seed=args.seed + 1)
        (ref_s, ref_cpu), ref_f, ref_n = reference_pipeline(race.paths, race.labels)
        (ours_s, ours_cpu), ours_f, ours_n = our_pipeline(race.root, race.paths, None, None)
        (all_s, _), _, _ = our_pipeline(race.root, race.paths, None, None, n_jobs=None)
        both = race_with_defaults(race)
        defaults_ratio = both["ours"]["seconds"] / both["reference"]["seconds"]
        report["pipeline"] = {
            "photos": len(race), "ours": {"detector": models.DEFAULT_DETECTOR, "descriptor": models.DEFAULT_DESCRIPTOR,
                                          "faces": ours_n, "bcubed_f": ours_f},
            "reference": {"what": "mtcnn package (eager) + dlib one pass + chinese_whispers 0.5, one process",
                          "faces": ref_n, "bcubed_f": ref_f},
            "time_ratio_ours_one_process_vs_reference": round(ours_s / ref_s, 3),
            # CPU seconds of one process hardly depend on what else runs on the machine (wall time does).
            "cpu_ratio_ours_one_process_vs_reference": round(ours_cpu / ref_cpu, 3),
            "time_ratio_ours_all_cores_vs_reference": round(all_s / ref_s, 3),
            "time_ratio_defaults_both_sides": round(defaults_ratio, 3),
            "defaults_both_sides": {side: {k: round(v, 3) for k, v in r.items()} for side, r in both.items()},
            "what": {
                "time_ratio_ours_one_process_vs_reference":
                    "wall time, ours n_jobs=1 vs reference, both one process with one TensorFlow and one OpenCV thread",
                "cpu_ratio_ours_one_process_vs_reference":
                    "CPU seconds of that one process, same two runs: the CPU cost per photo",
                "time_ratio_ours_all_cores_vs_reference":
                    "wall time, ours n_jobs=None (pool of every core) vs the one-thread reference: not like for like",
                "time_ratio_defaults_both_sides":
                    "wall time as a user runs each, every default thread setting, each in a fresh process, "
                    "one after the other: reference with TensorFlow's default intra/inter-op threads and dlib as "
                    "it is, ours n_jobs=None (vision-lib cluster's default pool); same photos, caches off, "
                    "models loaded and ours' pool warmed before the clock",
            },
            "cores": os.cpu_count(), "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
        report["targets_met"] = {"pipeline_one_process_le_0.2x_reference": ours_s / ref_s <= 0.2,
                                 "pipeline_one_process_cpu_le_0.2x_reference": ours_cpu / ref_cpu <= 0.2,
                                 "pipeline_all_cores_le_0.2x_reference": all_s / ref_s <= 0.2,
                                 "pipeline_defaults_both_sides_le_0.2x": defaults_ratio <= 0.2}
    if "detectors" in report:
        report.setdefault("targets_met", {})["default_detector_coverage_ge_0.98"] = \
            report["detectors"].get(models.DEFAULT_DETECTOR, {}).get("coverage", 0) >= 0.98
    if "latency" not in args.skip:
        report["latency"] = predict_latency(dataset("footballers"), args.latency_photos,
                                            [(models.DEFAULT_DETECTOR, models.DEFAULT_DESCRIPTOR), ("mtcnn", "dlib")])
        report.setdefault("targets_met", {})["web_latency_at_least_halved"] = \
            report["latency"]["median_ratio_first_vs_second"] <= 0.5
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
