"""Which regulariser helps, and by how much? The book's overfitting set-up trained eight ways.

No regularisation, L2 and L1 weight decay, dropout, early stopping, label smoothing, data
augmentation (random shifts and rotations, on the device) and an ensemble, each over several
seeds, on the 300-image, 7-layer set-up of the book's ``ch06/overfit_weight_decay.py``. Change
the constants below, or pass ``--backend torch:cuda``, ``--quick`` (the library's short
settings, ignoring the constants), ``--dtype float64``. The bar chart goes to ``--out``; the
table is printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.regularization_compare import run_regularization_compare
from xpscratch.plot import plot_regularization_compare

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # the first seed; the others are SEED+1, SEED+2, ...
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
SEEDS = 3  # runs per method, for the spread
TRAIN_SIZE = 300  # training images: few, to provoke overfitting
VALIDATION_SIZE = 100  # the next training images, only for early stopping's choice
EPOCHS = 201  # the book's max_epochs in overfit_weight_decay.py
LEARNING_RATE = 0.01  # SGD's learning rate, for every method
L2_LAMBDA = 0.1  # the book's weight decay
L1_LAMBDA = 0.01  # L1 weight decay (no book value: about the L2 pull on a weight of 0.1)
DROPOUT_RATIO = 0.2  # the book's dropout
PATIENCE = 20  # early stopping: epochs without a better validation accuracy
LABEL_SMOOTHING = 0.1  # target 0.9 on the label plus 0.1/10 on every class
MAX_SHIFT = 2.0  # augmentation: largest shift, pixels
MAX_DEGREES = 15.0  # augmentation: largest rotation, degrees
ENSEMBLE_SIZE = 5  # networks averaged by the ensemble
OUT = "regularization_compare.png"  # where the figure is written


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
            seeds=SEEDS,
            train_size=TRAIN_SIZE,
            validation_size=VALIDATION_SIZE,
            epochs=EPOCHS,
            lr=LEARNING_RATE,
            l2_lambda=L2_LAMBDA,
            l1_lambda=L1_LAMBDA,
            dropout_ratio=DROPOUT_RATIO,
            patience=PATIENCE,
            label_smoothing=LABEL_SMOOTHING,
            max_shift=MAX_SHIFT,
            max_degrees=MAX_DEGREES,
            ensemble_size=ENSEMBLE_SIZE,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_regularization_compare(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.table())
    print(result.summary())
    plot_regularization_compare(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
