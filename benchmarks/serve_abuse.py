"""A bounded, mixed load of good and bad requests against a running `vision-lib serve` (loopback only).

Shared by `bench_serve.py` (the real server in a subprocess, 8 clients x 50 requests) and
`tests/test_serve_abuse.py` (a smaller run). Requests are written with the standard library's
`http.client` and raw sockets, so the wrong or missing content types, cut-short multipart bodies
and a client that stops mid-body are sent exactly as described, not tidied up by a client library.

Every loop is bounded twice: by a request count and by a deadline; each request has a timeout.
"""
from __future__ import annotations

import base64
import functools
import http.client
import io
import json
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Substrings that must never appear in an answer: server paths, Python internals.
LEAKS = ("Traceback", "site-packages", "/home/", "/work/", "/tmp/", "vision_lib/", 'File "')


@dataclass(frozen=True)
class Case:
    """One kind of request and the status it must get (None: no answer is expected)."""

    name: str
    expect: int | None
    method: str = "POST"
    path: str = "/api/classify"
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    stop_mid_body: bool = False  # send the headers and half the body, then hang up


def multipart(data: bytes, *, field: str = "file", filename: str = "photo.jpg",
              content_type: str = "image/jpeg") -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """A one-part multipart/form-data body and its Content-Type header."""
    boundary = "vision-lib-abuse-7f3a"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), (
        ("Content-Type", f"multipart/form-data; boundary={boundary}"),)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


@functools.lru_cache(maxsize=2)
def real_bomb_png(side: int = 12000) -> bytes:
    """A genuine decompression bomb: a valid, fully decodable flat PNG of ``side`` x ``side`` pixels
    (144 MP, 432 MB as RGB) that is a few hundred KB on the wire."""
    row = b"\x00" + b"\x00" * (3 * side)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def upload(name: str, expect: int | None, data: bytes, *, stop_mid_body: bool = False, **part) -> Case:
    """A multipart upload of ``data`` (``part``: the :func:`multipart` options)."""
    body, headers = multipart(data, **part)
    return Case(name, expect, body=body, headers=headers, stop_mid_body=stop_mid_body)


