"""`vision-lib present`: offline decks and the summary page, from small generated executed notebooks
(nbformat cells with a real matplotlib PNG output), checked as HTML and in headless Chromium with
every non-file request aborted."""
from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from vision_lib import cli
from vision_lib.present import GENERATOR, build_presentation, notebook_deck

sys.path.insert(0, str(Path(__file__).parent))

SECRET_CODE = "hidden_code_token_4711"


def _png(colour: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.bar([1, 2, 3], [3, 1, 2], color=colour)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _slide(kind: str) -> dict:
    return {"slideshow": {"slide_type": kind}}


def _executed(title: str, colour: str, *, slideshow: bool = True) -> nbformat.NotebookNode:
    """A small notebook as papermill leaves it: markdown, code with outputs, tags and slide metadata."""
    md = (lambda src, kind, **kw: new_markdown_cell(src, **{"metadata": _slide(kind) if slideshow else {}, **kw}))
    code = new_code_cell(f"{SECRET_CODE} = 1\nplot()", metadata={"tags": ["key-figure"],
                                                                 **(_slide("-") if slideshow else {})})
    code.outputs = [new_output("display_data", data={"image/png": _png(colour), "text/plain": "<Figure>"}),
                    new_output("stream", name="stderr", text="I0000 port.cc:153] oneDNN custom operations\n")]
    table = new_code_cell("table()", metadata={"tags": ["headline"], **(_slide("-") if slideshow else {})})
    table.outputs = [new_output("execute_result", execution_count=3, data={
        "text/html": "<table><tr><th>k</th><th>PSNR</th></tr><tr><td>16</td><td>31.2</td></tr></table>"
                     '<script src="https://cdn.example.com/x.js"></script>',
        "text/plain": "..."})]
    params = new_code_cell("seed = 0", metadata={"tags": ["parameters"], **(_slide("skip") if slideshow else {})})
    cells = [md(f"# {title}\nIntro text for the notebook only.", "slide"), params,
             md("## A figure\n![remote](https://example.com/logo.png)", "slide", metadata={
                 "tags": ["slide-text"], **(_slide("slide") if slideshow else {})}), code,
             md("## Numbers", "slide"), table, md("speaker notes", "notes")]
    nb = new_notebook(cells=cells)
    nb.metadata["papermill"] = {"exception": None}
    return nb


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    nbformat.write(_executed("01 · First", "tab:blue"), folder / "01_first.ipynb")
    nbformat.write(_executed("02 · Second", "tab:orange", slideshow=False), folder / "02_second.ipynb")
    return folder


def test_deck_follows_slide_metadata_and_hides_code_stderr_and_notes():
    deck = notebook_deck(_executed("01 · First", "tab:blue"), "01_first")
    assert deck.title == "01 · First"
    assert len(deck.slides) == 3  # title, figure, numbers; skip and notes cells left out
    html = "".join(deck.slides)
    assert SECRET_CODE not in html and "seed = 0" not in html
    assert "oneDNN" not in html and "speaker notes" not in html
    assert "Intro text" not in html  # prose stays in the notebook: a markdown cell gives its heading
    assert "data:image/png;base64," in deck.slides[1]
    assert len(deck.figures) == 1 and "<td>31.2</td>" in deck.headlines[0]


def test_deck_without_metadata_splits_at_headings_and_drops_remote_references():
    deck = notebook_deck(_executed("02 · Second", "tab:orange", slideshow=False), "02_second")
    assert len(deck.slides) == 3 and "speaker notes" not in deck.slides[-1]
    html = "".join(deck.slides)
    assert "example.com" not in html and "<script" not in html
    assert "[image left out offline: remote]" in deck.slides[1]


def test_build_writes_decks_and_summary_and_never_replaces_a_foreign_file(reports, tmp_path):
    decks, summary = build_presentation(reports)
    assert [d.path.name for d in decks] == ["01_first.html", "02_second.html"]
    page = summary.read_text()
    assert page.count("data:image/png;base64,") == 2 and page.count("<td>31.2</td>") == 2
    assert 'href="01_first.html"' in page
    build_presentation(reports)  # its own files are rebuilt
    foreign = reports / "slides" / "01_first.html"
    foreign.write_text("my notes")
    with pytest.raises(FileExistsError):
        build_presentation(reports)
    assert foreign.read_text() == "my notes"
    build_presentation(reports, force=True)
    assert GENERATOR in foreign.read_text()
    with pytest.raises(FileNotFoundError, match="vision-lib notebooks"):
        build_presentation(tmp_path / "empty")


def test_cli_present(reports, tmp_path, capsys):
    assert cli.main(["present", "--reports", str(reports), "--out", str(tmp_path / "decks")]) == 0
    out = capsys.readouterr().out
    assert "01_first.html: 3 slides" in out and (tmp_path / "decks" / "index.html").is_file()


@pytest.mark.browser
def test_deck_offline_in_chromium(reports):
    from playwright.sync_api import sync_playwright
    from test_serve_browser import CHROMIUM_FLAGS, chromium_path

    decks, summary = build_presentation(reports)
    attempted = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 700}, offline=True)

            def local_only(route):
                if route.request.url.startswith(("file:", "data:")):
                    route.continue_()
                else:
                    attempted.append(route.request.url)
                    route.abort()

            context.route("**/*", local_only)
            context.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else attempted.append(r.url))
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(decks[0].path.resolve().as_uri())
            assert page.locator("#counter").inner_text() == "1 / 3"
            assert page.locator(".slide.current h1").inner_text() == "01 · First"
            page.keyboard.press("ArrowRight")
            assert page.locator("#counter").inner_text() == "2 / 3"
            widths = page.eval_on_selector_all(".slide.current img", "els => els.map(e => e.naturalWidth)")
            assert widths and all(w > 0 for w in widths)
            page.click("#next")
            assert page.locator(".slide.current").inner_text().count("31.2") == 1
            page.keyboard.press("ArrowLeft")
            assert page.locator("#counter").inner_text() == "2 / 3"
            page.goto(summary.resolve().as_uri())
            widths = page.eval_on_selector_all(".figures img", "els => els.map(e => e.naturalWidth)")
            assert len(widths) == 2 and all(w > 0 for w in widths)
            page.click('a[href="02_second.html"]')
            assert page.locator("#counter").inner_text() == "1 / 3"
            assert not errors, errors
        finally:
            browser.close()
    assert attempted == [], f"the deck tried to fetch {attempted}"


