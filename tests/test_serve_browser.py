"""End to end: `vision-lib serve` in a subprocess, the page in headless Chromium (Debian's package,
driven by Playwright through ``executable_path``; ``make test`` installs it via ``make browser``).

A held-out footballer photo is dropped on the drop zone (a real DragEvent carrying a DataTransfer
built from the file's bytes) and chosen through the file chooser; the test reads the name the page
shows. The page may only talk to the server: every other request is aborted and reported.
"""
from __future__ import annotations

import base64
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _serve_support  # noqa: E402

from vision_lib.serve import display_name  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STARTUP_SECONDS = 300  # TensorFlow import + model load + warm-up, on a busy 2-core machine
ANSWER_MS = 120_000


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        why = "Debian chromium is not installed: run `make browser` (which `make test` runs first)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):  # CI must run them, not skip silently
            pytest.fail(f"CI is set but {why}")
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def bundle(footballers_dir, tmp_path_factory):
    return _serve_support.trained_bundle(footballers_dir, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def photos(bundle):
    picked = _serve_support.single_face_photos(bundle, 2)
    assert len(picked) == 2, "no held-out photo with one face among the candidates"
    return picked


@pytest.fixture(scope="module")
def server_url(bundle):
    """`vision-lib serve --port 0` in a subprocess; the URL is read from its first line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "vision_lib", "serve", "--model", str(bundle.path), "--host", "127.0.0.1",
           "--port", "0", "--max-upload-mb", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, env=env)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    try:
        while True:
            line = lines.get(timeout=STARTUP_SECONDS)
            if line is None:
                raise AssertionError("server exited before listening:\n" + "".join(seen[-30:]))
            seen.append(line)
            m = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
            if m:
                break
        yield m.group(1)
    finally:
        _serve_support.stop(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    outside, console_errors = [], []

    def only_our_server(route):
        if route.request.url.startswith(server_url):
            route.continue_()
        else:  # offline page: nothing may come from elsewhere (blob: URLs never reach the router)
            outside.append(route.request.url)
            route.abort()

    pg.route("**/*", only_our_server)
    pg.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: console_errors.append(str(exc)))
    pg.goto(server_url)
    yield pg
    context.close()
    assert outside == [], f"the page tried to reach {outside}"
    assert not [e for e in console_errors if "status of 400" not in e], console_errors


# --------------------------------------------------------------------------- helpers
def drop_file(page, data: bytes, name: str, mime: str) -> None:
    """Dispatch dragenter/dragover/drop on the drop zone with a DataTransfer holding the file."""
    page.evaluate(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            const zone = document.getElementById("drop");
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
            }
        }""",
        [base64.b64encode(data).decode(), name, mime],
    )


def wait_for_answer(page) -> str:
    """Wait until the page has finished with the photo; returns its state (done, noface, error)."""
    # A CSS selector, not wait_for_function: Playwright evaluates a string predicate with eval(),
    # which the page's Content-Security-Policy (no 'unsafe-eval') rightly refuses.
    page.wait_for_selector("body[data-state=done], body[data-state=noface], body[data-state=error]",
                           state="attached", timeout=ANSWER_MS)
    return page.evaluate("document.body.dataset.state")


def check_shows_player(page, player: str, tmp_path: Path, shot: str) -> None:
    state = wait_for_answer(page)
    assert state == "done", page.inner_text("#status")
    assert page.get_attribute("#answer", "data-label") == player
    assert page.inner_text("#answer") == display_name(player)  # "Leo Messi", not leo_messi
    assert page.is_visible("#answer") and page.is_visible("#photo")
    assert display_name(player) in page.inner_text("#known")  # who the model knows is listed
    boxes = page.locator(".box")
    assert boxes.count() == 1
    assert re.fullmatch(rf"{display_name(player)} (\d{{1,2}}|>99)%", page.locator(".tag").first.inner_text().strip())
    check_tags_inside_and_apart(page)
    # The box is drawn on the photo, inside it, and is a real rectangle (face-sized, not the photo).
    photo, box = page.locator("#photo").bounding_box(), boxes.first.bounding_box()
    assert box["width"] > 10 and box["height"] > 10
    assert box["width"] * box["height"] < 0.9 * photo["width"] * photo["height"]
    assert photo["x"] - 1 <= box["x"] and box["x"] + box["width"] <= photo["x"] + photo["width"] + 1
    assert photo["y"] - 1 <= box["y"] and box["y"] + box["height"] <= photo["y"] + photo["height"] + 1
    page.screenshot(path=str(tmp_path / shot))


def check_tags_inside_and_apart(page) -> None:
    """Every face label lies inside the photo and no two overlap."""
    photo = page.locator("#photo").bounding_box()
    tags = [page.locator(".tag").nth(i).bounding_box() for i in range(page.locator(".tag").count())]
    assert len(tags) == page.locator(".box").count()
    for t in tags:
        assert photo["x"] - 1 <= t["x"] and t["x"] + t["width"] <= photo["x"] + photo["width"] + 1, (t, photo)
        assert photo["y"] - 1 <= t["y"] and t["y"] + t["height"] <= photo["y"] + photo["height"] + 1, (t, photo)
    for i, a in enumerate(tags):
        for b in tags[:i]:
            apart = (a["x"] + a["width"] <= b["x"] + 0.5 or b["x"] + b["width"] <= a["x"] + 0.5
                     or a["y"] + a["height"] <= b["y"] + 0.5 or b["y"] + b["height"] <= a["y"] + 0.5)
            assert apart, (a, b)


