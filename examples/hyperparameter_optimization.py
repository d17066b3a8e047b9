"""Random search for the learning rate and weight decay on a validation split, then a narrowed
second round (figure 6-24).

The book's ``ch06/hyperparameter_optimization.py`` as a script on xpscratch: change the
constants below, or pass ``--backend torch:cuda``, ``--quick`` (the library's short settings,
ignoring the size constants), ``--dtype float64``. The figure (book figure 6-24) goes to
``--out``; the numbers are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.hyperparameter_optimization import run_hyperparameter_optimization
from xpscratch.plot import plot_hyperparameter_optimization

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
TRIALS = 100  # random trials per round (the book's optimization_trial)
ROUNDS = 2  # round 2 searches the ranges spanned by round 1's best TOP_K
TOP_K = 5  # trials that define the narrowed ranges
EPOCHS = 50  # epochs per trial (the book's epocs)
RANGES = {"weight_decay": [-8.0, -4.0], "lr": [-6.0, -2.0]}  # log10 search ranges (the book's)
OUT = "hyperparameter_optimization.png"  # where the figure is written


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
            trials=TRIALS,
            rounds=ROUNDS,
            top_k=TOP_K,
            epochs=EPOCHS,
            ranges=RANGES,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_hyperparameter_optimization(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_hyperparameter_optimization(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
