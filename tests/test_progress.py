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

    from vision_lib.progress import in_kernel, tqdm

    class ColabLikeShell(ZMQInteractiveShell):  # hosted notebooks subclass IPython's kernel shell
        pass

    ipython = sys.modules["IPython"]
    monkeypatch.setattr(ipython, "get_ipython", lambda: object.__new__(ColabLikeShell))
    assert in_kernel()
    # ...and the bar itself is a notebook widget. tqdm.auto picks its class once, on first import
    # (by ipykernel.zmqshell being loaded): import it afresh here, as a kernel's first import would.
    from tqdm.notebook import tqdm_notebook

    for name in ("tqdm.auto", "tqdm.autonotebook"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    bar = tqdm(range(3), disable=True)  # disabled: no widget is displayed outside a real kernel
    assert isinstance(bar, tqdm_notebook), type(bar).__mro__
    monkeypatch.setattr(ipython, "get_ipython", lambda: None)
    assert not in_kernel()
    assert not isinstance(tqdm(range(3), disable=True), tqdm_notebook)