def test_key_numbers_is_a_short_table_not_a_dict():
    import numpy as np

    from vision_lib.present import key_numbers

    t = key_numbers({"photos": 120, "coverage": {"haar": 0.7123456, "mtcnn": np.float64(0.98765)}, "ok": True,
                     "accuracy": None, "recall": float("nan")})
    assert t.rows == [("photos", "120"), ("coverage · haar", "0.712"), ("coverage · mtcnn", "0.988"), ("ok", "True"),
                      ("accuracy", "–"), ("recall", "–")]
    page = t._repr_html_()
    assert page.count("<tr") == 7 and "{" not in repr(t) and "None" not in repr(t)
    assert page.count("coverage") == 1 and '<td style="padding-left:1.8em">haar</td><td>0.712</td>' in page


def _crowded(folder: Path) -> Path:
    """A notebook written as prose, with a repr, a path and a tall table on its slides."""
    prose = " ".join(["This slide carries the notebook's whole paragraph instead of one point."] * 12)
    text = new_markdown_cell(f"## Too much\n{prose}", metadata={"tags": ["slide-text"], **_slide("slide")})
    rows = "".join(f"<tr><td>{i}</td><td>{i * i}</td></tr>" for i in range(40))  # 80 words, too tall
    table = new_code_cell("big()", metadata=_slide("slide"))
    table.outputs = [new_output("execute_result", execution_count=1, data={"text/html": f"<table>{rows}</table>"})]
    repr_cell = new_code_cell("model", metadata=_slide("slide"))
    repr_cell.outputs = [new_output("execute_result", execution_count=2, data={
        "text/html": "<p>FaceClassifier(6 people, detector='yunet') saved in /tmp/vision_lib_01_x/model.pkl</p>"})]
    printed = new_code_cell("print(model)", metadata=_slide("-"))
    printed.outputs = [new_output("stream", name="stdout", text="FaceClassifier(6 people, detector='yunet')\n")]
    nb = new_notebook(cells=[new_markdown_cell("# 03 · Crowded", metadata=_slide("slide")), text, table,
                             repr_cell, printed])
    nbformat.write(nb, folder / "03_crowded.ipynb")
    return folder


@pytest.mark.browser
def test_decks_fit_1280x720_and_the_checker_finds_crowded_slides(reports):
    from _deck_check import check_decks

    decks, _ = build_presentation(reports)
    assert check_decks([d.path for d in decks]) == []
    decks, _ = build_presentation(_crowded(reports))
    problems = check_decks([decks[-1].path])
    assert any("03_crowded.html#2: " in p and "words" in p for p in problems), problems
    assert any("03_crowded.html#3: overflows" in p for p in problems), problems
    assert any("03_crowded.html#4: a local path" in p for p in problems), problems
    assert any("03_crowded.html#4: a raw repr" in p for p in problems), problems
    assert "print(model)" not in decks[-1].path.read_text()  # printed text stays in the notebook
    assert len(problems) == 4, problems
