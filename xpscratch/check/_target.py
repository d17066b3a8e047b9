"""What one battery run is about: a backend, its device, a dtype, the matmul precision.

NumPy's side of every case (the float64 truth, the plain run and the nudged runs of
:mod:`._policy`) is computed once per run (:class:`References`) and shared by all
targets, so ``--backend all`` pays for NumPy once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..backend import Backend, nudging_inputs, use_backend
from ._compare import Banded
from ._policy import SAMPLES, Tolerances, tolerances


@dataclass
class References:
    """NumPy results by case key, dtype and nudge (None: plain), computed on first use."""

    cache: dict[tuple, Any] = field(default_factory=dict)

    def get(
        self, key: tuple, dtype: str, compute: Callable[[str], Any], nudge: int | None = None
    ) -> Any:
        full = (*key, dtype, nudge)
        if full not in self.cache:
            with use_backend("numpy"), contextlib.ExitStack() as stack:
                if nudge is not None:
                    stack.enter_context(nudging_inputs(nudge))
                self.cache[full] = compute(dtype)
        return self.cache[full]

    def banded(self, key: tuple, dtype: str, compute: Callable[[str], Any]) -> Banded:
        """The float64 truth, the plain run in ``dtype`` and ``SAMPLES`` nudged runs."""
        return Banded(
            self.get(key, "float64", compute),
            self.get(key, dtype, compute),
            [self.get(key, dtype, compute, nudge=i) for i in range(1, SAMPLES + 1)],
        )


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

    def both(self, key: tuple, compute: Callable[[str], Any]) -> tuple[Any, Banded]:
        """``compute(dtype)`` on this target in its dtype, and NumPy's truth and band."""
        with self.active():
            mine = compute(self.dtype)
        if self.name == "numpy" and not self.quick:
            # the full battery's runs take minutes: NumPy's own run is the plain reference
            # (the quick battery computes it twice, which also proves it is reproducible)
            self.references.cache.setdefault((*key, self.dtype, None), mine)
        return mine, self.references.banded(key, self.dtype, compute)

    def bits(self, key: tuple, compute: Callable[[], Any]) -> tuple[Any, Any]:
        """``compute()`` on this target and NumPy's plain run: for promised bits."""
        with self.active():
            mine = compute()
        return mine, self.references.get(key, self.dtype, lambda dtype: compute())

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
