"""Numerical gradients by central differences (the book's ``common/gradient.py``).

Slow by design (two evaluations of ``f`` per element): a reference that checks
backpropagation, never a way to train.  Run it in float64.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from .backend import device_of, namespace, writable

__all__ = ["numerical_gradient"]


def numerical_gradient(f: Callable[[Any], Any], x: Any, h: float = 1e-4) -> Any:
    """d f / d x by (f(x + h e_i) - f(x - h e_i)) / 2h for every element i of ``x``.

    Where ``x`` is writable it is perturbed in place, one element at a time, and
    restored exactly, so ``f`` may read it through other references (a network's
    parameters).  An immutable ``x`` (JAX) cannot be: ``f`` then gets a perturbed copy
    and must compute with its argument.
    """
    xp = namespace(x)
    if not writable(x):
        return _numerical_gradient_immutable(f, x, h)
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


def _numerical_gradient_immutable(f: Callable[[Any], Any], x: Any, h: float) -> Any:
    """The same differences, element by element, on copies of ``x`` (no ``__setitem__``)."""
    xp = namespace(x)
    flat_index = xp.reshape(xp.arange(x.size, device=device_of(x)), x.shape)
    plus, minus = x + h, x - h  # elementwise, the same rounding as original[idx] +- h
    diffs = []
    for i in range(x.size):
        at = flat_index == i
        fxh1 = f(xp.where(at, plus, x))
        fxh2 = f(xp.where(at, minus, x))
        diffs.append((fxh1 - fxh2) / (2.0 * h))
    return xp.reshape(xp.astype(xp.stack(diffs), x.dtype), x.shape)
