"""The Trainer's arguments: the optimizer made, the data placed and checked, the settings
checked, and the book-style keyword arguments turned into the callbacks they stand for."""

from __future__ import annotations

from os import PathLike
from typing import Any

from ..backend import asarray, namespace
from ..functions import LabelError, check_labels, check_one_hot
from ..optim import Optimizer, make_optimizer
from .callbacks import Callback, Checkpoint, EarlyStopping, Progress
from .state import positive

__all__ = [
    "check_data_labels",
    "check_settings",
    "make_trainer_optimizer",
    "place_data",
    "sugar_callbacks",
]


def make_trainer_optimizer(optimizer: Any, optimizer_param: dict[str, Any] | None) -> Optimizer:
    if isinstance(optimizer, str):
        params = {"lr": 0.01} if optimizer_param is None else dict(optimizer_param)
        return make_optimizer(optimizer, **params)
    if isinstance(optimizer, Optimizer):
        if optimizer_param is not None:
            raise ValueError(
                "optimizer_param is only used with an optimizer name; set the "
                "hyperparameters on the Optimizer instance instead"
            )
        return optimizer
    raise TypeError(f"optimizer must be a name or an Optimizer, got {optimizer!r}")


def sugar_callbacks(
    verbose: bool,
    progress: bool | None,
    early_stopping_patience: int | None,
    restore_best: bool,
    checkpoint_path: str | PathLike | None,
    checkpoint_every: int,
) -> list[Callback]:
    """The callbacks the book-style keyword arguments stand for, in the order they run."""
    out: list[Callback] = []
    if early_stopping_patience is not None or restore_best:
        out.append(EarlyStopping(early_stopping_patience, restore_best))
    if verbose if progress is None else progress:
        out.append(Progress())
    positive("checkpoint_every", checkpoint_every)
    if checkpoint_path is not None:
        out.append(Checkpoint(checkpoint_path, checkpoint_every))
    return out


def place_data(dtype: Any, ref: Any, *arrays: Any) -> list[Any]:
    """The (x, t) pairs for train, test and validation placed and checked pairwise."""
    placed = [_place(a, dtype, ref) for a in arrays]
    for name, x, t in zip(("train", "test", "val"), placed[0::2], placed[1::2], strict=True):
        if (x is None) != (t is None):
            raise ValueError(f"give both x_{name} and t_{name}, or neither")
        if x is not None and x.shape[0] != t.shape[0]:
            raise ValueError(f"x_{name} has {x.shape[0]} samples but t_{name} has {t.shape[0]}")
    for name, x in zip(("train", "test", "val"), placed[0::2], strict=True):
        if x is not None and x.shape[0] == 0:
            raise ValueError(
                f"x_{name} is empty: the Trainer needs at least one {name} sample (an "
                "accuracy of no samples is undefined); check the data's size or slicing"
            )
    return placed


def check_data_labels(network: Any, t_train: Any, t_test: Any, t_val: Any) -> None:
    """Refuse labels outside ``[0, output_size)`` or of a float dtype, naming the set.

    Once, where the data enters (a read of the labels, so one sync on a device): the
    loss then checks nothing per step on a device.  One-hot rows must each hold a single
    1 among zeros.  Networks that do not say their ``output_size`` are left to themselves.
    """
    classes = getattr(network, "output_size", None)
    if not isinstance(classes, int):
        return
    for name, t in (("t_train", t_train), ("t_test", t_test), ("t_val", t_val)):
        if t is None:
            continue
        try:
            check_labels(t, classes) if t.ndim == 1 else check_one_hot(t, classes)
        except LabelError as exc:
            raise LabelError(f"{name}: {exc}") from None


def check_settings(
    mini_batch_size: Any, epochs: Any, max_iterations: Any, log_every: Any, evaluate_num: Any
) -> None:
    positive("mini_batch_size", mini_batch_size)
    for name, value in (("epochs", epochs), ("max_iterations", max_iterations)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")
    if log_every is not None:
        positive("log_every", log_every)
    if evaluate_num is not None:
        positive("evaluate_sample_num_per_epoch", evaluate_num)


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
