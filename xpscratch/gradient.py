"""Numerical gradients by central differences (the book's ``common/gradient.py``).

Slow by design (two evaluations of ``f`` per element): a reference that checks
backpropagation, never a way to train.  Run it in float64.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from .backend import namespace

__all__ = ["numerical_gradient"]


def numerical_gradient(f: Callable[[Any], Any], x: Any, h: float = 1e-4) -> Any:
    """d f / d x by (f(x + h e_i) - f(x - h e_i)) / 2h for every element i of ``x``.

    ``x`` is perturbed in place, one element at a time, and restored exactly, so ``f``
    may read it through other references (a network's parameters).
    """
    xp = namespace(x)
    original = xp.asarray(x, copy=True)
    grad = xp.zeros_like(x)
    for idx in itertools.product(*(range(n) for n in x.shape)):
        x[idx] = original[idx] + h
        fxh1 = f(x)
        x[idx] = original[idx] - h
        fxh2 = f(x)
        x[idx] = original[idx]
        grad[idx] = (fxh1 - fxh2) / (2.0 * h)
    return grad
