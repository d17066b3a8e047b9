"""xpscratch: the "techniques for training" chapter of *Deep Learning from Scratch*.

One array-API code base for NumPy (CPU), CuPy (CUDA), PyTorch and array-api-strict.
Pick a backend with :func:`set_backend` / :func:`use_backend` or ``XPSCRATCH_BACKEND``;
layers, optimizers and networks then follow their arrays.
"""

from ._threads import limit_threads
from .backend import (
    BACKENDS,
    Backend,
    BackendError,
    BackendMismatchError,
    asarray,
    available_backends,
    enable_compile_cache,
    get_backend,
    get_default_dtype,
    set_backend,
    set_default_dtype,
    to_numpy,
    use_backend,
    use_default_dtype,
)

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendMismatchError",
    "__version__",
    "asarray",
    "available_backends",
    "enable_compile_cache",
    "get_backend",
    "get_default_dtype",
    "limit_threads",
    "set_backend",
    "set_default_dtype",
    "to_numpy",
    "use_backend",
    "use_default_dtype",
]
