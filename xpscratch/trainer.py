"""The book's ``Trainer`` (``common/trainer.py``): mini-batch training with a report per epoch.

Differences from the book, each for a reason:

* Each epoch visits every sample exactly once, in the order of the permutation
  ``RandomStream(seed, "trainer/shuffle")`` draws on the device for that epoch (counter =
  epoch index), so a run is the same on every backend and can be resumed mid-epoch.
* Per-step losses stay on the device as 0-d arrays; they become Python floats only at
  report points (every ``log_every`` steps, epoch ends, checkpoints, the end of training),
  so the loop never waits for the device.  NaN/inf losses are caught there and raised as
  :class:`NonFiniteLossError`, naming the first bad iteration.
* Optional validation accuracy, early stopping, ``max_iterations``, a tqdm progress bar
  and atomic checkpoints (:mod:`xpscratch.checkpoint`) that resume bit for bit.

As in the book, the loss recorded for a step is ``network.loss(x_batch, t_batch)`` computed
after the update (``train_flg=False``), and accuracies are taken on the first
``evaluate_sample_num_per_epoch`` train and test samples at the end of each epoch.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from os import PathLike
from typing import Any

from .backend import asarray, device_of, namespace, to_numpy
from .optim import Optimizer, make_optimizer
from .random import RandomStream

__all__ = ["NonFiniteLossError", "TrainHistory", "Trainer"]

SHUFFLE_PURPOSE = "trainer/shuffle"
# keys of network.config that only shape the initial weights: a network built with other
# values can still take a checkpoint's state
_INIT_ONLY_CONFIG = ("seed", "weight_init_std")
# config keys added after checkpoints were first written, with the value an older
# checkpoint (which lacks the key) was trained with
_CONFIG_DEFAULTS = {"label_smoothing": 0.0}


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


class Trainer:
    """Train ``network`` with mini-batches of ``x_train``/``t_train``, as the book's Trainer.

    ``optimizer`` is a name for :func:`xpscratch.optim.make_optimizer` (with
    ``optimizer_param``, default ``{"lr": 0.01}``) or an Optimizer instance.  Data may be
    host (NumPy) arrays, moved once onto the network's backend and device with the
    network's dtype, or arrays already there.

    Stopping: after ``epochs`` epochs (default 20), or after ``max_iterations`` updates,
    even mid-epoch; with ``max_iterations`` and no ``epochs``, only the iteration count
    limits the run.  With ``x_val``/``t_val`` the validation accuracy is recorded each
    epoch; ``early_stopping_patience=k`` stops once it has not improved for k epochs,
    and ``restore_best=True`` puts back the weights of the best epoch at the end.

    ``augment`` (e.g. :class:`xpscratch.augment.RandomShiftRotate`) maps each training
    mini-batch of images before the update; accuracies use the unchanged images.  Its
    ``state_dict()``, if it has one, is part of the checkpoint.

    Output: ``verbose=True`` prints the book's per-epoch lines and, when ``progress`` is
    not False and tqdm is installed, shows a bar refreshed every ``log_every`` steps
    (default 50).  ``verbose=False`` prints nothing.

    Checkpoints: ``checkpoint_path`` saves one automatically every ``checkpoint_every``
    epochs and at the end; ``save_checkpoint``/``load_checkpoint`` and :meth:`resume`
    continue a run exactly where it stopped.
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
    ) -> None:
        self.network = network
        if isinstance(optimizer, str):
            params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
            self.optimizer = make_optimizer(optimizer, **params)
        elif isinstance(optimizer, Optimizer):
            if optimizer_param is not None:
                raise ValueError(
                    "optimizer_param is only used with an optimizer name; set the "
                    "hyperparameters on the Optimizer instance instead"
                )
            self.optimizer = optimizer
        else:
            raise TypeError(f"optimizer must be a name or an Optimizer, got {optimizer!r}")

        ref = next(iter(network.params.values()))
        self.dtype = getattr(network, "dtype", ref.dtype)
        # moved once, here; the loop then only gathers mini-batches on the device
        self.x_train, self.t_train, self.x_test, self.t_test, self.x_val, self.t_val = (
            _place(a, self.dtype, ref) for a in (x_train, t_train, x_test, t_test, x_val, t_val)
        )
        for name, x, t in (
            ("train", self.x_train, self.t_train),
            ("test", self.x_test, self.t_test),
            ("val", self.x_val, self.t_val),
        ):
            if (x is None) != (t is None):
                raise ValueError(f"give both x_{name} and t_{name}, or neither")
            if x is not None and x.shape[0] != t.shape[0]:
                raise ValueError(f"x_{name} has {x.shape[0]} samples but t_{name} has {t.shape[0]}")
        self.train_size = int(self.x_train.shape[0])
        if self.train_size == 0:
            raise ValueError("x_train is empty")

        _positive("mini_batch_size", mini_batch_size)
        _positive("checkpoint_every", checkpoint_every)
        for name, value in (("epochs", epochs), ("max_iterations", max_iterations)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")
        if log_every is not None:
            _positive("log_every", log_every)
        if evaluate_sample_num_per_epoch is not None:
            _positive("evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch)
        if early_stopping_patience is not None:
            _positive("early_stopping_patience", early_stopping_patience)
        if (early_stopping_patience is not None or restore_best) and self.x_val is None:
            raise ValueError(
                "early stopping and restore_best watch the validation accuracy: pass "
                "x_val and t_val (e.g. from xpscratch.datasets.train_validation_split)"
            )
        self.epochs = 20 if epochs is None and max_iterations is None else epochs
        self.max_iterations = max_iterations
        self.batch_size = int(mini_batch_size)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.verbose = bool(verbose)
        self.progress = self.verbose if progress is None else bool(progress)
        self.log_every = 50 if log_every is None else int(log_every)
        self.early_stopping_patience = early_stopping_patience
        self.restore_best = bool(restore_best)
        self.augment = augment
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = int(checkpoint_every)

        self.iter_per_epoch = max(math.ceil(self.train_size / self.batch_size), 1)
        limits = []
        if self.epochs is not None:
            limits.append(self.epochs * self.iter_per_epoch)
        if max_iterations is not None:
            limits.append(int(max_iterations))
        self.max_iter = min(limits)

        self.seed = int(seed)
        self._shuffle = RandomStream(self.seed, SHUFFLE_PURPOSE)
        self._perm: Any = None
        self._perm_epoch = -1
        self.current_epoch = 0  # completed epochs
        self.iter_in_epoch = 0  # updates done in the current epoch
        self.current_iter = 0  # updates done in all
        self._pending: list[Any] = []  # device losses not yet converted
        self._losses: list[float] = []
        self._checked = 0  # losses [0, _checked) were found finite
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []
        self.val_acc_list: list[float] = []
        self.stopped_early = False
        self.best_epoch: int | None = None
        self.best_val_acc: float | None = None
        self.epochs_since_best = 0
        self._best_state: dict[str, Any] | None = None
        self.final_test_acc: float | None = None
        self._bar: Any = None
        self._autosaved_at = -1

    # -- the book's interface ---------------------------------------------------

    @property
    def train_loss_list(self) -> list[float]:
        """One loss per iteration, as Python floats (reading it converts pending ones)."""
        self._sync_losses()
        return self._losses

    def train_step(self) -> Any:
        """One mini-batch update; returns the step's loss as a 0-d device array (no sync)."""
        xp = namespace(self.x_train)
        if self._perm_epoch != self.current_epoch:
            self._shuffle.counter = self.current_epoch  # one draw per epoch: resumable
            self._perm = self._shuffle.permutation(
                self.train_size, xp=xp, device=device_of(self.x_train)
            )
            self._perm_epoch = self.current_epoch
        start = self.iter_in_epoch * self.batch_size
        # strict array-API slicing refuses a stop past the end
        idx = self._perm[start : min(start + self.batch_size, self.train_size)]
        x_batch = xp.take(self.x_train, idx, axis=0)
        t_batch = xp.take(self.t_train, idx, axis=0)
        if self.augment is not None:
            x_batch = self.augment(x_batch)

        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        loss = self.network.loss(x_batch, t_batch)
        self._pending.append(loss)

        self.current_iter += 1
        self.iter_in_epoch += 1
        if self.iter_in_epoch == self.iter_per_epoch:
            self.current_epoch += 1
            self.iter_in_epoch = 0
            self._end_epoch()
        elif self.current_iter % self.log_every == 0:
            self._check_losses()
            self._refresh_bar()
        return loss

    def train(self) -> TrainHistory:
        """Run (or continue) until the epoch/iteration limit or early stopping."""
        self._bar = self._open_bar()
        try:
            while not self.finished:
                self.train_step()
            self._check_losses()
            self._refresh_bar()
            if self.checkpoint_path is not None and self._autosaved_at != self.current_iter:
                self.save_checkpoint(self.checkpoint_path)
            # after the save, so that the file holds the run itself (and the best weights)
            if self.restore_best and self._best_state is not None:
                if self.best_epoch != self.current_epoch or self.iter_in_epoch:
                    _load_net_state(self.network, self._best_state)
            self.final_test_acc = self.network.accuracy(self.x_test, self.t_test)
            if self.verbose:
                self._write("=============== Final Test Accuracy ===============")
                self._write(f"test acc:{self.final_test_acc}")
        finally:
            if self._bar is not None:
                self._bar.close()
            self._bar = None
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

    # -- report points --------------------------------------------------------

    def _sync_losses(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if all(hasattr(v, "shape") for v in pending):  # arrays (or NumPy scalars)
            xp = namespace(pending[0])
            # one transfer for the whole buffer instead of one sync per step
            self._losses.extend(
                float(v) for v in to_numpy(xp.reshape(xp.stack(pending), (-1,))).tolist()
            )
        else:
            self._losses.extend(float(v) for v in pending)

    def _check_losses(self) -> None:
        self._sync_losses()
        start, self._checked = self._checked, len(self._losses)
        for i in range(start, len(self._losses)):
            value = self._losses[i]
            if not math.isfinite(value):
                epoch, step = divmod(i, self.iter_per_epoch)
                lr = self.optimizer.current_lr()
                raise NonFiniteLossError(
                    f"the training loss became {value} at iteration {i} (train_loss_list[{i}]; "
                    f"epoch {epoch + 1}, mini-batch {step + 1} of {self.iter_per_epoch}): the "
                    f"run diverged. Try a lower learning rate (now {lr:g}), float64 "
                    "(xpscratch.set_default_dtype('float64')), batch normalization or weight "
                    "decay, and check the data for NaN/inf values",
                    iteration=i,
                    epoch=epoch + 1,
                    loss=value,
                )

    def _end_epoch(self) -> None:
        self._check_losses()
        n = self.evaluate_sample_num_per_epoch
        x_tr, t_tr, x_te, t_te = self.x_train, self.t_train, self.x_test, self.t_test
        if n is not None:
            # the first n samples, or all of a smaller set (strict refuses a stop past the end)
            n_tr, n_te = min(n, x_tr.shape[0]), min(n, x_te.shape[0])
            x_tr, t_tr = x_tr[:n_tr, ...], t_tr[:n_tr, ...]
            x_te, t_te = x_te[:n_te, ...], t_te[:n_te, ...]
        train_acc = self.network.accuracy(x_tr, t_tr)
        test_acc = self.network.accuracy(x_te, t_te)
        self.train_acc_list.append(train_acc)
        self.test_acc_list.append(test_acc)
        line = f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc}"
        if self.x_val is not None:
            val_acc = self.network.accuracy(self.x_val, self.t_val)
            self.val_acc_list.append(val_acc)
            line += f", val acc:{val_acc}"
            self._track_best(val_acc)
        if self.verbose:
            self._write(line + " ===")
        self._refresh_bar()
        if self.checkpoint_path is not None and self.current_epoch % self.checkpoint_every == 0:
            self.save_checkpoint(self.checkpoint_path)
            self._autosaved_at = self.current_iter

    def _track_best(self, val_acc: float) -> None:
        if self.best_val_acc is None or val_acc > self.best_val_acc:
            self.best_val_acc, self.best_epoch, self.epochs_since_best = (
                val_acc,
                self.current_epoch,
                0,
            )
            if self.restore_best:
                self._best_state = _copy_net_state(self.network)
            return
        self.epochs_since_best += 1
        patience = self.early_stopping_patience
        if patience is not None and self.epochs_since_best >= patience:
            self.stopped_early = True
            if self.verbose:
                self._write(
                    f"early stopping: no improvement in validation accuracy for {patience} "
                    f"epochs (best {self.best_val_acc} at epoch {self.best_epoch})"
                )

    def _open_bar(self) -> Any:
        if not self.progress:
            return None
        try:
            from tqdm.auto import tqdm  # lazily: importing xpscratch must stay light
        except ImportError:
            return None
        return tqdm(total=self.max_iter, initial=self.current_iter, desc="train", unit="it")

    def _refresh_bar(self) -> None:
        bar = self._bar
        if bar is None:
            return
        bar.update(self.current_iter - bar.n)
        post = {"epoch": self.current_epoch}
        if self._losses:
            post["loss"] = f"{self._losses[-1]:.4g}"
        if self.train_acc_list:
            post["train_acc"] = f"{self.train_acc_list[-1]:.4f}"
            post["test_acc"] = f"{self.test_acc_list[-1]:.4f}"
        bar.set_postfix(post, refresh=True)

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line)

    # -- state and checkpoints --------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (arrays stay on the device)."""
        ref = next(iter(self.network.params.values()))
        xp = namespace(ref)
        opt = self.optimizer
        return {
            "backend": _backend_name(xp),
            "device": str(device_of(ref)),
            "dtype": "float64" if self.dtype == xp.float64 else "float32",
            "network": {
                "class": type(self.network).__name__,
                "config": getattr(self.network, "config", None),
                "state": _net_state(self.network),
            },
            "optimizer": {
                "class": type(opt).__name__,
                "hyperparameters": _hyperparameters(opt),
                "step": opt.step,
                "state": opt.state_dict(),
            },
            "trainer": {
                "seed": self.seed,
                "shuffle_rng": self._shuffle.state_dict(),
                "augment": _augment_state(self.augment),
                "epoch": self.current_epoch,
                "iter_in_epoch": self.iter_in_epoch,
                "iteration": self.current_iter,
                "train_size": self.train_size,
                "mini_batch_size": self.batch_size,
                "stopped_early": self.stopped_early,
                "best_epoch": self.best_epoch,
                "best_val_acc": self.best_val_acc,
                "epochs_since_best": self.epochs_since_best,
                "run": {
                    "epochs": self.epochs,
                    "max_iterations": self.max_iterations,
                    "evaluate_sample_num_per_epoch": self.evaluate_sample_num_per_epoch,
                    "early_stopping_patience": self.early_stopping_patience,
                    "restore_best": self.restore_best,
                    "log_every": self.log_every,
                    "checkpoint_every": self.checkpoint_every,
                    "autosave": self.checkpoint_path is not None,
                },
            },
            "history": {
                "train_loss": list(self.train_loss_list),
                "train_acc": list(self.train_acc_list),
                "test_acc": list(self.test_acc_list),
                "val_acc": list(self.val_acc_list),
            },
            "best_state": self._best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (device or host arrays), checking everything first.

        A state from another architecture, optimizer type or training-set size is refused
        with a ValueError naming the difference, and nothing is changed.
        """
        self._validate_state(state)
        net, opt, tr, hist = (
            state["network"],
            state["optimizer"],
            state["trainer"],
            state["history"],
        )
        _load_net_state(self.network, net["state"])
        opt_state = opt["state"]
        if any(opt_state.get(slot) for slot in self.optimizer.slots):
            self.optimizer.load_state_dict(opt_state, self.network.params)
        else:  # saved before the first update: no slot arrays yet
            self.optimizer.state = None
            self.optimizer.step = int(opt_state.get("step", 0))
        self.seed = int(tr["seed"])
        self._shuffle.load_state_dict(tr["shuffle_rng"])
        if tr.get("augment") is not None:
            self.augment.load_state_dict(tr["augment"])
        self._perm, self._perm_epoch = None, -1
        self.current_epoch = int(tr["epoch"])
        self.iter_in_epoch = int(tr["iter_in_epoch"])
        self.current_iter = int(tr["iteration"])
        self.stopped_early = bool(tr["stopped_early"])
        self.best_epoch = tr["best_epoch"]
        self.best_val_acc = tr["best_val_acc"]
        self.epochs_since_best = int(tr["epochs_since_best"])
        self._pending = []
        self._losses = [float(v) for v in hist["train_loss"]]
        self._checked = len(self._losses)
        self.train_acc_list = [float(v) for v in hist["train_acc"]]
        self.test_acc_list = [float(v) for v in hist["test_acc"]]
        self.val_acc_list = [float(v) for v in hist["val_acc"]]
        best = state.get("best_state")
        self._best_state = None if best is None else _on_device(best, self.network)
        self.final_test_acc = None

    def _validate_state(self, state: dict[str, Any]) -> None:
        try:
            net, opt, tr = state["network"], state["optimizer"], state["trainer"]
            state["history"]["train_loss"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a Trainer state: missing {exc}") from None
        saved_aug, my_aug = tr.get("augment"), _augment_state(self.augment)
        if (saved_aug is None) != (my_aug is None):
            raise ValueError(
                "the checkpoint was saved "
                + ("with" if saved_aug is not None else "without")
                + " an augment state, this trainer has "
                + ("one" if my_aug is not None else "none")
                + ": pass the same augment= as the saved run"
            )
        mine = getattr(self.network, "config", None)
        if mine is None or net.get("config") is None:
            if net.get("class") != type(self.network).__name__:
                raise ValueError(
                    f"the checkpoint holds a {net.get('class')}, this trainer a "
                    f"{type(self.network).__name__}"
                )
        else:
            saved = {**_CONFIG_DEFAULTS, **net["config"]}
            diff = [
                f"{k}: checkpoint {saved.get(k)!r} vs network {mine.get(k)!r}"
                for k in sorted(set(mine) | set(saved))
                if k not in _INIT_ONLY_CONFIG and saved.get(k) != mine.get(k)
            ]
            if diff:
                raise ValueError(
                    "the checkpoint's network differs from this one: " + "; ".join(diff)
                )
        _check_arrays("network", net["state"], _net_state(self.network))
        if opt.get("class") != type(self.optimizer).__name__:
            raise ValueError(
                f"the checkpoint was trained with {opt.get('class')}, this trainer uses "
                f"{type(self.optimizer).__name__}; pass optimizer={opt.get('class')!r} "
                "(or use Trainer.resume, which rebuilds it)"
            )
        params = self.network.params
        for slot in self.optimizer.slots:
            saved = opt["state"].get(slot) or {}
            if saved:
                _check_arrays(f"optimizer slot {slot!r}", {"params": saved}, {"params": params})
        if int(tr["train_size"]) != self.train_size:
            raise ValueError(
                f"the checkpoint was trained on {tr['train_size']} samples, this trainer has "
                f"{self.train_size}: resume with the same training set"
            )
        if int(tr["iter_in_epoch"]) and int(tr["mini_batch_size"]) != self.batch_size:
            raise ValueError(
                f"the checkpoint stopped mid-epoch with mini_batch_size "
                f"{tr['mini_batch_size']}; this trainer uses {self.batch_size}"
            )
        if state.get("best_state") is not None:
            _check_arrays("best weights", state["best_state"], _net_state(self.network))

    def save_checkpoint(self, path: str | PathLike) -> None:
        """Write this run to ``path`` atomically (see :mod:`xpscratch.checkpoint`)."""
        from .checkpoint import save_checkpoint

        self._check_losses()  # a report point: never save a diverged run silently
        save_checkpoint(path, self)

    def load_checkpoint(self, path: str | PathLike) -> None:
        """Continue from a checkpoint: weights, optimizer, RNG positions, counters, history."""
        from .checkpoint import load_checkpoint

        self.load_state_dict(load_checkpoint(path))

    @classmethod
    def resume(
        cls,
        path: str | PathLike,
        x_train: Any,
        t_train: Any,
        x_test: Any,
        t_test: Any,
        *,
        network: Any = None,
        **kwargs: Any,
    ) -> Trainer:
        """A Trainer that continues the run saved at ``path`` (data must be given again).

        Without ``network``, it is rebuilt from the saved config and dtype on the active
        backend; without ``optimizer``, from the saved class and hyperparameters.  The
        run settings (epochs, max_iterations, ...) default to the saved ones and
        automatic checkpoints keep going to ``path``.
        """
        from .checkpoint import load_checkpoint

        state = load_checkpoint(path)
        if network is None:
            network = _build_network(state)
        if "optimizer" not in kwargs:
            kwargs["optimizer"] = _build_optimizer(state["optimizer"])
        run = dict(state["trainer"].get("run", {}))
        run["mini_batch_size"] = state["trainer"]["mini_batch_size"]
        run["seed"] = state["trainer"]["seed"]
        if run.pop("autosave", False):
            run["checkpoint_path"] = path
        for key, value in run.items():
            kwargs.setdefault(key, value)
        trainer = cls(network, x_train, t_train, x_test, t_test, **kwargs)
        trainer.load_state_dict(state)
        return trainer


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _place(a: Any, dtype: Any, like: Any) -> Any:
    """Data onto the network's backend/device; floats in the network's dtype, ints as int64."""
    if a is None:
        return None
    kind = getattr(getattr(a, "dtype", None), "kind", None)  # NumPy/CuPy dtypes have .kind
    if kind is None and hasattr(a, "shape"):
        is_float = namespace(a).isdtype(a.dtype, "real floating")
    else:
        is_float = kind == "f"
    return asarray(a, dtype if is_float else None, like=like)


def _backend_name(xp: Any) -> str:
    if xp.__name__.startswith("jax"):  # jax.numpy
        return "jax"
    name = xp.__name__.rsplit(".", 1)[-1]
    return "array_api_strict" if name.startswith("array_api_strict") else name


def _net_state(network: Any) -> dict[str, Any]:
    if hasattr(network, "state_dict"):
        return network.state_dict()
    return {"params": dict(network.params), "buffers": {}, "rng": {}}


def _augment_state(augment: Any) -> dict[str, Any] | None:
    state_dict = getattr(augment, "state_dict", None)
    return None if state_dict is None else state_dict()


def _load_net_state(network: Any, state: dict[str, Any]) -> None:
    if hasattr(network, "load_state_dict"):
        network.load_state_dict(state)
        return
    for key, value in state["params"].items():
        target = network.params[key]
        target[...] = asarray(value, target.dtype, like=target)


def _copy_net_state(network: Any) -> dict[str, Any]:
    state = _net_state(network)
    return {
        "params": {k: namespace(v).asarray(v, copy=True) for k, v in state["params"].items()},
        "buffers": {k: namespace(v).asarray(v, copy=True) for k, v in state["buffers"].items()},
        "rng": {k: dict(v) for k, v in state["rng"].items()},
    }


def _on_device(state: dict[str, Any], network: Any) -> dict[str, Any]:
    current = _net_state(network)
    out: dict[str, Any] = {"rng": {k: dict(v) for k, v in state.get("rng", {}).items()}}
    for group in ("params", "buffers"):
        out[group] = {
            k: asarray(v, current[group][k].dtype, like=current[group][k])
            for k, v in state.get(group, {}).items()
        }
    return out


def _check_arrays(what: str, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse (before anything is changed) a state whose names or shapes differ."""
    for group in ("params", "buffers"):
        have, want = saved.get(group, {}), current.get(group, {})
        if set(have) != set(want):
            missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
            raise ValueError(
                f"{what} {group} do not match this network: missing {missing}, unexpected {extra}"
            )
        for key, value in have.items():
            if tuple(value.shape) != tuple(want[key].shape):
                raise ValueError(
                    f"{what} {key!r} has shape {tuple(value.shape)}, this network's is "
                    f"{tuple(want[key].shape)}"
                )
    if "rng" in current and set(saved.get("rng", {})) != set(current["rng"]):
        raise ValueError(
            f"{what} random streams {sorted(saved.get('rng', {}))} do not match this "
            f"network's dropout layers {sorted(current['rng'])}"
        )


def _hyperparameters(opt: Optimizer) -> dict[str, Any]:
    """JSON-ready hyperparameters; a schedule dataclass as {'schedule': name, fields...}."""
    out: dict[str, Any] = {}
    for key, value in vars(opt).items():
        if key in ("state", "step"):
            continue
        if is_dataclass(value) and not isinstance(value, type):
            out[key] = {"schedule": type(value).__name__, **asdict(value)}
        elif isinstance(value, bool | int | float | str) or value is None:
            out[key] = value
        else:
            out[key] = {"unserializable": repr(value)}
    return out


def _build_optimizer(saved: dict[str, Any]) -> Optimizer:
    from . import schedules
    from .optim import OPTIMIZERS

    cls = OPTIMIZERS.get(str(saved["class"]).lower())
    if cls is None:
        raise ValueError(
            f"cannot rebuild optimizer {saved['class']!r}; pass optimizer=... to Trainer.resume"
        )
    accepted = inspect.signature(cls).parameters
    kwargs = {}
    for key, value in saved["hyperparameters"].items():
        if key not in accepted:
            continue
        if isinstance(value, dict) and "schedule" in value:
            fields = {k: v for k, v in value.items() if k != "schedule"}
            value = getattr(schedules, value["schedule"])(**fields)
        elif isinstance(value, dict):
            raise ValueError(
                f"cannot rebuild the optimizer's {key}={value['unserializable']}; "
                "pass optimizer=... to Trainer.resume"
            )
        kwargs[key] = value
    return cls(**kwargs)


def _build_network(state: dict[str, Any]) -> Any:
    from . import networks

    net = state["network"]
    cls = getattr(networks, str(net.get("class")), None)
    if cls is None or net.get("config") is None:
        raise ValueError(
            f"cannot rebuild a {net.get('class')} from the checkpoint; pass network=..."
        )
    accepted = inspect.signature(cls).parameters
    config = {k: v for k, v in net["config"].items() if k in accepted}
    return cls(**config, dtype=state["dtype"])
