"""One parallel map for every stage that works through many photos: a local process pool or a Dask cluster.

Stages (``faces``, ``classify``, and through them ``features``, ``cluster``, ``average``,
``predict``) cut their photos into batches and call :func:`map_chunks` (results as batches finish)
or :func:`map_ordered` (a list in input order). Where the batches run is chosen here, not in the
stages:

- **local** (default): joblib's reusable loky pool of ``n_jobs`` worker processes (one chunk, or one
  job, runs in this process);
- **Dask**: when a scheduler address is set (:func:`use_scheduler`, the CLI's ``--scheduler``, or
  ``$VISION_LIB_SCHEDULER``), every batch is a task on that existing ``dask.distributed`` cluster.
  Workers read the photos at the paths given, so photos must be visible to every worker at the same
  path (see docs/scale.md). Each finished batch is written to a resume journal on this machine
  (:func:`journal_dir`) at once; running the same command again after a crash or a lost
  connection takes the finished batches from there and sends only the rest. The journal of a run
  is deleted when the run completes. A worker lost mid-run is Dask's business: its tasks are run
  again elsewhere.

This module is below the stages: it imports none of them.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

#: Environment variable naming the Dask scheduler (``tcp://host:8786``); unset or empty = local pool.
SCHEDULER_ENV = "VISION_LIB_SCHEDULER"

_override: list[str | None] = []


@contextmanager
def use_scheduler(address: str | None) -> Iterator[None]:
    """Within the block, send batches to the Dask scheduler at ``address`` (``None``: keep the
    current choice, i.e. ``$VISION_LIB_SCHEDULER`` or the local pool)."""
    if address is None:
        yield
        return
    _override.append(address)
    try:
        yield
    finally:
        _override.pop()


def scheduler_address() -> str | None:
    """The Dask scheduler in use: :func:`use_scheduler`'s, else ``$VISION_LIB_SCHEDULER``, else ``None``."""
    if _override:
        return _override[-1]
    return os.environ.get(SCHEDULER_ENV) or None


class _NoBar:
    def update(self, n: int) -> None:
        pass


