"""The benchmark suite runs (one step of every workload, nothing timed), and the fast paths
keep what matters: a float32 training step never creates a float64 array."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xpscratch
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.optim import make_optimizer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import workloads  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_STRICT = importlib.util.find_spec("array_api_strict") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None
CPU = [
    c
    for c in workloads.CPU_COMPETITORS
    if (HAS_TORCH or "torch" not in c)
    and (HAS_STRICT or "strict" not in c)
    and (HAS_JAX or "jax" not in c)
]
CASES = workloads.cases("abcde")
# every (case, competitor) pair once, but the float64/second-optimizer variants of (a)
# and (b) only for the plain reference and xpscratch-numpy: the rest adds time, not cover
PAIRS = [
    (case, comp)
    for case in CASES
    for comp in workloads.competitors_for(case, CPU)
    if case.key in ("a/sgd/float32", "b/adam/float32")
    or case.workload not in "ab"
    or comp in ("numpy", "xpscratch-numpy")
]


@pytest.fixture(autouse=True)
def _numpy_backend():
    """build() selects a backend process-wide (as a worker does); put numpy back after."""
    yield
    xpscratch.set_backend("numpy")


@pytest.mark.parametrize(
    ("case", "competitor"), PAIRS, ids=[f"{c.key}-{comp}" for c, comp in PAIRS]
)
def test_each_workload_runs_one_step(case, competitor):
    runner = workloads.build(case, competitor, smoke=True)
    runner.step()
    assert runner.lib == "cpu"


@pytest.mark.parametrize("where", ["cpu"])
def test_matmul_peak_case_runs(where):
    case = workloads.peak_case(where)
    runner = workloads.build(case, "numpy")
    runner.step()
    assert workloads.blas_flops(case, "numpy") == 2.0 * case.n**3


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_jax_blocks_until_its_work_is_done(monkeypatch):
    """JAX dispatches asynchronously: a timed block ends by waiting for every array alive
    (parameters, optimizer state), and each matmul of the peak waits for its product."""
    import jax

    runner = workloads.build(next(c for c in CASES if c.key == "a/sgd/float32"), "xpscratch-jax")
    peak = workloads.build(workloads.peak_case("cpu"), "xpscratch-jax")
    runner.step()
    waited: list = []
    real = jax.block_until_ready
    monkeypatch.setattr(jax, "block_until_ready", lambda x: waited.append(x) or real(x))
    runner.sync()
    (arrays,) = waited
    assert {id(a) for a in jax.live_arrays()} <= {id(a) for a in arrays}
    assert len(arrays) >= 2 * 5  # at least W and b of the 5 layers
    peak.step()
    assert len(waited) == 2 and waited[1].shape == (1024, 1024)
    assert workloads.peak_label("xpscratch-jax") == "peak:xpscratch-jax"  # XLA's own matmul


def test_flop_count_of_the_wide_net_by_hand():
    case = next(c for c in CASES if c.key == "c/sgd/float32")
    layers = 784 * 1024 + 1024 * 1024 + 1024 * 1024 + 1024 * 10
    forward = 2 * 256 * layers
    first_dx = 2 * 256 * 784 * 1024
    # forward + dW + dx of every layer; the book-style reference also does the first dx
    assert workloads.blas_flops(case, "numpy") == 3 * forward
    assert workloads.blas_flops(case, "xpscratch-numpy") == 3 * forward - first_dx


def test_gpu_cases_only_with_a_gpu():
    assert not any(c.where == "gpu" for c in workloads.cases("abcde", gpu=False))
    gpu_cases = [c.key for c in workloads.cases("c", gpu=True)]
    assert "c/sgd/float32/b1024" in gpu_cases
    case = next(c for c in workloads.cases("c", gpu=True) if c.where == "gpu")
    assert workloads.competitors_for(case, list(workloads.ALL_COMPETITORS)) == list(
        workloads.GPU_COMPETITORS
    )


def test_gpu_helpers_import_without_a_gpu():
    from benchmarks import gpu  # cupy/torch are imported only inside its functions

    assert gpu.library("xpscratch-cupy") == "cupy"
    assert gpu.library("torch-cuda") == "torch"


def test_runner_end_to_end_writes_json(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--smoke",
            "--workloads",
            "e",
            "--competitors",
            "numpy,xpscratch-numpy",
            "--no-gpu",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert run["threads"] == 1
    keys = [r["case"]["key"] for r in run["results"]]
    assert keys == ["e/mask", "e/uniform", "e/normal"]
    entry = run["results"][0]["competitors"]["xpscratch-numpy"]
    assert entry["median_ms"] > 0 and "x_numpy" in entry and "peak_rss_mib" in entry["memory"]
    assert "e/mask" in proc.stdout  # the table


# -- float32 stays float32 --------------------------------------------------------------


@pytest.mark.skipif(not HAS_STRICT, reason="array_api_strict is not installed")
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_float32_training_step_creates_no_float64_array(optimizer, monkeypatch):
    """Every array a float32 step creates, temporaries included, is float32 (or integer,
    for the random bits): no Python scalar, no per-step xp.asarray(scalar), no NumPy
    scalar promotes anything.  array_api_strict builds every result through Array._new,
    so recording its dtypes sees all of them."""
    import array_api_strict
    from array_api_strict._array_object import Array

    with xpscratch.use_backend("array_api_strict"):
        net = MultiLayerNetExtend(
            784,
            [20, 20],
            10,
            use_batchnorm=True,
            use_dropout=True,
            weight_decay_lambda=0.01,
            dtype="float32",
        )
        rng = np.random.default_rng(0)
        x = xpscratch.asarray(rng.random((8, 784)), "float32")
        t = xpscratch.asarray(rng.integers(0, 10, 8))
        opt = make_optimizer(optimizer, lr=0.01)

        seen = []
        original = Array._new.__func__

        def recording(cls, value, /, device):
            seen.append(str(value.dtype))
            return original(cls, value, device=device)

        monkeypatch.setattr(Array, "_new", classmethod(recording))
        for _ in range(2):  # the second step runs with the optimizer's state in place
            opt.update(net.params, net.gradient(x, t))
            net.loss(x, t)
        monkeypatch.undo()

    floats = {d for d in seen if d.startswith("float")}
    assert seen, "the hook saw nothing: array_api_strict changed its internals"
    assert floats == {"float32"}, sorted(set(seen))
    assert array_api_strict.float32 == net.dtype


def test_float32_numpy_step_keeps_every_array_float32():
    net = MultiLayerNetExtend(784, [20, 20], 10, use_batchnorm=True, dtype="float32")
    rng = np.random.default_rng(0)
    x = xpscratch.asarray(rng.random((8, 784)), "float32")
    t = xpscratch.asarray(rng.integers(0, 10, 8))
    opt = make_optimizer("adam")
    grads = net.gradient(x, t)
    opt.update(net.params, grads)
    arrays = [*net.params.values(), *grads.values(), net.loss(x, t)]
    arrays += [a for slot in opt.slots for a in opt.state[slot].values()]
    arrays += list(net.state_dict()["buffers"].values())
    assert {a.dtype for a in arrays} == {np.dtype("float32")}


def test_targets_compare_with_the_right_reference():
    from benchmarks import run

    def case(workload, key):
        return {"case": {"key": key, "workload": workload, "where": "cpu"}}

    results = [
        {**case("a", "a/sgd/float32"), "competitors": {"xpscratch-numpy": {"x_numpy": 0.7}}},
        {
            **case("a", "a/adam/float32"),
            "competitors": {"xpscratch-numpy": {"x_numpy": 1.2, "x_numpy-lean": 1.1}},
        },
        {  # (b)'s lean reference uses NumPy's generator: its ratio is no target
            **case("b", "b/sgd/float32"),
            "competitors": {"xpscratch-numpy": {"x_numpy": 0.95, "x_numpy-lean": 1.4}},
        },
        {**case("c", "c/sgd/float32"), "competitors": {"xpscratch-numpy": {"pct_own_peak": 79}}},
    ]
    got = {
        (t["case"], t["target"].split(" <=")[0].split(" >=")[0]): t["met"]
        for t in run.check_targets(results)
    }
    assert got == {
        ("a/sgd/float32", "xpscratch-numpy / plain NumPy"): True,
        ("a/adam/float32", "xpscratch-numpy / plain NumPy"): False,
        ("a/adam/float32", "xpscratch-numpy / numpy-lean"): False,
        ("b/sgd/float32", "xpscratch-numpy / plain NumPy"): True,
        ("c/sgd/float32", "xpscratch-numpy % of matmul peak"): False,
    }


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.skipif(
    not os.environ.get("XPSCRATCH_SLOW_TESTS"),
    reason="torch.compile takes 10-60 s here: set XPSCRATCH_SLOW_TESTS=1",
)
def test_the_torch_compiled_competitor_compiles_once():
    """xpscratch-torch-compiled (named in --competitors only): issue 21's plain step, one
    compile for its first three calls, compile time reported apart."""
    case = next(c for c in workloads.cases("g") if c.key == "g/plain/sgd")
    runner = workloads.build(case, "xpscratch-torch-compiled", smoke=True)
    runner.step()
    assert runner.info["compiles_after_3_calls"] == 1 and runner.info["compile_s"] > 0
    assert "xpscratch-torch-compiled" in workloads.ON_REQUEST
