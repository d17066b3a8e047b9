"""A training run's state: collected from its parts, validated once, restored, resumed.

:func:`trainer_state` gathers ``{backend, dtype, network, optimizer, trainer, history,
callbacks}``, each part described by its owner (the network's ``state_dict`` and
``config``, the optimizer's ``get_config``/``state_dict``, each callback's
``state_dict`` under its ``state_key``).  :func:`check_trainer_state` refuses a state
that does not fit before anything is changed, so :func:`load_trainer_state` either
applies all of it or none.  Checkpoints written before the callbacks existed (with a
top-level ``best_state``) still load.
"""

from __future__ import annotations

import functools
import inspect
import os
from os import PathLike
from typing import Any

from .. import checkpoint as _checkpoint
from .. import networks as _networks
from .._interrupts import deferred_interrupts
from ..backend import asarray, backend_name, device_of, namespace
from ..optim import optimizer_from_config
from .history import NonFiniteLossError

# a xpscratch.training.Trainer: the loop imports this module, so it is not imported here
Trainer = Any

__all__ = [
    "Checkpointing",
    "augment_state",
    "check_network_arrays",
    "check_trainer_state",
    "copy_network_state",
    "load_network_state",
    "load_trainer_state",
    "network_state",
    "on_device",
    "positive",
    "resume_arguments",
    "rewind",
    "run_settings",
    "trainer_state",
]


def positive(name: str, value: Any) -> None:
    """Refuse anything but a positive int, naming the argument."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


# -- a network's state: its own state_dict, or its params for a minimal network ----------


def network_state(network: Any, *, copy: bool = True) -> dict[str, Any]:
    """The network's state: copies (a snapshot), or with ``copy=False`` its live arrays."""
    if not hasattr(network, "state_dict"):
        state = {"params": dict(network.params), "buffers": {}, "rng": {}}
    elif _takes_copy(type(network)):
        return network.state_dict(copy=copy)
    else:  # a network of the user's: its state_dict may hand out live arrays
        state = network.state_dict()
    if copy:
        for group in ("params", "buffers"):
            arrays = state.get(group, {})
            state[group] = {k: namespace(v).asarray(v, copy=True) for k, v in arrays.items()}
    return state


@functools.cache
def _takes_copy(cls: type) -> bool:
    """Whether ``cls.state_dict`` takes ``copy=`` (asked once per class, not per step)."""
    try:
        return "copy" in inspect.signature(cls.state_dict).parameters
    except (TypeError, ValueError):
        return False


def load_network_state(network: Any, state: dict[str, Any]) -> None:
    if hasattr(network, "load_state_dict"):
        network.load_state_dict(state)
        return
    for key, value in state["params"].items():
        target = network.params[key]
        target[...] = asarray(value, target.dtype, like=target)


def copy_network_state(network: Any) -> dict[str, Any]:
    state = network_state(network, copy=False)  # copied here, also for a user's network
    return {
        "params": {k: namespace(v).asarray(v, copy=True) for k, v in state["params"].items()},
        "buffers": {k: namespace(v).asarray(v, copy=True) for k, v in state["buffers"].items()},
        "rng": {k: dict(v) for k, v in state["rng"].items()},
    }


def on_device(state: dict[str, Any], network: Any) -> dict[str, Any]:
    """A (host) network state moved onto the network's backend, device and dtypes."""
    current = network_state(network, copy=False)  # only its dtypes and devices
    out: dict[str, Any] = {"rng": {k: dict(v) for k, v in state.get("rng", {}).items()}}
    for group in ("params", "buffers"):
        out[group] = {
            k: asarray(v, current[group][k].dtype, like=current[group][k])
            for k, v in state.get(group, {}).items()
        }
    return out


def check_network_arrays(what: str, saved: dict[str, Any], network: Any) -> None:
    """Refuse (before anything is changed) a network state whose names or shapes differ."""
    _check_arrays(what, saved, network_state(network, copy=False))


def _check_arrays(what: str, saved: dict[str, Any], current: dict[str, Any]) -> None:
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


def augment_state(augment: Any) -> dict[str, Any] | None:
    state_dict = getattr(augment, "state_dict", None)
    return None if state_dict is None else state_dict()


