"""vision_lib.serve under bad and concurrent requests: never a 5xx, every bad request a clear 4xx.

A smaller version of the load in `benchmarks/bench_serve.py` (same request kinds, from
`benchmarks/serve_abuse.py`) against the real waitress server on 127.0.0.1, plus property-based
uploads (hypothesis), the security headers and the safe defaults. The model is the recording stand-in
of test_serve.py: decoding, parsing and HTTP are real, and they are what bad input reaches.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vision_lib.serve import SECURITY_HEADERS, STATIC_DIR, create_app, is_loopback, make_server, warn_if_exposed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_abuse  # noqa: E402
from test_serve import RecordingModel, encode, gradient, post_file  # noqa: E402

LIMIT_MB = 0.5


@pytest.fixture
def server():
    """waitress on 127.0.0.1 (a free port) in a thread, with the stand-in model; closed afterwards."""
    srv = make_server(create_app(RecordingModel(), max_upload_mb=LIMIT_MB), "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield srv
    srv.close()
    thread.join(10)


def test_every_kind_of_request_gets_its_status_and_a_clear_message(server):
    kinds = serve_abuse.cases(serve_abuse.sample_jpegs(2), int(LIMIT_MB * 1e6))
    assert len({c.name for c in kinds}) == len(kinds) > 20
    for case in kinds:
        status, ctype, body = serve_abuse.send("127.0.0.1", server.effective_port, case, timeout=30)
        assert serve_abuse.check_answer(case, status, ctype, body) is None, (case.name, status, body[:200])


def test_bounded_mixed_concurrent_load_has_no_server_error(server):
    kinds = serve_abuse.cases(serve_abuse.sample_jpegs(3), int(LIMIT_MB * 1e6))
    res = serve_abuse.run_load("127.0.0.1", server.effective_port, kinds, clients=4, requests=30,
                               deadline_s=120, timeout=30)
    assert res["sent"]["total"] == 120 and res["finished_within_deadline"]
    assert res["server_errors_5xx"] == 0 and res["sent"]["exceptions"] == 0
    assert res["unexpected_answers"] == 0, res["problems"]
    assert {"200", "400", "404", "405", "413"} <= set(res["status_codes"])
    assert res["sent"]["hung_up_mid_body"] >= 1
    # Still serving after the clients that hung up mid-body.
    ok = serve_abuse.upload("after", 200, serve_abuse.sample_jpegs(1)[0])
    status, ctype, body = serve_abuse.send("127.0.0.1", server.effective_port, ok, timeout=30)
    assert serve_abuse.check_answer(ok, status, ctype, body) is None


def test_the_load_refuses_other_hosts():
    with pytest.raises(ValueError, match="this machine only"):
        serve_abuse.run_load("192.0.2.1", 80, [], clients=1, requests=1)


# --------------------------------------------------------------------------- property-based uploads
def _seed_photos() -> list[bytes]:
    """Real photos when ../shared is there (one JPEG of a face), else generated ones; PNG and
    EXIF-rotated JPEG too, so the mutations reach several decoders."""
    from PIL import Image

    real = Path(os.environ["VISION_LIB_DATA"]) / "footballers" / "leo_messi" / "leo_messi_000.jpg"  # conftest
    seeds = [real.read_bytes()] if real.is_file() else []
    exif = Image.Exif()
    exif[0x0112] = 6
    return seeds + [encode(gradient(), "JPEG", exif=exif.tobytes()), encode(gradient(), "PNG"),
                    encode(gradient(), "WEBP")]


SEEDS = _seed_photos()
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@st.composite
def mutated_photo(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 12))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@pytest.fixture(scope="module")
def app_client():
    return create_app(RecordingModel(), max_upload_mb=LIMIT_MB).test_client()


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damage
@FUZZ
@given(body=st.one_of(st.binary(max_size=4096), mutated_photo()))
def test_any_uploaded_bytes_get_200_or_a_4xx_never_a_5xx(app_client, body):
    r = post_file(app_client, body, "x.jpg")
    assert r.status_code in (200, 400, 413) and r.is_json, (r.status_code, r.data[:200])
    assert ("faces" in r.json) if r.status_code == 200 else r.json["error"]


@pytest.mark.filterwarnings("ignore::UserWarning")
@FUZZ
@given(body=st.one_of(st.binary(max_size=2048), mutated_photo()),
       ctype=st.sampled_from(["image/jpeg", "image/png", "application/octet-stream", "application/json",
                              "text/plain", "multipart/form-data", "multipart/form-data; boundary=x",
                              "application/x-www-form-urlencoded", ""]))
def test_any_body_with_any_content_type_never_gets_a_5xx(app_client, body, ctype):
    r = app_client.post("/api/classify", data=body, headers={"Content-Type": ctype} if ctype else {})
    assert r.status_code in (200, 400, 413) and r.is_json, (ctype, r.status_code, r.data[:200])


# --------------------------------------------------------------------------- safe defaults
def test_security_headers_on_the_page_the_api_and_errors(app_client):
    for r in (app_client.get("/"), app_client.get("/static/app.js"), app_client.get("/api/health"),
              app_client.get("/nope"), post_file(app_client, b"junk")):
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (r.request.path, name)
    csp = dict(d.strip().split(" ", 1) for d in SECURITY_HEADERS["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in SECURITY_HEADERS["Content-Security-Policy"]
    assert post_file(app_client, b"junk").headers["Cache-Control"] == "no-store"


def test_the_page_satisfies_its_content_security_policy():
    """No inline script, style attribute or handler, nothing from elsewhere: all the CSP allows is
    'self' (and blob: images, the preview of the chosen photo)."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    js = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    assert all(re.search(r'\bsrc="/static/', tag) for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"<script[^>]*>\s*[^<\s]", html), "inline script"
    assert "<style" not in html and not re.search(r"\sstyle=", html), "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "resource from elsewhere"
    assert not re.search(r"\beval\(|new Function\(|setAttribute\(\s*['\"]style|\.cssText|innerHTML\s*=.*style", js)
    assert not re.search(r"https?://|//cdn|@import", js + css)


