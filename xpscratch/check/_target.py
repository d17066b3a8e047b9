"""What one battery run is about: a backend, its device, a dtype, the matmul precision.

The NumPy reference of every case is computed once per run (:class:`References`) and
shared by all targets, so ``--backend all`` pays for NumPy once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..backend import Backend, use_backend
from ._policy import Tolerances, tolerances


@dataclass
class References:
    """NumPy results by case key, computed on first use."""

    cache: dict[tuple, Any] = field(default_factory=dict)

    def get(self, key: tuple, dtype: str, compute: Callable[[], Any]) -> Any:
        full = (*key, dtype)
        if full not in self.cache:
            with use_backend("numpy"):
                self.cache[full] = compute()
        return self.cache[full]


@dataclass
class Target:
    """One backend and device, in one dtype, and how big the battery is."""

    name: str
    device: Any
    label: str
    dtype: str
    quick: bool
    tf32: bool
    references: References
    backend: Backend | None = None

    @property
    def tol(self) -> Tolerances:
        return tolerances(self.dtype, self.tf32)

    @property
    def steps(self) -> int:
        """How many steps a trajectory is compared over (float32 drifts: short)."""
        return 0 if self.dtype == "float64" else self.tol.float32_steps

    @contextlib.contextmanager
    def active(self) -> Iterator[Backend]:
        with use_backend(self.name, self.device) as b:
            yield b

    def both(self, key: tuple, compute: Callable[[], Any]) -> tuple[Any, Any]:
        """``compute()`` on this target and on NumPy (cached), in this target's dtype."""
        with self.active():
            mine = compute()
        if self.name == "numpy" and not self.quick:
            # the full battery's runs take minutes: NumPy's own run is the reference (the
            # quick battery computes it twice, which also proves it is reproducible)
            self.references.cache.setdefault((*key, self.dtype), mine)
        return mine, self.references.get(key, self.dtype, compute)

    @property
    def is_gpu(self) -> bool:
        return is_gpu(self.backend)


def is_gpu(b: Backend | None) -> bool:
    if b is None:
        return False
    if b.name == "cupy":
        return True
    text = str(getattr(b.device, "type", b.device)).lower()
    return any(word in text for word in ("cuda", "gpu", "rocm"))
