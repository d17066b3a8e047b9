"""GPU helpers for the benchmark workers: synchronising, device memory, and proving that a
training step neither waits for the device nor copies between host and device.

The sync check and ``sync`` are the check battery's own (``xpscratch/check/_gpu.py``,
where the method is described): one copy, which benchmarks import from the library.
Every import of cupy or torch is inside a function: this module loads on machines
without either.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))  # run as a script: this checkout's xpscratch

from xpscratch.check._gpu import SPIN_CYCLES, check_step, sync  # noqa: E402

__all__ = [
    "SPIN_CYCLES",
    "check_step",
    "device_memory",
    "device_name",
    "library",
    "reset_peak_memory",
    "sync",
]


def library(competitor: str) -> str:
    """'cupy' or 'torch' for a GPU competitor."""
    return "cupy" if "cupy" in competitor else "torch"


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


def _usable(lib: str) -> bool:
    try:
        if lib == "cupy":
            import cupy

            return cupy.cuda.runtime.getDeviceCount() > 0
        import torch

        return torch.cuda.is_available()
    except Exception:  # not installed, or installed without a usable driver
        return False


def _matmul_step(lib: str):
    """A device-resident matmul: the smallest step that must neither sync nor copy."""
    if lib == "cupy":
        import cupy

        a = cupy.ones((256, 256), dtype=cupy.float32)
    else:
        import torch

        a = torch.ones((256, 256), dtype=torch.float32, device="cuda")
    return lambda: a @ a


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run the benchmarks' sync check once on each usable CUDA library "
        "(cupy, torch) and print its report; skips with a reason on a machine without a GPU."
    )
    parser.parse_args()
    libs = [lib for lib in ("cupy", "torch") if _usable(lib)]
    if not libs:
        print("skipped: no usable CUDA GPU (cupy or torch) on this machine")
        return
    for lib in libs:
        step = _matmul_step(lib)
        step()  # warm up outside the check
        sync(lib)
        print(lib, device_name(lib), json.dumps(check_step(lib, step)))


if __name__ == "__main__":
    main()
