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
import dataclasses
import inspect
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .. import backend as _backend
from .. import plot as _plot
from .._plain import plain
from .._threads import limit_threads
from ..datasets.placement import load_data, load_host, to_device
from ..random import RandomStream
from ..training.batches import batch_indices, iterate_batches
from ..training.compiled import compile_step
from ..training.progress import open_bar
from ._settings import ExperimentSettings

__all__ = [
    "META_FIELDS",
    "RUN_OPTIONS",
    "SCHEMA",
    "Experiment",
    "ExperimentResult",
    "ExperimentSettings",
    "batch_indices",
    "compare_losses",
    "iterate_batches",
    "load_data",
    "load_host",
    "mean",
    "meta",
    "progress_bar",
    "resolve_settings",
    "result_record",
    "run_context",
    "stack_to_host",
    "to_device",
]


# the run options an experiment may use besides quick and dtype; those that use no data,
# no randomness or show no progress take fewer (their runner's signature says which)
RUN_OPTIONS = ("seed", "dataset", "progress")


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its runner, its figure and what it shows."""

    name: str
    description: str
    book_figures: str
    runner: Callable[..., ExperimentResult]
    full: ExperimentSettings  # the book's settings
    quick: ExperimentSettings  # the same, shrunk for a fast look

    @property
    def options(self) -> tuple[str, ...]:
        """The run options of :data:`RUN_OPTIONS` that this experiment uses."""
        params = inspect.signature(self.runner).parameters
        return tuple(o for o in RUN_OPTIONS if o in params)

    def run(
        self,
        *,
        seed: int = 0,
        quick: bool = False,
        dataset: str = "mnist-small",
        dtype: str | None = None,
        progress: bool = False,
        **overrides: Any,
    ) -> ExperimentResult:
        """Run it with the same options for every experiment (a loop over EXPERIMENTS).

        ``seed``, ``dataset`` and ``progress`` go to the runner only if it uses them:
        the 2-D experiments use no data and no randomness, and record neither.
        """
        given = {"seed": seed, "dataset": dataset, "progress": progress}
        options = {k: given[k] for k in self.options}
        return self.runner(quick=quick, dtype=dtype, **options, **overrides)

    def plot(self, result: ExperimentResult, path: str | os.PathLike) -> None:
        """Draw the book's figure for ``result`` into ``path`` (PNG, PDF, SVG...)."""
        getattr(_plot, f"plot_{self.name}")(result, path)


UNUSED_WHEN_NONE = ("seed", "dataset")
# the fields every result has (the rest are its measurements)
META_FIELDS = ("settings", "backend", "device", "dtype", "seed", "dataset", "elapsed_s")


@dataclass
class ExperimentResult:
    """Fields every result has; subclasses add their measurements."""

    settings: ExperimentSettings
    backend: str
    device: str
    dtype: str
    seed: int | None  # None: the experiment draws no random numbers
    dataset: str | None  # None: it uses no dataset
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (Python floats, ints, strings, lists and dicts only).

        A seed or dataset the experiment does not use (None) is left out.
        """
        data = plain(dataclasses.asdict(self), type(self).__name__)
        return {k: v for k, v in data.items() if not (k in UNUSED_WHEN_NONE and v is None)}

    def summary(self) -> str:
        raise NotImplementedError

    def plot(self, fig: Any = None) -> Any:
        """This result's figure as a matplotlib ``Figure`` (shown inline in a notebook);
        ``fig`` draws into the caller's Figure or SubFigure.  To write a file:
        :meth:`Experiment.plot` or ``result.plot().savefig(path)``."""
        from .. import plot

        return plot.figure(self, fig=fig)


SCHEMA = 1  # the version of a result record's layout (tools/compare_results.py reads 0 and 1)


def result_record(
    exp: Experiment, result: ExperimentResult, *, quick: bool, elapsed_s: float, version: str
) -> dict[str, Any]:
    """The JSON record of a run (``<out>/<name>.json``): the metadata once, at the top,
    and under ``"result"`` the measurements only; ``elapsed_s`` is the caller's time."""
    data = result.to_dict()
    return {
        "schema": SCHEMA,
        "experiment": exp.name,
        "book_figures": exp.book_figures,
        "xpscratch_version": version,
        **{k: data.pop(k) for k in ("backend", "device", "dtype", "seed", "dataset") if k in data},
        "quick": bool(quick),
        "settings": data.pop("settings"),
        "elapsed_s": round(elapsed_s, 3),
        "summary": result.summary(),
        "result": {k: v for k, v in data.items() if k not in META_FIELDS},
    }


def resolve_settings(
    full: ExperimentSettings, quick_settings: ExperimentSettings, quick: bool, overrides
) -> Any:
    """The book's settings (or the quick ones, if ``quick``) with ``overrides``, checked."""
    return (quick_settings if quick else full).replace(**overrides)


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
    with _backend.use_default_dtype(name), limit_threads():
        yield b, name, time.perf_counter()


def meta(
    b: _backend.Backend, dtype: str, seed: int | None, dataset: str | None, start: float
) -> dict:
    """The common fields of a result (``seed``/``dataset`` None: not used)."""
    return {
        "backend": b.name,
        "device": str(b.device),
        "dtype": dtype,
        "seed": None if seed is None else int(seed),
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
    its loss on that batch (one compiled step where ``compile_step`` compiles).  Losses
    stay on the device until the end (one transfer per network), except every 100 steps
    when a progress bar shows them.
    """
    xp = _backend.namespace(x)
    losses: dict[str, list[Any]] = {k: [] for k in networks}
    # compiled where "auto" chooses it (JAX: one program per architecture, shared)
    steps = {
        k: compile_step(net, optimizers[k], loss_after_update=True) for k, net in networks.items()
    }
    bar = progress_bar(iterations, desc, progress)
    try:
        for i, idx in enumerate(
            iterate_batches(RandomStream(seed, purpose), x.shape[0], batch_size, iterations)
        ):
            x_batch, t_batch = xp.take(x, idx, axis=0), xp.take(t, idx, axis=0)
            for key, step in steps.items():
                losses[key].append(step(x_batch, t_batch))
            bar.update()
            if progress and (i + 1) % 100 == 0:
                bar.set_postfix_str(" ".join(f"{k}={float(v[-1]):.3f}" for k, v in losses.items()))
    finally:
        bar.close()
    return {k: stack_to_host(v) for k, v in losses.items()}
