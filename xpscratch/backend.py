"""The backend switch: which array library and device new arrays are created on.

This is the only library module that imports NumPy or CuPy.  Everything else gets
its namespace from its input arrays (:func:`namespace`); the active backend is
consulted only where no array exists yet: creating parameters, drawing random
numbers, moving host data onto the device.

Backends: ``numpy`` (default), ``cupy`` (CUDA GPU), ``torch`` (CPU or CUDA),
``jax`` (CPU, GPU or whatever devices JAX reports; float64 only in its 64-bit mode) and
``array_api_strict`` (a minimal, strict implementation used to prove portability;
its fake devices ``device1``, ``no_float64`` and ``no_x64`` refuse host copies,
float64, and 64-bit types).

Arrays may be immutable (JAX): :func:`writable` tells whether an array may be changed
in place, and code that must update state writes the result back instead.

Selecting one: :func:`set_backend` (process-wide), ``with use_backend(...)``
(this thread or task only), or the environment variable ``XPSCRATCH_BACKEND``
(``name`` or ``name:device``, e.g. ``torch:cuda``) read when nothing was set.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType, MethodType, ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._cache import cache_root

BACKENDS = ("numpy", "cupy", "torch", "jax", "array_api_strict")
FLOAT_DTYPES = ("float32", "float64")
# The oldest array API standard version supported: __array_namespace_info__ (device
# dtypes) exists from 2023.12 on.
MIN_API_VERSION = "2023.12"

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendMismatchError",
    "CompileCacheWarning",
    "compile_cache_warnings_once",
    "default_compile_cache_dir",
    "enable_compile_cache",
    "asarray",
    "device_of",
    "available_backends",
    "float_dtype",
    "get_backend",
    "get_default_dtype",
    "host_namespace",
    "index_dtype",
    "is_traced",
    "namespace",
    "repeat_rounds",
    "scan_steps",
    "set_backend",
    "set_default_dtype",
    "set_torch_threads",
    "to_numpy",
    "unfused",
    "move",
    "persist",
    "persists",
    "put_scalar",
    "register_backend",
    "registered_backends",
    "check_namespace",
    "device_dtypes",
    "use_backend",
    "use_default_dtype",
    "writable",
]


class BackendError(RuntimeError):
    """A backend cannot be used (unknown name, library missing, no GPU, bad device)."""


class BackendMismatchError(TypeError):
    """Arrays from two backends or two devices were combined."""


@dataclass(frozen=True)
class Backend:
    """An array namespace (array-API compatible) and the device new arrays go to."""

    name: str
    xp: ModuleType
    device: Any

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, device={self.device!r})"


# ---------------------------------------------------------------------------
# Resolving a name to a Backend
# ---------------------------------------------------------------------------


def _import(module: str, fix: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendError(f"backend needs {module!r}, which is not installed: {fix}") from exc


_NUMPY_XP = array_api_compat.array_namespace(np.empty(0))


def _make_numpy(device: Any) -> Backend:
    if device not in (None, "cpu"):
        raise BackendError(f"numpy runs on the CPU only; got device={device!r}")
    return Backend("numpy", _NUMPY_XP, "cpu")


def _make_cupy(device: Any) -> Backend:
    cupy = _import(
        "cupy",
        "install CuPy for your CUDA version, e.g. pip install 'xpscratch[cuda12]' "
        "or 'xpscratch[cuda13]', or use set_backend('numpy') on a machine without a GPU",
    )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError, or a missing driver library
        raise BackendError(
            f"CuPy is installed but no usable CUDA GPU was found ({exc}); check the NVIDIA "
            "driver (nvidia-smi) and that the CuPy package matches your CUDA version, "
            "or use set_backend('numpy')"
        ) from exc
    if count == 0:
        raise BackendError("CuPy is installed but this machine has no CUDA GPU; use 'numpy'")
    index = 0 if device is None else int(str(device).removeprefix("cuda:"))
    if not 0 <= index < count:
        raise BackendError(f"CUDA device {index} does not exist; this machine has {count}")
    xp = _import("array_api_compat.cupy", "pip install array-api-compat")
    return Backend("cupy", xp, cupy.cuda.Device(index))


def _make_torch(device: Any) -> Backend:
    wants_cuda = str(device).startswith("cuda")
    torch = _import(
        "torch",
        "install a CUDA build of torch (the command for your CUDA version is on "
        "https://pytorch.org/get-started/locally/)"
        if wants_cuda
        # plain `pip install torch` on Linux pulls the CUDA build and its whole stack
        else "pip install torch --index-url https://download.pytorch.org/whl/cpu "
        "(the CPU-only build is enough)",
    )
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BackendError(f"torch does not know the device {device!r}: {exc}") from exc
    _check_torch_device(torch, dev)
    xp = _import("array_api_compat.torch", "pip install array-api-compat")
    return Backend("torch", xp, _indexed_torch_device(torch, dev))


def _indexed_torch_device(torch: ModuleType, dev: Any) -> Any:
    """``cuda`` as the tensors made on it report it: ``cuda:0`` (the current GPU).

    torch.device("cuda") != torch.device("cuda:0"), and a tensor created on "cuda" reports
    the latter, so a device without its index never equals the device of its own arrays.
    """
    if dev.index is not None or dev.type in ("cpu", "meta"):  # their tensors carry no index
        return dev
    current = getattr(getattr(torch, dev.type, None), "current_device", None)
    index = current() if callable(current) else 0  # mps has no current_device: mps:0
    return torch.device(dev.type, index) if isinstance(index, int) else dev


def _check_torch_device(torch: ModuleType, dev: Any) -> None:
    """Refuse a torch device this machine does not have, saying how to get it."""
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(
            "torch has no usable CUDA GPU here (torch.cuda.is_available() is False); "
            "use device='cpu' or install a CUDA build of torch"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BackendError(
            f"torch sees {torch.cuda.device_count()} CUDA GPU(s), so there is no {dev}; "
            "use cuda:0 or plain cuda"
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            built = mps is not None and mps.is_built()
            raise BackendError(
                "torch has no usable Apple GPU (mps) here: "
                + (
                    "this torch was built with MPS but macOS 12.3+ on Apple silicon is needed"
                    if built
                    else "this torch build has no MPS support (it needs macOS on Apple "
                    "silicon and the macOS wheel of torch)"
                )
                + "; use device='cpu'"
            )
    if dev.type == "xpu":
        xpu = getattr(torch, "xpu", None)
        if xpu is None or not xpu.is_available():
            raise BackendError(
                "torch has no usable Intel GPU (xpu) here (torch.xpu.is_available() is "
                "False); install the XPU build of torch (https://pytorch.org/get-started/"
                "locally/) and Intel's GPU driver, or use device='cpu'"
            )


JAX_X64_FIX = (
    "turn on the 64-bit mode before creating arrays: jax.config.update('jax_enable_x64', "
    "True), or JAX_ENABLE_X64=1 in the environment"
)


def _make_jax(device: Any) -> Backend:
    jax = _import("jax", "pip install 'xpscratch[jax]' (CPU) or 'xpscratch[jax-cuda12]' (GPU)")
    kind, _, index = str(device or "").partition(":")
    kind = {"cuda": "gpu"}.get(kind, kind)
    try:
        devices = jax.devices(kind) if kind else jax.devices()
    except RuntimeError as exc:  # no such platform here (no GPU, no CUDA plugin)
        raise BackendError(
            f"JAX has no {kind!r} device here ({exc}); JAX sees {jax.devices()}. "
            "For a GPU install pip install 'xpscratch[jax-cuda12]'"
        ) from exc
    i = int(index or 0)
    if not 0 <= i < len(devices):
        raise BackendError(f"JAX {kind or 'default'} device {i} does not exist; JAX has {devices}")
    return Backend("jax", jax.numpy, devices[i])


def _make_strict(device: Any) -> Backend:
    xp = _import("array_api_strict", "pip install array-api-strict (it comes with [test])")
    if xp.__array_api_version__ < MIN_API_VERSION:
        raise BackendError(
            f"array_api_strict is set to the standard {xp.__array_api_version__}; xpscratch "
            f"needs {MIN_API_VERSION} or newer (for __array_namespace_info__): "
            f"array_api_strict.set_array_api_strict_flags(api_version='{MIN_API_VERSION}')"
        )
    devices = {d._device: d for d in xp.__array_namespace_info__().devices()}
    name = "CPU_DEVICE" if device in (None, "cpu") else getattr(device, "_device", device)
    if name not in devices:
        raise BackendError(
            f"array_api_strict has no device {device!r}; choose one of {sorted(devices)}"
        )
    return Backend("array_api_strict", xp, devices[name])


_FACTORIES = {
    "numpy": _make_numpy,
    "cupy": _make_cupy,
    "torch": _make_torch,
    "jax": _make_jax,
    "array_api_strict": _make_strict,
}


# ---------------------------------------------------------------------------
# Any other array-API library: registered by name, or given as a namespace
# ---------------------------------------------------------------------------

# Every standard function xpscratch calls on a namespace (layers, optimizers, random).
REQUIRED_FUNCTIONS = (
    "abs", "all", "arange", "argmax", "argsort", "asarray", "astype", "broadcast_to",
    "exp", "flip", "floor", "full", "full_like", "iinfo", "isdtype", "log", "max",
    "mean", "min", "ones_like", "reshape", "round", "sign", "sort", "sqrt", "stack",
    "sum", "take", "where", "zeros", "zeros_like",
)  # fmt: skip

_REGISTERED: dict[str, Any] = {}
_NAME_OF_NAMESPACE: dict[int, str] = {}  # a registered library's namespace -> its name
_CHECKED: dict[tuple[int, str], None] = {}  # (namespace, device) pairs that passed


def register_backend(name: str, factory: Any) -> None:
    """Make ``set_backend(name, device)`` use another array-API library.

    ``factory(device)`` returns the library's namespace (a module that array-api-compat
    recognises, or whose arrays have ``__array_namespace__``) or a :class:`Backend`.  The
    namespace is checked once, when first selected (:func:`check_namespace`).
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a backend name is a non-empty string without ':'; got {name!r}")
    if name in BACKENDS:
        raise ValueError(f"{name!r} is a built-in backend and cannot be replaced")
    if not callable(factory):
        raise TypeError(f"register_backend: factory must be callable, got {factory!r}")
    _REGISTERED[name] = factory


