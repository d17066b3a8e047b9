"""Tests for xpscratch.layers: gradient checks on every backend and NumPy float64 references.

Gradient checks use central differences computed here on the host (not
xpscratch.gradient): each evaluation builds a fresh layer from host arrays, so a
Dropout layer draws the same mask (counter 0) every time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np
import pytest

import xpscratch
from xpscratch.backend import device_of
from xpscratch.layers import (
    Affine,
    BatchNormalization,
    Dropout,
    LayerNormalization,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)

SEEDS = (0, 1, 2)
EPS = 1e-6  # the book's BatchNormalization epsilon (and LayerNormalization's)


def dev(a: Any, dtype: str) -> Any:
    """A fresh copy of host data on the active backend (never the caller's array)."""
    return xpscratch.asarray(np.array(a, dtype=np.float64), dtype)


def host(a: Any) -> np.ndarray:
    return np.asarray(xpscratch.to_numpy(a), dtype=np.float64)


def check_tolerances(float_dtype: str) -> dict[str, float]:
    if float_dtype == "float64":
        return {"h": 1e-5, "rtol": 1e-6, "atol": 1e-8}
    # float32: a larger step so that rounding (~1e-7 / h) stays below the tolerance
    return {"h": 1e-2, "rtol": 1e-2, "atol": 1e-3}


def rounded(a: np.ndarray, float_dtype: str) -> np.ndarray:
    """Host values exactly representable in the test dtype (so perturbations are exact)."""
    return np.asarray(a, dtype=float_dtype).astype(np.float64)


def assert_on_backend(a: Any, backend: Any) -> None:
    assert array_api_compat.array_namespace(a) is backend.xp
    assert device_of(a) == backend.device


def gradient_check(
    build: Callable[[dict[str, Any]], Any],
    arrays: dict[str, np.ndarray],
    float_dtype: str,
    seed: int,
    backend: Any,
    *,
    forward: Callable[[Any, Any], Any] = lambda layer, x: layer.forward(x, train_flg=True),
    scalar_output: bool = False,
    tolerances: dict[str, float] | None = None,
) -> None:
    """Compare ``layer.backward`` with central differences of sum(forward(x) * R).

    ``arrays`` holds the host input ``x`` and the parameters; gradient ``dname`` of
    the layer is checked for every parameter ``name``.
    """
    tol = tolerances or check_tolerances(float_dtype)
    arrays = {k: rounded(v, float_dtype) for k, v in arrays.items()}

    def run(values: dict[str, np.ndarray]) -> tuple[Any, Any]:
        layer = build({k: dev(v, float_dtype) for k, v in values.items() if k != "x"})
        return layer, forward(layer, dev(values["x"], float_dtype))

    layer, out = run(arrays)
    rng = np.random.default_rng(1000 + seed)
    if scalar_output:
        weights = float(rng.uniform(0.5, 2.0))
        dx = layer.backward(weights)
    else:
        weights = rounded(rng.standard_normal(tuple(out.shape)), float_dtype)
        dx = layer.backward(dev(weights, float_dtype))
    assert_on_backend(dx, backend)
    analytic = {"x": dx, **{k: getattr(layer, "d" + k) for k in arrays if k != "x"}}

    def objective(values: dict[str, np.ndarray]) -> float:
        return float(np.sum(host(run(values)[1]) * weights))

    for name, base in arrays.items():
        numeric = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            f = []
            for step in (tol["h"], -tol["h"]):
                moved = base.copy()
                moved[idx] += step
                f.append(objective({**arrays, name: moved}))
            numeric[idx] = (f[0] - f[1]) / (2.0 * tol["h"])
        got = host(analytic[name])
        assert got.shape == base.shape, name
        assert np.any(numeric != 0.0), f"{name}: a zero gradient checks nothing"
        np.testing.assert_allclose(
            got, numeric, rtol=tol["rtol"], atol=tol["atol"], err_msg=f"d{name}, seed {seed}"
        )


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values with |x| >= 0.1, so that a step of h never crosses Relu's kink."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


# ---------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("seed", SEEDS)
def test_affine_gradient(backend, float_dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = {
        "x": rng.standard_normal((3, 2, 3)),  # N-d input, flattened to (3, 6)
        "W": rng.standard_normal((6, 4)),
        "b": rng.standard_normal(4),
    }
    gradient_check(lambda p: Affine(p["W"], p["b"]), arrays, float_dtype, seed, backend)


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_gradient(backend, float_dtype, seed):
    rng = np.random.default_rng(seed)
    arrays = {"x": away_from_zero(rng, (4, 5))}
    gradient_check(lambda p: Relu(), arrays, float_dtype, seed, backend)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("layer_cls", [Sigmoid, Tanh], ids=["Sigmoid", "Tanh"])
def test_sigmoid_tanh_gradient(backend, float_dtype, seed, layer_cls):
    rng = np.random.default_rng(seed)
    arrays = {"x": 2.0 * rng.standard_normal((4, 5))}
    gradient_check(lambda p: layer_cls(), arrays, float_dtype, seed, backend)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("label_kind", ["labels", "one-hot", "bool-one-hot"])
def test_softmax_with_loss_gradient(backend, float_dtype, seed, label_kind):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=4)
    arrays = {"x": 2.0 * rng.standard_normal((4, 5))}

    def labels_on_backend() -> Any:
        if label_kind == "labels":
            return xpscratch.asarray(labels)
        hot = np.eye(5)[labels]
        return (
            xpscratch.asarray(hot.astype(bool))
            if label_kind == "bool-one-hot"
            else dev(hot, float_dtype)
        )

    tol = check_tolerances(float_dtype)
    if float_dtype == "float64":
        # the loss has 1e-7 inside the log, so (y - t)/N is exact only to ~1e-7 / y_t
        tol = {**tol, "rtol": 1e-5, "atol": 1e-7}
    gradient_check(
        lambda p: SoftmaxWithLoss(),
        arrays,
        float_dtype,
        seed,
        backend,
        forward=lambda layer, x: layer.forward(x, labels_on_backend()),
        scalar_output=True,
        tolerances=tol,
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(5, 4), (4, 2, 2, 2)], ids=["2d", "4d"])
def test_batch_normalization_gradient(backend, float_dtype, seed, shape):
    rng = np.random.default_rng(seed)
    features = math.prod(shape[1:])
    arrays = {
        "x": rng.standard_normal(shape) * 2.0 + 1.0,
        "gamma": rng.uniform(0.5, 1.5, features),
        "beta": rng.standard_normal(features),
    }
    gradient_check(
        lambda p: BatchNormalization(p["gamma"], p["beta"]), arrays, float_dtype, seed, backend
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(4, 5), (1, 6), (3, 2, 3)], ids=["2d", "batch1", "3d"])
def test_layer_normalization_gradient(backend, float_dtype, seed, shape):
    rng = np.random.default_rng(seed)
    features = math.prod(shape[1:])
    arrays = {
        "x": rng.standard_normal(shape) * 2.0 - 0.5,
        "gamma": rng.uniform(0.5, 1.5, features),
        "beta": rng.standard_normal(features),
    }
    gradient_check(
        lambda p: LayerNormalization(p["gamma"], p["beta"]), arrays, float_dtype, seed, backend
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("inverted", [False, True], ids=["book", "inverted"])
def test_dropout_gradient(backend, float_dtype, seed, inverted):
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.standard_normal((4, 5))}
    # a fresh layer per evaluation: counter 0, so every evaluation uses the same mask
    gradient_check(
        lambda p: Dropout(0.4, seed=seed, inverted=inverted), arrays, float_dtype, seed, backend
    )
    mask = host(Dropout(0.4, seed=seed).stream.keep_mask((4, 5), 0.4))
    assert 0 < mask.sum() < mask.size  # the mask really drops some units and keeps others


