"""The book's activation and loss functions (``common/functions.py``), array-API only.

Each function takes its namespace from its input, so the result stays on the input's
backend and device.  Losses return 0-d arrays, not Python floats: turning one into a
number is a device sync, which the caller asks for with ``float(loss)`` when needed.
"""

from __future__ import annotations

from typing import Any

from .backend import device_of, namespace

__all__ = [
    "cross_entropy_error",
    "one_hot",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

# The book adds 1e-7 inside the log so that a zero probability gives a large finite loss.
LOG_EPSILON = 1e-7


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
        t = xp.argmax(t, axis=1)
    t = xp.reshape(t, (-1,))
    batch, classes = y.shape
    if t.shape[0] != batch:
        raise ValueError(f"{t.shape[0]} labels for a batch of {batch} predictions")
    # take() on the flattened rows gathers y[i, t[i]] without fancy indexing
    flat = xp.arange(batch, dtype=t.dtype, device=device_of(y)) * classes + t
    picked = xp.take(xp.reshape(y, (-1,)), flat)
    return -xp.sum(xp.log(picked + LOG_EPSILON)) / batch
