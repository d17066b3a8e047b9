"""A pytest plugin for your own tests: run a test on every backend and device this machine
has, and compare a result with NumPy's under the same policy as ``xpscratch check``
(NumPy's float64 truth and the noise band of NumPy's runs, :mod:`xpscratch.check._policy`).

Enable it in your ``conftest.py`` (or with ``pytest -p xpscratch.testing``)::

    pytest_plugins = ["xpscratch.testing"]

    def test_my_layer(xpscratch_backend, xpscratch_float_dtype):
        ...  # runs once per backend and device; the backend is active (thread-local)

    def test_my_layer_agrees(xpscratch_backend, xpscratch_float_dtype):
        xpscratch.testing.assert_matches_numpy(lambda: my_layer(...), xpscratch_float_dtype)

A backend or device that cannot run here (library not installed, no GPU) is skipped with
the reason from :func:`xpscratch.set_backend`, so ``pytest -ra`` lists it; GPU ones carry
the ``gpu`` marker.  Select a subset with ``--xpscratch-backends numpy,torch`` or
``XPSCRATCH_TEST_BACKENDS``: ids, or names selecting all their variants.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

from .backend import (
    Backend,
    BackendError,
    float_dtype,
    get_backend,
    use_backend,
    use_default_dtype,
)
from .check._compare import Group
from .check._policy import tolerances
from .check._target import References

__all__ = ["BACKEND_PARAMS", "BackendParam", "activate", "assert_matches_numpy", "params"]


class BackendParam(NamedTuple):
    id: str  # the test id
    name: str  # the backend name for set_backend
    device: Any  # its device argument
    gpu: bool


# every backend and device xpscratch knows; the ones this machine lacks are skipped
BACKEND_PARAMS: list[BackendParam] = [
    BackendParam("numpy", "numpy", None, False),
    BackendParam("strict", "array_api_strict", "CPU_DEVICE", False),
    BackendParam("strict-device1", "array_api_strict", "device1", False),
    BackendParam("strict-device2", "array_api_strict", "device2", False),
    BackendParam("strict-no_float64", "array_api_strict", "no_float64", False),
    BackendParam("torch-cpu", "torch", "cpu", False),
    BackendParam("jax", "jax", "cpu", False),
    BackendParam("torch-cuda", "torch", "cuda", True),
    BackendParam("cupy", "cupy", None, True),
    BackendParam("jax-gpu", "jax", "gpu", True),
]
ALIASES = {"array_api_strict": "strict"}


def selected(spec: str) -> list[BackendParam]:
    """The params a comma-separated list of ids or names selects (empty: all)."""
    wanted = [ALIASES.get(w.strip(), w.strip()) for w in spec.split(",") if w.strip()]
    if not wanted:
        return list(BACKEND_PARAMS)
    chosen = []
    for w in wanted:
        matches = [p for p in BACKEND_PARAMS if p.id == w or p.id.startswith(w + "-")]
        if not matches:
            raise pytest.UsageError(
                f"xpscratch backends: unknown {w!r}; choose from {[p.id for p in BACKEND_PARAMS]}"
            )
        chosen += [p for p in matches if p not in chosen]
    return chosen


def params(spec: str = "") -> list[Any]:
    """``pytest.param`` objects for ``@pytest.mark.parametrize`` or a fixture's params."""
    return [
        pytest.param(p.id, marks=[pytest.mark.gpu] if p.gpu else [], id=p.id)
        for p in selected(spec)
    ]


@contextlib.contextmanager
def activate(param_id: str) -> Iterator[Backend]:
    """Activate a backend by test id for the block, or skip the test with the reason."""
    p = next(p for p in BACKEND_PARAMS if p.id == param_id)
    try:
        context = use_backend(p.name, p.device)
        b = context.__enter__()
    except BackendError as exc:  # only activation skips; a failure inside the test fails it
        pytest.skip(f"{p.id}: {exc}")
    try:
        yield b
    finally:
        context.__exit__(None, None, None)


def assert_matches_numpy(
    compute: Callable[..., Any],
    dtype: str = "float64",
    *,
    rtol: float | None = None,
    atol: float = 0.0,
) -> None:
    """Run ``compute`` on the active backend and on NumPy; compare every array it returns
    (one, or a dict of them) with ``xpscratch check``'s policy: within the noise band of
    NumPy's runs in ``dtype`` around NumPy's float64 truth (``rtol``/``atol`` added).

    ``compute(dtype)`` (one required parameter) is called with the dtype to run in, which gives the
    float64 truth of a float32 case; a ``compute()`` without one runs under
    :func:`xpscratch.use_default_dtype`, so arrays made in the default dtype follow it."""
    b = get_backend()
    g = Group("user", f"{b.name}:{b.device}", dtype)
    run = _with_dtype(compute)
    mine = run(dtype)
    ref = References().banded(("user",), dtype, run)
    tol = tolerances(dtype).op if rtol is None else rtol
    if isinstance(ref.truth, dict):
        for k in ref:
            g.close(str(k), mine[k], ref[k], tol, atol)
    else:
        g.close("result", mine, ref, tol, atol)
    if g.failures:
        raise AssertionError("; ".join(f"{f.case}: {f.detail}" for f in g.failures))


def _with_dtype(compute: Callable[..., Any]) -> Callable[[str], Any]:
    try:
        params = inspect.signature(compute).parameters.values()
        takes_dtype = sum(p.default is p.empty for p in params) == 1
    except (TypeError, ValueError):  # a builtin without a signature
        takes_dtype = False
    if takes_dtype:
        return compute

    def run(dtype: str) -> Any:
        with use_default_dtype(dtype):
            return compute()

    return run


# -- the plugin ---------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--xpscratch-backends",
        default=os.environ.get("XPSCRATCH_TEST_BACKENDS", ""),
        help="comma-separated xpscratch backend ids or names (default: all), e.g. numpy,torch",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped where none is usable")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xpscratch_backend" in metafunc.fixturenames:
        spec = metafunc.config.getoption("--xpscratch-backends")
        metafunc.parametrize("xpscratch_backend", params(spec), indirect=True)


@pytest.fixture
def xpscratch_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The active backend for this test (one test per backend and device)."""
    with activate(request.param) as b:
        yield b


@pytest.fixture
def xpscratch_float_dtype(xpscratch_backend: Backend) -> str:
    """'float64' unless the device lacks it (then 'float32')."""
    try:
        float_dtype(xpscratch_backend.xp, "float64", xpscratch_backend.device)
    except BackendError:
        return "float32"
    return "float64"
