"""Execute the numbered notebook suite (papermill) into a report folder, with HTML copies.

Papermill does the parameter injection (a cell tagged ``parameters`` in every notebook) and the
execution through nbclient; nbconvert writes the HTML. The committed notebooks stay output-free.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import DATASETS, data_dir, has_dataset, notebook_dir

#: Where the suite is looked for by default (see :func:`vision_lib.config.notebook_dir`).
NOTEBOOK_DIR = notebook_dir()

#: Data sets each notebook needs under ``$VISION_LIB_DATA`` (06 falls back to bundled images).
REQUIRES = {
    "01_data_preparation": ["footballers"],
    "02_feature_engineering": ["footballers"],
    "03_model_development": ["footballers"],
    "04_clusterization": ["lfw", "players", "footballers"],
    "05_face_average": ["footballers", "lfw"],
    "06_image_compression": [],
}
#: The notebooks whose disk-cached faces a notebook reads (the footballer face table of 01, the LFW
#: face table of 04 that 03's strangers and 05's clusters are drawn from, the classic models'
#: footballer faces of 04 that 05 averages). It starts only once they have ended, so each table is
#: computed by one notebook, never by two at once. A notebook not listed here waits for every
#: notebook before it.
AFTER = {
    "01_data_preparation": [],
    "02_feature_engineering": ["01_data_preparation"],
    "03_model_development": ["01_data_preparation", "04_clusterization"],
    "04_clusterization": ["01_data_preparation"],
    "05_face_average": ["01_data_preparation", "04_clusterization"],
    "06_image_compression": [],
}
#: Notebooks whose key figures are speeds (01: milliseconds per photo of each detector, 06: the
#: speed-up over full-pixel K-Means): they run with no other notebook beside them.
ALONE = {"01_data_preparation", "06_image_compression"}

#: Data sets a notebook uses when present and replaces otherwise (06: scikit-image's sample photos).
OPTIONAL = {"06_image_compression": {"kodak": "notebook 06 uses scikit-image's sample photos instead"}}


#: Kernel options for report runs. C-level start-up logs (TensorFlow/absl/oneDNN notices, which no
#: environment variable silences) go to the kernel's own stderr, i.e. the terminal, instead of pink
#: boxes in the report; Python warnings (``warnings.warn``, tracebacks) still reach the notebook.
#: The kernel is IPython's with a clean exit (:class:`vision_lib.kernel.Kernel`: the worker pool is
#: shut down before the kernel's shutdown, instead of leaked semaphores reported on the terminal).
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False", "--IPKernelApp.kernel_class=vision_lib.kernel.Kernel"]


def kernel_config(sockets: str | os.PathLike | None = None):
    """Kernel-manager settings for report runs: the kernel talks to papermill over local (Unix)
    sockets, which only this user can reach, rather than unencrypted TCP on loopback, which any
    local user can connect to (ipykernel warns about that on the terminal). Windows has no IPC
    transport in ZeroMQ: TCP there.

    ``sockets``: a folder of this kernel's own for the socket files (else the working folder):
    kernels started at once in one folder would pick the same socket names.
    """
    from traitlets.config import Config

    if os.name == "nt":
        return Config({"KernelManager": {"transport": "tcp"}})
    manager = {"transport": "ipc"}
    if sockets is not None:
        manager["ip"] = str(Path(sockets) / "kernel")
    return Config({"KernelManager": manager})

#: Environment the kernel starts with, unless the caller set these already.
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR"}


@dataclass
class NotebookResult:
    name: str
    ok: bool
    seconds: float
    output: Path | None = None
    html: Path | None = None
    error: str | None = None
    #: ``(cell index, text)`` of every stderr output of the executed notebook (a clean report has none).
    stderr: list[tuple[int, str]] = field(default_factory=list)


def list_notebooks(only: list[str] | None = None, folder: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks of ``folder`` (default :data:`NOTEBOOK_DIR`) in order; ``only`` filters
    by name or number prefix (``"03"``).

    A folder without numbered notebooks is a FileNotFoundError, and a name in ``only`` that matches no
    notebook a ValueError (a typo must not run nothing, or all).
    """
    folder = Path(folder) if folder is not None else NOTEBOOK_DIR
    books = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        raise FileNotFoundError(
            f"no numbered notebooks (NN_name.ipynb) in {folder}: run from the project checkout, pass "
            "--notebooks DIR, or set VISION_LIB_NOTEBOOKS to the folder holding them")
    if only is not None:
        unknown = [o for o in only if not any(b.stem == o or b.stem.startswith(o) for b in books)]
        if unknown or not only:
            raise ValueError(f"no notebook matches {unknown or '(nothing)'}; choose from "
                             f"{', '.join(b.stem for b in books)} (or their numbers, e.g. 03)")
        books = [b for b in books if any(b.stem == o or b.stem.startswith(o) for o in only)]
    return books


