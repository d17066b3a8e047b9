"""The backend fixture: every shared test runs on every backend this machine can run.

Backends (test ids): numpy; strict, strict-device1 (refuses host copies),
strict-device2 (default float32), strict-no_float64 (float32 only), strict-no_x64
(float32 and 32-bit integers only, like JAX's default); torch-cpu; jax (JAX's default
32-bit mode: float64-only tests skip with the reason), jax-x64 (64-bit mode on);
torch-cuda, cupy and jax-gpu (marked ``gpu``).
One that cannot run here (torch not installed, no CUDA GPU) is skipped with the reason,
so the summary (``-ra``) shows it.  Select a subset with ``--backend numpy,strict`` or
``XPSCRATCH_TEST_BACKENDS=...`` (a name selects all its variants: ``strict`` is the
five array_api_strict devices, ``torch`` both torch devices, ``jax`` all three JAX ones).

JAX's 64-bit mode is process-wide (``jax.config.update("jax_enable_x64", ...)``): the
fixture sets it for each test and restores it afterwards, so that threads a test starts
see it too (``jax.enable_x64(...)`` as a context manager is thread-local).
"""

from __future__ import annotations

import importlib
import os
import signal
import warnings
from pathlib import Path

import pytest

import xpscratch
from xpscratch import backend as _backend
from xpscratch.backend import BackendError, set_torch_threads

BACKEND_PARAMS = [
    ("numpy", "numpy", None),
    ("strict", "array_api_strict", "CPU_DEVICE"),
    ("strict-device1", "array_api_strict", "device1"),
    ("strict-device2", "array_api_strict", "device2"),
    ("strict-no_float64", "array_api_strict", "no_float64"),
    ("strict-no_x64", "array_api_strict", "no_x64"),
    ("torch-cpu", "torch", "cpu"),
    ("jax", "jax", "cpu"),
    ("jax-x64", "jax", "cpu"),
    ("dask", "dask", None),
    ("ndonnx", "ndonnx", None),
    ("torch-float32", "torch", "cpu"),
    ("torch-cuda", "torch", "cuda"),
    ("cupy", "cupy", None),
    ("jax-gpu", "jax", "gpu"),
]
GPU_IDS = {"torch-cuda", "cupy", "jax-gpu"}
# Backends beyond the five, registered here (register_backend), and the float32-only torch
# (mps emulated on the CPU): they run the shared layer, optimizer and random tests only, and
# no slow ones: dask and ndonnx dispatch lazily or through ONNX, 10-100x NumPy's time a call.
SHARED_CORE = {"test_layers.py", "test_optim.py", "test_random.py", "test_backend_registry.py"}
EXTRA_MODULES = {  # ndonnx: its layer tests took ~10 s each (ONNX's reference evaluator)
    "dask": SHARED_CORE,
    "ndonnx": SHARED_CORE - {"test_layers.py"},
    "torch-float32": SHARED_CORE,
}
EXTRA_IDS = set(EXTRA_MODULES)
OPTIONAL_LIBRARIES = {"dask": "array_api_compat.dask.array", "ndonnx": "ndonnx"}
FLOAT32_ONLY_IDS = {"torch-float32"}
JAX_X64_IDS = {"jax-x64", "jax-gpu"}  # 64-bit mode on: float64 references run there


def _optional_library(name: str, module: str):
    """The registered factory: the namespace, imported now (an import inside a test that
    pytester's sys.modules snapshot then drops would break JAX's later import of ml_dtypes,
    which ndonnx shares), or a BackendError naming the fix, so its tests skip."""
    try:
        with warnings.catch_warnings():  # ndonnx warns that onnxruntime is missing
            warnings.simplefilter("ignore")
            namespace = importlib.import_module(module)
    except Exception as exc:  # not installed, or its import fails here
        why = f"{name} cannot be imported ({exc}): pip install {name}"

        def missing(device):
            raise BackendError(why)

        return missing
    return lambda device: namespace


# The command turns on JAX's compilation cache in ~/.cache/xpscratch/jax: a test never
# writes there, nor leaves JAX's cache on for the tests after it (and its subprocesses,
# which inherit this).  tests/test_compile_cache.py turns it on in tmp_path.
os.environ["XPSCRATCH_COMPILE_CACHE"] = "0"

for _name, _module in OPTIONAL_LIBRARIES.items():
    if _name not in _backend.registered_backends():
        _backend.register_backend(_name, _optional_library(_name, _module))


# The extended tier: backend variants a default run leaves out, so that the README's test
# command stays short (JAX's op-by-op dispatch makes jax and jax-x64 about 15 times
# strict's time; strict's four other devices repeat strict's arithmetic with one rule
# changed).  XPSCRATCH_EXTENDED_TESTS=1 (.ci/run sets it) or --backend runs them.
EXTENDED_IDS = {"strict-device1", "strict-device2", "strict-no_float64", "strict-no_x64"}
EXTENDED_IDS |= {"jax", "jax-x64"}
EXTENDED_IDS |= {"dask", "ndonnx"}  # registered libraries: minutes of their own


