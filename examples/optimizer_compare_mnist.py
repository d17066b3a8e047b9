"""SGD, Momentum, AdaGrad, Adam, Nesterov and RMSprop train the same 5-layer net on MNIST (figure
6-9).

The book's ``ch06/optimizer_compare_mnist.py`` as a script on xpscratch. Change the settings
below (``SETTINGS = FULL.replace(iterations=500)``) or on the command line (``--iterations
500``; ``--help`` lists every setting with its default), or pass ``--backend torch:cuda``,
``--quick`` (the library's short settings), ``--dtype float64``. The figure and every number go
to ``--out`` (``out/optimizer_compare_mnist.png`` and ``.json``); the conclusion is printed.
"""

from __future__ import annotations

from xpscratch.experiments._script import run_example
from xpscratch.experiments.optimizer_compare_mnist import FULL

BACKEND = "numpy"  # array library: numpy, torch, jax, cupy, array_api_strict (name:device)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), "float32" or "float64"
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
OUT = "out"  # folder for the figure and the JSON of every number
# the book's settings (FULL), each one with its comment in its module's Settings class
SETTINGS = FULL


def main(argv: list[str] | None = None) -> None:
    run_example(
        SETTINGS, __doc__, argv, backend=BACKEND, seed=SEED, dtype=DTYPE, dataset=DATASET, out=OUT
    )


if __name__ == "__main__":
    main()
