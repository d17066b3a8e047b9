"""A pytest plugin for your own tests: run a test on every backend and device this machine
has, and compare a result with NumPy's under the same tolerance policy as ``xpscratch check``.

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
import os
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np  # host-side comparison, like check._compare
import pytest

from .backend import Backend, BackendError, float_dtype, get_backend, to_numpy, use_backend
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
    compute: Callable[[], Any],
    dtype: str = "float64",
    *,
    rtol: float | None = None,
    atol: float = 0.0,
) -> None:
    """Run ``compute()`` on the active backend and on NumPy; compare every array it returns
    (one, or a dict of them) within ``rtol`` (default: the policy's per-op tolerance).

    An entry that is exactly 0 in NumPy's result has no scale of its own (a sum that
    cancels is 0 in one order and rounding noise in another): it may differ by ``rtol``
    times the array's largest value, or ``atol`` if larger.  A result that is 0 everywhere
    gives no scale: there only ``atol`` is allowed."""
    b = get_backend()
    g = Group("user", f"{b.name}:{b.device}", dtype)
    mine = compute()
    ref = References().get(("user",), dtype, compute)
    tol = tolerances(dtype).op if rtol is None else rtol
    if isinstance(ref, dict):
        for k in ref:
            _compare(g, str(k), mine[k], ref[k], tol, atol)
    else:
        _compare(g, "result", mine, ref, tol, atol)
    if g.failures:
        raise AssertionError("; ".join(f"{f.case}: {f.detail}" for f in g.failures))


def _compare(g: Group, case: str, actual: Any, expected: Any, rtol: float, atol: float) -> None:
    """``g.close``, with the entries that are exactly 0 in ``expected`` judged on the
    array's scale (see :func:`assert_matches_numpy`)."""
    a, e = np.asarray(to_numpy(actual)), np.asarray(to_numpy(expected))
    zero = e == 0
    if a.shape != e.shape or not np.any(zero) or e.dtype.kind not in "fc":
        g.close(case, a, e, rtol, atol)
        return
    scale = float(np.max(np.abs(e[np.isfinite(e)]), initial=0.0))
    g.close(case, a[~zero], e[~zero], rtol, atol)
    g.close(f"{case} (entries exactly 0)", a[zero], e[zero], 0.0, max(atol, rtol * scale))


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
