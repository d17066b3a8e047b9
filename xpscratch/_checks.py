"""Hyperparameter checks shared by the optimizers, schedules, networks and search spaces.

Each returns the value as a plain Python number, or raises ValueError naming the
parameter, what it must be, and what it got, before any work is done.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_fraction", "check_nonnegative", "check_positive", "check_positive_int"]


def _real(name: str, value: Any, need: str) -> float:
    number = math.nan
    if not isinstance(value, bool | str | bytes):
        try:
            number = float(value)
        except (TypeError, ValueError):
            pass
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return number


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0 with ``allow_zero``)."""
    need = "a finite number >= 0" if allow_zero else "a finite number > 0"
    number = _real(name, value, need)
    if number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return number


def check_nonnegative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    return check_positive(name, value, allow_zero=True)


def check_fraction(name: str, value: Any) -> float:
    """A number in [0, 1) (momentum, decay rates, Adam's betas, dropout)."""
    number = _real(name, value, "a number in [0, 1)")
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return number


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """An integer >= 1 (or >= 0 with ``allow_zero``); integral floats such as 100.0 pass."""
    need = "an integer >= 0" if allow_zero else "a positive integer"
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {need}, got {value!r}")
    try:
        number = int(value)
        exact = number == value
    except (TypeError, ValueError, OverflowError):
        exact = False
    if not exact or number < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return number
