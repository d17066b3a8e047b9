"""Group 6, GPU backends only: no synchronisation or transfer inside a training step, and
the float32 matmul precision (TF32 or full) that decides the float32 numbers.

The sync check (``check_step``, also used by ``benchmarks/gpu.py``: benchmarks import
the library, never the other way round): a kernel that spins for about a second is put
on the stream, one training step runs on the host, then the spinning kernel's event is
queried.  Any sync inside the step (a device-to-host copy, ``float(loss)``, a blocking
copy, ``synchronize``) would have waited for it.  CuPy's ``cupyx.allow_synchronize(False)``
and torch's sync debug mode name the offending call; constructions of device arrays from
host data are counted.
JAX has no spin kernel here: its transfer guard (``jax.transfer_guard("disallow")``)
refuses every implicit host/device transfer inside the step instead.

Like backend.py, this module imports GPU libraries, and only inside the functions that
run on a GPU backend: it loads on machines without them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np  # host data for the step, moved once before the check

from ..backend import Backend, asarray
from ..networks import MultiLayerNetExtend
from ..optim import Adam
from ._compare import Group
from ._target import Target

SPIN_CYCLES = 2_000_000_000  # about a second at 1.5-2 GHz: far longer than one step's host time
_SPIN_SOURCE = r"""
extern "C" __global__ void xpscratch_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


def _lib(b: Backend) -> str:
    return b.name if b.name in ("cupy", "torch") else "jax"


# -- matmul precision ---------------------------------------------------------------------


def matmul_precision(b: Backend) -> str:
    """The float32 matmul precision in force on a GPU backend, in its library's words."""
    lib = _lib(b)
    if lib == "cupy":
        state = "on" if _cupy_tf32() else "off"
        return f"CUPY_TF32={os.environ.get('CUPY_TF32', '0')} (TF32 {state})"
    if lib == "torch":
        torch = importlib.import_module("torch")
        return (
            f"torch float32_matmul_precision={torch.get_float32_matmul_precision()!r} "
            f"(allow_tf32={torch.backends.cuda.matmul.allow_tf32})"
        )
    jax = importlib.import_module("jax")
    return f"jax_default_matmul_precision={jax.config.jax_default_matmul_precision!r}"


def _cupy_tf32() -> bool:
    return os.environ.get("CUPY_TF32", "0") not in ("", "0")


def set_matmul_precision(b: Backend, allow_tf32: bool) -> Callable[[], None]:
    """Set full float32 matmuls (or allow TF32); returns a function that puts back what
    was there before (``run`` calls it when the backend's groups are done)."""
    lib = _lib(b)
    if lib == "cupy":
        saved = os.environ.get("CUPY_TF32")

        def restore() -> None:
            if saved is None:
                os.environ.pop("CUPY_TF32", None)
            else:
                os.environ["CUPY_TF32"] = saved
    elif lib == "torch":
        previous = importlib.import_module("torch").get_float32_matmul_precision()

        def restore() -> None:
            importlib.import_module("torch").set_float32_matmul_precision(previous)
    else:
        was = importlib.import_module("jax").config.jax_default_matmul_precision

        def restore() -> None:
            importlib.import_module("jax").config.update("jax_default_matmul_precision", was)

    if lib == "cupy":
        # read by CuPy when it creates its cuBLAS handle: set before the first matmul
        os.environ["CUPY_TF32"] = "1" if allow_tf32 else "0"
    elif lib == "torch":
        importlib.import_module("torch").set_float32_matmul_precision(
            "high" if allow_tf32 else "highest"
        )
    else:
        importlib.import_module("jax").config.update(
            "jax_default_matmul_precision", None if allow_tf32 else "highest"
        )
    return restore


# -- the sync / transfer check ----------------------------------------------------------------


def sync(lib: str) -> None:
    """Wait for the current stream (CuPy) or device (torch)."""
    if lib == "cupy":
        importlib.import_module("cupy").cuda.get_current_stream().synchronize()
    else:
        importlib.import_module("torch").cuda.synchronize()


def _spin(lib: str) -> Any:
    """Launch the spinning kernel and return an event recorded right after it."""
    if lib == "cupy":
        cupy = importlib.import_module("cupy")
        cupy.RawKernel(_SPIN_SOURCE, "xpscratch_spin")((1,), (1,), (cupy.int64(SPIN_CYCLES),))
        event = cupy.cuda.Event()
    else:
        torch = importlib.import_module("torch")
        torch.cuda._sleep(SPIN_CYCLES)
        event = torch.cuda.Event()
    event.record()
    return event


def _done(lib: str, event: Any) -> bool:
    return bool(event.done) if lib == "cupy" else bool(event.query())


