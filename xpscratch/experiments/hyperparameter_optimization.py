"""Random search for the learning rate and weight decay (``ch06/hyperparameter_optimization.py``).

The first 500 training images, 20% of them held out for validation (the test set is
never touched); 100 trials with weight decay 10**U(-8, -4) and learning rate
10**U(-6, -2), each training a 784-100x6-10 ReLU net with the book's Trainer (SGD,
batches of 100, 50 epochs) and recording validation accuracy per epoch.  The book
then narrows the ranges by hand and searches again; here a second round samples the
ranges spanned by the best 5 trials (log scale), as one would read them off the
best-20 figure (figure 6-24).

Sampling is on the host from :func:`xpscratch.random.uniform` (seeded Philox), so the
trials are the same on every backend.  Every trial uses the same initial weights and
batch order (seed), so trials differ only in their hyperparameters.

:func:`sample_hyperparameters` and :func:`narrow_ranges` are the search strategy,
kept separate from the training so that another search can replace them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import backend as _backend
from ..networks import MultiLayerNet
from ..random import uniform
from ._common import (
    ExperimentResult,
    load_host,
    meta,
    progress_bar,
    resolve_settings,
    run_context,
    to_device,
)

NAME = "hyperparameter_optimization"
DESCRIPTION = "random search over lr and weight decay, then a narrowed second round (fig. 6-24)"

Ranges = Mapping[str, Sequence[float]]  # name -> (low, high) exponents of 10

FULL: dict[str, Any] = {
    "train_size": 500,
    "validation_rate": 0.2,
    "ranges": {"weight_decay": [-8.0, -4.0], "lr": [-6.0, -2.0]},  # log10, the book's
    "trials": 100,  # per round (the book's optimization_trial)
    "rounds": 2,  # round 2 onwards samples the ranges narrowed by the previous round
    "top_k": 5,  # the trials that define the narrowed ranges
    "hidden_size_list": [100, 100, 100, 100, 100, 100],
    "batch_size": 100,
    "epochs": 50,  # the book's epocs=50
}
QUICK: dict[str, Any] = {"trials": 20, "epochs": 30}  # lr >= 5e-3 reaches val acc ~0.5 by 30


def sample_hyperparameters(
    n: int, ranges: Ranges, *, seed: int = 0, purpose: str = "hyperparameters"
) -> list[dict[str, float]]:
    """``n`` draws of 10**U(low, high) for each named range (Python floats, reproducible)."""
    names = list(ranges)
    u = uniform(seed, purpose, 0, (n, len(names)), "float64", xp=_backend.host_namespace())
    rows = _backend.to_numpy(u).tolist()
    out = []
    for row in rows:
        draw = {}
        for name, r in zip(names, row, strict=True):
            lo, hi = (float(v) for v in ranges[name])
            draw[name] = 10.0 ** (lo + (hi - lo) * r)
        out.append(draw)
    return out


def rank_trials(trials: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Trials by final validation accuracy, best first (stable for ties)."""
    return sorted(trials, key=lambda t: t["val_acc"][-1], reverse=True)


def narrow_ranges(
    trials: Sequence[Mapping[str, Any]], names: Sequence[str], top_k: int = 5
) -> dict[str, list[float]]:
    """The log10 range each hyperparameter spans among the ``top_k`` best trials.

    A range narrower than 0.1 decades is widened to 0.1 around its centre, so that the
    next round still explores.
    """
    best = rank_trials(trials)[: max(int(top_k), 1)]
    ranges = {}
    for name in names:
        logs = [math.log10(t[name]) for t in best]
        lo, hi = min(logs), max(logs)
        if hi - lo < 0.1:
            mid = (lo + hi) / 2
            lo, hi = mid - 0.05, mid + 0.05
        ranges[name] = [lo, hi]
    return ranges


@dataclass
class HyperparameterOptimizationResult(ExperimentResult):
    # per round: {"ranges": {name: [lo, hi]}, "trials": [trial, ...] best first}
    # trial: {"lr", "weight_decay", "val_acc": [...], "train_acc": [...]}
    rounds: list[dict[str, Any]]

    def best(self, round_index: int = -1, k: int = 1) -> list[dict[str, Any]]:
        return self.rounds[round_index]["trials"][:k]

    def summary(self) -> str:
        lines = []
        k = self.settings["top_k"]
        for i, rnd in enumerate(self.rounds):
            b = rnd["trials"][0]
            lr_lo, lr_hi = rnd["ranges"]["lr"]
            top = rnd["trials"][:k]
            lrs = [t["lr"] for t in top]
            lines.append(
                f"round {i + 1} (lr 10^[{lr_lo:.2f}, {lr_hi:.2f}], {len(rnd['trials'])} trials): "
                f"best val acc {b['val_acc'][-1]:.3f} at lr {b['lr']:.2e}, wd "
                f"{b['weight_decay']:.2e}; best-{k} lr {min(lrs):.1e}..{max(lrs):.1e}"
            )
        return "\n".join(lines)


def train_trial(
    data: tuple[Any, Any, Any, Any],
    lr: float,
    weight_decay: float,
    *,
    settings: Mapping[str, Any],
    seed: int,
    dtype: str,
) -> dict[str, Any]:
    """The book's ``__train``: one network, validation (and train) accuracy per epoch."""
    from ..trainer import Trainer

    x_train, t_train, x_val, t_val = data
    network = MultiLayerNet(
        x_train.shape[1],
        settings["hidden_size_list"],
        10,
        weight_decay_lambda=weight_decay,
        seed=seed,
        dtype=dtype,
    )
    # as in the book, the validation set takes the test set's place in the Trainer
    trainer = Trainer(
        network,
        x_train,
        t_train,
        x_val,
        t_val,
        epochs=int(settings["epochs"]),
        mini_batch_size=int(settings["batch_size"]),
        optimizer="sgd",
        optimizer_param={"lr": lr},
        verbose=False,
        seed=seed,
    )
    trainer.train()
    return {
        "lr": lr,
        "weight_decay": weight_decay,
        "val_acc": [float(a) for a in trainer.test_acc_list],
        "train_acc": [float(a) for a in trainer.train_acc_list],
    }


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
    from ..datasets import train_validation_split

    s = resolve_settings(NAME, FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        x, t, _, _ = load_host(dataset, train_size=int(s["train_size"]), test_size=1)
        (x_tr, t_tr), (x_val, t_val) = train_validation_split(
            x, t, validation_rate=float(s["validation_rate"]), seed=seed
        )
        data = tuple(to_device(a, dt) for a in (x_tr, t_tr, x_val, t_val))
        ranges = {k: [float(v) for v in r] for k, r in s["ranges"].items()}
        rounds, best_acc = [], 0.0
        bar = progress_bar(int(s["rounds"]) * int(s["trials"]), NAME, progress)
        for r in range(int(s["rounds"])):
            draws = sample_hyperparameters(
                int(s["trials"]), ranges, seed=seed, purpose=f"{NAME}/round{r + 1}"
            )
            trials = []
            for d in draws:
                trial = train_trial(
                    data, d["lr"], d["weight_decay"], settings=s, seed=seed, dtype=dt
                )
                trials.append(trial)
                best_acc = max(best_acc, trial["val_acc"][-1])
                bar.update()
                bar.set_postfix_str(f"round {r + 1} best val acc {best_acc:.3f}")
            rounds.append({"ranges": ranges, "trials": rank_trials(trials)})
            ranges = narrow_ranges(trials, list(ranges), int(s["top_k"]))
        bar.close()
        return HyperparameterOptimizationResult(
            settings=s, **meta(b, dt, seed, dataset, start), rounds=rounds
        )
