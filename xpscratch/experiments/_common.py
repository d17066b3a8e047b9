"""What every experiment shares: settings, results, the book's loss comparison.

Data (:mod:`xpscratch.datasets.placement`), mini-batches (:mod:`xpscratch.training.batches`)
and progress bars (:mod:`xpscratch.training.progress`) live below; they are re-exported here.

Experiments run on the active backend and bring numbers back to the host once per
report point (an epoch's accuracy, or all per-iteration losses stacked at the end),
never once per step.  Results hold only Python numbers, strings and lists, so that
``to_dict()`` is JSON as it is.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .. import backend as _backend
from .. import plot as _plot
from .._plain import plain
from ..datasets.placement import load_data, load_host, to_device
from ..random import RandomStream
from ..training.batches import batch_indices, iterate_batches
from ..training.progress import open_bar

__all__ = [
    "Experiment",
    "ExperimentResult",
    "batch_indices",
    "compare_losses",
    "iterate_batches",
    "load_data",
    "load_host",
    "mean",
    "meta",
    "progress_bar",
    "resolve_settings",
    "run_context",
    "stack_to_host",
    "to_device",
]


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its runner, its figure and what it shows."""

    name: str
    description: str
    book_figures: str
    run: Callable[..., ExperimentResult]
    full: Mapping[str, Any]
    quick: Mapping[str, Any]

    def plot(self, result: ExperimentResult, path: str | os.PathLike) -> None:
        """Draw the book's figure for ``result`` into ``path`` (PNG, PDF, SVG...)."""
        getattr(_plot, f"plot_{self.name}")(result, path)


@dataclass
class ExperimentResult:
    """Fields every result has; subclasses add their measurements."""

    settings: dict[str, Any]
    backend: str
    device: str
    dtype: str
    seed: int
    dataset: str
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (Python floats, ints, strings, lists and dicts only)."""
        return plain(dataclasses.asdict(self), type(self).__name__)

    def summary(self) -> str:
        raise NotImplementedError


def resolve_settings(
    name: str, full: Mapping[str, Any], quick_values: Mapping[str, Any], quick: bool, overrides
) -> dict[str, Any]:
    """The book's settings, shrunk by ``quick_values`` if ``quick``, then ``overrides``."""
    unknown = sorted(set(overrides) - set(full))
    if unknown:
        raise TypeError(f"{name}: unknown setting(s) {unknown}; the settings are {sorted(full)}")
    # a deep copy: a caller editing result.settings must not change the module's FULL
    return copy.deepcopy({**full, **(quick_values if quick else {}), **overrides})


@contextlib.contextmanager
def run_context(dtype: str | None) -> Iterator[tuple[_backend.Backend, str, float]]:
    """The active backend, the float dtype name in force, and a start time.

    ``dtype`` (None: the default float dtype) becomes the default inside the block,
    so networks, data and the Trainer all agree; float64 on a device without it
    fails here, before any work.
    """
    name = dtype or _backend.get_default_dtype()
    b = _backend.get_backend()
    _backend.float_dtype(b.xp, name, b.device)
    with _backend.use_default_dtype(name):
        yield b, name, time.perf_counter()


def meta(b: _backend.Backend, dtype: str, seed: int, dataset: str, start: float) -> dict:
    """The common fields of a result."""
    return {
        "backend": b.name,
        "device": str(b.device),
        "dtype": dtype,
        "seed": int(seed),
        "dataset": dataset,
        "elapsed_s": round(time.perf_counter() - start, 3),
    }


def stack_to_host(values: list[Any]) -> list[float]:
    """0-d device arrays to Python floats with one device-to-host transfer."""
    if not values:
        return []
    xp = _backend.namespace(values[0])
    return [float(v) for v in _backend.to_numpy(xp.stack(values)).tolist()]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """An experiment's bar (:func:`xpscratch.training.progress.open_bar`), or a no-op."""
    return open_bar(total, desc, enabled=enabled, leave=False, dynamic_ncols=True)


def compare_losses(
    networks: Mapping[str, Any],
    optimizers: Mapping[str, Any],
    x: Any,
    t: Any,
    *,
    iterations: int,
    batch_size: int,
    seed: int,
    purpose: str,
    progress: bool = False,
    desc: str = "",
) -> dict[str, list[float]]:
    """Train each network with its optimizer on the same mini-batches; per-step losses.

    The book's loop: for every batch, each network takes one update and then records
    its loss on that batch.  Losses stay on the device until the end (one transfer per
    network), except every 100 steps when a progress bar shows them.
    """
    xp = _backend.namespace(x)
    losses: dict[str, list[Any]] = {k: [] for k in networks}
    bar = progress_bar(iterations, desc, progress)
    try:
        for i, idx in enumerate(
            iterate_batches(RandomStream(seed, purpose), x.shape[0], batch_size, iterations)
        ):
            x_batch, t_batch = xp.take(x, idx, axis=0), xp.take(t, idx, axis=0)
            for key, network in networks.items():
                grads = network.gradient(x_batch, t_batch)
                optimizers[key].update(network.params, grads)
                losses[key].append(network.loss(x_batch, t_batch))
            bar.update()
            if progress and (i + 1) % 100 == 0:
                bar.set_postfix_str(" ".join(f"{k}={float(v[-1]):.3f}" for k, v in losses.items()))
    finally:
        bar.close()
    return {k: stack_to_host(v) for k, v in losses.items()}