def registered_backends() -> list[str]:
    """The names added with :func:`register_backend`."""
    return list(_REGISTERED)


def device_dtypes(xp: ModuleType, device: Any = None) -> dict[str, Any]:
    """The dtypes ``device`` supports, by name (``__array_namespace_info__().dtypes``).

    ndonnx 0.23 requires ``kind=`` there, against the standard: the kinds are then
    asked one by one.
    """
    info = xp.__array_namespace_info__()
    try:
        return dict(info.dtypes(device=device))
    except TypeError:
        found: dict[str, Any] = {}
        for kind in ("bool", "signed integer", "unsigned integer", "real floating"):
            with contextlib.suppress(Exception):
                found.update(info.dtypes(device=device, kind=kind))
        return found


def check_namespace(xp: ModuleType, device: Any = None) -> None:
    """Refuse a namespace that lacks what xpscratch needs, naming what is missing.

    Needed: the standard functions in :data:`REQUIRED_FUNCTIONS`; ``__array_namespace_info__``
    (standard 2023.12 or newer); float32 and 32-bit unsigned or 64-bit signed integers on
    the device (the random words); for a lazy library, a way to evaluate (``persist`` or
    ``compute``).  Writable arrays are optional.  Each (namespace, device) is checked once.
    """
    key = (id(xp), str(device))
    if key in _CHECKED:
        return
    name = getattr(xp, "__name__", repr(xp))
    version = getattr(xp, "__array_api_version__", None)
    if isinstance(version, str) and version < MIN_API_VERSION:
        raise BackendError(
            f"{name} implements the array API standard {version}; xpscratch needs "
            f"{MIN_API_VERSION} or newer (for __array_namespace_info__)"
        )
    missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(xp, f, None))]
    if missing:
        raise BackendError(
            f"{name} lacks the standard functions {', '.join(missing)}, which xpscratch uses"
        )
    if not callable(getattr(xp, "__array_namespace_info__", None)):
        raise BackendError(
            f"{name} has no __array_namespace_info__ (array API standard {MIN_API_VERSION}), "
            "which xpscratch uses to learn the device's dtypes"
        )
    dtypes = device_dtypes(xp, device)
    if "float32" not in dtypes:
        raise BackendError(f"{name} has no float32 on device {device!r}")
    if "uint32" not in dtypes and "int64" not in dtypes:
        raise BackendError(
            f"{name} has neither uint32 nor int64 on device {device!r}: the random "
            "streams need one of them"
        )
    probe = xp.zeros((1,), dtype=xp.float32, device=device)
    if array_api_compat.is_lazy_array(probe) and not hasattr(probe, "persist"):
        try:  # lazy without persist(): usable only where its values can be read
            _foreign_to_numpy(probe)
        except TypeError as exc:
            raise BackendError(
                f"{name} evaluates lazily and has no evaluation point xpscratch knows "
                f"(persist(), compute(), DLPack or __array__): {exc}"
            ) from None
    _CHECKED[key] = None


