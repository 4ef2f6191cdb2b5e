"""A disk cache keyed by file content, so a second run over the same photos is near-instant.

Built on :class:`joblib.Memory` (well kept, handles numpy arrays and concurrent writers); the key
is the SHA-1 of the file's bytes plus the parameters, never the path, so renamed or copied photos
hit the cache and an edited photo misses it. The same digest finds the files saved twice
(:func:`copy_groups`, :func:`copied_files`), which every stage that holds photos out keeps on one side.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import os
import stat
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import cache_dir


@functools.lru_cache(maxsize=65536)
def _digest(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes, memoised per path, size, inode and modification and change times
    (a rewrite that restores the old modification time still changes the change time).

    Raises:
        OSError: the file cannot be read, or is not a regular file (a named pipe would block).
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def copy_groups(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """A group number per path, the same for files with the same bytes (SHA-1 by :func:`file_digest`,
    memoised per file); a file that cannot be read is a group of its own."""
    keys = []
    for p in paths:
        try:
            keys.append(file_digest(p))
        except OSError:
            keys.append(f"unreadable:{p}")
    return np.unique(keys, return_inverse=True)[1].reshape(-1)


def copied_files(paths: Sequence[str | os.PathLike]) -> list[list[str | os.PathLike]]:
    """The files of ``paths`` saved more than once (same bytes), one list per photo, in path order."""
    groups = copy_groups(paths)
    sizes = np.bincount(groups)
    out: dict[int, list] = {}
    for p, g in zip(paths, groups):
        if sizes[g] > 1:
            out.setdefault(int(g), []).append(p)
    return list(out.values())


def _joblib_dir() -> Path:
    return cache_dir() / "joblib"


@functools.lru_cache(maxsize=1)
def memory():
    """The shared :class:`joblib.Memory` under :func:`vision_lib.config.cache_dir`."""
    import logging

    import joblib

    logging.getLogger("joblib").addFilter(_short_load_failure)
    return joblib.Memory(_joblib_dir(), verbose=0)


def _short_load_failure(record) -> bool:
    # joblib recomputes a damaged cache entry (right) but logs a whole traceback for each (noise):
    # one line per entry says the same.
    text = record.getMessage()
    if "Exception while loading results for" in text:
        last = text.strip().splitlines()[-1]
        record.msg, record.args = f"vision_lib cache: a damaged entry was recomputed ({last})", None
    return True


def cached(func, ignore: tuple[str, ...] = ("path",)):
    """Cache ``func(digest, ..., path=...)`` on disk; the ``ignore`` arguments are not part of the key.

    Callers pass ``file_digest(path)`` as the first argument. Set ``VISION_LIB_CACHE=off`` to
    disable caching (e.g. to time the uncached path in a benchmark).
    """
    inner = None

    def memorized():
        nonlocal inner
        if inner is None:
            inner = memory().cache(func, ignore=list(ignore))
        return inner

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if not enabled():
            return func(*args, **kwargs)
        try:
            return memorized()(*args, **kwargs)
        except FileNotFoundError:
            # joblib race: when the function's code changed, parallel workers all clear its cache
            # folder at once and one can lose a file the other is writing. The second call finds the
            # folder settled (a real missing file fails again).
            return memorized()(*args, **kwargs)

    def in_cache(*args, **kwargs) -> bool:
        """True when this call's result is already on disk (cheap: nothing is computed)."""
        return enabled() and memorized().check_call_in_cache(*args, **kwargs)

    wrapper.in_cache = in_cache
    return wrapper


def enabled() -> bool:
    """False when ``VISION_LIB_CACHE=off`` (used to time the uncached path), or when the cache
    folder cannot be created or written (then a warning says so once, and work goes on uncached)."""
    return os.environ.get("VISION_LIB_CACHE") != "off" and _writable(os.environ.get("VISION_LIB_CACHE"))


@functools.lru_cache(maxsize=8)
def _writable(setting: str | None) -> bool:
    # `setting` only keys the memo: a changed $VISION_LIB_CACHE is checked afresh.
    from .io import make_writable_folder

    try:
        make_writable_folder(_joblib_dir())
        return True
    except OSError as exc:
        where = exc.filename or setting or "the cache folder"
        warnings.warn(f"disk cache unavailable ({exc.strerror or exc}: {where}); running without it. "
                      "Set VISION_LIB_CACHE to a writable folder, or to 'off'.", RuntimeWarning, stacklevel=3)
        return False


#: The public names of this module.
__all__ = ["file_digest", "copy_groups", "copied_files", "memory", "cached", "enabled"]
