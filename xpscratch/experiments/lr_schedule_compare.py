"""Learning-rate schedules on MNIST: does decaying the rate help, and by how much?

The 5-layer ReLU net of :mod:`.optimizer_compare_mnist` (784-100-100-100-100-10, He
init), trained with SGD (base lr 0.1) and Momentum (base lr 0.01, momentum 0.9: the
same effective step 0.01/(1 - 0.9) = 0.1), each under six schedules of its base rate:

* ``constant``: the base rate throughout;
* ``step``: times 0.1 at 1/3 and 2/3 of the run (:class:`~xpscratch.schedules.StepDecay`);
* ``linear``: straight down to 0 at the last iteration;
* ``linear+warmup``: the same after a linear warm-up over the first 5% of the run;
* ``cosine``: half a cosine down to 0 (Loshchilov & Hutter 2017);
* ``cosine+warmup``: the same after the warm-up (Goyal et al. 2017).

Every network starts from the same initial weights (one seed) and sees the same
mini-batches of 128 (one permutation per epoch, full batches only), 2000 iterations:
about 51 epochs of mnist-small's 5,000 training images.  The loss on each batch just
after each update is recorded, as in the book, and stays on the device until the end
of the run; the final test accuracy is measured once, on the whole test set.

What it shows: the net memorises the 5,000 images, so the gradient noise a decaying
rate is meant to average out dies away by itself, and a decay only slows training.
The constant rate ends with the lowest training loss (0.0013 against 0.005-0.006 for
linear and cosine, 0.012 for step, SGD and Momentum alike) and test accuracy differs
by at most 0.4 points (0.934-0.938).  A schedule should pay off where the noise does
not vanish (data the net cannot memorise) or where the base rate is too high to hold:
with SGD at 0.5 for 500 iterations, the warm-up runs ended lowest (not tested here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..networks import MultiLayerNet
from ..optim import make_optimizer
from ..schedules import CosineDecay, LinearDecay, StepDecay
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

NAME = "lr_schedule_compare"
DESCRIPTION = "constant vs step/linear/cosine lr decay (+ warm-up), SGD and Momentum, MNIST"

SCHEDULES = ("constant", "step", "linear", "linear+warmup", "cosine", "cosine+warmup")


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The settings (``FULL``); ``QUICK`` is the fast look."""

    experiment: ClassVar[str] = NAME
    # base rates (momentum 0.9)
    learning_rates: dict[str, float] = field(default_factory=lambda: {"SGD": 0.1, "Momentum": 0.01})
    schedules: tuple[str, ...] = SCHEDULES
    step_decays: int = 2  # step: multiply by step_gamma this many times, evenly spaced
    step_gamma: float = 0.1
    warmup_fraction: float = 0.05  # warm-up length as a fraction of the iterations
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100)
    batch_size: int = 128
    iterations: int = 2000
    test_size: int | None = None  # None: the whole test set
    final_window: int = 100  # final training loss: mean over the last this many iterations

    def check(self) -> None:
        for kind in self.schedules:
            make_schedule(kind, 1.0, self.iterations, self)  # an unknown name, before any work


def make_schedule(kind: str, lr: float, iterations: int, settings: Any) -> Any:
    """The schedule ``kind`` (one of SCHEDULES) of base rate ``lr`` over ``iterations``.

    ``constant`` is the plain float; the others are :mod:`xpscratch.schedules` objects.
    """
    warmup = round(float(settings["warmup_fraction"]) * iterations)
    if kind == "constant":
        return float(lr)
    if kind == "step":
        step_size = math.ceil(iterations / (int(settings["step_decays"]) + 1))
        return StepDecay(float(lr), step_size=step_size, gamma=float(settings["step_gamma"]))
    if kind in ("linear", "linear+warmup"):
        return LinearDecay(float(lr), iterations, warmup_steps=warmup if "+" in kind else 0)
    if kind in ("cosine", "cosine+warmup"):
        return CosineDecay(float(lr), iterations, warmup_steps=warmup if "+" in kind else 0)
    raise ValueError(f"unknown schedule {kind!r}; choose from {list(SCHEDULES)}")


def lr_curve(schedule: Any, iterations: int) -> list[float]:
    """The learning rate of each update, 0 to iterations - 1."""
    if not callable(schedule):
        return [float(schedule)] * iterations
    return [float(schedule(i)) for i in range(iterations)]


FULL = Settings()
QUICK = FULL.replace(iterations=600, test_size=2000)


@dataclass
class LrScheduleCompareResult(ExperimentResult):
    train_loss: dict[str, dict[str, list[float]]]  # optimizer -> schedule -> loss per iteration
    test_acc: dict[str, dict[str, float]]  # optimizer -> schedule -> final test accuracy
    lr_factor: dict[str, list[float]]  # schedule -> lr(t) / base lr, per iteration

    def final_loss(self, window: int | None = None) -> dict[str, dict[str, float]]:
        """Mean training loss over the last ``window`` iterations (default: the setting)."""
        w = int(window or self.settings.final_window)
        return {
            opt: {k: mean(v[-w:]) for k, v in runs.items()} for opt, runs in self.train_loss.items()
        }

    def summary(self) -> str:
        final = self.final_loss()
        lines = []
        for opt, runs in self.test_acc.items():
            lr = self.settings.learning_rates[opt]
            parts = ", ".join(f"{k} {final[opt][k]:.2g}/{acc:.4f}" for k, acc in runs.items())
            lines.append(f"{opt} (lr {lr:g}) final loss/test acc: {parts}")
        return "\n".join(lines)


def run_lr_schedule_compare(
    *,
    seed: int = 0,
    quick: bool = False,
    dataset: str = "mnist-small",
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> LrScheduleCompareResult:
    """Train one network per (optimizer, schedule) on identical batches and initial weights."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    iterations = s.iterations
    with run_context(dtype) as (b, dt, start):
        x_train, t_train, x_test, t_test = load_data(dataset, dt, test_size=s.test_size)
        networks, optimizers = {}, {}
        for opt, lr in s.learning_rates.items():
            for kind in s.schedules:
                key = f"{opt}/{kind}"
                networks[key] = MultiLayerNet(
                    x_train.shape[1],
                    s.hidden_size_list,
                    10,
                    seed=seed,
                    dtype=dt,
                )
                optimizers[key] = make_optimizer(
                    opt, lr=make_schedule(kind, float(lr), iterations, s)
                )
        losses = compare_losses(
            networks,
            optimizers,
            x_train,
            t_train,
            iterations=iterations,
            batch_size=s.batch_size,
            seed=seed,
            purpose=f"{NAME}/batches",
            progress=progress,
            desc=NAME,
        )
        train_loss: dict[str, dict[str, list[float]]] = {}
        test_acc: dict[str, dict[str, float]] = {}
        for key, network in networks.items():
            opt, kind = key.split("/")
            train_loss.setdefault(opt, {})[kind] = losses[key]
            test_acc.setdefault(opt, {})[kind] = network.accuracy(x_test, t_test, batch_size=2000)
        return LrScheduleCompareResult(
            settings=s,
            **meta(b, dt, seed, dataset, start),
            train_loss=train_loss,
            test_acc=test_acc,
            lr_factor={
                k: lr_curve(make_schedule(k, 1.0, iterations, s), iterations) for k in s.schedules
            },
        )
