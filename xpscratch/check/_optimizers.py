"""Group 3, optimizers: every optimizer's trajectory on a fixed problem, with and without
a learning-rate schedule, against NumPy's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np  # the problem's seeded coefficients, made on the host

from ..backend import asarray, namespace, to_numpy
from ..optim import SGD, AdaGrad, Adam, AdamW, Momentum, Nesterov, Optimizer, RMSprop
from ..schedules import CosineDecay, LinearDecay, StepDecay
from ._compare import Group
from ._target import Target

STEPS = 100
OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {
    "SGD": lambda: SGD(lr=0.05),
    "Momentum": lambda: Momentum(lr=0.02, momentum=0.9),
    "Nesterov": lambda: Nesterov(lr=0.02, momentum=0.9),
    "AdaGrad": lambda: AdaGrad(lr=0.3),
    "RMSprop": lambda: RMSprop(lr=0.02),
    "Adam": lambda: Adam(lr=0.05),
    "AdamW": lambda: AdamW(lr=0.05, weight_decay=0.1),
    "Momentum+cosine warm-up": lambda: Momentum(
        lr=CosineDecay(0.05, STEPS, end_lr=0.001, warmup_steps=10)
    ),
    "Adam+step decay": lambda: Adam(lr=StepDecay(0.05, 30, gamma=0.5)),
    "SGD+linear decay": lambda: SGD(lr=LinearDecay(0.1, STEPS, end_lr=0.01)),
}
SHAPES = {"W1": (3, 4), "b1": (4,), "W2": (4, 2)}


def trajectory(make: Callable[[], Optimizer], dtype: str, steps: int) -> dict[str, np.ndarray]:
    """``f(p) = sum(a p^2 / 2 + b cos(3 p))``: curved, with many minima, so that every
    optimizer's path depends on its whole history; every parameter after every step."""
    rng = np.random.default_rng(5)
    params = {k: asarray(rng.standard_normal(s), dtype) for k, s in SHAPES.items()}
    coef = {
        k: (asarray(rng.uniform(0.2, 2.0, s), dtype), asarray(rng.uniform(0.1, 0.5, s), dtype))
        for k, s in SHAPES.items()
    }
    opt = make()
    path: dict[str, list[np.ndarray]] = {k: [] for k in SHAPES}
    for _ in range(steps):
        grads = {}
        for k, p in params.items():
            xp = namespace(p)
            a, b = coef[k]
            grads[k] = a * p - 3.0 * b * xp.sin(3.0 * p)
        opt.update(params, grads)
        for k, p in params.items():
            path[k].append(to_numpy(p))
    return {k: np.stack(v) for k, v in path.items()}


def check_optimizers(t: Target, g: Group) -> None:
    steps = t.steps or STEPS
    for name, make in OPTIMIZERS.items():
        with g.case(name):
            mine, ref = t.both(
                ("optimizer", name, steps),
                lambda dtype, make=make: trajectory(make, dtype, steps),
            )
            for k in ref:
                g.close(f"{name} {k} over {steps} steps", mine[k], ref[k], t.tol.trajectory)
