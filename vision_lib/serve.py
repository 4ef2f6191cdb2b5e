"""Web app: drop a photo on a page and see who it is (``vision-lib serve``).

:func:`create_app` wraps any model with a ``predict_image(image_rgb) -> dict`` method (a bundle from
``vision-lib train``) in a Flask app:

- ``GET /`` serves one self-contained page (HTML, CSS and JS from ``vision_lib/static``, no CDN).
- ``POST /api/classify`` takes a photo as the multipart field ``file``, a JSON body
  ``{"image": "data:image/jpeg;base64,...", "filename": "x.jpg"}`` or a raw ``image/*`` body,
  and answers the same object as ``vision-lib predict --json`` for one photo:
  ``{"path": <file name>, "label", "faces": [{"box", "label", "probability", "verdict",
  "stranger_rate"}, ...]}`` (an unknown face has no probability; docs/openset.md).
- ``GET /api/model`` lists who the model knows (``people``: ``label`` and readable ``name``).
- Bad input is answered with JSON ``{"error": message}``: 400 when the body is not a decodable
  photo, 413 when the photo is above the upload limit, 404/405 for wrong routes; never a 5xx.
  Error replies name no server path and carry no traceback.
- Uploads stay in memory (never written to disk by the app); every answer carries
  :data:`SECURITY_HEADERS` (no sniffing, a content security policy the page satisfies, no framing).
- :func:`serve` binds to 127.0.0.1 unless told otherwise, and warns when it listens beyond this machine.

:func:`serve` loads the model once, warms it up and runs it under waitress (threaded WSGI server);
predictions go through one lock because the detector's and descriptor's models (OpenCV,
TensorFlow, dlib, whichever the bundle's recipe uses) are not documented as thread-safe, while
decoding, encoding and HTTP handling stay concurrent.
"""
from __future__ import annotations

import base64
import binascii
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .io import ImageError, load_image_bytes
from .plotting import display_name  # also the page's names: one rule for "Leo Messi"

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Slack for multipart headers / JSON keys around the photo itself.
_ENVELOPE_BYTES = 64 * 1024


#: Sent with every answer. The page (vision_lib/static) has no inline script or style and loads nothing
#: from elsewhere, so it runs under ``'self'``; the photo preview is a ``blob:`` URL; the boxes are
#: positioned through ``element.style`` (CSSOM), which ``style-src 'self'`` allows.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "Cross-Origin-Opener-Policy": "same-origin",
}


#: Largest photo the web app decodes, in megapixels: a small PNG of flat colour can hold 100+ MP, and
#: each request decodes outside the model lock, so the byte limit alone does not bound memory or time.
WEB_MAX_MEGAPIXELS = 50


