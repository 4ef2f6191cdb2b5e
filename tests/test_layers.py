"""The package's layers point one way (import-linter's contract in pyproject.toml): a cycle or an
upward import, even one hidden inside a function, fails here."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_layers_contract_is_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.fail("import-linter is not installed (it is pinned in requirements.txt)")
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_every_module_declares_its_public_names():
    import importlib
    import pkgutil

    import vision_lib

    missing = []
    for info in pkgutil.walk_packages(vision_lib.__path__, "vision_lib."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if not hasattr(module, "__all__"):
            missing.append(info.name)
    assert not missing, f"modules without __all__: {missing}"


def test_package_docs_list_the_model_registry():
    """The package's map names every registered detector and descriptor, and the defaults as such."""
    import vision_lib
    from vision_lib import models

    doc = vision_lib.__doc__
    for name in (*models.DETECTORS, *models.DESCRIPTORS):
        assert f"``{name}``" in doc, name
    for name in (models.DEFAULT_DETECTOR, models.DEFAULT_DESCRIPTOR):
        assert f"``{name}`` default" in doc, name
