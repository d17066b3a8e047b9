"""The tolerance policy: how close a backend must come to NumPy, stated once.

Every comparison in the battery is against NumPy computed in the same run, in the same
dtype (float64 is the reference precision; a float32 run is compared with NumPy
float32, so that the test measures the backend, not float32 itself).

* Bits (random words, uniforms, masks, permutations, initial weights): identical.
* float64: a single layer or function within ``rtol 1e-10``; a trajectory (100
  optimizer steps, 300 training steps) within ``1e-9``; an experiment's losses within
  ``1e-6`` (observed about 1e-12: only the order of a matmul's sums differs).
* float32 (full precision, TF32 off): one op ``1e-4``; trajectories ``1e-3`` over their
  first 20 steps (rounding grows along a run, so float32 runs are kept short; torch's
  float32 Trainer run differs by 1.4e-4 after 26 steps); experiment losses ``1e-4``.
  Biases that feed a BatchNorm are not compared in float32: their gradient is zero in
  theory, rounding noise in practice, and Adam turns that noise into lr-sized steps.
* float32 with TF32 (``--allow-tf32``: a 10-bit mantissa in matmuls): ``5e-3`` for one
  op, ``2e-2`` for trajectories and losses.
* Accuracies: within one sample of the evaluated set (an argmax on a near-tie may flip),
  whatever the dtype.

A case may be tighter than its class (strict on float64 is NumPy underneath: identical),
never looser; the per-case numbers live beside the cases and are printed in the table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    """Relative tolerances for one dtype and matmul precision."""

    dtype: str
    tf32: bool
    op: float  # one layer or function, forward and backward
    trajectory: float  # optimizer and training runs
    loss: float  # an experiment's losses
    float32_steps: int = 20  # how long a float32 trajectory is compared


FLOAT64 = Tolerances("float64", False, op=1e-10, trajectory=1e-9, loss=1e-6)
FLOAT32 = Tolerances("float32", False, op=1e-4, trajectory=1e-3, loss=1e-4)
FLOAT32_TF32 = Tolerances("float32", True, op=5e-3, trajectory=2e-2, loss=2e-2)


def tolerances(dtype: str, tf32: bool = False) -> Tolerances:
    if dtype == "float64":
        return FLOAT64
    return FLOAT32_TF32 if tf32 else FLOAT32


def one_sample(n: int) -> float:
    """The accuracy difference one sample of ``n`` makes (plus rounding slack)."""
    return 1.0 / n + 1e-12
