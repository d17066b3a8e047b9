"""Every optimizer, and Newton's method, on four 2-D surfaces.

:mod:`.optimizer_compare_naive` extended: SGD, Momentum, Nesterov, AdaGrad, RMSprop
and Adam (the library's classes, updating a params dict ``{"xy": shape-(2,) array}``
on the active backend) and Newton's method, x <- x - H^-1 g with the exact Hessian H
(a 2x2 solve written out by hand), as the second-order reference.  The surfaces:

* ``bowl``: the book's x^2/20 + y^2 from (-7, 2), with the book's learning rates.
  A quadratic, so one Newton step lands exactly on the minimum.
* ``saddle``: x^2 - y^2 from (1, 0.001), just off the saddle's stable direction (the
  x axis).  Every gradient method first slides towards the saddle point (0, 0) and
  then has to get away along y, where the gradient is as small as y is.  "Escaped"
  means |y| > ``escape_radius``.  SGD's |y| grows by (1 + 2 lr) per step, so it
  lingers; momentum compounds that growth, and the adaptive methods divide the
  gradient by its own size, so they move at about lr per step however flat it is.
  Newton jumps *to* the saddle point in one step and stays there: it looks for a
  point where the gradient vanishes, and a saddle is one.  That is the point of
  including it.
* ``rosenbrock``: (1 - x)^2 + 100 (y - x^2)^2 from (-1.5, 2), minimum (1, 1) at the
  end of a long, curved, flat-bottomed valley.
* ``himmelblau``: Himmelblau's (x^2 + y - 11)^2 + (x + y^2 - 7)^2, four minima of
  value 0, started near its local maximum at (-0.27, -0.92), so that each method
  picks a minimum by where its first steps take it.  Distance is to the nearest.

Learning rates are per surface (``FULL.learning_rates``); Newton's entry is its
step size (1: the full Newton step).  Paths stay on the device until a run ends
(one transfer per method and surface); distances are computed from them on the host.
On JAX each path is one compiled program (all its steps in one ``lax.scan``): op by
op, JAX's dispatch of the ~16,000 tiny updates took 25 times NumPy's time.  Every other
backend runs the loop one update at a time, as the book does.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .. import _inplace
from .. import backend as _backend
from ..optim import functional_update, make_optimizer
from ..surfaces import SURFACES, Surface
from ._common import ExperimentResult, ExperimentSettings, meta, resolve_settings, run_context

NAME = "optimizer_zoo"
DESCRIPTION = "6 optimizers + Newton on a bowl, a saddle, Rosenbrock and Himmelblau (2-D)"

METHODS = ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "Newton")

# per surface and method; Newton's entry is its step size (1: the full Newton step)
_LEARNING_RATES: dict[str, dict[str, float]] = {
    # the book's (and optimizer_compare_naive's)
    "bowl": {
        "SGD": 0.95,
        "Momentum": 0.1,
        "Nesterov": 0.1,
        "AdaGrad": 1.5,
        "RMSprop": 0.1,
        "Adam": 0.3,
        "Newton": 1.0,
    },
    # one rate for all but AdaGrad, so only the update rule differs; AdaGrad's steps
    # shrink like lr/sqrt(t): at 0.01 it covers about 0.4 in 400 steps, never near (0, 0)
    "saddle": {
        "SGD": 0.01,
        "Momentum": 0.01,
        "Nesterov": 0.01,
        "AdaGrad": 0.1,
        "RMSprop": 0.01,
        "Adam": 0.01,
        "Newton": 1.0,
    },
    # SGD, Momentum and Nesterov share the largest stable rate (the curvature across
    # the valley is about 1000-2000)
    "rosenbrock": {
        "SGD": 1e-3,
        "Momentum": 1e-3,
        "Nesterov": 1e-3,
        "AdaGrad": 1.0,
        "RMSprop": 0.01,
        "Adam": 0.1,
        "Newton": 1.0,
    },
    "himmelblau": {
        "SGD": 0.01,
        "Momentum": 0.01,
        "Nesterov": 0.01,
        "AdaGrad": 0.5,
        "RMSprop": 0.05,
        "Adam": 0.1,
        "Newton": 1.0,
    },
}


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The settings (``FULL``, also ``QUICK``: a few seconds)."""

    experiment: ClassVar[str] = NAME
    surfaces: tuple[str, ...] = tuple(SURFACES)
    methods: tuple[str, ...] = METHODS
    # updates per surface: the book's 30 on the bowl; enough for SGD to leave the saddle
    steps: dict[str, int] = field(
        default_factory=lambda: {"bowl": 30, "saddle": 400, "rosenbrock": 2000, "himmelblau": 200}
    )
    start: dict[str, list[float]] = field(
        default_factory=lambda: {
            "bowl": [-7.0, 2.0],
            "saddle": [1.0, 1e-3],
            "rosenbrock": [-1.5, 2.0],
            "himmelblau": [-0.27, -0.92],
        }
    )
    # per surface and method (see _LEARNING_RATES)
    learning_rates: dict[str, dict[str, float]] = field(
        default_factory=lambda: copy.deepcopy(_LEARNING_RATES)
    )
    tolerance: float = 1e-3  # a minimum counts as reached within this distance
    escape_radius: float = 1.0  # the saddle counts as left once |y| exceeds this

    def check(self) -> None:
        unknown = [n for n in self.surfaces if n not in SURFACES]
        if unknown:
            raise ValueError(f"unknown surface(s) {unknown}; choose from {list(SURFACES)}")


