"""Progress bars: a notebook widget inside a Jupyter kernel, text on stderr everywhere else.

``tqdm.auto`` decides once, from what has been imported (``ipykernel.zmqshell`` in ``sys.modules``),
so a plain process that has merely imported ipykernel (or a library that does) gets notebook bars,
which write to stdout, mixed with a command's own output. Here each bar asks whether this process
is a running kernel.
"""
from __future__ import annotations

import sys

__all__ = ["in_kernel", "tqdm"]


def in_kernel() -> bool:
    """Whether this process is a running Jupyter kernel (IPython's ZMQ shell is active)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def tqdm(*args, **kwargs):
    """A tqdm progress bar: ``tqdm.notebook``'s in a Jupyter kernel, ``tqdm.std``'s (on stderr) elsewhere."""
    if in_kernel():
        from tqdm.auto import tqdm as bar
    else:
        from tqdm.std import tqdm as bar
    return bar(*args, **kwargs)