# --------------------------------------------------------------------------- tests
def test_dropping_a_photo_shows_the_player(page, photos, tmp_path):
    path, player = photos[0]
    assert "Drop a photo" in page.inner_text("#drop")
    drop_file(page, path.read_bytes(), path.name, "image/jpeg")
    check_shows_player(page, player, tmp_path, "drop.png")


def test_choosing_a_file_shows_the_player_and_replaces_the_last_answer(page, photos, tmp_path):
    (first, first_player), (second, second_player) = photos
    assert first_player != second_player
    page.set_input_files("#file", str(first))
    check_shows_player(page, first_player, tmp_path, "chooser1.png")
    page.evaluate("document.body.dataset.state = ''")
    with page.expect_file_chooser() as chooser:  # a click anywhere in the drop zone opens it too
        page.click("#drop p:first-child")
    chooser.value.set_files(str(second))
    check_shows_player(page, second_player, tmp_path, "chooser2.png")


def test_two_players_side_by_side_get_one_labelled_box_each(page, photos, tmp_path):
    import io

    import cv2
    from PIL import Image

    from vision_lib.io import load_image

    halves = [load_image(p) for p, _ in photos]
    height = min(h.shape[0] for h in halves)
    halves = [cv2.resize(h, (round(h.shape[1] * height / h.shape[0]), height), interpolation=cv2.INTER_AREA)
              for h in halves]
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(halves, axis=1)).save(buf, "JPEG", quality=92)
    drop_file(page, buf.getvalue(), "two.jpg", "image/jpeg")
    assert wait_for_answer(page) == "done", page.inner_text("#status")
    assert page.inner_text("#status").startswith("2 faces found")
    photo = page.locator("#photo").bounding_box()
    split = photo["x"] + photo["width"] * halves[0].shape[1] / (halves[0].shape[1] + halves[1].shape[1])
    seen = {}
    for i in range(page.locator(".box").count()):
        box = page.locator(".box").nth(i)
        b = box.bounding_box()
        seen[0 if b["x"] + b["width"] / 2 < split else 1] = box.get_attribute("data-label")
    assert seen == {0: photos[0][1], 1: photos[1][1]}
    assert page.get_attribute("#answer", "data-label") in {photos[0][1], photos[1][1]}
    assert page.locator(".box.main").count() == 1
    assert page.locator(".box.main").get_attribute("data-label") == page.get_attribute("#answer", "data-label")
    check_tags_inside_and_apart(page)
    page.screenshot(path=str(tmp_path / "two.png"))


def test_a_stranger_and_a_small_crowded_photo(page, photos, lfw_dir, tmp_path):
    """An LFW photo (150 px, a person the model does not know) is said plainly to be nobody it knows,
    with no percentage; the same photo tiled small with a player keeps its labels apart and inside."""
    import io

    from PIL import Image

    from vision_lib.io import list_images

    stranger = list_images(lfw_dir, recursive=True)[0]
    page.set_input_files("#file", str(stranger))
    assert wait_for_answer(page) == "done", page.inner_text("#status")
    answer = page.inner_text("#answer")
    assert answer.startswith(("Not one of the", "Not sure")) and "%" not in answer
    assert page.get_attribute("#answer", "data-label") == ""
    assert "%" not in page.inner_text("#faces") and "%" not in page.locator(".tag").first.inner_text()
    check_tags_inside_and_apart(page)
    page.screenshot(path=str(tmp_path / "stranger.png"))
    tiles = [Image.open(stranger).convert("RGB").resize((90, 90)), Image.open(photos[0][0]).convert("RGB")]
    tiles[1].thumbnail((140, 90))
    small = Image.new("RGB", (90 + tiles[1].width, 90))
    small.paste(tiles[0], (0, 0))
    small.paste(tiles[1], (90, 0))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=92)
    page.evaluate("document.body.dataset.state = ''")
    drop_file(page, buf.getvalue(), "small.jpg", "image/jpeg")
    assert wait_for_answer(page) in ("done", "noface"), page.inner_text("#status")
    # Both faces are found at this size (the stranger's and the player's): with fewer labels the
    # checks below, "apart" above all, would pass on nothing.
    assert page.locator(".box").count() >= 2, page.inner_text("#status")
    check_tags_inside_and_apart(page)
    page.screenshot(path=str(tmp_path / "small.png"))


def test_no_face_and_error_messages(page, tmp_path):
    from PIL import Image
    import io

    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG")
    drop_file(page, buf.getvalue(), "noise.png", "image/png")
    assert wait_for_answer(page) == "noface"
    assert "No face found" in page.inner_text("#status")
    assert page.is_hidden("#answer") and page.locator(".box").count() == 0

    page.evaluate("document.body.dataset.state = ''")
    drop_file(page, b"this is not a photo", "fake.jpg", "image/jpeg")
    assert wait_for_answer(page) == "error"
    status = page.inner_text("#status")
    assert status.startswith("Error:") and "not a usable photo" in status
    assert page.is_hidden("#answer")
    page.screenshot(path=str(tmp_path / "error.png"))