def _namespace_backend(xp: Any, device: Any, name: str | None = None) -> Backend:
    """A Backend for any array-API namespace (normalised to the one its arrays report)."""
    if isinstance(xp, Backend):
        check_namespace(xp.xp, xp.device)
        return xp
    try:
        probe = xp.asarray([0.0])
        xp = array_api_compat.array_namespace(probe)
    except Exception as exc:
        raise BackendError(
            f"{getattr(xp, '__name__', xp)!r} is not an array API namespace that "
            f"array-api-compat recognises, nor do its arrays have __array_namespace__ ({exc})"
        ) from exc
    if device is None:
        device = array_api_compat.device(probe)
    check_namespace(xp, device)
    if name is not None and backend_name(xp) not in BACKENDS:
        _NAME_OF_NAMESPACE[id(xp)] = name  # what checkpoints and reports call it
    return Backend(name or backend_name(xp), xp, device)


def _resolve(name: Any, device: Any = None) -> Backend:
    if isinstance(name, str) and name in _REGISTERED:
        try:
            made = _REGISTERED[name](device)
        except BackendError:
            raise
        except Exception as exc:  # the library missing or broken: a message, not a crash
            raise BackendError(
                f"the factory registered for backend {name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return _namespace_backend(made, device, name)
    if name is not None and not isinstance(name, str):
        known = backend_name(name.xp if isinstance(name, Backend) else name)
        if known in _FACTORIES and not isinstance(name, Backend):
            return _FACTORIES[known](device)
        return _namespace_backend(name, device)
    if not isinstance(name, str) or name not in _FACTORIES:
        names = ", ".join([*BACKENDS, *_REGISTERED])
        raise BackendError(
            f"unknown backend {name!r}; choose one of {names}, register one with "
            "xpscratch.register_backend(name, factory), or pass an array API namespace"
        )
    return _FACTORIES[name](device)


def _parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, device = spec.strip().partition(":")
    return name, (device or None)


# ---------------------------------------------------------------------------
# The active backend and default dtype
# ---------------------------------------------------------------------------

_lock = threading.Lock()
_global_backend: Backend | None = None
_global_dtype = "float32"
_local_backend: contextvars.ContextVar[Backend | None] = contextvars.ContextVar(
    "xpscratch_backend", default=None
)
_local_dtype: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "xpscratch_dtype", default=None
)
# xpscratch check's noise band: host data moved by asarray is nudged by one ulp
_nudge: contextvars.ContextVar[np.random.Generator | None] = contextvars.ContextVar(
    "xpscratch_nudge", default=None
)


@contextlib.contextmanager
def nudging_inputs(seed: int) -> Iterator[None]:
    """Inside the block, :func:`asarray` moves every host float array (two values or
    more) one ulp up or down at random, element by element, after casting it to its
    dtype: a legitimate perturbation whose effect is the spread honest rounding gives
    (``xpscratch check``'s noise band).  Scalars (hyperparameters, thresholds) stay."""
    token = _nudge.set(np.random.default_rng(seed))
    try:
        yield
    finally:
        _nudge.reset(token)


def _nudge_array(x: Any) -> Any:
    """``x`` nudged by one ulp inside :func:`nudging_inputs` (NumPy floats only)."""
    if _nudge.get() is None or not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        return x
    return _nudged(x, x.dtype)


def _nudged(host: np.ndarray, dtype: Any) -> np.ndarray:
    rng = _nudge.get()
    if rng is None or host.ndim == 0 or host.size < 2:
        return host
    x = host.astype(np.float32 if "32" in str(dtype) else np.float64, copy=True)
    up = rng.random(x.shape) < 0.5
    return np.where(up, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)).astype(x.dtype)


def set_backend(name: Any, device: Any = None) -> Backend:
    """Select the backend for this process (threads inside ``use_backend`` keep theirs).

    ``name`` is a built-in backend, one added with :func:`register_backend`, or an array
    API namespace (e.g. ``array_api_compat.dask.array``).
    """
    global _global_backend
    backend = _resolve(name, device)
    with _lock:
        _global_backend = backend
    return backend


@contextlib.contextmanager
def use_backend(name: Any, device: Any = None) -> Iterator[Backend]:
    """Use a backend inside a ``with`` block, for this thread (or asyncio task) only."""
    token = _local_backend.set(_resolve(name, device))
    try:
        yield _local_backend.get()
    finally:
        _local_backend.reset(token)


def get_backend() -> Backend:
    """The active backend: ``use_backend`` > ``set_backend`` > ``$XPSCRATCH_BACKEND`` > numpy."""
    global _global_backend
    local = _local_backend.get()
    if local is not None:
        return local
    with _lock:
        if _global_backend is None:
            spec = os.environ.get("XPSCRATCH_BACKEND", "").strip()
            try:
                _global_backend = _resolve(*_parse_spec(spec)) if spec else _make_numpy(None)
            except BackendError as exc:
                raise BackendError(f"XPSCRATCH_BACKEND={spec!r}: {exc}") from exc
        return _global_backend


