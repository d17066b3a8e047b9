"""Ctrl-C held off for the length of a commit, then raised by the handler in place."""

from __future__ import annotations

import signal
import threading

import pytest

from xpscratch._interrupts import deferred_interrupts, holding_interrupts

# every test here starts from Python's own handler (xdist's workers ignore SIGINT)
pytestmark = pytest.mark.usefixtures("python_sigint")


def test_a_ctrl_c_inside_the_block_is_raised_when_the_block_ends():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            signal.raise_signal(signal.SIGINT)
            done.append("after the signal")  # still runs: the block is not cut
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_signal_no_interrupt_and_the_handler_is_put_back():
    with deferred_interrupts():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_blocks_raise_once_at_the_outer_end():
    trace = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            with deferred_interrupts():
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)  # a second Ctrl-C waits with the first
                trace.append("inner")
            trace.append("outer")
    assert trace == ["inner", "outer"]


def test_the_handler_in_place_gets_the_signal_afterwards():
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    with deferred_interrupts():
        signal.raise_signal(signal.SIGINT)
        assert received == []
    assert received == [signal.SIGINT]


def test_an_error_in_the_block_propagates_and_restores_the_handler():
    with pytest.raises(ValueError):
        with deferred_interrupts():
            raise ValueError("boom")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_the_block_just_runs():
    # signal.signal raises ValueError there: the block must not try it
    result = []

    def work():
        with deferred_interrupts():
            result.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert result == [signal.default_int_handler]


def test_a_session_keeps_the_handler_and_blocks_inside_it_still_hold():
    with holding_interrupts():
        installed = signal.getsignal(signal.SIGINT)
        assert installed is not signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # outside a block: at once, as usual
        trace = []
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupts():
                signal.raise_signal(signal.SIGINT)
                trace.append("after the signal")
        assert trace == ["after the signal"]
        with deferred_interrupts():
            assert signal.getsignal(signal.SIGINT) is installed  # no reinstalling per block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_session_opened_inside_a_block_leaves_the_block_holding():
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            with holding_interrupts():
                pass
            signal.raise_signal(signal.SIGINT)  # still held: the block is open
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_installed_during_a_session_is_left_in_place():
    def mine(signum, frame):
        pass

    with holding_interrupts():
        signal.signal(signal.SIGINT, mine)
    assert signal.getsignal(signal.SIGINT) is mine


def test_an_ignored_sigint_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with deferred_interrupts():
        signal.raise_signal(signal.SIGINT)  # ignored, as before: nothing is raised later
    with holding_interrupts():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_ctrl_c_that_cut_the_install_short_does_not_break_later_ones():
    """A Ctrl-C between installing the handler and recording the one it replaced left
    ours in place with nothing recorded; the next install then recorded ours as the
    previous handler, and every later Ctrl-C raised RecursionError (issue 22)."""
    from xpscratch import _interrupts

    assert _interrupts._Held.previous is None
    signal.signal(signal.SIGINT, _interrupts._handler)  # the state the cut install left
    try:
        for _ in range(2):
            with holding_interrupts():
                with pytest.raises(KeyboardInterrupt):
                    with deferred_interrupts():
                        signal.raise_signal(signal.SIGINT)
                with pytest.raises(KeyboardInterrupt):
                    signal.raise_signal(signal.SIGINT)  # outside a block: at once
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
