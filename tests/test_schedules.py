"""Learning-rate schedules: hand values, shape, and their use by the optimizers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpscratch
from xpscratch.optim import SGD, Adam, Momentum
from xpscratch.schedules import CosineDecay, LinearDecay, Schedule, StepDecay


def values(schedule, steps):
    return [schedule(s) for s in steps]


# -- hand values ------------------------------------------------------------------------------


def test_step_decay_hand_values():
    s = StepDecay(0.1, step_size=10, gamma=0.5)
    got = values(s, [0, 9, 10, 19, 20, 35])
    assert got == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.0125], rel=1e-15)
    assert StepDecay(1.0, step_size=3)(3) == pytest.approx(0.1)  # default gamma 0.1


def test_linear_decay_hand_values():
    s = LinearDecay(1.0, total_steps=100, end_lr=0.2)
    assert values(s, [0, 25, 50, 100]) == pytest.approx([1.0, 0.8, 0.6, 0.2], rel=1e-14)
    assert s(150) == pytest.approx(0.2)  # past the end: constant end_lr
    assert LinearDecay(0.5, total_steps=10)(5) == pytest.approx(0.25)  # end_lr defaults to 0


def test_linear_decay_warmup_hand_values():
    s = LinearDecay(1.0, total_steps=110, warmup_steps=10)
    # warm-up: lr * (step + 1) / warmup_steps, never zero, reaching lr at the last warm-up step
    assert values(s, range(10)) == pytest.approx([0.1 * (i + 1) for i in range(10)], rel=1e-14)
    assert s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.5)  # halfway through the 100 decay steps
    assert s(110) == pytest.approx(0.0, abs=1e-15)
    assert s(10_000) == pytest.approx(0.0, abs=1e-15)


def test_cosine_decay_hand_values():
    s = CosineDecay(1.0, total_steps=100)
    assert s(0) == pytest.approx(1.0)
    assert s(25) == pytest.approx(0.5 * (1 + math.sqrt(0.5)))  # 0.853553...
    assert s(50) == pytest.approx(0.5)
    assert s(75) == pytest.approx(0.5 * (1 - math.sqrt(0.5)))
    assert s(100) == pytest.approx(0.0, abs=1e-15)
    assert s(250) == pytest.approx(0.0, abs=1e-15)
    e = CosineDecay(0.4, total_steps=10, end_lr=0.1)
    assert values(e, [0, 5, 10, 20]) == pytest.approx([0.4, 0.25, 0.1, 0.1])


def test_cosine_decay_warmup_hand_values():
    s = CosineDecay(0.2, total_steps=104, warmup_steps=4)
    assert values(s, range(4)) == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert s(4) == pytest.approx(0.2)
    assert s(54) == pytest.approx(0.1)  # midpoint of the 100 decay steps
    assert s(104) == pytest.approx(0.0, abs=1e-15)


# -- shape ---------------------------------------------------------------------------------------

SCHEDULES = {
    "step": StepDecay(0.1, step_size=7, gamma=0.3),
    "linear": LinearDecay(0.1, total_steps=50, end_lr=0.01),
    "linear-warmup": LinearDecay(0.1, total_steps=50, warmup_steps=5),
    "cosine": CosineDecay(0.1, total_steps=50, end_lr=0.001),
    "cosine-warmup": CosineDecay(0.1, total_steps=50, warmup_steps=8),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_warmup_rises_then_decay_is_monotone(name):
    s = SCHEDULES[name]
    warm = getattr(s, "warmup_steps", 0)
    lrs = values(s, range(80))
    assert all(type(v) is float for v in lrs)
    assert all(v > 0 for v in lrs[:warm] + lrs[warm:50])
    rise = lrs[:warm]
    assert all(a < b for a, b in zip(rise[:-1], rise[1:], strict=True))
    decay = lrs[max(warm - 1, 0) :]
    assert all(b <= a for a, b in zip(decay[:-1], decay[1:], strict=True))
    assert max(lrs) == pytest.approx(0.1)
    assert isinstance(s, Schedule) and callable(s)


def test_schedules_are_immutable_plain_data():
    s = CosineDecay(0.1, total_steps=10)
    with pytest.raises(AttributeError):
        s.lr = 1.0  # frozen: an optimizer's schedule cannot be changed behind its back
    assert s == CosineDecay(0.1, total_steps=10)


# -- used by the optimizers ----------------------------------------------------------------------


def test_optimizer_uses_lr_of_step_for_the_step_th_update(backend, float_dtype):
    schedule = StepDecay(0.4, step_size=3, gamma=0.5)
    rng = np.random.default_rng(1)
    w_host = rng.standard_normal((3, 2))
    grads_host = [rng.standard_normal((3, 2)) for _ in range(10)]
    if float_dtype == "float32":
        w_host = w_host.astype(np.float32).astype(np.float64)
        grads_host = [g.astype(np.float32).astype(np.float64) for g in grads_host]

    params = {"W": xpscratch.asarray(np.array(w_host, copy=True), float_dtype)}
    opt = SGD(lr=schedule)
    expected = w_host.copy()
    for step, g in enumerate(grads_host):
        lr = opt.current_lr()
        assert type(lr) is float and lr == schedule(step)
        opt.update(params, {"W": xpscratch.asarray(g, float_dtype)})
        expected = expected - schedule(step) * g  # manual: 0.4 for steps 0-2, 0.2 for 3-5, ...
        assert opt.step == step + 1
    tol = (
        {"rtol": 1e-12, "atol": 1e-13} if float_dtype == "float64" else {"rtol": 1e-5, "atol": 1e-6}
    )
    np.testing.assert_allclose(xpscratch.to_numpy(params["W"]), expected, **tol)
    assert opt.current_lr() == pytest.approx(0.4 * 0.5**3)


def test_first_update_uses_lr_at_step_zero(backend, float_dtype):
    # with warm-up the first step uses lr/warmup_steps: W = 1 - 0.25 * 2
    opt = SGD(lr=LinearDecay(1.0, total_steps=10, warmup_steps=4))
    params = {"W": xpscratch.asarray(np.ones(2), float_dtype)}
    opt.update(params, {"W": xpscratch.asarray(np.full(2, 2.0), float_dtype)})
    np.testing.assert_allclose(xpscratch.to_numpy(params["W"]), 0.5, rtol=1e-7)


def test_schedule_with_momentum_and_adam_is_followed():
    """Any callable works; Adam's step size is scaled by lr(step), not lr(0)."""
    seen = []

    def lr(step):
        seen.append(step)
        return 0.1 / (1 + step)

    opt = Momentum(lr=lr)
    params = {"W": np.ones(2)}
    for _ in range(3):
        opt.update(params, {"W": np.ones(2)})
    assert seen == [0, 1, 2]
    # v1 = -0.1, v2 = 0.9*v1 - 0.05, v3 = 0.9*v2 - 0.1/3
    v1 = -0.1
    v2 = 0.9 * v1 - 0.05
    v3 = 0.9 * v2 - 0.1 / 3
    np.testing.assert_allclose(params["W"], 1 + v1 + v2 + v3, rtol=1e-14)

    adam = Adam(lr=StepDecay(0.1, step_size=1, gamma=0.5))
    p = {"W": np.zeros(1)}
    for _ in range(3):  # constant gradient: each book-Adam step moves by ~lr(step)
        adam.update(p, {"W": np.ones(1)})
    np.testing.assert_allclose(p["W"], -(0.1 + 0.05 + 0.025), rtol=1e-5)


