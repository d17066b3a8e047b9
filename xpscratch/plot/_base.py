"""What every figure shares: an Agg figure, an atomic save, a title, the book's smoothing.

Figures are built with matplotlib's object API on an Agg canvas, never through pyplot:
nothing is shown, no global backend is switched (a notebook keeps its own), and
matplotlib is imported only when a figure is drawn.  Results are host data, so NumPy is
used freely here.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from .._atomic import atomic_write_bytes

__all__ = [
    "MARKERS",
    "PathArg",
    "figure",
    "finish",
    "label",
    "save",
    "single_axes",
    "smooth_curve",
    "title",
    "trial_curves",
]

PathArg = str | os.PathLike | None  # where to write a figure; None: only return it

MARKERS = {
    "SGD": "o",
    "Momentum": "x",
    "AdaGrad": "s",
    "Adam": "D",
    "Nesterov": "^",
    "RMSprop": "v",
    "std=0.01": "o",
    "Xavier": "s",
    "He": "D",
}


def smooth_curve(x: Any) -> np.ndarray:
    """The book's ``common/util.py`` smoothing: an 11-point Kaiser window (beta 2).

    The ends are mirrored so the output has the input's length.
    """
    x = np.asarray(x, dtype=np.float64)
    window_len = 11
    if x.size < window_len:
        return x.copy()
    s = np.r_[x[window_len - 1 : 0 : -1], x, x[-1:-window_len:-1]]
    w = np.kaiser(window_len, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[5 : len(y) - 5]


def figure(width: float, height: float, constrained: bool = True, fig: Any = None) -> Any:
    """A new Agg figure of ``width`` x ``height`` inches, or the caller's ``fig`` as it is
    (a ``Figure`` or a ``SubFigure``, to compose several results in one figure)."""
    if fig is not None:
        return fig
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def single_axes(width: float, height: float, ax: Any = None) -> tuple[Any, Any]:
    """``(figure, axes)``: a new one-axes figure, or the caller's ``ax`` and its figure."""
    if ax is not None:
        return ax.get_figure(), ax
    fig = figure(width, height)
    return fig, fig.add_subplot()


def save(fig: Any, path: str | os.PathLike) -> None:
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def finish(fig: Any, path: str | os.PathLike | None) -> Any:
    """Write ``fig`` to ``path`` (when one is given) and return it."""
    if path is not None:
        save(fig.figure, path)  # a SubFigure's .figure is the whole figure (a Figure's: itself)
    return fig


def label(result: Any, *, dataset: bool = True, seeds: str | None = None) -> str:
    """What decides a figure's numbers: ``mnist-small, numpy, float32, seed 0``.

    ``dataset=False`` for experiments that use none; ``seeds`` replaces "seed N" where
    several seeds were run.
    """
    # a search result keeps its dataset with its objective
    name = getattr(result, "dataset", None) or (getattr(result, "objective", None) or {}).get(
        "dataset"
    )
    parts = [name] if dataset and name else []
    seed = getattr(result, "seed", None)  # None: nothing random (the 2-D experiments)
    parts += [result.backend, result.dtype]
    parts += [seeds] if seeds else [] if seed is None else [f"seed {seed}"]
    return ", ".join(parts)


def title(
    fig: Any, result: Any, text: str, *, dataset: bool = True, seeds: str | None = None, ax=None
) -> None:
    """The figure's title: what it shows, then :func:`label` in brackets.

    With ``ax`` (a single panel drawn into the caller's axes) the title goes on the axes.
    """
    full = f"{text}  [{label(result, dataset=dataset, seeds=seeds)}]"
    if ax is not None:
        ax.set_title(full, fontsize=9)
    else:
        fig.suptitle(full, fontsize=10)


def trial_curves(ax: Any, trial: dict[str, Any], heading: str, show_yticks: bool) -> None:
    """One panel of figure 6-24: a trial's validation (solid) and train (dashed) accuracy."""
    x = np.arange(1, len(trial["val_acc"]) + 1)
    ax.plot(x, trial["val_acc"])
    ax.plot(x, trial["train_acc"], "--")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(heading, fontsize=8)
    if not show_yticks:
        ax.set_yticks([])
    ax.set_xticks([])


def accuracy_colours(accuracies: Any) -> dict[str, float]:
    """``vmin``/``vmax`` for colouring trials by accuracy: the trials' own range.

    A fixed 0..1 scale painted a short or small search (accuracies 0.07-0.23) in one
    dark colour; the range of the values spreads them over the whole colour map.
    """
    values = [float(a) for a in accuracies]
    lo, hi = min(values, default=0.0), max(values, default=1.0)
    if hi - lo < 0.01:  # one value (or all the same): a colour scale around it
        lo, hi = lo - 0.005, hi + 0.005
    return {"vmin": lo, "vmax": hi}
