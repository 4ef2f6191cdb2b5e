"""Offline slide decks and a one-page summary from the executed notebooks of a report folder.

``vision-lib notebooks --out reports`` writes executed copies of the suite; :func:`build_presentation`
turns each into a self-contained HTML deck (code hidden, images inlined as data URIs, a few lines of
CSS/JS of our own, nothing fetched when opened) and writes one summary page with the cells tagged
``headline`` (numbers) and ``key-figure`` (figures) of every notebook. See docs/presentation.md.

Slide boundaries come from the cells' ``slideshow.slide_type`` metadata (Jupyter's own slideshow
field, as nbconvert's reveal.js exporter reads it): ``slide``/``subslide`` start a slide, ``skip`` and
``notes`` are left out, ``fragment`` and ``-`` continue the current slide. A notebook without any such
metadata gets a slide per markdown heading.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

#: Marks files written here, so that a rebuild replaces its own output but never a foreign file.
GENERATOR = "vision-lib present"
STARTS = {"slide", "subslide"}
LEFT_OUT = {"skip", "notes"}
HEADLINE, KEY_FIGURE = "headline", "key-figure"
#: A markdown cell tagged so goes on its slide whole; other markdown cells give only their headings.
SLIDE_TEXT = "slide-text"


@dataclass
class Deck:
    """One notebook's deck: its title, slides (HTML fragments) and what goes on the summary page."""
    name: str
    title: str
    slides: list[str]
    headlines: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    failed: bool = False
    path: Path | None = None


# --------------------------------------------------------------------------- cells to HTML
_DANGEROUS = re.compile(r"<(script|iframe|link|object|embed)\b.*?(</\1\s*>|/?>)", re.I | re.S)
_REMOTE = re.compile(r"""\s(src|href|srcset|data)\s*=\s*(["'])\s*(https?:|//)[^"']*\2""", re.I)
_REMOTE_IMG = re.compile(r"""<img\b[^>]*\ssrc\s*=\s*(["'])\s*(https?:|//)[^>]*>""", re.I)


def _offline_img(match: re.Match) -> str:
    alt = re.search(r"""\salt\s*=\s*(["'])(.*?)\1""", match.group(0))
    return f'<span class="offline">[image left out offline: {alt.group(2) if alt else "remote"}]</span>'


def _local_html(text: str) -> str:
    """HTML with scripts/frames removed and every remote reference dropped (a deck must work offline)."""
    return _REMOTE.sub("", _REMOTE_IMG.sub(_offline_img, _DANGEROUS.sub("", text)))


def _markdown(text: str) -> str:
    from nbconvert.filters import markdown2html

    out = markdown2html(text)
    return _local_html(re.sub(r'<a class="anchor-link"[^>]*>.*?</a>', "", out))


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _img(mime: str, data: str, cls: str = "") -> str:
    data = _text(data).replace("\n", "")
    return f'<img class="{cls}" src="data:{mime};base64,{data}" alt="figure">'


def output_html(out: dict, *, deck: bool = False) -> str:
    """One output as HTML; '' for what a page does not show (stderr, progress-bar widgets).

    With ``deck`` only what makes a slide is kept: figures, HTML (tables, static widget copies) and
    markdown; printed text, plain reprs and tracebacks stay in the notebook (an error is one line)."""
    kind = out.get("output_type")
    if kind == "stream":
        if deck or out.get("name") == "stderr":
            return ""
        return f'<pre class="out">{html.escape(_text(out["text"]))}</pre>'
    if kind == "error":
        return f'<pre class="error">{html.escape(out.get("ename", ""))}: {html.escape(out.get("evalue", ""))}</pre>'
    data = out.get("data", {})
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if mime in data:
            return _img(mime, data[mime])
    if "image/svg+xml" in data:
        return f'<div class="svg">{_local_html(_text(data["image/svg+xml"]))}</div>'
    if "application/vnd.jupyter.widget-view+json" in data:
        return ""  # a live widget without a static image (e.g. a tqdm bar): nothing to show offline
    if "text/html" in data:
        return f'<div class="html">{_local_html(_text(data["text/html"]))}</div>'
    if "text/markdown" in data:
        return _markdown(_text(data["text/markdown"]))
    if "text/plain" in data and not deck:
        return f'<pre class="out">{html.escape(_text(data["text/plain"]))}</pre>'
    return ""