def available_backends() -> list[str]:
    """The backends that can be used on this machine (CuPy only with a working GPU)."""
    usable = []
    for name in [*BACKENDS, *_REGISTERED]:
        try:
            _resolve(name)
        except BackendError:
            continue
        usable.append(name)
    return usable


def set_torch_threads(threads: int) -> None:
    """Set the number of CPU threads torch uses inside one operation (at least 1).

    For processes that share the cores: parallel search workers, or test runs of tiny
    matrices, where torch's thread pool costs more than it gains.  Does nothing where
    torch is not installed.
    """
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return
    torch.set_num_threads(max(1, int(threads)))


def set_default_dtype(dtype: str) -> None:
    """Set the float dtype used where none is given: 'float32' (default) or 'float64'."""
    global _global_dtype
    _global_dtype = _check_dtype_name(dtype)


@contextlib.contextmanager
def use_default_dtype(dtype: str) -> Iterator[str]:
    """Use a default float dtype inside a ``with`` block, for this thread only."""
    token = _local_dtype.set(_check_dtype_name(dtype))
    try:
        yield _local_dtype.get()
    finally:
        _local_dtype.reset(token)


def get_default_dtype() -> str:
    """The default float dtype name, 'float32' unless changed."""
    return _local_dtype.get() or _global_dtype


def _check_dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "__name__", None) or str(dtype).rsplit(".", 1)[-1]
    if name not in FLOAT_DTYPES:
        raise ValueError(f"unsupported float dtype {dtype!r}; use 'float32' or 'float64'")
    return name


def float_dtype(xp: ModuleType, dtype: Any = None, device: Any = None) -> Any:
    """The namespace's dtype object for ``dtype`` (a name, a dtype, or None for the default).

    Checks that the device supports it, so that float64 on a device without it fails
    here with a message rather than deep inside a computation.
    """
    if dtype is not None and not isinstance(dtype, str) and dtype in (xp.float32, xp.float64):
        name = "float64" if dtype == xp.float64 else "float32"
    else:
        name = _check_dtype_name(dtype if dtype is not None else get_default_dtype())
    if name == "float64" and device is not None:
        info = getattr(xp, "__array_namespace_info__", None)
        if info is not None and "float64" not in device_dtypes(xp, device):
            if _is_jax_namespace(xp):
                raise BackendError(
                    "JAX has float64 only in its 64-bit mode: use dtype='float32', or "
                    + JAX_X64_FIX
                )
            raise BackendError(
                f"device {device!r} does not support float64; use dtype='float32' "
                "(or set_default_dtype('float32'))"
            )
    return getattr(xp, name)


# (namespace, device) -> index dtype; not for JAX, whose 64-bit mode can be switched
_INDEX_DTYPES: dict[tuple[int, Any], Any] = {}


def index_dtype(xp: ModuleType, device: Any = None) -> Any:
    """int64 where the device has it, else int32 (JAX by default, strict's ``no_x64``)."""
    if xp is _NUMPY_XP:  # the common case, asked once per batch: no lookup
        return xp.int64
    key = (id(xp), device)
    try:
        return _INDEX_DTYPES[key]
    except (KeyError, TypeError):  # TypeError: an unhashable device, looked up each time
        pass
    info = getattr(xp, "__array_namespace_info__", None)
    dtype = xp.int32 if info is not None and "int64" not in device_dtypes(xp, device) else xp.int64
    if not _is_jax_namespace(xp):
        with contextlib.suppress(TypeError):
            _INDEX_DTYPES[key] = dtype
    return dtype


def _is_jax_namespace(xp: ModuleType) -> bool:
    return xp.__name__.startswith("jax")


# ---------------------------------------------------------------------------
# Writable or immutable arrays
# ---------------------------------------------------------------------------

# array type -> whether arrays of that type may be changed in place (a one-time probe)
_WRITABLE_TYPES: dict[type, bool] = {}


def writable(x: Any) -> bool:
    """Whether ``x`` may be changed in place (NumPy, CuPy, torch, strict; not JAX).

    Code that updates state keeps in-place arithmetic where this is True (fewer
    temporaries, and the same rounding as the expression) and otherwise computes a
    new array and writes it back where its holders look (a dict, an attribute).
    """
    kind = type(x)
    ok = _WRITABLE_TYPES.get(kind)
    if ok is None:
        ok = _WRITABLE_TYPES[kind] = _probe_writable(x)
    if ok and kind is np.ndarray:
        return x.flags.writeable  # a read-only view, e.g. of a checkpoint buffer
    return ok