FULL = Settings()
QUICK = FULL  # a few seconds: quick changes nothing


def newton_update(surface: Surface, p: Any, step_size: float = 1.0) -> Any:
    """One Newton step on the shape-(2,) array ``p``: p <- p - step * H^-1 g, returned
    (``p`` itself, changed in place, where arrays are writable; new on JAX).

    H^-1 g by the 2x2 inverse [[h_yy, -h_xy], [-h_xy, h_xx]] / det, written out: no
    linear-algebra routine needed, the same arithmetic on every backend.  Newton
    seeks a zero of the gradient, so it is drawn to maxima and saddle points as much
    as to minima.
    """
    xp = _backend.namespace(p)
    x, y = p[0], p[1]
    gx, gy = surface.grad(x, y)
    hxx, hxy, hyy = surface.hessian(x, y)
    det = hxx * hyy - hxy * hxy
    dx = (hyy * gx - hxy * gy) / det
    dy = (hxx * gy - hxy * gx) / det
    return _inplace.sub(p, step_size * xp.stack([dx, dy]), _backend.writable(p))


def descend(
    surface: Surface,
    method: str,
    lr: float,
    start: list[float],
    steps: int,
    dtype: str,
    *,
    compile: bool | str = "auto",
) -> list[list[float]]:
    """``steps`` updates of ``method`` from ``start``; the path (start included) on the host.

    On JAX ("auto" or True) the whole path is one compiled program (see
    :func:`compiled_path`); elsewhere, or with ``compile=False``, one update at a time.
    """
    b = _backend.get_backend()
    xp = b.xp
    params = {"xy": _backend.asarray([float(v) for v in start], dtype)}
    optimizer = None if method == "Newton" else make_optimizer(method, lr=float(lr))
    if _compiles(xp, compile) and steps > 0:
        state = {}
        if optimizer is not None:
            optimizer.init(params)
            state = optimizer.state
        count = xp.asarray(0, dtype=_backend.index_dtype(xp, b.device), device=b.device)
        program = compiled_path(surface, method, float(lr), steps, xp)
        return _backend.to_numpy(program(params["xy"], state, count)).tolist()  # one transfer
    history = [xp.asarray(params["xy"], copy=True)]
    for _ in range(steps):
        p = params["xy"]
        if optimizer is None:
            params["xy"] = newton_update(surface, p, float(lr))
        else:
            gx, gy = surface.grad(p[0], p[1])
            optimizer.update(params, {"xy": xp.stack([gx, gy])})
        history.append(xp.asarray(params["xy"], copy=True))  # a copy: p changes in place
    return _backend.to_numpy(xp.stack(history)).tolist()  # one transfer per run


def _compiles(xp: Any, compile: bool | str) -> bool:
    if compile not in (True, False, "auto"):
        raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
    jax = _backend.backend_name(xp) == "jax"
    if compile is True and not jax:
        raise ValueError(
            f"descend compiles only on JAX, not on {_backend.backend_name(xp)}; "
            "pass compile='auto' (or False) to update one step at a time"
        )
    return jax and compile is not False


