"""The comparison policy: how close a backend must come, stated once.

**Truth and noise band, not one float32 run.**  Every case is computed on NumPy three
ways from the same seeded inputs:

* the *truth*: NumPy float64, for every target, float32-only devices included;
* the *plain* run: NumPy in the target's dtype (the reference for promised bits);
* ``SAMPLES`` *nudged* runs in the target's dtype: every host float array the case
  moves to the device (its data, inputs, coefficients) is moved one ulp up or down at
  random (:func:`xpscratch.backend.nudging_inputs`), a legitimate perturbation of the
  same size as the rounding that a different summation order or kernel makes.

The *noise* of an element is the largest distance of the plain and nudged runs from the
truth.  It is pooled over the element's row (the values after the first axis: one step
of a trajectory, one sample of a batch), made non-decreasing along the first axis
(rounding only grows along a run) and kept at least ``POOL`` times the array's largest,
so that one run landing near the truth by chance does not make the band zero.  A
backend's value passes when

    |backend - truth| <= FACTOR * pooled noise + FLOOR_ULPS * eps(dtype) * |truth| + atol

``atol`` is only given where a value is discrete: accuracies may differ by one sample of
the evaluated set.  Long chaotic runs (300 training steps, the experiments) widen their
band by themselves; well-conditioned ops keep it at a few ulp.  float64 cases follow the
same rule with float64 noise, so another BLAS's reordering passes and a biased kernel
does not.  Independent of NumPy's BLAS: the truth and the band move with it together.

* NaN and inf: a backend's NaN or inf must appear at that element in the truth or in one
  of NumPy's runs (inf with the same sign); NaN against a number fails; an element where
  a NumPy float32 run overflowed has no bound (honest float32 overflows there too).
* Bits (random words, uniforms, masks, permutations, initial weights, one-hot, integers):
  identical to the plain run.
* Discrete outcomes (which runs diverged, early-stopping epochs, steps to a target) must
  equal the truth's or one of the NumPy runs'.
* TF32 (``--allow-tf32``: a 10-bit mantissa in matmuls) adds its own relative tolerance
  (``FLOAT32_TF32``) to the band: the NumPy runs cannot show that rounding.

Measured (README, "Check your backend"; tools/fault_table.py): honest CPU backends
(NumPy with 1 or 2 BLAS threads, with and without OPENBLAS_CORETYPE=Haswell, strict,
torch, JAX) use at most 60% of the allowance (float32 training), and the injected faults
of tests/test_check_faults.py fail: a float32 matmul biased by 2e-6 (17 ulp), a float64
one by 1e-14, tanh off by 4 ulp, exp/log/sqrt by 16 ulp.  A policy 10x looser lets those
pass (the tests fail), so the factor and the floor are pinned from above.  Without the
floor of ``POOL`` times the array's largest noise, a torch float32 BatchNorm running mean
(a vector of 8) landed at 1.03x its band: two runs can both land near the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np  # host-side arithmetic on results already copied back

SAMPLES = 2  # nudged NumPy runs per case and dtype (plus the plain run)
FACTOR = 4.0  # how many times the pooled noise a backend may be from the truth
FLOOR_ULPS = 4.0  # a relative floor, in ulps of the target's dtype
POOL = 0.25  # every element's noise is at least this fraction of its array's largest
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


@dataclass(frozen=True)
class Tolerances:
    """Extra relative tolerances added to the band (zero unless TF32 is allowed)."""

    dtype: str
    tf32: bool
    op: float  # one layer or function, forward and backward
    trajectory: float  # optimizer and training runs
    loss: float  # an experiment's losses
    float32_steps: int = 20  # how long a float32 optimizer/training run is compared


FLOAT64 = Tolerances("float64", False, op=0.0, trajectory=0.0, loss=0.0)
FLOAT32 = Tolerances("float32", False, op=0.0, trajectory=0.0, loss=0.0)
FLOAT32_TF32 = Tolerances("float32", True, op=5e-3, trajectory=2e-2, loss=2e-2)


def tolerances(dtype: str, tf32: bool = False) -> Tolerances:
    if dtype == "float64":
        return FLOAT64
    return FLOAT32_TF32 if tf32 else FLOAT32


def one_sample(n: int) -> float:
    """The accuracy difference one sample of ``n`` makes (plus rounding slack)."""
    return 1.0 / n + 1e-12


def noise(truth: np.ndarray, samples: list[np.ndarray]) -> np.ndarray:
    """The pooled noise of every element: NumPy's runs' largest distance from the truth,
    maximised over the element's row and made non-decreasing along the first axis
    (inf where a run is not finite and the truth is)."""
    t = truth.astype(np.float64)
    n = np.zeros(t.shape)
    for s in samples:
        s = s.astype(np.float64)
        d = np.abs(s - t)
        d = np.where(np.isfinite(s) | ~np.isfinite(t), np.nan_to_num(d, nan=0.0), np.inf)
        n = np.maximum(n, d)
    if n.ndim >= 2:
        n = np.broadcast_to(
            n.reshape(n.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (n.ndim - 1)), n.shape
        )
    if n.ndim >= 1 and n.shape[0]:
        n = np.maximum(np.maximum.accumulate(n, axis=0), POOL * n.max())
    return n


def allowed(
    truth: np.ndarray, samples: list[np.ndarray], dtype: str, rtol: float = 0.0, atol: float = 0.0
) -> np.ndarray:
    """How far a backend's value may be from the truth, element by element."""
    scale = np.abs(truth.astype(np.float64))
    scale = np.where(np.isfinite(scale), scale, 0.0)
    return FACTOR * noise(truth, samples) + (FLOOR_ULPS * EPS[dtype] + rtol) * scale + atol