def create_app(model: Any, max_upload_mb: float = 10, max_megapixels: float = WEB_MAX_MEGAPIXELS
               ) -> "flask.Flask":  # noqa: F821
    """A Flask app that classifies uploaded photos with ``model``.

    Args:
        model: anything with ``predict_image(image_rgb) -> {"label": str | None, "faces": [...]}``
            (e.g. ``vision_lib.classify.load_model(path)``). It is called under a lock.
        max_upload_mb: largest photo accepted, in megabytes (10**6 bytes); bigger ones get a 413.
            The same limit holds for a multipart upload and for a base64 data URL (whose body may
            be 4/3 larger).
        max_megapixels: largest photo decoded (width x height / 10**6); bigger ones get a 400
            that says so (a phone's 48 MP photo passes; 50 MP costs ~5 s and ~0.5 GB here).
    """
    from flask import Flask, jsonify, request
    from werkzeug.exceptions import HTTPException

    if max_upload_mb <= 0 or max_megapixels <= 0:
        raise ValueError(f"max_upload_mb and max_megapixels must be positive, got {max_upload_mb}, {max_megapixels}")
    max_pixels = int(max_megapixels * 1_000_000)
    max_bytes = int(max_upload_mb * 1_000_000)
    app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.request_class = _in_memory_request_class()
    # The request body may carry the photo as base64 (4/3 larger) plus an envelope.
    app.config["MAX_CONTENT_LENGTH"] = math.ceil(max_bytes * 4 / 3) + _ENVELOPE_BYTES
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    app.config["VISION_LIB_MAX_UPLOAD_BYTES"] = max_bytes
    app.json.sort_keys = False
    predict = _locked(model.predict_image)

    def error(status: int, message: str):
        return jsonify({"error": message}), status

    def too_large() -> tuple:
        return error(413, f"photo too large: the limit is {max_upload_mb:g} MB")

    @app.after_request
    def headers(response):
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"  # answers about a person's photo
        return response

    @app.get("/")
    def index():
        return app.send_static_file("index.html")

    @app.get("/api/health")
    def health():
        return jsonify({"status": "ok", "max_upload_mb": max_upload_mb})

    @app.get("/api/model")
    def about_model():
        return jsonify(model_record(model))

    @app.post("/api/classify")
    def classify():
        name, data = _read_upload(request)
        if len(data) > max_bytes:
            return too_large()
        image = load_image_bytes(data, name=name, max_pixels=max_pixels)
        result = predict(image)
        return jsonify(prediction_record(name, result))

    if isinstance(model, CollectionModel):
        _collection_routes(app, model, error)

    @app.errorhandler(_BadUpload)
    def bad_upload(exc: "_BadUpload"):
        return error(400, str(exc))

    @app.errorhandler(ImageError)
    def bad_image(exc: ImageError):
        return error(400, f"not a usable photo: {exc.reason}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return too_large()
        return error(exc.code or 400, exc.description or exc.name)


    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # A bug on our side (not bad input): log it, answer JSON rather than an HTML page.
        log.exception("classify failed")
        return error(500, f"internal error: {type(exc).__name__}")

    return app


def prediction_record(name: str, result: dict) -> dict:
    """The JSON object for one photo, as ``vision-lib predict --json`` prints it."""
    return _jsonable({"path": name, "label": result.get("label"), "faces": result.get("faces", [])})


def model_record(model: Any) -> dict:
    """Who the model knows (``label`` and readable ``name``) and its open-set rule, for the page."""
    labels = [str(c) for c in getattr(model, "classes_", [])]
    rule = getattr(model, "openset_", None)
    out = {"people": [{"label": c, "name": display_name(c)} for c in labels],
           "far": None if rule is None else round(float(rule.far_), 4)}
    if getattr(model, "people", None) is not None:
        out["collection"] = True  # the page then says "not anyone in this collection"
    return out


# --------------------------------------------------------------------------- a face collection (issue 33)
#: Photos of a person shown in the strip under each face; longest side of their thumbnails, in pixels.
STRIP_PHOTOS = 12
THUMB_PIXELS = 160


class CollectionModel:
    """A face collection (and, optionally, a trained model) behind the app's ``predict_image``.

    Each face of the photo gets the collection's answer (:meth:`~vision_lib.collection.Collection.search`):
    ``person``, ``name``, ``stranger_rate`` and ``photos``, the ids of up to :data:`STRIP_PHOTOS`
    other photos of that person (best matches first; the nearest faces' photos for a face of nobody
    in the collection), thumbnails of which ``GET /api/photo/<id>/thumb`` serves. Without ``model``
    the label is the person's name (``person N`` when unnamed); with one, the model names the face
    (its label and probability) and the collection's answer comes with it (the collection face of
    the same box, by overlap). All calls are serialised by the app's lock (one SQLite connection)."""

    def __init__(self, people, model: Any = None):
        self.people, self.model = people, model
        self.lock = threading.RLock()
        if model is not None:
            self.classes_ = list(getattr(model, "classes_", []))
            self.openset_ = getattr(model, "openset_", None)
        else:
            self.classes_ = [p.name for p in people.people(hidden=False) if p.name]
            self.openset_ = None

    def predict_image(self, image: np.ndarray) -> dict:
        with self.lock:
            found = self.people.search(image, top=4 * STRIP_PHOTOS)
            for face in found:
                face["photos"] = self._strip(face)
                del face["matches"]
        if self.model is None:
            faces = [{"box": f["box"], "label": f["name"] or (None if f["person"] is None else f"person {f['person']}"),
                      "probability": None, "verdict": "known" if f["person"] is not None else "unknown",
                      **{k: f[k] for k in ("stranger_rate", "person", "name", "distance", "photos")}} for f in found]
            label = next((f["label"] for f in faces if f["label"] is not None), None)
            return {"label": label, "faces": faces}
        result = self.model.predict_image(image)
        for face in result.get("faces", []):
            best = max(found, key=lambda f: _overlap(face["box"], f["box"]), default=None)
            if best is not None and _overlap(face["box"], best["box"]) >= 0.3:
                face.update(collection={k: best[k] for k in ("person", "name", "stranger_rate")}, photos=best["photos"])
        return result

    def _strip(self, face: dict) -> list[dict]:
        """The photos for the strip under ``face``: its person's (best matches first, then the others), or the nearest."""
        person = face["person"]
        seen, out = set(), []
        for m in face["matches"]:
            if (person is None or m["person"] == person) and m["photo"] not in seen:
                seen.add(m["photo"])
                out.append({"id": m["photo"], "source": m["source"], "distance": m["distance"]})
        if person is not None and len(out) < STRIP_PHOTOS:
            rows = self.people.store.con.execute(
                "SELECT f.photo, p.path FROM faces f JOIN photos p ON p.id = f.photo WHERE f.person = ? "
                "GROUP BY f.photo ORDER BY MIN(f.id) LIMIT ?", (int(person), 2 * STRIP_PHOTOS)).fetchall()
            out += [{"id": int(i), "source": src, "distance": None} for i, src in rows if i not in seen]
        return out[:STRIP_PHOTOS]

    def thumbnail(self, photo: int) -> bytes:
        """A JPEG thumbnail of photo ``photo``, made from the original (read, never written);
        ``ValueError`` for an id that is not a photo of the collection or a file outside its folder."""
        from io import BytesIO

        from PIL import Image

        from .io import load_image

        with self.lock:
            path = self.people.photo_path(photo)  # only ever inside the folder the photo was added from
        small = Image.fromarray(load_image(path))
        small.thumbnail((THUMB_PIXELS, THUMB_PIXELS))
        buf = BytesIO()
        small.save(buf, "JPEG", quality=85)
        return buf.getvalue()


def _overlap(a, b) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1)


