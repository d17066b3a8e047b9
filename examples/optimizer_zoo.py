"""SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam and Newton's method on four 2-D surfaces: the
book's bowl, a saddle, Rosenbrock's valley and Himmelblau's four minima.

Figure 6-8 of the book extended: paths over the contours and the distance to the nearest
minimum (or from the saddle point) against the step. Change the settings below (``SETTINGS =
FULL.replace(tolerance=0.01)``) or on the command line (``--tolerance 0.01``; ``--help`` lists
every setting with its default), or pass ``--backend torch:cuda``, ``--dtype float64``. The
figure and every number go to ``--out`` (``out/optimizer_zoo.png`` and ``.json``); the
conclusion is printed.
"""

from __future__ import annotations

from xpscratch.experiments._script import run_example
from xpscratch.experiments.optimizer_zoo import FULL

BACKEND = "numpy"  # array library: numpy, torch, jax, cupy, array_api_strict (name:device)
DTYPE = None  # float dtype: None (float32), "float32" or "float64"
OUT = "out"  # folder for the figure and the JSON of every number
# the book's settings (FULL), each one with its comment in its module's Settings class
SETTINGS = FULL


def main(argv: list[str] | None = None) -> None:
    run_example(SETTINGS, __doc__, argv, backend=BACKEND, dtype=DTYPE, out=OUT)


if __name__ == "__main__":
    main()
