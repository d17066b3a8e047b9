"""Figures of the optimization experiments beyond the book: lr schedules, the optimizer zoo."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..surfaces import SURFACES
from ._base import MARKERS, PathArg, figure, finish, smooth_curve, title

__all__ = ["plot_lr_schedule_compare", "plot_optimizer_zoo"]

METHOD_COLORS = {
    "SGD": "tab:blue",
    "Momentum": "tab:orange",
    "Nesterov": "tab:green",
    "AdaGrad": "tab:red",
    "RMSprop": "tab:purple",
    "Adam": "tab:brown",
    "Newton": "black",
}
SCHEDULE_STYLES = {
    "constant": ("black", "-"),
    "step": ("tab:blue", "-"),
    "linear": ("tab:orange", "-"),
    "linear+warmup": ("tab:orange", "--"),
    "cosine": ("tab:green", "-"),
    "cosine+warmup": ("tab:green", "--"),
}


def plot_lr_schedule_compare(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Smoothed training loss per optimizer (one panel each, log scale), the schedules
    lr(t)/lr(0) themselves, and the final test accuracy of every run (a zoomed axis)."""
    optimizers = list(result.train_loss)
    schedules = list(result.lr_factor)
    fig = figure(5.2 * max(len(optimizers), 2), 8.5, fig=fig)
    grid = fig.add_gridspec(2, max(len(optimizers), 2))
    final = result.final_loss()
    for i, opt in enumerate(optimizers):
        ax = fig.add_subplot(grid[0, i])
        for kind, losses in result.train_loss[opt].items():
            color, style = SCHEDULE_STYLES.get(kind, (None, "-"))
            ax.plot(
                np.arange(1, len(losses) + 1),
                np.maximum(smooth_curve(losses), 1e-6),
                color=color,
                linestyle=style,
                label=f"{kind} ({final[opt][kind]:.2g})",
            )
        ax.set_yscale("log")
        ax.set_xlabel("iterations")
        ax.set_ylabel("training loss (smoothed)")
        lr = result.settings["learning_rates"][opt]
        ax.set_title(f"{opt}, base lr {lr:g}")
        ax.legend(fontsize=8, title="schedule (final loss)", title_fontsize=8)

    ax = fig.add_subplot(grid[1, 0])
    for kind, factors in result.lr_factor.items():
        color, style = SCHEDULE_STYLES.get(kind, (None, "-"))
        ax.plot(np.arange(len(factors)), factors, color=color, linestyle=style, label=kind)
    ax.set_xlabel("iterations")
    ax.set_ylabel("lr(t) / base lr")
    ax.set_title("the schedules")
    ax.legend(fontsize=8)

    ax = fig.add_subplot(grid[1, 1:])
    width = 0.8 / len(optimizers)
    x = np.arange(len(schedules))
    accs = [[result.test_acc[opt][k] for k in schedules] for opt in optimizers]
    for i, opt in enumerate(optimizers):
        bars = ax.bar(x + (i - (len(optimizers) - 1) / 2) * width, accs[i], width, label=opt)
        ax.bar_label(bars, fmt="%.4f", fontsize=7, rotation=90, padding=2)
    flat = [a for row in accs for a in row]
    low, high = max(min(flat) - 0.02, 0.0), min(max(flat) + 0.015, 1.0)
    ax.set_ylim(low, high)
    ax.set_xticks(x, [k.replace("+", "\n+") for k in schedules], fontsize=8)  # no overlap
    ax.set_ylabel(f"test accuracy (axis from {low:.3f})" if low > 0 else "test accuracy")
    ax.set_title("final test accuracy" + (": zoomed, the axis does not start at 0" if low else ""))
    # beside the bars: inside, it covered the last group
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    iterations = result.settings["iterations"]
    title(fig, result, f"learning-rate schedules, {iterations} iterations")
    return finish(fig, path)


# the view of each surface: (x range, y range, contour levels)
_VIEWS = {
    "bowl": ((-8.0, 8.0), (-3.0, 3.0), [0.25, 0.5, 1.0, 2.0, 4.0, 7.0, 12.0]),
    "saddle": ((-0.5, 1.2), (-1.5, 1.5), list(np.linspace(-1.5, 1.5, 13))),
    "rosenbrock": ((-2.0, 2.0), (-1.0, 3.0), list(np.logspace(-1, 3.5, 12))),
    "himmelblau": ((-5.0, 5.0), (-5.0, 5.0), list(np.logspace(0, 2.8, 12))),
}
_FLOOR = 1e-12  # distances below this (Newton's exact hits) are drawn at it