def _probe_writable(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return True
    if array_api_compat.is_jax_array(x) or _is_scalar(x):
        return False
    # array_api_compat knows the libraries whose arrays are read-only; an unknown one
    # counts as writable only if it has the in-place operators that updates use
    return array_api_compat.is_writeable_array(x) and all(
        hasattr(kind, op) for kind in [type(x)] for op in ("__iadd__", "__isub__", "__imul__")
    )


# ---------------------------------------------------------------------------
# Tracing (jax.jit, torch.compile): what a compiled step must not keep or read
# ---------------------------------------------------------------------------


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a placeholder of a trace (``jax.jit``) rather than a value.

    Such arrays must not be cached (a second trace would find a dead tracer) nor
    read (``int(x)`` fails).  ``torch.compile`` traces real tensors: there the test is
    whether dynamo is compiling now.
    """
    if array_api_compat.is_jax_array(x):
        jax = importlib.import_module("jax")
        return isinstance(x, jax.core.Tracer)
    if array_api_compat.is_torch_array(x):
        # sys.modules, not importlib: dynamo refuses to trace import_module (a graph break)
        return bool(sys.modules["torch"].compiler.is_compiling())
    return False


def repeat_rounds(first: int, last: int, body: Any, carry: Any) -> Any:
    """``for r in range(first, last): carry = body(r, carry)``, linear in cost when traced.

    Under ``jax.jit`` the rounds run in one ``lax.fori_loop`` (``r`` is then a traced
    0-d int): unrolled, XLA's fusion of a few dozen integer rounds grows far more than
    linearly (hundreds of ms a step).  Everywhere else it is the plain Python loop.
    """
    leaves = carry if isinstance(carry, tuple | list) else (carry,)
    if any(array_api_compat.is_jax_array(a) and is_traced(a) for a in leaves):
        jax = importlib.import_module("jax")
        return jax.lax.fori_loop(first, last, body, carry)
    for r in range(first, last):
        carry = body(r, carry)
    return carry


def scan_steps(length: int, body: Any, carry: Any) -> tuple[Any, Any]:
    """``for _ in range(length): carry, y = body(carry)``: the last carry and the ``y``
    stacked along a new first axis (``length`` >= 1; ``carry`` a nest of dicts, tuples,
    lists and arrays).

    Under ``jax.jit`` one ``lax.scan``: ``body`` is traced once, so a program's size and
    compile time do not grow with ``length``.  Everywhere else the plain Python loop
    and ``xp.stack``.
    """
    if length < 1:
        raise ValueError(f"scan_steps needs at least one step, got length={length}")
    if any(array_api_compat.is_jax_array(a) and is_traced(a) for a in _leaves(carry)):
        jax = importlib.import_module("jax")
        return jax.lax.scan(lambda c, _: body(c), carry, None, length=length)
    ys = []
    for _ in range(length):
        carry, y = body(carry)
        ys.append(y)
    return carry, namespace(ys[0]).stack(ys)


def _leaves(nest: Any) -> list[Any]:
    if isinstance(nest, dict):
        return [a for v in nest.values() for a in _leaves(v)]
    if isinstance(nest, tuple | list):
        return [a for v in nest for a in _leaves(v)]
    return [nest]


def compile_function(fn: Any, xp: ModuleType, *, on_compile: Any = None) -> Any:
    """``fn`` (a pure function of arrays) compiled for ``xp``'s arrays.

    ``jax.jit`` on JAX; on torch ``torch.compile(fullgraph=True)`` with Inductor (a graph
    break is then an error, not a silent fall back to eager).  ``on_compile()``, if given,
    runs once per graph torch compiles (JAX's traces count themselves: ``fn`` runs only
    while tracing).  Other namespaces raise :class:`ValueError`.
    """
    name = backend_name(xp)
    if name == "jax":
        return importlib.import_module("jax").jit(fn)
    if name != "torch":
        raise ValueError(f"no compiler for the {name} backend (JAX and torch compile)")
    torch = importlib.import_module("torch")
    inductor = torch._dynamo.lookup_backend("inductor")

    def counted(graph: Any, example_inputs: Any) -> Any:
        if on_compile is not None:
            on_compile()
        return inductor(graph, example_inputs)

    # dynamic=False: a new shape compiles a graph of its own; otherwise dynamo, which keys
    # its shape history by file, line and name, made graphs of one step dynamic from
    # another network's shapes (and compiled some twice)
    return torch.compile(_own_code(fn), fullgraph=True, dynamic=False, backend=counted)


def _own_code(fn: Any) -> Any:
    """``fn`` (a function or bound method) on a copy of its code object.

    dynamo keeps its compiled graphs on the code object, and after 8 of them
    (``recompile_limit``) a ``fullgraph`` compile fails: with the code shared, the ninth
    network compiled in a process (a search, a test run) would fail.  A copy per
    compiled function gives each its own count.
    """
    func = getattr(fn, "__func__", fn)
    code = func.__code__.replace()  # a new code object, equal to the old one
    copy = FunctionType(code, func.__globals__, func.__name__, func.__defaults__, func.__closure__)
    copy.__kwdefaults__, copy.__qualname__ = func.__kwdefaults__, func.__qualname__
    self = getattr(fn, "__self__", None)
    return copy if self is None else MethodType(copy, self)


# ---------------------------------------------------------------------------
# Bit-exact compiled programs: rounding kept, counters put on the device
# ---------------------------------------------------------------------------


def unfused(x: Any, zero: Any) -> Any:
    """``x`` unchanged, rounded on its own even inside a compiled program.

    XLA's CPU backend contracts ``a * b + c`` into a fused multiply-add inside a
    program (one rounding instead of two), and no flag turns that off;
    ``lax.optimization_barrier`` and ``lax.reduce_precision`` between the two do not
    stop it.  Under ``jax.jit`` this xors the bits of ``x`` (a product) with ``zero``,
    a 0-d integer array passed into the program: 0 when it runs, unknown when it is
    compiled, so the add meets an integer operation, never the multiply, and neither
    XLA nor LLVM may fuse them.  Outside a JAX trace it returns ``x`` itself.
    """
    if not (array_api_compat.is_jax_array(x) and is_traced(x)):
        return x
    lax = importlib.import_module("jax").lax
    ints = {4: np.int32, 8: np.int64}[np.dtype(x.dtype).itemsize]
    bits = lax.bitcast_convert_type(x, ints)
    bits = lax.bitwise_xor(bits, lax.broadcast(lax.convert_element_type(zero, ints), x.shape))
    return lax.bitcast_convert_type(bits, x.dtype)


def put_scalar(value: int, dtype: str, like: Any) -> Any:
    """``value`` as a 0-d ``dtype`` array on ``like``'s device: an explicit host-to-device
    copy (JAX's ``device_put``, which ``jax.transfer_guard("disallow")`` allows; a
    plain ``asarray`` is an implicit transfer there)."""
    host, device = np.asarray(value, dtype=dtype), device_of(like)
    if array_api_compat.is_jax_array(like):
        return importlib.import_module("jax").device_put(host, device)
    return namespace(like).asarray(host, device=device)


# ---------------------------------------------------------------------------
# Following arrays, and moving them
# ---------------------------------------------------------------------------


def _library(x: Any) -> str:
    for name, check in (
        ("numpy", array_api_compat.is_numpy_array),
        ("cupy", array_api_compat.is_cupy_array),
        ("torch", array_api_compat.is_torch_array),
        ("jax", array_api_compat.is_jax_array),
    ):
        if check(x):
            return name
    return type(x).__module__.split(".")[0]


# array type -> its namespace, filled by namespace() for the four backends' array types
# (whose namespace depends on the type alone).  A training step asks ~30-70 times; the
# general lookup plus the device comparison costs 3-4 us a call, this path 0.3-0.6 us.
_NAMESPACE_OF_TYPE: dict[type, ModuleType] = {}
_ONE_DEVICE_TYPES: set[type] = set()  # NumPy's: every array is on the CPU


def namespace(*arrays: Any) -> ModuleType:
    """The array-API namespace shared by ``arrays`` (Python scalars and None are ignored).

    Raises :class:`BackendMismatchError` when the arrays come from two backends or
    sit on two devices, naming both and the fix, instead of a copy or a cryptic error.
    """
    if arrays:
        kind = type(arrays[0])
        xp = _NAMESPACE_OF_TYPE.get(kind)
        if xp is not None:
            if len(arrays) == 1:
                return xp
            # all of one known type and, where a type spans devices, on one device;
            # anything else (scalars, mixed types, two devices) takes the checked path
            for a in arrays:
                if type(a) is not kind:
                    break
            else:
                if kind in _ONE_DEVICE_TYPES:
                    return xp
                first = device_of(arrays[0])  # .device: traced JAX arrays have none
                for a in arrays:
                    if device_of(a) != first:
                        break
                else:
                    return xp
    return _checked_namespace(arrays)


def _checked_namespace(arrays: tuple[Any, ...]) -> ModuleType:
    try:
        xp = array_api_compat.array_namespace(*arrays)
    except TypeError as exc:
        libs = sorted({_library(a) for a in arrays if a is not None and not _is_scalar(a)})
        raise BackendMismatchError(
            f"arrays from different backends ({', '.join(libs)}) were combined: {exc}. "
            "Create every array on one backend (xpscratch.asarray moves host data onto "
            "the active backend; xpscratch.to_numpy brings an array back to the host)"
        ) from None
    if len(arrays) > 1:
        devices = [array_api_compat.device(a) for a in arrays if not _is_scalar(a)]
        if any(d != devices[0] for d in devices[1:]):
            if any(_traced(a) for a in arrays):
                raise BackendMismatchError(TRACED_HINT)
            raise BackendMismatchError(
                f"arrays on different devices ({', '.join(map(str, dict.fromkeys(devices)))}) "
                "were combined; create them on one device (xpscratch.asarray(x) uses the "
                "active backend's device)"
            )
    _remember(arrays, xp)
    return xp


TRACED_HINT = (
    "a JAX array being traced (inside jax.jit, jax.grad or jax.vmap) was combined with "
    "concrete arrays, such as a network's parameters that the traced function closes "
    "over: an xpscratch network keeps its weights as state, not as inputs of a pure "
    "function. For a compiled training step use xpscratch.training.compile_step(network, "
    "optimizer) or Trainer(..., compile=True); call the network itself outside jax.jit"
)


def _traced(a: Any) -> bool:
    """A JAX tracer: it has no device until the traced program runs."""
    return _library(a) == "jax" and array_api_compat.device(a) is None


def _remember(arrays: tuple[Any, ...], xp: ModuleType) -> None:
    kinds = {type(a) for a in arrays if not _is_scalar(a)}
    if len(kinds) != 1:
        return
    kind = kinds.pop()
    if kind in _NAMESPACE_OF_TYPE:
        return
    lib = _library(next(a for a in arrays if not _is_scalar(a)))
    if lib in BACKENDS:
        if lib == "numpy":
            _ONE_DEVICE_TYPES.add(kind)
        _NAMESPACE_OF_TYPE[kind] = xp


def _is_scalar(x: Any) -> bool:
    return x is None or isinstance(x, (bool, int, float, complex))


def device_of(x: Any) -> Any:
    """The device an array lives on."""
    return array_api_compat.device(x)


def backend_name(xp: ModuleType) -> str:
    """The backend name, as :func:`set_backend` takes it, of an array namespace."""
    if _is_jax_namespace(xp):  # jax.numpy
        return "jax"
    name = xp.__name__.rsplit(".", 1)[-1]
    if name.startswith("array_api_strict"):
        return "array_api_strict"
    if name in BACKENDS:
        return name
    return _NAME_OF_NAMESPACE.get(id(xp), xp.__name__)


def host_namespace() -> ModuleType:
    """NumPy's array-API namespace, for work that is done on the host by design."""
    return _make_numpy(None).xp


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any backend to a new NumPy array on the host.

    The one way back to the host (plots, logs, checkpoints).  Always a copy that the
    caller owns, also on CPU backends whose memory NumPy could share: a saved value
    must not change when training goes on.  On a GPU this is a device-to-host transfer
    and a synchronisation: call it where a number is needed.
    """
    if isinstance(x, np.ndarray | np.generic):
        return np.array(x, copy=True)
    lib = _library(x)
    if lib == "cupy":
        return x.get()
    if lib == "torch":
        return x.detach().cpu().numpy().copy()
    if lib == "jax":
        return np.array(x, copy=True)  # a device-to-host transfer (JAX's guards see it)
    if lib == "array_api_strict":
        import array_api_strict as strict  # a dependency only of the strict backend

        return np.array(x.to_device(strict.Device("CPU_DEVICE")), copy=True)
    if _is_scalar(x) or isinstance(x, list | tuple):
        return np.array(x)
    return _foreign_to_numpy(x)


def _foreign_to_numpy(x: Any) -> np.ndarray:
    """to_numpy for another library's array: DLPack, else ``__array__`` (after evaluating
    a lazy array), else ndonnx's ``unwrap_numpy``."""
    if array_api_compat.is_lazy_array(x) and hasattr(x, "compute"):
        x = x.compute()  # dask: evaluate, giving a NumPy array
        if isinstance(x, np.ndarray | np.generic):
            return np.array(x, copy=True)
    if hasattr(x, "__dlpack__"):
        try:
            return np.array(np.from_dlpack(x), copy=True)
        except (BufferError, TypeError, ValueError, RuntimeError):
            pass  # not on the CPU, or a library that exports no data: try the others
    if array_api_compat.is_ndonnx_array(x):
        return np.array(x.unwrap_numpy(), copy=True)
    if hasattr(x, "__array__"):
        host = np.asarray(x)
        if host.dtype != object:
            return np.array(host, copy=True)
    raise TypeError(
        f"to_numpy: cannot copy a {type(x).__module__}.{type(x).__name__} to the host: "
        "it supports neither DLPack on the CPU (__dlpack__) nor __array__"
    )


