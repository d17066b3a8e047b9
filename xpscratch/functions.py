"""The book's activation and loss functions (``common/functions.py``), array-API only.

Each function takes its namespace from its input, so the result stays on the input's
backend and device.  Losses return 0-d arrays, not Python floats: turning one into a
number is a device sync, which the caller asks for with ``float(loss)`` when needed.
"""

from __future__ import annotations

from typing import Any

from .backend import device_of, index_dtype, namespace

__all__ = [
    "argmax_rows",
    "cross_entropy_error",
    "one_hot",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

# The book adds 1e-7 inside the log so that a zero probability gives a large finite loss.
LOG_EPSILON = 1e-7

# (array type, device) -> whether xp.argmax works there: array-api-strict 2.6.1's
# argmax makes an int64 result even on its no_x64 device, and fails
_ARGMAX_WORKS: dict[tuple[type, str], bool] = {}


def argmax_rows(x: Any) -> Any:
    """The column of each row's largest value (the first of equal ones), for x of shape (N, K).

    ``xp.argmax(x, axis=1)``, or where that cannot run (a device without int64 whose
    argmax still needs it) the same indices from max, where and min in int32.
    """
    xp, device = namespace(x), device_of(x)
    key = (type(x), str(device))
    works = _ARGMAX_WORKS.get(key)
    if works is None:
        try:
            xp.argmax(xp.zeros((1, 2), dtype=x.dtype, device=device), axis=1)
            works = True
        except ValueError:
            works = False
        _ARGMAX_WORKS[key] = works
    if works:
        return xp.argmax(x, axis=1)
    k = x.shape[1]
    column = xp.reshape(xp.arange(k, dtype=index_dtype(xp, device), device=device), (1, k))
    top = x == xp.max(x, axis=1, keepdims=True)
    return xp.min(xp.where(top, column, k), axis=1)


def sigmoid(x: Any) -> Any:
    """1 / (1 + exp(-x)), computed from exp(-|x|) so that it never overflows."""
    xp = namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(x: Any) -> Any:
    """max(0, x)."""
    xp = namespace(x)
    return x * xp.astype(x > 0, x.dtype)


def tanh(x: Any) -> Any:
    """The hyperbolic tangent."""
    return namespace(x).tanh(x)


def softmax(x: Any) -> Any:
    """Softmax over the last axis; subtracting the row maximum keeps exp from overflowing."""
    xp = namespace(x)
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    e /= xp.sum(e, axis=-1, keepdims=True)  # in place: e is ours
    return e


def one_hot(t: Any, num_classes: int = 10, dtype: Any = None) -> Any:
    """Integer labels of shape (N,) to one-hot rows of shape (N, num_classes)."""
    xp = namespace(t)
    if t.ndim != 1:
        raise ValueError(f"one_hot expects labels of shape (N,), got {tuple(t.shape)}")
    classes = xp.arange(num_classes, dtype=t.dtype, device=device_of(t))
    hot = xp.reshape(t, (-1, 1)) == classes
    return hot if dtype is None else xp.astype(hot, dtype)


def cross_entropy_error(y: Any, t: Any) -> Any:
    """Mean of -log(y[t] + 1e-7) over the batch; ``t`` is integer labels or one-hot rows."""
    xp = namespace(y, t)
    if y.ndim == 1:
        y = xp.reshape(y, (1, -1))
        t = xp.reshape(t, (1, -1)) if t.ndim == 1 and t.shape[0] == y.shape[1] else t
    if t.ndim == 2:
        if tuple(t.shape) != tuple(y.shape):
            raise ValueError(f"one-hot labels {tuple(t.shape)} do not match y {tuple(y.shape)}")
        if t.dtype == xp.bool:  # one_hot()'s default; argmax needs numbers on torch/strict
            t = xp.astype(t, y.dtype)
        t = argmax_rows(t)
    t = xp.reshape(t, (-1,))
    batch, classes = y.shape
    if t.shape[0] != batch:
        raise ValueError(f"{t.shape[0]} labels for a batch of {batch} predictions")
    # take() on the flattened rows gathers y[i, t[i]] without fancy indexing
    flat = xp.arange(batch, dtype=t.dtype, device=device_of(y)) * classes + t
    picked = xp.take(xp.reshape(y, (-1,)), flat)
    return -xp.sum(xp.log(picked + LOG_EPSILON)) / batch
