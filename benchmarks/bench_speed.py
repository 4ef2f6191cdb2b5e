"""Speed on the photos people really have: camera-size JPEGs, a quick start, and the people pipeline
against the classic reference. Prints one JSON object; every ratio is measured in the same run, the
disk cache off (``VISION_LIB_CACHE=off``). Run it alone: ``flock /tmp/vision_heavy.lock python
benchmarks/bench_speed.py``.

* ``camera_size``: the cost per extra photo of ``vision-lib features --kind descriptor`` (the people
  pipeline: YuNet + FaceNet, as a user runs it, every core) on held-out footballer photos at their
  own size (~0.5 MP) and on the same photos re-encoded at 4000 px, quality 90 (12 MP; generated in a
  temporary folder, deleted afterwards): ``(T(N photos) - T(n photos)) / (N - n)``, which takes the
  start-up out; the ratio 12 MP / 0.5 MP (target <= 1.3), of wall and of CPU time (the command's and
  its pool workers'). ``stages_one_worker``: where a worker's CPU goes, per photo and stage (decode
  for detection, resize, detection, second decode for the descriptor, rating and chips, FaceNet),
  with the libjpeg-turbo decoder and with Pillow's (the decoder before it), same run; also for the
  same 12 MP photos stored as phones store a photo taken sideways (pixels turned, EXIF orientation
  6: ``camera_exif_turned``), whose decodes must be turned upright.
* ``accuracy``: on those 12 MP photos, faces found and descriptors of the library (reduced decode)
  against the full decode (``load_image`` + detect + describe, the code before the change), with the
  distances' median / 95th percentile / max beside the same-person distance; the same on the ~0.5 MP
  photos (where nothing is reduced) and on the turned 12 MP copies; the libjpeg-turbo decoder against Pillow's on the 12 MP photos
  (boxes, qualities and descriptors: identical); and FaceNet under ONNX Runtime against the Keras network.
* ``cold_start``: wall and CPU seconds of fresh processes: ``vision-lib --help`` (target <= 0.5 s)
  and ``vision-lib predict MODEL one.jpg`` (target <= 3 s) with a small model trained first (3
  players x 8 photos), median of ``--repeats``; and the one-time first use (FaceNet's ONNX graph
  built and kept) in an empty model cache.
* ``pipeline``: ``bench_models.reference_pipeline`` (MTCNN + one dlib pass + Chinese Whispers) against
  ``bench_models.our_pipeline`` (``face_set`` + ``IdentityClustering``), one process, one thread each
  (target <= 0.15x).

    flock /tmp/vision_heavy.lock python benchmarks/bench_speed.py            # ~5 min
    python benchmarks/bench_speed.py --photos 20 --skip pipeline              # quicker look
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["VISION_LIB_CACHE"] = "off"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_models  # noqa: E402  (the reference and our pipeline, as bench_models races them)

#: The people of the small model the cold ``predict`` loads (bench_serve's and bench_models' pick).
PLAYERS = ("cristiano_ronaldo", "leo_messi", "mohamed_salah")
CAMERA_SIDE, CAMERA_QUALITY = 4000, 90


def _cli(*args: str, env: dict | None = None) -> tuple[float, float]:
    """Run ``python -m vision_lib ARGS`` in a fresh process: ``(wall seconds, CPU seconds)``."""
    before = os.times()
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "vision_lib", *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    after = os.times()
    if run.returncode:
        raise RuntimeError(f"vision-lib {' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def camera_copies(paths, folder: Path, turned: bool = False) -> list[Path]:
    """Each photo re-encoded with its longest side at :data:`CAMERA_SIDE` px (quality 90), as a camera
    or phone would store it; named after its folder and file. ``turned``: stored as phones store a
    photo taken sideways, pixels turned a quarter counter-clockwise and EXIF orientation 6 saying
    so (the same upright photo)."""
    from PIL import Image

    from vision_lib.io import load_image

    out = []
    for p in paths:
        image = Image.fromarray(load_image(p))
        k = CAMERA_SIDE / max(image.size)
        target = folder / f"{p.parent.name}__{p.stem}.jpg"
        image = image.resize((round(image.width * k), round(image.height * k)), Image.LANCZOS)
        if turned:
            exif = Image.Exif()
            exif[0x0112] = 6
            image.transpose(Image.Transpose.ROTATE_90).save(target, quality=CAMERA_QUALITY, exif=exif.tobytes())
        else:
            image.save(target, quality=CAMERA_QUALITY)
        out.append(target)
    return out


def cost_per_extra_photo(paths, work: Path, small: int, repeats: int) -> dict:
    """``features --kind descriptor`` on the first ``small`` photos and on all: seconds per extra photo."""
    def folder_of(n: int) -> Path:
        f = work / f"in{n}"
        f.mkdir()
        for p in paths[:n]:
            os.symlink(p, f / p.name)
        return f

    work.mkdir()
    folders = {n: folder_of(n) for n in (small, len(paths))}
    runs = {n: [] for n in folders}
    for r in range(repeats):  # interleaved, so a burst of load elsewhere hits both sizes alike
        for n, f in folders.items():
            out = work / f"f{n}_{r}.npz"
            runs[n].append(_cli("features", str(f), "--kind", "descriptor", "--out", str(out), "--quiet"))
    wall = {n: min(w for w, _ in r) for n, r in runs.items()}
    cpu = {n: min(c for _, c in r) for n, r in runs.items()}
    extra = len(paths) - small
    return {"photos": [small, len(paths)], "seconds_min": {str(n): round(s, 2) for n, s in wall.items()},
            "ms_per_extra_photo": round(1000 * (wall[len(paths)] - wall[small]) / extra, 1),
            # CPU of the command and its pool workers: hardly moved by other jobs on the machine.
            "cpu_ms_per_extra_photo": round(1000 * (cpu[len(paths)] - cpu[small]) / extra, 1)}


def pillow_decoder():
    """A context in which every JPEG is decoded by Pillow, as before ``io/jpeg.py``."""
    import contextlib
    from unittest import mock

    from vision_lib.io import decode

    stack = contextlib.ExitStack()
    for name in ("decode_jpeg", "decode_jpeg_rows"):
        stack.enter_context(mock.patch.object(decode, name, lambda *a, **k: None))
    return stack


def same_as_pillow_decoder(paths) -> dict:
    """The library's faces, qualities and descriptors with the libjpeg-turbo decoder against Pillow's."""
    import numpy as np

    from vision_lib.faces import detect_paths

    def run():
        return detect_paths(paths, n_jobs=1, cache=False, progress=False, descriptors=True)

    fast = run()
    with pillow_decoder():
        slow = run()
    return {"photos": len(paths), "faces": sum(len(r.faces) for r in fast),
            "boxes_identical": all([f.box for f in a.faces] == [f.box for f in b.faces] for a, b in zip(fast, slow)),
            "qualities_identical": all(a.qualities == b.qualities for a, b in zip(fast, slow)),
            "max_abs_descriptor_difference": max((float(np.abs(a.descriptors - b.descriptors).max())
                                                  for a, b in zip(fast, slow) if a.faces), default=0.0)}


def stage_costs(web, cam, repeats: int, turned=()) -> dict:
    """CPU ms per photo of each stage of one pool worker (this process, one thread), ~0.5 MP against
    12 MP, min of ``repeats`` interleaved passes: with the libjpeg-turbo decoder (``io/jpeg.py``,
    the default) and with Pillow's (the decoder before it, for the same run's before / after).
    ``turned``: the same 12 MP photos stored with EXIF orientation 6 (``camera_exif_turned``)."""
    import contextlib

    import cv2
    import numpy as np

    from vision_lib.faces import scaled
    from vision_lib.io import resize_max_side
    from vision_lib.models import get_descriptor, get_detector

    cv2.setNumThreads(1)
    det, desc = get_detector(threads=1), get_descriptor(threads=1)

    def one_pass(paths) -> dict:
        t = dict.fromkeys(("decode", "resize", "detect", "second_decode", "rate_and_chips", "descriptor"), 0.0)
        clock = time.process_time
        chips, seconds = [], 0
        for i, p in enumerate(paths):
            a = clock(); view = scaled.detection_view(p, det); b = clock()
            # What detect_in resizes: a reduced decode to the detector's side, then the detector's own.
            resize_max_side(scaled.detector_input(view, det)[0], det.max_side); c = clock()
            faces = scaled.detect_in(view, det); d = clock()
            used = scaled.face_view(p, faces, view, descriptor=desc); e = clock()
            scaled.qualities_in(used, faces)
            chips.append(desc.chips(used.image, scaled.in_view(faces, used))); f = clock()
            if len(chips) == 8 or i == len(paths) - 1:  # a worker's chunk: one network call
                desc.describe_chips(np.concatenate(chips))
                chips = []
            g = clock()
            seconds += used is not view
            for k, v in zip(t, (b - a, c - b, (d - c) - (c - b), e - d, f - e, g - f)):
                t[k] += v
        return {**{k: 1000 * v / len(paths) for k, v in t.items()}, "second_decodes": seconds}

    decoders = {"libjpeg_turbo": contextlib.nullcontext, "pillow": pillow_decoder}
    best: dict = {}
    one_pass(web[:4])
    for _ in range(repeats):
        for name, ctx in decoders.items():
            for size, paths in (("web", web), ("camera", cam), ("camera_exif_turned", turned)):
                if not paths:
                    continue
                with ctx():
                    run = one_pass(paths)
                key = (name, size)
                best[key] = run if key not in best else {k: min(v, run[k]) for k, v in best[key].items()}
    out = {}
    for name in decoders:
        runs = {size: r for (n, size), r in best.items() if n == name}
        total = {size: sum(v for k, v in r.items() if k != "second_decodes") for size, r in runs.items()}
        out[name] = {**{size: {k: round(v, 2) for k, v in r.items()} for size, r in runs.items()},
                     "total_ms": {size: round(t, 1) for size, t in total.items()},
                     **{f"cpu_ratio_{size}_vs_web": round(t / total["web"], 3) for size, t in total.items() if size != "web"}}
    return {**out, "photos": len(web), "what": "one process, one thread; detect excludes the resize; descriptor in chunks of 8 photos"}


def agreement(paths) -> dict:
    """The library's faces and descriptors (:func:`vision_lib.faces.detect_paths`, reduced decodes)
    against the full decode (``load_image`` + detect + describe, as before), faces matched by IoU."""
    import numpy as np

    from vision_lib.faces import detect_paths
    from vision_lib.io import load_image
    from vision_lib.models import get_descriptor, get_detector

    det, desc = get_detector(), get_descriptor()
    ours = detect_paths(paths, n_jobs=1, cache=False, progress=False, descriptors=True)
    found_full = found_ours = photos_full = photos_ours = 0
    gaps = []
    for r, p in zip(ours, paths):
        image = load_image(p)
        faces = det.detect(image)
        ref = desc.describe(image, faces)
        found_full, found_ours = found_full + len(faces), found_ours + len(r.faces)
        photos_full, photos_ours = photos_full + bool(faces), photos_ours + bool(r.faces)
        for i, f in enumerate(r.faces):
            ious = [_iou(f.box, g.box) for g in faces]
            if ious and max(ious) > 0.5:
                gaps.append(float(np.linalg.norm(r.descriptors[i] - ref[int(np.argmax(ious))])))
    gaps = np.asarray(gaps)
    return {"photos": len(paths), "faces_full_decode": found_full, "faces_ours": found_ours,
            "photos_with_a_face_full_decode": photos_full, "photos_with_a_face_ours": photos_ours,
            "matched_faces": len(gaps),
            "descriptor_distance_vs_full_decode": {
                "median": round(float(np.median(gaps)), 4) if len(gaps) else None,
                "p95": round(float(np.percentile(gaps, 95)), 4) if len(gaps) else None,
                "max": round(float(gaps.max()), 4) if len(gaps) else None,
                "identical_share": round(float(np.mean(gaps < 1e-6)), 3) if len(gaps) else None},
            "same_person_distance": desc.threshold}


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / float(aw * ah + bw * bh - ix * iy)


def runtimes_agree(paths) -> dict:
    """FaceNet under ONNX Runtime (the default) against the Keras network, same chips."""
    import numpy as np

    from vision_lib.io import load_image
    from vision_lib.models import get_descriptor, get_detector
    from vision_lib.models.facenet import face_chips

    det = get_detector()
    chips = [face_chips(im, det.detect(im)) for im in (load_image(p) for p in paths)]
    chips = np.concatenate([c for c in chips if len(c)])
    onnx = get_descriptor("facenet", runtime="onnxruntime").describe_chips(chips)
    keras = get_descriptor("facenet", runtime="keras").describe_chips(chips)
    return {"faces": len(chips), "max_abs_difference": float(np.abs(onnx - keras).max())}


def cold_start(training: Path, one: Path, work: Path, repeats: int) -> dict:
    model = work / "model.pkl"
    _cli("train", str(training), "--out", str(model), "--quiet")
    first = _cli("predict", str(model), str(one), env={"VISION_LIB_MODEL_CACHE": str(work / "empty_model_cache")})
    helps = [_cli("--help") for _ in range(repeats)]
    predicts = [_cli("predict", str(model), str(one)) for _ in range(repeats)]

    def med(runs, k):
        return round(statistics.median(r[k] for r in runs), 3)

    return {"help": {"wall_s": med(helps, 0), "cpu_s": med(helps, 1), "runs": repeats},
            "predict": {"wall_s": med(predicts, 0), "cpu_s": med(predicts, 1), "runs": repeats,
                        "model": f"{len(PLAYERS)} players x 8 photos"},
            "predict_first_use_empty_model_cache": {"wall_s": round(first[0], 3), "cpu_s": round(first[1], 3)}}


def held_out(photos: int, seed: int):
    """``(training, held, pick)``: the small model's training and held-out photos, and ``photos``
    footballer photos never used to train it (the per-photo cost's sample)."""
    import numpy as np

    from vision_lib.classify.evaluation import split_per_person
    from vision_lib.config import dataset
    from vision_lib.io import photo_set

    training, held = split_per_person(dataset("footballers"), 8, seed=seed, people=PLAYERS)
    everyone = photo_set(dataset("footballers"), labelled=True)
    used = set(training.paths)
    pool = [p for p in everyone.paths if p not in used]  # never a photo of the small model's training
    return training, held, [pool[i] for i in sorted(np.random.default_rng(seed).permutation(len(pool))[:photos])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=60, help="held-out photos for the per-photo cost (default 60)")
    ap.add_argument("--small", type=int, default=10, help="photos of the short run of the per-photo cost")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each timing (the min or median is kept)")
    ap.add_argument("--pipeline-photos", type=int, default=80)
    ap.add_argument("--skip", nargs="*", default=[], choices=["camera_size", "cold_start", "pipeline"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    report = {"machine": bench_models.machine(), "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    training, held, pick = held_out(args.photos, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        work = Path(tmp)
        if "camera_size" not in args.skip:
            (work / "camera").mkdir()
            big = camera_copies(pick, work / "camera")
            (work / "turned").mkdir()
            turned = camera_copies(pick, work / "turned", turned=True)
            web = cost_per_extra_photo(pick, work / "web_runs", args.small, args.repeats)
            cam = cost_per_extra_photo(big, work / "cam_runs", args.small, args.repeats)
            report["camera_size"] = {
                "web": {**web, "median_megapixels": _median_megapixels(pick)},
                "camera": {**cam, "median_megapixels": _median_megapixels(big), "side": CAMERA_SIDE,
                           "quality": CAMERA_QUALITY},
                "ratio_camera_vs_web": round(cam["ms_per_extra_photo"] / web["ms_per_extra_photo"], 3),
                "cpu_ratio_camera_vs_web": round(cam["cpu_ms_per_extra_photo"] / web["cpu_ms_per_extra_photo"], 3),
                "what": "vision-lib features --kind descriptor (YuNet + FaceNet, every core), fresh processes, "
                        "(T(N) - T(n)) / (N - n), min of the repeats",
            }
            report["camera_size"]["stages_one_worker"] = stage_costs(pick, big, args.repeats, turned)
            report["accuracy"] = {"camera": agreement(big), "web": agreement(pick),
                                  "camera_exif_turned": agreement(turned),
                                  "camera_libjpeg_turbo_vs_pillow_decoder": same_as_pillow_decoder(big),
                                  "facenet_onnxruntime_vs_keras": runtimes_agree(pick[:20])}
        if "cold_start" not in args.skip:
            one = held.paths[0]
            report["cold_start"] = cold_start(_training_folder(training, work), one, work, args.repeats)
    if "pipeline" not in args.skip:
        report["pipeline"] = pipeline(args.pipeline_photos, args.seed)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["targets_met"] = _targets(report)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


def _median_megapixels(paths) -> float:
    from PIL import Image

    def mp(p):
        with Image.open(p) as im:
            return im.width * im.height / 1e6

    return round(statistics.median(mp(p) for p in paths), 2)


def _training_folder(training, work: Path) -> Path:
    """The training photos linked under ``work/train/<player>/`` (the split leaves out the rest)."""
    root = work / "train"
    for p, lab in zip(training.paths, training.labels):
        (root / lab).mkdir(parents=True, exist_ok=True)
        os.symlink(p, root / lab / p.name)
    return root


def pipeline(photos: int, seed: int) -> dict:
    """bench_models' race, one process each, one thread each (TensorFlow, OpenCV, ONNX Runtime)."""
    from vision_lib.config import dataset
    from vision_lib.io import photo_set

    from vision_lib.models import facenet_onnx, yunet_onnx

    bench_models._single_thread()
    # ONNX Runtime's FaceNet and YuNet sessions one thread too (its default is every core), as the
    # reference's TensorFlow: the descriptor and the detector take them from these modules at first use.
    def one_thread(session):
        return lambda path, threads: session(path, 1)

    for module, name in ((facenet_onnx, "onnx_network"), (yunet_onnx, "yunet_session")):
        setattr(module, name, one_thread(getattr(module, name)))
    race = photo_set(dataset("footballers"), labelled=True).limit(total=photos, seed=seed + 1)
    (ref_s, ref_cpu), ref_f, ref_n = bench_models.reference_pipeline(race.paths, race.labels)
    (ours_s, ours_cpu), ours_f, ours_n = bench_models.our_pipeline(race.root, race.paths, None, None)
    return {"photos": len(race), "reference": {"faces": ref_n, "bcubed_f": ref_f, "seconds": round(ref_s, 2)},
            "ours": {"faces": ours_n, "bcubed_f": ours_f, "seconds": round(ours_s, 2)},
            "what": "one process each, one TensorFlow, OpenCV and ONNX Runtime thread; caches off",
            "time_ratio_ours_vs_reference": round(ours_s / ref_s, 3),
            "cpu_ratio_ours_vs_reference": round(ours_cpu / ref_cpu, 3)}


def _targets(report: dict) -> dict:
    out = {}
    if "camera_size" in report:
        out["camera_vs_web_per_photo_le_1.3"] = report["camera_size"]["ratio_camera_vs_web"] <= 1.3
    if "cold_start" in report:
        out["help_le_0.5s"] = report["cold_start"]["help"]["wall_s"] <= 0.5
        out["predict_le_3s"] = report["cold_start"]["predict"]["wall_s"] <= 3.0
    if "pipeline" in report:
        out["pipeline_le_0.15x_reference"] = report["pipeline"]["time_ratio_ours_vs_reference"] <= 0.15
    return out


if __name__ == "__main__":
    sys.exit(main())