def test_hyperparameters_stay_python_floats():
    opt = SGD(lr=np.float64(0.1))
    assert type(opt.lr) is float and type(opt.current_lr()) is float
    sched = SGD(lr=lambda step: np.float32(0.5))  # a schedule returning a NumPy scalar
    assert type(sched.current_lr()) is float
    assert type(StepDecay(0.1, 2)(5)) is float
    assert type(LinearDecay(0.1, 10)(3)) is float
    assert type(CosineDecay(0.1, 10, warmup_steps=2)(1)) is float
    assert type(CosineDecay(0.1, 10)(3)) is float


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: StepDecay(float("nan"), 10), "StepDecay.lr must be a finite number >= 0"),
        (lambda: StepDecay(0.1, 0), "StepDecay.step_size must be a positive integer, got 0"),
        (lambda: StepDecay(0.1, 10, gamma=-0.5), "StepDecay.gamma must be a finite number > 0"),
        (lambda: LinearDecay(-0.1, 100), "LinearDecay.lr must be a finite number >= 0"),
        (lambda: LinearDecay(0.1, 0), "LinearDecay.total_steps must be a positive integer"),
        (lambda: CosineDecay(0.1, 100, end_lr=float("inf")), "CosineDecay.end_lr must be"),
        (lambda: CosineDecay(0.1, 100, warmup_steps=-1), "CosineDecay.warmup_steps must be"),
        (lambda: CosineDecay(0.1, 10.5), "CosineDecay.total_steps must be a positive integer"),
    ],
)
def test_bad_schedule_settings_are_refused_naming_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()
