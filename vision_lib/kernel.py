"""The Jupyter kernel that ``vision-lib notebooks`` runs the suite in: IPython's, with a clean exit.

Asked to shut down, ipykernel signals its child processes with SIGTERM (for up to 14 s, then
SIGKILL) before it exits, while the kernel manager kills the kernel itself after 2.5 s. A notebook
that used the local worker pool has the pool's workers and two resource trackers as children, and
the trackers ignore SIGTERM by design: the kernel was always killed mid-shutdown, before its exit
handlers released the pool's semaphores and folders, and the trackers printed "leaked semlock
objects" to the terminal. Here the pool is shut down cleanly first
(:func:`vision_lib.parallel.shutdown_pool`) and the trackers are left to end on their own when
the kernel has exited, so the kernel exits at once and normally.
"""
from __future__ import annotations

from ipykernel.ipkernel import IPythonKernel


class Kernel(IPythonKernel):
    """:class:`ipykernel.ipkernel.IPythonKernel` that shuts vision_lib's worker pool down at the
    kernel's shutdown (``--IPKernelApp.kernel_class=vision_lib.kernel.Kernel``)."""

    def do_shutdown(self, restart: bool) -> dict:
        """Stop the worker pool (its workers exit), then IPython's shutdown."""
        from .parallel import shutdown_pool

        shutdown_pool()
        return super().do_shutdown(restart)

    def _process_children(self):
        # The children ipykernel signals before exiting, less the pool's resource trackers: they
        # ignore SIGTERM, and end by themselves once the kernel has exited, after its exit handlers
        # have unregistered what they track.
        from .parallel import tracker_pids

        trackers = tracker_pids()
        return [p for p in super()._process_children() if p.pid not in trackers]


#: The public names of this module.
__all__ = ["Kernel"]
