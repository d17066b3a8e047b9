"""The book's activation and loss functions (``common/functions.py``), array-API only.

Each function takes its namespace from its input, so the result stays on the input's
backend and device.  Losses return 0-d arrays, not Python floats: turning one into a
number is a device sync, which the caller asks for with ``float(loss)`` when needed.

Labels.  Integer labels of any integer dtype index in the namespace's index dtype, so
uint8 labels give exactly int64's numbers.  :func:`check_labels` refuses float labels and
labels outside [0, classes), naming the first bad value and its position; it reads the
labels, so it runs where data enters (datasets, the Trainer), once.  The loss checks the
dtype always (free) and the values as follows, so that no step waits for a device:
labels in host memory (NumPy, torch on the CPU, array_api_strict's CPU device) are checked
eagerly, as reading them costs no transfer; on a device (GPU, JAX, strict's fake devices)
an out-of-range label makes the loss NaN instead of picking a neighbour's probability,
so the error surfaces when a number is asked for (the Trainer's non-finite-loss check).
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from .backend import device_of, index_dtype, is_traced, namespace

__all__ = [
    "LabelError",
    "argmax_rows",
    "check_labels",
    "check_one_hot",
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
    # an array, not the Python int k: where() takes scalars only from the 2024.12 standard
    beyond = xp.full_like(column, k)
    return xp.min(xp.where(top, column, beyond), axis=1)


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


class LabelError(ValueError):
    """Labels that are not integer class indices in [0, classes)."""


def _check_label_dtype(xp: Any, t: Any, classes: int) -> None:
    if not xp.isdtype(t.dtype, "integral"):
        first = f", the first is {float(t[(0,) * t.ndim])}" if t.size else ""
        raise LabelError(
            f"labels must be integer class indices in [0, {classes}), got {t.dtype} labels"
            f"{first}; convert them (xp.astype(t, xp.int64)) or pass one-hot rows shaped "
            "like the predictions"
        )


def check_one_hot(t: Any, classes: int) -> None:
    """Refuse one-hot rows that are not a single 1 among zeros, naming the first bad row.

    The loss picks each row's largest entry, so an all-zero row (or a row of two ones)
    trains on class 0 while its loss says otherwise.  Reads the labels (a sync on a
    GPU): call it once where data enters, not per step.
    """
    xp = namespace(t)
    if t.ndim != 2 or t.shape[-1] != classes:
        raise LabelError(
            f"one-hot labels must be shaped (N, {classes}) for {classes} classes, "
            f"got {tuple(t.shape)}"
        )
    count_dtype = index_dtype(xp, device_of(t))
    ones = xp.sum(xp.astype(t == 1, count_dtype), axis=1, dtype=count_dtype)
    others = xp.sum(xp.astype((t != 0) & (t != 1), count_dtype), axis=1, dtype=count_dtype)
    bad = (ones != 1) | (others != 0)
    count = int(xp.sum(xp.astype(bad, count_dtype), dtype=count_dtype))
    if count:
        i = int(argmax_rows(xp.reshape(xp.astype(bad, xp.int8), (1, -1)))[0])  # the first
        what = "a value other than 0 and 1" if int(others[i]) else f"{int(ones[i])} ones"
        raise LabelError(
            f"one-hot row {i} has {what} ({count} bad rows): each row must hold a single 1 "
            f"and zeros; for class indices pass a 1-d array of integers in [0, {classes})"
        )


def _as_index(xp: Any, t: Any) -> Any:
    """Labels in the index dtype: products like ``row * classes`` cannot overflow there."""
    dtype = index_dtype(xp, device_of(t))
    return t if t.dtype == dtype else xp.astype(t, dtype)


def _in_host_memory(t: Any) -> bool:
    """Reading these labels costs no device transfer or sync."""
    if array_api_compat.is_numpy_array(t):
        return True
    if array_api_compat.is_torch_array(t):
        # inside torch.compile a read would break the graph: the compiled step checks
        # the labels before its call instead
        return t.device.type == "cpu" and not is_traced(t)
    return getattr(device_of(t), "_device", None) == "CPU_DEVICE"  # array_api_strict's CPU


def check_labels(t: Any, classes: int) -> None:
    """Refuse labels that are not integers in [0, classes), naming the first bad one.

    Reads the labels (a sync on a GPU): call it once where data enters, not per step.
    """
    xp = namespace(t)
    _check_label_dtype(xp, t, classes)
    t = xp.reshape(t, (-1,))
    bad = t < 0
    if classes <= xp.iinfo(t.dtype).max:  # else no value of this dtype reaches classes
        bad = bad | (t >= classes)
    count_dtype = index_dtype(xp, device_of(t))
    count = int(xp.sum(xp.astype(bad, count_dtype), dtype=count_dtype))
    if count:
        i = int(argmax_rows(xp.reshape(xp.astype(bad, xp.int8), (1, -1)))[0])  # the first True
        raise LabelError(
            f"label out of range: {int(t[i])} at index {i} ({count} labels outside "
            f"0..{classes - 1}); labels must be class indices in [0, {classes})"
        )


def one_hot(t: Any, num_classes: int = 10, dtype: Any = None) -> Any:
    """Integer labels of shape (N,) to one-hot rows of shape (N, num_classes)."""
    xp = namespace(t)
    if t.ndim != 1:
        raise ValueError(f"one_hot expects labels of shape (N,), got {tuple(t.shape)}")
    _check_label_dtype(xp, t, num_classes)
    t = _as_index(xp, t)
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
    else:
        _check_label_dtype(xp, t, y.shape[-1])  # free: the dtype only
        if _in_host_memory(t):  # reading the values costs no transfer: check them now
            check_labels(t, y.shape[-1])
    t = _as_index(xp, xp.reshape(t, (-1,)))
    batch, classes = y.shape
    if t.shape[0] != batch:
        raise ValueError(f"{t.shape[0]} labels for a batch of {batch} predictions")
    valid = None
    if not _in_host_memory(t):  # unchecked: a bad label gives NaN, and reads nothing
        valid = (t >= 0) & (t < classes)
        t = xp.where(valid, t, xp.zeros_like(t))
    # take() on the flattened rows gathers y[i, t[i]] without fancy indexing
    flat = xp.arange(batch, dtype=t.dtype, device=device_of(y)) * classes + t
    picked = xp.take(xp.reshape(y, (-1,)), flat)
    if valid is not None:
        # full_like fills on the device: asarray(nan) copied a host scalar to the device
        # (and synchronised torch on CUDA) in every step
        picked = xp.where(valid, picked, xp.full_like(picked, xp.nan))
    return -xp.sum(xp.log(picked + LOG_EPSILON)) / batch
