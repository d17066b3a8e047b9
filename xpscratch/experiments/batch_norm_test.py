"""Batch normalization against weight scale (``ch06/batch_norm_test.py``, figure 6-18).

For 16 weight scales from 1 down to 1e-4 (``np.logspace(0, -4, num=16)``), two
784-100x5-10 ReLU nets with the same initial weights, one with batch normalization
and one without, learn the first 1000 training images with SGD lr 0.01, batches of
100, on the same batches, for 20 epochs (200 iterations).  Training accuracy on those
1000 images after each epoch.

The book evaluates right after the first update and then every 10 iterations (20
points from iteration 0 to 190); here after each of the 20 epochs (iterations 10 to
200), and batches are one permutation per epoch instead of draws with replacement.

At the largest scales the net without batch normalization overflows to inf/NaN within
a few updates (as the book's does: its accuracy stays at chance); the result records
which runs ended with non-finite weights, and NumPy's overflow warnings are silenced.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

from ..networks import MultiLayerNetExtend
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

NAME = "batch_norm_test"
DESCRIPTION = "with vs without batch normalization for 16 weight scales (fig. 6-18)"


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The book's settings (``FULL``); ``QUICK`` is the fast look."""

    experiment: ClassVar[str] = NAME
    num_scales: int = 16  # weight scales 10**linspace(0, -4, num_scales)
    train_size: int = 1000
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100, 100)
    lr: float = 0.01
    batch_size: int = 100
    epochs: int = 20  # the book's max_epochs
    learn_threshold: float = 0.5  # summary: a net "learns" if its final train acc exceeds this


FULL = Settings()
QUICK = FULL.replace(num_scales=4, epochs=10)  # scales 1, 0.046, 0.0022, 1e-4


def weight_scales(num: int) -> list[float]:
    """``np.logspace(0, -4, num)`` in plain Python."""
    if num < 1:
        raise ValueError(f"num_scales must be >= 1, got {num}")
    return [10.0 ** (-4.0 * k / (num - 1)) if num > 1 else 1.0 for k in range(num)]


@dataclass
class BatchNormTestResult(ExperimentResult):
    weight_scales: list[float]
    bn_train_acc: list[list[float]]  # per scale: train accuracy after each epoch, with BN
    train_acc: list[list[float]]  # the same without BN
    bn_diverged: list[bool]  # per scale: weights ended non-finite (inf/NaN), with BN
    diverged: list[bool]  # the same without BN

    def learned(self, with_bn: bool) -> list[float]:
        """The weight scales at which the final train accuracy exceeds the threshold."""
        lists = self.bn_train_acc if with_bn else self.train_acc
        threshold = self.settings.learn_threshold
        return [w for w, acc in zip(self.weight_scales, lists, strict=True) if acc[-1] > threshold]

    def summary(self) -> str:
        n = len(self.weight_scales)
        th = self.settings.learn_threshold
        fmt = lambda ws: ", ".join(f"{w:.2g}" for w in ws) or "none"  # noqa: E731
        return (
            f"final train accuracy > {th} at {len(self.learned(True))}/{n} weight scales with "
            f"batch norm, {len(self.learned(False))}/{n} without\n"
            f"without BN it learns only at: {fmt(self.learned(False))}; diverged (inf/NaN) "
            f"at {fmt([w for w, d in zip(self.weight_scales, self.diverged, strict=True) if d])}"
        )


def run_batch_norm_test(
    *,
    seed: int = 0,
    quick: bool = False,
    dataset: str = "mnist-small",
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> BatchNormTestResult:
    """Train a BN and a plain net per weight scale on 1000 images; train accuracy per epoch."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    scales = weight_scales(s.num_scales)
    with run_context(dtype) as (b, dt, start):
        x_train, t_train, _, _ = load_data(dataset, dt, train_size=s.train_size, test_size=1)
        xp, n, epochs = b.xp, x_train.shape[0], s.epochs
        bn_acc, acc, bn_div, div = [], [], [], []
        bar = progress_bar(len(scales) * epochs, NAME, progress)
        for w in scales:
            nets = [
                MultiLayerNetExtend(
                    x_train.shape[1],
                    s.hidden_size_list,
                    10,
                    weight_init_std=w,
                    use_batchnorm=use_bn,
                    seed=seed,
                    dtype=dt,
                )
                for use_bn in (True, False)
            ]
            # one step per net, compiled where "auto" chooses it (one program per
            # architecture for all the scales); SGD is stateless, the numbers are the same
            steps = [compile_step(net, SGD(lr=s.lr)) for net in nets]
            stream = RandomStream(seed, f"{NAME}/batches")
            curves: list[list[float]] = [[], []]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "(overflow|invalid value)", RuntimeWarning)
                for _ in range(epochs):
                    for idx in batch_indices(stream, n, s.batch_size):
                        x_batch = xp.take(x_train, idx, axis=0)
                        t_batch = xp.take(t_train, idx, axis=0)
                        for step in steps:
                            step(x_batch, t_batch)
                    for curve, step in zip(curves, steps, strict=True):
                        curve.append(step.accuracy(x_train, t_train))
                    bar.update()
                    bar.set_postfix_str(
                        f"w={w:.2g} bn={curves[0][-1]:.3f} plain={curves[1][-1]:.3f}"
                    )
            bn_acc.append(curves[0])
            acc.append(curves[1])
            bn_div.append(not _finite(nets[0]))
            div.append(not _finite(nets[1]))
        bar.close()
        return BatchNormTestResult(
            settings=s,
            **meta(b, dt, seed, dataset, start),
            weight_scales=scales,
            bn_train_acc=bn_acc,
            train_acc=acc,
            bn_diverged=bn_div,
            diverged=div,
        )


def _finite(network: Any) -> bool:
    """Whether every parameter is finite (one device sync)."""
    xp = network.xp
    return bool(xp.all(xp.stack([xp.all(xp.isfinite(p)) for p in network.params.values()])))
