"""No device-to-host traffic inside a training step (rule 3), proven on the CPU.

A step of the book's BN + Dropout network with Adam, and the Trainer between two report
points, run on JAX with every way back to the host closed:

* ``jax.transfer_guard_device_to_host("disallow")``: binding on a GPU, but JAX's CPU
  arrays are read zero-copy and its guard does not see those reads
  (https://github.com/jax-ml/jax/issues/16602), so on the CPU also
* a tripwire on JAX's host view of an array (``ArrayImpl._value``), which every Python
  scalar conversion goes through: ``float(loss)``, ``bool``, ``int``, ``item``,
  ``tolist``, formatting, printing; and
* ``xpscratch.to_numpy``, the library's one way back to the host, made to raise.

(array-api-strict's ``device1`` refuses only NumPy conversions, not ``float(loss)``, so
it cannot show this.)  ``test_the_guard_catches_a_float_of_the_loss`` shows that a
``float(loss)`` added to the step fails, so that a passing test means something.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pytest

import xpscratch
from xpscratch import backend as B
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.optim import Adam
from xpscratch.trainer import Trainer

jax = pytest.importorskip("jax")


class HostTransfer(RuntimeError):
    """A device array was read back to the host inside a guarded block."""


@contextlib.contextmanager
def no_device_to_host(monkeypatch):
    """Fail on any device-to-host read of a JAX array (and on ``to_numpy``) in the block."""
    array_type = type(jax.numpy.zeros(1))
    host_view, to_numpy = array_type.__dict__["_value"], B.to_numpy

    def refuse(*_args, **_kwargs):
        raise HostTransfer("a device array was read back to the host inside a training step")

    with monkeypatch.context() as m:
        m.setattr(array_type, "_value", property(refuse))
        # np.asarray reads a CPU array through the buffer protocol, past _value: the
        # library's one host copy, to_numpy, is closed as well
        for module in [mod for name, mod in sys.modules.items() if name.startswith("xpscratch")]:
            if getattr(module, "to_numpy", None) is to_numpy:  # every module's own name
                m.setattr(module, "to_numpy", refuse)
        with jax.transfer_guard_device_to_host("disallow"):
            yield
    assert array_type.__dict__["_value"] is host_view


@pytest.fixture(params=["jax", "jax-x64"])
def dtype(request):
    """JAX in its default 32-bit mode (float32), and in 64-bit mode (float64)."""
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", request.param == "jax-x64")
    try:
        with xpscratch.use_backend("jax", "cpu"):
            yield "float64" if request.param == "jax-x64" else "float32"
    finally:
        jax.config.update("jax_enable_x64", before)


def _data(n: int, dtype: str):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 12))
    t = rng.integers(0, 4, n)
    return xpscratch.asarray(x, dtype), xpscratch.asarray(t)


def _network(dtype: str) -> MultiLayerNetExtend:
    return MultiLayerNetExtend(12, [10, 10], 4, use_batchnorm=True, use_dropout=True,
                               dropout_ratio=0.3, seed=3, dtype=dtype)  # fmt: skip


def _step(network, optimizer, x, t):
    grads = network.gradient(x, t)
    optimizer.update(network.params, grads)
    return network.last_layer.loss


def _step_reading_the_loss(network, optimizer, x, t, read):
    loss = _step(network, optimizer, x, t)
    read(loss)  # a per-step sync: what the test must catch
    return loss


def test_training_steps_stay_on_the_device(dtype, monkeypatch):
    x, t = _data(16, dtype)
    network, optimizer = _network(dtype), Adam(lr=0.01)
    _step(network, optimizer, x, t)  # outside: one-time probes may read a value back
    before = xpscratch.to_numpy(network.params["W1"])
    with no_device_to_host(monkeypatch):
        for _ in range(3):
            _step(network, optimizer, x, t)
    assert not np.array_equal(xpscratch.to_numpy(network.params["W1"]), before)  # it trained
    assert np.isfinite(xpscratch.to_numpy(network.last_layer.loss))


def test_the_trainer_between_report_points_stays_on_the_device(dtype, monkeypatch):
    x, t = _data(64, dtype)
    trainer = Trainer(_network(dtype), x, t, x[:8], t[:8], epochs=2, mini_batch_size=8,
                      optimizer="adam", optimizer_param={"lr": 0.01}, verbose=False,
                      progress=False, log_every=1000, seed=5)  # fmt: skip
    assert trainer.iter_per_epoch == 8
    trainer.train_step()  # the epoch's shuffle and the one-time probes
    with no_device_to_host(monkeypatch):
        for _ in range(trainer.iter_per_epoch - 2):  # up to, not into, the epoch's end
            trainer.train_step()
    assert trainer.iter_in_epoch == trainer.iter_per_epoch - 1
    trainer.train_step()  # the report point: accuracies and losses come back now
    assert len(trainer.train_loss_list) == trainer.iter_per_epoch
    assert all(np.isfinite(trainer.train_loss_list))


@pytest.mark.parametrize(
    "read", [float, lambda a: xpscratch.to_numpy(a)], ids=["float", "to_numpy"]
)
def test_the_guard_catches_a_float_of_the_loss(dtype, monkeypatch, read):
    x, t = _data(16, dtype)
    network, optimizer = _network(dtype), Adam(lr=0.01)
    _step(network, optimizer, x, t)
    with no_device_to_host(monkeypatch), pytest.raises(HostTransfer):
        _step_reading_the_loss(network, optimizer, x, t, read)
    _step(network, optimizer, x, t)  # and the same step without the float passes
    with no_device_to_host(monkeypatch):
        _step(network, optimizer, x, t)