def cell_html(cell: dict, *, deck: bool = False) -> str:
    """A markdown cell rendered, or a code cell's outputs (the code itself is never shown).

    With ``deck`` a markdown cell gives only its headings unless it is tagged ``slide-text`` (words
    written for the slide); code cells give what :func:`output_html` keeps for a deck."""
    if cell.get("cell_type") == "markdown":
        source = _text(cell.get("source", ""))
        if deck and SLIDE_TEXT not in _tags(cell):
            source = "\n".join(line for line in source.splitlines() if re.match(r"\s{0,3}#{1,3}\s", line))
        return _markdown(source) if source.strip() else ""
    if cell.get("cell_type") == "code":
        return "".join(output_html(o, deck=deck) for o in cell.get("outputs", []))
    return ""


def _slide_type(cell: dict) -> str:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-")


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


_HEADING = re.compile(r"^(\s*<h[1-6][^>]*>.*?</h[1-6]>\s*)+", re.S)


def _slide(parts: list[str]) -> str:
    """A slide's HTML: its headings and words on top, its figures and tables sharing the rest."""
    words, media = [], []
    for part in parts:
        if part.startswith(("<img", '<div class="svg">', '<div class="html">', '<pre class="error">')):
            media.append(part)
        else:
            words.append(part)
    body = "".join(words)
    return body + (f'<div class="media n{min(len(media), 4)}">{"".join(media)}</div>' if media else "")


def notebook_deck(nb: dict, name: str) -> Deck:
    """Split an executed notebook (an nbformat v4 dict) into slides and summary items."""
    cells = nb.get("cells", [])
    has_metadata = any("slideshow" in c.get("metadata", {}) for c in cells)
    slides: list[list[str]] = []
    headlines, figures = [], []
    title = name
    for cell in cells:
        source = _text(cell.get("source", ""))
        if cell.get("cell_type") == "markdown" and title == name:
            m = re.match(r"\s*#\s+(.+)", source)
            if m:
                title = m.group(1).strip()
        kind = _slide_type(cell)
        tags = _tags(cell)
        if HEADLINE in tags or KEY_FIGURE in tags:
            summary = cell_html(cell, deck=True)
            if HEADLINE in tags and summary:
                headlines.append(summary)
            if KEY_FIGURE in tags:
                figures += re.findall(r'<img [^>]*>|<div class="svg">.*?</div>', summary, re.S)
        if kind in LEFT_OUT or "parameters" in tags:
            continue
        starts = kind in STARTS if has_metadata else (cell.get("cell_type") == "markdown"
                                                      and source.lstrip().startswith("#"))
        if starts or not slides:
            slides.append([])
        # one part per output: a figure and the sentence printed under it go to different places
        parts = ([output_html(o, deck=True) for o in cell.get("outputs", [])] if cell.get("cell_type") == "code"
                 else [cell_html(cell, deck=True)])
        slides[-1] += [part for part in parts if part.strip()]
    failed = bool(nb.get("metadata", {}).get("papermill", {}).get("exception"))
    return Deck(name, title, [_slide(s) for s in slides if s], headlines, figures, failed)


