"""Where xpscratch keeps what it can make again: downloaded datasets, compiled programs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/xpscratch``, or ``~/.cache/xpscratch``.

    The XDG spec says a relative ``XDG_CACHE_HOME`` is invalid and must be ignored.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xpscratch"
