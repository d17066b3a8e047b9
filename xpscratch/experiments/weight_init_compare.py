"""Weight initialisation on MNIST (``ch06/weight_init_compare.py``, figure 6-15).

The 5-layer ReLU net (784-100-100-100-100-10) with weights of std 0.01, Xavier
(sqrt(1/n)) and He (sqrt(2/n)), SGD lr 0.01, batches of 128, 2000 iterations; every
network sees the same batches and records the loss just after each update, as in
the book.  Batches: one permutation per epoch, full batches only (see
:mod:`.optimizer_compare_mnist`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..networks import MultiLayerNet
from ..optim import SGD
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

NAME = "weight_init_compare"
DESCRIPTION = "std=0.01 vs Xavier vs He init of a 5-layer ReLU net on MNIST (fig. 6-15)"


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The book's settings (``FULL``); ``QUICK`` is the fast look."""

    experiment: ClassVar[str] = NAME
    # name -> weight_init_std (the book's keys: "sigmoid" is Xavier, "relu" He)
    weight_init: dict[str, Any] = field(
        default_factory=lambda: {"std=0.01": 0.01, "Xavier": "sigmoid", "He": "relu"}
    )
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100)
    activation: str = "relu"
    lr: float = 0.01
    batch_size: int = 128
    iterations: int = 2000  # the book's max_iterations


FULL = Settings()
QUICK = FULL.replace(iterations=300)  # He is already ahead of Xavier by then


@dataclass
class WeightInitCompareResult(ExperimentResult):
    train_loss: dict[str, list[float]]  # init name -> loss per iteration

    def window_mean(self, start: int, stop: int) -> dict[str, float]:
        return {k: mean(v[start:stop]) for k, v in self.train_loss.items()}

    def summary(self) -> str:
        n = self.settings.iterations
        last = self.window_mean(max(n - 100, 0), n)
        parts = ", ".join(f"{k} {v:.3f}" for k, v in last.items())
        return (
            f"mean loss over the last 100 of {n} iterations: {parts} (ln 10 = {math.log(10):.3f})"
        )


def run_weight_init_compare(
    *,
    seed: int = 0,
    quick: bool = False,
    dataset: str = "mnist-small",
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> WeightInitCompareResult:
    """Train one network per initialisation on identical batches; per-iteration losses."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        x_train, t_train, _, _ = load_data(dataset, dt, test_size=1)
        networks, optimizers = {}, {}
        for key, weight_type in s.weight_init.items():
            networks[key] = MultiLayerNet(
                x_train.shape[1],
                s.hidden_size_list,
                10,
                activation=s.activation,
                weight_init_std=weight_type,
                seed=seed,
                dtype=dt,
            )
            # the book shares one SGD between the nets: SGD has no state, so one each is the same
            optimizers[key] = SGD(lr=s.lr)
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
        return WeightInitCompareResult(
            settings=s, **meta(b, dt, seed, dataset, start), train_loss=losses
        )
