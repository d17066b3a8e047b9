"""What a run records: the per-step losses (kept on the device until a report point), the
error raised when one is not finite, and the history a run returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .._interrupts import deferred_interrupts
from ..backend import namespace, to_numpy

__all__ = ["LossLog", "NonFiniteLossError", "TrainHistory"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (the run diverged).

    ``iteration`` is the 0-based index into ``train_loss_list`` of the first bad loss,
    ``epoch`` the 1-based epoch it belongs to and ``loss`` its value.
    """

    def __init__(self, message: str, iteration: int = -1, epoch: int = -1, loss: float = math.nan):
        super().__init__(message)
        self.iteration, self.epoch, self.loss = iteration, epoch, loss


@dataclass
class TrainHistory:
    """What a training run produced (Python numbers only; ``to_dict()`` is JSON-ready).

    ``best_epoch`` is the 1-based epoch with the highest validation accuracy (None
    without a validation set); ``final_test_acc`` is the accuracy on the whole test set.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epochs_run: int = 0
    iterations: int = 0
    stopped_early: bool = False
    best_epoch: int | None = None
    final_test_acc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LossLog:
    """Per-step losses: 0-d device arrays until :meth:`sync`, then Python floats.

    ``sync`` brings every pending loss back in one transfer (not one sync per step);
    :meth:`check` also raises :class:`NonFiniteLossError` for the first NaN/inf loss.
    Once raised, the error is raised by every later check too (the bad loss is never
    marked checked), so a diverged run cannot pass a later report point, such as a save.
    """

    def __init__(self, losses: list[float] | None = None) -> None:
        self.pending: list[Any] = []  # device losses not yet converted
        self.values = [float(v) for v in losses or []]
        self.checked = len(self.values)  # values[:checked] were found finite

    def append(self, loss: Any) -> None:
        self.pending.append(loss)

    def __len__(self) -> int:
        return len(self.values) + len(self.pending)

    def sync(self) -> list[float]:
        pending = self.pending
        if pending:
            if all(hasattr(v, "shape") for v in pending):  # arrays (or NumPy scalars)
                xp = namespace(pending[0])
                stacked = to_numpy(xp.reshape(xp.stack(pending), (-1,)))
                converted = [float(v) for v in stacked.tolist()]
            else:
                converted = [float(v) for v in pending]
            with deferred_interrupts():  # an interrupt in the transfer loses no loss
                self.values.extend(converted)
                self.pending = []
        return self.values

    def check(self, iter_per_epoch: int, lr: float) -> None:
        self.sync()
        for i in range(self.checked, len(self.values)):
            value = self.values[i]
            if math.isfinite(value):
                self.checked = i + 1
            else:
                epoch, step = divmod(i, iter_per_epoch)
                raise NonFiniteLossError(
                    f"the training loss became {value} at iteration {i} (train_loss_list[{i}]; "
                    f"epoch {epoch + 1}, mini-batch {step + 1} of {iter_per_epoch}): the "
                    f"run diverged. Try a lower learning rate (now {lr:g}), float64 "
                    "(xpscratch.set_default_dtype('float64')), batch normalization or weight "
                    "decay, and check the data for NaN/inf values",
                    iteration=i,
                    epoch=epoch + 1,
                    loss=value,
                )
