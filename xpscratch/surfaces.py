"""The 2-D test surfaces of the optimizer experiments, with exact gradients and Hessians.

A module of its own because both :mod:`xpscratch.experiments.optimizer_zoo` (which
runs the optimizers on them) and :mod:`xpscratch.plot.optimization` (which draws their
contours) need them, and a figure must not import an experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["SURFACES", "Surface"]


@dataclass(frozen=True)
class Surface:
    """A 2-D test function with its gradient and exact Hessian.

    ``f``, ``grad`` and ``hessian`` take the coordinates ``x, y`` (arrays of any one
    shape, on any backend, or Python floats) and use only arithmetic operators, so the
    same code runs the optimizers on a device and draws contours on a NumPy grid.
    ``hessian`` returns (h_xx, h_xy, h_yy).  ``minima`` are the points distance is
    measured to (the nearest); for the saddle it is the saddle point itself.
    """

    name: str
    formula: str
    f: Callable[[Any, Any], Any]
    grad: Callable[[Any, Any], tuple[Any, Any]]
    hessian: Callable[[Any, Any], tuple[Any, Any, Any]]
    minima: tuple[tuple[float, float], ...]
    target: str  # "minimum": reach within tolerance; "escape": |y| > escape_radius


def _himmelblau_grad(x: Any, y: Any) -> tuple[Any, Any]:
    a, b = x * x + y - 11.0, x + y * y - 7.0
    return 4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface(
            "bowl",
            "x²/20 + y²",
            lambda x, y: x * x / 20.0 + y * y,
            lambda x, y: (x / 10.0, 2.0 * y),
            lambda x, y: (0.1, 0.0, 2.0),
            ((0.0, 0.0),),
            "minimum",
        ),
        Surface(
            "saddle",
            "x² - y²",
            lambda x, y: x * x - y * y,
            lambda x, y: (2.0 * x, -2.0 * y),
            lambda x, y: (2.0, 0.0, -2.0),
            ((0.0, 0.0),),
            "escape",
        ),
        Surface(
            "rosenbrock",
            "(1 - x)² + 100 (y - x²)²",
            lambda x, y: (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2,
            lambda x, y: (-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)),
            lambda x, y: (1200.0 * x * x - 400.0 * y + 2.0, -400.0 * x, 200.0),
            ((1.0, 1.0),),
            "minimum",
        ),
        Surface(
            "himmelblau",
            "(x² + y - 11)² + (x + y² - 7)²",
            lambda x, y: (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2,
            _himmelblau_grad,
            lambda x, y: (
                12.0 * x * x + 4.0 * y - 42.0,
                4.0 * (x + y),
                12.0 * y * y + 4.0 * x - 26.0,
            ),
            (
                (3.0, 2.0),
                (-2.805118086952745, 3.131312518250573),
                (-3.779310253377747, -3.283185991286170),
                (3.584428340330492, -1.848126526964404),
            ),
            "minimum",
        ),
    )
}
