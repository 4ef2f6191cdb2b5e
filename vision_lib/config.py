"""Where data, weights and caches live (environment variables with sensible defaults)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

def _checkout() -> Path | None:
    """The source checkout holding this package, or None when it is installed (site-packages)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


#: The checkout when running from one; installed, defaults are relative to the working folder instead
#: (a package in site-packages must not look for data or notebooks beside itself).
CHECKOUT = _checkout()
PROJECT_ROOT = CHECKOUT or Path.cwd()
#: The development and CI layout: a ``shared/`` folder beside the checkout with data and weights.
SHARED_DIR = PROJECT_ROOT.parent / "shared"


def data_dir() -> Path:
    """Root of the data sets: ``$VISION_LIB_DATA``, else ``../shared/data`` beside the checkout when it
    exists (as the Makefile does), else ``data/`` in the checkout (installed: in the working folder)."""
    if os.environ.get("VISION_LIB_DATA"):
        return Path(os.environ["VISION_LIB_DATA"]).expanduser().resolve()
    shared = SHARED_DIR / "data"
    return (shared if shared.is_dir() else PROJECT_ROOT / "data").resolve()


def dataset(name: str, *, required: bool = True) -> Path:
    """``data_dir()/name``; with ``required`` a missing folder raises an error saying what to do."""
    path = data_dir() / name
    if required and not has_dataset(name):
        raise FileNotFoundError(missing_data_message(name))
    return path


@dataclass(frozen=True)
class DataSet:
    """What a data set under :func:`data_dir` looks like and where it comes from (docs/data.md)."""

    layout: str  # relative to the data set's folder
    source: str
    needs: tuple[str, ...] = ()  # entries that must exist in the folder (besides the folder itself)
    fetch_lfw: bool = False  # `vision-lib fetch lfw` can stand in for it


#: The data sets of the notebooks, their layout and a source.
DATASETS = {
    "footballers": DataSet(
        "<person>/*.jpg (one folder per person; raw web photos)",
        "the FootballStars photos (github.com/ifunanyaScript/FootballStars-image-classification, data/dataset/), "
        "or any photos of a few people in that layout", fetch_lfw=True),
    "lfw": DataSet(
        "<Person_Name>/*.jpg (one folder per person)",
        "Labeled Faces in the Wild (vis-www.cs.umass.edu/lfw)", fetch_lfw=True),
    "players": DataSet(
        "two_players_top/*.jpg and two_players_bot/*.jpg (crops of the two badminton players on each half "
        "of the court) and labels_top.csv (folder,file,player_label for the top folder)",
        "github.com/Sarang-1407/Player_segregation_task (the crop folders; labels_top.csv is hand-made, "
        "see docs/data.md)", needs=("two_players_top", "two_players_bot", "labels_top.csv")),
    "kodak": DataSet(
        "kodim01.png ... kodim24.png: the Kodak true-colour suite",
        "github.com/BinomialLLC/basis_universal (test_files/), or r0k.us/graphics/kodak"),
}


def has_dataset(name: str) -> bool:
    """True when ``data_dir()/name`` exists with the entries its layout needs."""
    path = data_dir() / name
    spec = DATASETS.get(name)
    return path.is_dir() and all((path / entry).exists() for entry in (spec.needs if spec else ()))


def missing_data_message(name: str) -> str:
    """What to put where for a missing data set, and where it comes from."""
    root = data_dir()
    spec = DATASETS.get(name) or DataSet("<person>/*.jpg (one folder per person)", "your own photos")
    text = (f"No data set '{name}' under {root}.\n"
            f"  Layout: {root / name}/{spec.layout}.\n"
            f"  Source: {spec.source}.\n"
            f"  Or set VISION_LIB_DATA to a folder that holds '{name}/'.")
    if spec.fetch_lfw:
        text += (f"\n  On a machine with internet, `vision-lib fetch lfw --out {root / name}` writes a public\n"
                 f"  face set (Labeled Faces in the Wild, one folder per person) there in that layout"
                 + ("." if name == "lfw" else f",\n  to run on those people in place of the {name}."))
    return text


def notebook_dir() -> Path:
    """The numbered notebooks: ``$VISION_LIB_NOTEBOOKS``, else ``notebooks/`` in the checkout
    (installed: in the working folder)."""
    if os.environ.get("VISION_LIB_NOTEBOOKS"):
        return Path(os.environ["VISION_LIB_NOTEBOOKS"]).expanduser().resolve()
    return (PROJECT_ROOT / "notebooks").resolve()


def cache_dir() -> Path:
    """Disk cache for detections and embeddings: ``$VISION_LIB_CACHE`` or ``~/.cache/vision_lib``."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vision_lib"
    path = Path(os.environ.get("VISION_LIB_CACHE") or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def n_jobs(requested: int | None = None) -> int:
    """Worker processes to use: ``requested``, ``$VISION_LIB_JOBS``, else all cores."""
    if requested and requested > 0:
        return requested
    env = os.environ.get("VISION_LIB_JOBS")
    return int(env) if env else (os.cpu_count() or 1)


#: The public names of this module.
__all__ = ["CHECKOUT", "PROJECT_ROOT", "SHARED_DIR", "data_dir", "dataset", "DataSet", "DATASETS",
           "has_dataset", "missing_data_message",
           "notebook_dir", "cache_dir", "n_jobs"]
