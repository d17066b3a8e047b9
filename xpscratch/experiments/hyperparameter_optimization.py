"""Random search for the learning rate and weight decay (``ch06/hyperparameter_optimization.py``).

The first 500 training images, 20% of them held out for validation (the test set is
never touched); 100 trials with weight decay 10**U(-8, -4) and learning rate
10**U(-6, -2), each training a 784-100x6-10 ReLU net with the book's Trainer (SGD,
batches of 100, 50 epochs) and recording validation accuracy per epoch.  The book
then narrows the ranges by hand and searches again; here a second round samples, for
each hyperparameter, a window as wide as the span of the best 5 trials (log scale)
centred on the best trial, as one would read it off the best-20 figure (figure 6-24).
Trials within noise of chance are left out of the best 5 (when any trial is above it),
and the window is centred rather than spanning the best: the best trial often sits at
the edge of their span while accuracy still rises with the learning rate, and a span
would search only the losing side (the quick run's round 2 scored 0.20 against round
1's 0.23 that way).

Each round is one :func:`xpscratch.search.search` (random sampler, study name
``hyperparameter_optimization/round<r>``): trial k's hyperparameters come from seeded
Philox on the host, the same on every backend and for any number of ``workers``
(processes running trials at once).  Every trial uses the same initial weights and
batch order (seed), so trials differ only in their hyperparameters.

:func:`sample_hyperparameters` and :func:`narrow_ranges` are the search strategy in the
book's terms (log10 ranges), kept importable for scripts that drive their own loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..search import LogUniform, Objective, sample, search
from ..search.space import narrow_log
from ..search.study import CHANCE
from ._common import (
    ExperimentResult,
    ExperimentSettings,
    meta,
    progress_bar,
    resolve_settings,
    run_context,
)

NAME = "hyperparameter_optimization"
DESCRIPTION = "random search over lr and weight decay, then a narrowed second round (fig. 6-24)"

Ranges = Mapping[str, Sequence[float]]  # name -> (low, high) exponents of 10


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The book's settings (``FULL``); ``QUICK`` is the fast look."""

    experiment: ClassVar[str] = NAME
    train_size: int = 500
    validation_rate: float = 0.2
    # log10 ranges, the book's
    ranges: dict[str, list[float]] = field(
        default_factory=lambda: {"weight_decay": [-8.0, -4.0], "lr": [-6.0, -2.0]}
    )
    trials: int = 100  # per round (the book's optimization_trial)
    rounds: int = 2  # round 2 onwards samples the ranges narrowed by the previous round
    top_k: int = 5  # the trials that define the narrowed ranges
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100, 100, 100)
    batch_size: int = 100
    epochs: int = 50  # the book's epocs=50
    workers: int = 1  # processes running trials at once (the same results for any number)


FULL = Settings()
QUICK = FULL.replace(trials=20, epochs=30)  # lr >= 5e-3 reaches val acc ~0.5 by 30


def _space(ranges: Ranges) -> dict[str, LogUniform]:
    return {k: LogUniform(10.0 ** float(lo), 10.0 ** float(hi)) for k, (lo, hi) in ranges.items()}


def sample_hyperparameters(
    n: int, ranges: Ranges, *, seed: int = 0, purpose: str = "hyperparameters"
) -> list[dict[str, float]]:
    """``n`` draws of 10**U(low, high) for each named range (Python floats, reproducible).

    Draw k is trial k of a random :func:`xpscratch.search.search` with study name ``purpose``.
    """
    space = _space(ranges)
    return [sample(space, seed, k, purpose) for k in range(n)]


