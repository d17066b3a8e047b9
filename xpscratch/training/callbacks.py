"""Extensions of the training loop, one small class each (as Keras's callbacks).

The :class:`~xpscratch.training.Trainer` calls, for each callback in its list:

* ``on_train_begin(trainer)`` when :meth:`Trainer.train` starts (or continues);
* ``on_step_end(trainer, loss)`` after every update, ``loss`` being the step's loss as
  a 0-d device array: ``float(loss)`` would wait for the device, so a callback that
  needs numbers reads ``trainer.train_loss_list`` at report points instead;
* ``on_epoch_end(trainer)`` after each epoch's accuracies are recorded
  (``trainer.train_acc_list`` and friends, ``trainer.best_epoch``);
* ``on_train_end(trainer)`` once the limit is reached or training was stopped, in
  *reverse* order, as nested ``with`` blocks exit: a :class:`Checkpoint` added after
  :class:`EarlyStopping` saves the run before the best weights are put back;
* ``on_train_exit(trainer)`` always, even after an error (release what was opened).

A callback stops the run with ``trainer.stopped_early = True``.  A callback with a
``state_key`` has its :meth:`~Callback.state_dict` saved in checkpoints under that key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from os import PathLike
from typing import Any, ClassVar

from .progress import NoBar, open_bar
from .state import (
    check_network_arrays,
    copy_network_state,
    load_network_state,
    on_device,
    positive,
)

# a xpscratch.training.Trainer: the loop imports this module, so it is not imported here
Trainer = Any

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "Progress", "PruneAfter"]


class Callback:
    """The base class: every hook does nothing."""

    state_key: ClassVar[str | None] = None
    needs_validation: ClassVar[bool] = False  # refuse a Trainer without x_val/t_val

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, loss: Any) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer) -> None:
        pass

    def on_train_end(self, trainer: Trainer) -> None:
        pass

    def on_train_exit(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any], trainer: Trainer) -> None:
        pass

    def check_state(self, state: dict[str, Any], trainer: Trainer) -> None:
        """Refuse a saved state this callback cannot take (before anything changes)."""

    def run_settings(self) -> dict[str, Any]:
        """The Trainer keyword arguments that rebuild this callback on resume (the sugar)."""
        return {}


class Progress(Callback):
    """A tqdm bar over the run's iterations, refreshed at the Trainer's report points.

    The Trainer's printed lines (``verbose=True``) go through the bar while it is open,
    so that they do not break it.  ``Trainer(verbose=True)`` adds one (``progress=False``
    leaves it out).
    """

    def __init__(self, desc: str = "train") -> None:
        self.desc = desc
        self.bar: Any = None

    def run_settings(self) -> dict[str, Any]:
        return {"progress": True}

    def on_train_begin(self, trainer: Trainer) -> None:
        bar = open_bar(trainer.max_iter, self.desc, initial=trainer.current_iter, unit="it")
        self.bar = None if isinstance(bar, NoBar) else bar

    def on_step_end(self, trainer: Trainer, loss: Any) -> None:
        if trainer.at_report_point:
            self.refresh(trainer)

    def on_epoch_end(self, trainer: Trainer) -> None:
        self.refresh(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        self.refresh(trainer)

    def on_train_exit(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None

    def refresh(self, trainer: Trainer) -> None:
        bar = self.bar
        if bar is None:
            return
        bar.update(trainer.current_iter - bar.n)
        post: dict[str, Any] = {"epoch": trainer.current_epoch}
        losses = trainer.loss_log.values  # converted at report points: no sync here
        if losses:
            post["loss"] = f"{losses[-1]:.4g}"
        if trainer.train_acc_list:
            post["train_acc"] = f"{trainer.train_acc_list[-1]:.4f}"
            post["test_acc"] = f"{trainer.test_acc_list[-1]:.4f}"
        bar.set_postfix(post, refresh=True)

    def write(self, line: str) -> bool:
        """Print ``line`` above the bar; False when no bar is open."""
        if self.bar is None:
            return False
        self.bar.write(line)
        return True


class EarlyStopping(Callback):
    """Stop once the validation accuracy has not improved for ``patience`` epochs.

    The Trainer tracks the best epoch (``best_epoch``, ``best_val_acc``,
    ``epochs_since_best``) whenever it has a validation set; this callback only
    decides.  ``restore_best=True`` keeps a copy of the best epoch's weights and puts
    it back at the end (``patience=None``: never stop, only restore).
    """

    state_key = "early_stopping"
    needs_validation = True

    def __init__(self, patience: int | None = None, restore_best: bool = False) -> None:
        if patience is not None:
            positive("early_stopping_patience", patience)
        self.patience = patience
        self.restore_best = bool(restore_best)
        self.best_state: dict[str, Any] | None = None

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.best_epoch == trainer.current_epoch and trainer.epochs_since_best == 0:
            if self.restore_best:
                self.best_state = copy_network_state(trainer.network)
            return
        if self.patience is not None and trainer.epochs_since_best >= self.patience:
            trainer.stopped_early = True
            trainer.log(
                f"early stopping: no improvement in validation accuracy for {self.patience} "
                f"epochs (best {trainer.best_val_acc} at epoch {trainer.best_epoch})"
            )

    def run_settings(self) -> dict[str, Any]:
        return {"early_stopping_patience": self.patience, "restore_best": self.restore_best}

    def on_train_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            if trainer.best_epoch != trainer.current_epoch or trainer.iter_in_epoch:
                load_network_state(trainer.network, self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best_state": self.best_state}

    def check_state(self, state: dict[str, Any], trainer: Trainer) -> None:
        if state.get("best_state") is not None:
            check_network_arrays("best weights", state["best_state"], trainer.network)

    def load_state_dict(self, state: dict[str, Any], trainer: Trainer) -> None:
        best = state.get("best_state")
        self.best_state = None if best is None else on_device(best, trainer.network)


class Checkpoint(Callback):
    """Save the run to ``path`` every ``every`` epochs and at the end (atomically).

    :meth:`Trainer.resume` continues from the file bit for bit.
    """

    def __init__(self, path: str | PathLike, every: int = 1) -> None:
        positive("checkpoint_every", every)
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(folder):  # found now, not when the first epoch ends
            raise FileNotFoundError(
                f"checkpoint_path {os.fspath(path)!r}: the folder {folder!r} does not exist; "
                "create it first (os.makedirs) or choose another path"
            )
        if os.path.isdir(path):
            raise IsADirectoryError(
                f"checkpoint_path {os.fspath(path)!r} is a folder; give a file name in it, "
                "e.g. run.npz"
            )
        self.path = path
        self.every = int(every)
        self._saved_at = -1

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.current_epoch % self.every == 0:
            trainer.save_checkpoint(self.path)
            self._saved_at = trainer.current_iter

    def run_settings(self) -> dict[str, Any]:
        return {"checkpoint_every": self.every, "autosave": True}

    def on_train_end(self, trainer: Trainer) -> None:
        if self._saved_at != trainer.current_iter:
            trainer.save_checkpoint(self.path)


class PruneAfter(Callback):
    """Stop a run that looks hopeless after ``epoch`` epochs (the search's pruning).

    ``hopeless(acc)`` is given the last test-set accuracy (a search passes its
    validation set as the test set); ``pruned`` says whether it stopped the run.
    """

    def __init__(self, epoch: int, hopeless: Callable[[float], bool]) -> None:
        positive("epoch", epoch)
        self.epoch = int(epoch)
        self.hopeless = hopeless
        self.pruned = False

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.current_epoch == self.epoch and self.hopeless(trainer.test_acc_list[-1]):
            self.pruned = True
            trainer.stopped_early = True