def _check_integers_fit(host: np.ndarray, info: Any, b: Backend) -> None:
    """Refuse integers the device's integer dtype cannot hold: JAX's 32-bit mode (and
    strict's no_x64) would wrap label 2**32 + 3 round to 3, and train on it."""
    if host.size == 0:
        return
    lo, hi = int(host.min()), int(host.max())
    if lo >= info.min and hi <= info.max:
        return
    bad = hi if hi > info.max else lo
    fix = (
        "enable JAX's 64-bit mode (jax.config.update('jax_enable_x64', True))"
        if b.name == "jax"
        else "use a device with 64-bit integers"
    )
    raise ValueError(
        f"asarray: integer {bad} does not fit this device's integers ({info.dtype}, "
        f"{info.min}..{info.max}) on {b.name} {b.device}: it would wrap round to another "
        f"value; check the data, or {fix}"
    )


def asarray(x: Any, dtype: Any = None, *, like: Any = None) -> Any:
    """Move host data (NumPy arrays, lists, scalars) onto the active backend and device.

    With ``like=array``, onto that array's backend and device instead.  Float data is
    cast to ``dtype`` (the default float dtype unless given); integer data becomes
    int64 (int32 on a device without 64-bit integers) and booleans stay boolean.  An
    array already on the target backend and
    device is returned as is (cast if needed).  An array of another backend raises
    :class:`BackendMismatchError`: moving it is a copy the caller must ask for with
    :func:`to_numpy`, never a silent one.
    """
    if like is None:
        b = get_backend()
    else:
        b = Backend(_library(like), namespace(like), array_api_compat.device(like))
    xp = b.xp
    native = b.name == "numpy" and isinstance(x, np.ndarray) and x.dtype.kind in "fiub"
    if not native and (isinstance(x, np.ndarray | np.generic | list | tuple) or _is_scalar(x)):
        host = np.asarray(x)
        target = None
        if host.dtype.kind in "iu":
            target = index_dtype(xp, b.device)
            _check_integers_fit(host, xp.iinfo(target), b)
            # int64 everywhere: torch and strict lack arithmetic on some unsigned types
            host = host.astype(np.int64, copy=False)
        elif host.dtype.kind not in "fb":
            raise TypeError(f"asarray: cannot move {host.dtype} data to {b.name}")
        if host.dtype.kind == "f" or dtype:
            target = float_dtype(xp, dtype, b.device)
            if host.dtype.kind == "f":
                host = _nudged(host, target)
        return xp.asarray(host, dtype=target, device=b.device, copy=True)
    lib = _library(x)
    if lib != b.name and array_api_compat.array_namespace(x) is not xp:
        raise BackendMismatchError(
            f"asarray: got a {lib} array but the target backend is {b.name}; "
            "call xpscratch.to_numpy(x) first to copy it through the host explicitly"
        )
    if array_api_compat.device(x) != b.device:
        raise BackendMismatchError(
            f"asarray: the array is on {array_api_compat.device(x)} but the target is {b.device}"
        )
    if xp.isdtype(x.dtype, "real floating") or dtype is not None:
        target = float_dtype(xp, dtype, b.device)
        if native and x.dtype.kind == "f" and _nudge.get() is not None:
            return _nudged(x, target)
    elif xp.isdtype(x.dtype, "integral"):
        target = index_dtype(xp, b.device)
        if native and x.dtype != target:  # host values: reading them costs nothing
            _check_integers_fit(x, xp.iinfo(target), b)
    else:
        target = None
    return x if target is None or x.dtype == target else xp.astype(x, target)


