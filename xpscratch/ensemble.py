"""Ensembles: average the softmax probabilities of independently trained networks.

The ensemble predicts the class with the highest mean probability over its members;
averaging probabilities (not votes) lets a confident member outweigh unsure ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .backend import device_of, index_dtype, namespace
from .functions import argmax_rows, softmax

__all__ = ["ensemble_accuracy", "ensemble_probabilities"]


def ensemble_probabilities(networks: Sequence[Any], x: Any) -> Any:
    """Mean of the members' softmax outputs for ``x`` (test mode), shape (N, classes)."""
    if not networks:
        raise ValueError("an ensemble needs at least one network")
    total = None
    for net in networks:
        p = softmax(net.predict(x, train_flg=False))
        if total is not None and tuple(p.shape) != tuple(total.shape):
            raise ValueError(
                f"ensemble members disagree on the output shape: {tuple(total.shape)} vs "
                f"{tuple(p.shape)}"
            )
        total = p if total is None else total + p
    return total / len(networks)


def ensemble_accuracy(
    networks: Sequence[Any], x: Any, t: Any, batch_size: int | None = None
) -> float:
    """Fraction of ``x`` the ensemble classifies right (a Python float: syncs once).

    ``t`` is labels or one-hot rows; ``batch_size`` evaluates in chunks to bound memory.
    """
    xp = namespace(x)
    n = x.shape[0]
    if t.ndim != 1:
        t = argmax_rows(t)
    step = n if batch_size is None else int(batch_size)
    count = index_dtype(xp, device_of(x))
    correct = 0
    for i in range(0, n, step):
        j = min(i + step, n)
        y = argmax_rows(ensemble_probabilities(networks, x[i:j, ...]))
        correct = correct + xp.sum(xp.astype(y == t[i:j], count), dtype=count)
    return float(correct) / n
