"""xpscratch check is proven by the faults it catches (tests/_faults.py): each injected
fault fails its group on every CPU backend, in float32 and float64, while the wrapper
alone passes.  One group per fault keeps this file to about a minute."""

from __future__ import annotations

import _faults as F
import pytest

from xpscratch import check
from xpscratch.check import _policy
from xpscratch.check._target import References

REFERENCES = References()

# name -> (fault, group, dtypes)
FAULTS = {
    "float32 matmul biased 1e-5": (F.matmul_biased(1e-5), "layers", ["float32"]),
    "float32 matmul biased 2e-6": (F.matmul_biased(2e-6), "layers", ["float32"]),
    # the 2e-5 bias passed the training group under the flat float32 tolerance
    "float32 matmul biased 1e-5, training": (F.matmul_biased(1e-5), "training", ["float32"]),
    "float64 matmul biased 1e-12": (F.matmul_biased(1e-12), "layers", ["float64"]),
    "float64 matmul biased 1e-14": (F.matmul_biased(1e-14), "layers", ["float64"]),
    # exp, log, sqrt and tanh 4 ulp: the layers group's mean-error cases (a softmax, a
    # log-sum or Adam's step alone hide 4 ulp within another libm's rounding; 16 show)
    "exp 4 ulp": (F.ulps_off("exp", 4), "layers", ["float32", "float64"]),
    "log 4 ulp": (F.ulps_off("log", 4), "layers", ["float32", "float64"]),
    "tanh 4 ulp": (F.ulps_off("tanh", 4), "layers", ["float32", "float64"]),
    "sqrt 4 ulp": (F.ulps_off("sqrt", 4), "layers", ["float32", "float64"]),
    "sqrt 16 ulp, optimizers": (F.ulps_off("sqrt", 16), "optimizers", ["float32", "float64"]),
    "sum in lower precision": (F.sum_in_lower_precision, "layers", ["float32", "float64"]),
    "Adam epsilon moved": (F.adam_eps_moved, "optimizers", ["float32", "float64"]),
    "one parameter's update dropped": (F.update_dropped, "optimizers", ["float32", "float64"]),
    "NaN in one output": (F.nan_in_relu, "layers", ["float32", "float64"]),
    "Philox with 9 rounds": (F.philox_nine_rounds, "random", ["float32"]),
    "dropout threshold off by one word": (F.dropout_threshold_off_by_one, "random", ["float32"]),
    "BatchNorm variance with N-1": (F.bn_variance_unbiased, "layers", ["float32", "float64"]),
}
CASES = [
    pytest.param(name, dtype, id=f"{name}-{dtype}")
    for name, (_, _, dtypes) in FAULTS.items()
    for dtype in dtypes
]


def _run(backend, dtype: str, group: str):
    t = check.make_target(backend.name, backend.device, dtype, quick=True, references=REFERENCES)
    return check.run_group(group, t)


def _applies(backend, dtype: str, name: str) -> None:
    if dtype == "float64" and not _has_float64(backend):
        pytest.skip(f"{backend.name} on {backend.device} has no float64")
    if name == "Philox with 9 rounds" and backend.name == "numpy" and randomgen_draws():
        pytest.skip("NumPy draws with randomgen's compiled Philox here, not xpscratch's rounds")
    if (
        name == "sum in lower precision"
        and dtype == "float32"
        and backend.name == "array_api_strict"
    ):
        pytest.skip("array_api_strict has no float16 to sum float32 in")


def randomgen_draws() -> bool:
    from xpscratch import random as R
    from xpscratch.backend import host_namespace

    return R._path(host_namespace(), None) == "randomgen"


def _has_float64(backend) -> bool:
    try:
        check.make_target(backend.name, backend.device, "float64")
        return check._has_float64(check.make_target(backend.name, backend.device, "float64"))
    except Exception:
        return False


@pytest.mark.parametrize("group", ["layers", "optimizers"])
def test_the_wrapper_alone_passes(monkeypatch, backend, float_dtype, group):
    F.inject(monkeypatch, F.no_fault)
    g = _run(backend, float_dtype, group)
    assert g.status == "PASS", [f"{f.case}: {f.detail}" for f in g.failures]


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_each_fault_fails_its_group(monkeypatch, backend, name, dtype):
    _applies(backend, dtype, name)
    fault, group, _ = FAULTS[name]
    F.inject(monkeypatch, fault)
    g = _run(backend, dtype, group)
    assert g.status == "FAIL", f"{name} passed {group} on {backend.name} {dtype}"
    # failed on a value, not on the wrapper raising
    assert any("raised" not in f.detail for f in g.failures), g.failures[0].detail


def test_a_ten_times_looser_band_misses_the_smallest_fault(monkeypatch, backend):
    """Pins FACTOR and FLOOR_ULPS from above: the 2e-6 float32 matmul bias that
    test_each_fault_fails_its_group requires to fail passes once the band is 10x wider,
    so a 10x looser policy fails that test."""
    dtype = "float32"
    monkeypatch.setattr(_policy, "FACTOR", _policy.FACTOR * 10)
    monkeypatch.setattr(_policy, "FLOOR_ULPS", _policy.FLOOR_ULPS * 10)
    F.inject(monkeypatch, F.matmul_biased(2e-6 if dtype == "float32" else 1e-14))
    assert _run(backend, dtype, "layers").status == "PASS"
