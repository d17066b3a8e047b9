"""Ctrl-C held off for the length of a commit, then raised by the handler in place."""

from __future__ import annotations

import signal
import threading

import pytest

from xpscratch._interrupts import deferred_interrupts, holding_interrupts, interrupt_of

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


def _jax_style_interrupt() -> SystemError:
    """What CPython raises when a C function (JAX's) returns normally while the Ctrl-C's
    KeyboardInterrupt is set: a SystemError caused by it (_Py_CheckFunctionResult)."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError(
                "<built-in method execute of jaxlib.xla_extension.LoadedExecutable object> "
                "returned a result with an exception set"
            ) from ki
    except SystemError as exc:
        return exc


def test_interrupt_of_finds_the_ctrl_c_a_system_error_stands_for():
    ki = KeyboardInterrupt()
    assert interrupt_of(ki) is ki
    jax_style = _jax_style_interrupt()
    assert interrupt_of(jax_style) is jax_style.__cause__
    try:
        raise SystemError("wrapped again") from jax_style
    except SystemError as twice:
        assert interrupt_of(twice) is jax_style.__cause__
    try:
        raise SystemError("a real SystemError") from ValueError("bad")
    except SystemError as real:
        assert interrupt_of(real) is None
    assert interrupt_of(ValueError("x")) is None and interrupt_of(None) is None


@pytest.mark.parametrize("manager", [holding_interrupts, deferred_interrupts])
def test_a_system_error_that_is_a_ctrl_c_leaves_as_keyboard_interrupt(manager):
    """Issue 22 item 20: on JAX a Ctrl-C could surface as SystemError; train() (a
    holding session) and held blocks raise it as the KeyboardInterrupt it is."""
    error = _jax_style_interrupt()
    with pytest.raises(KeyboardInterrupt) as info:
        with manager():
            raise error
    assert info.value is error.__cause__
    with pytest.raises(SystemError, match="a real one"):
        with manager():
            raise SystemError("a real one")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_train_raises_a_jax_style_ctrl_c_as_keyboard_interrupt_and_resumes_exactly(backend):
    """The Trainer's session turns the SystemError into the Ctrl-C, after the step's undo:
    train() again gives the uninterrupted run's weights."""
    import numpy as np

    import xpscratch
    from xpscratch.networks import MultiLayerNetExtend
    from xpscratch.trainer import Trainer

    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(60, 6)), rng.integers(0, 3, 60)

    def make():
        net = MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, seed=1)
        # op by op, so that the patched gradient runs each step (a compiled step calls it
        # only while tracing); the session's conversion is the same for both
        return Trainer(net, x, t, x, t, epochs=2, mini_batch_size=20, verbose=False, compile=False)

    straight = make()
    straight.train()
    tr = make()
    real, calls = tr.network.gradient, []

    def gradient(*args):
        calls.append(1)
        if len(calls) == 3:
            raise _jax_style_interrupt()
        return real(*args)

    tr.network.gradient = gradient
    with pytest.raises(KeyboardInterrupt):
        tr.train()
    tr.network.gradient = real
    tr.train()
    for k, w in straight.network.params.items():
        np.testing.assert_array_equal(
            xpscratch.to_numpy(tr.network.params[k]), xpscratch.to_numpy(w)
        )
