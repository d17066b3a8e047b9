"""optimizer_zoo: the surfaces' calculus, the paths against NumPy float64 loops written here,
and what the figure is meant to show, in numbers.

At the full settings (NumPy float64, about 0.3 s) the steps to the target are:

    bowl (30 steps, within 1e-3):    Newton 1; no first-order method (the book's rates)
    saddle (400 steps, |y| > 1):     AdaGrad 17, RMSprop 17, Nesterov 67, Momentum 72,
                                     Adam 77, SGD 349; Newton never (it sits on the saddle)
    rosenbrock (2000, within 1e-3):  Newton 5, Adam 1050, Nesterov 1573, Momentum 1677;
                                     SGD (same rate as Momentum), AdaGrad, RMSprop never
    himmelblau (200, within 1e-3):   Nesterov 39, RMSprop 40, AdaGrad 44, SGD 51, Adam 132,
                                     Momentum 145; Newton never (it climbs to the maximum)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_experiments import close, numpy_run

import xpscratch
from xpscratch.experiments import EXPERIMENTS
from xpscratch.experiments import optimizer_zoo as zoo
from xpscratch.experiments.optimizer_zoo import FULL, SURFACES, newton_update
from xpscratch.optim import Optimizer

NAME = "optimizer_zoo"
FIRST_ORDER = ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam")


def full():
    return numpy_run(NAME, "float64", {})


def point_tol(float_dtype: str) -> float:
    return 1e-12 if float_dtype == "float64" else 1e-5


# ---------------------------------------------------------------------------
# the surfaces: gradient and Hessian against finite differences, minima
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SURFACES))
def test_gradient_and_hessian_match_central_differences(name):
    s = SURFACES[name]
    h = 1e-5
    for x, y in [(-1.3, 0.7), (0.4, -2.1), (2.5, 1.5)]:
        gx, gy = s.grad(x, y)
        fd = ((s.f(x + h, y) - s.f(x - h, y)) / (2 * h), (s.f(x, y + h) - s.f(x, y - h)) / (2 * h))
        close([gx, gy], fd, rtol=1e-7, atol=1e-6)
        hxx, hxy, hyy = s.hessian(x, y)
        dgx = [(a - b) / (2 * h) for a, b in zip(s.grad(x + h, y), s.grad(x - h, y), strict=True)]
        dgy = [(a - b) / (2 * h) for a, b in zip(s.grad(x, y + h), s.grad(x, y - h), strict=True)]
        close([hxx, hxy, hxy, hyy], [dgx[0], dgx[1], dgy[0], dgy[1]], rtol=1e-7, atol=1e-6)


def test_minima_are_minima():
    for name, s in SURFACES.items():
        for mx, my in s.minima:
            assert np.hypot(*s.grad(mx, my)) < 1e-12, (name, mx, my)
            hxx, hxy, hyy = s.hessian(mx, my)
            det = hxx * hyy - hxy * hxy
            if s.target == "escape":
                assert det < 0  # the saddle point: curvatures of opposite sign
            else:
                assert hxx > 0 and det > 0, name  # positive definite: a strict minimum
    assert SURFACES["himmelblau"].f(3.0, 2.0) == 0.0
    assert len(SURFACES["himmelblau"].minima) == 4


# ---------------------------------------------------------------------------
# the paths equal NumPy float64 loops written here (Rosenbrock: curved and stiff)
# ---------------------------------------------------------------------------


def reference_path(method: str, lr: float, start, steps: int) -> np.ndarray:
    """The book's update rules (and Newton by np.linalg.solve) on Rosenbrock in float64."""

    def grad(p):
        x, y = p
        return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])

    def hessian(p):
        x, y = p
        return np.array([[1200 * x**2 - 400 * y + 2, -400 * x], [-400 * x, 200.0]])

    p = np.array(start, dtype=np.float64)
    v, h, m = np.zeros(2), np.zeros(2), np.zeros(2)
    path = [p.copy()]
    for t in range(1, steps + 1):
        g = grad(p)
        if method == "SGD":
            p = p - lr * g
        elif method == "Momentum":
            v = 0.9 * v - lr * g
            p = p + v
        elif method == "Nesterov":  # Bengio et al.'s form, as xpscratch.optim documents it
            p = p + 0.81 * v - 1.9 * lr * g
            v = 0.9 * v - lr * g
        elif method == "AdaGrad":
            h = h + g * g
            p = p - lr * g / (np.sqrt(h) + 1e-7)
        elif method == "RMSprop":
            h = 0.99 * h + 0.01 * g * g
            p = p - lr * g / (np.sqrt(h) + 1e-7)
        elif method == "Adam":
            m = m + 0.1 * (g - m)
            h = h + 0.001 * (g * g - h)
            lr_t = lr * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            p = p - lr_t * m / (np.sqrt(h) + 1e-7)
        elif method == "Newton":
            p = p - lr * np.linalg.solve(hessian(p), g)
        path.append(p.copy())
    return np.asarray(path)


