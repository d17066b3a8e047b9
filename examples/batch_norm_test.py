"""Training with and without batch normalization for 16 weight scales from 1 to 1e-4 (figure 6-18).

The book's ``ch06/batch_norm_test.py`` as a script on xpscratch: change the constants below, or
pass ``--backend torch:cuda``, ``--quick`` (the library's short settings, ignoring the size
constants), ``--dtype float64``. The figure (book figure 6-18) goes to ``--out``; the numbers
are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.batch_norm_test import run_batch_norm_test
from xpscratch.plot import plot_batch_norm_test

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
NUM_SCALES = 16  # weight scales, 10**linspace(0, -4, NUM_SCALES)
TRAIN_SIZE = 1000  # training images used
EPOCHS = 20  # epochs per run (the book's max_epochs)
LEARNING_RATE = 0.01  # SGD's learning rate
OUT = "batch_norm_test.png"  # where the figure is written


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
    overrides = (
        {}
        if args.quick
        else dict(
            num_scales=NUM_SCALES,
            train_size=TRAIN_SIZE,
            epochs=EPOCHS,
            lr=LEARNING_RATE,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_batch_norm_test(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_batch_norm_test(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
