"""xpscratch.testing: the pytest plugin parametrises a user's test over this machine's
backends (skipping the unusable with the reason) and compares with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import xpscratch
from xpscratch import testing

pytest_plugins = ["pytester"]

USER_TESTS = """
import numpy as np
import numpy as np
import pytest
import xpscratch
from xpscratch.layers import Relu
from xpscratch.testing import assert_matches_numpy

def my_layer(dtype):
    x = xpscratch.asarray(np.linspace(-1, 1, 12).reshape(3, 4), dtype)
    return xpscratch.to_numpy(Relu().forward(x) * 2.0)

def test_mine(xpscratch_backend, xpscratch_float_dtype):
    assert xpscratch.get_backend() == xpscratch_backend
    assert_matches_numpy(lambda: my_layer(xpscratch_float_dtype), xpscratch_float_dtype)

def test_wrong_on_strict(xpscratch_backend):
    wrong = 1.0 + (1e-6 if xpscratch_backend.name == "array_api_strict" else 0.0)
    assert_matches_numpy(lambda: xpscratch.to_numpy(xpscratch.asarray(np.ones(3), "float64"))
                         * (wrong if xpscratch.get_backend().name != "numpy" else 1.0))
"""


# (before the pytester tests: an in-process pytest run unloads the modules it imported, and
# JAX's ml_dtypes cannot be imported twice in one process)
def _zeros_and_noise(noise, where="first", dtype="float64"):
    """NumPy's result has exact zeros; the active backend's has ``noise`` at them."""
    values = np.array([0.0, 0.5, -2.0, 0.0]) if where == "first" else np.zeros(4)

    def compute():  # runs on the active backend, then on NumPy for the reference
        x = xpscratch.to_numpy(xpscratch.asarray(values, dtype))
        active = xpscratch.get_backend().name != "numpy"
        return np.where(x == 0, noise if active else 0.0, x).astype(dtype)

    return compute


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exact_zeros_compare_on_the_noise_band(backend, float_dtype, dtype):
    """Exact zeros are judged like every value: against NumPy's float64 truth and the spread
    of NumPy's nudged runs (which is 0 where every run gives exactly 0)."""
    if dtype == "float64" and float_dtype != "float64":
        pytest.skip("no float64 on this device")
    # zero against zero: equal, on every backend
    testing.assert_matches_numpy(_zeros_and_noise(0.0, "all", dtype), dtype)
    testing.assert_matches_numpy(_zeros_and_noise(0.0, "first", dtype), dtype)
    if backend.name == "numpy":
        return
    # beside nonzero entries a zero is judged on the array's rounding noise: far beyond
    # it (1e-3 of the largest value 2.0) fails
    with pytest.raises(AssertionError, match="values differ"):
        testing.assert_matches_numpy(_zeros_and_noise(1e-3, "first", dtype), dtype)
    # where every one of NumPy's runs gives exactly 0, any nonzero is outside the band
    with pytest.raises(AssertionError, match="values differ"):
        testing.assert_matches_numpy(_zeros_and_noise(1e-30, "all", dtype), dtype)
    # unless atol allows it
    testing.assert_matches_numpy(_zeros_and_noise(1e-30, "all", dtype), dtype, atol=1e-20)


def test_plugin_runs_a_users_test_on_every_backend_and_skips_with_the_reason(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess(
        "-p",
        "xpscratch.testing",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "-ra",
        "--xpscratch-backends",
        "numpy,strict,cupy",
        "-k",
        "mine",
    )
    outcomes = result.parseoutcomes()
    # numpy and strict's four devices (no_float64 in float32); cupy is not usable here
    assert outcomes["passed"] == 5 and outcomes["skipped"] == 1
    result.stdout.fnmatch_lines(["*SKIPPED*cupy: *"])


def test_assert_matches_numpy_fails_with_the_difference(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess(
        "-p",
        "xpscratch.testing",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "--xpscratch-backends",
        "numpy,strict",
        "-k",
        "wrong",
    )
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 1 and outcomes["failed"] >= 1  # NumPy passes, strict fails
    result.stdout.fnmatch_lines(["*result: 3 of 3 values differ: max abs 1.000e-06*"])


def test_selection_by_name_and_unknown_names():
    ids = [p.id for p in testing.selected("strict,torch")]
    assert ids[:2] == ["strict", "strict-device1"] and "torch-cpu" in ids and "torch-cuda" in ids
    assert [p.id for p in testing.selected("")] == [p.id for p in testing.BACKEND_PARAMS]
    with pytest.raises(pytest.UsageError, match="unknown 'tpu'"):
        testing.selected("tpu")


def test_every_available_backend_has_a_param():
    names = {p.name for p in testing.BACKEND_PARAMS}
    registered = set(xpscratch.backend.registered_backends())  # the test suite's dask, ndonnx
    assert set(xpscratch.available_backends()) - registered <= names


def test_assert_matches_numpy_judges_float32_against_the_float64_truth():
    """A float32 result 2e-6 too large (about 17 ulp, within the old flat 1e-4) fails;
    the same computation unbiased passes; compute(dtype) gets the truth's dtype."""
    import numpy as np

    from xpscratch.layers import Affine

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 9)), rng.standard_normal((9, 5))
    seen = []

    def affine(dtype, bias=0.0):
        seen.append(dtype)
        layer = Affine(xpscratch.asarray(w, dtype), xpscratch.asarray(np.zeros(5), dtype))
        out = layer.forward(xpscratch.asarray(x, dtype))
        wrong = bias if xpscratch.get_backend().name != "numpy" else 0.0
        return xpscratch.to_numpy(out) * (1.0 + wrong)

    with xpscratch.use_backend("array_api_strict"):
        testing.assert_matches_numpy(affine, "float32")
        assert "float64" in seen
        with pytest.raises(AssertionError, match="values differ"):
            testing.assert_matches_numpy(lambda dtype: affine(dtype, 2e-6), "float32")
