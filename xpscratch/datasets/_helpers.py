"""Host-side dataset preparation helpers (NumPy), following the book's ``common/util.py``."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["shuffle_dataset", "train_validation_split", "iterate_minibatches"]

Seed = int | Sequence[int] | np.random.Generator | None


def _check_pair(x: np.ndarray, t: np.ndarray) -> None:
    if len(x) != len(t):
        raise ValueError(f"x and t must have the same length, got {len(x)} and {len(t)}")


def shuffle_dataset(x: np.ndarray, t: np.ndarray, seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``x`` and ``t`` permuted together by ``default_rng(seed).permutation(len(x))``.

    Unlike the book's version this is reproducible; the inputs are not modified.
    """
    _check_pair(x, t)
    perm = np.random.default_rng(seed).permutation(len(x))
    return x[perm], t[perm]


def train_validation_split(
    x: np.ndarray,
    t: np.ndarray,
    validation_rate: float = 0.2,
    seed: Seed = 0,
    shuffle: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split off ``int(len(x) * validation_rate)`` samples for validation, as in the book.

    Shuffles first (unless ``shuffle=False``); the first part becomes the validation set.
    Returns ``(x_train, t_train), (x_val, t_val)``.
    """
    if not 0.0 <= validation_rate <= 1.0:
        raise ValueError(f"validation_rate must be in [0, 1], got {validation_rate}")
    _check_pair(x, t)
    if shuffle:
        x, t = shuffle_dataset(x, t, seed)
    validation_num = int(x.shape[0] * validation_rate)
    return (x[validation_num:], t[validation_num:]), (x[:validation_num], t[:validation_num])


def iterate_minibatches(
    n: int,
    batch_size: int,
    seed: Seed = 0,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Yield int64 index arrays covering ``range(n)`` once: one epoch without replacement.

    The book's trainer samples each batch with replacement; this visits every sample exactly
    once per epoch (except the last ``n % batch_size`` when ``drop_last``). For a different
    order each epoch pass e.g. ``seed=(base_seed, epoch)`` or a shared ``np.random.Generator``.

    Deprecated: NumPy's generator gives another order than the library's loops.  Use
    :func:`xpscratch.training.batches.batch_indices` (the same order on every backend).
    """
    warnings.warn(
        "xpscratch.datasets.iterate_minibatches is deprecated and will be removed: use "
        "xpscratch.training.batches.batch_indices(RandomStream(seed, purpose), n, batch_size), "
        "the order every training loop of the library uses, the same on every backend",
        DeprecationWarning,
        stacklevel=2,
    )
    return _minibatches(n, batch_size, seed, shuffle, drop_last)


def _minibatches(
    n: int, batch_size: int, seed: Seed, shuffle: bool, drop_last: bool
) -> Iterator[np.ndarray]:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    order = order.astype(np.int64, copy=False)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
