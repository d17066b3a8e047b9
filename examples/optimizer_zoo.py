"""SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam and Newton's method on four 2-D surfaces: the
book's bowl, a saddle, Rosenbrock's valley and Himmelblau's four minima.

Figure 6-8 of the book extended: paths over the contours and the distance to the nearest
minimum (or from the saddle point) against the step. Change the constants below, or pass
``--backend torch:cuda``, ``--dtype float64``. The figure goes to ``--out``; the numbers are
printed.
"""

from __future__ import annotations

import argparse

import xpscratch
from xpscratch.experiments.optimizer_zoo import FULL, run_optimizer_zoo
from xpscratch.plot import plot_optimizer_zoo

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # recorded only: nothing here is random
DTYPE = None  # float dtype: None (float32), 'float32' or 'float64'
DATASET = "mnist-small"  # recorded only: no data is used
SURFACES = ["bowl", "saddle", "rosenbrock", "himmelblau"]  # which surfaces, in this order
METHODS = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "Newton"]
# updates per surface: the book's 30 on the bowl; enough for SGD to leave the saddle
STEPS = {"bowl": 30, "saddle": 400, "rosenbrock": 2000, "himmelblau": 200}
START = {
    "bowl": [-7.0, 2.0],
    "saddle": [1.0, 1e-3],
    "rosenbrock": [-1.5, 2.0],
    "himmelblau": [-0.27, -0.92],
}
LEARNING_RATES = FULL["learning_rates"]  # per surface and method (Newton's: its step size)
ESCAPE_RADIUS = 1.0  # the saddle counts as left once |y| exceeds this
OUT = "optimizer_zoo.png"  # where the figure is written


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
    overrides = dict(
        surfaces=SURFACES,
        methods=METHODS,
        steps=STEPS,
        start=START,
        learning_rates=LEARNING_RATES,
        escape_radius=ESCAPE_RADIUS,
    )
    with xpscratch.use_backend(name, device or None):
        result = run_optimizer_zoo(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=True,
            **overrides,
        )
    print(result.summary())
    plot_optimizer_zoo(result, args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
