"""Native start-up notices are filtered from stderr; real messages are kept."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(tmp_path, module_body: str) -> subprocess.CompletedProcess:
    (tmp_path / "noisy.py").write_text(textwrap.dedent(module_body))
    code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); from vision_lib.native import import_quietly; import_quietly('noisy')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_known_notices_are_dropped_and_real_lines_kept(tmp_path):
    out = _run(tmp_path, """
        import os
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
        os.write(2, b"I0000 00:00:1796163518.966922   13604 port.cc:153] oneDNN custom operations are on. You may see\\n")
        os.write(2, b"a real warning from C\\n")
    """)
    assert out.returncode == 0
    assert out.stderr == "a real warning from C\n"


def test_import_errors_still_raise(tmp_path):
    out = _run(tmp_path, "raise ImportError('broken native library')\n")
    assert out.returncode != 0 and "broken native library" in out.stderr


def test_tensorflow_imports_without_startup_notices():
    import pytest

    pytest.importorskip("tensorflow")
    out = subprocess.run([sys.executable, "-c", "from vision_lib.native import import_quietly; "
                          "tf = import_quietly('tensorflow'); print(tf.constant(2).numpy() + 1)"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "3"
    assert "oneDNN" not in out.stderr and "absl::InitializeLog" not in out.stderr, out.stderr


def test_stderr_outputs_of_an_executed_notebook_are_listed(tmp_path):
    import nbformat

    from vision_lib.notebooks import stderr_outputs

    v = nbformat.v4
    nb = v.new_notebook(cells=[
        v.new_code_cell("x", outputs=[v.new_output("stream", name="stdout", text="fine\n")]),
        v.new_code_cell("y", outputs=[v.new_output("stream", name="stderr", text="W0000 noisy start-up\nmore\n")]),
    ])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    assert stderr_outputs(tmp_path / "nb.ipynb") == [(1, "W0000 noisy start-up\nmore\n")]