def _target_backend(like: Any, backend: Any = None, device: Any = None) -> Backend:
    """Where :func:`move` puts arrays: ``backend`` and ``device``, by default ``like``'s."""
    xp = namespace(like)
    if backend is None:
        if device is None:
            return Backend(backend_name(xp), xp, device_of(like))
        name = backend_name(xp)
        backend = name if name in _FACTORIES or name in _REGISTERED else xp
    return _resolve(backend, device)


def move(
    arrays: dict[str, Any], backend: Any = None, device: Any = None, dtype: Any = None
) -> dict[str, Any]:
    """Copies of ``arrays`` on another backend, device or float dtype, through the host.

    ``backend`` is a name or namespace as for :func:`set_backend` (default: the arrays'
    own), ``device`` its device.  Float arrays become ``dtype`` (default: their own
    precision), integer arrays the target's index dtype; None values stay None.  The
    explicit copy behind ``network.to``, ``optimizer.to`` and ``Trainer.to``.
    """
    first = next((a for a in arrays.values() if a is not None), None)
    if first is None:
        return dict(arrays)
    token = _local_backend.set(_target_backend(first, backend, device))
    try:
        out = {}
        for key, a in arrays.items():
            if a is None:
                out[key] = None
                continue
            host = to_numpy(a)
            out[key] = asarray(host, (dtype or host.dtype.name) if host.dtype.kind == "f" else None)
        return out
    finally:
        _local_backend.reset(token)


_LAZY_TYPES: dict[type, bool] = {}  # array type -> whether persist() evaluates it


def persists(x: Any) -> bool:
    """Whether ``x`` is lazy and :func:`persist` evaluates it (a dict lookup per type)."""
    kind = type(x)
    lazy = _LAZY_TYPES.get(kind)
    if lazy is None:
        lazy = _LAZY_TYPES[kind] = bool(
            x is not None and array_api_compat.is_lazy_array(x) and hasattr(x, "persist")
        )
    return lazy


def persist(arrays: dict[Any, Any]) -> dict[Any, Any]:
    """``arrays`` evaluated where their library is lazy and can keep results (dask's
    ``persist``, all in one pass so shared work is done once); else ``arrays`` itself.

    The Trainer calls it after each update, so that a step's task graph starts from
    stored values and its cost does not grow with the step count.
    """
    first = next(iter(arrays.values()), None)
    if not persists(first):
        return arrays
    if array_api_compat.is_dask_array(first):
        values = importlib.import_module("dask").persist(*arrays.values())
    else:
        values = [a.persist() for a in arrays.values()]
    return dict(zip(arrays, values, strict=True))