# ---------------------------------------------------------------- Affine


def test_affine_matches_reference_and_restores_input_shape(backend, float_dtype, rtol):
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((2, 3, 2)), rng.standard_normal((6, 3)), rng.standard_normal(3)
    layer = Affine(dev(W, float_dtype), dev(b, float_dtype))
    out = layer.forward(dev(x, float_dtype))
    assert_on_backend(out, backend)
    x2 = x.reshape(2, 6)
    np.testing.assert_allclose(host(out), x2 @ W + b, rtol=rtol, atol=1e-6)
    dout = rng.standard_normal((2, 3))
    dx = layer.backward(dev(dout, float_dtype))
    assert tuple(dx.shape) == (2, 3, 2)
    np.testing.assert_allclose(host(dx), (dout @ W.T).reshape(2, 3, 2), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(host(layer.dW), x2.T @ dout, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(host(layer.db), dout.sum(axis=0), rtol=rtol, atol=1e-6)


def test_affine_rejects_wrong_input_size(backend, float_dtype):
    layer = Affine(dev(np.ones((6, 4)), float_dtype), dev(np.zeros(4), float_dtype))
    with pytest.raises(ValueError, match=r"input size must be 6") as info:
        layer.forward(dev(np.ones((2, 5)), float_dtype))
    assert "5 features" in str(info.value)


@pytest.mark.parametrize("kind", ["Affine", "BatchNormalization", "LayerNormalization"])
def test_numpy_input_to_a_layer_on_another_backend_is_refused(backend, float_dtype, kind):
    if backend.name == "numpy":
        pytest.skip("a NumPy array is native to the numpy backend")
    p = dev(np.ones(3), float_dtype)
    layer = {
        "Affine": lambda: Affine(dev(np.ones((3, 3)), float_dtype), p),
        "BatchNormalization": lambda: BatchNormalization(p, dev(np.zeros(3), float_dtype)),
        "LayerNormalization": lambda: LayerNormalization(p, dev(np.zeros(3), float_dtype)),
    }[kind]()
    with pytest.raises(xpscratch.BackendMismatchError, match="numpy"):
        layer.forward(np.ones((2, 3), dtype=float_dtype))


# ---------------------------------------------------------------- activations


def test_relu_matches_reference_and_does_not_modify_its_arguments(backend, float_dtype):
    rng = np.random.default_rng(4)
    x_host = away_from_zero(rng, (3, 4))
    dout_host = rng.standard_normal((3, 4))
    x, dout = dev(x_host, float_dtype), dev(dout_host, float_dtype)
    x_before, dout_before = host(x).copy(), host(dout).copy()
    layer = Relu()
    out = layer.forward(x)
    np.testing.assert_array_equal(host(x), x_before)
    np.testing.assert_array_equal(host(out), np.maximum(x_before, 0.0))
    dx = layer.backward(dout)
    # the book's backward wrote zeros into dout (dout[mask] = 0; dx = dout)
    np.testing.assert_array_equal(host(dout), dout_before)
    np.testing.assert_array_equal(host(dx), np.where(x_before > 0, dout_before, 0.0))
    np.testing.assert_array_equal(host(x), x_before)


def test_sigmoid_and_tanh_layers_match_reference(backend, float_dtype, rtol):
    x = np.array([[-1000.0, -30.0, -1.0, 0.0], [0.5, 3.0, 30.0, 1000.0]])
    sig = host(Sigmoid().forward(dev(x, float_dtype)))
    assert np.all(np.isfinite(sig))
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(sig, 1.0 / (1.0 + np.exp(-x)), rtol=rtol, atol=0)
    th = host(Tanh().forward(dev(x, float_dtype)))
    np.testing.assert_allclose(th, np.tanh(x), rtol=rtol, atol=1e-7)


# ---------------------------------------------------------------- SoftmaxWithLoss


def test_softmax_with_loss_matches_reference(backend, float_dtype, rtol):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3)) * 3.0
    labels = np.array([2, 0, 1, 2])
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    loss_ref = -np.mean(np.log(y[np.arange(4), labels] + 1e-7))
    dx_ref = (y - np.eye(3)[labels]) / 4
    for t in (xpscratch.asarray(labels), dev(np.eye(3)[labels], float_dtype)):
        layer = SoftmaxWithLoss()
        loss = layer.forward(dev(x, float_dtype), t)
        assert_on_backend(loss, backend)
        assert loss.ndim == 0
        np.testing.assert_allclose(float(host(loss)), loss_ref, rtol=rtol)
        np.testing.assert_allclose(host(layer.backward()), dx_ref, rtol=rtol, atol=1e-7)
        np.testing.assert_allclose(host(layer.backward(2.5)), 2.5 * dx_ref, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_softmax_with_loss_uint8_and_int8_labels_give_int64s_loss_and_gradient(
    backend, xp, float_dtype, rtol, label_smoothing
):
    """The loss and its gradient agree for labels of every integer dtype (issue 13)."""
    rng = np.random.default_rng(8)
    x = dev(rng.standard_normal((30, 10)), float_dtype)  # 30 * 10 > 255: uint8 offsets wrap
    labels = rng.integers(0, 10, 30)
    e = np.exp(host(x) - host(x).max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    ce = -np.mean(np.log(y[np.arange(30), labels] + 1e-7))
    uniform = -np.mean(np.log(y + 1e-7))
    loss_ref = (1 - label_smoothing) * ce + label_smoothing * uniform
    results = {}
    # the reference: int64 labels, or int32 where the device has no 64-bit integers
    widest = xpscratch.backend.index_dtype(xp, xpscratch.get_backend().device)
    for dtype in (widest, xp.int32, xp.int8, xp.uint8):
        layer = SoftmaxWithLoss(label_smoothing)
        loss = layer.forward(x, xp.astype(xpscratch.asarray(labels), dtype))
        results[dtype] = (host(loss), host(layer.backward()))
    np.testing.assert_allclose(float(results[widest][0]), loss_ref, rtol=rtol)
    for dtype, (loss, dx) in results.items():  # bit for bit
        assert loss.tobytes() == results[widest][0].tobytes(), dtype
        assert dx.tobytes() == results[widest][1].tobytes(), dtype


# ---------------------------------------------------------------- BatchNormalization


def bn_reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, dout: np.ndarray):
    """The book's train-mode BatchNormalization in float64, with a closed-form backward."""
    x2 = x.reshape(x.shape[0], -1)
    n = x2.shape[0]
    mu = x2.mean(axis=0)
    var = ((x2 - mu) ** 2).mean(axis=0)  # biased, as in the book
    std = np.sqrt(var + EPS)
    xn = (x2 - mu) / std
    out = (gamma * xn + beta).reshape(x.shape)
    d2 = dout.reshape(n, -1)
    dgamma = (d2 * xn).sum(axis=0)
    dbeta = d2.sum(axis=0)
    dx = gamma / (n * std) * (n * d2 - dbeta - xn * dgamma)
    return out, dx.reshape(x.shape), dgamma, dbeta, mu, var


@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 1, 3)], ids=["2d", "4d"])
def test_batch_normalization_matches_reference(backend, float_dtype, shape):
    tol = (
        {"rtol": 1e-9, "atol": 1e-10} if float_dtype == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    )
    rng = np.random.default_rng(6)
    features = math.prod(shape[1:])
    x = rounded(rng.standard_normal(shape) * 3.0 + 2.0, float_dtype)
    gamma = rounded(rng.uniform(0.5, 1.5, features), float_dtype)
    beta = rounded(rng.standard_normal(features), float_dtype)
    dout = rounded(rng.standard_normal(shape), float_dtype)
    out_ref, dx_ref, dgamma_ref, dbeta_ref, _, _ = bn_reference(x, gamma, beta, dout)
    layer = BatchNormalization(dev(gamma, float_dtype), dev(beta, float_dtype))
    out = layer.forward(dev(x, float_dtype), train_flg=True)
    assert_on_backend(out, backend)
    assert tuple(out.shape) == shape
    np.testing.assert_allclose(host(out), out_ref, **tol)
    dx = layer.backward(dev(dout, float_dtype))
    assert tuple(dx.shape) == shape
    np.testing.assert_allclose(host(dx), dx_ref, **tol)
    np.testing.assert_allclose(host(layer.dgamma), dgamma_ref, **tol)
    np.testing.assert_allclose(host(layer.dbeta), dbeta_ref, **tol)


