"""Tests for xpscratch.functions against NumPy float64 references and the book's values."""

from __future__ import annotations

import warnings

import array_api_compat
import numpy as np
import pytest

import xpscratch
from xpscratch.backend import device_of
from xpscratch.functions import cross_entropy_error, one_hot, relu, sigmoid, softmax, tanh

# ---------------------------------------------------------------- references (float64)


def sigmoid_ref(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def softmax_ref(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def cross_entropy_ref(y: np.ndarray, labels: np.ndarray) -> float:
    """The book's formula with integer labels: -sum(log(y[i, t_i] + 1e-7)) / N."""
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    labels = np.reshape(labels, (-1,))
    picked = np.array([y[i, labels[i]] for i in range(y.shape[0])])
    return float(-np.sum(np.log(picked + 1e-7)) / y.shape[0])


def on_backend(x: np.ndarray, dtype: str):
    return xpscratch.asarray(np.array(x, dtype=np.float64), dtype)


def assert_on_backend(result, xp, backend) -> None:
    assert array_api_compat.array_namespace(result) is xp
    assert device_of(result) == backend.device


BOOK_Y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]


# ---------------------------------------------------------------- activations


def test_sigmoid_matches_reference(backend, xp, float_dtype, rtol):
    x = np.linspace(-20.0, 20.0, 41).reshape(41, 1) * np.array([1.0, 0.5, -0.25])
    out = sigmoid(on_backend(x, float_dtype))
    assert_on_backend(out, xp, backend)
    assert out.dtype == getattr(xp, float_dtype)
    np.testing.assert_allclose(xpscratch.to_numpy(out), sigmoid_ref(x), rtol=rtol, atol=0)
    # hand values: sigmoid(0) = 1/2, sigmoid(-x) = 1 - sigmoid(x)
    half = xpscratch.to_numpy(sigmoid(on_backend([0.0], float_dtype)))
    assert half[0] == 0.5


def test_sigmoid_is_exact_and_finite_at_extremes(backend, xp, float_dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy would warn on exp overflow
        out = xpscratch.to_numpy(sigmoid(on_backend([-1000.0, 1000.0], float_dtype)))
    assert np.all(np.isfinite(out))
    assert out[0] == 0.0
    assert out[1] == 1.0


def test_sigmoid_large_negative_keeps_relative_accuracy(backend, xp, float_dtype):
    # 1 - sigmoid(|x|) would round to 0; the reference exp(x)/(1+exp(x)) stays accurate
    if float_dtype == "float64":
        x, tol = np.array([-30.0, -50.0, -100.0, -700.0]), 1e-12
    else:  # stay above float32's subnormal range (exp(-87) ~ 1.6e-38)
        x, tol = np.array([-20.0, -30.0, -50.0, -80.0]), 1e-5
    ref = np.exp(x) / (1.0 + np.exp(x))
    out = xpscratch.to_numpy(sigmoid(on_backend(x, float_dtype))).astype(np.float64)
    assert np.all(out > 0)
    np.testing.assert_allclose(out, ref, rtol=tol, atol=0)


def test_relu_matches_reference(backend, xp, float_dtype):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [1e-3, -1e-3, 7.0, -7.0, 0.25]])
    out = relu(on_backend(x, float_dtype))
    assert_on_backend(out, xp, backend)
    assert out.dtype == getattr(xp, float_dtype)
    np.testing.assert_array_equal(xpscratch.to_numpy(out), np.maximum(0.0, x).astype(float_dtype))


def test_tanh_matches_reference(backend, xp, float_dtype, rtol):
    x = np.linspace(-5.0, 5.0, 21)
    out = tanh(on_backend(x, float_dtype))
    assert_on_backend(out, xp, backend)
    np.testing.assert_allclose(xpscratch.to_numpy(out), np.tanh(x), rtol=rtol, atol=1e-7)
    assert xpscratch.to_numpy(tanh(on_backend([0.0], float_dtype)))[0] == 0.0


# ---------------------------------------------------------------- softmax


def test_softmax_matches_reference(backend, xp, float_dtype, rtol):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 7)) * 3.0
    out = softmax(on_backend(x, float_dtype))
    assert_on_backend(out, xp, backend)
    host = xpscratch.to_numpy(out)
    np.testing.assert_allclose(host, softmax_ref(x), rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(host.sum(axis=1), np.ones(4), rtol=rtol)


def test_softmax_one_dimensional_and_book_example(backend, xp, float_dtype, rtol):
    # the book's overflow example: a = [1010, 1000, 990]
    a = np.array([1010.0, 1000.0, 990.0])
    out = xpscratch.to_numpy(softmax(on_backend(a, float_dtype)))
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [9.99954600e-01, 4.53978686e-05, 2.06106005e-09], rtol=1e-6)
    np.testing.assert_allclose(out, softmax_ref(a), rtol=rtol, atol=1e-12)


