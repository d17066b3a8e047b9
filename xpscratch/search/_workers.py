"""What the search's worker processes share, whichever engine runs them (random or Optuna)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from .. import backend as _backend
from .._threads import set_thread_limit
from .objective import TrialRecord

__all__ = ["SPAWN_HINT", "OnTrial", "SearchError", "activate", "device_spec"]

SPAWN_HINT = (
    "Worker processes are spawned and import the main script: a script that starts a "
    "search must do so under `if __name__ == '__main__':`"
)
OnTrial = Callable[[TrialRecord, int, int], None]  # (trial, finished so far, total)


class SearchError(RuntimeError):
    """A worker process failed or died; rerun the same search (with a storage) to resume."""


def device_spec(b: _backend.Backend) -> str | None:
    """A device argument that recreates ``b`` in another process."""
    if b.name == "array_api_strict":
        return b.device._device
    if b.name == "cupy":
        return f"cuda:{b.device.id}"
    return None if b.name == "numpy" else str(b.device)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_S = 0.5  # how often the fallback watch looks for the parent


def die_with_parent() -> None:
    """In a worker: exit when the search's process dies, even by SIGKILL (no orphans).

    Linux delivers SIGKILL at the parent's death (``PR_SET_PDEATHSIG``); elsewhere, and as
    a fallback, a daemon thread exits when the worker is handed to another parent.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the watch below still works
    if os.getppid() != parent.pid:  # the parent died before the signal was asked for
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent.pid:
            time.sleep(WATCH_S)
        os._exit(1)

    threading.Thread(target=watch, name="xpscratch-parent-watch", daemon=True).start()


def activate(name: str, device: str | None, dtype: str, workers: int) -> None:
    """In a worker process: die with the parent; the parent's backend, device and dtype."""
    die_with_parent()
    _backend.set_backend(name, device)
    _backend.set_default_dtype(dtype)
    set_thread_limit()  # one BLAS thread per worker: N workers with N threads each fight
    if name == "torch" and (device or "cpu").startswith("cpu"):
        # the workers share the cores; each with all of them would oversubscribe
        _backend.set_torch_threads((os.cpu_count() or 1) // workers)