def missing_data(notebook: str) -> list[str]:
    """Data sets a notebook needs that are not under :func:`data_dir`."""
    return [name for name in REQUIRES.get(notebook, []) if not has_dataset(name)]


def print_missing(books: list[Path]) -> list[str]:
    """Print every data set the chosen notebooks miss, at once, with its layout and a source; return
    the required ones."""
    need: dict[str, list[str]] = {}
    for book in books:
        for name in missing_data(book.stem):
            need.setdefault(name, []).append(book.stem[:2])
    optional = {name: why for book in books for name, why in OPTIONAL.get(book.stem, {}).items()
                if not has_dataset(name)}
    if not need and not optional:
        return []
    print(f"Missing under {data_dir()} (set VISION_LIB_DATA to use another folder; docs/data.md):", flush=True)
    for name, users in need.items():
        spec, target = DATASETS[name], data_dir() / name
        print(f"- {name}, for notebook{'s' if len(users) > 1 else ''} {', '.join(users)} (skipped):\n"
              f"    put {name}/{spec.layout}\n    from {spec.source}", flush=True)
        if spec.fetch_lfw:
            print(f"    or, online: vision-lib fetch lfw --out {target}"
                  + ("" if name == "lfw" else " (LFW people in their place)"), flush=True)
    for name, why in optional.items():
        print(f"- {name} (optional: {why}):\n    put {name}/{DATASETS[name].layout}\n"
              f"    from {DATASETS[name].source}", flush=True)
    print(flush=True)
    return list(need)


