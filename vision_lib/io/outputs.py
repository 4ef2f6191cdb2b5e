"""Safe outputs: output checks, atomic writes, folder locks and staged folders, so a run never
overwrites silently, never leaves a half-written file, and two runs never mix their files."""
from __future__ import annotations

import errno
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

#: How the project's CSV files are opened: UTF-8, and a file name that is not valid UTF-8 (raw bytes,
#: e.g. Latin-1 from an old camera or zip) is written back as the same bytes instead of failing.
CSV_TEXT = {"newline": "", "encoding": "utf-8", "errors": "surrogateescape"}


def flat_name(source: str) -> str:
    """One file name for a relative path, ``a/b/c.jpg`` -> ``a__b__c.jpg``, distinct for distinct paths.

    Names that could make two paths meet (a part with ``__``, ``%`` or an edge ``_``: ``x/y__z`` vs
    ``x__y/z``) have their ``_`` written ``%5F`` (and ``%`` as ``%25``), so the mapping is one-to-one.
    """
    def part(name: str) -> str:
        if "%" in name or "__" in name or name.startswith("_") or name.endswith("_"):
            return name.replace("%", "%25").replace("_", "%5F")
        return name

    return "__".join(part(p) for p in str(source).replace("\\", "/").split("/"))


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True when ``path`` is ``folder`` or lies below it (after resolving links); used to refuse
    outputs inside an input folder."""
    return Path(folder).resolve() in (Path(path).resolve(), *Path(path).resolve().parents)


def check_output_folder(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output folder that cannot be one: an existing file, or a path
    below a file (``FileExistsError`` naming it), or one that cannot be written into or created
    (``OSError`` naming the folder that refuses, see :func:`check_writable`). Creates nothing."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        below = "" if existing == path else f", so {path} cannot be created"
        raise FileExistsError(f"{existing} exists and is not a folder{below}; choose another output folder")
    check_writable(existing)  # the folder itself, or the one it would be created in
    return path


def check_writable(folder: str | os.PathLike) -> Path:
    """Prove a file can be written in the existing ``folder`` (and leave nothing behind); raises
    ``OSError`` naming the folder. Permission bits alone do not tell (root, ACLs, read-only mounts)."""
    import tempfile

    folder = Path(folder)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(folder)) from None  # the folder, not the probe's name
    return folder


def check_output_file(path: str | os.PathLike, *, overwrite: bool = False, what: str = "output") -> Path:
    """Refuse, before any work, a file path that a later write would refuse or fail: an existing
    file without ``overwrite`` (``FileExistsError``), anything that is not a regular file (a folder,
    a device), or a folder that cannot be written (``PermissionError``). Creates the missing folders.
    ``what`` names the file in the messages (``"model"``, ``"report"``)."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise FileExistsError(f"{path} exists and is not a regular file; choose another {what} path")
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    try:
        check_output_folder(path.parent)
        make_writable_folder(path.parent)
    except FileExistsError:  # a file where the folder should be: its own message
        raise
    except OSError as exc:
        raise PermissionError(f"cannot write a {what} into {path.parent}: {exc.strerror or exc}") from None
    return path


def csv_bytes(header: list[str], rows: Iterable[list]) -> bytes:
    """A CSV file's bytes (header line, then ``rows``), as ``open(..., **CSV_TEXT)`` would write
    them: for :func:`write_atomic`, so a table is never left half written."""
    import csv
    import io

    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode(CSV_TEXT["encoding"], CSV_TEXT["errors"])


