"""Benchmark `vision-lib serve`: warm latency on 1024-px photos, bounded concurrent load, bad input.

Starts the real server (`python -m vision_lib serve --port 0`, waitress) on loopback in a
subprocess and talks to it over HTTP. Baseline measured in the same run: decoding + predicting the
same JPEG bytes in-process without HTTP, so the JSON quotes the server's overhead as a ratio.

    python benchmarks/bench_serve.py [--model BUNDLE] [--photos 20] [--clients 4] [--requests 25]
                                     [--abuse-clients 8] [--abuse-requests 50] [--abuse-deadline 600]
                                     [--compare-recipes [--compare-passes 2] [--compare-only]]

Then a bounded mixed load of good and bad requests (benchmarks/serve_abuse.py: real photos,
non-images, truncated and zero-byte files, oversized uploads, decompression bombs, wrong or missing
content types, multipart without a file, clients that hang up mid-body), counting 5xx answers and
answers other than the expected 4xx, with the server process's RSS sampled throughout.

Without --model it trains a small bundle (3 footballers x 8 photos) into a temporary folder and
sends held-out photos of those players. Prints one JSON object on stdout.

--compare-recipes (issue 18: web latency of the new defaults against the old MTCNN + dlib) adds
``recipes_over_http``: one small bundle per recipe (the registry's default detector + descriptor, and
MTCNN + dlib), trained on the same 3 x 8 photos, each behind its own `vision-lib serve` with the same
settings, both servers up at once; the same held-out 1024-px photos are sent to one then the other
(the order alternates photo by photo, ``--compare-passes`` passes), so both see the same machine
load. It reports each recipe's warm latency and server CPU seconds per photo and the ratios new/old
of the median and p90. --compare-only prints that section alone (skips the default run above).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # serve_abuse.py beside this file

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PLAYERS = ("cristiano_ronaldo", "leo_messi", "mohamed_salah")
SIDE = 1024
TIMEOUT = 120  # seconds per request: a bounded test, never a hang


def percentiles(xs) -> dict:
    xs = np.asarray(xs, dtype=float)
    return {"p50": round(float(np.percentile(xs, 50)), 3), "p90": round(float(np.percentile(xs, 90)), 3),
            "p95": round(float(np.percentile(xs, 95)), 3),
            "mean": round(float(xs.mean()), 3), "n": int(xs.size)}


def photos_1024(paths) -> list[tuple[str, bytes]]:
    """Each photo scaled so its longest side is exactly 1024 px, as JPEG (quality 90) bytes."""
    import cv2
    from PIL import Image

    from vision_lib.io import load_image

    out = []
    for p in paths:
        im = load_image(p)
        s = SIDE / max(im.shape[:2])
        im = cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)),
                        interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=90)
        out.append((Path(p).name, buf.getvalue()))
    return out


def make_bundle(footballers: Path, out: Path, per_player: int, detector: str | None = None,
                descriptor: str | None = None) -> tuple[Path, list[tuple[Path, str]]]:
    """A bundle trained on ``per_player`` photos of each of :data:`PLAYERS` (seed 0) with the given
    detector and descriptor (None: the defaults), and the other photos of those players, shuffled."""
    from vision_lib.classify import save_model, split_per_person, train

    training, rest = split_per_person(footballers, per_player, seed=0, people=PLAYERS)  # copies not held out
    model = train(training, detector=detector, descriptor=descriptor, n_jobs=2, progress=False)
    name = "bench_serve_model.pkl" if detector is None and descriptor is None else f"bench_serve_{detector}_{descriptor}.pkl"
    path = save_model(model, out / name, overwrite=True)
    order = np.random.default_rng(2).permutation(len(rest))
    return path, [(rest.paths[i], rest.labels[i]) for i in order]


def start_server(model: Path, max_upload_mb: float, threads: int) -> tuple[subprocess.Popen, str, float]:
    cmd = [sys.executable, "-m", "vision_lib", "serve", "--model", str(model), "--port", "0",
           "--max-upload-mb", str(max_upload_mb), "--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    tail = []
    for line in proc.stdout:  # ends if the server dies
        tail.append(line)
        m = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # drain
            return proc, m.group(1), time.perf_counter() - t0
    raise RuntimeError("server did not start:\n" + "".join(tail[-20:]))


def png_header_bomb(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    chunk = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = chunk
    data[29:33] = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return bytes(data)


def bad_inputs(session, api: str, jpeg: bytes, max_upload_mb: float) -> dict:
    """Each malformed request, the status it should get and the one it got (answers must be JSON)."""
    big = b"\xff\xd8" + b"\0" * int(max_upload_mb * 1_000_000 + 1000)
    cases = {
        "empty_file": (dict(files={"file": ("e.jpg", b"")}), 400),
        "not_an_image": (dict(files={"file": ("t.jpg", b"hello, not a photo")}), 400),
        "truncated_jpeg": (dict(files={"file": ("t.jpg", jpeg[: len(jpeg) // 3])}), 400),
        "decompression_bomb_header": (dict(files={"file": ("b.png", png_header_bomb(40000, 40000))}), 400),
        "bad_base64_json": (dict(json={"image": "data:image/jpeg;base64,@@@"}), 400),
        "json_without_image": (dict(json={"filename": "x.jpg"}), 400),
        "plain_text_body": (dict(data=b"hello", headers={"Content-Type": "text/plain"}), 400),
        "multipart_without_file": (dict(files={"other": ("x.jpg", jpeg)}), 400),
        "above_upload_limit": (dict(files={"file": ("big.jpg", big)}), 413),
        "above_limit_as_data_url": (dict(json={"image": "data:image/jpeg;base64," + base64.b64encode(big).decode()}), 413),
        "wrong_method": (dict(method="GET"), 405),
    }
    out = {}
    for name, (kw, expected) in cases.items():
        method = kw.pop("method", "POST")
        r = session.request(method, api, timeout=TIMEOUT, **kw)
        try:
            is_json = "error" in r.json()
        except ValueError:
            is_json = False
        out[name] = {"expected": expected, "status": r.status_code, "json_error": is_json}
    return out


def abuse_load(server, url: str, photos: list[bytes], args) -> dict:
    """The mixed good/bad load of serve_abuse.py against the server, its RSS sampled every 0.2 s."""
    from urllib.parse import urlsplit

    import serve_abuse

    where = urlsplit(url)
    kinds = serve_abuse.cases(photos, int(args.max_upload_mb * 1_000_000))
    rss = [server.memory_info().rss]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            try:
                rss.append(server.memory_info().rss)
            except Exception:  # noqa: BLE001 - the server died: the result says so
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rounds, after = [], []
    try:
        for _ in range(args.abuse_rounds):
            rounds.append(serve_abuse.run_load(where.hostname, where.port, kinds, clients=args.abuse_clients,
                                               requests=args.abuse_requests, deadline_s=args.abuse_deadline,
                                               timeout=TIMEOUT))
            time.sleep(1.0)  # let waitress drop the hung-up connections' buffers
            after.append(server.memory_info().rss)
    finally:
        done.set()
        sampler.join(5)
    mb = 1 / 2**20
    res = rounds[0]  # the first round in full; the others' counts are added below
    res["rounds"] = len(rounds)
    for key in ("server_errors_5xx", "unexpected_answers"):
        res[f"{key}_all_rounds"] = sum(r[key] for r in rounds)
    res["exceptions_all_rounds"] = sum(r["sent"]["exceptions"] for r in rounds)
    res["finished_within_deadline_all_rounds"] = all(r["finished_within_deadline"] for r in rounds)
    res["p50_p95_s_per_round"] = [[r["latency_s"]["all"].get("p50"), r["latency_s"]["all"].get("p95")] for r in rounds]
    res["kinds_sent"] = [k.name for k in kinds]
    res["server_rss_mb"] = {"before": round(rss[0] * mb, 1), "peak": round(max(rss + after) * mb, 1),
                            "after_each_round": [round(a * mb, 1) for a in after],
                            "growth_first_round": round((after[0] - rss[0]) * mb, 1),
                            "growth_after_first_round": round((after[-1] - after[0]) * mb, 1),
                            "peak_over_before_ratio": round(max(rss + after) / rss[0], 3)}
    return res


def compare_recipes(footballers: Path, tmp: Path, args) -> dict:
    """Warm HTTP latency of the default recipe against MTCNN + dlib (issue 18), both servers up at
    once with the same settings, the same photos sent to each in alternating order."""
    import psutil
    import requests

    from vision_lib.comparisons import CLASSIC, modern

    recipes = {"new": modern(), "old": CLASSIC}
    bundles, train_s, labelled = {}, {}, []
    for key, (det, desc) in recipes.items():
        t0 = time.perf_counter()
        bundles[key], labelled = make_bundle(footballers, tmp, 8, det, desc)  # same split for both
        train_s[key] = round(time.perf_counter() - t0, 1)
    truth = {p.name: lab for p, lab in labelled}
    photos = photos_1024([p for p, _ in labelled[: args.photos]])
    load_start = os.getloadavg()
    servers: dict[str, tuple] = {}
    lat = {k: [] for k in recipes}
    codes = {k: {} for k in recipes}
    correct = {k: 0 for k in recipes}
    faces = {k: 0 for k in recipes}
    try:
        for key in recipes:
            servers[key] = start_server(bundles[key], args.max_upload_mb, args.threads)
        sessions = {k: requests.Session() for k in recipes}

        def post(key: str, name: str, data: bytes) -> tuple[int, float, dict | None]:
            t0 = time.perf_counter()
            r = sessions[key].post(servers[key][1] + "api/classify", files={"file": (name, data, "image/jpeg")},
                                   timeout=TIMEOUT)
            dt = time.perf_counter() - t0
            return r.status_code, dt, (r.json() if r.headers.get("Content-Type", "").startswith("application/json") else None)

        for key in recipes:  # warm-up, as in the main run
            for name, data in photos[:2]:
                post(key, name, data)
        procs = {k: psutil.Process(servers[k][0].pid) for k in recipes}
        cpu0 = {k: sum(procs[k].cpu_times()[:2]) for k in recipes}
        for rep in range(args.compare_passes):
            for i, (name, data) in enumerate(photos):
                # Alternate who goes first, so neither recipe always follows the other's cache misses.
                for key in (("new", "old") if (i + rep) % 2 == 0 else ("old", "new")):
                    status, dt, answer = post(key, name, data)
                    lat[key].append(dt)
                    codes[key][str(status)] = codes[key].get(str(status), 0) + 1
                    if rep == 0 and answer:
                        correct[key] += answer.get("label") == truth.get(name)
                        faces[key] += bool(answer.get("faces"))
        cpu = {k: (sum(procs[k].cpu_times()[:2]) - cpu0[k]) / len(lat[k]) for k in recipes}
        alive = {k: servers[k][0].poll() is None for k in recipes}
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
        for proc, _, _ in servers.values():
            proc.wait(timeout=30)
    stats = {k: percentiles(v) for k, v in lat.items()}
    paired = np.asarray(lat["new"]) / np.asarray(lat["old"])
    out = {"machine": {"cores": os.cpu_count(), "loadavg_1m_at_start": round(load_start[0], 2),
                       "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
           "setup": f"one bundle per recipe, trained on the same {len(PLAYERS)} players x 8 photos; both servers "
                    f"up at once (waitress, {args.threads} threads, --max-upload-mb {args.max_upload_mb}); "
                    f"{len(photos)} held-out photos at {SIDE} px, {args.compare_passes} passes, each photo sent to "
                    "both servers one after the other, who goes first alternating; 2 warm-up requests each",
           "photos": len(photos), "passes": args.compare_passes}
    for key, (det, desc) in recipes.items():
        out[key] = {"detector": det, "descriptor": desc, "bundle": str(bundles[key]), "train_s": train_s[key],
                    "server_startup_s": round(servers[key][2], 1), "warm_latency_s": stats[key],
                    "server_cpu_s_per_request": round(cpu[key], 3), "status_codes": codes[key],
                    "photos_with_a_face": f"{faces[key]}/{len(photos)}",
                    "labels_match_folder": f"{correct[key]}/{len(photos)}", "server_alive_after_run": alive[key]}
    out["new_over_old"] = {"p50_ratio": round(stats["new"]["p50"] / stats["old"]["p50"], 3),
                           "p90_ratio": round(stats["new"]["p90"] / stats["old"]["p90"], 3),
                           "mean_ratio": round(stats["new"]["mean"] / stats["old"]["mean"], 3),
                           "median_of_paired_ratios": round(float(np.median(paired)), 3),
                           "server_cpu_ratio": round(cpu["new"] / cpu["old"], 3)}
    out["target_latency_at_least_halved"] = out["new_over_old"]["p50_ratio"] <= 0.5
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="bundle from `vision-lib train` (default: train a small one)")
    ap.add_argument("--photos", type=int, default=20, help="distinct 1024-px photos for the latency run")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=25, help="requests per client in the load run")
    ap.add_argument("--threads", type=int, default=4, help="server threads")
    ap.add_argument("--max-upload-mb", type=float, default=10)
    ap.add_argument("--abuse-clients", type=int, default=8, help="clients of the mixed good/bad load")
    ap.add_argument("--abuse-requests", type=int, default=50, help="requests per client in the mixed load")
    ap.add_argument("--abuse-deadline", type=float, default=600, help="seconds after which each mixed load stops")
    ap.add_argument("--abuse-rounds", type=int, default=2,
                    help="mixed loads one after the other: RSS after each shows whether memory keeps growing")
    ap.add_argument("--compare-recipes", action="store_true",
                    help="also serve the default recipe and MTCNN + dlib side by side (issue 18): recipes_over_http")
    ap.add_argument("--compare-passes", type=int, default=2, help="passes over the photos in the comparison")
    ap.add_argument("--compare-only", action="store_true", help="run the recipe comparison alone")
    args = ap.parse_args()
    if args.compare_only and args.model:
        ap.error("--compare-only trains its own bundles; --model does not apply")

    import psutil
    import requests

    from vision_lib.classify import load_model
    from vision_lib.config import dataset
    from vision_lib.io import load_image_bytes

    footballers = dataset("footballers")  # $VISION_LIB_DATA/footballers, or a clear error
    tmp = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    if args.compare_only:
        print(json.dumps({"recipes_over_http": compare_recipes(footballers, tmp, args)}, indent=2))
        return 0
    if args.model:
        model_path, labelled = args.model, []
        photo_paths = sorted(footballers.rglob("*.jpg"))[::37][: args.photos]
    else:
        t0 = time.perf_counter()
        model_path, labelled = make_bundle(footballers, tmp, per_player=8)
        print(f"trained bundle in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        photo_paths = [p for p, _ in labelled[: args.photos]]
    truth = {p.name: lab for p, lab in labelled}
    photos = photos_1024(photo_paths)
    load_start = os.getloadavg()

    # Baseline: the same bytes decoded and predicted in this process, no HTTP (model warmed first).
    model = load_model(model_path)
    model.predict_image(load_image_bytes(photos[0][1]))
    direct, direct_answers = [], {}
    cpu0 = time.process_time()
    for name, data in photos:
        t0 = time.perf_counter()
        direct_answers[name] = model.predict_image(load_image_bytes(data, name=name))
        direct.append(time.perf_counter() - t0)
    direct_cpu = (time.process_time() - cpu0) / len(photos)
    del model

    proc, url, startup = start_server(model_path, args.max_upload_mb, args.threads)
    api = url + "api/classify"
    try:
        session = requests.Session()

        def post(name: str, data: bytes, s=None) -> tuple[int, float, dict | None]:
            t0 = time.perf_counter()
            r = (s or session).post(api, files={"file": (name, data, "image/jpeg")}, timeout=TIMEOUT)
            dt = time.perf_counter() - t0
            return r.status_code, dt, (r.json() if r.headers.get("Content-Type", "").startswith("application/json") else None)

        for name, data in photos[:2]:  # warm-up
            post(name, data)
        # CPU seconds the server spends per request: unlike wall time, not inflated by other load.
        server = psutil.Process(proc.pid)
        cpu0 = sum(server.cpu_times()[:2])
        seq, seq_status, same_as_direct, correct = [], [], 0, 0
        for name, data in photos:
            status, dt, answer = post(name, data)
            seq.append(dt)
            seq_status.append(status)
            if answer and answer.get("label") == direct_answers[name]["label"] \
                    and answer.get("faces") == direct_answers[name]["faces"]:
                same_as_direct += 1
            correct += bool(answer) and truth.get(name) is not None and answer.get("label") == truth[name]
        server_cpu = (sum(server.cpu_times()[:2]) - cpu0) / len(photos)

        # Bounded concurrent load: clients x requests, each client cycling through the photos.
        lat, errors, codes = [], [], {}
        lock = threading.Lock()

        def client(c: int):
            s = requests.Session()
            for k in range(args.requests):
                name, data = photos[(c * 7 + k) % len(photos)]
                try:
                    status, dt, answer = post(name, data, s)
                    ok = status == 200 and answer is not None and "faces" in answer
                except requests.RequestException as exc:
                    status, dt, ok = type(exc).__name__, None, False
                with lock:
                    codes[str(status)] = codes.get(str(status), 0) + 1
                    if dt is not None:
                        lat.append(dt)
                    if not ok:
                        errors.append(str(status))

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(client, range(args.clients)))
        wall = time.perf_counter() - t0
        bad = bad_inputs(session, api, photos[0][1], args.max_upload_mb)
        alive = proc.poll() is None
        abuse = abuse_load(server, url, [d for _, d in photos[:3]], args)
        alive_after_abuse = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    total = args.clients * args.requests
    seq_stats, direct_stats, load_stats = percentiles(seq), percentiles(direct), percentiles(lat)
    result = {
        "machine": {"cores": os.cpu_count(), "loadavg_1m_at_start": round(load_start[0], 2),
                    "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "model": str(model_path), "server": "waitress", "server_threads": args.threads,
        "server_startup_s": round(startup, 1),
        "photos": {"n": len(photos), "longest_side_px": SIDE,
                   "mean_jpeg_kb": round(float(np.mean([len(d) for _, d in photos])) / 1000, 1)},
        "warm_latency_s": seq_stats,
        "baseline_in_process_s": direct_stats,
        "http_over_in_process_p50_ratio": round(seq_stats["p50"] / direct_stats["p50"], 3),
        "cpu_s_per_photo": {"server_process": round(server_cpu, 3), "in_process_baseline": round(direct_cpu, 3),
                            "ratio": round(server_cpu / direct_cpu, 3)},
        "sequential_status_codes": sorted(set(seq_status)),
        "answers_identical_to_in_process": f"{same_as_direct}/{len(photos)}",
        "labels_match_folder": f"{correct}/{sum(n in truth for n, _ in photos)}" if truth else None,
        "load": {"clients": args.clients, "requests_per_client": args.requests, "total": total,
                 "errors": len(errors), "status_codes": codes, "latency_s": load_stats,
                 "throughput_rps": round(total / wall, 3),
                 "throughput_over_sequential_ratio": round((total / wall) * seq_stats["mean"], 3)},
        "bad_inputs": bad,
        "bad_inputs_all_as_expected": all(v["status"] == v["expected"] and v["json_error"] for v in bad.values()),
        "server_alive_after_run": alive,
        "abuse_load": abuse,
        "server_alive_after_abuse": alive_after_abuse,
        "targets": {"p50_under_0.6s": seq_stats["p50"] < 0.6, "zero_errors_under_load": not errors,
                    "bad_input_codes": all(v["status"] == v["expected"] for v in bad.values()),
                    "abuse_zero_5xx": abuse["server_errors_5xx_all_rounds"] == 0
                    and abuse["exceptions_all_rounds"] == 0,
                    "abuse_every_answer_as_expected": abuse["unexpected_answers_all_rounds"] == 0,
                    "abuse_within_deadline": abuse["finished_within_deadline_all_rounds"],
                    "server_alive_after_abuse": alive_after_abuse},
    }
    if args.compare_recipes:  # after the main server is gone: nothing else runs meanwhile
        result["recipes_over_http"] = compare_recipes(footballers, tmp, args)
        result["targets"]["web_latency_at_least_halved_over_http"] = \
            result["recipes_over_http"]["target_latency_at_least_halved"]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
