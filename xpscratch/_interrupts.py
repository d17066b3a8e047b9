"""Hold Ctrl-C off while a commit runs, so that a change of state is never cut in half.

A training step computes its new arrays first (an interrupt there changes nothing) and
then stores them in a few Python assignments and in-place operations: the optimizer's
parameters and state, the Trainer's counters.  :func:`deferred_interrupts` makes such a
block indivisible for SIGINT: a Ctrl-C that arrives inside it is raised as soon as the
block ends, by the handler that was in place (Python's, ``KeyboardInterrupt``; Jupyter's;
or one the user installed).  Blocks nest; a second Ctrl-C inside a block waits with the
first.  Outside the blocks a Ctrl-C acts at once, as if nothing were installed.

Installing a signal handler costs more than a training step can spare, so a loop opens
:func:`holding_interrupts` once around all its steps (the Trainer does, in ``train()``):
the handler stays in place for the session and each block only counts.  A block outside
a session installs it for itself.

Only the main thread receives signals (and may install handlers): elsewhere both run
their blocks as they are.

A Ctrl-C whose ``KeyboardInterrupt`` is raised while a C function runs Python code (JAX's
do) can come back as ``SystemError: ... returned a result with an exception set``,
caused by the ``KeyboardInterrupt``: :func:`interrupt_of` finds it, and both context
managers raise it as the ``KeyboardInterrupt`` it is.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["deferred_interrupts", "holding_interrupts", "interrupt_of"]


class _Held:
    """The main thread's state: the handler we replaced, open sessions and blocks."""

    previous: Any = None  # the handler in place before ours; None: ours is not installed
    sessions = 0
    depth = 0  # deferred blocks open
    received: list[tuple[int, Any]] = []


def interrupt_of(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The Ctrl-C that ``exc`` is: itself, or the ``KeyboardInterrupt`` that caused a
    SystemError (a C function returned normally with the interrupt set); else None."""
    for _ in range(8):  # a SystemError may wrap another one; chains are short
        if isinstance(exc, KeyboardInterrupt):
            return exc
        if not isinstance(exc, SystemError):
            return None
        exc = exc.__cause__ or exc.__context__
    return None


def _reraise_interrupt(exc: BaseException | None) -> None:
    """In ``__exit__``: a SystemError that stands for a Ctrl-C leaves as the Ctrl-C."""
    interrupt = interrupt_of(exc)
    if interrupt is not None and interrupt is not exc:
        raise interrupt.with_traceback(interrupt.__traceback__) from None


def _handler(signum: int, frame: Any) -> None:
    if _Held.depth:
        _Held.received.append((signum, frame))
    else:  # outside a block: as if we were not there
        (_Held.previous or signal.default_int_handler)(signum, frame)


def _install() -> bool:
    previous = signal.signal(signal.SIGINT, _handler)
    if previous is _handler:
        # ours, left in place by an install that a Ctrl-C cut short (before ``previous``
        # was recorded): recording ourselves would make every later Ctrl-C recurse
        previous = signal.default_int_handler
    if not callable(previous):  # SIG_IGN, SIG_DFL or set outside Python: leave it
        signal.signal(signal.SIGINT, previous)
        return False
    _Held.previous = previous
    return True


def _uninstall() -> None:
    if signal.getsignal(signal.SIGINT) is _handler:  # not if someone replaced ours since
        signal.signal(signal.SIGINT, _Held.previous or signal.default_int_handler)
    _Held.previous = None


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class holding_interrupts:  # noqa: N801 (used as a function: ``with holding_interrupts():``)
    """A session: the holding handler stays installed, so blocks inside it are cheap."""

    __slots__ = ("_opened",)

    def __enter__(self) -> None:
        self._opened = _main_thread() and (_Held.previous is not None or _install())
        if self._opened:
            _Held.sessions += 1

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self._opened:
            _Held.sessions -= 1
            if _Held.sessions == 0 and _Held.depth == 0:
                _uninstall()
        _reraise_interrupt(exc)


class deferred_interrupts:  # noqa: N801 (used as a function: ``with deferred_interrupts():``)
    """Run the block with SIGINT held; an interrupt received meanwhile is raised after it."""

    __slots__ = ("_holds",)

    def __enter__(self) -> None:
        self._holds = _main_thread() and (_Held.previous is not None or _install())
        if self._holds:
            _Held.depth += 1

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if not self._holds:
            _reraise_interrupt(exc)
            return
        _Held.depth -= 1
        if _Held.depth:
            _reraise_interrupt(exc)
            return
        received, previous = _Held.received, _Held.previous
        _Held.received = []
        if _Held.sessions == 0:
            _uninstall()
        if received:
            previous(*received[0])  # raises KeyboardInterrupt with the default handler
        _reraise_interrupt(exc)
