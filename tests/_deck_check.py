"""What makes a slide deck presentable, checked in headless Chromium at 1280x720 (issue 36):
every slide fits the screen (nothing past its edges, no scrolling), no local path, no raw repr
(``Class(...=...)``, dict literals, ``<... at 0x...>``), at most 90 words, no text under 18 px."""
from __future__ import annotations

import re
from pathlib import Path

MAX_WORDS = 90
MIN_FONT_PX = 18
VIEWPORT = {"width": 1280, "height": 720}
PATH = re.compile(r"(?:^|[\s'\"(=])(?:/(?:tmp|home|work|Users|var|mnt|root|private)/|[A-Za-z]:\\|~/)|file://")
REPR = re.compile(r"\b[A-Z]\w+\((?:[^()]*\w=|\d+ \w+,)|<[\w.]+ object at 0x|\{'\w+': |\barray\(|dtype=")

_MEASURE = """
slide => {
  const box = slide.getBoundingClientRect(), out = [];
  for (const el of slide.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.bottom > box.bottom + 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.left < box.left - 1)
      out.push(el.tagName + ' ' + Math.round(r.bottom - box.bottom) + 'px below, ' + Math.round(r.right - box.right) + 'px right');
  }
  let small = null;
  const walk = document.createTreeWalker(slide, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const t = walk.currentNode;
    if (!t.textContent.trim()) continue;
    const px = parseFloat(getComputedStyle(t.parentElement).fontSize);
    if (small === null || px < small) small = px;
  }
  return {overflow: out.slice(0, 3), scroll: slide.scrollHeight > slide.clientHeight + 1 || slide.scrollWidth > slide.clientWidth + 1,
          text: slide.innerText, min_font: small};
}
"""


def deck_problems(page, deck: Path) -> list[str]:
    """Every problem of every slide of ``deck`` (an HTML file written by vision_lib.present), as
    ``"<deck>#<slide>: <problem>"``; ``page`` is a Playwright page with the 1280x720 viewport."""
    page.goto(deck.resolve().as_uri())
    n = page.locator(".slide").count()
    problems = []
    for i in range(n):
        if i:
            page.keyboard.press("ArrowRight")
        current = page.locator(".slide.current")
        page.wait_for_function("() => Array.from(document.images).every(im => im.complete)")
        m = current.evaluate(_MEASURE)
        where = f"{deck.name}#{i + 1}"
        if m["overflow"] or m["scroll"]:
            problems.append(f"{where}: overflows the 1280x720 screen ({'; '.join(m['overflow']) or 'scrolls'})")
        words = len(m["text"].split())
        if words > MAX_WORDS:
            problems.append(f"{where}: {words} words (at most {MAX_WORDS})")
        if PATH.search(m["text"]):
            problems.append(f"{where}: a local path: {PATH.search(m['text']).group(0)!r}")
        if REPR.search(m["text"]):
            problems.append(f"{where}: a raw repr: {REPR.search(m['text']).group(0)!r}")
        if m["min_font"] is not None and m["min_font"] < MIN_FONT_PX:
            problems.append(f"{where}: text at {m['min_font']:.0f} px (at least {MIN_FONT_PX})")
    return problems


def check_decks(decks: list[Path]) -> list[str]:
    """:func:`deck_problems` of each deck, in one headless Chromium (network off)."""
    from playwright.sync_api import sync_playwright
    from test_serve_browser import CHROMIUM_FLAGS, chromium_path

    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_context(viewport=VIEWPORT, offline=True).new_page()
            for deck in decks:
                problems += deck_problems(page, deck)
        finally:
            browser.close()
    return problems
