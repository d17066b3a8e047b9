"""Activation histograms of 5 layers for weight std 1, 0.01, Xavier and He, with sigmoid, tanh and
ReLU (figures 6-10 to 6-14).

The book's ``ch06/weight_init_activation_histogram.py`` as a script on xpscratch. Change the
settings below (``SETTINGS = FULL.replace(samples=200)``) or on the command line (``--samples
200``; ``--help`` lists every setting with its default), or pass ``--backend torch:cuda``,
``--dtype float64``. The figure and every number go to ``--out``
(``out/weight_init_activation_histogram.png`` and ``.json``); the conclusion is printed.
"""

from __future__ import annotations

from xpscratch.experiments._script import run_example
from xpscratch.experiments.weight_init_activation_histogram import FULL

BACKEND = "numpy"  # array library: numpy, torch, jax, cupy, array_api_strict (name:device)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), "float32" or "float64"
OUT = "out"  # folder for the figure and the JSON of every number
# the book's settings (FULL), each one with its comment in its module's Settings class
SETTINGS = FULL


def main(argv: list[str] | None = None) -> None:
    run_example(SETTINGS, __doc__, argv, backend=BACKEND, seed=SEED, dtype=DTYPE, out=OUT)


if __name__ == "__main__":
    main()