def execute_notebook(
    path: Path, out_dir: Path, params: dict | None = None, *, html: bool = True, timeout: int = 3600
) -> NotebookResult:
    """Run one notebook with ``params`` injected; write the executed copy (and HTML) to ``out_dir``."""
    import papermill as pm

    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(path).resolve().parent:
        # The executed copy would replace the committed (output-free) notebook.
        raise ValueError(f"output folder {out_dir} holds the notebooks themselves; choose another (e.g. reports)")
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / path.name
    start = time.perf_counter()
    env_cwd = str(path.parent)
    saved = {name: os.environ.get(name) for name in KERNEL_ENV}
    os.environ.update({name: value for name, value in KERNEL_ENV.items() if saved[name] is None})
    sockets = tempfile.mkdtemp(prefix="vision_lib_kernel_")  # private (0700), this kernel's alone
    try:
        pm.execute_notebook(
            str(path), str(output), parameters=params or {}, cwd=env_cwd, progress_bar=False,
            execution_timeout=timeout, kernel_name="python3", extra_arguments=KERNEL_ARGUMENTS,
            config=kernel_config(sockets),
        )
    except Exception as exc:  # papermill re-raises cell errors; keep going with the next notebook
        return NotebookResult(path.stem, False, time.perf_counter() - start, output, None,
                              str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
    finally:
        # Only once empty: jupyter_client removes the socket files when the kernel has gone; a
        # kernel still finishing its exit would log a ZMQ traceback if they went from under it.
        with contextlib.suppress(OSError):
            os.rmdir(sockets)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
    html_path = _to_html(output) if html else None
    return NotebookResult(path.stem, True, time.perf_counter() - start, output, html_path,
                          stderr=stderr_outputs(output))


def stderr_outputs(notebook: str | os.PathLike) -> list[tuple[int, str]]:
    """``(cell index, text)`` of every stderr stream in an executed notebook (a clean report has none)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return [(i, out.get("text", "")) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out.get("name") == "stderr"]


def _to_html(notebook: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def run_notebooks(out_dir: str | os.PathLike, params: dict | None = None,
                  only: list[str] | None = None, folder: str | os.PathLike | None = None,
                  jobs: int | None = None) -> list[NotebookResult]:
    """Execute the suite of ``folder`` (default :data:`NOTEBOOK_DIR`), printing progress and where the
    reports are; results in the suite's order.

    ``jobs`` notebooks run at once (None: :func:`default_jobs`), each in its own process and kernel,
    a notebook starting once the notebooks it reads cached faces from (:data:`AFTER`) have ended;
    those of :data:`ALONE` run by themselves.
    """
    out_dir = Path(out_dir).resolve()
    folder = Path(folder) if folder is not None else NOTEBOOK_DIR
    if out_dir == folder.resolve():
        raise ValueError(f"output folder {out_dir} holds the notebooks themselves; choose another (e.g. reports)")
    books = list_notebooks(only, folder)
    _check_parameters(books, params or {})
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be 1 or more (notebooks run at once), not {jobs}")
    jobs = default_jobs() if jobs is None else jobs
    print(f"data: {data_dir()}", flush=True)
    missing = print_missing(books)
    skipped, runnable = {}, []
    for book in books:
        needs = missing_data(book.stem)
        if needs:
            print(f"[skip] {book.stem}: needs {', '.join(needs)} (see above)", flush=True)
            skipped[book.stem] = NotebookResult(book.stem, False, 0.0, error=f"missing data: {needs}")
        else:
            runnable.append(book)
    executed = {res.name: res for res in _execute_all(runnable, out_dir, params, jobs)}
    results = [skipped.get(book.stem) or executed[book.stem] for book in books]
    n_skipped = sum(1 for r in results if skipped_for_data(r))
    failed = sum(1 for r in results if not r.ok) - n_skipped
    ran = sum(r.ok for r in results)
    print(f"\n{ran} notebook{'s' if ran != 1 else ''} ran, {n_skipped} skipped for missing data (see above), "
          f"{failed} failed", flush=True)
    print(f"Reports (executed notebooks and HTML) are in {out_dir}", flush=True)
    if failed:
        print("Some notebooks FAILED (see above).", flush=True)
    elif n_skipped:
        print(f"Done: every notebook that has its data ran. Add {', '.join(missing)} (see above) and run again "
              "for the others.", flush=True)
    else:
        print("Done: every notebook ran.", flush=True)
    if missing and _can_ask():
        _offer_fetch([name for name in missing if name in FETCHABLE])
    return results


def default_jobs() -> int:
    """Notebooks run at once by default: two on a machine with two cores or more, else one.

    Most of a notebook is one core's work (the kernel's start and imports, plotting, the HTML copy)
    between cells that use every core, so a second notebook fills the idle core; more than two at
    once only share the same cores.
    """
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _after(book: Path, books: list[Path]) -> set[str]:
    """The notebooks of ``books`` that ``book`` waits for (:data:`AFTER`; unlisted: all before it)."""
    names = [b.stem for b in books]
    before = names[:names.index(book.stem)]
    return set(AFTER[book.stem]) & set(names) if book.stem in AFTER else set(before)


def _report(res: NotebookResult) -> None:
    status = "ok" if res.ok else f"FAILED: {res.error}"
    if res.stderr:
        status += f" ({len(res.stderr)} stderr outputs, e.g. cell {res.stderr[0][0]}: {res.stderr[0][1].strip()[:120]})"
    print(f"[{'done' if res.ok else 'fail'}] {res.name} in {res.seconds:.0f} s: {status}", flush=True)


def _execute_all(books: list[Path], out_dir: Path, params: dict | None, jobs: int) -> list[NotebookResult]:
    """Execute ``books``, ``jobs`` at a time, each once the notebooks it waits for have ended and
    those of :data:`ALONE` by themselves (in order when one at a time); results in the order they end."""
    if jobs == 1 or len(books) < 2:
        results = []
        for book in books:
            print(f"[run ] {book.stem} ...", flush=True)
            results.append(execute_notebook(book, out_dir, params))
            _report(results[-1])
        return results
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    waiting, running, results = list(books), {}, []
    # A fresh process per notebook (spawned: no state of this one), as a kernel of its own.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        try:
            while waiting or running:
                ended = {r.name for r in results}
                for book in [b for b in waiting if _after(b, books) <= ended]:
                    if len(running) == jobs or any(r.stem in ALONE for r in running.values()):
                        break
                    if book.stem in ALONE and running:  # it waits for an idle machine; others may pass
                        continue
                    waiting.remove(book)
                    print(f"[run ] {book.stem} ...", flush=True)
                    running[pool.submit(_execute_in_worker, book, out_dir, params)] = book
                if not running:
                    raise RuntimeError(f"notebooks {[b.stem for b in waiting]} wait for each other (AFTER)")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    results.append(future.result())
                    _report(results[-1])
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results


def _execute_in_worker(path: Path, out_dir: Path, params: dict | None) -> NotebookResult:
    """:func:`execute_notebook` in a worker process of :func:`_execute_all`. A Ctrl-C reaches the
    worker too (the terminal signals the whole process group): the aborted cell's asyncio task then
    logs no traceback at exit, as in the command's own process (``vision-lib notebooks``)."""
    try:
        return execute_notebook(path, out_dir, params)
    except KeyboardInterrupt:
        import logging

        logging.getLogger("asyncio").disabled = True
        raise


