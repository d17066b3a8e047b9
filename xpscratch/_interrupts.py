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

import signal
import threading
from typing import Any

__all__ = ["deferred_interrupts"]


class deferred_interrupts:  # noqa: N801 (used as a function: ``with deferred_interrupts():``)
    """Run the block with SIGINT held; an interrupt received meanwhile is raised after it.

    Cheap, since it runs once per training step: the outermost block installs the holding
    handler (one ``signal.signal`` call) and puts the previous one back; inner blocks only
    count.
    """

    __slots__ = ("_holds",)
    _depth = 0  # blocks open in the main thread
    _previous: Any = None
    _received: list[tuple[int, Any]] = []

    def __enter__(self) -> None:
        cls = deferred_interrupts
        self._holds = False
        if threading.current_thread() is not threading.main_thread():
            return
        if cls._depth == 0:
            previous = signal.signal(signal.SIGINT, _hold)
            if not callable(previous):  # SIG_IGN, SIG_DFL or set outside Python: leave it
                signal.signal(signal.SIGINT, previous)
                return
            cls._previous, cls._received = previous, []
        cls._depth += 1
        self._holds = True

    def __exit__(self, *exc: object) -> None:
        if not self._holds:
            return
        cls = deferred_interrupts
        cls._depth -= 1
        if cls._depth:
            return
        previous, received = cls._previous, cls._received
        cls._previous, cls._received = None, []
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(*received[0])  # raises KeyboardInterrupt with the default handler


def _hold(signum: int, frame: Any) -> None:
    deferred_interrupts._received.append((signum, frame))