def rank_trials(trials: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Trials by final validation accuracy, best first (stable for ties)."""
    return sorted(trials, key=lambda t: t["val_acc"][-1], reverse=True)


def narrow_ranges(
    trials: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    top_k: int = 5,
    *,
    within: Ranges | None = None,
    chance_level: float | None = None,
) -> dict[str, list[float]]:
    """The next round's log10 ranges: centred on the best trial, as wide as the span of
    the ``top_k`` best trials (at least 0.1 decades), slid back inside ``within``.

    Only trials above ``chance_level`` (final validation accuracy) count when any is:
    trials at chance are noise, and their hyperparameters say nothing.  The window is
    centred on the best trial rather than spanning the best ones, because the best trial
    often sits at the edge of their span (accuracy still rising with the learning rate):
    a span would search only its losing side.
    """
    ranked = rank_trials(trials)
    if chance_level is not None:
        ranked = [t for t in ranked if t["val_acc"][-1] > chance_level] or ranked
    best = ranked[: max(int(top_k), 1)]
    out = {}
    for name in names:
        lo, hi = narrow_log([t[name] for t in best], centre=best[0][name])
        if within is not None:
            low, high = (float(v) for v in within[name])
            lo, hi = (lo, hi) if lo >= low else (low, min(hi + low - lo, high))
            lo, hi = (lo, hi) if hi <= high else (max(lo - (hi - high), low), high)
        out[name] = [lo, hi]
    return out


@dataclass
class HyperparameterOptimizationResult(ExperimentResult):
    # per round: {"ranges": {name: [lo, hi]}, "trials": [trial, ...] best first}
    # trial: {"lr", "weight_decay", "val_acc": [...], "train_acc": [...]}
    rounds: list[dict[str, Any]]

    def best(self, round_index: int = -1, k: int = 1) -> list[dict[str, Any]]:
        return self.rounds[round_index]["trials"][:k]

    def top_mean(self, round_index: int = -1) -> float:
        """The mean final validation accuracy of a round's ``top_k`` best trials."""
        top = self.rounds[round_index]["trials"][: self.settings.top_k]
        return sum(t["val_acc"][-1] for t in top) / len(top)

    def summary(self) -> str:
        lines = []
        k = self.settings.top_k
        for i, rnd in enumerate(self.rounds):
            b = rnd["trials"][0]
            lr_lo, lr_hi = rnd["ranges"]["lr"]
            top = rnd["trials"][:k]
            lrs = [t["lr"] for t in top]
            lines.append(
                f"round {i + 1} (lr 10^[{lr_lo:.2f}, {lr_hi:.2f}], {len(rnd['trials'])} trials): "
                f"best val acc {b['val_acc'][-1]:.3f} at lr {b['lr']:.2e}, wd "
                f"{b['weight_decay']:.2e}; best-{k} lr {min(lrs):.1e}..{max(lrs):.1e}, "
                f"mean val acc {self.top_mean(i):.3f}"
            )
        return "\n".join(lines)


def run_hyperparameter_optimization(
    *,
    seed: int = 0,
    quick: bool = False,
    dataset: str = "mnist-small",
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> HyperparameterOptimizationResult:
    """Random search (rounds x trials), each round in the ranges of the last one's best."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        objective = Objective(
            dataset=dataset,
            train_size=s.train_size,
            validation_rate=s.validation_rate,
            hidden_size_list=s.hidden_size_list,
            epochs=s.epochs,
            batch_size=s.batch_size,
            optimizer="sgd",
            seed=seed,
            dtype=dt,
        )
        ranges = {k: [float(v) for v in r] for k, r in s.ranges.items()}
        rounds, best_acc = [], 0.0
        bar = progress_bar(s.rounds * s.trials, NAME, progress)

        def on_trial(trial: dict[str, Any], done: int, total: int) -> None:
            nonlocal best_acc
            best_acc = max(best_acc, trial["value"])
            bar.update()
            bar.set_postfix_str(f"round {len(rounds) + 1} best val acc {best_acc:.3f}")

        for r in range(s.rounds):
            found = search(
                _space(ranges),
                s.trials,
                objective,
                seed=seed,
                workers=s.workers,
                study_name=f"{NAME}/round{r + 1}",
                on_trial=on_trial,
            )
            trials = [
                {**t["params"], "val_acc": t["val_acc"], "train_acc": t["train_acc"]}
                for t in found.trials
            ]
            rounds.append({"ranges": ranges, "trials": rank_trials(trials)})
            ranges = narrow_ranges(
                trials,
                list(ranges),
                s.top_k,
                within=ranges,
                chance_level=CHANCE + found.chance_margin(),  # a guess, within noise
            )
        bar.close()
        return HyperparameterOptimizationResult(
            settings=s, **meta(b, dt, seed, dataset, start), rounds=rounds
        )
