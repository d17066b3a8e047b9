"""Activation histograms of 5 layers for weight std 1, 0.01, Xavier and He, with sigmoid, tanh and
ReLU (figures 6-10 to 6-14).

The book's ``ch06/weight_init_activation_histogram.py`` as a script on xpscratch: change the
constants below, or pass ``--backend torch:cuda``, ``--quick`` (the library's short settings,
ignoring the size constants), ``--dtype float64``. The figure (book figure 6-10 to 6-14) goes to
``--out``; the numbers are printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.weight_init_activation_histogram import (
    run_weight_init_activation_histogram,
)
from xpscratch.plot import plot_weight_init_activation_histogram

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
SAMPLES = 1000  # random input vectors
NODE_NUM = 100  # units per layer
HIDDEN_LAYER_SIZE = 5  # layers
OUT = "weight_init_activation_histogram.png"  # where the figure is written


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
            samples=SAMPLES,
            node_num=NODE_NUM,
            hidden_layer_size=HIDDEN_LAYER_SIZE,
        )
    )
    with xpscratch.use_backend(name, device or None):
        result = run_weight_init_activation_histogram(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_weight_init_activation_histogram(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
