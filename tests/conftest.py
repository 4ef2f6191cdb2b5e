"""Shared fixtures: real data sets (skipped with a reason when absent) and generated images."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vision_lib import config

# The data sets by the library's own rule (config.data_dir: $VISION_LIB_DATA, else ../shared/data beside
# the checkout when present, else data/), as the README, notebooks and Makefile use; exported, so that
# subprocesses (notebooks, the app) and tests that read the variable look in the same place.
os.environ.setdefault("VISION_LIB_DATA", str(config.data_dir()))
if (config.SHARED_DIR / "models" / "keras").is_dir():
    os.environ.setdefault("KERAS_HOME", str(config.SHARED_DIR / "models" / "keras"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _dataset(name: str) -> Path:
    path = config.dataset(name, required=False)
    if not path.is_dir():
        pytest.skip(f"real data set '{name}' not found: put its photos in {path}/ (or set VISION_LIB_DATA to a "
                    f"folder holding {name}/; default ../shared/data beside the checkout when present, else data/)")
    return path


@pytest.fixture(scope="session")
def footballers_dir() -> Path:
    return _dataset("footballers")


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return _dataset("lfw")


@pytest.fixture(scope="session")
def att_dir() -> Path:
    return _dataset("att_faces")


@pytest.fixture(scope="session")
def players_dir() -> Path:
    return _dataset("players")


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    return _dataset("kodak")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    # Tests share one fresh cache per session, never the user's ~/.cache.
    if "VISION_LIB_CACHE" not in os.environ:
        os.environ["VISION_LIB_CACHE"] = str(tmp_path_factory.mktemp("vision_lib_cache"))
    yield


@pytest.fixture(scope="session", autouse=True)
def _no_terminal_input():
    """Subprocesses of the tests (servers, kernels, CLIs) get /dev/null as standard input, however
    pytest was launched: from a terminal, a background job (where a child reading the terminal would
    be stopped by SIGTTIN), nohup or `< /dev/null`. No test reads standard input."""
    try:
        saved = os.dup(0)
    except OSError:  # no standard input at all (closed): nothing to inherit
        yield
        return
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _clean_executed_notebooks(request):
    """Every notebook a test executes into its tmp_path must be a clean report: no stderr output
    (start-up logs of TensorFlow/absl and the like are kept out by vision_lib.notebooks)."""
    folder = Path(request.getfixturevalue("tmp_path")) if "tmp_path" in request.fixturenames else None
    yield
    if folder is None:
        return
    import nbformat

    from vision_lib.notebooks import stderr_outputs

    for book in folder.rglob("*.ipynb"):
        meta = nbformat.read(book, as_version=4).metadata.get("papermill", {})
        if meta.get("input_path"):  # an executed copy, not a notebook a test generated as input
            noise = stderr_outputs(book)
            assert not noise, f"{book.name} has stderr output in cell(s) {[i for i, _ in noise]}: {noise[0][1][:300]!r}"
            _check_deck(book)


def _check_deck(book: Path) -> None:
    """The deck of an executed suite notebook fits 1280x720 (tests/_deck_check.py), when Chromium is here."""
    import shutil
    import sys

    if not book.name[:2].isdigit() or not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()):
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from _deck_check import check_decks

    from vision_lib.present import deck_html, notebook_deck
    import nbformat

    deck = notebook_deck(nbformat.read(book, as_version=4), book.stem)
    page = book.with_suffix(".deck.html")
    page.write_text(deck_html(deck), encoding="utf-8")
    problems = check_decks([page])
    assert not problems, f"{book.name}'s deck at 1280x720: " + "; ".join(problems)
