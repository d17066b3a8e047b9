"""What every experiment shares: settings, results, data, mini-batches, progress bars.

Experiments run on the active backend and bring numbers back to the host once per
report point (an epoch's accuracy, or all per-iteration losses stacked at the end),
never once per step.  Results hold only Python numbers, strings and lists, so that
``to_dict()`` is JSON as it is.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import backend as _backend
from .._atomic import atomic_open
from ..random import RandomStream

__all__ = [
    "Experiment",
    "ExperimentResult",
    "atomic_write_bytes",
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
        from .. import plot

        getattr(plot, f"plot_{self.name}")(result, path)


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
        return _plain(dataclasses.asdict(self), type(self).__name__)

    def summary(self) -> str:
        raise NotImplementedError

    def plot(self, fig: Any = None) -> Any:
        """This result's figure as a matplotlib ``Figure`` (shown inline in a notebook);
        ``fig`` draws into the caller's Figure or SubFigure.  To write a file:
        :meth:`Experiment.plot` or ``result.plot().savefig(path)``."""
        from .. import plot

        return plot.figure(self, fig=fig)


def _plain(value: Any, where: str) -> Any:
    # Refuse rather than convert: a NumPy or device scalar here means a missed to_numpy.
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN/inf
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}: {type(value).__name__} is not plain JSON data")


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


def load_data(
    dataset: str, dtype: str, *, train_size: int | None = None, test_size: int | None = None
) -> tuple[Any, Any, Any, Any]:
    """The dataset's first ``train_size`` training and ``test_size`` test samples.

    Loaded on the host and moved onto the active backend once: ``(x_train, t_train,
    x_test, t_test)`` with images in ``dtype`` and int64 labels.
    """
    host = load_host(dataset, train_size=train_size, test_size=test_size)
    return tuple(to_device(a, dtype) for a in host)  # type: ignore[return-value]


def to_device(host_array: Any, dtype: str) -> Any:
    """A host array onto the active backend: images in ``dtype``, labels as int64."""
    return _backend.asarray(host_array, dtype if host_array.dtype.kind == "f" else None)


def load_host(
    dataset: str, *, train_size: int | None = None, test_size: int | None = None
) -> tuple[Any, Any, Any, Any]:
    """Like :func:`load_data` but the host NumPy arrays (for host-side splitting)."""
    from ..datasets import load_mnist

    (x_train, t_train), (x_test, t_test) = load_mnist(dataset=dataset)
    for size, n, what in (
        (train_size, x_train.shape[0], "train"),
        (test_size, x_test.shape[0], "test"),
    ):
        if size is not None and not 0 < size <= n:
            raise ValueError(f"{what}_size={size} but {dataset!r} has {n} {what} samples")
    return x_train[:train_size], t_train[:train_size], x_test[:test_size], t_test[:test_size]


def batch_indices(
    stream: RandomStream, n: int, batch_size: int, *, drop_last: bool = False
) -> Iterator[Any]:
    """One epoch of mini-batch index arrays, on the active backend's device.

    One permutation per epoch from ``stream`` (so every sample is seen once per epoch,
    and the order is the same on every backend); gather with ``xp.take(x, idx, axis=0)``.
    ``drop_last`` skips the final partial batch, for iteration-counted experiments
    whose losses should all come from full batches.
    """
    b = _backend.get_backend()
    order = stream.permutation(n, xp=b.xp, device=b.device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start : min(start + batch_size, n)]  # strict refuses slicing past the end


def iterate_batches(
    stream: RandomStream, n: int, batch_size: int, iterations: int
) -> Iterator[Any]:
    """``iterations`` full mini-batches, a fresh permutation each epoch."""
    done = 0
    while done < iterations:
        for idx in batch_indices(stream, n, batch_size, drop_last=True):
            yield idx
            done += 1
            if done == iterations:
                return


def stack_to_host(values: list[Any]) -> list[float]:
    """0-d device arrays to Python floats with one device-to-host transfer."""
    if not values:
        return []
    xp = _backend.namespace(values[0])
    return [float(v) for v in _backend.to_numpy(xp.stack(values)).tolist()]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar (imported only when wanted) or a no-op with the same methods."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        f.write(data)


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