# --------------------------------------------------------------------------- pages
_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 18px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       background: #f4f5f7; }
a { color: #1f5fbf; }
img { max-width: 100%; height: auto; }
pre { white-space: pre-wrap; font: 14px/1.35 ui-monospace, "DejaVu Sans Mono", monospace; background: #fff;
      border-left: 3px solid #c7ccd6; padding: .4em .7em; overflow-x: auto; }
pre.error { border-color: #c0392b; color: #8e1c10; }
table { border-collapse: collapse; font-size: 15px; margin: .5em 0; }
th, td { border-bottom: 1px solid #d9dce3; padding: .2em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
"""

_DECK_CSS = _CSS + """
body { overflow: hidden; }
.slide { display: none; position: absolute; inset: 0 0 56px 0; padding: 3vh 5vw 2vh; overflow: hidden;
         background: #fff; flex-direction: column; font-size: 24px; }
.slide.current { display: flex; }
.slide h1 { font-size: 44px; margin: 18vh 0 .4em; } .slide h2, .slide h3 { font-size: 34px; margin: 0 0 .3em; }
.slide p, .slide li { margin: .2em 0 .4em; max-width: 60em; } .slide ul { margin: 0; }
.slide table { font-size: 20px; } .slide caption { font-weight: 600; padding-bottom: .3em; }
.media { flex: 1 1 0; min-height: 0; display: flex; gap: 1vw; align-items: center; justify-content: center; }
.media > * { flex: 1 1 0; min-width: 0; max-height: 100%; display: flex; flex-direction: column;
             align-items: center; justify-content: center; }
.media > img { object-fit: contain; width: 100%; height: 100%; }
.media .html { overflow: hidden; } .media .html img { max-height: 100%; object-fit: contain; }
/* HTML outputs laid out for a notebook page (a widget's static copy: photos in a wrapping row) keep
   their row on a slide and shrink to fit, instead of wrapping below the screen's edge */
.media .html [style*="flex-wrap"] { flex-wrap: nowrap !important; }
.media .html [style*="flex"] > img { min-width: 0; flex: 0 1 auto; max-height: 56vh; }
.media .html [style*="flex"] > figure { min-width: 0; flex: 0 1 auto; width: auto !important; }
.media .html figure img { width: auto !important; max-width: 100%; max-height: 46vh; }
/* a slide is a still picture anyway: the snapshot's "this is a snapshot" title and fine print stay on the page */
.media .html .vl-snapshot { border: 0 !important; padding: 0 !important; }
.media .html .vl-snapshot > div:first-child, .media .html .vl-snapshot small { display: none; }
nav { position: fixed; left: 0; right: 0; bottom: 0; height: 56px; display: flex; gap: 1em; align-items: center;
      justify-content: center; background: #1d2330; color: #fff; }
nav button { font-size: 20px; padding: .15em 1em; border: 0; border-radius: 4px; cursor: pointer; }
nav a { color: #cfe0ff; position: absolute; left: 1.5em; }
"""

_DECK_JS = """
(function () {
  var slides = document.querySelectorAll('.slide'), counter = document.getElementById('counter'), i = 0;
  function show(n) {
    i = Math.max(0, Math.min(slides.length - 1, n));
    for (var k = 0; k < slides.length; k++) slides[k].classList.toggle('current', k === i);
    slides[i].scrollTop = 0;
    counter.textContent = (i + 1) + ' / ' + slides.length;
    try { history.replaceState(null, '', '#' + (i + 1)); } catch (e) {}
  }
  document.getElementById('prev').onclick = function () { show(i - 1); };
  document.getElementById('next').onclick = function () { show(i + 1); };
  document.addEventListener('keydown', function (e) {
    if (['ArrowRight', 'PageDown', ' '].indexOf(e.key) >= 0) { show(i + 1); e.preventDefault(); }
    else if (['ArrowLeft', 'PageUp'].indexOf(e.key) >= 0) { show(i - 1); e.preventDefault(); }
    else if (e.key === 'Home') show(0);
    else if (e.key === 'End') show(slides.length - 1);
  });
  var start = parseInt((location.hash || '#1').slice(1), 10);
  show(isNaN(start) ? 0 : start - 1);
})();
"""


def _page(title: str, css: str, body: str, script: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="generator" content="{GENERATOR}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title><style>{css}</style></head>\n<body>\n{body}\n"
            + (f"<script>{script}</script>\n" if script else "") + "</body></html>\n")


def deck_html(deck: Deck, summary_href: str = "index.html") -> str:
    """The deck as one self-contained HTML page (arrow keys, space, PageUp/Down, or the buttons)."""
    sections = "\n".join(f'<section class="slide" id="s{i + 1}">{s}</section>' for i, s in enumerate(deck.slides))
    nav = (f'<nav><a href="{summary_href}">summary</a><button id="prev" title="previous (←)">&#9664;</button>'
           f'<span id="counter"></span><button id="next" title="next (→)">&#9654;</button></nav>')
    return _page(deck.title, _DECK_CSS, sections + "\n" + nav, _DECK_JS)


def summary_html(decks: list[Deck], title: str = "vision_lib: results of the run") -> str:
    """One page: per notebook its headline numbers and key figures, with a link to its deck."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for d in decks:
        link = f'<a href="{d.path.name}">slides</a>' if d.path else ""
        status = ' <span class="failed">(the run of this notebook failed)</span>' if d.failed else ""
        parts.append(f'<section class="card"><h2>{html.escape(d.title)}{status}</h2><p>{link}</p>'
                     + "".join(f'<div class="headline">{h}</div>' for h in d.headlines)
                     + ('<div class="figures">' + "".join(d.figures) + "</div>" if d.figures else "")
                     + "</section>")
    css = _CSS + """
body { padding: 1.5em 4vw; } .card { background: #fff; padding: .8em 1.4em; margin: 1em 0; border-radius: 6px; }
.card h2 { margin: .2em 0; } .failed { color: #c0392b; font-size: .7em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures img { max-width: min(100%, 900px); } .headline h1, .headline h2, .headline h3 { font-size: 1.1em; }
"""
    return _page(title, css, "\n".join(parts))


# --------------------------------------------------------------------------- files
def _write(path: Path, text: str, force: bool) -> Path:
    """Write ``text``; an existing file is replaced only when this module wrote it (or ``force``)."""
    if path.exists() and not force and f'content="{GENERATOR}"' not in path.read_text(errors="replace")[:600]:
        raise FileExistsError(f"{path} exists and was not written by {GENERATOR}; pass --force to replace it")
    path.write_text(text, encoding="utf-8")
    return path


def build_presentation(reports: str | os.PathLike, out: str | os.PathLike | None = None, *,
                       force: bool = False) -> tuple[list[Deck], Path]:
    """A deck per executed notebook ``NN_name.ipynb`` of ``reports`` and a summary page ``index.html``,
    written to ``out`` (default ``reports/slides``). Returns the decks and the summary's path."""
    import nbformat

    reports = Path(reports)
    books = sorted(reports.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        raise FileNotFoundError(f"no executed notebooks (NN_name.ipynb) in {reports}: run "
                                f"`vision-lib notebooks --out {reports}` (or `make run`) first")
    out = Path(out) if out is not None else reports / "slides"
    out.mkdir(parents=True, exist_ok=True)
    decks = []
    for book in books:
        deck = notebook_deck(nbformat.read(book, as_version=4), book.stem)
        deck.path = _write(out / f"{book.stem}.html", deck_html(deck), force)
        decks.append(deck)
    return decks, _write(out / "index.html", summary_html(decks), force)



# --------------------------------------------------------------------------- numbers in notebooks
class KeyNumbers:
    """A short two-column table of a (nested) dict of numbers, for a notebook's last cell: floats
    to 3 significant digits, nested keys joined with " · " (instead of a raw dict or JSON), a missing
    value (None, NaN) as "–". Keys are shown as given: write them for a reader, with the
    denominator ("named right (of 309 photos)"), not as variable names."""

    def __init__(self, numbers: dict, title: str | None = None):
        self.numbers = numbers
        self.rows = list(_flatten(numbers))
        self.title = title

    def _repr_html_(self) -> str:
        # A nested dict's label is said once, on a row of its own, its entries indented under it
        # (on a slide, "coverage · yunet", "coverage · mtcnn", ... repeat the label's words).
        def rows(value: dict, depth: int) -> str:
            out = ""
            for k, v in value.items():
                pad = f' style="padding-left:{0.6 + 1.2 * depth:.1f}em"' if depth else ""
                if isinstance(v, dict):
                    out += f'<tr><td colspan="2"{pad}>{html.escape(str(k))}</td></tr>' + rows(v, depth + 1)
                else:
                    out += f"<tr><td{pad}>{html.escape(str(k))}</td><td>{html.escape(_short(v))}</td></tr>"
            return out

        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{cap}{rows(self.numbers, 0)}</table>"

    def __repr__(self) -> str:
        width = max((len(k) for k, _ in self.rows), default=0)
        return "\n".join(([self.title] if self.title else []) + [f"{k:<{width}}  {v}" for k, v in self.rows])


def key_numbers(numbers: dict, title: str | None = None) -> KeyNumbers:
    """See :class:`KeyNumbers`."""
    return KeyNumbers(numbers, title)


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix} · {k}" if prefix else str(k))
    else:
        yield prefix, _short(value)


def _short(value) -> str:
    if value is None:
        return "–"  # not measured: a dash, not the word None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return "–" if value != value else f"{float(value):.3g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_short(v) for v in value)
    return str(value)


__all__ = ["Deck", "output_html", "cell_html", "notebook_deck", "deck_html", "summary_html", "build_presentation",
           "KeyNumbers", "key_numbers"]
