"""Figures drawn from experiment results.

``plot_<name>(result, path)`` draws the figure of :mod:`xpscratch.experiments.<name>`
and writes it atomically to ``path`` (the format follows the suffix: .png, .pdf, .svg).
Figures use matplotlib's object API on an Agg canvas, never pyplot: nothing is shown,
no global backend is switched, and matplotlib is imported only when a figure is drawn.
One module per group of experiments: :mod:`.book` (the chapter's eight figures).
"""

from __future__ import annotations

from ._base import smooth_curve
from .book import (
    plot_batch_norm_test,
    plot_hyperparameter_optimization,
    plot_optimizer_compare_mnist,
    plot_optimizer_compare_naive,
    plot_overfit_dropout,
    plot_overfit_weight_decay,
    plot_weight_init_activation_histogram,
    plot_weight_init_compare,
)
from .optimization import plot_lr_schedule_compare, plot_optimizer_zoo
from .regularization import plot_regularization_compare
from .search import plot_search_best20, plot_search_scatter

__all__ = [
    "plot_batch_norm_test",
    "plot_hyperparameter_optimization",
    "plot_lr_schedule_compare",
    "plot_optimizer_compare_mnist",
    "plot_optimizer_compare_naive",
    "plot_optimizer_zoo",
    "plot_overfit_dropout",
    "plot_overfit_weight_decay",
    "plot_regularization_compare",
    "plot_search_best20",
    "plot_search_scatter",
    "plot_weight_init_activation_histogram",
    "plot_weight_init_compare",
    "smooth_curve",
]
