"""The plug-ins of :mod:`vision_lib.models`, as ``.models`` inside this package.

The disk cache keys :func:`vision_lib.faces.batch._describe_impl` by its source text, which imports
``from .models``: written in the single-module faces.py, that meant :mod:`vision_lib.models`. This
module keeps the text (and so the cache's entries) valid: every name is looked up in
:mod:`vision_lib.models` when asked for, so a patch of ``vision_lib.models.X`` is seen here too.
"""
from __future__ import annotations

from .. import models as _models


def __getattr__(name: str):
    return getattr(_models, name)


#: The public names of this module: those of :mod:`vision_lib.models`.
__all__ = list(_models.__all__)