def _collection_routes(app, model: CollectionModel, error) -> None:
    """``GET /api/photo/<id>/thumb``: photos addressed by id only (no path ever comes from a request)."""
    from flask import Response

    from .io import ImageError

    @app.get("/api/photo/<int:photo>/thumb")
    def thumbnail(photo: int):
        try:
            data = model.thumbnail(photo)
        except (ValueError, ImageError, OSError):  # not a photo of the collection, outside its folder, gone
            return error(404, "no such photo")
        return Response(data, mimetype="image/jpeg")


def make_server(app, host: str = "127.0.0.1", port: int = 8000, threads: int = 4):
    """A waitress server for ``app`` (not yet running: call ``.run()``; ``.effective_port`` is bound).

    waitress buffers whole request bodies before the app sees them, so it cuts absurd bodies itself
    (above 4x the app's limit, with its own 413); anything smaller gets the app's JSON 413.
    """
    from waitress import create_server

    limit = app.config.get("MAX_CONTENT_LENGTH") or 16 * 2**20
    return create_server(app, host=host, port=port, threads=threads, max_request_body_size=4 * limit,
                         ident="vision-lib", clear_untrusted_proxy_headers=True)


def serve(model_path: str | os.PathLike | None, host: str = "127.0.0.1", port: int = 8000,
          max_upload_mb: float = 10, threads: int = 4, max_megapixels: float = WEB_MAX_MEGAPIXELS,
          on_ready: Callable[[str], None] | None = None, db: str | os.PathLike | None = None) -> None:
    """Load the bundle at ``model_path`` once and serve the app with waitress until interrupted.

    Args:
        model_path: a bundle saved by ``vision-lib train`` (None: with ``db``, the collection alone names faces).
        db: a face collection (``vision-lib index``): each face also gets its person there and a
            strip of the other photos of that person (:class:`CollectionModel`).
        host, port: where to listen (port 0 picks a free port; the URL is passed to ``on_ready``).
        max_upload_mb: largest photo accepted.
        max_megapixels: largest photo decoded (see :func:`create_app`).
        threads: waitress worker threads (requests beyond this wait in its queue).
        on_ready: called with the URL once the model is warm and the socket is listening
            (default: print it).
    """
    from .classify import load_model

    warn_if_exposed(host)
    if model_path is None and db is None:
        raise ValueError("give a model (--model) or a face collection (--db), or both")
    model = None if model_path is None else load_model(model_path)
    if db is not None:
        from .collection import Collection

        people = Collection(db)
        people.store  # noqa: B018 (a missing file: one clear error, nothing created)
        model = CollectionModel(people, model)
    # The first prediction loads the recipe's models and builds their graphs: pay for it before the first user.
    model.predict_image(np.full((256, 256, 3), 128, dtype=np.uint8))
    server = make_server(create_app(model, max_upload_mb=max_upload_mb, max_megapixels=max_megapixels), host, port, threads)
    url = f"http://{_url_host(host)}:{server.effective_port}/"
    what = " and ".join(f"{k} {v}" for k, v in (("model", model_path), ("collection", db)) if v is not None)
    (on_ready or (lambda u: print(f"vision-lib serve: {what} on {u}", flush=True)))(url)
    try:
        server.run()
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        pass
    finally:
        server.close()


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def warn_if_exposed(host: str) -> bool:
    """Warn (stderr) when ``host`` makes the app reachable from other machines; returns whether it did.
    The app has no login and no TLS: anyone who can reach the port can send photos."""
    if is_loopback(host):
        return False
    import sys

    where = "every network interface" if host in ("0.0.0.0", "::", "") else host
    print(f"vision-lib serve: warning: listening on {where}, reachable from other machines; the app has no "
          "login and no TLS. Use --host 127.0.0.1 (the default) unless that is what you want.",
          file=sys.stderr, flush=True)
    return True