def map_chunks(func: Callable, chunks: Sequence[Sequence], args: tuple = (), *, n_jobs: int | None = None,
               bar=None, threads: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield ``(chunk_number, func(chunk, *args))`` as chunks finish (any order).

    With ``threads=True`` ``func`` gets one more argument: the thread count its native libraries
    (OpenCV, TensorFlow) should use, ``None`` when it runs alone in this process and ``1`` in a pool
    or Dask worker (processes scale better than their own thread pools here). ``bar`` (a tqdm bar)
    advances by the chunk's length as each chunk finishes.
    """
    bar = bar or _NoBar()
    address = scheduler_address()
    if address:
        yield from _dask_map(address, func, chunks, args, bar, threads)
    else:
        yield from _local_map(func, chunks, args, n_jobs, bar, threads)


def map_ordered(func: Callable, items: Sequence, args: tuple = (), *, n_jobs: int | None = None,
                progress: bool = True, desc: str = "", chunk: int = 8) -> list:
    """``func(batch, *args)`` over batches of ``chunk`` items; the concatenated results in item order."""
    from .progress import tqdm

    chunks = [list(items[i:i + chunk]) for i in range(0, len(items), chunk)]
    parts: dict[int, list] = {}
    with tqdm(total=len(items), desc=desc, unit="photo", disable=not progress) as bar:
        for i, part in map_chunks(func, chunks, args, n_jobs=n_jobs, bar=bar):
            parts[i] = part
    return [r for i in range(len(chunks)) for r in parts[i]]


# --------------------------------------------------------------------------- local pool
def _local_map(func, chunks, args, n_jobs, bar, threads) -> Iterator[tuple[int, Any]]:
    from .config import n_jobs as _n_jobs

    # In a pool worker a nested pool would only compete for the same cores (and loky nests up to
    # ten levels deep): run the chunks here.
    jobs = 1 if _in_pool_worker() else min(_n_jobs(n_jobs), len(chunks))
    extra = (None,) if threads else ()
    if jobs <= 1:
        for i, chunk in enumerate(chunks):
            part = func(chunk, *args, *extra)
            bar.update(len(chunk))
            yield i, part
        return
    from joblib import Parallel, delayed

    run = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    for i, part in run(delayed(_tagged)(i, func, c, args, threads) for i, c in enumerate(chunks)):
        bar.update(len(chunks[i]))
        yield i, part


def _in_pool_worker() -> bool:
    from joblib.externals.loky import process_executor

    return process_executor._CURRENT_DEPTH > 0


def _tagged(i: int, func, chunk, args: tuple, threads: bool):
    return i, func(chunk, *args, *((1,) if threads else ()))


def shutdown_pool() -> bool:
    """Shut the local worker pool down cleanly, as the end of the program would: the workers finish
    their work and exit, the pool's semaphores are released and its temporary folder deleted.
    Returns whether a pool was running. The next parallel map starts a new pool.

    For a process about to exit that must not leave child processes behind (a Jupyter kernel: see
    :class:`vision_lib.kernel.Kernel`).
    """
    import gc

    from joblib.externals.loky import reusable_executor

    executor = reusable_executor._executor  # joblib keeps one pool per process: the one _local_map used
    if executor is None:
        return False
    # joblib's MemmappingExecutor.terminate also deletes the pool's temporary folder.
    (executor.terminate if hasattr(executor, "terminate") else executor.shutdown)(kill_workers=False)
    with reusable_executor._executor_lock:
        if reusable_executor._executor is executor:
            reusable_executor._executor = reusable_executor._executor_kwargs = None
    del executor
    gc.collect()  # the pool's semaphores are unlinked (and unregistered) by their finalizers now
    return True


def tracker_pids() -> set[int]:
    """Process ids of the resource trackers the local pool started (loky's and multiprocessing's).

    They outlive the pool on purpose, ignore SIGTERM, and exit by themselves once this process has
    exited (end of their pipe), cleaning up whatever it left registered.
    """
    from multiprocessing import resource_tracker as mp_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    pids = (getattr(t, "_pid", None) for t in (loky_tracker._resource_tracker, mp_tracker._resource_tracker))
    return {pid for pid in pids if pid}


# --------------------------------------------------------------------------- Dask
def journal_dir() -> Path:
    """Where finished Dask batches wait for a resume: ``<cache folder>/dask_runs``."""
    from .config import cache_dir

    return cache_dir() / "dask_runs"


def _item_key(item) -> Any:
    """What identifies an item of a batch for the journal: a path with its size and modification time
    (an edited photo is a new item), other values as they are (their pickle)."""
    if isinstance(item, os.PathLike):
        try:
            st = os.stat(item)
            return ("path", os.fspath(item), st.st_size, st.st_mtime_ns)
        except OSError:
            return ("path", os.fspath(item), None, None)
    if isinstance(item, (tuple, list)):
        return tuple(_item_key(v) for v in item)
    return item


def _digest(value) -> str:
    import joblib

    return joblib.hash(value, hash_name="sha1")


def _run_key(func, chunks, args, threads) -> str:
    from . import __version__

    name = f"{func.__module__}.{func.__qualname__}"
    keys = [_digest([_item_key(v) for v in c]) for c in chunks]
    return hashlib.sha1(repr((__version__, name, _digest(args), threads, keys)).encode()).hexdigest()[:20]


def _dask_task(func, chunk, args: tuple, threads: bool):
    # Runs on a Dask worker: one thread per task for the native libraries, as in the local pool.
    return func(chunk, *args, *((1,) if threads else ()))


def connect(address: str, timeout: float = 10.0):
    """A ``distributed.Client`` of the running scheduler at ``address``; a clear error when it is not there."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
        raise RuntimeError("--scheduler needs the 'distributed' package (pip install distributed)") from exc
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise OSError(f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
                      f"`dask scheduler` and workers with `dask worker {address}`") from None


def _dask_map(address, func, chunks, args, bar, threads) -> Iterator[tuple[int, Any]]:
    from distributed import as_completed

    folder = journal_dir() / _run_key(func, chunks, args, threads)
    folder.mkdir(parents=True, exist_ok=True)
    todo = []
    for i, chunk in enumerate(chunks):  # resume: batches a crashed run finished are not sent again
        part = _journal_read(folder / f"{i}.pkl")
        if part is None:
            todo.append(i)
        else:
            bar.update(len(chunk))
            yield i, part
    if todo:
        client = connect(address)
        try:
            futures = {client.submit(_dask_task, func, chunks[i], args, threads, pure=False,
                                     key=f"vision_lib-{func.__name__}-{folder.name}-{i}"): i for i in todo}
            for fut in as_completed(list(futures), loop=client.loop):
                i = futures.pop(fut)
                part = fut.result()
                _journal_write(folder / f"{i}.pkl", part)
                fut.release()
                bar.update(len(chunks[i]))
                yield i, part
        finally:
            client.close()
    shutil.rmtree(folder, ignore_errors=True)  # the run is complete: nothing left to resume


def _journal_read(path: Path):
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        return None  # missing, or a write cut short: that batch is run again


def _journal_write(path: Path, part) -> None:
    from .io import write_atomic

    write_atomic(path, pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))


#: The public names of this module.
__all__ = ["SCHEDULER_ENV", "use_scheduler", "scheduler_address", "map_chunks", "map_ordered", "shutdown_pool", "tracker_pids", "journal_dir",
           "connect"]
