"""GPU helpers for the benchmark workers: synchronising, device memory, and proving that a
training step neither waits for the device nor copies between host and device.

Every import of cupy or torch is inside a function: this module loads on machines
without either.

The sync check is direct: put a kernel that spins for about a second on the stream,
run one training step on the host, then ask whether the spinning kernel has finished.
Any synchronisation inside the step (a device-to-host copy, ``float(loss)``, a
blocking host-to-device copy, an explicit ``synchronize``) would have waited for it, so
"still running" proves the step never blocked.  On top of that, CuPy's
``cupyx.allow_synchronize(False)`` (where the installed CuPy still has it) and torch's
``torch.cuda.set_sync_debug_mode`` name the offending call, and the host-to-device
conversions (``cupy.asarray``/``cupy.array`` of host data, ``torch.as_tensor``/
``torch.asarray``/``torch.tensor`` of host data) made during the step are counted.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

SPIN_CYCLES = 2_000_000_000  # about a second at 1.5-2 GHz: far longer than one step's host time

_SPIN_SOURCE = r"""
extern "C" __global__ void xpscratch_spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


def library(competitor: str) -> str:
    """'cupy' or 'torch' for a GPU competitor."""
    return "cupy" if "cupy" in competitor else "torch"


def sync(lib: str) -> None:
    if lib == "cupy":
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    else:
        import torch

        torch.cuda.synchronize()


def reset_peak_memory(lib: str) -> None:
    if lib == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats()


def device_memory(lib: str) -> dict[str, float]:
    """Device memory in MiB: torch's peak allocation, CuPy's memory-pool size and use."""
    mib = 1024.0**2
    if lib == "cupy":
        import cupy

        pool = cupy.get_default_memory_pool()
        return {
            "pool_total_mib": pool.total_bytes() / mib,
            "pool_used_mib": pool.used_bytes() / mib,
        }
    import torch

    return {
        "peak_allocated_mib": torch.cuda.max_memory_allocated() / mib,
        "peak_reserved_mib": torch.cuda.max_memory_reserved() / mib,
    }


def device_name(lib: str) -> str:
    if lib == "cupy":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    import torch

    return torch.cuda.get_device_name()


def _spin(lib: str) -> Any:
    """Launch the spinning kernel and return an event recorded right after it."""
    if lib == "cupy":
        import cupy

        kernel = cupy.RawKernel(_SPIN_SOURCE, "xpscratch_spin")
        kernel((1,), (1,), (cupy.int64(SPIN_CYCLES),))
        event = cupy.cuda.Event()
        event.record()
        return event
    import torch

    torch.cuda._sleep(SPIN_CYCLES)
    event = torch.cuda.Event()
    event.record()
    return event


def _done(lib: str, event: Any) -> bool:
    return bool(event.done) if lib == "cupy" else bool(event.query())


@contextlib.contextmanager
def _count_host_to_device(lib: str) -> Iterator[list[str]]:
    """Count array constructions from host data (NumPy arrays, lists, Python scalars)."""
    calls: list[str] = []
    if lib == "cupy":
        import cupy

        module, names, device_type = cupy, ("asarray", "array"), cupy.ndarray
    else:
        import torch

        module, names, device_type = torch, ("as_tensor", "asarray", "tensor"), torch.Tensor
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
        import cupyx

        allow = getattr(cupyx, "allow_synchronize", None)
        if allow is None:
            notes.append("cupyx.allow_synchronize unavailable in this CuPy")
            yield notes
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated since CuPy 10, still useful here
            with allow(False):
                yield notes
        return
    import torch

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
