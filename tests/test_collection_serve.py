"""`vision-lib serve --db`: a dropped photo's faces with their person in the collection and a strip
of that person's other photos (thumbnails by id, made from the originals, read-only); nothing but
the collection's photos is ever served. Flask's test client, then the page in headless Chromium."""
from __future__ import annotations

import hashlib
import io
import os
import sqlite3
from pathlib import Path

import pytest
from _collection_support import HAVE_REAL, WHY_NOT, named_lfw_collection

from vision_lib import Collection
from vision_lib.cli import main
from vision_lib.serve import THUMB_PIXELS, CollectionModel, create_app

pytestmark = pytest.mark.skipif(not HAVE_REAL, reason=WHY_NOT)


def tree_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix == ".jpg"}


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve_db")
    db, held = named_lfw_collection(tmp)
    return tmp, db, held


@pytest.fixture(scope="module")
def client(collection):
    _, db, _ = collection
    app = create_app(CollectionModel(Collection(db)))
    app.testing = True
    return app.test_client()


def classify(client, photo: Path) -> dict:
    reply = client.post("/api/classify", data={"file": (io.BytesIO(photo.read_bytes()), photo.name)},
                        content_type="multipart/form-data")
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def test_a_dropped_photo_shows_its_person_and_their_other_photos(collection, client):
    tmp, db, held = collection
    before = tree_digests(tmp)
    people = Collection(db)
    df = people.dataframe()
    about = client.get("/api/model").get_json()
    assert about["collection"] is True and sorted(p["label"] for p in about["people"]) == sorted(held)
    found = 0
    for person, photo in held.items():
        answer = classify(client, photo)
        face = max(answer["faces"], key=lambda f: f["box"][2] * f["box"][3])
        if face["name"] != person:
            continue
        found += 1
        assert answer["label"] == person and face["probability"] is None and face["stranger_rate"] is not None
        pid = face["person"]
        ids = [p["id"] for p in face["photos"]]
        assert ids and len(ids) == len(set(ids))
        assert set(ids) <= set(df.loc[(df["person"] == pid).fillna(False), "photo"])  # this person's photos only
        for pid_ in ids:
            reply = client.get(f"/api/photo/{pid_}/thumb")
            assert reply.status_code == 200 and reply.mimetype == "image/jpeg"
            from PIL import Image

            im = Image.open(io.BytesIO(reply.data))
            assert max(im.size) <= THUMB_PIXELS and min(im.size) > 16
            assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert found >= 2, "the held-out photos were not recognised"
    assert tree_digests(tmp) == before  # originals read, never written; no thumbnail left beside them


def test_only_photos_of_the_collection_are_served_and_only_by_id(collection, client, tmp_path):
    tmp, db, _ = collection
    for url in ("/api/photo/999999/thumb", "/api/photo/0/thumb", "/api/photo/-1/thumb", "/api/photo/abc/thumb",
                "/api/photo/1/../../../etc/passwd", "/api/photo/..%2F..%2Fetc%2Fpasswd/thumb",
                "/api/photo/%2Fetc%2Fpasswd/thumb", "/api/photo//etc/passwd/thumb", "/api/photo/1.0/thumb",
                "/static/../../../../etc/passwd", "/api/photo/1/thumb/../../../../etc/passwd"):
        reply = client.get(url)
        assert reply.status_code == 404, url
        assert b"root:" not in reply.data and str(tmp).encode() not in reply.data, url
    # a path outside the collection's folder written into the file by hand, and a photo replaced by a
    # link to a file outside the folder: neither is served
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(next(tmp.rglob("*.jpg")).read_bytes())
    copy = tmp_path / "copy.db"
    con = sqlite3.connect(db)
    con.execute("VACUUM INTO ?", (str(copy),))
    con.close()
    con = sqlite3.connect(copy)
    first, second = [r[0] for r in con.execute("SELECT id FROM photos WHERE status = 'ok' ORDER BY id LIMIT 2")]
    con.execute("UPDATE photos SET path = ? WHERE id = ?", (os.path.relpath(outside, tmp / "a"), first))
    linked = con.execute("SELECT r.path, p.path FROM photos p JOIN roots r ON r.id = p.root WHERE p.id = ?",
                         (second,)).fetchone()
    con.commit()
    con.close()
    app = create_app(CollectionModel(Collection(copy)))
    app.testing = True
    other = app.test_client()
    assert other.get(f"/api/photo/{first}/thumb").status_code == 404
    target = Path(linked[0]) / linked[1]
    saved = target.read_bytes()
    target.unlink()
    target.symlink_to(outside)
    try:
        assert other.get(f"/api/photo/{second}/thumb").status_code == 404
    finally:
        target.unlink()
        target.write_bytes(saved)
    assert other.get(f"/api/photo/{second}/thumb").status_code == 200


def test_with_a_model_too_the_model_names_and_the_collection_shows_the_photos(collection, tmp_path):
    from vision_lib.collection_stages import train_from_collection

    tmp, db, held = collection
    model = train_from_collection(db, far=None, progress=False)
    app = create_app(CollectionModel(Collection(db), model))
    app.testing = True
    client = app.test_client()
    assert client.get("/api/model").get_json()["people"]
    person, photo = sorted(held.items())[0]
    answer = classify(client, photo)
    face = answer["faces"][0]
    assert face["probability"] is not None  # the model's answer
    assert "photos" in face and face["collection"]["person"] is not None


def test_serve_needs_a_model_or_a_collection(tmp_path, capsys):
    assert main(["serve"]) == 2
    assert "--db" in capsys.readouterr().err
    assert main(["serve", "--db", str(tmp_path / "none.db"), "--port", "0"]) == 2
    assert "no such collection" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.browser
def test_the_page_shows_the_person_and_a_strip_of_their_photos(collection, tmp_path):
    """Headless Chromium: choose a held-out photo, the page names the person and shows their photos."""
    import _serve_support
    from test_serve_browser import CHROMIUM_FLAGS, chromium_path, wait_for_answer

    from playwright.sync_api import sync_playwright

    _, db, held = collection
    person, photo = sorted(held.items())[0]
    app = create_app(CollectionModel(Collection(db)))
    with _serve_support.threaded_server(app) as server, sync_playwright() as p:
        url = f"http://127.0.0.1:{server.effective_port}/"
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        outside, errors = [], []
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else (outside.append(r.request.url), r.abort()))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.set_input_files("#file", str(photo))
        assert wait_for_answer(page) == "done", page.inner_text("#status")
        page.wait_for_selector(".strip img", timeout=30_000)
        thumbs = page.locator(".strip img")
        assert thumbs.count() >= 3
        for i in range(thumbs.count()):  # every thumbnail decodes (a broken one would not)
            thumbs.nth(i).scroll_into_view_if_needed()
            assert thumbs.nth(i).evaluate("i => i.decode().then(() => i.naturalWidth)") > 0
        assert "Other photos of this person" in page.inner_text("#faces")
        assert page.inner_text("#answer").replace(" ", "_").lower() == person.lower()
        assert "named people" in page.inner_text("#known")
        page.evaluate("window.scrollTo(0, 0)")
        shot = Path(os.environ.get("VISION_LIB_SCREENSHOTS", tmp_path)) / "serve_collection.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
        assert outside == [] and errors == [], (outside, errors)
