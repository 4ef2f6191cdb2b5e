"""Import native libraries (TensorFlow, Keras) without their start-up notices on stderr.

TensorFlow writes its oneDNN notice and absl's "All log messages before absl::InitializeLog()" line
from C++ straight to file descriptor 2 at import, whatever ``TF_CPP_MIN_LOG_LEVEL`` says; in Jupyter
they become pink stderr boxes in every report. :func:`import_quietly` holds fd 2 in a temporary file
for the import and writes back every line that is not one of those known notices, so real warnings
and errors still reach the user.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
import threading
from types import ModuleType

__all__ = ["import_quietly", "STARTUP_NOTICES"]

#: Start-up lines that carry no information for a user (matched per line).
STARTUP_NOTICES = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^I\d{4} .*\] oneDNN custom operations are on\."),
    re.compile(r"^I\d{4} .*\] This TensorFlow binary is optimized to use available CPU instructions"),
    re.compile(r"^To enable the following instructions: .* in other operations, rebuild TensorFlow"),
    re.compile(r"^I\d{4} .*cpu_feature_guard\.cc"),
)
_LOCK = threading.Lock()


def _is_notice(line: str) -> bool:
    return any(p.search(line) for p in STARTUP_NOTICES)


def import_quietly(name: str) -> ModuleType:
    """``importlib.import_module(name)`` with the known start-up notices filtered out of stderr."""
    if name in sys.modules:
        return sys.modules[name]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): import as it is
            return importlib.import_module(name)
        with tempfile.TemporaryFile(mode="w+b") as held:
            os.dup2(held.fileno(), 2)
            try:
                module = importlib.import_module(name)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                held.seek(0)
                kept = [line for line in held.read().decode("utf-8", "replace").splitlines()
                        if line.strip() and not _is_notice(line)]
                if kept:
                    sys.stderr.write("\n".join(kept) + "\n")
    return module
