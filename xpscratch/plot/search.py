"""Figures of a hyperparameter search (:class:`xpscratch.search.SearchResult`).

* :func:`plot_search_best20`: the book's figure 6-24, validation (solid) and training
  (dashed) accuracy per epoch of the 20 best trials, with their hyperparameters;
* :func:`plot_search_scatter`: final validation accuracy against each searched
  hyperparameter (log axes for log-uniform ones), pruned trials marked, and the first two
  numeric hyperparameters against each other coloured by accuracy.
"""

from __future__ import annotations

import math
from typing import Any

from ._base import PathArg, accuracy_colours, figure, finish, title, trial_curves

__all__ = ["plot_search_best20", "plot_search_scatter"]

STYLE = {
    "complete": {"marker": "o", "label": "complete"},
    "pruned": {"marker": "x", "label": "pruned"},
    "diverged": {"marker": "v", "label": "diverged"},
}


def _short(params: dict[str, Any]) -> str:
    names = {"weight_decay": "wd"}
    return "\n".join(
        f"{names.get(k, k)} {v:.1e}" if isinstance(v, float) else f"{names.get(k, k)} {v}"
        for k, v in params.items()
    )


def plot_search_best20(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Figure 6-24: the best 20 trials (validation solid, train dashed)."""
    best = result.best(20)
    cols = 5
    rows = max(math.ceil(len(best) / cols), 1)
    lines = max(len(result.space), 1)
    fig = figure(13, (1.9 + 0.25 * lines) * rows + 0.6, fig=fig)
    epochs = int(result.objective["epochs"])
    for i, trial in enumerate(best):
        ax = fig.add_subplot(rows, cols, i + 1)
        state = "" if trial["state"] == "complete" else f" ({trial['state']})"
        trial_curves(ax, trial, f"Best-{i + 1}{state}\n{_short(trial['params'])}", i % cols == 0)
        ax.set_xlim(1, max(epochs, 2))  # a pruned trial's curve is shorter: same x scale
    title(
        fig,
        result,
        f"{result.sampler} search: best {len(best)} of {len(result.trials)} "
        "(validation solid, train dashed)",
    )
    return finish(fig, path)


def plot_search_scatter(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Final validation accuracy against each hyperparameter, and the first two together."""
    names = list(result.space)
    numeric = [n for n in names if "choice" not in result.space[n]]
    panels = len(names) + (len(numeric) >= 2)
    fig = figure(4.2 * panels, 3.8, fig=fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, panels, i + 1)
        kind = next(iter(result.space[name]))
        values = result.space[name][kind] if kind == "choice" else None
        for state, style in STYLE.items():
            trials = [t for t in result.trials if t["state"] == state]
            if not trials:
                continue
            x = [t["params"][name] for t in trials]
            if values is not None:  # categories at 0, 1, 2, ...
                x = [values.index(v) for v in x]
            ax.scatter(x, [t["value"] for t in trials], alpha=0.7, **style)
        if kind == "log":
            ax.set_xscale("log")
        if values is not None:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(name)
        ax.set_ylabel("final validation accuracy")
        ax.set_ylim(0.0, 1.0)
        ax.legend(fontsize=8)
    if len(numeric) >= 2:
        a, b = numeric[:2]
        ax = fig.add_subplot(1, panels, panels)
        sc = ax.scatter(
            [t["params"][a] for t in result.trials],
            [t["params"][b] for t in result.trials],
            c=[t["value"] for t in result.trials],
            **accuracy_colours(t["value"] for t in result.trials),
            cmap="viridis",
            edgecolors="k",
            linewidths=0.3,
        )
        for axis, name in ((ax.set_xscale, a), (ax.set_yscale, b)):
            if "log" in result.space[name]:
                axis("log")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        fig.colorbar(sc, ax=ax, label="final validation accuracy")
    title(fig, result, f"{result.sampler} search: {len(result.trials)} trials")
    return finish(fig, path)
