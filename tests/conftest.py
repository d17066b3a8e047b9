"""The backend fixture: every shared test runs on every backend this machine can run.

Backends (test ids): numpy; strict, strict-device1 (refuses host copies),
strict-no_float64 (float32 only); torch-cpu; torch-cuda and cupy (marked ``gpu``).
One that cannot run here (torch not installed, no CUDA GPU) is skipped with the reason,
so the summary (``-ra``) shows it.  Select a subset with ``--backend numpy,strict`` or
``XPSCRATCH_TEST_BACKENDS=...`` (a name selects all its variants: ``strict`` is the
three array_api_strict devices, ``torch`` both torch devices).
"""

from __future__ import annotations

import os

import pytest

import xpscratch
from xpscratch.backend import BackendError

BACKEND_PARAMS = [
    ("numpy", "numpy", None),
    ("strict", "array_api_strict", "CPU_DEVICE"),
    ("strict-device1", "array_api_strict", "device1"),
    ("strict-no_float64", "array_api_strict", "no_float64"),
    ("torch-cpu", "torch", "cpu"),
    ("torch-cuda", "torch", "cuda"),
    ("cupy", "cupy", None),
]
GPU_IDS = {"torch-cuda", "cupy"}


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
    chosen = _selected(config)
    if chosen is None:
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        bid = callspec.params.get("backend") if callspec else None
        (drop if bid is not None and bid not in chosen else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _torch_single_thread() -> None:
    """Tests use tiny matrices: torch's thread pool only costs time there, and on a shared
    2-core machine a busy second core slows two-thread torch down many times over."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(
    params=[
        pytest.param(bid, marks=[pytest.mark.gpu] if bid in GPU_IDS else [], id=bid)
        for bid, _, _ in BACKEND_PARAMS
    ]
)
def backend(request: pytest.FixtureRequest):
    """Activate one backend for the test (thread-local) and yield its Backend."""
    _, name, device = next(p for p in BACKEND_PARAMS if p[0] == request.param)
    if name == "torch":
        _torch_single_thread()
    try:
        context = xpscratch.use_backend(name, device)
        b = context.__enter__()
    except BackendError as exc:  # only activation may skip; errors inside the test fail it
        pytest.skip(f"{request.param}: {exc}")
    try:
        yield b
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def xp(backend):
    return backend.xp


@pytest.fixture
def float_dtype(backend) -> str:
    """float64 (the precision of reference checks) unless the device lacks it."""
    return "float32" if str(backend.device).find("no_float64") >= 0 else "float64"


@pytest.fixture
def rtol(float_dtype) -> float:
    return 1e-10 if float_dtype == "float64" else 1e-4
