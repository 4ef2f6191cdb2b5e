"""Progress bars: text on stderr outside a kernel, whatever has been imported; widgets in a kernel."""
from __future__ import annotations

import sys


def test_bars_outside_a_kernel_are_text_on_stderr_even_with_ipykernel_imported(capsys):
    import ipykernel.zmqshell  # noqa: F401  (what tqdm.auto takes for "in a notebook")

    from vision_lib.progress import in_kernel, tqdm

    assert not in_kernel()
    for _ in tqdm(range(3), desc="counting"):
        pass
    out, err = capsys.readouterr()
    assert out == "" and "counting: 100%" in err


def test_a_running_kernel_gets_notebook_bars(monkeypatch):
    from ipykernel.zmqshell import ZMQInteractiveShell

    from vision_lib.progress import in_kernel

    class ColabLikeShell(ZMQInteractiveShell):  # hosted notebooks subclass IPython's kernel shell
        pass

    ipython = sys.modules["IPython"]
    monkeypatch.setattr(ipython, "get_ipython", lambda: object.__new__(ColabLikeShell))
    assert in_kernel()
    monkeypatch.setattr(ipython, "get_ipython", lambda: None)
    assert not in_kernel()
