"""The same overfitting set-up trained by the book's Trainer with and without dropout (figure
6-23).

The book's ``ch06/overfit_dropout.py`` as a script on xpscratch. Change the settings below
(``SETTINGS = FULL.replace(epochs=10)``) or on the command line (``--epochs 10``; ``--help``
lists every setting with its default), or pass ``--backend torch:cuda``, ``--quick`` (the
library's short settings), ``--dtype float64``. The figure and every number go to ``--out``
(``out/overfit_dropout.png`` and ``.json``); the conclusion is printed.
"""

from __future__ import annotations

from xpscratch.experiments._script import run_example
from xpscratch.experiments.overfit_dropout import FULL

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
