"""Weight initialisation: the book's weight_init_std names, statistics, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpscratch
from xpscratch.backend import device_of
from xpscratch.initializers import init_std, init_weight, zeros

# -- init_std --------------------------------------------------------------------------------


def test_init_std_hand_values():
    assert init_std(0.01, 784) == 0.01
    assert type(init_std(1, 10)) is float and init_std(1, 10) == 1.0
    assert init_std(0.0, 10) == 0.0
    # Xavier as the book simplifies it: sqrt(1/n)
    assert init_std("xavier", 100) == pytest.approx(0.1, rel=1e-15)
    assert init_std("sigmoid", 400) == pytest.approx(0.05, rel=1e-15)
    # He: sqrt(2/n)
    assert init_std("he", 50) == pytest.approx(0.2, rel=1e-15)
    assert init_std("relu", 784) == pytest.approx(math.sqrt(2 / 784), rel=1e-15)
    assert init_std("ReLU", 8) == init_std("relu", 8) == pytest.approx(0.5)
    assert init_std("Xavier", 4) == pytest.approx(0.5)


@pytest.mark.parametrize("bad", ["nope", "glorot", "", "kaiming"])
def test_init_std_unknown_name(bad):
    with pytest.raises(ValueError, match="weight_init_std") as info:
        init_std(bad, 10)
    for name in ("xavier", "sigmoid", "he", "relu"):
        assert repr(name) in str(info.value)


@pytest.mark.parametrize("bad", [-0.01, -1, float("nan"), float("inf")])
def test_init_std_negative_or_not_finite(bad):
    with pytest.raises(ValueError, match=">= 0"):
        init_std(bad, 10)


# -- init_weight -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, shape, target",
    [
        ("he", (400, 400), math.sqrt(2 / 400)),
        ("xavier", (400, 100), math.sqrt(1 / 400)),  # fan_in is shape[0]
        ("sigmoid", (100, 400), math.sqrt(1 / 100)),
        (0.01, (400, 400), 0.01),
    ],
    ids=["he", "xavier-fan_in", "sigmoid-fan_in", "0.01"],
)
def test_init_weight_statistics(backend, spec, shape, target):
    w = xpscratch.to_numpy(init_weight(shape, spec, seed=3)).astype(np.float64)
    n = w.size
    assert w.shape == shape
    assert w.std() == pytest.approx(target, rel=0.03)
    assert abs(w.mean()) < 5 * target / math.sqrt(n)
    # roughly normal: about 68.3% within one std, 95.4% within two
    assert np.mean(np.abs(w) < target) == pytest.approx(0.683, abs=0.02)
    assert np.mean(np.abs(w) < 2 * target) == pytest.approx(0.954, abs=0.01)


def test_init_weight_same_on_every_backend(backend, float_dtype):
    got = init_weight((30, 20), "he", seed=7, purpose="init/W1", dtype=float_dtype)
    assert device_of(got) == backend.device
    assert got.dtype == getattr(backend.xp, float_dtype)
    with xpscratch.use_backend("numpy"):
        ref = init_weight((30, 20), "he", seed=7, purpose="init/W1", dtype=float_dtype)
    np.testing.assert_array_equal(xpscratch.to_numpy(got), ref)
    # a second call with the same seed and purpose repeats it exactly
    again = init_weight((30, 20), "he", seed=7, purpose="init/W1", dtype=float_dtype)
    np.testing.assert_array_equal(xpscratch.to_numpy(again), ref)


def test_init_weight_differs_by_seed_and_purpose(backend):
    base = xpscratch.to_numpy(init_weight((20, 10), 1.0, seed=0, purpose="init/W1"))
    other_purpose = xpscratch.to_numpy(init_weight((20, 10), 1.0, seed=0, purpose="init/W2"))
    other_seed = xpscratch.to_numpy(init_weight((20, 10), 1.0, seed=1, purpose="init/W1"))
    for other in (other_purpose, other_seed):
        assert not np.any(other == base)  # independent draws share no value
        assert abs(np.corrcoef(base.ravel(), other.ravel())[0, 1]) < 0.3


def test_init_weight_scales_one_draw(backend):
    """Different stds for the same seed/purpose are the same N(0,1) draw scaled."""
    unit = xpscratch.to_numpy(init_weight((50, 8), 1.0, seed=2, dtype="float32"))
    he = xpscratch.to_numpy(init_weight((50, 8), "he", seed=2, dtype="float32"))
    np.testing.assert_allclose(he, unit * math.sqrt(2 / 50), rtol=1e-6)
    zero = xpscratch.to_numpy(init_weight((50, 8), 0.0, seed=2))
    np.testing.assert_array_equal(zero, 0.0)


def test_init_weight_dtype(backend, float_dtype):
    xp = backend.xp
    assert init_weight((4, 3), 0.01).dtype == xp.float32  # training default
    assert init_weight((4, 3), 0.01, dtype="float32").dtype == xp.float32
    if float_dtype == "float64":
        assert init_weight((4, 3), 0.01, dtype="float64").dtype == xp.float64
        with xpscratch.use_default_dtype("float64"):
            assert init_weight((4, 3), 0.01).dtype == xp.float64
    else:
        with pytest.raises(xpscratch.BackendError, match="float32"):
            init_weight((4, 3), 0.01, dtype="float64")


def test_init_weight_bad_std_is_refused(backend):
    with pytest.raises(ValueError, match="weight_init_std"):
        init_weight((4, 3), "bogus")
    with pytest.raises(ValueError, match=">= 0"):
        init_weight((4, 3), -0.1)


def test_zeros(backend, float_dtype):
    z = zeros((3, 2), dtype=float_dtype)
    assert tuple(z.shape) == (3, 2) and z.dtype == getattr(backend.xp, float_dtype)
    assert device_of(z) == backend.device
    np.testing.assert_array_equal(xpscratch.to_numpy(z), 0.0)
    assert zeros(5).dtype == backend.xp.float32
