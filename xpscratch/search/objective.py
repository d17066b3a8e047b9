"""The objective: train the book's network with one trial's hyperparameters, on the
training part of a split, and return its validation accuracy per epoch.

As in the book (``ch06/hyperparameter_optimization.py``): the first ``train_size``
training images, ``validation_rate`` of them held out (the test set is never touched),
a ReLU ``MultiLayerNet`` trained by the book's Trainer with the validation set in the
test set's place, and every trial starting from the same weights and batch order
(``seed``) so that trials differ only in their hyperparameters.

Pruning (optional): a trial whose validation accuracy is still within ``prune_margin``
of chance (1/10) after ``prune_after`` epochs stops there.  The rule looks at the trial
alone, never at other trials, so a pruned search gives the same result sequentially and
in parallel.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .. import backend as _backend
from ..datasets import train_validation_split
from ..datasets.placement import load_host, to_device
from ..networks import MultiLayerNet
from ..training import NonFiniteLossError, PruneAfter, Trainer
from .space import VALUE_CHECKS

__all__ = ["HYPERPARAMETERS", "Objective", "TrialRecord"]

# what a space may search: Objective fields a trial overrides, plus optimizer settings
HYPERPARAMETERS = ("lr", "weight_decay", "optimizer", "batch_size", "momentum")
NUM_CLASSES = 10

TrialRecord = dict[str, Any]  # value, state, val_acc, train_acc, epochs, seconds


@dataclass(frozen=True)
class Objective:
    """What one trial trains; the searched hyperparameters override the fields here."""

    dataset: str = "mnist-small"
    train_size: int = 500
    validation_rate: float = 0.2
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100, 100, 100)
    epochs: int = 50
    batch_size: int = 100
    optimizer: str = "sgd"
    lr: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0  # the split, the initial weights and the batch order of every trial
    dtype: str | None = None  # None: the default float dtype where the search starts
    prune_after: int | None = None  # epochs; None: no pruning
    prune_margin: float = 0.05  # over chance (0.1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_size_list", tuple(int(h) for h in self.hidden_size_list))
        for name in ("train_size", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Objective.{name} must be a positive int, got {value!r}")
        for k in ("lr", "weight_decay", "optimizer"):  # what every trial would fail on
            VALUE_CHECKS[k](f"Objective.{k}", getattr(self, k))
        if not 0 < self.validation_rate < 1:
            raise ValueError(f"validation_rate must be in (0, 1), got {self.validation_rate}")
        if self.prune_after is not None and not 1 <= self.prune_after <= self.epochs:
            raise ValueError(
                f"prune_after must be an epoch in 1..{self.epochs} (or None), "
                f"got {self.prune_after!r}"
            )

    def check(self, names: Any) -> None:
        """Refuse hyperparameter names the objective cannot use, before any work."""
        unknown = sorted(set(names) - set(HYPERPARAMETERS))
        if unknown:
            raise ValueError(
                f"the objective cannot search {unknown}; it knows {list(HYPERPARAMETERS)}"
            )
        if "momentum" in names and "optimizer" not in names and not _has_momentum(self.optimizer):
            raise ValueError(
                f"momentum is a setting of the momentum and nesterov optimizers, not of "
                f"{self.optimizer!r}: set the objective's optimizer (--optimizer momentum)"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden_size_list"] = list(self.hidden_size_list)
        return d

    def __call__(self, params: Mapping[str, Any]) -> TrialRecord:
        """Train once with ``params``: validation and train accuracy per epoch."""
        self.check(params)
        hp = {**self.to_dict(), **params}
        start = time.perf_counter()
        dtype = self.dtype or _backend.get_default_dtype()
        x_tr, t_tr, x_val, t_val = self._data(dtype)
        network = MultiLayerNet(
            x_tr.shape[1],
            list(self.hidden_size_list),
            NUM_CLASSES,
            weight_decay_lambda=float(hp["weight_decay"]),
            seed=self.seed,
            dtype=dtype,
        )
        opt_params = {"lr": float(hp["lr"])}
        if "momentum" in params and _has_momentum(hp["optimizer"]):
            opt_params["momentum"] = float(params["momentum"])
        prune = [] if self.prune_after is None else [PruneAfter(self.prune_after, self.hopeless)]
        # the validation set takes the test set's place in the Trainer, as in the book
        trainer = Trainer(
            network,
            x_tr,
            t_tr,
            x_val,
            t_val,
            epochs=self.epochs,
            mini_batch_size=int(hp["batch_size"]),
            optimizer=str(hp["optimizer"]),
            optimizer_param=opt_params,
            verbose=False,
            seed=self.seed,
            callbacks=prune,
        )
        state = "complete"
        try:
            trainer.train()
            if prune and prune[0].pruned:
                state = "pruned"
        except NonFiniteLossError:
            state = "diverged"  # too high a learning rate: worse than any trial that learned
        val_acc = [float(a) for a in trainer.test_acc_list]
        return {
            "value": 0.0 if state == "diverged" or not val_acc else val_acc[-1],
            "state": state,
            "val_acc": val_acc,
            "train_acc": [float(a) for a in trainer.train_acc_list],
            "epochs": len(val_acc),
            "seconds": round(time.perf_counter() - start, 4),
        }

    def hopeless(self, val_acc: float) -> bool:
        """Still at chance level (the pruning rule)."""
        return val_acc < 1.0 / NUM_CLASSES + self.prune_margin

    def _data(self, dtype: str) -> tuple[Any, Any, Any, Any]:
        b = _backend.get_backend()
        key = (self.dataset, self.train_size, self.validation_rate, self.seed, dtype)
        key += (b.name, str(b.device))
        if key not in _DATA:
            x, t, _, _ = load_host(self.dataset, train_size=self.train_size, test_size=1)
            (x_tr, t_tr), (x_val, t_val) = train_validation_split(
                x, t, validation_rate=self.validation_rate, seed=self.seed
            )
            _DATA.clear()  # one data set per process is all a search needs
            _DATA[key] = tuple(to_device(a, dtype) for a in (x_tr, t_tr, x_val, t_val))
        return _DATA[key]


_DATA: dict[tuple, tuple[Any, Any, Any, Any]] = {}


def _has_momentum(optimizer: str) -> bool:
    return str(optimizer).lower() in ("momentum", "nesterov")