def rewind(
    network: Any, augment: Any, start: dict[str, Any], augment_start: dict[str, Any] | None
) -> None:
    """Undo a training step that failed before its update was stored.

    ``start`` is the :func:`network_state` and ``augment_start`` the augment's state
    taken before the step.  Until the update is stored a step changes only the
    network's running statistics (new arrays: the old ones are intact, see
    :class:`~xpscratch.layers.BatchNormalization`), its dropout streams and the
    augment's stream, so putting those back restores the run.
    """
    if (start["buffers"] or start["rng"]) and hasattr(network, "load_state_dict"):
        saved = {"params": {}, "buffers": start["buffers"], "rng": start["rng"]}
        network.load_state_dict(saved, strict=False)
    if augment_start is not None:
        augment.load_state_dict(augment_start)


# -- the whole run ------------------------------------------------------------------------


def trainer_state_dtype(tr: Trainer) -> str:
    xp = namespace(next(iter(tr.network.params.values())))
    return "float64" if tr.dtype == xp.float64 else "float32"


def trainer_state(tr: Trainer) -> dict[str, Any]:
    """Everything needed to continue ``tr``'s run exactly (arrays stay on the device)."""
    ref = next(iter(tr.network.params.values()))
    xp = namespace(ref)
    opt = tr.optimizer
    run = run_settings(tr)
    return {
        "backend": backend_name(xp),
        "device": str(device_of(ref)),
        "dtype": trainer_state_dtype(tr),
        "network": {
            "class": type(tr.network).__name__,
            "config": getattr(tr.network, "config", None),
            "state": network_state(tr.network),
        },
        "optimizer": {
            "class": type(opt).__name__,
            "hyperparameters": opt.get_config(),
            "step": opt.step,
            "state": opt.state_dict(),
        },
        "trainer": {
            "seed": tr.seed,
            "shuffle_rng": tr._shuffle.state_dict(),
            "augment": augment_state(tr.augment),
            "epoch": tr.current_epoch,
            "iter_in_epoch": tr.iter_in_epoch,
            "iteration": tr.current_iter,
            "train_size": tr.train_size,
            "data_fingerprint": training_data_fingerprint(tr),
            "mini_batch_size": tr.batch_size,
            "stopped_early": tr.stopped_early,
            "best_epoch": tr.best_epoch,
            "best_val_acc": tr.best_val_acc,
            "epochs_since_best": tr.epochs_since_best,
            "run": run,
        },
        "history": {
            "train_loss": list(tr.train_loss_list),
            "train_acc": list(tr.train_acc_list),
            "test_acc": list(tr.test_acc_list),
            "val_acc": list(tr.val_acc_list),
        },
        "callbacks": {
            cb.state_key: cb.state_dict() for cb in tr.callbacks if cb.state_key is not None
        },
    }


def training_data_fingerprint(tr: Trainer) -> str:
    """:func:`xpscratch.checkpoint.data_fingerprint` of ``tr``'s training set (computed
    once: the data cross to the host for it a single time)."""
    key = (id(tr.x_train), id(tr.t_train))
    cached = getattr(tr, "_data_fingerprint", None)
    if cached is None or cached[0] != key:
        cached = (key, _checkpoint.data_fingerprint(tr.x_train, tr.t_train))
        tr._data_fingerprint = cached
    return cached[1]


def run_settings(tr: Trainer) -> dict[str, Any]:
    """The settings :func:`resume_arguments` rebuilds ``tr`` with (the sugar's arguments)."""
    from_callbacks: dict[str, Any] = {
        "early_stopping_patience": None,
        "restore_best": False,
        "checkpoint_every": 1,
        "autosave": False,
        "progress": False,
    }
    for cb in tr.callbacks:
        from_callbacks.update(cb.run_settings())
    return {
        "epochs": tr.epochs,
        "max_iterations": tr.max_iterations,
        "evaluate_sample_num_per_epoch": tr.evaluate_sample_num_per_epoch,
        "early_stopping_patience": from_callbacks["early_stopping_patience"],
        "restore_best": from_callbacks["restore_best"],
        "log_every": tr.log_every,
        "checkpoint_every": from_callbacks["checkpoint_every"],
        "autosave": from_callbacks["autosave"],
        "verbose": tr.verbose,  # a quiet run resumes quiet
        "progress": from_callbacks["progress"],
    }


