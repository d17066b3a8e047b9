"""The chapter's eight experiments as library functions.

Each module has ``run_<name>(*, seed=0, quick=False, dataset="mnist-small", dtype=None,
progress=False, **overrides)`` returning a result dataclass with ``to_dict()`` (JSON data)
and ``summary()`` (the conclusion in numbers); :mod:`xpscratch.plot` draws the book's
figure from it.  ``quick=True`` shrinks iterations, epochs and trials (each module's
``QUICK``); ``overrides`` change single settings (each module's ``FULL`` lists them).
Experiments run on the active backend (:func:`xpscratch.use_backend`).

``EXPERIMENTS`` maps each name to an :class:`Experiment`, in the book's order.
"""

from __future__ import annotations

from . import (
    batch_norm_test,
    hyperparameter_optimization,
    optimizer_compare_mnist,
    optimizer_compare_naive,
    overfit_dropout,
    overfit_weight_decay,
    weight_init_activation_histogram,
    weight_init_compare,
)
from ._common import Experiment, ExperimentResult
from .batch_norm_test import run_batch_norm_test
from .hyperparameter_optimization import run_hyperparameter_optimization
from .optimizer_compare_mnist import run_optimizer_compare_mnist
from .optimizer_compare_naive import run_optimizer_compare_naive
from .overfit_dropout import run_overfit_dropout
from .overfit_weight_decay import run_overfit_weight_decay
from .weight_init_activation_histogram import run_weight_init_activation_histogram
from .weight_init_compare import run_weight_init_compare

_MODULES = (
    (optimizer_compare_naive, "6-8"),
    (optimizer_compare_mnist, "6-9"),
    (weight_init_activation_histogram, "6-10 to 6-14"),
    (weight_init_compare, "6-15"),
    (batch_norm_test, "6-18"),
    (overfit_weight_decay, "6-20, 6-21"),
    (overfit_dropout, "6-23"),
    (hyperparameter_optimization, "6-24"),
)

EXPERIMENTS: dict[str, Experiment] = {
    m.NAME: Experiment(
        name=m.NAME,
        description=m.DESCRIPTION,
        book_figures=figures,
        run=getattr(m, f"run_{m.NAME}"),
        full=m.FULL,
        quick=m.QUICK,
    )
    for m, figures in _MODULES
}

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentResult",
    "run_batch_norm_test",
    "run_hyperparameter_optimization",
    "run_optimizer_compare_mnist",
    "run_optimizer_compare_naive",
    "run_overfit_dropout",
    "run_overfit_weight_decay",
    "run_weight_init_activation_histogram",
    "run_weight_init_compare",
]