def test_batch_normalization_running_statistics(backend, float_dtype):
    # integers over a batch of 4: the batch mean and biased variance are exact dyadics
    x1 = np.array([[1.0, -2.0, 5.0], [3.0, 0.0, 5.0], [-1.0, 4.0, 9.0], [5.0, 6.0, 1.0]])
    x2 = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, -4.0], [4.0, 3.0, 2.0], [6.0, -1.0, 2.0]])
    gamma, beta = np.array([1.5, 0.5, 2.0]), np.array([0.0, 1.0, -1.0])
    layer = BatchNormalization(dev(gamma, float_dtype), dev(beta, float_dtype))
    np.testing.assert_array_equal(host(layer.running_mean), np.zeros(3))
    np.testing.assert_array_equal(host(layer.running_var), np.zeros(3))

    layer.forward(dev(x1, float_dtype), train_flg=True)
    mu1, var1 = x1.mean(axis=0), x1.var(axis=0)
    # after one step from zero: (1 - 0.9) * batch statistic, bit for bit
    expected_mean = np.asarray(mu1, dtype=float_dtype) * (1.0 - 0.9)
    expected_var = np.asarray(var1, dtype=float_dtype) * (1.0 - 0.9)
    np.testing.assert_array_equal(xpscratch.to_numpy(layer.running_mean), expected_mean)
    np.testing.assert_array_equal(xpscratch.to_numpy(layer.running_var), expected_var)
    np.testing.assert_allclose(host(layer.running_mean), 0.1 * mu1, rtol=1e-6)

    layer.forward(dev(x2, float_dtype), train_flg=True)
    run_mean = 0.9 * (0.1 * mu1) + 0.1 * x2.mean(axis=0)
    run_var = 0.9 * (0.1 * var1) + 0.1 * x2.var(axis=0)
    tol = 1e-12 if float_dtype == "float64" else 1e-5
    np.testing.assert_allclose(host(layer.running_mean), run_mean, rtol=tol)
    np.testing.assert_allclose(host(layer.running_var), run_var, rtol=tol)

    # test mode normalises with the running statistics and leaves them alone
    x_test = np.array([[0.5, 2.0, -3.0], [1.0, 1.0, 1.0]])
    out = layer.forward(dev(x_test, float_dtype), train_flg=False)
    expected = gamma * (x_test - run_mean) / np.sqrt(run_var + EPS) + beta
    np.testing.assert_allclose(host(out), expected, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(host(layer.running_mean), run_mean, rtol=tol)
    np.testing.assert_allclose(host(layer.running_var), run_var, rtol=tol)
    # and, unlike train mode, does not depend on the rest of the batch
    single = layer.forward(dev(x_test[:1], float_dtype), train_flg=False)
    np.testing.assert_allclose(host(single), host(out)[:1], rtol=tol)


def test_batch_normalization_leaves_the_old_running_statistics_intact(backend, float_dtype):
    # a training forward stores new running statistics and never writes into the old
    # arrays: a step that fails later puts the old ones back (the Trainer does)
    x = np.array([[1.0, -2.0, 5.0], [3.0, 0.0, 5.0], [-1.0, 4.0, 9.0], [5.0, 6.0, 1.0]])
    layer = BatchNormalization(dev(np.ones(3), float_dtype), dev(np.zeros(3), float_dtype))
    layer.forward(dev(x, float_dtype), train_flg=True)
    old_mean, old_var = layer.running_mean, layer.running_var
    kept_mean, kept_var = host(old_mean).copy(), host(old_var).copy()
    layer.forward(dev(x[::-1] * 2.0, float_dtype), train_flg=True)
    assert layer.running_mean is not old_mean and layer.running_var is not old_var
    np.testing.assert_array_equal(host(old_mean), kept_mean)
    np.testing.assert_array_equal(host(old_var), kept_var)
    assert not np.array_equal(host(layer.running_var), kept_var)


# ---------------------------------------------------------------- LayerNormalization


def ln_reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    x2 = x.reshape(x.shape[0], -1)
    mu = x2.mean(axis=1, keepdims=True)
    var = ((x2 - mu) ** 2).mean(axis=1, keepdims=True)
    return (gamma * (x2 - mu) / np.sqrt(var + EPS) + beta).reshape(x.shape)


def test_layer_normalization_matches_reference_for_batch_of_one(backend, float_dtype):
    tol = (
        {"rtol": 1e-9, "atol": 1e-10} if float_dtype == "float64" else {"rtol": 1e-4, "atol": 1e-5}
    )
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5)) * 2.0 + 1.0
    gamma, beta = rng.uniform(0.5, 1.5, 5), rng.standard_normal(5)
    layer = LayerNormalization(dev(gamma, float_dtype), dev(beta, float_dtype))
    ref = ln_reference(x, gamma, beta)
    out = layer.forward(dev(x, float_dtype), train_flg=True)
    assert_on_backend(out, backend)
    np.testing.assert_allclose(host(out), ref, **tol)
    # a batch of one: the same row, in train and in test mode
    for train_flg in (True, False):
        one = layer.forward(dev(x[1:2], float_dtype), train_flg=train_flg)
        assert tuple(one.shape) == (1, 5)
        np.testing.assert_allclose(host(one), ref[1:2], **tol)
    # before scale and shift, each row has mean 0 and variance var / (var + eps)
    plain = LayerNormalization(dev(np.ones(5), float_dtype), dev(np.zeros(5), float_dtype))
    normed = host(plain.forward(dev(x, float_dtype)))
    np.testing.assert_allclose(normed.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(normed.var(axis=1), x.var(axis=1) / (x.var(axis=1) + EPS), rtol=1e-4)


# ---------------------------------------------------------------- Dropout


def sigma_bound(p: float, n: int) -> float:
    return 3.0 * math.sqrt(p * (1.0 - p) / n)


@pytest.mark.parametrize("ratio", [0.2, 0.5])
def test_dropout_book_mode(backend, float_dtype, ratio):
    n = 100_000
    x = dev(np.ones((1000, 100)), float_dtype)
    layer = Dropout(ratio, seed=3)
    out = host(layer.forward(x, train_flg=True))
    # kept units pass unscaled: every output is exactly 0 or exactly the input
    assert set(np.unique(out)) <= {0.0, 1.0}
    dropped = float(np.mean(out == 0.0))
    assert abs(dropped - ratio) < sigma_bound(ratio, n)
    test_out = host(layer.forward(x, train_flg=False))
    np.testing.assert_array_equal(test_out, rounded(np.full((1000, 100), 1.0 - ratio), float_dtype))
    # the train-time expectation is what test mode outputs
    assert abs(out.mean() - (1.0 - ratio)) < sigma_bound(ratio, n)


@pytest.mark.parametrize("ratio", [0.2, 0.5])
def test_dropout_inverted_mode(backend, float_dtype, ratio):
    n = 100_000
    rng = np.random.default_rng(8)
    values = rng.uniform(0.5, 1.5, (1000, 100))
    x = dev(values, float_dtype)
    layer = Dropout(ratio, seed=3, inverted=True)
    out = host(layer.forward(x, train_flg=True))
    kept = out != 0.0
    np.testing.assert_allclose(out[kept], host(x)[kept] / (1.0 - ratio), rtol=1e-6)
    assert abs(1.0 - kept.mean() - ratio) < sigma_bound(ratio, n)
    # the same units are dropped as in the book's form for the same seed and counter
    book = host(Dropout(ratio, seed=3).forward(dev(np.ones((1000, 100)), float_dtype)))
    np.testing.assert_array_equal(kept, book != 0.0)
    test_out = layer.forward(x, train_flg=False)
    np.testing.assert_array_equal(host(test_out), host(x))  # identity at test time
    # E[train output] = test output (= x), within 3 sigma of the mean of a masked sum
    spread = 3.0 * math.sqrt(ratio / (1.0 - ratio) * np.mean(values**2) / n)
    assert abs(out.mean() - values.mean()) < spread


def test_dropout_masks_identical_across_backends(backend, float_dtype):
    shape = (20, 30)
    layer = Dropout(0.3, seed=11, purpose="dropout/7")
    masks = []
    for _ in range(2):
        out = layer.forward(dev(np.ones(shape), float_dtype), train_flg=True)
        assert_on_backend(out, backend)
        masks.append(xpscratch.to_numpy(layer.mask))
    assert layer.stream.counter == 2
    with xpscratch.use_backend("numpy"):
        ref_layer = Dropout(0.3, seed=11, purpose="dropout/7")
        ref = []
        for _ in range(2):
            ref_layer.forward(xpscratch.asarray(np.ones(shape), float_dtype), train_flg=True)
            ref.append(xpscratch.to_numpy(ref_layer.mask))
    for got, want in zip(masks, ref, strict=True):
        np.testing.assert_array_equal(got, want)
    # a different purpose is a different stream
    other = Dropout(0.3, seed=11, purpose="dropout/8")
    other.forward(dev(np.ones(shape), float_dtype))
    assert not np.array_equal(xpscratch.to_numpy(other.mask), masks[0])


@pytest.mark.parametrize("inverted", [False, True], ids=["book", "inverted"])
def test_dropout_consecutive_masks_and_backward(backend, float_dtype, inverted):
    shape = (10, 20)
    layer = Dropout(0.5, seed=5, inverted=inverted)
    x = dev(np.ones(shape), float_dtype)
    first = host(layer.forward(x, train_flg=True))
    second = host(layer.forward(x, train_flg=True))
    assert not np.array_equal(first != 0, second != 0)
    assert layer.stream.counter == 2
    layer.forward(x, train_flg=False)  # test mode draws nothing
    assert layer.stream.counter == 2
    dout_host = np.random.default_rng(9).standard_normal(shape)
    dout = dev(dout_host, float_dtype)
    dx = host(layer.backward(dout))
    scale = 2.0 if inverted else 1.0
    np.testing.assert_allclose(dx, np.where(second != 0, dout_host * scale, 0.0), rtol=1e-6)
    np.testing.assert_array_equal(host(dout), rounded(dout_host, float_dtype))


def test_dropout_rejects_bad_ratio():
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="dropout_ratio"):
            Dropout(bad)


