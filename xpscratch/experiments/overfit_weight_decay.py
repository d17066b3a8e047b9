"""Overfitting and weight decay (``ch06/overfit_weight_decay.py``, figures 6-20 and 6-21).

A deep net (784-100x6-10, ReLU, He init) learns only the first 300 training images
with SGD lr 0.01, batches of 100, for 201 epochs; train accuracy (on the 300) and
test accuracy (on the whole test set) after each epoch, once without weight decay
and once with lambda = 0.1 (the book runs its script twice, editing lambda).

The book evaluates after the first update of each epoch; here after each epoch's 3
updates, with one permutation per epoch instead of draws with replacement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..networks import MultiLayerNet
from ..optim import SGD
from ..random import RandomStream
from ..training.compiled import compile_step
from ._common import (
    ExperimentResult,
    ExperimentSettings,
    batch_indices,
    load_data,
    meta,
    progress_bar,
    resolve_settings,
    run_context,
)

NAME = "overfit_weight_decay"
DESCRIPTION = "300 images, 6 hidden layers: train vs test accuracy, lambda 0 vs 0.1 (6-20, 6-21)"


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The book's settings (``FULL``); ``QUICK`` is the fast look."""

    experiment: ClassVar[str] = NAME
    weight_decay_lambdas: tuple[float, ...] = (0.0, 0.1)  # one run each (the book edits it)
    train_size: int = 300  # few images, to provoke overfitting
    test_size: int | None = None  # None: the whole test set
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100, 100, 100)
    lr: float = 0.01
    batch_size: int = 100
    epochs: int = 201  # the book's max_epochs


FULL = Settings()
QUICK = FULL.replace(epochs=100, test_size=2000)  # the gap is clear by epoch 100


@dataclass
class OverfitRun:
    """Accuracy curves of one training run (epoch by epoch)."""

    train_acc: list[float]
    test_acc: list[float]

    @property
    def gap(self) -> float:
        """Final train accuracy minus final test accuracy."""
        return self.train_acc[-1] - self.test_acc[-1]


@dataclass
class OverfitWeightDecayResult(ExperimentResult):
    weight_decay_lambdas: list[float]
    train_acc: list[list[float]]  # per lambda, per epoch
    test_acc: list[list[float]]

    def run(self, i: int) -> OverfitRun:
        return OverfitRun(self.train_acc[i], self.test_acc[i])

    def summary(self) -> str:
        lines = []
        for i, lam in enumerate(self.weight_decay_lambdas):
            r = self.run(i)
            lines.append(
                f"lambda={lam:g}: final train {r.train_acc[-1]:.3f} (max {max(r.train_acc):.3f}), "
                f"test {r.test_acc[-1]:.3f}, gap {r.gap:.3f}"
            )
        return "\n".join(lines)


def train_accuracy_curves(
    network: Any,
    optimizer: Any,
    data: tuple[Any, Any, Any, Any],
    *,
    epochs: int,
    batch_size: int,
    stream: RandomStream,
    bar: Any,
) -> OverfitRun:
    """The book's hand-written loop: updates for an epoch, then train and test accuracy."""
    x_train, t_train, x_test, t_test = data
    xp, n = network.xp, x_train.shape[0]
    train_acc, test_acc = [], []
    step = compile_step(network, optimizer)  # compiled where "auto" chooses it
    for _ in range(epochs):
        for idx in batch_indices(stream, n, batch_size):
            x_batch, t_batch = xp.take(x_train, idx, axis=0), xp.take(t_train, idx, axis=0)
            step(x_batch, t_batch)
        train_acc.append(step.accuracy(x_train, t_train))
        test_acc.append(step.accuracy(x_test, t_test, batch_size=2000))
        bar.update()
        bar.set_postfix_str(f"train={train_acc[-1]:.3f} test={test_acc[-1]:.3f}")
    return OverfitRun(train_acc, test_acc)


def run_overfit_weight_decay(
    *,
    seed: int = 0,
    quick: bool = False,
    dataset: str = "mnist-small",
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> OverfitWeightDecayResult:
    """Train on 300 images with each weight-decay lambda; accuracy curves."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        data = load_data(dataset, dt, train_size=s.train_size, test_size=s.test_size)
        lambdas = list(s.weight_decay_lambdas)
        bar = progress_bar(len(lambdas) * s.epochs, NAME, progress)
        runs = []
        for lam in lambdas:
            network = MultiLayerNet(
                data[0].shape[1],
                s.hidden_size_list,
                10,
                weight_decay_lambda=lam,
                seed=seed,
                dtype=dt,
            )
            runs.append(
                train_accuracy_curves(
                    network,
                    SGD(lr=s.lr),
                    data,
                    epochs=s.epochs,
                    batch_size=s.batch_size,
                    stream=RandomStream(seed, f"{NAME}/batches"),
                    bar=bar,
                )
            )
        bar.close()
        return OverfitWeightDecayResult(
            settings=s,
            **meta(b, dt, seed, dataset, start),
            weight_decay_lambdas=lambdas,
            train_acc=[r.train_acc for r in runs],
            test_acc=[r.test_acc for r in runs],
        )
