"""The notebook widgets as a presenter uses them: JupyterLab in headless Chromium, driven by Playwright.

A small generated notebook (generated photos, a generated names table) is opened in a real
JupyterLab server started for the test; its cells are run from the Run menu; the test then clicks
and types in the widgets as a person would and reads what the page shows: photo sizes on the page
against the images' own sizes, the "working" state, refusals under the namer's grid, the saved
table (read back by ``naming.load_names``), and how long a cluster switch and an explorer change
take on the page (printed; asserted loosely, since this machine's load decides the exact figure:
the targets are 0.2 s and 0.3 s). ``VISION_LIB_SCREENSHOTS=DIR`` keeps screenshots to look at.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _serve_support  # noqa: E402
from test_serve_browser import CHROMIUM_FLAGS, chromium_path  # noqa: E402

from vision_lib import naming  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
START_SECONDS = 180
WAIT_MS = int(os.environ.get("VISION_LIB_BROWSER_WAIT_MS", 120_000))


def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth colour photo stand-in (gradients and discs: a few thousand colours)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    for _ in range(6):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(30, 120)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


def _notebook(folder: Path) -> Path:
    """Photos, a names table and the notebook that shows both widgets."""
    import nbformat
    from PIL import Image

    photos = folder / "photos"
    photos.mkdir()
    for name, (w, h) in {"wide.png": (768, 512), "tall.png": (512, 768)}.items():
        Image.fromarray(_photo(w, h, len(name))).save(photos / name)
    faces = folder / "faces"
    faces.mkdir()
    rows, boxes = [], {}
    # Cluster 0: 60 faces (two pages), 1: 12, 2: 5 background faces (face 1 of their photo), -1: 3.
    for k, (cluster, n, index) in enumerate(((0, 60, 0), (1, 12, 0), (2, 5, 1), (-1, 3, 0))):
        for i in range(n):
            source = f"person{k}_photo{i:02d}_with_a_long_file_name.jpg"
            if not (faces / source).exists():
                Image.fromarray(_photo(120, 100, 100 * k + i)).save(faces / source)
            rows.append(naming.Row(source, index, cluster))
            boxes[(source, index)] = (20 + 10 * index, 10, 60, 70)
    naming.save_names(rows, folder / "clusters.csv")
    (folder / "boxes.json").write_text(json.dumps([[s, j, list(b)] for (s, j), b in boxes.items()]))
    cells = [
        "import json\nfrom pathlib import Path\nfrom vision_lib.widgets import ClusterNamer, CompressionExplorer",
        "explorer = CompressionExplorer(['photos/wide.png', 'photos/tall.png'], k=8)\nexplorer.widget",
        "explorer.snapshot()",
        "boxes = {(s, j): tuple(b) for s, j, b in json.loads(Path('boxes.json').read_text())}\n"
        "namer = ClusterNamer('clusters.csv', 'faces', boxes=boxes)\nnamer",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path = folder / "widgets.ipynb"
    nbformat.write(nb, path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on loopback with a token, its own config (no news pop-up), this checkout first on
    the kernel's path; yields (base URL, token, notebook folder)."""
    import requests

    folder = tmp_path_factory.mktemp("lab")
    _notebook(folder)
    config = folder / ".jupyter"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(folder / ".runtime"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "TF_CPP_MIN_LOG_LEVEL": "2", "VISION_LIB_CACHE": str(folder / ".cache")}
    log = open(folder / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={folder}", f"--LabApp.workspaces_dir={folder / '.workspaces'}",
         "--LabApp.extension_manager=readonly", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if requests.get(url + "api/status", params={"token": token}, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("JupyterLab did not start:\n" + (folder / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, token, folder
    finally:
        _serve_support.stop(proc)
        log.close()


@pytest.fixture(scope="module")
def notebook_page(lab):
    """The notebook open in JupyterLab with every cell run (Run > Run All Cells)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    url, token, folder = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}lab/tree/widgets.ipynb?token={token}")
        try:
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=WAIT_MS)
            # A fresh JupyterLab may ask which kernel to start: the notebook's own (Python 3).
            dialog = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
            try:
                dialog.wait_for(timeout=20_000)
                dialog.click()
            except PlaywrightTimeout:  # it started the notebook's kernel without asking
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=WAIT_MS)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_selector(".vl-namer .widget-image", timeout=WAIT_MS)
            page.wait_for_selector(".vl-snapshot img", timeout=WAIT_MS)
        except Exception:
            _shot(page, "failed_to_open")
            raise AssertionError("the notebook's widgets did not show; page text:\n"
                                 + page.locator("body").inner_text()[-2000:] + "\nserver log:\n"
                                 + (folder / "lab.log").read_text()[-2000:]) from None
        yield page, folder, errors
        browser.close()


def _shot(target, name: str) -> None:
    """A screenshot of the page or of one element (a locator) into $VISION_LIB_SCREENSHOTS."""
    folder = os.environ.get("VISION_LIB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        if hasattr(target, "page"):  # an element: its top at the top of the window, as a person scrolls to it
            target.evaluate("e => e.scrollIntoView({block: 'start'})")
            target = target.page
        target.screenshot(path=str(Path(folder) / f"{name}.png"))


def _aspect_errors(page, selector: str) -> list[tuple[str, float]]:
    """For each image: (alt or index, relative difference of its drawn aspect ratio from its own)."""
    sizes = page.eval_on_selector_all(selector, """els => els.map((e, i) => {
        const r = e.getBoundingClientRect();
        return [e.alt || String(i), e.naturalWidth, e.naturalHeight, r.width, r.height]; })""")
    assert sizes and all(nw > 0 and w > 0 for _, nw, _, w, _ in sizes), sizes
    return [(alt, abs((w / h) / (nw / nh) - 1)) for alt, nw, nh, w, h in sizes]


def _timed(page, action, done: str, arg=None) -> float:
    """Seconds from ``action()`` until the JavaScript predicate ``done`` holds on the page."""
    t0 = time.perf_counter()
    action()
    page.wait_for_function(done, arg=arg, timeout=WAIT_MS, polling="raf")
    return time.perf_counter() - t0


def test_explorer_in_jupyterlab(notebook_page):
    page, folder, errors = notebook_page
    box = page.locator(".vl-explorer")
    box.scroll_into_view_if_needed()
    _shot(page, "explorer")
    live = _aspect_errors(page, ".vl-explorer .widget-image")
    still = _aspect_errors(page, ".vl-snapshot img")
    print(f"\nexplorer aspect-ratio errors: live {[round(e, 4) for _, e in live]}, "
          f"snapshot {[round(e, 4) for _, e in still]}")
    assert all(e <= 0.02 for _, e in live + still), (live, still)
    # Captions say which photo is which; the snapshot says it is one.
    text = box.inner_text()
    assert "original" in text and "quantized" in text
    assert "Snapshot" in page.locator(".vl-snapshot").inner_text()

    figures = ".vl-explorer .widget-html-content"
    before = page.locator(".vl-explorer").inner_text()
    # First view of the other photo: a visible working state, then the new photo.
    select = box.locator("select").first
    t0 = time.perf_counter()
    select.select_option(label="tall.png")
    page.wait_for_selector(".vl-explorer .vl-busy", timeout=5_000)
    _shot(page, "explorer_working")
    page.wait_for_selector(".vl-explorer .vl-busy", state="detached", timeout=WAIT_MS)
    first_view = time.perf_counter() - t0
    assert page.locator(".vl-explorer").inner_text() != before
    assert all(e <= 0.02 for _, e in _aspect_errors(page, ".vl-explorer .widget-image"))  # portrait too
    # Changes once the photo was seen: new k values (typed in the slider's readout), dithering, photo back.
    times = {}
    readout = box.locator(".widget-readout").first
    for k in (12, 20, 5):
        def type_k(k=k):
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type(str(k))
            page.keyboard.press("Enter")
        times[f"k={k}"] = _timed(page, type_k, "k => [...document.querySelectorAll('.vl-explorer b')]"
                                 ".some(b => b.textContent === 'k=' + k)", k)
    toggle = box.get_by_role("button", name="dithering")
    times["dither"] = _timed(page, toggle.click, "() => document.querySelector('.vl-explorer').innerText"
                             ".includes('colours, dithered)')")
    times["photo seen"] = _timed(page, lambda: select.select_option(label="wide.png"),
                                 "() => document.querySelector('.vl-explorer').innerText.includes('768x512')")
    print(f"explorer: first view of a photo {first_view:.2f} s; changes after: "
          + ", ".join(f"{k} {v:.3f} s" for k, v in times.items()))
    assert max(times.values()) < 3.0, times  # loose: the target (0.3 s) is measured and printed, not timed here
    assert page.locator(figures).count() and not errors, errors

    # A narrow window: the row wraps instead of running off the side.
    page.set_viewport_size({"width": 700, "height": 1000})
    box.scroll_into_view_if_needed()
    tops = page.eval_on_selector_all(".vl-explorer .widget-image", "els => els.map(e => e.getBoundingClientRect().top)")
    overflow = page.eval_on_selector(".vl-explorer", "e => e.scrollWidth - e.clientWidth")
    _shot(page, "explorer_narrow")
    page.set_viewport_size({"width": 1400, "height": 1000})
    assert len(set(round(t) for t in tops)) > 1 and overflow <= 1, (tops, overflow)


def test_cluster_namer_in_jupyterlab(notebook_page):
    page, folder, errors = notebook_page
    namer = page.locator(".vl-namer")
    namer.scroll_into_view_if_needed()
    _shot(namer, "namer")
    status = namer.locator(".vl-status")
    selects = namer.locator("select")
    cluster_menu, with_menu, to_menu = selects.nth(0), selects.nth(1), selects.nth(2)
    labels = [t.replace("\xa0", " ") for t in cluster_menu.locator("option").all_inner_texts()]  # nbsp in options
    assert labels[0].startswith("cluster 0:") and "(60 faces)" in labels[0]  # people first
    assert "mostly background faces" in labels[-2] and labels[-1].startswith("unassigned")  # junk last
    assert str(folder / "names.csv") in namer.inner_text()  # the absolute save path is shown
    # Labels are not cut off: every button's text fits in it.
    cut = page.eval_on_selector_all(".vl-namer button", "els => els.filter(e => e.scrollWidth > e.clientWidth + 1)"
                                    ".map(e => e.textContent)")
    assert not cut, cut
    assert "person0_photo00_with_a_long_file_name.jpg #0" in namer.inner_text()

    def click(name):
        namer.get_by_role("button", name=name, exact=True).click()
        page.wait_for_timeout(300)  # the kernel's answer
        return status.inner_text()

    table_before = (folder / "clusters.csv").read_text()
    assert with_menu.evaluate("e => e.options[e.selectedIndex].text").replace("\xa0", " ") == "(choose a cluster)"
    assert "Not done" in click("Merge it into this cluster")
    assert "Not done" in click("Move ticked faces")  # nothing ticked
    namer.locator(".widget-gridbox input[type=checkbox]").first.check()
    said = click("Move ticked faces")  # ticked, but no target
    assert "Not done" in said and "'to' menu" in said, said
    # "Not a person of interest" on a cluster with a page not yet seen: refused.
    said = click("Not a person of interest")
    assert "Not done" in said and "12 of this cluster's 60 faces were not shown yet" in said, said
    _shot(namer, "namer_refused")
    assert "None" not in cluster_menu.inner_text() and (folder / "clusters.csv").read_text() == table_before

    # Cluster switches: the grid's cells are reused; timed until the first face of the new cluster shows.
    switches = []
    for target, face in [(1, "person1_photo00"), (0, "person0_photo00"), (1, "person1_photo00"),
                         (2, "person2_photo00"), (0, "person0_photo00"), (1, "person1_photo00")]:
        index = next(i for i, t in enumerate(cluster_menu.locator("option").all_inner_texts())
                     if t.replace("\xa0", " ").startswith(f"cluster {target}:"))
        switches.append(_timed(page, lambda: cluster_menu.select_option(index=index),
                               "f => { const c = document.querySelector('.vl-namer .widget-gridbox "
                               ".widget-html-content'); return c && c.textContent.startsWith(f); }", face))
    print(f"\ncluster switch on the page: median {np.median(switches):.3f} s, max {max(switches):.3f} s "
          f"({len(switches)} switches: {[round(s, 3) for s in switches]})")
    assert np.median(switches) < 1.0, switches  # loose; the target (0.2 s) is the printed median

    # Name cluster 1, move a ticked face out, merge with an explicit choice, save: a table train can read.
    namer.locator("input[placeholder=\"person's name\"]").fill("Ann Example")
    assert "Not done" not in click("Name cluster")
    namer.locator(".widget-gridbox input[type=checkbox]").nth(1).check()
    to_menu.select_option(index=1)  # out of every cluster (-1)
    assert "Not done" not in click("Move ticked faces")
    assert to_menu.evaluate("e => e.options[e.selectedIndex].text").replace("\xa0", " ") == "(choose where)"
    with_menu.select_option(index=1)
    assert "Not done" not in click("Merge it into this cluster")
    assert with_menu.evaluate("e => e.options[e.selectedIndex].text").replace("\xa0", " ") == "(choose a cluster)"
    said = click("Save")
    _shot(namer, "namer_saved")
    assert f"to {folder / 'names.csv'}" in said, said
    rows = naming.load_names(folder / "names.csv")  # what `vision-lib train --names` reads first
    assert len(rows) == 80 and all(isinstance(r.cluster, int) for r in rows)
    assert len(naming.named_faces(rows)["Ann Example"]) >= 11
    assert (folder / "clusters.csv").read_text() == table_before and not errors, errors
