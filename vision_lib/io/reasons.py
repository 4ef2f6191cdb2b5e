"""Why a file is not used: :class:`ImageError` when decoding, :class:`Rejected` in a batch, and
the words for a file that cannot be opened (:func:`cannot_read`)."""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path


class ImageError(ValueError):
    """A file that cannot be used as a photo; ``reason`` says why in a few words."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class Rejected:
    """One input left out of a batch, and why."""

    source: str
    reason: str

    def __iter__(self):
        """``source, reason = rejected`` (as the ``(source, reason)`` pairs of older tables)."""
        return iter((self.source, self.reason))


def cannot_read(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """The reason for a file that could not be opened, in the same words whether it was found in a
    folder or named on the command line (a broken link is said to be one, not "No such file")."""
    if exc.errno == errno.ELOOP:
        return "cannot read: symbolic link loop"
    if exc.errno == errno.ENOENT and path is not None and Path(path).is_symlink():
        return "cannot read: broken link (its target does not exist)"
    return f"cannot read: {exc.strerror or exc}"


__all__ = ["ImageError", "Rejected", "cannot_read"]