def test_softmax_does_not_overflow(backend, xp, float_dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = xpscratch.to_numpy(
            softmax(on_backend([[1000.0, 1000.0], [-1000.0, 0.0]], float_dtype))
        )
    assert not np.any(np.isnan(out))
    np.testing.assert_array_equal(out[0], [0.5, 0.5])
    assert out[1, 1] == 1.0 and out[1, 0] == 0.0


def test_softmax_is_shift_invariant_per_row(backend, xp, float_dtype, rtol):
    x = np.array([[0.1, 2.0, -1.0], [3.0, 3.0, 0.0]])
    shifted = x + np.array([[100.0], [-50.0]])
    a = xpscratch.to_numpy(softmax(on_backend(x, float_dtype)))
    b = xpscratch.to_numpy(softmax(on_backend(shifted, float_dtype)))
    # adding 100 costs float32 about 1e-5 of relative precision in the inputs
    np.testing.assert_allclose(a, b, rtol=1e-9 if float_dtype == "float64" else 1e-4, atol=1e-9)


# ---------------------------------------------------------------- cross entropy


def test_cross_entropy_book_examples(backend, xp, float_dtype, rtol):
    y = on_backend(BOOK_Y, float_dtype)
    t_hot = on_backend([0, 0, 1, 0, 0, 0, 0, 0, 0, 0], float_dtype)
    loss = cross_entropy_error(y, t_hot)
    assert_on_backend(loss, xp, backend)
    assert loss.ndim == 0  # a 0-d array, not a Python float: no device sync
    np.testing.assert_allclose(float(xpscratch.to_numpy(loss)), 0.510825457099338, rtol=rtol)
    # the same prediction with integer label 2, as a 0-d label and as a (1,) label
    for t in (xpscratch.asarray(np.array(2)), xpscratch.asarray(np.array([2]))):
        got = float(xpscratch.to_numpy(cross_entropy_error(y, t)))
        np.testing.assert_allclose(got, 0.510825457099338, rtol=rtol)
    # the book's wrong guess (0.6 on class 7): -log(0.1 + 1e-7)
    y_bad = on_backend([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0], float_dtype)
    got = float(xpscratch.to_numpy(cross_entropy_error(y_bad, xpscratch.asarray(np.array(2)))))
    np.testing.assert_allclose(got, 2.302584092994546, rtol=rtol)


def test_cross_entropy_zero_probability_is_finite(backend, xp, float_dtype):
    y = on_backend([[1.0, 0.0]], float_dtype)
    got = float(xpscratch.to_numpy(cross_entropy_error(y, xpscratch.asarray(np.array([1])))))
    np.testing.assert_allclose(got, -np.log(1e-7), rtol=1e-4)


def test_cross_entropy_batch_matches_reference(backend, xp, float_dtype, rtol):
    rng = np.random.default_rng(1)
    y = softmax_ref(rng.standard_normal((6, 5)))
    labels = np.array([0, 4, 2, 2, 1, 3])
    ref = cross_entropy_ref(y, labels)
    y_dev = on_backend(y, float_dtype)
    by_label = cross_entropy_error(y_dev, xpscratch.asarray(labels))
    assert_on_backend(by_label, xp, backend)
    np.testing.assert_allclose(float(xpscratch.to_numpy(by_label)), ref, rtol=rtol)
    # one-hot labels give the same value: float rows and one_hot()'s default (bool) rows
    float_hot = on_backend(np.eye(5)[labels], float_dtype)
    bool_hot = one_hot(xpscratch.asarray(labels), 5)
    for t in (float_hot, bool_hot):
        got = cross_entropy_error(y_dev, t)
        np.testing.assert_allclose(
            float(xpscratch.to_numpy(got)), float(xpscratch.to_numpy(by_label)), rtol=rtol
        )


def test_cross_entropy_rejects_mismatched_shapes(backend, xp, float_dtype):
    y = on_backend(np.full((2, 3), 1.0 / 3.0), float_dtype)
    with pytest.raises(ValueError, match="do not match"):
        cross_entropy_error(y, on_backend(np.eye(4)[:2], float_dtype))
    with pytest.raises(ValueError, match="3 labels for a batch of 2"):
        cross_entropy_error(y, xpscratch.asarray(np.array([0, 1, 2])))


def test_cross_entropy_rejects_a_host_array_on_another_backend(backend, xp, float_dtype):
    if backend.name == "numpy":
        pytest.skip("a NumPy array is native to the numpy backend")
    y = on_backend(np.full((2, 3), 1.0 / 3.0), float_dtype)
    with pytest.raises(xpscratch.BackendMismatchError):
        cross_entropy_error(y, np.array([0, 1]))


# ---------------------------------------------------------------- one_hot


def test_one_hot_matches_eye(backend, xp, float_dtype):
    labels = np.array([3, 0, 9, 3, 1])
    t = xpscratch.asarray(labels)
    hot = one_hot(t)  # default: 10 classes
    assert_on_backend(hot, xp, backend)
    assert tuple(hot.shape) == (5, 10)
    np.testing.assert_array_equal(xpscratch.to_numpy(hot).astype(np.float64), np.eye(10)[labels])
    typed = one_hot(t, 12, dtype=getattr(xp, float_dtype))
    assert typed.dtype == getattr(xp, float_dtype)
    np.testing.assert_array_equal(xpscratch.to_numpy(typed), np.eye(12)[labels])


def test_one_hot_rejects_two_dimensional_labels(backend, xp):
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        one_hot(xpscratch.asarray(np.zeros((2, 3), dtype=np.int64)), 3)


# ---------------------------------------------------------------- labels


def _integer_dtypes(xp, backend):
    names = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64")
    have = xp.__array_namespace_info__().dtypes(device=backend.device, kind="integral")
    return [getattr(xp, n) for n in names if n in have]


def test_labels_of_every_integer_dtype_give_int64s_loss(backend, xp, float_dtype, rtol):
    """uint8/int8 labels overflowed in arange(batch, dtype=t.dtype) * classes (issue 13)."""
    rng = np.random.default_rng(3)
    y = softmax_ref(rng.standard_normal((40, 10)))  # 40 * 10 > 255: row offsets overflow uint8
    labels = rng.integers(0, 10, 40)
    y_dev = on_backend(y, float_dtype)
    t64 = xpscratch.asarray(labels)
    want = xpscratch.to_numpy(cross_entropy_error(y_dev, t64))
    np.testing.assert_allclose(float(want), cross_entropy_ref(y, labels), rtol=rtol)
    for dtype in _integer_dtypes(xp, backend):
        got = xpscratch.to_numpy(cross_entropy_error(y_dev, xp.astype(t64, dtype)))
        assert got.tobytes() == want.tobytes(), dtype  # bit for bit
        hot = xpscratch.to_numpy(one_hot(xp.astype(t64, dtype), 10))
        np.testing.assert_array_equal(hot, np.eye(10, dtype=bool)[labels])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 10, 3], "label out of range: 10 at index 1 .1 labels outside 0..9"),
        ([1, 2, -1], "label out of range: -1 at index 2"),
        ([11, -3, 12], "label out of range: 11 at index 0 .3 labels outside"),
    ],
)
def test_labels_outside_the_classes_are_an_error_naming_value_and_position(
    backend, xp, float_dtype, labels, message
):
    from xpscratch.functions import LabelError, _in_host_memory, check_labels

    t = xpscratch.asarray(np.array(labels))
    y = on_backend(np.full((3, 10), 0.1), float_dtype)
    with pytest.raises(LabelError, match=message):
        check_labels(t, 10)  # wherever the labels live: it reads them
    if not _in_host_memory(t):  # strict's fake devices, JAX (which dispatches asynchronously)
        # the device path: no read of the labels per step; the loss is NaN, never a
        # neighbour's probability
        assert np.isnan(float(xpscratch.to_numpy(cross_entropy_error(y, t))))
        return
    with pytest.raises(LabelError, match=message):
        cross_entropy_error(y, t)  # host memory: checked eagerly, at no transfer cost


def test_float_and_bool_labels_are_an_error(backend, xp, float_dtype):
    from xpscratch.functions import LabelError, check_labels

    y = on_backend(np.full((3, 10), 0.1), float_dtype)
    message = r"integer class indices in \[0, 10\), got .* labels, the first is 1.0"
    floats = on_backend([1.0, 2.0, 3.0], float_dtype)
    bools = xpscratch.asarray(np.array([1, 0, 1]) > 0)
    for t in (floats, bools):
        for call in (
            cross_entropy_error,
            lambda _, t: one_hot(t),
            lambda _, t: check_labels(t, 10),
        ):
            with pytest.raises(LabelError, match=message):
                call(y, t)


def test_check_labels_accepts_valid_labels_of_a_narrow_dtype(backend, xp):
    from xpscratch.functions import check_labels

    t = xp.astype(xpscratch.asarray(np.array([0, 255, 7])), xp.uint8)
    check_labels(t, 300)  # 300 does not fit uint8: no value can reach it
    check_labels(t, 256)
    with pytest.raises(ValueError, match="255 at index 1"):
        check_labels(t, 255)