# (surface, method, learning rate, steps) -> the jitted path; jax.jit adds one program
# per dtype and device.  The eager loop costs tens of microseconds of dispatch per JAX
# operation, about 10 operations an update: 8 s for the zoo's 16,000 updates.
_PROGRAMS: dict[tuple, Any] = {}
_TRACES = [0]


def trace_count() -> int:
    """How many times a path has been traced (compiled) in this process."""
    return _TRACES[0]


def compiled_path(surface: Surface, method: str, lr: float, steps: int, xp: Any) -> Any:
    """``path(xy, state, count) -> (steps + 1, 2) array``: ``steps`` updates from ``xy``
    with the optimizer's ``state`` (a dict of slot dicts, ``{}`` for SGD and Newton) and
    step ``count`` (a 0-d int array) as one program (``jax.jit``, all steps in one
    ``lax.scan``); made once per (surface, method, lr, steps) and kept."""
    key = (surface, method, lr, steps)
    program = _PROGRAMS.get(key)
    if program is None:
        optimizer = None if method == "Newton" else make_optimizer(method, lr=lr)

        def path(xy: Any, state: dict[str, dict[str, Any]], count: Any) -> Any:
            _TRACES[0] += 1  # runs only while tracing
            xp = _backend.namespace(xy)

            def step(carry: tuple) -> tuple:
                p, state, count = carry
                if optimizer is None:
                    p = newton_update(surface, p, lr)
                else:
                    gx, gy = surface.grad(p[0], p[1])
                    grads = {"xy": xp.stack([gx, gy])}
                    new, state, count = functional_update(optimizer, {"xy": p}, grads, state, count)
                    p = new["xy"]
                return (p, state, count), p

            _, points = _backend.scan_steps(steps, step, (xy, state, count))
            return xp.concat([xp.expand_dims(xy, axis=0), points], axis=0)

        program = _PROGRAMS[key] = _backend.compile_function(path, xp)
    return program


def distance(surface: Surface, point: list[float]) -> float:
    """Distance from ``point`` to the nearest of the surface's minima (saddle: its point)."""
    return min(math.hypot(point[0] - mx, point[1] - my) for mx, my in surface.minima)


def first_step(values: list[bool]) -> int | None:
    """Index of the first True, or None."""
    return next((i for i, v in enumerate(values) if v), None)


@dataclass
class OptimizerZooResult(ExperimentResult):
    paths: dict[str, dict[str, list[list[float]]]]  # surface -> method -> [[x, y], ...]
    distance: dict[str, dict[str, list[float]]]  # surface -> method -> per step (see Surface)
    steps_to_target: dict[str, dict[str, int | None]]  # reached (or escaped) at step; None: never

    def summary(self) -> str:
        lines = []
        for name, reached in self.steps_to_target.items():
            what = (
                f"|y| > {self.settings.escape_radius:g}"
                if SURFACES[name].target == "escape"
                else f"within {self.settings.tolerance:g} of a minimum"
            )
            parts = ", ".join(
                f"{m} {'never' if k is None else k}"
                for m, k in sorted(reached.items(), key=lambda kv: (kv[1] is None, kv[1] or 0))
            )
            lines.append(f"{name} ({self.settings.steps[name]} steps), steps to {what}: {parts}")
        return "\n".join(lines)


def run_optimizer_zoo(
    *,
    quick: bool = False,
    dtype: str | None = None,
    **overrides: Any,
) -> OptimizerZooResult:
    """Run every method on every surface; no data and no randomness involved."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    with run_context(dtype) as (b, dt, start):
        paths: dict[str, dict[str, list[list[float]]]] = {}
        dist: dict[str, dict[str, list[float]]] = {}
        reached: dict[str, dict[str, int | None]] = {}
        for name in s.surfaces:
            surface = SURFACES[name]
            paths[name], dist[name], reached[name] = {}, {}, {}
            for method in s.methods:
                path = descend(
                    surface,
                    method,
                    s.learning_rates[name][method],
                    s.start[name],
                    int(s.steps[name]),
                    dt,
                )
                paths[name][method] = path
                dist[name][method] = [distance(surface, q) for q in path]
                if surface.target == "escape":
                    hit = [abs(q[1]) > s.escape_radius for q in path]
                else:
                    hit = [d < s.tolerance for d in dist[name][method]]
                reached[name][method] = first_step(hit)
        return OptimizerZooResult(
            settings=s,
            **meta(b, dt, None, None, start),
            paths=paths,
            distance=dist,
            steps_to_target=reached,
        )