def test_error_replies_reveal_no_paths_or_tracebacks(tmp_path):
    class Broken:
        def predict_image(self, image):
            raise RuntimeError(f"failed reading {tmp_path}/secret/model.pkl")

    r = post_file(create_app(Broken()).test_client(), encode(gradient()))
    assert r.status_code == 500 and str(tmp_path) not in r.get_data(as_text=True)
    assert "Traceback" not in r.get_data(as_text=True)


def test_uploads_are_never_written_to_disk(monkeypatch):
    import tempfile

    import werkzeug.formparser

    def no_disk(*a, **k):
        raise AssertionError("an upload was spooled to a temporary file")

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", no_disk)
    monkeypatch.setattr(tempfile, "TemporaryFile", no_disk)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_disk)
    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_disk, raising=False)
    big = encode(np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8), "PNG")
    assert len(big) > 1_000_000  # werkzeug spools file parts above 500 KB to disk by default
    assert post_file(create_app(RecordingModel(), max_upload_mb=3).test_client(), big, "big.png").status_code == 200


@pytest.mark.parametrize("host, exposed", [("127.0.0.1", False), ("::1", False), ("localhost", False),
                                           ("127.0.0.2", False), ("0.0.0.0", True), ("::", True),
                                           ("192.168.1.5", True), ("myhost.example", True)])
def test_serve_warns_when_reachable_from_other_machines(host, exposed, capsys):
    assert is_loopback(host) is not exposed
    assert warn_if_exposed(host) is exposed
    err = capsys.readouterr().err
    assert ("reachable from other machines" in err) is exposed


def test_cli_serve_binds_to_this_machine_by_default():
    from vision_lib.cli import build_parser

    assert build_parser().parse_args(["serve", "--model", "m.pkl"]).host == "127.0.0.1"