def plot_optimizer_zoo(result: Any, path: PathArg = None, *, fig: Any = None) -> Any:
    """Per surface: every method's path over the contours (top) and its distance to the
    nearest minimum, or from the saddle point, against the step (bottom, log scale).

    The view of a surface with minima is widened to hold every path (up to 3 times its
    usual view; a path going further is cut at the frame, and the panel says which)."""
    names = list(result.paths)
    fig = figure(4.6 * len(names), 9.0, fig=fig)
    handles = {}
    for col, name in enumerate(names):
        surface = SURFACES[name]
        (x0, x1), (y0, y1), levels = _VIEWS.get(name, ((-5.0, 5.0), (-5.0, 5.0), 12))
        cut: list[str] = []
        if surface.target != "escape":  # escaping the saddle's frame is the point there
            (x0, x1), (y0, y1), cut = _view(result.paths[name], (x0, x1), (y0, y1))
        X, Y = np.meshgrid(np.linspace(x0, x1, 400), np.linspace(y0, y1, 400))
        ax = fig.add_subplot(2, len(names), col + 1)
        ax.contour(X, Y, surface.f(X, Y), levels=levels, colors="0.7", linewidths=0.7)
        for mx, my in surface.minima:
            ax.plot(mx, my, "x" if surface.target == "escape" else "+", color="black", ms=9)
        if surface.target == "escape":
            r = result.settings["escape_radius"]
            for v in (r, -r):
                ax.axhline(v, color="0.4", linestyle=":", linewidth=0.8)
        for method, points in result.paths[name].items():
            p = np.asarray(points, dtype=float)
            (line,) = ax.plot(
                p[:, 0],
                p[:, 1],
                "-",
                marker=MARKERS.get(method, "*"),
                markevery=max(len(p) // 15, 1),
                ms=4,
                lw=1.0,
                color=METHOD_COLORS.get(method),
            )
            handles[method] = line
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        steps = result.settings["steps"][name]
        note = f"; {', '.join(cut)} leave{'s' if len(cut) == 1 else ''} the frame" if cut else ""
        ax.set_title(f"{name}: {surface.formula}\n{steps} steps{note}", fontsize=10)
        ax.set_xlabel("x")
        ax.set_ylabel("y")

        ax = fig.add_subplot(2, len(names), len(names) + col + 1)
        for method, dist in result.distance[name].items():
            d = np.asarray([np.inf if v is None else v for v in dist], dtype=float)
            ax.plot(
                np.arange(len(d)),
                np.maximum(d, _FLOOR),
                color=METHOD_COLORS.get(method),
                lw=1.2,
            )
        ax.set_yscale("log")
        if surface.target == "escape":
            ax.set_ylim(1e-3, 1e3)
            ax.axhline(result.settings["escape_radius"], color="0.4", linestyle=":", lw=0.8)
            ax.set_ylabel("distance from the saddle point")
        else:
            ax.set_ylim(_FLOOR / 2, None)
            ax.set_ylabel("distance to the nearest minimum")
        ax.set_xlabel("step")
        reached = result.steps_to_target[name]
        best = sorted((k, m) for m, k in reached.items() if k is not None)[:3]
        ax.set_title(
            ("escaped" if surface.target == "escape" else "reached")
            + " first: "
            + (", ".join(f"{m} {k}" for k, m in best) or "none"),
            fontsize=9,
        )
    fig.legend(
        list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles)
    )
    title(fig, result, "optimizers and Newton's method on four surfaces", dataset=False)
    return finish(fig, path)


def _view(
    paths: dict[str, Any], xs: tuple[float, float], ys: tuple[float, float]
) -> tuple[tuple[float, float], tuple[float, float], list[str]]:
    """The surface's view widened to hold every path (5% margin), at most 3x each way,
    and the methods whose paths still go outside it."""
    limits = []
    for lo, hi, k in (*xs, 0), (*ys, 1):
        span = hi - lo
        vals = [v for p in paths.values() for v in np.asarray(p, dtype=float)[:, k]]
        vals = [v for v in vals if np.isfinite(v)]
        vmin, vmax = min(vals, default=lo), max(vals, default=hi)
        # a path on the edge looked as if it left the frame: a margin beyond it too
        lo2 = lo if vmin > lo + 0.02 * span else max(vmin - 0.05 * span, lo - span)
        hi2 = hi if vmax < hi - 0.02 * span else min(vmax + 0.05 * span, hi + span)
        limits.append((lo2, hi2))
    (x0, x1), (y0, y1) = limits
    inside = {m: np.asarray(p, dtype=float) for m, p in paths.items()}
    cut = [
        m
        for m, p in inside.items()
        if not np.all((p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1))
    ]
    return (x0, x1), (y0, y1), cut
