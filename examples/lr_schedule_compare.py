"""Constant, step, linear and cosine learning-rate schedules (with and without warm-up) for SGD
and Momentum on the 5-layer net: loss curves and final test accuracy.

Not in the book: it answers "which schedule helps, and by how much?" with the book's machinery.
Change the constants below, or pass ``--backend torch:cuda``, ``--quick`` (the library's short
settings, ignoring the size constants), ``--dtype float64``. The figure goes to ``--out``; the
numbers are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.lr_schedule_compare import SCHEDULES, run_lr_schedule_compare
from xpscratch.plot import plot_lr_schedule_compare

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights and mini-batch order (the same for every run) follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
# base rate per optimizer: Momentum's 0.01 / (1 - 0.9) is SGD's 0.1
LEARNING_RATES = {"SGD": 0.1, "Momentum": 0.01}
SCHEDULE_NAMES = list(SCHEDULES)  # constant, step, linear(+warmup), cosine(+warmup)
ITERATIONS = 2000  # mini-batch updates per run (about 51 epochs of mnist-small)
BATCH_SIZE = 128  # images per mini-batch
WARMUP_FRACTION = 0.05  # warm-up length, as a fraction of ITERATIONS
OUT = "lr_schedule_compare.png"  # where the figure is written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=BACKEND)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--dtype", choices=("float32", "float64"), default=DTYPE)
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--quick", action="store_true", help="the library's short settings")
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)

    name, _, device = args.backend.partition(":")
    overrides = dict(learning_rates=LEARNING_RATES, schedules=SCHEDULE_NAMES)
    if not args.quick:
        overrides.update(
            iterations=ITERATIONS, batch_size=BATCH_SIZE, warmup_fraction=WARMUP_FRACTION
        )
    with xpscratch.use_backend(name, device or None):
        result = run_lr_schedule_compare(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_lr_schedule_compare(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
