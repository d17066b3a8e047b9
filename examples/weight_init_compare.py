"""std=0.01 vs Xavier vs He initial weights for a 5-layer ReLU net on MNIST (figure 6-15).

The book's ``ch06/weight_init_compare.py`` as a script on xpscratch: change the constants below,
or pass ``--backend torch:cuda``, ``--quick`` (the library's short settings, ignoring the size
constants), ``--dtype float64``. The figure (book figure 6-15) goes to ``--out``; the numbers
are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.weight_init_compare import run_weight_init_compare
from xpscratch.plot import plot_weight_init_compare

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
ITERATIONS = 2000  # mini-batch updates (the book's max_iterations)
LEARNING_RATE = 0.01  # SGD's learning rate
BATCH_SIZE = 128  # samples per mini-batch
OUT = "weight_init_compare.png"  # where the figure is written


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
            iterations=ITERATIONS,
            lr=LEARNING_RATE,
            batch_size=BATCH_SIZE,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_weight_init_compare(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_weight_init_compare(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
