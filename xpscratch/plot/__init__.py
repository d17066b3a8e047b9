"""Figures drawn from experiment results.

``plot_<name>(result, path=None)`` draws the figure of :mod:`xpscratch.experiments.<name>`
and returns the matplotlib ``Figure``; with ``path`` it also writes it atomically there
(the format follows the suffix: .png, .pdf, .svg).  ``fig=`` (a Figure or SubFigure) or,
for one-panel figures, ``ax=`` draws into the caller's figure instead, to compose several.
:func:`figure` (also ``result.plot()``) picks the function from the result.

Figures use matplotlib's object API on an Agg canvas, never pyplot: nothing is shown, no
global backend is switched, and matplotlib is imported only when a figure is drawn.  In a
notebook, a cell that ends with the Figure shows it (after ``%matplotlib inline``).
One module per group of experiments: :mod:`.book` (the chapter's eight figures),
:mod:`.optimization`, :mod:`.regularization`, :mod:`.search`.
"""

from __future__ import annotations

from typing import Any

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
    "figure",
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

# result class -> its figure; by name, so that plotting imports no experiment
_BY_RESULT = {
    "BatchNormTestResult": plot_batch_norm_test,
    "HyperparameterOptimizationResult": plot_hyperparameter_optimization,
    "LrScheduleCompareResult": plot_lr_schedule_compare,
    "OptimizerCompareMnistResult": plot_optimizer_compare_mnist,
    "OptimizerCompareNaiveResult": plot_optimizer_compare_naive,
    "OptimizerZooResult": plot_optimizer_zoo,
    "OverfitDropoutResult": plot_overfit_dropout,
    "OverfitWeightDecayResult": plot_overfit_weight_decay,
    "RegularizationCompareResult": plot_regularization_compare,
    "SearchResult": plot_search_best20,
    "WeightInitActivationHistogramResult": plot_weight_init_activation_histogram,
    "WeightInitCompareResult": plot_weight_init_compare,
}
_ONE_PANEL = (plot_optimizer_compare_mnist, plot_regularization_compare, plot_weight_init_compare)


def figure(result: Any, fig: Any = None) -> Any:
    """The figure of any experiment's result (a search result: its best 20), returned.

    ``fig`` (a Figure or SubFigure) draws into the caller's figure instead of a new one.
    """
    for cls in type(result).__mro__:
        if cls.__name__ in _BY_RESULT:
            draw = _BY_RESULT[cls.__name__]
            break
    else:
        raise TypeError(
            f"no figure for a {type(result).__name__}; the results with one are "
            + ", ".join(sorted(_BY_RESULT))
        )
    if fig is None:
        return draw(result)
    if draw in _ONE_PANEL:
        return draw(result, ax=fig.add_subplot())
    return draw(result, fig=fig)