def cases(photos: list[bytes], max_upload_bytes: int) -> list[Case]:
    """The mixed request kinds: real photos (200) and every kind of bad request (4xx)."""
    jpeg = photos[0]
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"
    oversized = b"\xff\xd8\xff" + bytes(max_upload_bytes + 1000)
    out = [upload(f"photo_{i}", 200, p, filename=f"p{i}.jpg") for i, p in enumerate(photos)]
    out += [
        Case("photo_raw_body", 200, body=jpeg, headers=(("Content-Type", "image/jpeg"),)),
        Case("photo_data_url", 200, body=json.dumps({"image": "data:image/jpeg;base64,"
                                                      + base64.b64encode(jpeg).decode()}).encode(),
             headers=(("Content-Type", "application/json"),)),
        upload("text_file", 400, b"shopping list: milk\n", filename="a.jpg"),
        upload("svg_file", 400, svg, filename="a.svg", content_type="image/svg+xml"),
        upload("pdf_file", 400, pdf, filename="a.pdf"),
        upload("zero_byte_file", 400, b""),
        upload("truncated_jpeg", 400, jpeg[: len(jpeg) // 3]),
        upload("oversized_upload", 413, oversized),
        upload("bomb_header_40000x40000", 400, png_claiming(40000, 40000), filename="b.png"),
        upload("bomb_real_12000x12000", 400, real_bomb_png(), filename="b.png"),
        Case("wrong_type_text_plain", 400, body=jpeg, headers=(("Content-Type", "text/plain"),)),
        Case("wrong_type_image_with_text", 400, body=b"not a photo at all",
             headers=(("Content-Type", "image/png"),)),
        Case("wrong_type_form_urlencoded", 400, body=jpeg,
             headers=(("Content-Type", "application/x-www-form-urlencoded"),)),
        Case("missing_content_type", 400, body=jpeg),
        upload("multipart_without_file", 400, jpeg, field="other"),
        Case("multipart_cut_short", 400, body=multipart(jpeg)[0][: len(jpeg) // 2], headers=multipart(jpeg)[1]),
        Case("multipart_no_boundary", 400, body=jpeg, headers=(("Content-Type", "multipart/form-data"),)),
        Case("json_bad_base64", 400, body=b'{"image": "data:image/jpeg;base64,@@@"}',
             headers=(("Content-Type", "application/json"),)),
        Case("json_broken", 400, body=b'{"image": ', headers=(("Content-Type", "application/json"),)),
        Case("get_on_post_route", 405, method="GET"),
        Case("unknown_route", 404, method="GET", path="/no/such/page"),
        upload("client_stops_mid_body", None, jpeg, stop_mid_body=True),
    ]
    return out


def send(host: str, port: int, case: Case, timeout: float) -> tuple[int | None, str, bytes]:
    """``(status, content type, body)`` of one request; ``(None, "", b"")`` for a client that hangs up."""
    if case.stop_mid_body:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            head = f"{case.method} {case.path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(case.body)}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in case.headers) + "\r\n"
            sock.sendall(head.encode() + case.body[: len(case.body) // 2])
        return None, "", b""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = dict(case.headers)
        if case.method == "POST":
            headers["Content-Length"] = str(len(case.body))
        conn.putrequest(case.method, case.path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if case.body:
            try:
                conn.send(case.body)
            except (BrokenPipeError, ConnectionResetError):  # the server answered early (413) and closed
                pass
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


def check_answer(case: Case, status: int | None, ctype: str, body: bytes) -> str | None:
    """What is wrong with an answer (None when it is as it must be)."""
    if case.expect is None:
        return None
    if status != case.expect:
        return f"status {status}, expected {case.expect}"
    text = body.decode("utf-8", "replace")
    leak = next((s for s in LEAKS if s in text), None)
    if leak:
        return f"answer reveals {leak!r}"
    if status >= 400:
        if ctype.startswith("application/json"):
            try:
                message = json.loads(text).get("error")
            except (ValueError, AttributeError):
                message = None
        else:
            message = text.strip() if ctype.startswith("text/plain") else None
        if not message:
            return f"{status} without a JSON or plain-text message ({ctype})"
    elif not ctype.startswith("application/json") or "faces" not in json.loads(text):
        return "200 without a prediction"
    return None


def percentiles(xs) -> dict:
    xs = np.asarray(xs, dtype=float)
    if not xs.size:
        return {"n": 0}
    return {"p50": round(float(np.percentile(xs, 50)), 3), "p95": round(float(np.percentile(xs, 95)), 3),
            "max": round(float(xs.max()), 3), "n": int(xs.size)}


def run_load(host: str, port: int, kinds: list[Case], *, clients: int = 8, requests: int = 50,
             deadline_s: float = 600, timeout: float = 120,
             on_tick: Callable[[], None] | None = None) -> dict:
    """``clients`` threads each send ``requests`` requests, cycling through ``kinds`` from different
    starting points, until done or ``deadline_s`` passes. Loopback only: refuses any other host."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError(f"the load runs against this machine only, not {host}")
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s
    latency: dict[str, list[float]] = {"good": [], "bad": []}
    codes: dict[str, int] = {}
    problems: list[dict] = []
    sent = {"total": 0, "hung_up_mid_body": 0, "exceptions": 0}

    def client(c: int) -> None:
        for k in range(requests):
            if time.monotonic() > stop_at:
                return
            case = kinds[(c * 7 + k) % len(kinds)]
            t0 = time.perf_counter()
            try:
                status, ctype, body = send(host, port, case, timeout)
                wrong = check_answer(case, status, ctype, body)
            except OSError as exc:  # refused, reset or timed out: the server did not answer
                status, wrong = type(exc).__name__, f"no answer: {type(exc).__name__}"
            dt = time.perf_counter() - t0
            with lock:
                sent["total"] += 1
                if status is None:
                    sent["hung_up_mid_body"] += 1
                else:
                    codes[str(status)] = codes.get(str(status), 0) + 1
                    latency["good" if case.expect == 200 else "bad"].append(dt)
                if isinstance(status, str):
                    sent["exceptions"] += 1
                if wrong:
                    problems.append({"case": case.name, "problem": wrong})
            if on_tick is not None:
                on_tick()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, stop_at - time.monotonic()) + timeout)
    wall = time.perf_counter() - t0
    n5xx = sum(n for code, n in codes.items() if code.isdigit() and int(code) >= 500)
    return {
        "clients": clients, "requests_per_client": requests, "kinds": len(kinds), "sent": sent,
        "finished_within_deadline": wall <= deadline_s + timeout and not any(t.is_alive() for t in threads),
        "wall_s": round(wall, 1), "status_codes": dict(sorted(codes.items())), "server_errors_5xx": n5xx,
        "unexpected_answers": len(problems), "problems": problems[:20],
        "latency_s": {"photos": percentiles(latency["good"]), "bad_requests": percentiles(latency["bad"]),
                      "all": percentiles(latency["good"] + latency["bad"])},
    }


def sample_jpegs(n: int = 3, size: tuple[int, int] = (320, 240)) -> list[bytes]:
    """Generated JPEGs (a gradient with noise) for runs without real photos."""
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        y, x = np.mgrid[0:size[1], 0:size[0]]
        img = np.stack([x * 255 // size[0], y * 255 // size[1], np.full_like(x, 60 + 40 * i)], axis=2)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out