# ---------------------------------------------------------------- label smoothing


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("label_kind", ["labels", "one-hot"])
def test_softmax_with_label_smoothing_gradient(backend, float_dtype, seed, label_kind):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=4)
    arrays = {"x": rng.standard_normal((4, 5))}  # every y_k well above the log's 1e-7

    def t_on_backend() -> Any:
        if label_kind == "labels":
            return xpscratch.asarray(labels)
        return dev(np.eye(5)[labels], float_dtype)

    tol = check_tolerances(float_dtype)
    if float_dtype == "float64":
        tol = {**tol, "rtol": 1e-5, "atol": 1e-7}  # the 1e-7 inside the log, as above
    gradient_check(
        lambda p: SoftmaxWithLoss(label_smoothing=0.2),
        arrays,
        float_dtype,
        seed,
        backend,
        forward=lambda layer, x: layer.forward(x, t_on_backend()),
        scalar_output=True,
        tolerances=tol,
    )


def test_label_smoothing_loss_by_hand(backend, float_dtype, rtol):
    # scores (0, ln 2, ln 5, ln 2): softmax = (1, 2, 5, 2) / 10; label 2; eps = 0.1, K = 4
    x = np.array([[0.0, math.log(2.0), math.log(5.0), math.log(2.0)]])
    y = np.array([0.1, 0.2, 0.5, 0.2])
    # target: 0.9 on class 2 plus 0.1/4 everywhere = (0.025, 0.025, 0.925, 0.025)
    target = np.array([0.025, 0.025, 0.925, 0.025])
    expected = -(0.025 * (math.log(0.1 + 1e-7) + 2 * math.log(0.2 + 1e-7)))
    expected -= 0.925 * math.log(0.5 + 1e-7)
    layer = SoftmaxWithLoss(label_smoothing=0.1)
    loss = layer.forward(dev(x, float_dtype), xpscratch.asarray(np.array([2])))
    assert loss.ndim == 0
    np.testing.assert_allclose(float(host(loss)), expected, rtol=max(rtol, 1e-12))
    np.testing.assert_allclose(host(layer.backward()), [y - target], rtol=rtol, atol=1e-7)
    # eps = 0 is the book's loss, bit for bit
    plain, zero = SoftmaxWithLoss(), SoftmaxWithLoss(label_smoothing=0.0)
    a = plain.forward(dev(x, float_dtype), xpscratch.asarray(np.array([2])))
    b = zero.forward(dev(x, float_dtype), xpscratch.asarray(np.array([2])))
    assert host(a).tobytes() == host(b).tobytes()
    assert host(plain.backward()).tobytes() == host(zero.backward()).tobytes()


def test_label_smoothing_rejects_bad_values():
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError, match="label_smoothing"):
            SoftmaxWithLoss(label_smoothing=bad)


def test_batch_normalization_refuses_to_train_on_one_sample(backend, float_dtype):
    gamma, beta = dev(np.ones(3), float_dtype), dev(np.zeros(3), float_dtype)
    layer = BatchNormalization(gamma, beta)
    x = dev(np.array([[1.0, 2.0, 3.0]]), float_dtype)
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        layer.forward(x, train_flg=True)
    np.testing.assert_array_equal(host(layer.running_var), np.zeros(3))  # untouched
    out = layer.forward(x, train_flg=False)  # inference on one sample is fine
    assert tuple(out.shape) == (1, 3)
    layer.forward(dev(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), float_dtype), train_flg=True)