@contextlib.contextmanager
def _count_host_to_device(lib: str) -> Iterator[list[str]]:
    """Count device-array constructions from host data (NumPy arrays, lists, scalars)."""
    calls: list[str] = []
    if lib == "cupy":
        module = importlib.import_module("cupy")
        names, device_type = ("asarray", "array"), module.ndarray
    else:
        module = importlib.import_module("torch")
        names, device_type = ("as_tensor", "asarray", "tensor"), module.Tensor
    originals = {n: getattr(module, n) for n in names}

    def wrap(name: str, fn: Callable) -> Callable:
        def counted(obj, *args, **kwargs):
            if not isinstance(obj, device_type):
                calls.append(f"{module.__name__}.{name}({type(obj).__name__})")
            return fn(obj, *args, **kwargs)

        return counted

    for n, fn in originals.items():
        setattr(module, n, wrap(n, fn))
    try:
        yield calls
    finally:
        for n, fn in originals.items():
            setattr(module, n, fn)


@contextlib.contextmanager
def _refuse_syncs(lib: str) -> Iterator[list[str]]:
    """The library's own sync detector, where it has one; records what it reports."""
    notes: list[str] = []
    if lib == "cupy":
        allow = getattr(importlib.import_module("cupyx"), "allow_synchronize", None)
        if allow is None:
            notes.append("cupyx.allow_synchronize unavailable in this CuPy")
            yield notes
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated since CuPy 10, still useful here
            with allow(False):
                yield notes
        return
    torch = importlib.import_module("torch")
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield notes
        notes.extend(str(w.message).splitlines()[0] for w in caught if "sync" in str(w.message))
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def check_step(lib: str, step: Callable[[], Any]) -> dict[str, Any]:
    """Run ``step`` once behind a spinning kernel; report whether it synchronised or copied."""
    if lib == "jax":
        jax = importlib.import_module("jax")
        error = None
        try:
            with jax.transfer_guard("disallow"):
                step()
        except Exception as exc:  # the guard's error names the transfer
            error = f"{type(exc).__name__}: {exc}"
        return {
            "blocked_on_device": False,
            "sync_reports": [error] if error else [],
            "host_to_device_calls": 0,
            "method": 'jax.transfer_guard("disallow")',
        }
    sync(lib)
    event = _spin(lib)
    error = None
    h2d: list[str] = []
    notes: list[str] = []
    try:
        with _count_host_to_device(lib) as h2d, _refuse_syncs(lib) as notes:
            step()
    except Exception as exc:  # cupyx.DeviceSynchronized, or anything the step raised
        error = f"{type(exc).__name__}: {exc}"
    still_running = not _done(lib, event)
    sync(lib)
    return {
        "blocked_on_device": not still_running,
        "sync_reports": notes + ([error] if error else []),
        "host_to_device_calls": len(h2d),
        "host_to_device_examples": sorted(set(h2d))[:5],
        "method": "spin kernel (~1 s) ahead of one step, then event query; "
        + ("cupyx.allow_synchronize(False)" if lib == "cupy" else "torch sync_debug_mode"),
    }


def training_step(dtype: str) -> Callable[[], None]:
    """One BN+Dropout Adam step on device-resident data (warmed up once)."""
    rng = np.random.default_rng(0)
    x, t = asarray(rng.standard_normal((100, 784)), dtype), asarray(rng.integers(0, 10, 100))
    net = MultiLayerNetExtend(
        784, [100] * 5, 10, use_batchnorm=True, use_dropout=True, dropout_ratio=0.2, dtype=dtype
    )
    opt = Adam(lr=0.001)

    def step() -> None:
        opt.update(net.params, net.gradient(x, t))

    step()  # compile kernels and create the optimizer state outside the check
    return step


def check_gpu(t: Target, g: Group) -> None:
    with g.case("no sync or transfer in a training step"), t.active() as b:
        report = check_step(_lib(b), training_step(t.dtype))
        g.notes.append(f"sync check: {report}")
        g.require(
            "the step did not wait for the device",
            not report["blocked_on_device"],
            f"a training step synchronised: {report['sync_reports']}",
        )
        g.require("no sync reported", not report["sync_reports"], str(report["sync_reports"]))
        g.require(
            "no host-to-device array in the step",
            report["host_to_device_calls"] == 0,
            str(report.get("host_to_device_examples")),
        )
    with g.case("matmul precision"), t.active() as b:
        g.notes.append(f"float32 matmul precision: {matmul_precision(b)}")
        g.require(
            "precision as selected",
            _tf32_on(b) == t.tf32,
            f"{matmul_precision(b)} but --allow-tf32 is {t.tf32}",
        )


def _tf32_on(b: Backend) -> bool:
    lib = _lib(b)
    if lib == "cupy":
        return _cupy_tf32()
    if lib == "torch":
        return importlib.import_module("torch").get_float32_matmul_precision() != "highest"
    return importlib.import_module("jax").config.jax_default_matmul_precision != "highest"
