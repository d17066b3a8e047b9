"""The book's figures for chapter 6 (figures 6-8 to 6-24), drawn from experiment results."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ._base import MARKERS, figure, save, smooth_curve, title, trial_curves

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


def plot_optimizer_compare_naive(result: Any, path: str | os.PathLike) -> None:
    """Figure 6-8: each optimizer's path over the contours of x**2/20 + y**2."""
    names = list(result.trajectories)
    cols = 3 if len(names) > 4 else 2
    rows = math.ceil(len(names) / cols)
    fig = figure(4.2 * cols, 3.6 * rows)
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
        ax.set_title(f"{name} (lr={lr:g}): |p| = {result.final_distance[name]:.3g}")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    title(fig, result, f"{result.settings['steps']} steps on f(x, y) = x²/20 + y²")
    save(fig, path)


def _loss_curves(result: Any, path: str | os.PathLike, ylim: float, heading: str) -> None:
    fig = figure(8, 5.5)
    ax = fig.add_subplot()
    for key, losses in result.train_loss.items():
        x = np.arange(len(losses))
        ax.plot(
            x,
            smooth_curve(losses),
            marker=MARKERS.get(key, "."),
            markevery=max(len(losses) // 20, 1),
            label=key,
        )
    ax.set_xlabel("iterations")
    ax.set_ylabel("loss")
    ax.set_ylim(0, ylim)
    ax.legend()
    title(fig, result, heading)
    save(fig, path)


def plot_optimizer_compare_mnist(result: Any, path: str | os.PathLike) -> None:
    """Figure 6-9: smoothed training loss of each optimizer."""
    _loss_curves(result, path, 1.0, "optimizers on MNIST (smoothed training loss)")


def plot_weight_init_compare(result: Any, path: str | os.PathLike) -> None:
    """Figure 6-15: smoothed training loss for std=0.01, Xavier and He initial weights."""
    _loss_curves(result, path, 2.5, "weight initialisation on MNIST (smoothed training loss)")


def plot_weight_init_activation_histogram(result: Any, path: str | os.PathLike) -> None:
    """Figures 6-10 to 6-14: one row per (activation, weight scale), one column per layer.

    ReLU rows are cut at 7000 counts like the book's figure 6-14: the bin at 0 holds
    about half of all 100,000 values and would flatten the rest.
    """
    rows = [(a, init) for a in result.histograms for init in result.histograms[a]]
    layers = len(next(iter(result.histograms.values()))[rows[0][1]])
    # 60 axes: a fixed layout, the constrained solver would take seconds
    fig = figure(2.2 * layers, 1.6 * len(rows), constrained=False)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.96, bottom=0.02, wspace=0.08, hspace=0.35)
    for r, (activation, init) in enumerate(rows):
        edges = np.asarray(result.bin_edges[activation])
        for i, counts in enumerate(result.histograms[activation][init]):
            ax = fig.add_subplot(len(rows), layers, r * layers + i + 1)
            ax.stairs(counts, edges, fill=True)
            if activation == "relu":
                ax.set_ylim(0, 7000)
            if r == 0:
                ax.set_title(f"{i + 1}-layer")
            if i == 0:
                ax.set_ylabel(f"{activation}\n{init}", fontsize=9)
            else:
                ax.set_yticks([])
            stats = result.stats[activation][init][i]
            ax.text(
                0.98,
                0.95,
                f"sd {stats['std']:.2g}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
            )
            ax.tick_params(labelsize=7)
    title(fig, result, "activation histograms (30 bins)")
    save(fig, path)


def plot_batch_norm_test(result: Any, path: str | os.PathLike) -> None:
    """Figure 6-18: train accuracy per epoch with (solid) and without (dashed) batch norm."""
    n = len(result.weight_scales)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = figure(3 * cols, 2.4 * rows)
    for i, w in enumerate(result.weight_scales):
        ax = fig.add_subplot(rows, cols, i + 1)
        x = np.arange(1, len(result.bn_train_acc[i]) + 1)
        ax.plot(x, result.bn_train_acc[i], label="Batch Normalization")
        ax.plot(x, result.train_acc[i], linestyle="--", label="Normal (without BatchNorm)")
        ax.set_title(f"W: {w:.3g}", fontsize=9)
        ax.set_ylim(0, 1.0)
        if i % cols:
            ax.set_yticks([])
        else:
            ax.set_ylabel("accuracy")
        if i < n - cols:
            ax.set_xticks([])
        else:
            ax.set_xlabel("epochs")
        if i == n - 1:
            ax.legend(loc="lower right", fontsize=7)
    title(fig, result, "batch normalization vs weight scale (train accuracy)")
    save(fig, path)


