"""The book's ``Trainer`` (``common/trainer.py``): mini-batch training with a report per epoch.

Differences from the book, each for a reason:

* Each epoch visits every sample exactly once, in the order of the permutation
  ``RandomStream(seed, "trainer/shuffle")`` draws on the device for that epoch (counter =
  epoch index, :mod:`.batches`), so a run is the same on every backend and can be resumed
  mid-epoch.  A last mini-batch of a single sample is folded into the one before (101
  samples with batch size 100 make one batch of 101): batch normalization cannot train
  on one sample, and every sample is still seen once per epoch.
* Per-step losses stay on the device as 0-d arrays; they become Python floats only at
  report points (every ``log_every`` steps, epoch ends, checkpoints, the end of training),
  so the loop never waits for the device.  NaN/inf losses are caught there and raised as
  :class:`NonFiniteLossError`, naming the first bad iteration.
* A step is all or nothing.  An error or Ctrl-C while the update is computed leaves
  the run exactly as it was (the network's running statistics and dropout streams are
  put back; nothing else was changed yet); the update and the step counters are then
  stored together, with Ctrl-C held off for those few assignments.  What a stored
  update still owes (its loss, the callbacks, the epoch's accuracies and autosave) is
  done first by whichever comes next, :meth:`Trainer.train_step`, :meth:`Trainer.train`
  or :meth:`Trainer.save_checkpoint`, so continuing after an interrupt anywhere gives
  the uninterrupted run's numbers, bit for bit.
* Extensions are callbacks (:mod:`.callbacks`): a progress bar, early stopping on a
  validation set, automatic checkpoints, pruning.  The keyword arguments
  ``early_stopping_patience``, ``restore_best``, ``progress`` and ``checkpoint_path``
  build them, so the book-style calls keep working.

As in the book, the loss recorded for a step is ``network.loss(x_batch, t_batch)`` computed
after the update (``train_flg=False``), and accuracies are taken on the first
``evaluate_sample_num_per_epoch`` train and test samples at the end of each epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

from .._interrupts import deferred_interrupts, holding_interrupts
from .._threads import limit_threads
from ..backend import device_of, move, namespace, persist, persists
from ..optim import Optimizer
from ..random import RandomStream
from . import state as _state
from .arguments import (
    check_data_labels,
    check_settings,
    make_trainer_optimizer,
    place_data,
    sugar_callbacks,
)
from .batches import batch_at, batch_count, epoch_order
from .callbacks import Callback, Progress
from .compiled import CompiledStep
from .history import LossLog, NonFiniteLossError, TrainHistory

__all__ = ["SHUFFLE_PURPOSE", "NonFiniteLossError", "TrainHistory", "Trainer"]

SHUFFLE_PURPOSE = "trainer/shuffle"


@dataclass
class _Owed:
    """What a stored update still owes; done by the next call if an interrupt cut it short.

    Each part is marked done in the same indivisible block that records its result, so
    it is done exactly once: the step's loss, then each callback's ``on_step_end``, then
    (when the update ended an epoch) the epoch's accuracies and each ``on_epoch_end``.
    """

    batch: tuple[Any, Any] | None  # the mini-batch whose loss is still to be recorded
    epoch_end: bool  # the update was the epoch's last
    loss: Any = None
    step_hooks: int = 0  # callbacks whose on_step_end has run
    evaluated: bool = False  # the epoch's accuracies are recorded
    epoch_hooks: int = 0  # callbacks whose on_epoch_end has run
    running: bool = False  # being done now (a callback saving a checkpoint must not recurse)


class Trainer(_state.Checkpointing):
    """Train ``network`` with mini-batches of ``x_train``/``t_train``, as the book's Trainer.

    ``optimizer`` is a name for :func:`xpscratch.optim.make_optimizer` (with
    ``optimizer_param``, default ``{"lr": 0.01}``) or an Optimizer instance.  Data may be
    host (NumPy) arrays, moved once onto the network's backend and device with the
    network's dtype, or arrays already there.

    Stopping: after ``epochs`` epochs (default 20), or after ``max_iterations`` updates,
    even mid-epoch; with ``max_iterations`` and no ``epochs``, only the iteration count
    limits the run.  With ``x_val``/``t_val`` the validation accuracy is recorded each
    epoch and the best epoch tracked.

    ``callbacks`` (:mod:`xpscratch.training.callbacks`) extend the loop.  Shortcuts that
    add them: ``early_stopping_patience=k`` and ``restore_best=True`` add
    :class:`EarlyStopping` (k, restore_best); ``verbose=True`` (unless ``progress=False``)
    or ``progress=True`` add :class:`Progress`; ``checkpoint_path`` adds
    :class:`Checkpoint` (path, ``checkpoint_every``).  ``verbose=True`` also prints the
    book's per-epoch lines; ``log_every`` (default 50) is how often the losses come
    back from the device to be checked and shown.

    ``augment`` (e.g. :class:`xpscratch.augment.RandomShiftRotate`) maps each training
    mini-batch of images before the update; accuracies use the unchanged images.  Its
    ``state_dict()``, if it has one, is part of the checkpoint.

    ``save_checkpoint``/``load_checkpoint`` and :meth:`resume` continue a run exactly
    where it stopped (:mod:`.state`).

    ``compile``: "auto" (the default) runs each step (and its recorded loss) as one
    ``jax.jit`` program (:mod:`.compiled`) where it can (JAX) and eagerly elsewhere, with
    the same numbers as ever; True refuses, naming why, where it cannot; False runs
    eagerly.  On JAX a compiled float32 step rounds in another order than the op-by-op
    one (within float32's rounding of the float64 truth).  Compiled and eager runs
    resume from each other's checkpoints.
    """

    def __init__(
        self,
        network: Any,
        x_train: Any,
        t_train: Any,
        x_test: Any,
        t_test: Any,
        epochs: int | None = None,
        mini_batch_size: int = 100,
        optimizer: str | Optimizer = "SGD",
        optimizer_param: dict[str, Any] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
        *,
        seed: int = 0,
        x_val: Any = None,
        t_val: Any = None,
        early_stopping_patience: int | None = None,
        restore_best: bool = False,
        augment: Callable[[Any], Any] | None = None,
        max_iterations: int | None = None,
        progress: bool | None = None,
        log_every: int | None = None,
        checkpoint_path: str | PathLike | None = None,
        checkpoint_every: int = 1,
        callbacks: Sequence[Callback] = (),
        compile: bool | str = "auto",
    ) -> None:
        self.network = network
        self.optimizer = make_trainer_optimizer(optimizer, optimizer_param)
        # a compiled step (jax.jit) where asked and possible; True refuses where it cannot
        step = CompiledStep(network, self.optimizer, compile=compile, loss_after_update=True)
        self.compiled_step = step if step.compiled else None
        ref = next(iter(network.params.values()))
        self.dtype = getattr(network, "dtype", ref.dtype)
        # moved once, here; the loop then only gathers mini-batches on the device
        self.x_train, self.t_train, self.x_test, self.t_test, self.x_val, self.t_val = place_data(
            self.dtype, ref, x_train, t_train, x_test, t_test, x_val, t_val
        )
        check_data_labels(network, self.t_train, self.t_test, self.t_val)  # once, here
        self.train_size = int(self.x_train.shape[0])
        check_settings(
            mini_batch_size, epochs, max_iterations, log_every, evaluate_sample_num_per_epoch
        )
        self.callbacks: list[Callback] = sugar_callbacks(
            verbose,
            progress,
            early_stopping_patience,
            restore_best,
            checkpoint_path,
            checkpoint_every,
        ) + list(callbacks)
        if any(cb.needs_validation for cb in self.callbacks) and self.x_val is None:
            raise ValueError(
                "early stopping and restore_best watch the validation accuracy: pass "
                "x_val and t_val (e.g. from xpscratch.datasets.train_validation_split)"
            )
        self.epochs = 20 if epochs is None and max_iterations is None else epochs
        self.max_iterations = max_iterations
        self.batch_size = int(mini_batch_size)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.verbose = bool(verbose)
        self.log_every = 50 if log_every is None else int(log_every)
        self.augment = augment

        self.iter_per_epoch = max(
            batch_count(self.train_size, self.batch_size, fold_single=True), 1
        )
        limits = []
        if self.epochs is not None:
            limits.append(self.epochs * self.iter_per_epoch)
        if max_iterations is not None:
            limits.append(int(max_iterations))
        self.max_iter = min(limits)

        self.seed = int(seed)
        self._shuffle = RandomStream(self.seed, SHUFFLE_PURPOSE)
        self.restore_counters(epoch=0, iter_in_epoch=0, iteration=0, history=None)
        self.stopped_early = False
        self.best_epoch: int | None = None
        self.best_val_acc: float | None = None
        self.epochs_since_best = 0

    def restore_counters(
        self, *, epoch: int, iter_in_epoch: int, iteration: int, history: dict[str, Any] | None
    ) -> None:
        """Set the position in the run and its history (a fresh run, or a loaded state)."""
        history = history or {}
        self._perm: Any = None
        self._perm_epoch = -1
        self.current_epoch = epoch  # completed epochs
        self.iter_in_epoch = iter_in_epoch  # updates done in the current epoch
        self.current_iter = iteration  # updates done in all
        self.loss_log = LossLog(history.get("train_loss", []))
        self.train_acc_list = [float(v) for v in history.get("train_acc", [])]
        self.test_acc_list = [float(v) for v in history.get("test_acc", [])]
        self.val_acc_list = [float(v) for v in history.get("val_acc", [])]
        self.final_test_acc: float | None = None
        self._owed: _Owed | None = None

    # -- the book's interface ---------------------------------------------------

    @property
    def train_loss_list(self) -> list[float]:
        """One loss per iteration, as Python floats (reading it converts pending ones)."""
        return self.loss_log.sync()

    def train_step(self) -> Any:
        """One mini-batch update; returns the step's loss as a 0-d device array (no sync).

        All or nothing (see the module's docstring): after an error or Ctrl-C, call it
        (or :meth:`train`) again to continue exactly as if nothing had happened.
        """
        self._finish_step()
        start = (
            _state.network_state(self.network, copy=False),
            _state.augment_state(self.augment),
        )
        try:
            x_batch, t_batch = self._next_batch()
            if self.compiled_step is not None:  # changes nothing until stored
                pending, _, loss = self.compiled_step.compute(x_batch, t_batch)
            else:
                grads = self.network.gradient(x_batch, t_batch)
                update = self.optimizer.compute_update(self.network.params, grads)
        except BaseException:
            with deferred_interrupts():  # a second Ctrl-C must not cut the undo in half
                _state.rewind(self.network, self.augment, *start)
            raise
        with deferred_interrupts():
            epoch_end = self.iter_in_epoch + 1 == self.iter_per_epoch
            if self.compiled_step is not None:
                self.compiled_step.store(pending)
                # the book's loss after the update came out of the same program
                owed = _Owed(None, epoch_end, loss)
                if len(self.loss_log) < self.current_iter + 1:
                    self.loss_log.append(loss)
            else:
                self.optimizer.apply_update(self.network.params, update)
                owed = _Owed((x_batch, t_batch), epoch_end)
            self._persist_lazy()
            self.current_iter += 1
            self.iter_in_epoch += 1
            self._owed = owed
        return self._finish_step()

    def _persist_lazy(self) -> None:
        """On a lazy library (dask), evaluate the state the next step starts from, so that
        a step's graph does not grow with the step count; nothing on eager ones."""
        net, opt = self.network, self.optimizer
        if not persists(next(iter(net.params.values()))):
            return  # eager: one dict lookup a step
        state = {("p", k): a for k, a in net.params.items()}
        state.update({("b", k): a for k, a in net._buffers().items()})
        for slot, arrays in (opt.state or {}).items():
            state.update({(slot, k): a for k, a in arrays.items()})
        done = persist(state)
        for (part, key), value in done.items():
            if part == "p":
                net.params[key] = value
            elif part == "b":
                layer, attr = key.split(".")
                setattr(net.layers[layer], attr, value)
            else:
                opt.state[part][key] = value

    def _next_batch(self) -> tuple[Any, Any]:
        xp = namespace(self.x_train)
        if self._perm_epoch != self.current_epoch:
            perm = epoch_order(
                self._shuffle,
                self.train_size,
                epoch=self.current_epoch,  # one draw per epoch: resumable
                xp=xp,
                device=device_of(self.x_train),
            )
            # drawn once an epoch; on a lazy library, evaluated once too
            self._perm, self._perm_epoch = persist({0: perm})[0], self.current_epoch
        idx = batch_at(
            self._perm, self.iter_in_epoch, self.batch_size, self.train_size, fold_single=True
        )
        x_batch = xp.take(self.x_train, idx, axis=0)
        t_batch = xp.take(self.t_train, idx, axis=0)
        if self.augment is not None:
            x_batch = self.augment(x_batch)
        return x_batch, t_batch

    def _finish_step(self) -> Any:
        """Do what the last stored update still owes (all of it, normally); its loss."""
        owed = self._owed
        if owed is None or owed.running:
            return None
        owed.running = True
        try:
            if owed.batch is not None:
                # as in the book: the loss after the update, on the step's mini-batch
                loss = self.network.loss(*owed.batch)
                if len(self.loss_log) < self.current_iter:  # not if cut short after this
                    self.loss_log.append(loss)
                owed.loss, owed.batch = loss, None
            if owed.step_hooks == 0 and self.at_report_point:
                self._check_losses()
            while owed.step_hooks < len(self.callbacks):
                self.callbacks[owed.step_hooks].on_step_end(self, owed.loss)
                owed.step_hooks += 1
            if owed.epoch_end:
                if not owed.evaluated:
                    self._end_epoch(owed)
                while owed.epoch_hooks < len(self.callbacks):
                    self.callbacks[owed.epoch_hooks].on_epoch_end(self)
                    owed.epoch_hooks += 1
            self._owed = None
            return owed.loss
        finally:
            owed.running = False

    @property
    def at_report_point(self) -> bool:
        """Whether the step just done is a mid-epoch report point (every ``log_every``)."""
        return (
            self.iter_in_epoch != self.iter_per_epoch
            and self.iter_in_epoch != 0
            and self.current_iter % self.log_every == 0
        )

    def to(self, backend: Any = None, device: Any = None, dtype: Any = None) -> Trainer:
        """Move the run to another backend, device or float dtype: the network, the
        optimizer's state, the data and the epoch's shuffle (copies through the host).

        The random streams are positions and continue unchanged, so the run goes on with
        the same numbers, up to the new backend's rounding.  Returns the trainer.
        """
        self.network.to(backend, device, dtype)
        self.optimizer.to(backend, device, dtype)
        names = ("x_train", "t_train", "x_test", "t_test", "x_val", "t_val", "_perm")
        arrays = {name: getattr(self, name) for name in names}
        owed = self._owed
        if owed is not None and owed.batch is not None:
            arrays["owed_x"], arrays["owed_t"] = owed.batch
        moved = move(arrays, backend, device, dtype)
        for name in names:
            setattr(self, name, moved[name])
        if "owed_x" in moved:
            owed.batch = moved["owed_x"], moved["owed_t"]
        self.dtype = self.network.dtype
        return self

    def train(self) -> TrainHistory:
        """Run (or continue) until the epoch/iteration limit or a callback stops it."""
        # one BLAS thread (see xpscratch._threads); the steps' held blocks then cost
        # almost nothing
        with limit_threads(), holding_interrupts():
            return self._train()

    def _train(self) -> TrainHistory:
        try:
            for cb in self.callbacks:
                cb.on_train_begin(self)
            self._finish_step()  # an interrupted step's loss, callbacks and epoch end
            while not self.finished:
                self.train_step()
            self._check_losses()
            for cb in reversed(self.callbacks):  # as nested blocks exit: see .callbacks
                cb.on_train_end(self)
            self.final_test_acc = (self.compiled_step or self.network).accuracy(
                self.x_test, self.t_test
            )
            self.log("=============== Final Test Accuracy ===============")
            self.log(f"test acc:{self.final_test_acc}")
        finally:
            for cb in self.callbacks:
                cb.on_train_exit(self)
        return self.history

    @property
    def finished(self) -> bool:
        return self.stopped_early or self.current_iter >= self.max_iter

    @property
    def history(self) -> TrainHistory:
        return TrainHistory(
            train_loss=list(self.train_loss_list),
            train_acc=list(self.train_acc_list),
            test_acc=list(self.test_acc_list),
            val_acc=list(self.val_acc_list),
            epochs_run=self.current_epoch,
            iterations=self.current_iter,
            stopped_early=self.stopped_early,
            best_epoch=self.best_epoch,
            final_test_acc=self.final_test_acc,
        )

    def log(self, line: str) -> None:
        """Print ``line`` if ``verbose`` (above the progress bar, if one is shown)."""
        if not self.verbose:
            return
        for cb in self.callbacks:
            if isinstance(cb, Progress) and cb.write(line):
                return
        print(line)

    def _check_losses(self) -> None:
        self.loss_log.check(self.iter_per_epoch, self.optimizer.current_lr())

    def _end_epoch(self, owed: _Owed) -> None:
        """Record the epoch's accuracies (the epoch's callbacks run after this)."""
        self._check_losses()
        n = self.evaluate_sample_num_per_epoch
        x_tr, t_tr, x_te, t_te = self.x_train, self.t_train, self.x_test, self.t_test
        if n is not None:
            # the first n samples, or all of a smaller set (strict refuses a stop past the end)
            n_tr, n_te = min(n, x_tr.shape[0]), min(n, x_te.shape[0])
            x_tr, t_tr = x_tr[:n_tr, ...], t_tr[:n_tr, ...]
            x_te, t_te = x_te[:n_te, ...], t_te[:n_te, ...]
        # one program each where the step compiles (op by op, JAX loses to NumPy here)
        accuracy = (self.compiled_step or self.network).accuracy
        train_acc = accuracy(x_tr, t_tr)
        test_acc = accuracy(x_te, t_te)
        val_acc = None if self.x_val is None else accuracy(self.x_val, self.t_val)
        with deferred_interrupts():
            self.current_epoch += 1
            self.iter_in_epoch = 0
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if val_acc is not None:
                self.val_acc_list.append(val_acc)
                self._track_best(val_acc)
            owed.evaluated = True
        line = f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc}"
        self.log(line + ("" if val_acc is None else f", val acc:{val_acc}") + " ===")

    def _track_best(self, val_acc: float) -> None:
        if self.best_val_acc is None or val_acc > self.best_val_acc:
            self.best_val_acc, self.best_epoch = val_acc, self.current_epoch
            self.epochs_since_best = 0
        else:
            self.epochs_since_best += 1
