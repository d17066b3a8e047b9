"""xpscratch.testing: the pytest plugin parametrises a user's test over this machine's
backends (skipping the unusable with the reason) and compares with NumPy."""

from __future__ import annotations

import pytest

import xpscratch
from xpscratch import testing

pytest_plugins = ["pytester"]

USER_TESTS = """
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
    assert set(xpscratch.available_backends()) <= names


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
