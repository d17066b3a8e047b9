"""``a += b`` where ``a`` may change in place, ``a + b`` where it may not (JAX).

Each helper returns the result, and the caller stores it where the value's holders
look (a parameter dict, an optimizer slot, a layer attribute), so an update is never
lost on immutable arrays.  Where arrays are writable the in-place form is kept: it
needs no temporary and rounds exactly as the expression (``a += b`` is ``a + b``).
Nothing here depends on an array type having ``__iadd__``.
"""

from __future__ import annotations

from typing import Any


def add(a: Any, b: Any, inplace: bool) -> Any:
    if inplace:
        a += b
        return a
    return a + b


def sub(a: Any, b: Any, inplace: bool) -> Any:
    if inplace:
        a -= b
        return a
    return a - b


def mul(a: Any, b: Any, inplace: bool) -> Any:
    if inplace:
        a *= b
        return a
    return a * b


def div(a: Any, b: Any, inplace: bool) -> Any:
    if inplace:
        a /= b
        return a
    return a / b