# --------------------------------------------------------------------------- helpers
def _in_memory_request_class():
    """Flask's request, but a multipart file part is held in memory: werkzeug would spool one over
    500 KB to a temporary file. Bodies are bounded by MAX_CONTENT_LENGTH, so memory is too."""
    from io import BytesIO

    from flask import Request

    class InMemoryRequest(Request):
        def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
            return BytesIO()

    return InMemoryRequest


class _BadUpload(ValueError):
    """The request does not carry a photo in a form we accept."""


def _read_upload(request) -> tuple[str, bytes]:
    """``(file name, raw bytes)`` from a multipart field ``file``, a JSON data URL or a raw body."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        try:
            files = request.files
        except ValueError:  # the parser on a malformed body (a part cut short); the text may quote it
            raise _BadUpload("malformed multipart body") from None
        if "file" not in files:
            raise _BadUpload('no photo: send the multipart field "file"')
        upload = files["file"]
        return _safe_name(upload.filename or "upload"), upload.read()
    if mimetype.startswith("image/") or mimetype == "application/octet-stream":
        # curl --data-binary @photo.jpg -H "Content-Type: image/jpeg" (name from ?filename=)
        return _safe_name(request.args.get("filename", "upload")), request.get_data()
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise _BadUpload('send a photo as multipart field "file" or as JSON {"image": "data:image/...;base64,..."}')
    value = body.get("image", body.get("file"))
    if not isinstance(value, str) or not value:
        raise _BadUpload('JSON body needs "image": a base64 data URL (data:image/...;base64,...)')
    name = body.get("filename") if isinstance(body.get("filename"), str) else "upload"
    return _safe_name(name), _decode_data_url(value)


def _decode_data_url(value: str) -> bytes:
    if value.startswith("data:"):
        header, sep, payload = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise _BadUpload("data URL must be base64-encoded (data:<type>;base64,<data>)")
    else:
        payload = value  # plain base64 is accepted too
    try:
        return base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _BadUpload("invalid base64 in the data URL") from None


def _safe_name(name: str) -> str:
    # Only the base name is echoed back (never a client's folder layout).
    return Path(name.replace("\\", "/")).name[:255] or "upload"


def _locked(fn: Callable) -> Callable:
    lock = threading.Lock()

    def call(*args, **kwargs):
        with lock:
            return fn(*args, **kwargs)

    return call


def _jsonable(obj):
    """numpy scalars/arrays and tuples inside a prediction -> plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


#: The public names of this module.
__all__ = ["STATIC_DIR", "WEB_MAX_MEGAPIXELS", "STRIP_PHOTOS", "THUMB_PIXELS", "CollectionModel", "create_app",
           "prediction_record", "make_server", "serve"]