# ---------------------------------------------------------------------------
# JAX's persistent compilation cache: compiled programs kept on disk for the next process
# ---------------------------------------------------------------------------

# Programs that took less to compile are not written.  0: all of them, the small programs
# of operations run eagerly too (`run all --quick`: 353 programs, 2.9 MB; loading one took
# ~7 ms, compiling 25-150 ms).  JAX's default, 1 s, kept 11 and left 38 s of compiling of
# 55; 0.1 s kept 57 and left 8 s, and which ones depended on the machine's load.
COMPILE_CACHE_MIN_SECONDS = 0.0
_JAX_CACHE_ERROR = re.compile(r"Error (reading|writing) persistent compilation cache entry")
COMPILE_CACHE_ENV = "XPSCRATCH_COMPILE_CACHE"  # 0 (or false, no, off): no cache
COMPILE_CACHE_OFF_HINT = f"{COMPILE_CACHE_ENV}=0 or --no-compile-cache turns it off"


class CompileCacheWarning(UserWarning):
    """JAX's compilation cache could not be used; JAX compiles as it would without it."""


def default_compile_cache_dir() -> Path:
    """``$XPSCRATCH_CACHE_DIR/jax``, else ``$XDG_CACHE_HOME/xpscratch/jax`` or
    ``~/.cache/xpscratch/jax`` (beside the downloaded datasets)."""
    root = os.environ.get("XPSCRATCH_CACHE_DIR", "")
    if root:
        return Path(root).expanduser() / "jax"
    return cache_root() / "jax"


def enable_compile_cache(
    path: str | os.PathLike[str] | None = None, *, min_compile_time_s: float | None = None
) -> str | None:
    """Turn on JAX's persistent compilation cache: compiled programs are written to disk,
    and a later process loads them instead of compiling again.  The folder JAX uses, or
    None where the cache stays off.

    ``path`` defaults to :func:`default_compile_cache_dir`; programs are kept whatever
    their compile time (``min_compile_time_s``, default ``COMPILE_CACHE_MIN_SECONDS``,
    unless ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` is set).  JAX's own settings
    win: where ``jax_compilation_cache_dir`` is already set (``JAX_COMPILATION_CACHE_DIR``
    or ``jax.config.update``), that folder is used and nothing is changed; where
    ``jax_enable_compilation_cache`` is off, ``XPSCRATCH_COMPILE_CACHE=0``, or JAX is not
    installed, it stays off.  A
    folder that cannot be made or written gives one :class:`CompileCacheWarning` and
    leaves the cache off.  ``JAX_COMPILATION_CACHE_DIR`` is set too, so that the processes
    this one starts (a search's workers) share the cache.

    Importing xpscratch never changes JAX's configuration; the ``xpscratch`` command
    calls this on JAX.  The cache is trusted code: keep it where only you can write
    (a folder it makes is writable by you only).  A damaged entry or a full disk is a
    warning from JAX, and the program is compiled as usual.
    """
    if os.environ.get(COMPILE_CACHE_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        jax = importlib.import_module("jax")
    except ImportError:
        return None
    if jax.config.jax_compilation_cache_dir:  # the user's own cache: theirs, untouched
        return str(jax.config.jax_compilation_cache_dir)
    if not jax.config.jax_enable_compilation_cache:
        return None
    folder = path
    try:  # a probe file: permission bits do not tell everything (root, read-only mounts)
        folder = Path(path).expanduser() if path is not None else default_compile_cache_dir()
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".xpscratch-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: no home folder
        why = getattr(exc, "strerror", None) or exc
        warnings.warn(
            f"JAX's compilation cache is off: cannot write to {folder or 'its folder'} "
            f"({why}); programs are compiled in each new process. Set "
            f"XPSCRATCH_CACHE_DIR to a writable folder, or {COMPILE_CACHE_OFF_HINT}",
            CompileCacheWarning,
            stacklevel=2,
        )
        return None
    threshold = os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    if min_compile_time_s is None and threshold is None:
        min_compile_time_s = COMPILE_CACHE_MIN_SECONDS
    if min_compile_time_s is not None:
        threshold = str(float(min_compile_time_s))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(threshold))
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = threshold
    jax.config.update("jax_compilation_cache_dir", str(folder))
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    return str(folder)


def _compile_cache_off() -> None:
    """JAX's persistent cache off from the next program on (JAX's public switches)."""
    sys.modules["jax"].config.update("jax_enable_compilation_cache", False)
    # JAX decides once per process whether to use the cache: reset makes it ask again
    importlib.import_module("jax.experimental.compilation_cache.compilation_cache").reset_cache()


@contextlib.contextmanager
def compile_cache_warnings_once() -> Iterator[None]:
    """Within: at most one warning about JAX's compilation cache, as one line with the fix.

    JAX turns a cache entry it cannot read or write (a full disk, a file left
    half-written, a program compiled for another CPU) into a warning per program and
    compiles as usual; a command would print dozens.  The first of them, or a
    :class:`CompileCacheWarning`, is printed to stderr; the rest are dropped.  After a
    read or write error the cache is off for the rest of the process (what failed once
    fails again, and each try costs a read).  Other warnings are shown as before.
    """
    said = False
    with warnings.catch_warnings():
        show = warnings.showwarning

        def show_once(message: Any, category: Any, *where: Any, **kw: Any) -> None:
            nonlocal said
            text = str(message)
            ours = issubclass(category, CompileCacheWarning)
            if not (ours or _JAX_CACHE_ERROR.match(text)):
                show(message, category, *where, **kw)
                return
            if not ours:
                _compile_cache_off()
            if not said:
                said = True
                if not ours:
                    folder = sys.modules["jax"].config.jax_compilation_cache_dir or "its folder"
                    text = (
                        f"JAX's compilation cache ({folder}): {text}. The run goes on without "
                        "the cache, compiling as usual; if this repeats, free disk space or "
                        f"delete {folder} (compiled programs only). {COMPILE_CACHE_OFF_HINT}"
                    )
                print(f"xpscratch: warning: {text}", file=sys.stderr, flush=True)

        warnings.showwarning = show_once
        yield
