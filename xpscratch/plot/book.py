"""The book's figures for chapter 6 (figures 6-8 to 6-24), drawn from experiment results.

Each ``plot_<name>(result, path=None, *, fig=None)`` returns the matplotlib Figure; with
``path`` it also writes it there, and ``fig`` (a Figure or SubFigure) draws into the
caller's figure.  The one-panel loss curves take ``ax=`` instead.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._base import (
    MARKERS,
    PathArg,
    accuracy_colours,
    figure,
    finish,
    single_axes,
    smooth_curve,
    title,
    trial_curves,
)

__all__ = [
    "plot_batch_norm_test",
    "plot_hyperparameter_optimization",
    "plot_optimizer_compare_mnist",
    "plot_optimizer_compare_naive",
    "plot_overfit_dropout",
    "plot_overfit_weight_decay",
    "plot_weight_init_activation_histogram",
    "plot_weight_init_compare",
]


def plot_optimizer_compare_naive(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Figure 6-8: each optimizer's path over the contours of x**2/20 + y**2."""
    names = list(result.trajectories)
    cols = 3 if len(names) > 4 else 2
    rows = math.ceil(len(names) / cols)
    fig = figure(4.2 * cols, 3.6 * rows, fig=fig)
    x, y = np.arange(-10, 10, 0.01), np.arange(-5, 5, 0.01)
    X, Y = np.meshgrid(x, y)
    Z = X**2 / 20.0 + Y**2
    Z[Z > 7] = 0  # the book's mask: only the inner contours
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        path_xy = np.asarray(result.trajectories[name])
        ax.contour(X, Y, Z)
        ax.plot(path_xy[:, 0], path_xy[:, 1], "o-", color="red", markersize=3)
        ax.plot(0, 0, "+", color="black")
        ax.set_xlim(-10, 10)
        ax.set_ylim(-10, 10)
        lr = result.settings["learning_rates"][name]
        ax.set_title(
            f"{name} (lr={lr:g})\nends {result.final_distance[name]:.3g} from the minimum",
            fontsize=10,
        )
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    start = ", ".join(f"{v:g}" for v in result.trajectories[names[0]][0])
    title(
        fig,
        result,
        f"{result.settings['steps']} steps on f(x, y) = x²/20 + y² from ({start}); "
        "minimum at (0, 0) (+)",
        dataset=False,
    )
    return finish(fig, path)


