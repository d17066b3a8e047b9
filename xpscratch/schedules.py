"""Learning-rate schedules: callables ``step -> lr`` on Python floats.

Pass one as any optimizer's ``lr``: ``SGD(lr=CosineDecay(0.1, total_steps=2000))``.
``step`` counts the updates done before this one (0 for the first update).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ._checks import check_nonnegative, check_positive, check_positive_int

__all__ = [
    "CosineDecay",
    "LinearDecay",
    "Schedule",
    "StepDecay",
    "schedule_from_config",
    "schedule_to_config",
]


class Schedule:
    """Base class of the schedules (any callable ``int -> float`` also works)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError


def _check(schedule: Schedule, **rules: Callable[[str, Any], Any]) -> None:
    """Validate the named fields, naming the schedule and the field; store plain numbers."""
    kind = type(schedule).__name__
    for field, check in rules.items():
        value = check(f"{kind}.{field}", getattr(schedule, field))
        object.__setattr__(schedule, field, value)


def _decay_progress(step: int, warmup_steps: int, total_steps: int) -> float:
    """How far the decay has gone after warm-up: 0 at its start, 1 from total_steps on."""
    span = max(1, total_steps - warmup_steps)
    return min(1.0, (step - warmup_steps) / span)


def _warmup(lr: float, warmup_steps: int, step: int) -> float:
    # linear warm-up from lr/warmup_steps to lr, so the first step is never zero
    return lr * (step + 1) / warmup_steps


def _check_warmup(name: str, value: Any) -> int:
    return check_positive_int(name, value, allow_zero=True)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """lr * gamma ** (step // step_size): multiply by gamma every step_size updates."""

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _check(self, lr=check_nonnegative, step_size=check_positive_int, gamma=check_positive)

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class LinearDecay(Schedule):
    """From lr down to end_lr in a straight line over total_steps, then constant."""

    lr: float
    total_steps: int
    end_lr: float = 0.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _check(
            self,
            lr=check_nonnegative,
            total_steps=check_positive_int,
            end_lr=check_nonnegative,
            warmup_steps=_check_warmup,
        )

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(self.lr, self.warmup_steps, step)
        frac = _decay_progress(step, self.warmup_steps, self.total_steps)
        return self.lr + (self.end_lr - self.lr) * frac


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Loshchilov & Hutter (2017) without restarts: half a cosine from lr to end_lr.

    With ``warmup_steps``, a linear warm-up comes first (Goyal et al. 2017).
    """

    lr: float
    total_steps: int
    end_lr: float = 0.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _check(
            self,
            lr=check_nonnegative,
            total_steps=check_positive_int,
            end_lr=check_nonnegative,
            warmup_steps=_check_warmup,
        )

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return _warmup(self.lr, self.warmup_steps, step)
        frac = _decay_progress(step, self.warmup_steps, self.total_steps)
        return self.end_lr + 0.5 * (self.lr - self.end_lr) * (1.0 + math.cos(math.pi * frac))


def schedule_to_config(schedule: Schedule) -> dict[str, Any]:
    """``{"schedule": class name, field: value, ...}``: JSON data for a checkpoint."""
    return {"schedule": type(schedule).__name__, **asdict(schedule)}


def schedule_from_config(config: dict[str, Any]) -> Schedule:
    """The schedule :func:`schedule_to_config` describes."""
    classes = {c.__name__: c for c in (StepDecay, LinearDecay, CosineDecay)}
    name = config.get("schedule")
    if name not in classes:
        raise ValueError(f"unknown schedule {name!r}; known: {sorted(classes)}")
    return classes[name](**{k: v for k, v in config.items() if k != "schedule"})
