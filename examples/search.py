"""The book's hyperparameter search in two rounds, in parallel, with TPE as the alternative
(xpscratch.search).

Round 1 samples the learning rate and weight decay on a log scale (the book's ranges) and
judges each trial on a validation split; round 2 searches the ranges spanned by round 1's
best trials, as the book does by reading figure 6-24.  ``--sampler tpe`` lets Optuna's TPE
choose the trials instead (``pip install 'xpscratch[search]'``); ``--storage
sqlite:///study.db`` keeps both rounds in a database, so that an interrupted run resumes
where it stopped and other machines can join with the same command.  Figures go to
``--out``; the numbers are printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xpscratch
from xpscratch.plot import plot_search_best20, plot_search_scatter
from xpscratch.search import BOOK_SPACE, Objective, format_space, parse_space, search

BACKEND = "numpy"  # array library: numpy, torch, cupy, array_api_strict (name:device allowed)
SEED = 0  # hyperparameter draws, initial weights and mini-batch order all follow it
SPACE = BOOK_SPACE  # lr=log:1e-6:1e-2,weight_decay=log:1e-8:1e-4 (the book's ranges)
TRIALS = 100  # trials per round (the book's optimization_trial)
ROUNDS = 2  # round 2 searches the ranges of round 1's best TOP_K
TOP_K = 5  # trials that define the narrowed ranges
EPOCHS = 50  # epochs per trial (the book's epocs)
PRUNE_AFTER = None  # e.g. 20: stop trials still at chance level after this many epochs
WORKERS = 2  # processes running trials at once (random search: the same numbers for any)
OUT = "out/search"  # folder for the figures
QUICK_TRIALS, QUICK_EPOCHS = 20, 30  # --quick: the library's quick search (lr >= 5e-3 learns)


def _count(text: str) -> int:
    """A count option: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1 (nothing would run)")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--backend", default=BACKEND, help="NAME[:DEVICE]")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--trials", type=_count, default=None, help=f"per round (default: {TRIALS})"
    )
    parser.add_argument(
        "--epochs", type=_count, default=None, help=f"per trial (default: {EPOCHS})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a fast look: {QUICK_TRIALS} trials of {QUICK_EPOCHS} epochs per round",
    )
    parser.add_argument("--workers", type=_count, default=WORKERS)
    parser.add_argument("--sampler", choices=("random", "tpe"), default="random")
    parser.add_argument("--storage", default=None, help="e.g. sqlite:///study.db")
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)

    trials = args.trials or (QUICK_TRIALS if args.quick else TRIALS)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    name, _, device = args.backend.partition(":")
    try:  # a message and exit 2 before any work, never a traceback
        with xpscratch.use_backend(name, device or None):
            pass
    except xpscratch.BackendError as exc:
        parser.error(f"--backend {args.backend}: {exc}")
    objective = Objective(epochs=epochs, seed=args.seed, prune_after=PRUNE_AFTER)
    space = SPACE
    with xpscratch.use_backend(name, device or None):
        for r in range(1, ROUNDS + 1):
            print(f"== round {r}: {format_space(parse_space(space))}")
            result = search(
                space,
                trials,
                objective,
                sampler=args.sampler,
                seed=args.seed,
                workers=args.workers,
                storage=args.storage,
                study_name=f"example-round{r}",
            )
            print(result.summary())
            out = Path(args.out)
            plot_search_best20(result, out / f"round{r}_best20.png")
            plot_search_scatter(result, out / f"round{r}_scatter.png")
            if result.at_chance():  # the summary said why: no round narrowed around noise
                break
            space = result.narrowed(TOP_K)
    print(f"figures written to {args.out}/")


if __name__ == "__main__":  # worker processes import this file: start searches only here
    main()