@pytest.mark.parametrize("method", FIRST_ORDER + ("Newton",))
def test_rosenbrock_paths_equal_a_numpy_float64_loop(method):
    # 100 steps: RMSprop bounces across the valley and amplifies rounding differences
    # (the order of operations differs from the library's in-place updates) later on
    steps = 100
    r = numpy_run(
        NAME,
        "float64",
        {"surfaces": ["rosenbrock"], "steps": {**FULL["steps"], "rosenbrock": steps}},
    )
    lr = FULL["learning_rates"]["rosenbrock"][method]
    ref = reference_path(method, lr, FULL["start"]["rosenbrock"], steps)
    close(r.paths["rosenbrock"][method], ref, rtol=1e-10, atol=1e-12)
    assert r.distance["rosenbrock"][method] == pytest.approx(np.hypot(*(ref - 1.0).T).tolist())


def test_sgd_on_the_saddle_matches_its_closed_form():
    # SGD on x^2 - y^2 is linear: x <- x (1 - 2 lr), y <- y (1 + 2 lr)
    r = full()
    lr = FULL["learning_rates"]["saddle"]["SGD"]
    path = np.asarray(r.paths["saddle"]["SGD"])
    k = np.arange(len(path))
    close(path[:, 0], (1 - 2 * lr) ** k, rtol=1e-12)
    close(path[:, 1], 1e-3 * (1 + 2 * lr) ** k, rtol=1e-12)
    # so it escapes (|y| > 1) at the first k with 1e-3 * 1.02^k > 1
    assert r.steps_to_target["saddle"]["SGD"] == math.ceil(math.log(1e3) / math.log(1.02))


# ---------------------------------------------------------------------------
# what the figure shows, on every backend (bowl and saddle: about 1 s on strict)
# ---------------------------------------------------------------------------


def test_newton_solves_the_bowl_in_one_step_and_sits_on_the_saddle(backend, float_dtype):
    r = EXPERIMENTS[NAME].run(dtype=float_dtype, surfaces=["bowl", "saddle"])
    tol = point_tol(float_dtype)
    bowl = np.asarray(r.paths["bowl"]["Newton"])
    assert np.abs(bowl[1:]).max() < tol  # the minimum after one step, and it stays
    assert r.steps_to_target["bowl"]["Newton"] == 1
    assert all(r.steps_to_target["bowl"][m] is None for m in FIRST_ORDER)  # 30 steps: not yet
    assert all(r.distance["bowl"][m][-1] < 0.25 * r.distance["bowl"][m][0] for m in FIRST_ORDER)
    # on the saddle Newton jumps TO the critical point (0, 0) and never leaves it
    saddle = np.asarray(r.paths["saddle"]["Newton"])
    assert np.abs(saddle[1:]).max() < tol
    assert r.steps_to_target["saddle"]["Newton"] is None


def test_sgd_lingers_at_the_saddle(backend, float_dtype):
    r = EXPERIMENTS[NAME].run(dtype=float_dtype, surfaces=["saddle"])
    esc = r.steps_to_target["saddle"]
    assert all(esc[m] is not None for m in FIRST_ORDER)  # every gradient method leaves
    for m in ("Momentum", "Nesterov", "Adam", "AdaGrad", "RMSprop"):
        assert esc["SGD"] >= 3 * esc[m], (m, esc)  # measured: 349 vs 17 to 77
    # when the last of the others has escaped, SGD has not begun to: |y| still under 0.01,
    # but it has come close to the saddle point (x from 1 to 0.2)
    last = max(esc[m] for m in FIRST_ORDER if m != "SGD")
    x, y = r.paths["saddle"]["SGD"][last]
    assert abs(y) < 0.01 and abs(x) < 0.25
    assert min(r.distance["saddle"]["SGD"]) < 0.05  # it passes within 0.05 of (0, 0)
    ref = numpy_run(NAME, float_dtype, {"surfaces": ["saddle"]})
    assert esc == ref.steps_to_target["saddle"]


# ---------------------------------------------------------------------------
# Rosenbrock and Himmelblau at the full settings (NumPy float64)
# ---------------------------------------------------------------------------


def test_rosenbrock_newton_is_fast_and_momentum_beats_sgd_at_the_same_rate():
    r = full()
    rates = FULL["learning_rates"]["rosenbrock"]
    reached = r.steps_to_target["rosenbrock"]
    assert reached["Newton"] <= 10  # measured: 5
    assert rates["SGD"] == rates["Momentum"] == rates["Nesterov"]
    assert reached["SGD"] is None and r.distance["rosenbrock"]["SGD"][-1] > 0.5  # still crawling
    assert reached["Momentum"] is not None and reached["Nesterov"] is not None  # 1677, 1573
    assert reached["Adam"] is not None  # 1050


