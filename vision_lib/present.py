"""Offline slide decks and a one-page summary from the executed notebooks (``vision-lib present``).

Each deck is one self-contained HTML file: figures are inlined as data URIs, the CSS and the few lines
of JavaScript that advance the slides are inside the page, and its Content-Security-Policy forbids
every network request, so a deck opens the same on a laptop with no network as on the machine that
made it. Code is never shown. Slide boundaries come from the cells' ``slideshow.slide_type``
metadata (Jupyter's own: ``slide``, ``subslide``, ``fragment``, ``skip``, ``notes``, ``-``); a
notebook without any starts a new slide at every markdown cell that opens with a heading.

The summary page gathers the cells tagged ``headline`` (numbers) and ``key-figure`` (figures) of
every notebook of the run, with a link to each deck.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

__all__ = ["Slide", "notebook_slides", "deck_html", "summary_html", "present"]

#: Nothing may be fetched when a deck is opened: images are data URIs, styles and script inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
HEADLINE_TAG = "headline"
FIGURE_TAG = "key-figure"
_NEW_SLIDE = {"slide", "subslide"}
_HIDDEN = {"skip", "notes"}


@dataclass
class Slide:
    """One slide: HTML fragments in order, and the tags of the cells it shows."""

    parts: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not any(p.strip() for p in self.parts)


def _markdown(text: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(text)


def _output_html(output: dict) -> str:
    """One cell output as HTML: figures, tables and short text; stderr and widget state left out."""
    kind = output.get("output_type")
    if kind == "stream":
        return "" if output.get("name") == "stderr" else f"<pre>{html.escape(''.join(output.get('text', '')))}</pre>"
    if kind == "error":
        return f"<pre class='error'>{html.escape(output.get('ename', 'Error'))}: {html.escape(output.get('evalue', ''))}</pre>"
    data = output.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            payload = "".join(data[mime]).replace("\n", "")
            return f"<img src='data:{mime};base64,{payload}' alt='figure'>"
    if "image/svg+xml" in data:
        import base64

        svg = "".join(data["image/svg+xml"]).encode()
        return f"<img src='data:image/svg+xml;base64,{base64.b64encode(svg).decode()}' alt='figure'>"
    if "text/html" in data:
        # Tables from pandas and the like; scripts would not run under the CSP anyway.
        return "<div class='html'>" + "".join(data["text/html"]) + "</div>"
    if "text/markdown" in data:
        return _markdown("".join(data["text/markdown"]))
    if "text/plain" in data and "application/vnd.jupyter.widget-view+json" not in data:
        return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
    return ""


def _has_slide_metadata(cells: list) -> bool:
    return any("slide_type" in c.get("metadata", {}).get("slideshow", {}) for c in cells)


def notebook_slides(nb) -> list[Slide]:
    """The slides of an executed notebook (an ``nbformat`` node): code inputs hidden, outputs kept."""
    cells = nb.cells
    by_metadata = _has_slide_metadata(cells)
    slides: list[Slide] = []
    for cell in cells:
        meta = cell.get("metadata", {})
        tags = set(meta.get("tags", []))
        if "parameters" in tags or "injected-parameters" in tags:
            continue
        kind = meta.get("slideshow", {}).get("slide_type", "-")
        if kind in _HIDDEN:
            continue
        if by_metadata:
            new = kind in _NEW_SLIDE
        else:
            new = cell.cell_type == "markdown" and cell.source.lstrip().startswith("#")
        if new or not slides:
            slides.append(Slide())
        slide = slides[-1]
        slide.tags |= tags
        if cell.cell_type == "markdown":
            slide.parts.append(_markdown(cell.source))
        elif cell.cell_type == "code":
            slide.parts.extend(p for p in (_output_html(o) for o in cell.get("outputs", [])) if p)
    return [s for s in slides if not s.empty]


_STYLE = """
html,body{margin:0;height:100%;background:#fafafa;color:#222;font:18px/1.45 system-ui,sans-serif}
section{display:none;box-sizing:border-box;height:100vh;padding:3vh 5vw 8vh;overflow:auto}
section.current{display:block}
section img{max-width:100%;max-height:70vh;display:block;margin:1em auto}
h1{font-size:2em;margin:.2em 0}h2{font-size:1.5em;margin:.2em 0}
pre{background:#f0f0f0;padding:.6em;overflow:auto;font-size:.8em}pre.error{background:#fde8e8}
table{border-collapse:collapse;margin:1em auto;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .6em}
nav{position:fixed;bottom:1.5vh;right:2vw;display:flex;gap:.5em;align-items:center}
nav button{font-size:1em;padding:.2em .8em}nav a{color:#555}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1.5em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:1em}
"""

_SCRIPT = """
(function(){
  var slides=document.querySelectorAll('section'), i=0, counter=document.getElementById('counter');
  function show(n){ if(!slides.length) return; i=Math.max(0,Math.min(slides.length-1,n));
    for(var k=0;k<slides.length;k++) slides[k].classList.toggle('current',k===i);
    counter.textContent=(i+1)+' / '+slides.length; history.replaceState(null,'','#'+(i+1)); }
  document.getElementById('prev').onclick=function(){show(i-1)};
  document.getElementById('next').onclick=function(){show(i+1)};
  document.addEventListener('keydown',function(e){
    if(['ArrowRight','PageDown',' '].indexOf(e.key)>=0){show(i+1);e.preventDefault();}
    if(['ArrowLeft','PageUp'].indexOf(e.key)>=0){show(i-1);e.preventDefault();}
    if(e.key==='Home') show(0); if(e.key==='End') show(slides.length-1); });
  show((parseInt(location.hash.slice(1),10)||1)-1);
})();
"""


def _page(title: str, body: str, *, script: bool) -> str:
    js = f"<script>{_SCRIPT}</script>" if script else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}{js}</body></html>")


def deck_html(slides: Iterable[Slide], title: str, *, index_link: str | None = None) -> str:
    """A self-contained slide deck (arrow keys, space, or the buttons to advance)."""
    sections = "".join(f"<section id='s{n}'>{''.join(s.parts)}</section>" for n, s in enumerate(slides, 1))
    link = f"<a href='{html.escape(index_link)}'>summary</a>" if index_link else ""
    nav = (f"<nav>{link}<button id='prev' aria-label='previous slide'>&#8592;</button>"
           f"<span id='counter'></span><button id='next' aria-label='next slide'>&#8594;</button></nav>")
    return _page(title, sections + nav, script=True)


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.match(r"\s*#+\s*(.+)", cell.source)
            if m:
                return m.group(1).strip()
    return fallback


def summary_html(decks: list[tuple[str, str, list[Slide]]]) -> str:
    """One page: for each notebook (file name, title, slides) its headline numbers and key figures."""
    cards = []
    for name, title, slides in decks:
        picked = [p for s in slides if s.tags & {HEADLINE_TAG, FIGURE_TAG} for p in s.parts]
        body = "".join(picked) or "<p>(no cell of this notebook is tagged headline or key-figure)</p>"
        cards.append(f"<div class='card'><h2><a href='{html.escape(name)}'>{html.escape(title)}</a></h2>{body}</div>")
    body = "<section class='current'><h1>Summary of the run</h1><div class='cards'>" + "".join(cards) + "</div></section>"
    return _page("vision_lib: summary of the run", body, script=False)


def present(reports: str | os.PathLike = "reports", out: str | os.PathLike | None = None, *,
            overwrite: bool = False) -> list[Path]:
    """Write a deck per executed notebook of ``reports`` and ``index.html`` (the summary) to ``out``
    (default ``reports/slides``); returns the files written, the summary last.

    Refuses to replace existing decks unless ``overwrite``; a folder without executed notebooks is an
    error that says how to make them.
    """
    import nbformat

    from .io import write_atomic

    reports = Path(reports)
    out = Path(out) if out is not None else reports / "slides"
    books = sorted(reports.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        raise FileNotFoundError(f"no executed notebooks (NN_name.ipynb) in {reports}: run "
                                f"`vision-lib notebooks --out {reports}` (or `make run`) first")
    targets = [out / f"{b.stem}.html" for b in books] + [out / "index.html"]
    clash = [t for t in targets if t.exists()]
    if clash and not overwrite:
        raise FileExistsError(f"{clash[0]} exists (pass --overwrite to replace the decks)")
    out.mkdir(parents=True, exist_ok=True)
    decks = []
    for book, target in zip(books, targets):
        nb = nbformat.read(book, as_version=4)
        slides = notebook_slides(nb)
        title = _title(nb, book.stem)
        write_atomic(target, deck_html(slides, title, index_link="index.html").encode())
        decks.append((target.name, title, slides))
    write_atomic(targets[-1], summary_html(decks).encode())
    return targets