def _extended() -> bool:
    return os.environ.get("XPSCRATCH_EXTENDED_TESTS", "") not in ("", "0")


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption("--backend").strip() or _extended():
        return None
    return (
        f"default tier: backends {', '.join(sorted(EXTENDED_IDS))} deselected "
        "(XPSCRATCH_EXTENDED_TESTS=1 or --backend runs them)"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        default=os.environ.get("XPSCRATCH_TEST_BACKENDS", ""),
        help="comma-separated backend ids or names to run (default: all); "
        "e.g. numpy,strict-device1,torch,cupy",
    )


def _selected(config: pytest.Config) -> set[str] | None:
    spec = config.getoption("--backend").strip()
    if not spec:
        return None
    wanted = {s.strip() for s in spec.split(",") if s.strip()}
    ids = {i for i, _, _ in BACKEND_PARAMS}
    aliases = {"array_api_strict": "strict"}
    chosen = set()
    for w in wanted:
        w = aliases.get(w, w)
        matches = {i for i in ids if i == w or i.startswith(w + "-")}
        if not matches:
            raise pytest.UsageError(f"--backend: unknown backend {w!r}; choose from {sorted(ids)}")
        chosen |= matches
    return chosen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:  # reports carry it (to xdist's controller too) for the tally
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "backend" in callspec.params:
            item.user_properties.append(("backend", callspec.params["backend"]))
    chosen = _selected(config)
    if chosen is None and not _extended():
        chosen = {i for i, _, _ in BACKEND_PARAMS} - EXTENDED_IDS
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        bid = callspec.params.get("backend") if callspec else None
        outside = bid in EXTRA_IDS and (
            Path(str(item.fspath)).name not in EXTRA_MODULES[bid] or item.get_closest_marker("slow")
        )
        unchosen = chosen is not None and bid is not None and bid not in chosen
        (drop if outside or unchosen else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


SAME_AS_STRICT = {"strict-device1", "strict-device2"}

# ---------------------------------------------------------------------------
# JAX_CONCLUSION: the sizes of the slow conclusion runs on JAX, and why
# ---------------------------------------------------------------------------
# JAX dispatches op by op (xpscratch does not jit): on these small arrays a training step
# takes 4-11x NumPy's time, and the slow conclusion tests at their full settings took about
# 20 minutes per JAX mode on CI's two cores.  On ``jax`` and ``jax-x64`` they therefore
# run these settings instead (merged into the test's own), each cut only as far as the
# test's unchanged assertions still hold with margin, checked on NumPy in float32 and
# float64 and on both JAX modes.  An experiment not listed runs its full settings there.
# ``XPSCRATCH_SLOW_JAX=1`` runs JAX at the full settings too.
JAX_CONCLUSION: dict[str, dict] = {
    "optimizer_compare_mnist": {"iterations": 150},  # of 300: the race is decided by then
    "batch_norm_test": {"train_size": 500},  # of 1000: half the steps in each of 10 epochs
    "overfit_weight_decay": {"epochs": 151},  # of 201: memorised, gap settled (100: not yet)
    "overfit_dropout": {"epochs": 151},  # of 201 (100: not yet memorised without dropout)
    "regularization_compare": {"seeds": 1},  # of 2: every per-seed assertion, on one seed
    # not cut: hyperparameter_optimization (25 epochs, 250 images or 3-4 hidden layers
    # break its assertions), lr_schedule_compare (250 iterations break them, 400 barely
    # hold), weight_init_compare (already short)
}
JAX_FULL_SIZE = bool(os.environ.get("XPSCRATCH_SLOW_JAX"))


@pytest.fixture
def conclusion_settings(backend):
    """``sized(name, settings)``: a slow test's settings for experiment ``name`` on this
    backend: ``settings`` itself, or with :data:`JAX_CONCLUSION`'s cuts on JAX."""

    def sized(name: str, settings: dict) -> dict:
        if backend.name == "jax" and not JAX_FULL_SIZE:
            return {**settings, **JAX_CONCLUSION.get(name, {})}
        return settings

    return sized


@pytest.fixture(
    params=[
        pytest.param(bid, marks=[pytest.mark.gpu] if bid in GPU_IDS else [], id=bid)
        for bid, _, _ in BACKEND_PARAMS
    ]
)
def backend(request: pytest.FixtureRequest):
    """Activate one backend for the test (thread-local) and yield its Backend."""
    _, name, device = next(p for p in BACKEND_PARAMS if p[0] == request.param)
    if request.param in SAME_AS_STRICT and request.node.get_closest_marker("slow"):
        # fake devices over strict's own arithmetic: strict's slow run gives their numbers,
        # and their default-suite runs prove the device handling
        pytest.skip(f"{request.param}: slow conclusion runs are strict's (same arithmetic)")
    if name == "torch":
        # tests use tiny matrices: torch's thread pool only costs time there, and on a
        # shared 2-core machine a busy second core slows two-thread torch down many times
        set_torch_threads(1)
    restore_x64 = _set_jax_x64(request.param in JAX_X64_IDS) if name == "jax" else None
    try:
        try:
            context = xpscratch.use_backend(name, device)
            b = context.__enter__()
        except BackendError as exc:  # only activation may skip; errors inside the test fail it
            pytest.skip(f"{request.param}: {exc}")
        try:
            if request.param in FLOAT32_ONLY_IDS:
                with _float32_only(request.getfixturevalue("monkeypatch")):
                    yield b
            else:
                yield b
        finally:
            context.__exit__(None, None, None)
    finally:
        if restore_x64 is not None:
            restore_x64()


REFUSED_ON_FLOAT32_DEVICES = ("float64", "uint64", "complex128")


def _float32_only(monkeypatch):
    """Torch on the CPU as Apple's mps behaves: float64 and uint64 are refused by every
    torch call that makes or takes one, and the device's dtypes do not list them."""
    import torch
    from torch.overrides import TorchFunctionMode

    refused = {getattr(torch, n) for n in REFUSED_ON_FLOAT32_DEVICES}

    def check(value):
        if isinstance(value, torch.Tensor) and value.dtype in refused:
            raise TypeError(f"float32-only device (as mps): {value.dtype} is not supported")
        if isinstance(value, torch.dtype) and value in refused:
            raise TypeError(f"float32-only device (as mps): {value} is not supported")
        if isinstance(value, list | tuple):
            for v in value:
                check(v)

    class Float32Only(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            check(args)
            check(list(kwargs.values()))
            out = func(*args, **kwargs)
            check(out)
            return out

    real = _backend.device_dtypes

    def device_dtypes(xp, device=None):
        found = real(xp, device)
        if xp.__name__.endswith("torch"):
            return {k: v for k, v in found.items() if k not in REFUSED_ON_FLOAT32_DEVICES}
        return found

    monkeypatch.setattr(_backend, "device_dtypes", device_dtypes)
    return Float32Only()


def _set_jax_x64(on: bool):
    """Switch JAX's 64-bit mode (process-wide); return the function that restores it."""
    try:
        import jax
    except ImportError:
        return None  # use_backend then skips with the reason
    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", on)
    return lambda: jax.config.update("jax_enable_x64", before)


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler for the test, whatever the runner installed (pytest-xdist's
    workers ignore SIGINT), and the runner's back afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def xp(backend):
    return backend.xp


@pytest.fixture
def float_dtype(backend) -> str:
    """float64 (the precision of reference checks) unless the device lacks it
    (strict's no_float64 and no_x64, JAX outside its 64-bit mode)."""
    dtypes = _backend.device_dtypes(backend.xp, backend.device)
    return "float64" if "float64" in dtypes else "float32"


@pytest.fixture
def rtol(float_dtype) -> float:
    return 1e-10 if float_dtype == "float64" else 1e-4


# ---------------------------------------------------------------------------
# The summary: skips once per backend and reason, instead of one line per test
# ---------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """``-ra`` keeps listing failures, errors and xfails; skips are summarised per backend
    by :func:`pytest_terminal_summary` (an explicit ``-rs`` still lists every one)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    asked = config.getoption("reportchars", "") or ""
    if reporter is not None and "s" not in asked and "S" not in asked:
        reporter.reportchars = reporter.reportchars.replace("s", "").replace("S", "")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _tally(terminalreporter) -> None:
    """One line per backend: how many of its tests passed, failed and were skipped."""
    ids = [bid for bid, _, _ in BACKEND_PARAMS]
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            if outcome == "passed" and getattr(report, "when", "call") != "call":
                continue
            bid = dict(getattr(report, "user_properties", ())).get("backend")
            if bid is not None:
                tally = counts.setdefault(bid, {})
                tally[outcome] = tally.get(outcome, 0) + 1
    if not counts:
        return
    terminalreporter.write_sep("=", "per backend")
    for bid in sorted(counts, key=ids.index):
        line = ", ".join(f"{n} {outcome}" for outcome, n in counts[bid].items())
        terminalreporter.write_line(f"backend {bid}: {line}")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    _tally(terminalreporter)
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    ids = [bid for bid, _, _ in BACKEND_PARAMS]
    by_backend: dict[tuple[str, str], int] = {}
    other: dict[str, list[str]] = {}
    for report in skipped:
        reason = _skip_reason(report)
        bid = next((b for b in ids if reason.startswith(f"{b}: ")), None)
        if bid is not None:  # the backend fixture's skip: "<id>: <why>"
            key = (bid, reason[len(bid) + 2 :])
            by_backend[key] = by_backend.get(key, 0) + 1
        else:
            other.setdefault(reason, []).append(report.nodeid.split("::")[0])
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", f"{len(skipped)} skipped (-rs lists each test)")
    for (bid, reason), n in sorted(by_backend.items(), key=lambda kv: ids.index(kv[0][0])):
        write(f"backend {bid}: {n} test(s) skipped: {reason}")
    for reason, files in sorted(other.items(), key=lambda kv: -len(kv[1])):
        where = ", ".join(sorted(set(files)))
        write(f"{len(files)} test(s) skipped ({where}): {reason}")
