"""vision_lib.serve: the HTTP contract (Flask test client) and a real model behind it.

The contract tests use a recording stand-in for the model (so they run without ../shared and can
check exactly what reached the model); the rest use a small real bundle trained on footballers.
"""
from __future__ import annotations

import base64
import io
import json
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vision_lib.serve import STATIC_DIR, create_app

sys.path.insert(0, str(Path(__file__).parent))
import _serve_support  # noqa: E402


# --------------------------------------------------------------------------- helpers
class RecordingModel:
    """Answers like a FaceClassifier and remembers the images it was given."""

    def __init__(self, delay: float = 0.0):
        self.images: list[np.ndarray] = []
        self.delay = delay
        self.inside = 0
        self.max_inside = 0
        self._count_lock = threading.Lock()

    def predict_image(self, image: np.ndarray) -> dict:
        with self._count_lock:
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
        time.sleep(self.delay)
        self.images.append(image)
        h, w = image.shape[:2]
        with self._count_lock:
            self.inside -= 1
        # numpy types on purpose: the server must turn them into plain JSON
        return {"label": "alice", "faces": [{"box": (np.int64(1), 2, w // 2, h // 2), "label": "alice",
                                             "probability": np.float32(0.75)}]}


def encode(image: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], axis=2).astype(np.uint8)


