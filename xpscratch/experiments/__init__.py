"""The chapter's eight experiments (and three beyond it) as library functions.

Each module has ``Settings`` (a frozen dataclass, one field per setting, with a comment
each), ``FULL = Settings()`` (the book's values) and ``QUICK`` (shrunk iterations, epochs
and trials), and ``run_<name>(*, seed=0, quick=False, dataset="mnist-small", dtype=None,
progress=False, **overrides)`` returning a result dataclass with ``to_dict()`` (JSON data)
and ``summary()`` (the conclusion in numbers); :mod:`xpscratch.plot` draws the book's
figure from it.  ``overrides`` change single settings by field name.  The experiments
that use no data or no randomness take no ``dataset`` or ``seed`` (and record none);
:meth:`Experiment.run` takes every option for all of them.  Experiments run on the active
backend (:func:`xpscratch.use_backend`).

``EXPERIMENTS`` maps each name to an :class:`Experiment`, in the book's order.
"""

from __future__ import annotations

from . import (
    batch_norm_test,
    hyperparameter_optimization,
    lr_schedule_compare,
    optimizer_compare_mnist,
    optimizer_compare_naive,
    optimizer_zoo,
    overfit_dropout,
    overfit_weight_decay,
    regularization_compare,
    weight_init_activation_histogram,
    weight_init_compare,
)
from ._common import Experiment, ExperimentResult, ExperimentSettings
from .batch_norm_test import run_batch_norm_test
from .hyperparameter_optimization import run_hyperparameter_optimization
from .lr_schedule_compare import run_lr_schedule_compare
from .optimizer_compare_mnist import run_optimizer_compare_mnist
from .optimizer_compare_naive import run_optimizer_compare_naive
from .optimizer_zoo import run_optimizer_zoo
from .overfit_dropout import run_overfit_dropout
from .overfit_weight_decay import run_overfit_weight_decay
from .regularization_compare import run_regularization_compare
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
    (lr_schedule_compare, "beyond: lr schedules"),
    (optimizer_zoo, "beyond: optimizers on 2-D surfaces"),
    (regularization_compare, "beyond: regularisers compared"),
)

EXPERIMENTS: dict[str, Experiment] = {
    m.NAME: Experiment(
        name=m.NAME,
        description=m.DESCRIPTION,
        book_figures=figures,
        runner=getattr(m, f"run_{m.NAME}"),
        full=m.FULL,
        quick=m.QUICK,
    )
    for m, figures in _MODULES
}

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentResult",
    "ExperimentSettings",
    "run_batch_norm_test",
    "run_hyperparameter_optimization",
    "run_lr_schedule_compare",
    "run_optimizer_compare_mnist",
    "run_optimizer_compare_naive",
    "run_optimizer_zoo",
    "run_overfit_dropout",
    "run_overfit_weight_decay",
    "run_regularization_compare",
    "run_weight_init_activation_histogram",
    "run_weight_init_compare",
]
