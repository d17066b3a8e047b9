"""Hold Ctrl-C off while a commit runs, so that a change of state is never cut in half.

A training step computes its new arrays first (an interrupt there changes nothing) and
then stores them in a few Python assignments: the optimizer's parameters and state, the
Trainer's counters.  :func:`deferred_interrupts` makes that short block indivisible for
SIGINT: a Ctrl-C that arrives inside it is raised as soon as the block ends, by the
handler that was in place (Python's, ``KeyboardInterrupt``; or Jupyter's, or one the
user installed).  Blocks nest; a second Ctrl-C inside a block is held off with the first.

Only the main thread receives signals (and may install handlers): elsewhere the block
runs as it is.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["deferred_interrupts"]


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT held; an interrupt received meanwhile is raised after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL, or installed outside Python: leave it
        yield
        return
    received: list[tuple[int, Any]] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(*received[0])  # raises KeyboardInterrupt with the default handler