def skipped_for_data(result: NotebookResult) -> bool:
    """True for a notebook not run because a data set is missing (not a failure)."""
    return not result.ok and (result.error or "").startswith("missing data")


def _check_parameters(books: list[Path], params: dict) -> None:
    """A parameter that none of the chosen notebooks declares is a typo: refuse it before running
    (papermill would only warn, then run with the defaults)."""
    if not params:
        return
    import papermill as pm

    declared = {name for book in books for name in pm.inspect_notebook(str(book))}
    unknown = sorted(set(params) - declared)
    if unknown:
        raise ValueError(f"no chosen notebook has parameter(s) {unknown}; they have: {', '.join(sorted(declared))}")


def _can_ask() -> bool:
    """True when a question can be asked: standard input is a terminal and this process is in its
    foreground (as a background job, `make run &`, reading it would stop the process with SIGTTIN)."""
    import os

    try:
        return sys.stdin.isatty() and os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):  # closed or replaced stdin
        return False


#: Data sets that a public face set (LFW, one folder per person) can stand in for.
FETCHABLE = tuple(name for name, spec in DATASETS.items() if spec.fetch_lfw)


def _offer_fetch(names: list[str]) -> None:
    from .datasets import fetch_lfw

    for name in names:
        target = data_dir() / name
        answer = input(f"Fetch the public LFW face set into {target} now (needs internet)? [y/N] ")
        if not answer.strip().lower().startswith("y"):
            continue
        try:
            n = fetch_lfw(target)
        except RuntimeError as exc:
            print(exc)
            return
        print(f"wrote {n} photos under {target}; run again to use them.")


#: The public names of this module.
__all__ = ["NOTEBOOK_DIR", "REQUIRES", "OPTIONAL", "AFTER", "ALONE", "default_jobs", "print_missing", "skipped_for_data", "KERNEL_ARGUMENTS", "kernel_config", "NotebookResult", "stderr_outputs", "list_notebooks", "missing_data",
           "execute_notebook", "run_notebooks", "FETCHABLE"]
