"""The book's optimizer race on f(x, y) = x**2/20 + y**2 (``ch06/optimizer_compare_naive.py``).

The valley is 20 times steeper in y than in x.  From (-7, 2), 30 updates with the
book's learning rates: SGD 0.95, Momentum 0.1, AdaGrad 1.5, Adam 0.3.  xpscratch adds
Nesterov at 0.1 (Momentum's rate, so the two differ only in where the gradient is
taken) and RMSprop at 0.1 (its squared-gradient average starts at 0, so its first
step is 10*lr = 1 in each coordinate, like AdaGrad's first step of 1.5).

The parameters are two 1-element arrays on the active backend and the updates are
the library's optimizer classes, as in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import backend as _backend
from ..optim import make_optimizer
from ._common import ExperimentResult, ExperimentSettings, meta, resolve_settings, run_context

NAME = "optimizer_compare_naive"
DESCRIPTION = "six optimizers on f(x, y) = x^2/20 + y^2 from (-7, 2), 30 steps (fig. 6-8)"


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The book's settings (``FULL``, also ``QUICK``: it is instant)."""

    experiment: ClassVar[str] = NAME
    steps: int = 30  # the book's 30 updates
    start: tuple[float, ...] = (-7.0, 2.0)
    # the book's, plus Nesterov at Momentum's rate and RMSprop at 0.1 (see above)
    learning_rates: dict[str, float] = field(
        default_factory=lambda: {
            "SGD": 0.95,
            "Momentum": 0.1,
            "AdaGrad": 1.5,
            "Adam": 0.3,
            "Nesterov": 0.1,
            "RMSprop": 0.1,
        }
    )


FULL = Settings()
QUICK = FULL  # already instant: quick changes nothing


def f(x: Any, y: Any) -> Any:
    """The book's test function x**2/20 + y**2 (minimum 0 at the origin)."""
    return x * x / 20.0 + y * y


def df(x: Any, y: Any) -> tuple[Any, Any]:
    """Its gradient (x/10, 2y)."""
    return x / 10.0, 2.0 * y


@dataclass
class OptimizerCompareNaiveResult(ExperimentResult):
    trajectories: dict[str, list[list[float]]]  # name -> [[x, y], ...]: start + each update
    final_distance: dict[str, float]  # distance from (0, 0) after the last update
    start_distance: float

    def summary(self) -> str:
        ranked = sorted(self.final_distance.items(), key=lambda kv: kv[1])
        dist = ", ".join(f"{k} {v:.3g}" for k, v in ranked)
        steps = self.settings.steps
        return (
            f"distance from (0,0) after {steps} steps (start {self.start_distance:.3g}): {dist}\n"
            f"SGD y-sign changes: {sign_changes([p[1] for p in self.trajectories['SGD']])}"
            f"/{steps} (zig-zag across the valley)"
        )


def sign_changes(values: list[float]) -> int:
    """How often consecutive values change sign."""
    return sum(1 for a, b in zip(values, values[1:], strict=False) if a * b < 0)


def run_optimizer_compare_naive(
    *,
    quick: bool = False,
    dtype: str | None = None,
    **overrides: Any,
) -> OptimizerCompareNaiveResult:
    """Run each optimizer for ``steps`` updates on f; no data and no randomness involved."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        trajectories: dict[str, list[list[float]]] = {}
        for name, lr in s.learning_rates.items():
            optimizer = make_optimizer(name, lr=float(lr))
            params = {
                "x": _backend.asarray([s.start[0]], dt),
                "y": _backend.asarray([s.start[1]], dt),
            }
            xp = b.xp
            history = [xp.concat([params["x"], params["y"]])]
            for _ in range(s.steps):
                gx, gy = df(params["x"], params["y"])
                optimizer.update(params, {"x": gx, "y": gy})
                history.append(xp.concat([params["x"], params["y"]]))  # a new array: a copy
            trajectories[name] = _backend.to_numpy(xp.stack(history)).tolist()  # one sync
        final = {k: math.hypot(*v[-1]) for k, v in trajectories.items()}
        return OptimizerCompareNaiveResult(
            settings=s,
            **meta(b, dt, None, None, start),
            trajectories=trajectories,
            final_distance=final,
            start_distance=math.hypot(*s.start),
        )
