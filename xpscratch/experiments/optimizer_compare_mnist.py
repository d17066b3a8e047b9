"""Optimizers on MNIST (``ch06/optimizer_compare_mnist.py``, figure 6-9).

A 5-layer ReLU net (784-100-100-100-100-10, He init) per optimizer, all built from
the same seed and fed the same mini-batches of 128, 2000 iterations, each with
xpscratch.optim's default learning rate (the book's: SGD, Momentum, AdaGrad 0.01,
Adam 0.001; Nesterov and RMSprop 0.01).  The book records the loss on the batch just
after each update; so does this.

Differences from the book: batches are drawn without replacement, one permutation
per epoch (the final partial batch of an epoch is skipped so every recorded loss is
over 128 samples), instead of ``np.random.choice`` with replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..networks import MultiLayerNet
from ..optim import make_optimizer
from ._common import (
    ExperimentResult,
    ExperimentSettings,
    compare_losses,
    load_data,
    mean,
    meta,
    resolve_settings,
    run_context,
)

NAME = "optimizer_compare_mnist"
DESCRIPTION = "SGD, Momentum, AdaGrad, Adam (+Nesterov, RMSprop) on MNIST: loss curves (fig. 6-9)"


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The book's settings (``FULL``); ``QUICK`` is the fast look."""

    experiment: ClassVar[str] = NAME
    optimizers: tuple[str, ...] = ("SGD", "Momentum", "AdaGrad", "Adam", "Nesterov", "RMSprop")
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100)  # 784-100x4-10
    batch_size: int = 128
    iterations: int = 2000  # the book's max_iterations
    # missing ones: the optimizer's default (the result records each rate used)
    learning_rates: dict[str, float] = field(default_factory=dict)


FULL = Settings()
QUICK = FULL.replace(iterations=300)  # enough to see SGD fall behind


@dataclass
class OptimizerCompareMnistResult(ExperimentResult):
    train_loss: dict[str, list[float]]  # optimizer -> loss per iteration

    def window_mean(self, start: int, stop: int) -> dict[str, float]:
        """Mean loss of each optimizer over iterations [start, stop)."""
        return {k: mean(v[start:stop]) for k, v in self.train_loss.items()}

    def summary(self) -> str:
        n = self.settings.iterations
        early = self.window_mean(min(100, n // 3), min(300, n))
        last = self.window_mean(max(n - 100, 0), n)

        def fmt(d: dict[str, float]) -> str:
            return ", ".join(f"{k} {v:.3f}" for k, v in sorted(d.items(), key=lambda kv: kv[1]))

        return (
            f"mean loss, iterations {min(100, n // 3)}-{min(300, n)}: {fmt(early)}\n"
            f"mean loss, last 100 of {n}: {fmt(last)}"
        )


def run_optimizer_compare_mnist(
    *,
    seed: int = 0,
    quick: bool = False,
    dataset: str = "mnist-small",
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> OptimizerCompareMnistResult:
    """Train one network per optimizer on identical batches; per-iteration losses."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        x_train, t_train, _, _ = load_data(dataset, dt, test_size=1)
        networks, optimizers = {}, {}
        for name in s.optimizers:
            networks[name] = MultiLayerNet(
                x_train.shape[1], s.hidden_size_list, 10, seed=seed, dtype=dt
            )
            lr = s.learning_rates.get(name)
            optimizers[name] = make_optimizer(name) if lr is None else make_optimizer(name, lr=lr)
        # the rates in force, defaults included, so the record says what was run
        s = s.replace(learning_rates={k: opt.current_lr() for k, opt in optimizers.items()})
        losses = compare_losses(
            networks,
            optimizers,
            x_train,
            t_train,
            iterations=s.iterations,
            batch_size=s.batch_size,
            seed=seed,
            purpose=f"{NAME}/batches",
            progress=progress,
            desc=NAME,
        )
        return OptimizerCompareMnistResult(
            settings=s, **meta(b, dt, seed, dataset, start), train_loss=losses
        )
