"""Datasets onto the active backend: the host arrays, sliced, then moved to the device once."""

from __future__ import annotations

from typing import Any

from .. import backend as _backend
from .mnist import load_mnist

__all__ = ["load_data", "load_host", "to_device"]


def load_host(
    dataset: str, *, train_size: int | None = None, test_size: int | None = None
) -> tuple[Any, Any, Any, Any]:
    """The dataset's first ``train_size`` training and ``test_size`` test samples (NumPy).

    ``(x_train, t_train, x_test, t_test)`` on the host, for host-side splitting.
    """
    (x_train, t_train), (x_test, t_test) = load_mnist(dataset=dataset)
    for size, n, what in (
        (train_size, x_train.shape[0], "train"),
        (test_size, x_test.shape[0], "test"),
    ):
        if size is not None and not 0 < size <= n:
            raise ValueError(f"{what}_size={size} but {dataset!r} has {n} {what} samples")
    return x_train[:train_size], t_train[:train_size], x_test[:test_size], t_test[:test_size]


def to_device(host_array: Any, dtype: str) -> Any:
    """A host array onto the active backend: images in ``dtype``, labels as int64."""
    return _backend.asarray(host_array, dtype if host_array.dtype.kind == "f" else None)


def load_data(
    dataset: str, dtype: str, *, train_size: int | None = None, test_size: int | None = None
) -> tuple[Any, Any, Any, Any]:
    """Like :func:`load_host`, moved onto the active backend once (images in ``dtype``)."""
    host = load_host(dataset, train_size=train_size, test_size=test_size)
    return tuple(to_device(a, dtype) for a in host)  # type: ignore[return-value]
