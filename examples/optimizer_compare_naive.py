"""Six optimizers race down f(x, y) = x**2/20 + y**2 from (-7, 2) (figure 6-8).

The book's ``ch06/optimizer_compare_naive.py`` as a script on xpscratch. Change the settings
below (``SETTINGS = FULL.replace(steps=10)``) or on the command line (``--steps 10``;
``--help`` lists every setting with its default), or pass ``--backend torch:cuda``, ``--dtype
float64``. The figure and every number go to ``--out`` (``out/optimizer_compare_naive.png`` and
``.json``); the conclusion is printed.
"""

from __future__ import annotations

from xpscratch.experiments._script import run_example
from xpscratch.experiments.optimizer_compare_naive import FULL

BACKEND = "numpy"  # array library: numpy, torch, jax, cupy, array_api_strict (name:device)
DTYPE = None  # float dtype: None (float32), "float32" or "float64"
OUT = "out"  # folder for the figure and the JSON of every number
# the book's settings (FULL), each one with its comment in its module's Settings class
SETTINGS = FULL


def main(argv: list[str] | None = None) -> None:
    run_example(SETTINGS, __doc__, argv, backend=BACKEND, dtype=DTYPE, out=OUT)


if __name__ == "__main__":
    main()