def test_himmelblau_methods_pick_minima_and_newton_climbs_to_the_maximum():
    r = full()
    s = SURFACES["himmelblau"]
    found = set()
    for m in FIRST_ORDER:
        end = r.paths["himmelblau"][m][-1]
        assert r.distance["himmelblau"][m][-1] < 1e-3, m
        found.add(min(range(4), key=lambda i: math.dist(end, s.minima[i])))
    assert len(found) >= 2  # started near the maximum, the methods part ways
    # Newton converges to the local maximum near the start: a zero of the gradient
    x, y = r.paths["himmelblau"]["Newton"][-1]
    assert np.hypot(*s.grad(x, y)) < 1e-9
    hxx, hxy, hyy = s.hessian(x, y)
    assert hxx < 0 and hxx * hyy - hxy * hxy > 0  # negative definite: a maximum
    assert s.f(x, y) > 180  # the maximum's value, 181.6, against 0 at every minimum


def test_newton_update_is_the_exact_2x2_solve(backend, float_dtype):
    s = SURFACES["rosenbrock"]
    p = xpscratch.asarray([-1.2, 1.0], float_dtype)
    p = newton_update(s, p, 0.5)  # (p itself where writable)
    x, y = -1.2, 1.0
    H = np.array([[1200 * x * x - 400 * y + 2, -400 * x], [-400 * x, 200.0]])
    g = np.array(s.grad(x, y))
    expected = np.array([x, y]) - 0.5 * np.linalg.solve(H, g)
    close(xpscratch.to_numpy(p), expected, rtol=1e-12 if float_dtype == "float64" else 1e-5)


# ---------------------------------------------------------------------------
# every backend agrees with NumPy (CROSS: the full bowl, shorter runs elsewhere)
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# JAX: each (surface, method) path is one compiled program, equal to the eager loop
# ---------------------------------------------------------------------------


def test_jax_runs_each_path_as_one_program_traced_once(backend, monkeypatch):
    # op by op, JAX's dispatch made the zoo's ~16,000 tiny updates take 8 s (NumPy: 0.3 s)
    if backend.name != "jax":
        pytest.skip("the paths compile on JAX only")
    # programs made by earlier tests: none
    monkeypatch.setattr(zoo, "_PROGRAMS", {}, raising=False)
    rules = []
    compute_update = Optimizer.compute_update

    def counted(self, params, grads):
        rules.append(type(self).__name__)
        return compute_update(self, params, grads)

    def newton(surface, p, step_size=1.0):
        rules.append("Newton")
        return newton_update(surface, p, step_size)

    monkeypatch.setattr(Optimizer, "compute_update", counted)
    monkeypatch.setattr(zoo, "newton_update", newton)
    settings = {"surfaces": ["bowl", "saddle"], "steps": {**FULL["steps"], "saddle": 50}}
    first = EXPERIMENTS[NAME].run(**settings)
    # each rule runs once per (surface, method), traced, whatever the steps; op by op
    # they ran 7 * (30 + 50) times
    assert sorted(rules) == sorted(2 * FULL["methods"])
    traces = zoo.trace_count()
    second = EXPERIMENTS[NAME].run(**settings)  # the same process: no new trace
    assert len(rules) == 2 * len(FULL["methods"]) and zoo.trace_count() == traces
    assert len(zoo._PROGRAMS) == 2 * len(FULL["methods"])  # Newton's paths too
    assert second.paths == first.paths


def test_compiled_jax_paths_equal_the_eager_ones_in_float64(backend, float_dtype):
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("compiled vs eager to 1e-12 needs JAX's float64 (jax-x64)")
    # every rule on Rosenbrock (curved, stiff: every update moves both coordinates),
    # Newton also where its Hessian is constant.  100 steps: later RMSprop bounces
    # across the valley and amplifies a last-bit difference of XLA's (which may fuse
    # a*b + c into one rounding) to 0.2 of the path by step 2000
    runs = [("rosenbrock", m, 100) for m in FULL["methods"]]
    runs += [("bowl", "Newton", 3), ("saddle", "Newton", 3)]
    for name, method, steps in runs:
        args = (SURFACES[name], method, FULL["learning_rates"][name][method])
        args += (FULL["start"][name], steps, float_dtype)
        eager = np.asarray(zoo.descend(*args, compile=False))
        compiled = np.asarray(zoo.descend(*args))
        assert compiled.shape == eager.shape == (steps + 1, 2)
        # relative to each point's size, at least 1e-3 of the start's (Newton lands
        # on 0.0 eagerly and on 1e-16 compiled)
        floor = 1e-3 * np.abs(eager[0]).max()
        scale = np.maximum(np.abs(eager).max(axis=1, keepdims=True), floor)
        error = (np.abs(compiled - eager) / scale).max()
        assert error < 1e-12, (name, method, error)  # measured: at most 4.9e-13


def test_descend_compiles_only_on_jax(backend):
    args = (SURFACES["bowl"], "Adam", 0.3, [-7.0, 2.0], 3, "float32")
    eager = zoo.descend(*args, compile=False)
    if backend.name == "jax":
        close(zoo.descend(*args, compile=True), eager, rtol=1e-6)
    else:
        with pytest.raises(ValueError, match="compiles only on JAX"):
            zoo.descend(*args, compile=True)
        assert zoo.descend(*args) == eager  # "auto": the same loop, bit for bit
    with pytest.raises(ValueError, match="compile must be"):
        zoo.descend(*args, compile="yes")
