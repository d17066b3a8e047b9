"""xpscratch check: the battery on every backend (the suite's cross-backend agreement
tests), each group's FAIL path, the command's exit statuses and its JSON report.

The cross-backend equivalence cases live in xpscratch/check (one definition): the
agreement tests that were in test_networks.py, test_trainer.py, test_checkpoint.py,
test_experiments.py, test_regularization_compare.py, test_lr_schedule_compare.py and
test_optimizer_zoo.py are the battery's training and experiments groups, run here on
every backend of the conftest fixture with the same cases and tolerances.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpscratch
from xpscratch import check
from xpscratch import layers as layers_mod
from xpscratch import optim as optim_mod
from xpscratch import random as random_mod
from xpscratch.check import _gpu
from xpscratch.check._target import References
from xpscratch.cli import main
from xpscratch.networks import MultiLayerNetExtend

REFERENCES = References()  # NumPy's side of every case, computed once for the session
CPU_GROUPS = ["random", "layers", "optimizers", "training", "experiments"]


def target(backend, dtype):
    return check.make_target(backend.name, backend.device, dtype, quick=True, references=REFERENCES)


def assert_passes(g) -> None:
    assert g.status == "PASS", "\n".join(f"{f.case}: {f.detail}" for f in g.failures)
    assert g.cases > 0


@pytest.mark.parametrize("group", CPU_GROUPS)
def test_battery_group_agrees_with_numpy(backend, float_dtype, group):
    assert_passes(check.run_group(group, target(backend, float_dtype)))


@pytest.mark.parametrize("group", ["random", "layers", "optimizers", "training"])
def test_battery_float32_groups_agree_with_numpy(backend, group):
    assert_passes(check.run_group(group, target(backend, "float32")))


def test_gpu_group_runs_only_on_gpu_backends(backend, float_dtype):
    g = check.run_group("gpu", target(backend, float_dtype))
    if check.is_gpu(backend):
        assert_passes(g)
    else:
        assert g.status == "SKIP" and "CPU backend" in g.skipped


# -- each group's FAIL path: a deliberately wrong result on one backend -------------------------


def _on_strict() -> bool:
    return xpscratch.get_backend().name == "array_api_strict"


def _break(monkeypatch, group: str) -> None:
    """Make one library function wrong on array_api_strict only (NumPy stays right)."""
    if group == "random":
        words = random_mod._words

        def wrong(*args, **kwargs):
            w = words(*args, **kwargs)
            return w ^ 1 if _on_strict() else w  # flip the lowest bit of every word

        monkeypatch.setattr(random_mod, "_words", wrong)
    elif group == "layers":
        forward = layers_mod.Relu.forward
        monkeypatch.setattr(
            layers_mod.Relu,
            "forward",
            lambda self, x, train_flg=True: (
                forward(self, x) * (1.0 + 1e-6) if _on_strict() else forward(self, x)
            ),
        )
    elif group == "optimizers":
        apply = optim_mod.Adam._apply
        monkeypatch.setattr(
            optim_mod.Adam,
            "_apply",
            lambda self, key, p, g, lr, m, v, *, t: apply(
                self, key, p, g, lr * (1.001 if _on_strict() else 1.0), m, v, t=t
            ),
        )
    else:  # training and experiments: every network's gradient a little off
        gradient = MultiLayerNetExtend.gradient

        def wrong_gradient(self, x, t):
            grads = gradient(self, x, t)
            return {k: g * 1.01 for k, g in grads.items()} if _on_strict() else grads

        monkeypatch.setattr(MultiLayerNetExtend, "gradient", wrong_gradient)


@pytest.mark.parametrize("group", CPU_GROUPS)
def test_a_wrong_result_makes_its_group_fail_with_the_difference(monkeypatch, group):
    _break(monkeypatch, group)
    t = check.make_target("array_api_strict", "CPU_DEVICE", "float64", quick=True)
    g = check.run_group(group, t)
    assert g.status == "FAIL"
    assert g.max_abs > 0 and g.failures
    detail = g.failures[0].detail
    assert "differ" in detail or "!=" in detail or "NumPy" in detail, detail
    numpy_side = check.run_group(group, check.make_target("numpy", None, "float64", quick=True))
    assert numpy_side.status == "PASS"  # only the broken backend fails


def test_gpu_group_fails_when_a_step_synchronises(monkeypatch):
    """No GPU here: the group runs on NumPy with the sync probe and precision faked."""
    monkeypatch.setattr(check, "is_gpu", lambda b: True)
    monkeypatch.setattr(_gpu, "_lib", lambda b: "cupy")
    monkeypatch.setattr(_gpu, "training_step", lambda dtype: lambda: None)
    monkeypatch.setattr(
        _gpu,
        "check_step",
        lambda lib, step: {
            "blocked_on_device": True,
            "sync_reports": ["cupy.ndarray.get()"],
            "host_to_device_calls": 2,
            "host_to_device_examples": ["cupy.asarray(ndarray)"],
        },
    )
    monkeypatch.setenv("CUPY_TF32", "1")
    g = check.run_group("gpu", check.make_target("numpy", None, "float32", quick=True))
    assert g.status == "FAIL"
    cases = {f.case for f in g.failures}
    assert {
        "the step did not wait for the device",
        "no host-to-device array in the step",
        "precision as selected",
    } <= cases
    assert any("cupy.ndarray.get()" in f.detail for f in g.failures)


def test_the_command_exits_1_and_prints_the_failing_difference(monkeypatch, capsys):
    _break(monkeypatch, "layers")
    status = main(
        [
            "check",
            "--backend",
            "array_api_strict:device1",
            "--group",
            "layers",
            "--dtype",
            "float64",
            "--quick",
        ]
    )
    out = capsys.readouterr().out
    assert status == 1
    row = next(line for line in out.splitlines() if line.startswith("array_api_strict:device1"))
    assert "layers" in row and "FAIL" in row and "1.0e-" in row  # the difference is shown
    assert "FAIL array_api_strict:device1 float64 layers: Relu out" in out


# -- the command --------------------------------------------------------------------------------


def test_command_passes_and_writes_the_json_report(tmp_path, capsys):
    path = tmp_path / "report.json"
    status = main(
        [
            "check",
            "--backend",
            "numpy",
            "--group",
            "layers",
            "--group",
            "random",
            "--dtype",
            "both",
            "--quick",
            "--json",
            str(path),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0 and "PASSED" in out
    assert "NumPy 2" in out and "array-api-compat" in out and "BLAS" in out
    data = json.loads(path.read_text())
    assert data["passed"] and data["exit_status"] == 0
    assert data["header"]["numpy"] == np.__version__ and data["header"]["dtypes"] == [
        "float64",
        "float32",
    ]
    rows = data["targets"][0]["groups"]
    assert [(r["group"], r["dtype"]) for r in rows] == [
        ("layers", "float64"),
        ("random", "float64"),
        ("layers", "float32"),
        ("random", "float32"),
    ]
    assert all(r["status"] == "PASS" and r["cases"] > 0 for r in rows)
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left


def test_an_unusable_backend_exits_2_with_set_backends_message(capsys):
    try:
        xpscratch.set_backend("cupy")
    except xpscratch.BackendError as exc:
        expected = str(exc)
    else:
        pytest.skip("cupy is usable here")
    finally:
        xpscratch.backend._global_backend = None
    status = main(["check", "--backend", "cupy", "--quick"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"--backend cupy: {expected}" in err and "Traceback" not in err


def test_cupy_installed_without_a_gpu_says_no_usable_gpu():
    pytest.importorskip("cupy", reason="cupy-cuda12x is not installed here")
    if "cupy" in xpscratch.available_backends():
        pytest.skip("this machine has a usable CUDA GPU (the test is for one without)")
    with pytest.raises(xpscratch.BackendError, match="no usable CUDA GPU|no CUDA GPU"):
        xpscratch.set_backend("cupy")
    report = check.run(["cupy"], quick=True, groups=["random"])
    assert report.exit_status == 2 and "not installed" not in report.unusable["cupy"]


def test_all_selects_every_available_backend_and_device():
    pairs, unusable = check._selection("all")
    assert not unusable
    names = {n for n, _ in pairs}
    assert names == set(xpscratch.available_backends())
    strict = [d for n, d in pairs if n == "array_api_strict"]
    assert {"CPU_DEVICE", "device1", "no_float64"} <= set(strict)


def test_float64_on_a_device_without_it_is_a_skip_with_the_reason():
    t = check.make_target("array_api_strict", "no_float64", "float64", quick=True)
    g = check.run_group("layers", t)
    assert g.status == "SKIP" and "no float64" in g.skipped


def test_bad_arguments_are_usage_errors(capsys):
    assert main(["check", "--dtype", "float16"]) == 2
    assert main(["check", "--group", "nope", "--backend", "numpy"]) == 2
    assert main(["check", "--backend", "numpy", "--json", "/nonexistent/dir/r.json"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown group"):
        check.run(["numpy"], groups=["nope"])


# -- the policy: counts, non-finite values, and its tolerances pinned ---------------------------

# (cases, values) each group compares on NumPy's quick battery: a group that silently
# compares less (one parameter of the optimizers, fewer steps) fails here
COUNTS = {
    ("layers", "float32"): (45, 2578),
    ("layers", "float64"): (55, 2670),
    ("optimizers", "float32"): (30, 4800),
    ("optimizers", "float64"): (30, 24000),
    ("training", "float32"): (79, 5586),
    ("training", "float64"): (89, 6882),
}


@pytest.mark.parametrize(("group", "dtype"), list(COUNTS))
def test_each_group_compares_every_case_and_value(group, dtype):
    t = check.make_target("numpy", None, dtype, quick=True, references=REFERENCES)
    g = check.run_group(group, t)
    assert_passes(g)
    assert (g.cases, g.values) == COUNTS[group, dtype]


def _banded(truth, plain=None, nudged=()):
    from xpscratch.check._compare import Banded

    plain = truth if plain is None else plain
    return Banded(np.asarray(truth), np.asarray(plain), [np.asarray(n) for n in nudged])


@pytest.mark.parametrize(
    ("actual", "truth"),
    [
        (1.0, np.nan),
        (np.nan, 1.0),
        (1.0, np.inf),
        (np.inf, 1.0),
        (-np.inf, np.inf),
        (np.nan, np.inf),
    ],
)
def test_a_non_finite_value_must_be_matched(actual, truth):
    for expected in (np.array([truth, 2.0]), _banded([truth, 2.0])):
        g = check.Group("g", "t", "float64")
        assert not g.close("c", np.array([actual, 2.0]), expected, 1e-3)
        assert g.status == "FAIL" and g.values == 2


def test_matching_nan_and_inf_pass():
    g = check.Group("g", "t", "float64")
    assert g.close("c", np.array([np.nan, np.inf, -np.inf]), _banded([np.nan, np.inf, -np.inf]))
    assert g.close("d", np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), 0.0)


def test_the_band_is_the_spread_of_numpys_runs():
    """Within FACTOR x the runs' distance plus the floor passes; beyond it fails."""
    from xpscratch.check import _policy

    truth = np.array([1.0, 1.0])
    runs = [np.array([1.0 + 1e-6, 1.0 - 1e-6])]
    limit = _policy.FACTOR * 1e-6 + _policy.FLOOR_ULPS * _policy.EPS["float32"]
    g = check.Group("g", "t", "float32")
    assert g.close("in", truth + 0.99 * limit, _banded(truth, runs[0], runs))
    assert not g.close("out", truth + 1.01 * limit, _banded(truth, runs[0], runs))
