"""Which regulariser helps, and by how much? The book's overfitting set-up trained eight ways.

No regularisation, L2 and L1 weight decay, dropout, early stopping, label smoothing, data
augmentation (random shifts and rotations, on the device) and an ensemble, each over several
seeds, on the 300-image, 7-layer set-up of the book's ``ch06/overfit_weight_decay.py``. Change
the settings below (``SETTINGS = FULL.replace(epochs=10)``) or on the command line (``--epochs
10``; ``--help`` lists every setting with its default), or pass ``--backend torch:cuda``,
``--quick`` (the library's short settings), ``--dtype float64``. The figure and every number go
to ``--out`` (``out/regularization_compare.png`` and ``.json``); the table and the conclusion
are printed.
"""

from __future__ import annotations

from xpscratch.experiments._script import run_example
from xpscratch.experiments.regularization_compare import FULL

BACKEND = "numpy"  # array library: numpy, torch, jax, cupy, array_api_strict (name:device)
SEED = 0  # initial weights, mini-batch order and any sampling all follow it
DTYPE = None  # float dtype: None (float32), "float32" or "float64"
DATASET = "mnist-small"  # mnist-small (embedded, offline), mnist or fashion-mnist
OUT = "out"  # folder for the figure and the JSON of every number
# the book's settings (FULL), each one with its comment in its module's Settings class
SETTINGS = FULL


def main(argv: list[str] | None = None) -> None:
    result = run_example(
        SETTINGS, __doc__, argv, backend=BACKEND, seed=SEED, dtype=DTYPE, dataset=DATASET, out=OUT
    )
    print(result.table())


if __name__ == "__main__":
    main()
