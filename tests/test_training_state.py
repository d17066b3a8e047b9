"""The Trainer's run settings after construction (xpscratch/training/state.py)."""

from __future__ import annotations

import numpy as np
import pytest

import xpscratch
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.trainer import Trainer


def blobs(n: int = 90, d: int = 10, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    t = rng.integers(0, k, n)
    return centers[t] + rng.normal(size=(n, d)), t.astype(np.int64)


X, T = blobs()


def make(float_dtype, **kw) -> Trainer:
    net = MultiLayerNetExtend(10, [8], 4, dtype=float_dtype, use_batchnorm=True, seed=3)
    kw.setdefault("mini_batch_size", 16)
    return Trainer(net, X, T, X[:30], T[:30], optimizer="Adam", verbose=False, **kw)


def weights(tr: Trainer) -> dict[str, np.ndarray]:
    return {k: xpscratch.to_numpy(v) for k, v in tr.network.params.items()}


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ({"epochs": 1}, {"epochs": 3}),
        ({"epochs": 3, "max_iterations": 7}, {"max_iterations": None}),
        ({"max_iterations": 4}, {"max_iterations": 13}),
    ],
    ids=["epochs", "max-iterations-lifted", "max-iterations"],
)
def test_a_longer_run_set_after_train_is_honoured(backend, float_dtype, first, then):
    """``tr.epochs = 3`` after train() was silently ignored (issue 22 item 19): the next
    train() goes on to the new end, and the numbers are the straight run's."""
    straight = make(float_dtype, **{**first, **then})
    straight.train()
    tr = make(float_dtype, **first)
    tr.train()
    assert tr.current_iter < straight.current_iter
    for name, value in then.items():
        setattr(tr, name, value)
    assert tr.max_iter == straight.max_iter
    tr.train()
    assert tr.current_iter == straight.current_iter == straight.max_iter
    assert tr.current_epoch == straight.current_epoch
    assert tr.train_loss_list == straight.train_loss_list
    assert tr.train_acc_list == straight.train_acc_list
    for k, w in weights(straight).items():
        np.testing.assert_array_equal(weights(tr)[k], w, err_msg=k)
    assert tr.state_dict()["trainer"]["run"]["epochs"] == straight.epochs  # resumes so


def test_a_shorter_run_set_after_train_ends_it(backend, float_dtype):
    tr = make(float_dtype, epochs=3)
    tr.train()
    done = tr.current_iter
    tr.epochs = 1
    assert tr.finished
    tr.train()
    assert tr.current_iter == done  # nothing undone, nothing more trained


def test_bad_lengths_and_a_new_batch_size_are_refused_and_change_nothing(backend, float_dtype):
    tr = make(float_dtype, epochs=1)
    tr.train()
    max_iter = tr.max_iter
    for name, value, message in (
        ("epochs", -1, "epochs must be a non-negative int or None, got -1"),
        ("epochs", 2.5, "epochs must be a non-negative int or None, got 2.5"),
        ("max_iterations", True, "max_iterations must be a non-negative int"),
        ("epochs", None, "epochs=None: give epochs or max_iterations"),
    ):
        with pytest.raises(ValueError, match=message):
            setattr(tr, name, value)
        assert (tr.epochs, tr.max_iterations, tr.max_iter) == (1, None, max_iter)
    with pytest.raises(AttributeError, match=r"mini-batch size \(16\) is fixed.*Trainer.resume"):
        tr.batch_size = 32
    assert tr.batch_size == 16
    tr.batch_size = 16  # the same size: nothing changes