def _loss_curves(result: Any, ax: Any, heading: str, log: bool, ylim: float) -> Any:
    fig, ax_ = single_axes(8, 5.5, ax)
    for key, losses in result.train_loss.items():
        x = np.arange(len(losses))
        ax_.plot(
            x,
            smooth_curve(losses),
            marker=MARKERS.get(key, "."),
            markevery=max(len(losses) // 20, 1),
            label=key,
        )
    ax_.set_xlabel("iterations")
    if log:  # one optimizer's spikes would otherwise set the scale for all of them
        ax_.set_yscale("log")
        ax_.set_ylabel("training loss (smoothed, log scale)")
    else:
        ax_.set_ylim(0, ylim)
        ax_.set_ylabel("training loss (smoothed)")
    ax_.legend()
    title(fig, result, heading, ax=ax)
    return fig


def plot_optimizer_compare_mnist(result: Any, path: PathArg = None, *, ax: Any = None) -> Any:
    """Figure 6-9: smoothed training loss of each optimizer (log scale)."""
    return finish(_loss_curves(result, ax, "optimizers: training loss", True, 1.0), path)


def plot_weight_init_compare(result: Any, path: PathArg = None, *, ax: Any = None) -> Any:
    """Figure 6-15: smoothed training loss for std=0.01, Xavier and He initial weights."""
    heading = "weight initialisation: training loss"
    return finish(_loss_curves(result, ax, heading, False, 2.5), path)


def plot_weight_init_activation_histogram(
    result: Any, path: PathArg = None, *, fig: Any = None
) -> Any:
    """Figures 6-10 to 6-14: one row per (activation, weight scale), one column per layer.

    ReLU rows are cut at 7000 counts like the book's figure 6-14: the bin at 0 holds
    about half of all 100,000 values and would flatten the rest.  Each panel gives the
    standard deviation (sd) of its layer's activations.
    """
    rows = [(a, init) for a in result.histograms for init in result.histograms[a]]
    layers = len(next(iter(result.histograms.values()))[rows[0][1]])
    own = fig is None
    # 60 axes: a fixed layout, the constrained solver would take seconds
    fig = figure(2.2 * layers, 1.6 * len(rows), constrained=False, fig=fig)
    if own:
        fig.subplots_adjust(left=0.1, right=0.99, top=0.955, bottom=0.045, wspace=0.08, hspace=0.38)
    for r, (activation, init) in enumerate(rows):
        edges = np.asarray(result.bin_edges[activation])
        for i, counts in enumerate(result.histograms[activation][init]):
            ax = fig.add_subplot(len(rows), layers, r * layers + i + 1)
            ax.stairs(counts, edges, fill=True)
            # headroom above the tallest bar (edge bars too) for the sd label
            top = 7000 if activation == "relu" else 1.35 * max(max(counts), 1)
            ax.set_ylim(0, top)
            if r == 0:
                ax.set_title(f"{i + 1}-layer")
            if i == 0:
                ax.set_ylabel(f"{activation}\n{init}", fontsize=9)
            else:
                ax.set_yticks([])
            if r < len(rows) - 1 and rows[r + 1][0] == activation:
                ax.set_xticklabels([])
            stats = result.stats[activation][init][i]
            ax.text(
                0.5,
                0.95,
                f"sd {stats['std']:.2g}",
                transform=ax.transAxes,
                ha="center",
                va="top",
                fontsize=7,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            )
            ax.tick_params(labelsize=7)
    fig.supxlabel("activation value (30 bins over the activation's range)", fontsize=9)
    fig.supylabel("count per bin (ReLU rows cut at 7000)", fontsize=9, x=0.005)
    n = result.settings["samples"] * result.settings["node_num"]
    title(fig, result, f"activation histograms of {n:,} values per layer (sd: their std)")
    return finish(fig, path)


def plot_batch_norm_test(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Figure 6-18: train accuracy per epoch with (solid) and without (dashed) batch norm.

    A run whose weights became inf/NaN ends in a cross, its panel says so.
    """
    n = len(result.weight_scales)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = figure(3 * cols, 2.4 * rows + 0.5, fig=fig)
    handles: list[Any] = []
    for i, w in enumerate(result.weight_scales):
        ax = fig.add_subplot(rows, cols, i + 1)
        x = np.arange(1, len(result.bn_train_acc[i]) + 1)
        runs = (
            (result.bn_train_acc[i], result.bn_diverged[i], "-", "with batch norm"),
            (result.train_acc[i], result.diverged[i], "--", "without (normal)"),
        )
        notes = []
        for acc, diverged, style, name in runs:
            (line,) = ax.plot(x, acc, linestyle=style, label=name)
            if i == 0:
                handles.append(line)
            if diverged:
                ax.plot(x[-1], acc[-1], "x", ms=9, mew=2, color=line.get_color(), clip_on=False)
                notes.append(f"{name.split(' (')[0]}: diverged")
        if notes:
            ax.text(0.5, 0.5, "\n".join(notes), transform=ax.transAxes, ha="center", fontsize=8)
        ax.set_title(f"W: {w:.3g}", fontsize=9)
        ax.set_ylim(0, 1.0)
        if i % cols:
            ax.set_yticks([])
        else:
            ax.set_ylabel("train accuracy")
        if i < n - cols:
            ax.set_xticks([])
        else:
            ax.set_xlabel("epochs")
    from matplotlib.lines import Line2D

    handles.append(Line2D([], [], color="0.3", marker="x", ms=8, mew=2, linestyle="none"))
    labels = ["with batch norm", "without (normal)", "diverged: weights became inf/NaN"]
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=9)
    title(fig, result, "batch normalization vs the initial weight scale W")
    return finish(fig, path)


def _train_test_panels(
    result: Any, fig: Any, order: list[int], labels: list[str], heading: str
) -> Any:
    fig = figure(5.5 * len(order), 4.5, fig=fig)
    for j, i in enumerate(order):
        ax = fig.add_subplot(1, len(order), j + 1)
        train, test = result.train_acc[i], result.test_acc[i]
        x = np.arange(1, len(train) + 1)
        every = max(len(train) // 20, 1)
        ax.plot(x, train, marker="o", markevery=every, label="train")
        ax.plot(x, test, marker="s", markevery=every, label="test")
        ax.set_xlabel("epochs")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.05)  # room for the markers at 1.0
        ax.set_title(f"{labels[i]}: gap {train[-1] - test[-1]:.3f}")
        ax.legend(loc="best")  # a low curve (dropout) would hide behind "lower right"
    title(fig, result, heading)
    return fig


def plot_overfit_weight_decay(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Figures 6-20 and 6-21: train and test accuracy without and with weight decay."""
    lambdas = result.weight_decay_lambdas
    labels = [f"weight decay λ={lam:g}" for lam in lambdas]
    order = sorted(range(len(lambdas)), key=lambda i: lambdas[i])  # the baseline left
    n = result.settings["train_size"]
    heading = f"overfitting {n} images: weight decay"
    return finish(_train_test_panels(result, fig, order, labels, heading), path)


def plot_overfit_dropout(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Figure 6-23: train and test accuracy without and with dropout (the baseline left)."""
    ratio = result.settings["dropout_ratio"]
    labels = [f"dropout {ratio:g}" if d else "no dropout" for d in result.use_dropout]
    order = sorted(range(len(labels)), key=lambda i: bool(result.use_dropout[i]))
    n = result.settings["train_size"]
    heading = f"overfitting {n} images: dropout"
    return finish(_train_test_panels(result, fig, order, labels, heading), path)


def plot_hyperparameter_optimization(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Figure 6-24: the best 20 trials of the first round (validation solid, train dashed),
    and every trial of every round in the (lr, weight decay) plane, coloured by accuracy
    (the colour scale spans the trials' accuracies);
    dotted red boxes are the ranges each later round sampled (around the previous best).
    """
    first = result.rounds[0]["trials"][:20]
    col_num = 5
    row_num = max(math.ceil(len(first) / col_num), 1)
    fig = figure(15, 2.3 * row_num + 1.2, fig=fig)
    grid = fig.add_gridspec(row_num, col_num + 3)
    for i, trial in enumerate(first):
        heading = f"Best-{i + 1}: lr {trial['lr']:.1e}\nwd {trial['weight_decay']:.1e}"
        ax = fig.add_subplot(grid[i // col_num, i % col_num])
        trial_curves(ax, trial, heading, show_yticks=i % col_num == 0)
    ax = fig.add_subplot(grid[:, col_num:])
    markers = "o^sD"
    colours = accuracy_colours(t["val_acc"][-1] for rnd in result.rounds for t in rnd["trials"])
    for r, rnd in enumerate(result.rounds):
        lr = [t["lr"] for t in rnd["trials"]]
        wd = [t["weight_decay"] for t in rnd["trials"]]
        acc = [t["val_acc"][-1] for t in rnd["trials"]]
        sc = ax.scatter(
            lr,
            wd,
            c=acc,
            **colours,  # one scale for every round
            cmap="viridis",
            marker=markers[r % 4],
            edgecolors="k",
            linewidths=0.3,
            label=f"round {r + 1}",
        )
        if r:
            (lo_lr, hi_lr), (lo_wd, hi_wd) = rnd["ranges"]["lr"], rnd["ranges"]["weight_decay"]
            ax.add_patch(
                _rectangle(
                    10**lo_lr,
                    10**lo_wd,
                    10**hi_lr - 10**lo_lr,
                    10**hi_wd - 10**lo_wd,
                    f"round {r + 1}'s ranges (centred on the best of round {r})",
                )
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("weight decay")
    # below the axes: inside, it covered trials
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), fontsize=8, ncols=3)
    fig.colorbar(sc, ax=ax, label="final validation accuracy")
    title(fig, result, "random search: best 20 of round 1 (validation solid, train dashed)")
    return finish(fig, path)


def _rectangle(x: float, y: float, w: float, h: float, label: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, linestyle=":", edgecolor="red", label=label)
