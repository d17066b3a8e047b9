"""Tests for xpscratch.gradient.numerical_gradient against hand-derived gradients."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import xpscratch
from xpscratch.backend import device_of, namespace, writable
from xpscratch.gradient import numerical_gradient


def settings(float_dtype: str) -> dict[str, float]:
    if float_dtype == "float64":
        return {"h": 1e-4, "rtol": 1e-7, "atol": 1e-8}
    # float32: the default h=1e-4 loses most digits to rounding; the book's advice is float64
    return {"h": 1e-2, "rtol": 1e-3, "atol": 1e-3}


def dev(a, dtype: str):
    return xpscratch.asarray(np.array(a, dtype=np.float64), dtype)


def sum_of_squares(x):
    return namespace(x).sum(x * x)


@pytest.mark.parametrize("shape", [(5,), (2, 3), (3, 2), (2, 3, 2)])
def test_sum_of_squares_gives_2x(backend, float_dtype, shape):
    s = settings(float_dtype)
    rng = np.random.default_rng(0)
    x_host = np.asarray(rng.uniform(-3.0, 3.0, shape), dtype=float_dtype)
    x = dev(x_host, float_dtype)
    grad = numerical_gradient(sum_of_squares, x, h=s["h"])
    assert array_api_compat.array_namespace(grad) is backend.xp
    assert device_of(grad) == backend.device
    assert grad.dtype == x.dtype and tuple(grad.shape) == shape
    np.testing.assert_allclose(
        xpscratch.to_numpy(grad), 2.0 * x_host.astype(np.float64), rtol=s["rtol"], atol=s["atol"]
    )


def test_the_book_example(backend, float_dtype):
    # the book's function_2: numerical_gradient at (3, 4) is (6, 8), at (0, 2) is (0, 4)
    s = settings(float_dtype)
    for point, expected in (([3.0, 4.0], [6.0, 8.0]), ([0.0, 2.0], [0.0, 4.0])):
        grad = numerical_gradient(sum_of_squares, dev(point, float_dtype), h=s["h"])
        np.testing.assert_allclose(xpscratch.to_numpy(grad), expected, rtol=s["rtol"], atol=1e-3)


def test_non_square_weights_keep_each_element_in_place(backend, float_dtype):
    # f = sum(C * x**2) + sum(D * x): df/dx = 2 C x + D, a different value per element,
    # so a transposed or flattened-wrongly index would show
    s = settings(float_dtype)
    rng = np.random.default_rng(1)
    C, D = rng.uniform(0.5, 2.0, (2, 3)), rng.standard_normal((2, 3))
    x_host = np.asarray(rng.standard_normal((2, 3)), dtype=float_dtype).astype(np.float64)
    C_dev, D_dev = dev(C, float_dtype), dev(D, float_dtype)

    def f(x):
        xp = namespace(x)
        return xp.sum(C_dev * x * x) + xp.sum(D_dev * x)

    grad = numerical_gradient(f, dev(x_host, float_dtype), h=s["h"])
    expected = 2.0 * C * x_host + D
    np.testing.assert_allclose(xpscratch.to_numpy(grad), expected, rtol=s["rtol"], atol=s["atol"])


def test_x_is_restored_bit_for_bit(backend, float_dtype):
    rng = np.random.default_rng(2)
    # small values next to a large h: (x + h) - h loses x's low bits, so only restoring
    # the saved value gives x back
    x = dev(rng.standard_normal((3, 4)) * 1e-3, float_dtype)
    before = xpscratch.to_numpy(x).copy()
    grad = numerical_gradient(sum_of_squares, x, h=0.5)
    after = xpscratch.to_numpy(x)
    assert after.dtype == before.dtype
    np.testing.assert_array_equal(after.view(np.uint8), before.view(np.uint8))
    assert grad is not x
    assert not np.array_equal(xpscratch.to_numpy(grad), before)


def test_f_sees_the_perturbation_through_other_references(backend, float_dtype):
    # a function that ignores its argument and reads the parameter array through another
    # reference: a writable x must be perturbed in place.  An immutable one (JAX) cannot
    # be, and f gets the perturbed copy (a network's numerical_gradient stores it).
    s = settings(float_dtype)
    x_host = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.5]])
    params = {"W": dev(x_host, float_dtype)}
    inplace = writable(params["W"])

    def loss(w):
        if not inplace:
            params["W"] = w
        return sum_of_squares(params["W"])

    grad = numerical_gradient(loss, params["W"], h=s["h"])
    np.testing.assert_allclose(
        xpscratch.to_numpy(grad), 2.0 * x_host, rtol=s["rtol"], atol=s["atol"]
    )


def test_f_may_return_a_python_float(backend, float_dtype):
    s = settings(float_dtype)
    x_host = np.array([0.5, -1.0, 2.0])

    def f(x):
        return float(xpscratch.to_numpy(sum_of_squares(x)))

    grad = numerical_gradient(f, dev(x_host, float_dtype), h=s["h"])
    np.testing.assert_allclose(
        xpscratch.to_numpy(grad), 2.0 * x_host, rtol=s["rtol"], atol=s["atol"]
    )
