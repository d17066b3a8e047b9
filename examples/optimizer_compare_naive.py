"""Six optimizers race down f(x, y) = x**2/20 + y**2 from (-7, 2) (figure 6-8).

The book's ``ch06/optimizer_compare_naive.py`` as a script on xpscratch: change the constants
below, or pass ``--backend torch:cuda``, ``--quick`` (the library's short settings, ignoring the
size constants), ``--dtype float64``. The figure (book figure 6-8) goes to ``--out``; the
numbers are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.optimizer_compare_naive import run_optimizer_compare_naive
from xpscratch.plot import plot_optimizer_compare_naive

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
STEPS = 30  # updates per optimizer (the book's 30)
# the book's four, plus Nesterov and RMSprop (xpscratch's choice)
LEARNING_RATES = {
    "SGD": 0.95,
    "Momentum": 0.1,
    "AdaGrad": 1.5,
    "Adam": 0.3,
    "Nesterov": 0.1,
    "RMSprop": 0.1,
}
OUT = "optimizer_compare_naive.png"  # where the figure is written


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
            steps=STEPS,
            learning_rates=LEARNING_RATES,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_optimizer_compare_naive(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_optimizer_compare_naive(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
