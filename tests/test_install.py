"""The package works installed (not only from its checkout): defaults do not point into site-packages."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _installed_copy(tmp_path: Path) -> Path:
    # A copy of the package with no checkout around it, as a normal (non-editable) install leaves it.
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "vision_lib", site / "vision_lib", ignore=shutil.ignore_patterns("__pycache__"))
    return site


def _run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISION_LIB_")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_installed_defaults_follow_the_working_folder(tmp_path):
    site = _installed_copy(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    out = _run(site, work, "-c", "from vision_lib import config; print(config.CHECKOUT); "
                                 "print(config.data_dir()); print(config.notebook_dir())")
    assert out.returncode == 0, out.stderr
    checkout, data, books = out.stdout.split()
    assert checkout == "None"
    assert Path(data) == (work / "data").resolve() and Path(books) == (work / "notebooks").resolve()
    assert "site-packages" not in data + books


def test_notebooks_command_fails_loudly_without_notebooks(tmp_path):
    site = _installed_copy(tmp_path)
    out = _run(site, tmp_path, "-m", "vision_lib", "notebooks", "--out", str(tmp_path / "reports"))
    assert out.returncode != 0
    assert "no numbered notebooks" in out.stderr and "--notebooks DIR" in out.stderr
    assert not (tmp_path / "reports").exists()


def test_checkout_is_recognised():
    from vision_lib import config

    assert config.CHECKOUT == ROOT and config.notebook_dir() == (ROOT / "notebooks").resolve()


def test_wheel_holds_every_sub_package(tmp_path):
    # A normal install is a wheel: every package of the checkout (models, compress, classify, ...)
    # and the web page must be in it, not only the top-level modules.
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "vision_lib", src / "vision_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          str(src), "-w", str(tmp_path / "wheel")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    import zipfile

    (wheel,) = (tmp_path / "wheel").glob("vision_lib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vision_lib").rglob("*.py")
              if "__pycache__" not in p.parts}
    wanted |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "vision_lib" / "static").iterdir() if p.is_file()}
    wanted.add("vision_lib/stranger_curves.json")  # the open-set rule's web-stranger curves
    assert wanted - names == set()
    assert {"vision_lib/models/__init__.py", "vision_lib/classify/__init__.py"} <= names
