"""The report's header: every version and setting that decides the numbers."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys
from typing import Any

import numpy as np  # its version and BLAS are part of what decides the reference numbers

from .. import __version__
from ..backend import Backend

_DISTRIBUTIONS = {
    "numpy": ("numpy",),
    "array_api_strict": ("array-api-strict",),
    "torch": ("torch",),
    "cupy": ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"),
    "jax": ("jax", "jaxlib"),
}


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions(name: str) -> dict[str, str]:
    found = {d: version(d) for d in _DISTRIBUTIONS.get(name, (name,))}
    return {d: v for d, v in found.items() if v is not None}


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # an older NumPy without mode="dicts": say so rather than guess
        return "unknown"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(dtypes: list[str], quick: bool, allow_tf32: bool) -> dict[str, Any]:
    threads = {
        k: os.environ[k]
        for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    }
    return {
        "xpscratch": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "array_api_compat": version("array-api-compat"),
        "blas": _blas(),
        "threads": threads or "library defaults",
        "dtypes": dtypes,
        "battery": "quick" if quick else "full",
        "allow_tf32": allow_tf32,
    }


def device_info(b: Backend) -> dict[str, Any]:
    """The device's name (GPU model and driver where there is one) and library settings."""
    info: dict[str, Any] = {"device": str(b.device)}
    if b.name == "cupy":
        cupy = importlib.import_module("cupy")
        props = cupy.cuda.runtime.getDeviceProperties(b.device.id)
        name = props["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["driver"] = cupy.cuda.runtime.driverGetVersion()
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    elif b.name == "torch":
        torch = importlib.import_module("torch")
        info["torch_threads"] = torch.get_num_threads()
        if getattr(b.device, "type", "") == "cuda":
            info["gpu"] = torch.cuda.get_device_name(b.device)
            info["cuda"] = torch.version.cuda
    elif b.name == "jax":
        info["platform"] = str(getattr(b.device, "platform", b.device))
        info["device_kind"] = str(getattr(b.device, "device_kind", ""))
    return info