def _train_test_panels(
    result: Any, path: str | os.PathLike, labels: list[str], heading: str
) -> None:
    fig = figure(5.5 * len(labels), 4.5)
    for i, label in enumerate(labels):
        ax = fig.add_subplot(1, len(labels), i + 1)
        train, test = result.train_acc[i], result.test_acc[i]
        x = np.arange(1, len(train) + 1)
        every = max(len(train) // 20, 1)
        ax.plot(x, train, marker="o", markevery=every, label="train")
        ax.plot(x, test, marker="s", markevery=every, label="test")
        ax.set_xlabel("epochs")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.0)
        ax.set_title(f"{label}: gap {train[-1] - test[-1]:.3f}")
        ax.legend(loc="lower right")
    title(fig, result, heading)
    save(fig, path)


def plot_overfit_weight_decay(result: Any, path: str | os.PathLike) -> None:
    """Figures 6-20 and 6-21: train and test accuracy without and with weight decay."""
    labels = [f"weight decay λ={lam:g}" for lam in result.weight_decay_lambdas]
    _train_test_panels(result, path, labels, "overfitting 300 images: weight decay")


def plot_overfit_dropout(result: Any, path: str | os.PathLike) -> None:
    """Figure 6-23: train and test accuracy with and without dropout."""
    ratio = result.settings["dropout_ratio"]
    labels = [f"dropout {ratio:g}" if d else "no dropout" for d in result.use_dropout]
    _train_test_panels(result, path, labels, "overfitting 300 images: dropout")


def plot_hyperparameter_optimization(result: Any, path: str | os.PathLike) -> None:
    """Figure 6-24: the best 20 trials of the first round (validation solid, train dashed),
    and every trial of every round in the (lr, weight decay) plane, coloured by accuracy.
    """
    first = result.rounds[0]["trials"][:20]
    col_num = 5
    row_num = max(math.ceil(len(first) / col_num), 1)
    fig = figure(15, 2.3 * row_num + 0.6)
    grid = fig.add_gridspec(row_num, col_num + 3)
    for i, trial in enumerate(first):
        heading = f"Best-{i + 1}: lr {trial['lr']:.1e}\nwd {trial['weight_decay']:.1e}"
        ax = fig.add_subplot(grid[i // col_num, i % col_num])
        trial_curves(ax, trial, heading, show_yticks=i % col_num == 0)
    ax = fig.add_subplot(grid[:, col_num:])
    markers = "o^sD"
    for r, rnd in enumerate(result.rounds):
        lr = [t["lr"] for t in rnd["trials"]]
        wd = [t["weight_decay"] for t in rnd["trials"]]
        acc = [t["val_acc"][-1] for t in rnd["trials"]]
        sc = ax.scatter(
            lr,
            wd,
            c=acc,
            vmin=0,
            vmax=1,
            cmap="viridis",
            marker=markers[r % 4],
            edgecolors="k",
            linewidths=0.3,
            label=f"round {r + 1}",
        )
        if r:
            (lo_lr, hi_lr), (lo_wd, hi_wd) = rnd["ranges"]["lr"], rnd["ranges"]["weight_decay"]
            ax.add_patch(
                _rectangle(10**lo_lr, 10**lo_wd, 10**hi_lr - 10**lo_lr, 10**hi_wd - 10**lo_wd)
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("weight decay")
    ax.legend(loc="lower left", fontsize=8)
    fig.colorbar(sc, ax=ax, label="final validation accuracy")
    title(fig, result, "random search: best 20 of round 1 (val solid, train dashed)")
    save(fig, path)


def _rectangle(x: float, y: float, w: float, h: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, linestyle=":", edgecolor="red")
