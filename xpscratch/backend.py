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
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "cupy", "torch", "jax", "array_api_strict")
FLOAT_DTYPES = ("float32", "float64")

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendMismatchError",
    "asarray",
    "device_of",
    "available_backends",
    "float_dtype",
    "get_backend",
    "get_default_dtype",
    "host_namespace",
    "index_dtype",
    "namespace",
    "set_backend",
    "set_default_dtype",
    "set_torch_threads",
    "to_numpy",
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
        else "pip install torch (the CPU build is enough)",
    )
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BackendError(f"torch does not know the device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(
            "torch has no usable CUDA GPU here (torch.cuda.is_available() is False); "
            "use device='cpu' or install a CUDA build of torch"
        )
    _check_torch_device(torch, dev)
    xp = _import("array_api_compat.torch", "pip install array-api-compat")
    return Backend("torch", xp, dev)


def _check_torch_device(torch: ModuleType, dev: Any) -> None:
    """Refuse a GPU device this machine does not have (it failed at the first allocation)."""
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BackendError(
            f"torch sees {torch.cuda.device_count()} CUDA GPU(s), so there is no {dev}; "
            "use cuda:0 or plain cuda"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BackendError(
            "torch has no usable Apple GPU here (torch.backends.mps.is_available() is False); "
            "use device='cpu' (mps needs macOS on Apple silicon and a torch built with it)"
        )
    xpu = getattr(torch, "xpu", None)
    if dev.type == "xpu" and not (xpu is not None and xpu.is_available()):
        raise BackendError(
            "torch has no usable Intel GPU here (torch.xpu.is_available() is False); "
            "use device='cpu' or install torch's XPU build"
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


def _resolve(name: str, device: Any = None) -> Backend:
    if not isinstance(name, str) or name not in _FACTORIES:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
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


def set_backend(name: str, device: Any = None) -> Backend:
    """Select the backend for this process (threads inside ``use_backend`` keep theirs)."""
    global _global_backend
    backend = _resolve(name, device)
    with _lock:
        _global_backend = backend
    return backend


@contextlib.contextmanager
def use_backend(name: str, device: Any = None) -> Iterator[Backend]:
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
    for name in BACKENDS:
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
        if info is not None and "float64" not in info().dtypes(device=device):
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
    dtype = (
        xp.int32 if info is not None and "int64" not in info().dtypes(device=device) else xp.int64
    )
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
                first = arrays[0].device
                for a in arrays:
                    if a.device != first:
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
            raise BackendMismatchError(
                f"arrays on different devices ({', '.join(map(str, dict.fromkeys(devices)))}) "
                "were combined; create them on one device (xpscratch.asarray(x) uses the "
                "active backend's device)"
            )
    _remember(arrays, xp)
    return xp


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
    return "array_api_strict" if name.startswith("array_api_strict") else name


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
    raise TypeError(f"to_numpy: not an array of a known backend: {type(x).__name__}")


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
        return xp.asarray(host, dtype=target, device=b.device, copy=True)
    lib = _library(x)
    if lib != b.name:
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
    elif xp.isdtype(x.dtype, "integral"):
        target = index_dtype(xp, b.device)
        if native and x.dtype != target:  # host values: reading them costs nothing
            _check_integers_fit(x, xp.iinfo(target), b)
    else:
        target = None
    return x if target is None or x.dtype == target else xp.astype(x, target)
