"""The one mini-batch iterator: an epoch is a permutation drawn on the device, cut in batches.

Every training loop (the Trainer, the experiments' loss comparisons and their own small
loops) takes its batches from here, so every loop visits each sample once per epoch in
the order :class:`~xpscratch.random.RandomStream` gives on every backend.  Gather a
batch with ``xp.take(x, idx, axis=0)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from .. import backend as _backend
from ..random import RandomStream
from .compiled import compiled_permutation

__all__ = ["batch_at", "batch_count", "batch_indices", "epoch_order", "iterate_batches"]


def epoch_order(
    stream: RandomStream, n: int, *, epoch: int | None = None, xp: Any = None, device: Any = None
) -> Any:
    """The order of ``range(n)`` for one epoch: ``stream``'s next permutation, on the device.

    With ``epoch``, the stream's counter is set to it first, so that epoch ``k`` always
    gets draw ``k`` and a run can resume mid-epoch (the Trainer does this).
    """
    if epoch is not None:
        stream.counter = epoch
    if _backend.backend_name(xp or _backend.get_backend().xp) == "jax":
        # the same permutation as one program (op by op, JAX takes ~20x NumPy's time)
        b = _backend.get_backend()
        return compiled_permutation(stream, n, xp or b.xp, b.device if device is None else device)
    return stream.permutation(n, xp=xp, device=device)


def batch_count(
    n: int, batch_size: int, *, drop_last: bool = False, fold_single: bool = False
) -> int:
    """How many batches an epoch of ``n`` samples has (``drop_last``: full ones only).

    ``fold_single``: a last batch of one sample is folded into the one before (so a
    batch of 101 samples, never 100 and 1: batch normalization cannot train on one).
    """
    if drop_last and n >= batch_size:
        return n // batch_size
    if fold_single and n > batch_size and n % batch_size == 1:
        return n // batch_size
    return math.ceil(n / batch_size)


def batch_at(order: Any, i: int, batch_size: int, n: int, *, fold_single: bool = False) -> Any:
    """Batch ``i`` of an epoch: ``order[i * batch_size : (i + 1) * batch_size]``, clipped.

    With ``fold_single``, the last batch also takes a single sample left after it.
    """
    start = i * batch_size
    stop = min(start + batch_size, n)
    if fold_single and batch_size > 1 and stop == n - 1:  # one sample would be left alone
        stop = n
    return order[start:stop]  # strict refuses a stop past the end


def batch_indices(
    stream: RandomStream, n: int, batch_size: int, *, drop_last: bool = False
) -> Iterator[Any]:
    """One epoch of mini-batch index arrays, on the active backend's device.

    One permutation per epoch from ``stream`` (so every sample is seen once per epoch,
    and the order is the same on every backend).  ``drop_last`` skips the final
    partial batch, for iteration-counted experiments whose losses should all come from
    full batches.  A last batch of a single sample is folded into the one before (as
    in the Trainer): batch normalization cannot train on one sample.
    """
    b = _backend.get_backend()
    order = epoch_order(stream, n, xp=b.xp, device=b.device)
    fold = not drop_last
    for i in range(batch_count(n, batch_size, drop_last=drop_last, fold_single=fold)):
        yield batch_at(order, i, batch_size, n, fold_single=fold)


def iterate_batches(
    stream: RandomStream, n: int, batch_size: int, iterations: int
) -> Iterator[Any]:
    """``iterations`` full mini-batches, a fresh permutation each epoch."""
    done = 0
    while done < iterations:
        for idx in batch_indices(stream, n, batch_size, drop_last=True):
            yield idx
            done += 1
            if done == iterations:
                return
