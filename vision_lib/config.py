"""Where data, weights and caches live (environment variables with sensible defaults)."""
from __future__ import annotations

import os
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
    if required and not path.is_dir():
        raise FileNotFoundError(missing_data_message(name))
    return path


def missing_data_message(name: str) -> str:
    root = data_dir()
    return (
        f"No data set '{name}' under {root}.\n"
        f"  Put photos in {root / name}/<person>/*.jpg (one folder per person),\n"
        f"  or set VISION_LIB_DATA to a folder that holds '{name}/'.\n"
        f"  On a machine with internet, `vision-lib fetch lfw --out {root / name}` writes a public\n"
        f"  face set (Labeled Faces in the Wild, one folder per person) there in that layout"
        + ("." if name == "lfw" else f",\n  to run on those people in place of the {name}.")
    )


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
__all__ = ["CHECKOUT", "PROJECT_ROOT", "SHARED_DIR", "data_dir", "dataset", "missing_data_message",
           "notebook_dir", "cache_dir", "n_jobs"]