def _callback_states(state: dict[str, Any]) -> dict[str, Any]:
    if "callbacks" in state:
        return dict(state["callbacks"])
    # written before the callbacks existed: the best weights sat at the top level
    return {"early_stopping": {"best_state": state.get("best_state")}}


def check_trainer_state(tr: Trainer, state: dict[str, Any], *, new_data: bool = False) -> None:
    """Refuse a state that does not fit ``tr`` with a ValueError naming the difference.

    A state saved in another dtype is refused; one saved with other training data (its
    fingerprint differs) too, unless ``new_data=True`` says so on purpose.
    """
    try:
        net, opt, trs = state["network"], state["optimizer"], state["trainer"]
        state["history"]["train_loss"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a Trainer state: missing {exc}") from None
    _check_dtype(tr, state.get("dtype"))
    saved_aug, my_aug = trs.get("augment"), augment_state(tr.augment)
    if (saved_aug is None) != (my_aug is None):
        raise ValueError(
            "the checkpoint was saved "
            + ("with" if saved_aug is not None else "without")
            + " an augment state, this trainer has "
            + ("one" if my_aug is not None else "none")
            + ": pass the same augment= as the saved run"
        )
    _networks.check_saved_network(net.get("class"), net.get("config"), tr.network)
    _check_arrays("network", net["state"], network_state(tr.network, copy=False))
    if opt.get("class") != type(tr.optimizer).__name__:
        raise ValueError(
            f"the checkpoint was trained with {opt.get('class')}, this trainer uses "
            f"{type(tr.optimizer).__name__}; pass optimizer={opt.get('class')!r} "
            "(or use Trainer.resume, which rebuilds it)"
        )
    params = tr.network.params
    for slot in tr.optimizer.slots:
        saved = opt["state"].get(slot) or {}
        if saved:
            _check_arrays(f"optimizer slot {slot!r}", {"params": saved}, {"params": params})
    if int(trs["train_size"]) != tr.train_size:
        raise ValueError(
            f"the checkpoint was trained on {trs['train_size']} samples, this trainer has "
            f"{tr.train_size}: resume with the same training set"
        )
    _check_data(tr, trs.get("data_fingerprint"), new_data)
    _check_counters(tr, trs, len(state["history"]["train_loss"]))
    if int(trs["iter_in_epoch"]) and int(trs["mini_batch_size"]) != tr.batch_size:
        raise ValueError(
            f"the checkpoint stopped mid-epoch with mini_batch_size "
            f"{trs['mini_batch_size']}; this trainer uses {tr.batch_size}"
        )
    saved_callbacks = _callback_states(state)
    for cb in tr.callbacks:
        if cb.state_key is not None and saved_callbacks.get(cb.state_key) is not None:
            cb.check_state(saved_callbacks[cb.state_key], tr)


def _check_dtype(tr: Trainer, dtype: Any) -> None:
    mine = trainer_state_dtype(tr)
    if dtype is not None and dtype != mine:
        raise ValueError(
            f"the checkpoint was trained in {dtype}, this trainer's network is {mine}: build "
            f"the network with dtype={dtype!r} (Trainer.resume without network= rebuilds it)"
        )


def _check_data(tr: Trainer, fingerprint: Any, new_data: bool) -> None:
    if fingerprint is not None and not new_data and fingerprint != training_data_fingerprint(tr):
        raise ValueError(
            "the checkpoint was trained on other training data (its fingerprint differs): "
            "resume with the same x_train and t_train, or pass new_data=True to continue "
            "on these on purpose"
        )


def _check_counters(tr: Trainer, trs: dict[str, Any], losses: int) -> None:
    """Refuse counters no run passes through (a damaged or edited file): they failed
    later, inside ``train()``, or trained on from a wrong position."""
    names = ("iteration", "epoch", "iter_in_epoch", "epochs_since_best")
    for name in names:
        v = trs.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(
                f"the checkpoint's {name} is {v!r}: a run's counters are non-negative "
                "integers (the file is damaged or was edited); use another checkpoint"
            )
    iteration, epoch, in_epoch = trs["iteration"], trs["epoch"], trs["iter_in_epoch"]
    problem = None
    if in_epoch > tr.iter_per_epoch:  # equal: the epoch end is owed
        problem = f"{in_epoch} updates into an epoch of {tr.iter_per_epoch}"
    elif epoch > iteration:
        problem = f"{epoch} epochs done in {iteration} updates"
    elif losses != iteration:
        problem = f"a loss history of {losses} losses for {iteration} updates"
    if problem is not None:
        raise ValueError(
            f"the checkpoint's counters are inconsistent ({problem}): the file is damaged "
            "or was edited; use another checkpoint"
        )


def load_trainer_state(tr: Trainer, state: dict[str, Any], *, new_data: bool = False) -> None:
    """Apply a :func:`trainer_state` (device or host arrays): all of it, after checking.

    The loading runs with Ctrl-C held off, so an interrupt leaves the trainer as it was
    or wholly loaded (the interrupt is raised then), never half.
    """
    check_trainer_state(tr, state, new_data=new_data)
    with deferred_interrupts():
        _apply_trainer_state(tr, state)


def _apply_trainer_state(tr: Trainer, state: dict[str, Any]) -> None:
    net, opt, trs, hist = state["network"], state["optimizer"], state["trainer"], state["history"]
    load_network_state(tr.network, net["state"])
    opt_state = opt["state"]
    if any(opt_state.get(slot) for slot in tr.optimizer.slots):
        tr.optimizer.load_state_dict(opt_state, tr.network.params)
    else:  # saved before the first update: no slot arrays yet
        tr.optimizer.state = None
        tr.optimizer.step = int(opt_state.get("step", 0))
    tr.seed = int(trs["seed"])
    tr._shuffle.load_state_dict(trs["shuffle_rng"])
    if trs.get("augment") is not None:
        tr.augment.load_state_dict(trs["augment"])
    tr.restore_counters(
        epoch=int(trs["epoch"]),
        iter_in_epoch=int(trs["iter_in_epoch"]),
        iteration=int(trs["iteration"]),
        history=hist,
    )
    tr.stopped_early = bool(trs["stopped_early"])
    tr.best_epoch = trs["best_epoch"]
    tr.best_val_acc = trs["best_val_acc"]
    tr.epochs_since_best = int(trs["epochs_since_best"])
    saved_callbacks = _callback_states(state)
    for cb in tr.callbacks:
        if cb.state_key is not None and saved_callbacks.get(cb.state_key) is not None:
            cb.load_state_dict(saved_callbacks[cb.state_key], tr)


def resume_arguments(
    path: str | PathLike, network: Any, kwargs: dict[str, Any]
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(network, Trainer keyword arguments, state) that continue the run saved at ``path``.

    Without ``network``, it is rebuilt from the saved class, config and dtype; without
    an ``optimizer`` argument, from the saved class and hyperparameters.  The run
    settings default to the saved ones, and automatic checkpoints keep going to ``path``.
    """
    state = _checkpoint.load_checkpoint(path)
    if network is None:
        saved = state["network"]
        network = _networks.network_from_config(
            saved.get("class"), saved.get("config"), state["dtype"]
        )
    kwargs = dict(kwargs)
    if "optimizer" not in kwargs:
        saved = state["optimizer"]
        kwargs["optimizer"] = optimizer_from_config(saved["class"], saved["hyperparameters"])
    run = dict(state["trainer"].get("run", {}))
    run["mini_batch_size"] = state["trainer"]["mini_batch_size"]
    run["seed"] = state["trainer"]["seed"]
    if run.pop("autosave", False):
        run["checkpoint_path"] = path
    for key, value in run.items():
        kwargs.setdefault(key, value)
    return network, kwargs, state


class Checkpointing:
    """The Trainer's state and checkpoint methods (its base class; the work is above)."""

    # The run's length may change between train() calls and is honoured (issue 22 item 19:
    # ``tr.epochs = 5`` after train() was ignored); the batch size may not: the run's
    # epochs and its saved position are counted in its batches.

    @property
    def epochs(self) -> int | None:
        """Train this many epochs in all (None: ``max_iterations`` alone decides); setting
        it after :meth:`train` makes the next ``train()`` go on to the new end."""
        return self._epochs

    @epochs.setter
    def epochs(self, value: int | None) -> None:
        self._set_length("epochs", value)

    @property
    def max_iterations(self) -> int | None:
        """Stop after this many updates in all, even mid-epoch (None: no such limit)."""
        return self._max_iterations

    @max_iterations.setter
    def max_iterations(self, value: int | None) -> None:
        self._set_length("max_iterations", value)

    def _set_length(self, name: str, value: Any) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")
        if "iter_per_epoch" not in vars(self):  # being built: __init__ sets max_iter
            setattr(self, f"_{name}", value)
            return
        epochs = value if name == "epochs" else self._epochs
        max_iterations = value if name == "max_iterations" else self._max_iterations
        limits = [] if max_iterations is None else [max_iterations]
        if epochs is not None:
            limits.append(epochs * self.iter_per_epoch)
        if not limits:
            raise ValueError(f"{name}=None: give epochs or max_iterations, or the run never ends")
        setattr(self, f"_{name}", value)
        self.max_iter = min(limits)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        if "_batch_size" in vars(self) and value != self._batch_size:
            raise AttributeError(
                f"the mini-batch size ({self._batch_size}) is fixed when a Trainer is built: "
                "its epochs and saved position are counted in its batches; build a new Trainer "
                "(or Trainer.resume(path, ..., mini_batch_size=...) from an epoch's end)"
            )
        self._batch_size = value

    @property
    def early_stopping_patience(self) -> int | None:
        return run_settings(self)["early_stopping_patience"]

    @property
    def restore_best(self) -> bool:
        return run_settings(self)["restore_best"]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (arrays stay on the device).

        A step cut short by an interrupt is finished first (its loss, callbacks and
        epoch end), so the state is one the uninterrupted run passes through; a diverged
        run's is taken as it is.
        """
        try:
            self._finish_step()
        except NonFiniteLossError:
            pass  # save_checkpoint decides whether a diverged run may be saved
        return trainer_state(self)

    def load_state_dict(self, state: dict[str, Any], *, new_data: bool = False) -> None:
        """Restore a :meth:`state_dict` (device or host arrays), checking everything first.

        A state from another architecture, optimizer type, dtype or training-set size is
        refused with a ValueError naming the difference, and nothing is changed; so is one
        trained on other data (a fingerprint of it is saved), unless ``new_data=True``.
        """
        load_trainer_state(self, state, new_data=new_data)

    def save_checkpoint(self, path: str | PathLike, *, allow_diverged: bool = False) -> None:
        """Write this run to ``path`` atomically (see :mod:`xpscratch.checkpoint`).

        A diverged run (a NaN/inf loss) is refused with :class:`NonFiniteLossError`, so
        it never replaces a good checkpoint; ``allow_diverged=True`` saves it, for
        inspection, but only to a path that holds no file yet.
        """
        try:
            self._finish_step()  # a step cut short by an interrupt: its loss, its epoch end
            self._check_losses()  # a report point: never save a diverged run silently
        except NonFiniteLossError as exc:
            if not allow_diverged:
                raise NonFiniteLossError(
                    f"{exc}. The run is not saved to {os.fspath(path)!r}: it would replace "
                    "a good checkpoint with diverged weights (save_checkpoint(new_path, "
                    "allow_diverged=True) keeps it under a new name)",
                    iteration=exc.iteration,
                    epoch=exc.epoch,
                    loss=exc.loss,
                ) from None
            if os.path.lexists(path):
                raise FileExistsError(
                    f"{os.fspath(path)!r} exists: a diverged run is saved only under a new "
                    "name, never over a checkpoint"
                ) from None
        _checkpoint.save_checkpoint(path, self, allow_diverged=allow_diverged)

    def load_checkpoint(self, path: str | PathLike, *, new_data: bool = False) -> None:
        """Continue from a checkpoint: weights, optimizer, RNG positions, counters, history
        (``new_data``: see :meth:`load_state_dict`)."""
        self.load_state_dict(_checkpoint.load_checkpoint(path), new_data=new_data)

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
        new_data: bool = False,
        **kwargs: Any,
    ) -> Any:
        """A Trainer that continues the run saved at ``path`` (data must be given again).

        Without ``network``, it is rebuilt from the saved config and dtype on the active
        backend; without ``optimizer``, from the saved class and hyperparameters.  The
        run settings (epochs, max_iterations, ...) default to the saved ones and
        automatic checkpoints keep going to ``path``.  The training data must be the
        saved run's (``new_data=True`` continues on other data on purpose).
        """
        network, kwargs, state = resume_arguments(path, network, kwargs)
        trainer = cls(network, x_train, t_train, x_test, t_test, **kwargs)
        trainer.load_state_dict(state, new_data=new_data)
        return trainer
