"""A deep net overfits 300 images; weight decay (lambda 0.1) narrows the train-test gap (figures
6-20, 6-21).

The book's ``ch06/overfit_weight_decay.py`` as a script on xpscratch: change the constants
below, or pass ``--backend torch:cuda``, ``--quick`` (the library's short settings, ignoring the
size constants), ``--dtype float64``. The figure (book figure 6-20 and 6-21) goes to ``--out``;
the numbers are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.overfit_weight_decay import run_overfit_weight_decay
from xpscratch.plot import plot_overfit_weight_decay

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
WEIGHT_DECAY_LAMBDAS = [0.0, 0.1]  # one run per lambda (the book edits it between runs)
TRAIN_SIZE = 300  # training images: few, to provoke overfitting
EPOCHS = 201  # the book's max_epochs
LEARNING_RATE = 0.01  # SGD's learning rate
OUT = "overfit_weight_decay.png"  # where the figure is written


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
            weight_decay_lambdas=WEIGHT_DECAY_LAMBDAS,
            train_size=TRAIN_SIZE,
            epochs=EPOCHS,
            lr=LEARNING_RATE,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_overfit_weight_decay(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_overfit_weight_decay(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