def make_writable_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) and prove a file can be written there; raises ``OSError``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return check_writable(path)


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` under a temporary name beside ``path``, then rename it into place, so an
    interrupted run never leaves a half-written file under the final name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them: for a few quick steps that
    must not be cut in the middle. Python runs signal handlers in the main thread only, so elsewhere
    this does nothing."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    # A handler set outside Python (getsignal gives None) is left alone: it could not be put back.
    previous = {s: h for s in (signal.SIGINT, signal.SIGTERM) if (h := signal.getsignal(s)) is not None}
    for s in previous:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            signal.raise_signal(caught[0])


#: Folders this process holds a lock on ((resolved path, thread) -> [open descriptor, depth]): the
#: lock is re-entrant within a thread, so a command may hold it for its whole run and the export
#: functions it calls too; another thread is kept out like another process.
_HELD: dict[tuple[Path, int], list[int]] = {}
_HELD_GUARD = threading.Lock()


@contextmanager
def folder_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Create ``path`` if needed, check a file can be written there, and hold an exclusive advisory
    lock (``flock``) on it, so a second run writing to the same folder stops at once
    (``BlockingIOError``) instead of mixing its files with this one's. Folders this call created
    are removed again if they are still empty on failure.

    Where the platform or file system has no ``flock`` the work goes on unlocked.
    """
    path = check_output_folder(path)
    created = [p for p in (path, *path.parents) if not (p.exists() or p.is_symlink())]
    key = None
    try:
        path.mkdir(parents=True, exist_ok=True)
        check_writable(path)  # an unwritable folder fails now, not after the work
        with signals_deferred(), _HELD_GUARD:  # never a descriptor without its entry, or the reverse
            key = _acquire((path.resolve(), threading.get_ident()), path)
        yield path
    except BaseException:
        if key is not None:  # only while holding the lock: a run that lost the race must not remove
            for folder in created:  # the winner's folder; deepest first, while empty
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise
    finally:
        if key is not None:
            with signals_deferred(), _HELD_GUARD:
                held = _HELD[key]
                held[1] -= 1
                if not held[1]:
                    del _HELD[key]
                    os.close(held[0])  # closing the descriptor releases the lock


def _acquire(key: tuple[Path, int], path: Path) -> tuple[Path, int]:
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        return key
    fd = os.open(key[0], os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BlockingIOError(f"another run is writing to {path}; wait for it to finish or choose "
                              "another output folder") from None
    except (ImportError, OSError):  # no flock here (Windows, some network file systems)
        pass
    _HELD[key] = [fd, 1]
    return key


#: Prefix of the hidden folder an export is assembled in, inside its output folder.
STAGING_PREFIX = ".vision-lib-part-"


def holds_no_output(path: str | os.PathLike) -> bool:
    """True when the folder ``path`` is empty but for the hidden staging folders of killed runs."""
    return all(p.name.startswith(STAGING_PREFIX) for p in Path(path).iterdir())


# Output folders of the commands that export a folder (cluster, teams): checked, locked, filled.
def prepare_output(out_dir: str | os.PathLike, in_dir: str | os.PathLike | None = None) -> Path:
    """Check ``out_dir`` (resolved, returned; created later by the lock): refuse one inside
    ``in_dir`` or one that already holds files."""
    out = check_output_folder(out_dir).resolve()
    if in_dir is not None and is_inside(out, in_dir):
        raise ValueError(f"output folder {out} is inside the input folder {Path(in_dir).resolve()}; choose another")
    if out.exists() and not holds_no_output(out):
        raise FileExistsError(f"output folder {out} is not empty; choose a new one (nothing was overwritten)")
    return out


@contextmanager
def locked_output(out_dir: str | os.PathLike, in_dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """:func:`prepare_output`, then hold :func:`~vision_lib.io.folder_lock` on the folder, so a second
    run into it stops at once; checked again under the lock, since a run that just finished may have
    filled the folder in between."""
    with folder_lock(prepare_output(out_dir, in_dir)) as out:
        yield prepare_output(out, in_dir)


def copy_grouped(pairs: Iterable[tuple[Path, Path]], *, link: bool = False, n_jobs: int | None = None) -> int:
    """Copy (or hard-link) ``(source, target)`` pairs in parallel threads; never overwrite a target.

    Returns the number of files written. Originals are only read.
    """
    from joblib import Parallel, delayed

    pairs = list(dict.fromkeys((Path(s), Path(t)) for s, t in pairs))
    for folder in {t.parent for _, t in pairs}:
        folder.mkdir(parents=True, exist_ok=True)

    def one(src: Path, dst: Path) -> int:
        # Both ways create the target atomically ("x" mode, link(2)): no check-then-write race.
        try:
            if link:
                try:
                    os.link(src, dst)
                    return 1
                except FileExistsError:
                    raise
                except OSError:  # other file system, or links not allowed: fall back to a copy
                    pass
            with open(src, "rb") as fin, open(dst, "xb") as fout:
                shutil.copyfileobj(fin, fout)
            shutil.copystat(src, dst)
        except FileExistsError:
            raise FileExistsError(f"{dst} exists; refusing to overwrite") from None
        return 1

    # Copying is I/O bound: threads are enough and avoid process start-up.
    return sum(Parallel(n_jobs=min(8, max(1, len(pairs))), prefer="threads")(delayed(one)(s, t) for s, t in pairs))


@contextmanager
def staged_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden folder inside ``path`` (an output folder held with :func:`folder_lock`) to fill;
    when the block ends normally its contents move up into ``path``, folders first and files (such
    as a ``metrics.json``) last, with Ctrl-C and SIGTERM held back meanwhile. On any failure or
    interrupt whatever this call moved is taken out again and ``path`` is left as it was: readers
    never see a half-written export, and an interrupted run leaves a folder the same command can use
    again. Staging folders of killed runs are removed first.

    ``path`` itself is never replaced (a shell sitting in it keeps seeing it).
    """
    import shutil
    import tempfile

    path = Path(path)
    for stale in path.glob(STAGING_PREFIX + "*"):  # no live run owns them: we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=path))
    moved: list[Path] = []
    try:
        yield tmp
        with signals_deferred():
            for entry in sorted(tmp.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
                moved.append(_move_new(entry, path / entry.name))
        tmp.rmdir()
    except BaseException:
        for entry in moved:  # this run's own files: a partial export is worse than none
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _move_new(src: Path, dst: Path) -> Path:
    """Rename ``src`` to ``dst`` (same file system), refusing with ``FileExistsError`` to replace
    anything but an empty folder; returns ``dst``."""
    try:
        if src.is_dir():
            os.rename(src, dst)  # fails on a non-empty folder or a file there
        else:
            try:
                os.link(src, dst)  # unlike rename, fails if anything is there
            except OSError as exc:
                if exc.errno == errno.EEXIST or dst.exists() or dst.is_symlink():
                    raise FileExistsError(errno.EEXIST, "exists", str(dst)) from None
                os.rename(src, dst)  # no hard links here (FAT, exFAT, some network shares)
            else:
                os.unlink(src)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
            raise FileExistsError(f"{dst} appeared during this run; it was not overwritten and this "
                                  "run's export was taken out again") from exc
        raise
    return dst


__all__ = ["CSV_TEXT", "csv_bytes", "flat_name", "is_inside", "check_output_folder", "check_output_file",
           "check_writable", "make_writable_folder", "write_atomic", "signals_deferred", "folder_lock",
           "STAGING_PREFIX", "holds_no_output", "prepare_output", "locked_output", "copy_grouped", "staged_folder"]
