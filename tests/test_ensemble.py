"""Ensembles: averaged softmax probabilities and their accuracy, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import xpscratch
from xpscratch.backend import namespace
from xpscratch.ensemble import ensemble_accuracy, ensemble_probabilities
from xpscratch.networks import MultiLayerNet


class FixedScores:
    """A stand-in network whose scores for sample i are row i of ``scores``.

    Its input is a column of sample indices, so chunked evaluation finds the right rows.
    """

    def __init__(self, scores, dtype):
        self.scores = xpscratch.asarray(np.asarray(scores, dtype=np.float64), dtype)

    def predict(self, x, train_flg=False):
        assert train_flg is False  # ensembles predict in test mode
        xp = namespace(x)
        index = xpscratch.backend.index_dtype(xp, xpscratch.backend.device_of(x))
        return xp.take(self.scores, xp.astype(x[:, 0], index), axis=0)


def softmax_rows(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_averaging_probabilities_by_hand(backend, float_dtype):
    ln = np.log
    # sample 0: two members lean to class 0 (0.6 : 0.4), one is sure of class 1 (0.1 : 0.9)
    #   mean = (1.3/3, 1.7/3): class 1, although a majority vote would say class 0
    # sample 1: all three prefer class 0
    members = [
        FixedScores([[ln(0.6), ln(0.4)], [ln(0.7), ln(0.3)]], float_dtype),
        FixedScores([[ln(0.6), ln(0.4)], [ln(0.8), ln(0.2)]], float_dtype),
        FixedScores([[ln(0.1), ln(0.9)], [ln(0.6), ln(0.4)]], float_dtype),
    ]
    x = xpscratch.asarray(np.array([[0.0], [1.0]]), float_dtype)
    p = xpscratch.to_numpy(ensemble_probabilities(members, x))
    tol = 1e-12 if float_dtype == "float64" else 1e-6
    np.testing.assert_allclose(p, [[1.3 / 3, 1.7 / 3], [2.1 / 3, 0.9 / 3]], rtol=tol)
    t = xpscratch.asarray(np.array([1, 0]))
    assert ensemble_accuracy(members, x, t) == 1.0
    assert ensemble_accuracy(members[:2], x, t) == 0.5  # without the sure member: wrong on 0
    assert ensemble_accuracy(members, x, t, batch_size=1) == 1.0


def test_matches_numpy_for_real_networks(backend, float_dtype):
    rng = np.random.default_rng(0)
    X, T = rng.standard_normal((23, 6)), rng.integers(0, 4, 23)
    nets = [MultiLayerNet(6, [5], 4, weight_init_std=1.0, seed=s, dtype=float_dtype)
            for s in range(3)]  # fmt: skip
    x, t = xpscratch.asarray(X, float_dtype), xpscratch.asarray(T)
    scores = [xpscratch.to_numpy(n.predict(x)).astype(np.float64) for n in nets]
    p_ref = np.mean([softmax_rows(s) for s in scores], axis=0)
    p = ensemble_probabilities(nets, x)
    assert p.dtype == x.dtype and xpscratch.backend.device_of(p) == backend.device
    tol = 1e-12 if float_dtype == "float64" else 1e-5
    np.testing.assert_allclose(xpscratch.to_numpy(p), p_ref, rtol=tol, atol=tol)
    acc_ref = float(np.mean(np.argmax(p_ref, axis=1) == T))
    acc = ensemble_accuracy(nets, x, t)
    assert isinstance(acc, float) and acc == acc_ref
    assert ensemble_accuracy(nets, x, t, batch_size=5) == acc  # chunks of 5, 5, ..., 3
    assert ensemble_accuracy(nets, x, xpscratch.asarray(np.eye(4)[T], float_dtype)) == acc
    # the members disagree, so the test above was not trivially one network's accuracy
    assert len({n.accuracy(x, t) for n in nets}) > 1
    assert ensemble_accuracy(nets[:1], x, t) == nets[0].accuracy(x, t)  # one member: itself


def test_bad_ensembles_are_refused():
    x = xpscratch.asarray(np.zeros((2, 6)), "float64")
    with pytest.raises(ValueError, match="at least one network"):
        ensemble_probabilities([], x)
    a, b = MultiLayerNet(6, [5], 3, dtype="float64"), MultiLayerNet(6, [5], 4, dtype="float64")
    with pytest.raises(ValueError, match="disagree on the output shape"):
        ensemble_probabilities([a, b], x)
