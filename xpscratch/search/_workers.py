"""What the search's worker processes share, whichever engine runs them (random or Optuna)."""

from __future__ import annotations

import ast
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

__all__ = ["SPAWN_HINT", "OnTrial", "SearchError", "activate", "device_spec", "worker_died"]

SPAWN_HINT = (
    "Worker processes are spawned and import the main script: a script that starts a "
    "search must do so under `if __name__ == '__main__':`"
)
MEMORY_HINT = (
    "A process killed by SIGKILL was most often stopped by the system for want of memory: "
    "run fewer workers (workers=N) or a smaller training set (train_size=)"
)
OnTrial = Callable[[TrialRecord, int, int], None]  # (trial, finished so far, total)


class SearchError(RuntimeError):
    """A worker process failed or died, or the storage failed; rerun the same search (with
    a storage) to resume.  ``trials``: the records of the trials that had finished."""

    trials: list[TrialRecord] = []  # noqa: RUF012 (each raise sets its own list)


def unguarded_main_script() -> bool:
    """Whether this process runs a script that starts work outside
    ``if __name__ == "__main__":`` (spawned workers re-run it, and die of it).

    Not a notebook or an interactive session (nothing to re-run), not the xpscratch
    command or ``python -m xpscratch`` (guarded), not a script whose guard is there.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if not path or spec == "__main__" or spec.endswith(".__main__"):
        return False  # multiprocessing does not re-run a package's __main__ (python -m pkg)
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return False  # cannot tell: give no advice rather than wrong advice
    return not any(isinstance(node, ast.If) and _is_main_test(node.test) for node in tree.body)


def _is_main_test(test: ast.expr) -> bool:
    if not (
        isinstance(test, ast.Compare)
        and len(test.comparators) == 1
        and isinstance(test.ops[0], ast.Eq)
    ):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    texts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and texts == ["__main__"]


def worker_died(pid: int | None, exitcode: int | None) -> str:
    """A dead worker's message, with the advice that applies to how it died and to how the
    search was started (the ``__main__`` advice only for a script that lacks the guard)."""
    what = "a search worker process" if pid is None else f"search worker process {pid}"
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = "died" if exitcode is None else f"died (exit code {exitcode})"
    advice = ["With a storage, rerun the same search to resume it"]
    if exitcode == -signal.SIGKILL:
        advice.insert(0, MEMORY_HINT)
    if unguarded_main_script():
        advice.append(SPAWN_HINT)
    return f"{what} {how}. " + " ".join(f"{a}." for a in advice)


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
