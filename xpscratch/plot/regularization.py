"""Figures beyond the book: regularisers compared on the book's overfitting set-up."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import PathArg, finish, single_axes, title

__all__ = ["plot_regularization_compare"]

WIDTH = 0.27
# key, legend, colour, offset from the method's position
BARS = (
    ("train", "train acc", "tab:blue", -WIDTH),
    ("test", "test acc", "tab:orange", 0.0),
    ("gap", "gap (train - test)", "tab:red", WIDTH),
)


def plot_regularization_compare(result: Any, path: PathArg = None, *, ax: Any = None) -> Any:
    """Grouped bars per method: train accuracy, test accuracy and their gap.

    Bars are means over the seeds, error bars span the lowest to the highest seed and
    dots are the single seeds; a dashed line marks the unregularised test accuracy.
    """
    methods, labels = result.methods, result.labels
    n_seeds = len(result.train_acc[methods[0]])
    values = {
        "train": [result.train_acc[m] for m in methods],
        "test": [result.test_acc[m] for m in methods],
        "gap": [result.gap(m) for m in methods],
    }
    fig, ax_ = single_axes(max(8.0, 1.3 * len(methods) + 2.0), 5.5, ax)
    x = np.arange(len(methods))
    for key, label, color, offset in BARS:
        per_seed = values[key]
        means = np.array([np.mean(v) for v in per_seed])
        low = means - np.array([np.min(v) for v in per_seed])
        high = np.array([np.max(v) for v in per_seed]) - means
        ax_.bar(x + offset, means, WIDTH, label=label, color=color, alpha=0.85)
        ax_.errorbar(x + offset, means, yerr=[low, high], fmt="none", ecolor="black", capsize=3)
        for i, v in enumerate(per_seed):
            ax_.plot(np.full(len(v), x[i] + offset), v, ".", color="black", markersize=3)
        if key != "train":  # the numbers the comparison is about, above the error bars
            for xi, m, top in zip(x, means, means + high, strict=True):
                ax_.annotate(  # upright they were wider than a bar and ran into the next
                    f"{m:.3f}",
                    (xi + offset, top),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=7,
                )
    if "none" in methods:
        base = float(np.mean(result.test_acc["none"]))
        ax_.axhline(base, color="tab:orange", linestyle="--", linewidth=1, label="test acc, none")
    ax_.set_xticks(x)
    ax_.set_xticklabels(labels, rotation=20, ha="right")
    ax_.set_ylim(0.0, 1.22)
    ax_.set_ylabel("accuracy")
    ax_.legend(loc="upper center", fontsize=8, ncols=4)
    epochs, n_train = result.settings["epochs"], result.settings["train_size"]
    seeds = f"seeds {result.seed}-{result.seed + n_seeds - 1}" if n_seeds > 1 else None
    title(
        fig,
        result,
        f"regularisers on {n_train} images, {epochs} epochs: mean of {n_seeds} seeds "
        "(error bars: min-max, dots: single seeds)",
        seeds=seeds,
        ax=ax,
    )
    return finish(fig, path)
