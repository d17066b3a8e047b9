"""Weight initialisation: the book's ``weight_init_std`` as a std or a name.

* a number, e.g. 0.01: that standard deviation for every layer;
* ``'xavier'`` or ``'sigmoid'``: std = sqrt(1 / fan_in) (Glorot & Bengio 2010, as the book
  simplifies it), for sigmoid and tanh;
* ``'he'`` or ``'relu'``: std = sqrt(2 / fan_in) (He et al. 2015), for ReLU.

Weights are ``std * N(0, 1)`` from :func:`xpscratch.random.normal`: the same seed and
purpose give bit-identical weights on every backend.
"""

from __future__ import annotations

import math
from typing import Any

from . import random as _random
from .backend import float_dtype, get_backend

__all__ = ["init_std", "init_weight", "zeros"]

XAVIER_NAMES = ("xavier", "sigmoid")
HE_NAMES = ("he", "relu")


def init_std(weight_init_std: float | str, fan_in: int) -> float:
    """The standard deviation that ``weight_init_std`` means for a layer with ``fan_in`` inputs."""
    if isinstance(weight_init_std, str):
        name = weight_init_std.lower()
        if name in HE_NAMES:
            return math.sqrt(2.0 / fan_in)
        if name in XAVIER_NAMES:
            return math.sqrt(1.0 / fan_in)
        raise ValueError(
            f"unknown weight_init_std {weight_init_std!r}; use a number (e.g. 0.01), "
            f"{' / '.join(map(repr, XAVIER_NAMES))} or {' / '.join(map(repr, HE_NAMES))}"
        )
    std = float(weight_init_std)
    if not std >= 0.0 or math.isinf(std):
        raise ValueError(f"weight_init_std must be a finite number >= 0, got {weight_init_std!r}")
    return std


def init_weight(
    shape: tuple[int, int],
    weight_init_std: float | str,
    *,
    seed: int = 0,
    purpose: str = "init/W",
    dtype: Any = None,
    device: Any = None,
) -> Any:
    """A (fan_in, fan_out) weight matrix on the active backend."""
    std = init_std(weight_init_std, shape[0])
    b = get_backend()
    return _random.normal(
        seed,
        purpose,
        0,
        shape,
        dtype,
        scale=std,
        xp=b.xp,
        device=b.device if device is None else device,
    )


def zeros(shape: int | tuple[int, ...], *, dtype: Any = None, device: Any = None) -> Any:
    """Zeros on the active backend (biases, BN's beta)."""
    b = get_backend()
    device = b.device if device is None else device
    return b.xp.zeros(shape, dtype=float_dtype(b.xp, dtype, device), device=device)
