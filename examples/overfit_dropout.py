"""The same overfitting set-up trained by the book's Trainer with and without dropout (figure
6-23).

The book's ``ch06/overfit_dropout.py`` as a script on xpscratch: change the constants below, or
pass ``--backend torch:cuda``, ``--quick`` (the library's short settings, ignoring the size
constants), ``--dtype float64``. The figure (book figure 6-23) goes to ``--out``; the numbers
are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.overfit_dropout import run_overfit_dropout
from xpscratch.plot import plot_overfit_dropout

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
DROPOUT_RATIO = 0.2  # fraction of units dropped in training
TRAIN_SIZE = 300  # training images: few, to provoke overfitting
EPOCHS = 301  # the book's Trainer(epochs=301)
LEARNING_RATE = 0.01  # SGD's learning rate
OUT = "overfit_dropout.png"  # where the figure is written


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
            dropout_ratio=DROPOUT_RATIO,
            train_size=TRAIN_SIZE,
            epochs=EPOCHS,
            lr=LEARNING_RATE,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_overfit_dropout(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_overfit_dropout(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