def png_with_header_size(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR claims ``width x height`` (a decompression bomb's header)."""
    data = bytearray(encode(gradient(4, 4), "PNG"))
    ihdr = bytes(data[12:29])  # b"IHDR" + 13 bytes
    new = b"IHDR" + struct.pack(">II", width, height) + ihdr[12:]
    data[12:29] = new
    data[29:33] = struct.pack(">I", zlib.crc32(new) & 0xFFFFFFFF)
    return bytes(data)


def post_file(client, data: bytes, name: str = "photo.jpg"):
    return client.post("/api/classify", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


@pytest.fixture
def model():
    return RecordingModel()


@pytest.fixture
def client(model):
    return create_app(model, max_upload_mb=1).test_client()


# --------------------------------------------------------------------------- page
def test_page_has_drop_zone_chooser_and_no_external_resources(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'id="drop"' in html and 'type="file"' in html
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert asset.startswith("/static/"), f"page loads {asset} from outside the app"
        assert client.get(asset).status_code == 200
    # No CDN or any absolute URL anywhere in the page's files: it must work offline.
    for f in STATIC_DIR.iterdir():
        assert not re.search(r"https?://|//cdn", f.read_text()), f"{f.name} refers to the network"


def test_static_files_are_packaged():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["vision_lib"]
    assert "static/*" in patterns
    assert {"index.html", "app.js", "app.css"} <= {f.name for f in STATIC_DIR.iterdir()}


# --------------------------------------------------------------------------- good requests
def test_multipart_upload_answers_like_predict_json(client, model):
    image = gradient()
    r = post_file(client, encode(image, "PNG"), "some/folder/me.png")
    assert r.status_code == 200, r.json
    assert r.json == {"path": "me.png", "label": "alice", "answer": "Alice",
                      "faces": [{"box": [1, 2, 32, 24], "label": "alice", "probability": 0.75, "closeness": None}]}
    assert list(r.json) == ["path", "label", "faces", "answer"]
    np.testing.assert_array_equal(model.images[-1], image)  # lossless PNG reaches the model unchanged


def test_json_data_url_and_raw_body_give_the_same_answer(client, model):
    data = encode(gradient(), "PNG")
    by_form = post_file(client, data, "a.png").json
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    by_json = client.post("/api/classify", json={"image": url, "filename": "a.png"}).json
    by_raw = client.post("/api/classify?filename=a.png", data=data, content_type="image/png").json
    assert by_form == by_json == by_raw
    assert len(model.images) == 3 and all(np.array_equal(model.images[0], im) for im in model.images)


def test_uploads_are_decoded_like_load_image(client, model, tmp_path):
    from vision_lib.io import load_image

    # EXIF orientation 6 (rotate 90 degrees) and a CMYK JPEG: the model sees what load_image returns.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(gradient(30, 50), "JPEG", exif=exif.tobytes())
    cmyk = io.BytesIO()
    Image.fromarray(gradient()).convert("CMYK").save(cmyk, "JPEG")
    for name, data in (("rot.jpg", rotated), ("cmyk.jpg", cmyk.getvalue())):
        assert post_file(client, data, name).status_code == 200
        (tmp_path / name).write_bytes(data)
        np.testing.assert_array_equal(model.images[-1], load_image(tmp_path / name))
    assert model.images[0].shape == (50, 30, 3)


# --------------------------------------------------------------------------- bad requests
@pytest.mark.parametrize("case", ["empty", "text", "truncated", "bomb", "tiny"])
def test_undecodable_uploads_get_400_with_a_reason(client, model, case):
    jpeg = encode(gradient(200, 200))
    data = {"empty": b"", "text": b"hello, not a photo", "truncated": jpeg[: len(jpeg) // 3],
            "bomb": png_with_header_size(30000, 30000), "tiny": encode(np.zeros((1, 1, 3), np.uint8), "PNG")}[case]
    r = post_file(client, data)
    assert r.status_code == 400
    assert r.is_json and r.json["error"].startswith("not a usable photo")
    assert model.images == []


def test_a_small_file_with_a_huge_pixel_count_is_refused_before_decoding(client, model):
    # 110 MP passes the library's bomb limit (120 MP) but not the web app's (50 MP): a 400 that says
    # so, from the header alone, instead of seconds of CPU and gigabytes per concurrent request.
    r = post_file(client, png_with_header_size(10_000, 11_000), "flat.png")
    assert r.status_code == 400 and "too large: 10000x11000 pixels" in r.json["error"]
    assert model.images == []
    with pytest.raises(ValueError, match="max_megapixels"):
        create_app(model, max_megapixels=0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(json={"image": "data:image/png;base64,@@not base64@@"}), "base64"),
    (dict(json={"image": "data:image/png,plain"}), "base64"),
    (dict(json={"filename": "x.jpg"}), '"image"'),
    (dict(json=["not", "an", "object"]), "multipart"),
    (dict(data="{broken json", content_type="application/json"), "multipart"),
    (dict(data={"other": (io.BytesIO(b"x"), "x.jpg")}, content_type="multipart/form-data"), '"file"'),
    (dict(), "multipart"),
])
def test_malformed_requests_get_400_json(client, kwargs, message):
    r = client.post("/api/classify", **kwargs)
    assert r.status_code == 400 and r.is_json
    assert message in r.json["error"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damage we made
def test_corrupted_files_of_every_format_never_get_a_5xx(client):
    """Random byte damage in JPEG (with EXIF), PNG, GIF, TIFF, WebP and BMP: 200 or 400, never 500."""
    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x0112] = 6
    seeds = [encode(gradient(), "JPEG", exif=exif.tobytes())] + [
        encode(gradient(), fmt) for fmt in ("PNG", "GIF", "TIFF", "WEBP", "BMP")]
    codes = set()
    for data in seeds:
        for _ in range(25):
            bad = bytearray(data)
            for i in rng.integers(0, len(bad), size=rng.integers(1, 8)):
                bad[i] = rng.integers(0, 256)
            if rng.random() < 0.3:
                bad = bad[: rng.integers(1, len(bad))]
            r = post_file(client, bytes(bad))
            assert r.status_code in (200, 400) and r.is_json, (r.status_code, r.data[:200])
            codes.add(r.status_code)
    assert codes == {200, 400}  # both outcomes happen: the damage was real and sometimes harmless


def test_base64_that_is_not_an_image_gets_400(client):
    url = "data:image/jpeg;base64," + base64.b64encode(b"just text").decode()
    r = client.post("/api/classify", json={"image": url})
    assert r.status_code == 400 and "not a usable photo" in r.json["error"]


def test_uploads_above_the_limit_get_413_however_sent(client, model):
    big = b"\xff" * 1_000_001  # limit is 1 MB
    assert post_file(client, big).status_code == 413
    url = "data:image/jpeg;base64," + base64.b64encode(big).decode()
    r = client.post("/api/classify", json={"image": url})
    assert r.status_code == 413 and "1 MB" in r.json["error"]
    r = client.post("/api/classify", data=b"\0" * 3_000_000, content_type="image/jpeg")  # body over the cap
    assert r.status_code == 413 and r.is_json
    # just under the limit is accepted (the envelope does not count against the photo)
    ok = encode(np.random.default_rng(0).integers(0, 255, (560, 560, 3), dtype=np.uint8), "PNG")
    assert 900_000 < len(ok) < 1_000_000
    assert post_file(client, ok).status_code == 200
    assert len(model.images) == 1


def test_wrong_routes_and_methods_answer_json(client):
    assert client.get("/api/classify").status_code == 405
    r = client.get("/no/such/page")
    assert r.status_code == 404 and r.is_json and r.json["error"]


def test_bugs_in_the_model_are_500_json_not_html():
    class Broken:
        def predict_image(self, image):
            raise RuntimeError("boom")

    r = post_file(create_app(Broken()).test_client(), encode(gradient()))
    assert r.status_code == 500 and r.json == {"error": "internal error: RuntimeError"}


def test_invalid_limit_is_refused():
    with pytest.raises(ValueError):
        create_app(RecordingModel(), max_upload_mb=0)


# --------------------------------------------------------------------------- concurrency
def test_concurrent_requests_reach_the_model_one_at_a_time():
    model = RecordingModel(delay=0.02)
    app = create_app(model)
    photos = [encode(gradient(40 + i, 60), "PNG") for i in range(16)]

    def one(i: int):
        r = post_file(app.test_client(), photos[i], f"p{i}.png")
        return r.status_code, r.json["path"], r.json["faces"][0]["box"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(16)))
    assert [a[0] for a in answers] == [200] * 16
    assert [a[1] for a in answers] == [f"p{i}.png" for i in range(16)]  # nobody got another's answer
    assert [a[2][3] for a in answers] == [(40 + i) // 2 for i in range(16)]
    assert model.max_inside == 1  # the lock serialises the model


# --------------------------------------------------------------------------- a real model
@pytest.fixture(scope="module")
def bundle(footballers_dir, tmp_path_factory):
    return _serve_support.trained_bundle(footballers_dir, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def real_model(bundle):
    from vision_lib.classify import load_model

    return load_model(bundle.path)


@pytest.fixture(scope="module")
def photos(bundle):
    picked = _serve_support.single_face_photos(bundle, 2)
    assert len(picked) == 2, "no held-out photo with one face among the candidates"
    return picked


def test_real_photo_answer_matches_predict_path_and_the_player(real_model, photos):
    client = create_app(real_model).test_client()
    for path, player in photos:
        r = post_file(client, path.read_bytes(), path.name)
        assert r.status_code == 200, r.json
        from vision_lib.plotting import display_name, with_words

        # what `vision-lib predict --json` prints
        expected = with_words(real_model.predict_path(path), len(real_model.classes_))
        assert r.json == {**expected, "path": path.name}
        assert r.json["answer"].startswith(display_name(player))
        assert r.json["label"] == player, f"held-out {path.name}: model says {r.json}"
        assert len(r.json["faces"]) == 1


def test_real_model_photo_without_a_face(real_model):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    r = post_file(create_app(real_model).test_client(), encode(noise, "PNG"), "noise.png")
    assert r.status_code == 200
    assert r.json == {"path": "noise.png", "label": None, "faces": [], "answer": "No face found in this photo"}


def test_real_server_under_concurrent_load(real_model, photos):
    """waitress + the real model: 4 clients at once get the same answers as one at a time."""
    bodies = [(p.name, p.read_bytes()) for p, _ in photos]
    with _serve_support.threaded_server(create_app(real_model)) as server:
        url = f"http://127.0.0.1:{server.effective_port}/api/classify"

        def one(i: int):
            name, data = bodies[i % len(bodies)]
            req = urllib.request.Request(f"{url}?filename={name}", data=data, headers={"Content-Type": "image/jpeg"})
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read())

        alone = [one(i) for i in range(len(bodies))]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(one, range(8)))
    assert all(status == 200 for status, _ in alone + together)
    for i, (_, answer) in enumerate(together):
        assert answer == alone[i % len(bodies)][1]


# --------------------------------------------------------------------------- CLI
def test_cli_serve_refuses_a_missing_model(tmp_path):
    from vision_lib.cli import main

    assert main(["serve", "--model", str(tmp_path / "nope.pkl")]) == 2


def test_cli_serve_help_does_not_import_tensorflow():
    code = ("import sys; from vision_lib.cli import build_parser; "
            "build_parser().parse_args(['serve', '--model', 'm.pkl']); "
            "import vision_lib.serve; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- warm-up (issue 36)
def test_warm_up_runs_the_model_on_a_photo_with_a_face(caplog):
    from vision_lib import detect_faces
    from vision_lib.serve import warm_up

    model = RecordingModel()
    assert warm_up(model) == [1, 1] and len(model.images) == 2
    one, two = model.images
    assert one.dtype == np.uint8 and one.shape == (512, 512, 3) and one.std() > 20  # not a grey square
    assert two.shape == (512, 1024, 3)
    # The default detector finds the faces, so the descriptor runs (and loads) during the warm-up,
    # on batches of two sizes.
    assert len(detect_faces(one)) == 1 and len(detect_faces(two)) == 2

    class Blind(RecordingModel):
        def predict_image(self, image):
            return {"label": None, "faces": []}

    with caplog.at_level("WARNING", logger="vision_lib.serve"):
        assert warm_up(Blind()) == [0, 0]
    assert "found no face" in caplog.text
