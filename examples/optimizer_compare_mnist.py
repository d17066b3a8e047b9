"""SGD, Momentum, AdaGrad, Adam, Nesterov and RMSprop train the same 5-layer net on MNIST (figure
6-9).

The book's ``ch06/optimizer_compare_mnist.py`` as a script on xpscratch: change the constants
below, or pass ``--backend torch:cuda``, ``--quick`` (the library's short settings, ignoring the
size constants), ``--dtype float64``. The figure (book figure 6-9) goes to ``--out``; the
numbers are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.optimizer_compare_mnist import run_optimizer_compare_mnist
from xpscratch.plot import plot_optimizer_compare_mnist

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
ITERATIONS = 2000  # mini-batch updates (the book's max_iterations)
BATCH_SIZE = 128  # samples per mini-batch
# each at xpscratch.optim's default learning rate
OPTIMIZERS = ["SGD", "Momentum", "AdaGrad", "Adam", "Nesterov", "RMSprop"]
OUT = "optimizer_compare_mnist.png"  # where the figure is written


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
            batch_size=BATCH_SIZE,
            optimizers=OPTIMIZERS,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_optimizer_compare_mnist(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_optimizer_compare_mnist(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
