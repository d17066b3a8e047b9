"""Moving a run between backends: ``network.to``, ``optimizer.to``, ``Trainer.to``
(issue 23).  Reference: the same run done on the target backend from the start."""

from __future__ import annotations

import numpy as np
import pytest

import xpscratch
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.trainer import Trainer

TARGETS = [
    pytest.param(("torch", "cpu"), id="torch"),
    pytest.param(("array_api_strict", None), id="strict"),
]


def _data():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((200, 8))
    t = rng.integers(0, 3, 200)
    return x, t, x[:40], t[:40]


def _trainer() -> Trainer:
    net = MultiLayerNetExtend(
        8,
        [10, 6],
        3,
        seed=5,
        use_batchnorm=True,
        use_dropout=True,
        dropout_ratio=0.2,
        weight_decay_lambda=0.01,
        dtype="float64",
    )
    return Trainer(
        net,
        *_data(),
        mini_batch_size=20,
        optimizer="Adam",
        optimizer_param={"lr": 0.01},
        max_iterations=100,
        evaluate_sample_num_per_epoch=40,
        verbose=False,
        seed=3,
    )


def _state(tr: Trainer) -> dict[str, np.ndarray]:
    net = tr.network
    out = {k: xpscratch.to_numpy(v) for k, v in net.params.items()}
    out.update({k: xpscratch.to_numpy(v) for k, v in net._buffers().items()})
    for slot, arrays in tr.optimizer.state.items():
        out.update({f"{slot}.{k}": xpscratch.to_numpy(v) for k, v in arrays.items()})
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_fifty_steps_then_moved_equal_a_hundred_steps_there(target):
    pytest.importorskip(target[0])
    with xpscratch.use_backend(*target):
        there = _trainer()
        for _ in range(100):
            there.train_step()
    with xpscratch.use_backend("numpy"):
        moved = _trainer()
        for _ in range(50):
            moved.train_step()
    moved.to(*target)
    assert xpscratch.backend.backend_name(moved.network.xp) == target[0]
    for _ in range(50):
        moved.train_step()
    want, got = _state(there), _state(moved)
    assert set(got) == set(want)
    # float64: the backends differ only in summation order; biases before batch norm get
    # no gradient (noise around 1e-12), hence the absolute tolerance
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-10, err_msg=key)
    np.testing.assert_allclose(moved.train_loss_list, there.train_loss_list, rtol=1e-9)
    assert moved.test_acc_list == there.test_acc_list


def test_a_moved_network_computes_in_its_new_namespace():
    """Weight decay (l1 and l2) and every helper follow the arrays, not the creation call."""
    strict = pytest.importorskip("array_api_strict")
    x, t, _, _ = _data()
    for kind in ("l1", "l2"):
        with xpscratch.use_backend("numpy"):
            net = MultiLayerNetExtend(
                8, [6], 3, seed=1, weight_decay_lambda=0.1, weight_decay_kind=kind
            )
            want = float(net.loss(xpscratch.asarray(x, "float32"), xpscratch.asarray(t)))
            want_dW = xpscratch.to_numpy(
                net.gradient(xpscratch.asarray(x, "float32"), xpscratch.asarray(t))["W1"]
            )
        net.to("array_api_strict")
        assert net.xp is strict and net.dtype == strict.float32
        with xpscratch.use_backend("array_api_strict"):
            xs, ts = xpscratch.asarray(x, "float32"), xpscratch.asarray(t)
        loss = net.loss(xs, ts)
        assert type(loss).__module__.startswith("array_api_strict")
        assert float(xpscratch.to_numpy(loss)) == pytest.approx(want, rel=1e-6)
        np.testing.assert_allclose(
            xpscratch.to_numpy(net.gradient(xs, ts)["W1"]), want_dW, rtol=1e-5, atol=1e-7
        )


def test_to_changes_the_dtype_on_the_same_backend():
    with xpscratch.use_backend("numpy"):
        net = MultiLayerNetExtend(4, [3], 2, seed=0, use_batchnorm=True, dtype="float32")
    w = xpscratch.to_numpy(net.params["W1"])
    net.to(dtype="float64")
    assert net.dtype == np.float64 and net.layers["BatchNorm1"].running_mean.dtype == np.float64
    np.testing.assert_array_equal(xpscratch.to_numpy(net.params["W1"]), w.astype(np.float64))


def test_moving_to_a_device_without_float64_is_refused_before_anything_moves():
    with xpscratch.use_backend("numpy"):
        net = MultiLayerNetExtend(4, [3], 2, seed=0, dtype="float64")
    before = net.params["W1"]
    with pytest.raises(xpscratch.BackendError, match="float64"):
        net.to("array_api_strict", "no_float64")
    assert net.params["W1"] is before
