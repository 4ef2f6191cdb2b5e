"""`vision-lib present`: offline decks from executed notebooks, checked in headless Chromium."""
from __future__ import annotations

import base64
import io as stdio
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from vision_lib import present as P


def _png(seed: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(np.random.default_rng(seed).normal(size=20))
    buf = stdio.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _executed(path: Path, *, metadata: bool) -> Path:
    """A small notebook as papermill leaves it: code with outputs (a figure, text, stderr)."""
    v = nbformat.v4
    cells = [
        v.new_markdown_cell("# Faces found"),
        v.new_code_cell("secret_code_line = 1", outputs=[
            v.new_output("stream", name="stderr", text="TensorFlow start-up noise\n"),
            v.new_output("display_data", data={"image/png": _png(0), "text/plain": "<Figure>"})]),
        v.new_markdown_cell("## Headline numbers"),
        v.new_code_cell("print(0.98)", outputs=[v.new_output("stream", name="stdout", text="coverage 0.98\n")]),
        v.new_markdown_cell("## A second figure"),
        v.new_code_cell("plot()", outputs=[v.new_output("display_data", data={"image/png": _png(1)})]),
        v.new_markdown_cell("speaker notes"),
    ]
    if metadata:
        kinds = ["slide", "-", "slide", "-", "subslide", "-", "notes"]
        for cell, kind in zip(cells, kinds):
            cell.metadata["slideshow"] = {"slide_type": kind}
    cells[3].metadata["tags"] = [P.HEADLINE_TAG]
    cells[5].metadata["tags"] = [P.FIGURE_TAG]
    nbformat.write(v.new_notebook(cells=cells), path)
    return path


@pytest.mark.parametrize("metadata", [True, False])
def test_slides_hide_code_and_stderr(tmp_path, metadata):
    nb = nbformat.read(_executed(tmp_path / "01_x.ipynb", metadata=metadata), as_version=4)
    slides = P.notebook_slides(nb)
    assert len(slides) == 3
    page = P.deck_html(slides, "t")
    assert "secret_code_line" not in page and "start-up noise" not in page
    assert "speaker notes" not in page if metadata else "speaker notes" in page
    assert page.count("<img src='data:image/png;base64,") == 2 and "coverage 0.98" in page
    assert "http://" not in page and "https://" not in page


def test_present_writes_decks_and_summary_and_refuses_to_overwrite(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    _executed(reports / "01_a.ipynb", metadata=True)
    _executed(reports / "02_b.ipynb", metadata=False)
    written = P.present(reports)
    assert [p.name for p in written] == ["01_a.html", "02_b.html", "index.html"]
    summary = written[-1].read_text()
    assert summary.count("coverage 0.98") == 2 and summary.count("data:image/png") == 2
    with pytest.raises(FileExistsError):
        P.present(reports)
    P.present(reports, overwrite=True)
    with pytest.raises(FileNotFoundError, match="vision-lib notebooks"):
        P.present(tmp_path / "empty")


def test_present_command(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    _executed(reports / "01_a.ipynb", metadata=True)
    out = subprocess.run([sys.executable, "-m", "vision_lib", "present", "--reports", str(reports)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (reports / "slides" / "index.html").is_file() and "1 decks" in out.stdout


@pytest.mark.browser
def test_deck_opens_advances_and_shows_figures_offline(tmp_path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian chromium is not installed: run `make browser` (which `make test` runs first)")
    from playwright.sync_api import sync_playwright

    reports = tmp_path / "reports"
    reports.mkdir()
    _executed(reports / "01_a.ipynb", metadata=True)
    deck = P.present(reports)[0]
    attempted = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 700})

            def block(route):
                attempted.append(route.request.url)
                route.abort()

            page.route(lambda url: not url.startswith("file:"), block)
            page.goto(deck.as_uri())
            visible = "document.querySelector('section.current').id"
            assert page.evaluate(visible) == "s1"
            assert page.locator("#counter").inner_text() == "1 / 3"
            assert page.evaluate("document.querySelector('section.current img').naturalWidth") > 0
            page.keyboard.press("ArrowRight")
            assert page.evaluate(visible) == "s2"
            page.click("#next")
            assert page.evaluate(visible) == "s3"
            assert page.evaluate("document.querySelector('section.current img').naturalWidth") > 0
            page.keyboard.press("ArrowLeft")
            assert page.locator("#counter").inner_text() == "2 / 3"
        finally:
            browser.close()
    assert attempted == []
