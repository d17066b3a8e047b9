"""``xpscratch``: list and run the chapter's experiments from the command line.

    xpscratch list
    xpscratch run all                      # every experiment, the book's settings, numpy
    xpscratch run batch_norm_test --quick --backend torch:cuda --out results/
    xpscratch search --space lr=log:1e-6:1e-2,weight_decay=log:1e-8:1e-4 --trials 100 \
        --workers 4 --sampler tpe --storage sqlite:///study.db

Each run writes ``<out>/<name>.png`` (the book's figure) and ``<out>/<name>.json`` (the
settings, backend, dtype, seed, xpscratch version and every measured number), both
atomically, and prints the conclusion in numbers.  A search prints one line per finished
trial and writes ``<out>/search.json`` (every trial), ``<out>/search_best20.png`` (the
book's figure 6-24) and ``<out>/search_scatter.png`` (validation accuracy against each
hyperparameter).  Usage errors (unknown experiment, backend or dtype, a bad search space
or storage) exit with status 2, a failed experiment or search with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from ._atomic import atomic_write_bytes
from .backend import BACKENDS, BackendError, float_dtype, get_backend, use_backend
from .datasets import DATASETS, load_mnist
from .experiments import EXPERIMENTS
from .optim import make_optimizer
from .plot import plot_search_best20, plot_search_scatter
from .search import (
    BOOK_SPACE,
    SAMPLERS,
    Objective,
    SearchError,
    check_storage,
    format_space,
    parse_space,
    search,
)
from .search.space import SPACE_HELP

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xpscratch",
        description="Deep Learning from Scratch, chapter 6: the experiments on any array backend.",
    )
    p.add_argument("--version", action="version", version=f"xpscratch {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("list", help="list the experiments")
    run = sub.add_parser(
        "run",
        help="run experiments and save their figures and numbers",
        description="Run experiments (by name, or 'all') and write <out>/<name>.png and .json.",
    )
    run.add_argument("names", nargs="+", metavar="NAME", help="experiment name(s), or 'all'")
    run.add_argument(
        "--backend",
        default=None,
        metavar="NAME[:DEVICE]",
        help=f"array backend, one of {', '.join(BACKENDS)}, optionally with a device "
        "(torch:cuda, array_api_strict:device1); default: $XPSCRATCH_BACKEND or numpy",
    )
    run.add_argument("--dataset", default="mnist-small", choices=DATASETS)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--quick", action="store_true", help="fewer iterations/epochs/trials, for a fast look"
    )
    run.add_argument("--dtype", choices=("float32", "float64"), default=None)
    run.add_argument("--out", default="out", type=Path, help="output folder (default: ./out)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    _search_parser(sub)
    return p


def _search_parser(sub: Any) -> None:
    s = sub.add_parser(
        "search",
        help="hyperparameter search (random or TPE), in parallel and resumable",
        description="Search hyperparameters of the book's network on a train/validation split "
        "(never the test set); write <out>/search.json, search_best20.png, search_scatter.png.",
    )
    s.add_argument("--space", default=BOOK_SPACE, help=f"{SPACE_HELP}; default: the book's")
    s.add_argument("--trials", type=int, default=100, help="number of trials (default: 100)")
    s.add_argument("--workers", type=int, default=1, help="processes running trials at once")
    s.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help="keep the study in an Optuna storage, to resume it and share it between "
        "machines: sqlite:///study.db, journal:study.log, postgresql://user:pw@host/db",
    )
    s.add_argument("--study-name", default="xpscratch-search", help="the study in the storage")
    s.add_argument("--sampler", choices=SAMPLERS, default="random")
    s.add_argument("--seed", type=int, default=0, help="sampler seed and network seed")
    s.add_argument("--epochs", type=int, default=50, help="epochs per trial (default: 50)")
    s.add_argument("--train-size", type=int, default=500, help="images, before the split")
    s.add_argument("--optimizer", default="sgd", help="unless searched (default: sgd)")
    s.add_argument(
        "--hidden",
        default="100,100,100,100,100,100",
        metavar="SIZES",
        help="hidden layer sizes (default: the book's 100,100,100,100,100,100)",
    )
    s.add_argument(
        "--prune-after",
        type=int,
        default=None,
        metavar="EPOCHS",
        help="stop a trial still within 0.05 of chance accuracy after this many epochs",
    )
    s.add_argument("--top-k", type=int, default=5, help="trials the narrowed space spans")
    s.add_argument("--backend", default=None, metavar="NAME[:DEVICE]", help="as for 'run'")
    s.add_argument("--dataset", default="mnist-small")
    s.add_argument("--dtype", choices=("float32", "float64"), default=None)
    s.add_argument("--out", default="out", type=Path, help="output folder (default: ./out)")


def _list() -> int:
    width = max(map(len, EXPERIMENTS))
    for name, exp in EXPERIMENTS.items():
        print(f"{name:<{width}}  {exp.description}")
    sys.stdout.flush()  # a closed pipe (xpscratch list | head) fails here, inside main()
    return 0


def _usage_error(message: str) -> int:
    print(f"xpscratch: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    names = list(EXPERIMENTS) if "all" in args.names else list(dict.fromkeys(args.names))
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        return _usage_error(
            f"unknown experiment(s) {', '.join(map(repr, unknown))}; "
            f"choose from: all, {', '.join(EXPERIMENTS)} (see 'xpscratch list')"
        )
    if args.seed < 0:
        return _usage_error(f"--seed must be >= 0, got {args.seed}")
    try:
        _check_dataset(args.dataset)
    except Exception as exc:  # DatasetError: missing files, with the fix in its message
        return _usage_error(f"--dataset {args.dataset}: {exc}")
    activated = _activate_backend(args)
    if isinstance(activated, int):
        return activated
    context, b = activated
    try:
        failed = 0
        for name in names:
            failed += _run_one(EXPERIMENTS[name], args, b, atomic_write_bytes)
        return 1 if failed else 0
    finally:
        context.__exit__(None, None, None)


def _run_one(exp: Any, args: argparse.Namespace, b: Any, write: Any) -> int:
    print(f"== {exp.name} ({exp.description}) on {b.name}:{b.device}", flush=True)
    start = time.perf_counter()
    try:
        result = exp.run(
            seed=args.seed,
            quick=args.quick,
            dataset=args.dataset,
            dtype=args.dtype,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # report and go on with the next experiment
        print(f"xpscratch: {exp.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out: Path = args.out
    png, js = out / f"{exp.name}.png", out / f"{exp.name}.json"
    record = {
        "experiment": exp.name,
        "book_figures": exp.book_figures,
        "xpscratch_version": __version__,
        "backend": result.backend,
        "device": result.device,
        "dtype": result.dtype,
        "seed": result.seed,
        "dataset": result.dataset,
        "quick": bool(args.quick),
        "settings": result.to_dict()["settings"],
        "elapsed_s": round(time.perf_counter() - start, 3),
        "summary": result.summary(),
        "result": result.to_dict(),
    }
    write(js, (json.dumps(record, indent=1) + "\n").encode())
    exp.plot(result, png)
    print(result.summary())
    print(f"   wrote {png} and {js} ({record['elapsed_s']:.1f} s)", flush=True)
    return 0


def _search(args: argparse.Namespace) -> int:
    try:
        space = parse_space(args.space)
        objective = Objective(
            dataset=args.dataset,
            train_size=args.train_size,
            hidden_size_list=_sizes(args.hidden),
            optimizer=args.optimizer,
            epochs=args.epochs,
            seed=args.seed,
            dtype=args.dtype,
            prune_after=args.prune_after,
        )
        objective.check(space)
        check_storage(args.storage)
        make_optimizer(args.optimizer)  # an unknown name fails here, with the choices
        for name in ("trials", "workers", "top_k"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
        _check_dataset(args.dataset)
    except Exception as exc:  # a bad space, storage, setting or missing dataset
        return _usage_error(str(exc))
    activated = _activate_backend(args)
    if isinstance(activated, int):
        return activated
    context, b = activated
    try:
        print(
            f"== search: {args.trials} trials, {args.sampler} sampler, {args.workers} worker(s) "
            f"on {b.name}:{b.device}" + (f", study {args.study_name!r}" if args.storage else ""),
            flush=True,
        )
        try:
            result = search(
                space,
                args.trials,
                objective,
                sampler=args.sampler,
                seed=args.seed,
                workers=args.workers,
                storage=args.storage,
                study_name=args.study_name,
                on_trial=_trial_printer(),
            )
        except ImportError as exc:  # Optuna missing: the message names the extra to install
            return _usage_error(str(exc))
        except (SearchError, ValueError) as exc:
            print(f"xpscratch: search failed: {exc}", file=sys.stderr)
            return 1
    finally:
        context.__exit__(None, None, None)
    _write_search(result, args, atomic_write_bytes)
    return 0


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--hidden must be positive sizes like 100,100; got {text!r}")
    return sizes


def _trial_printer() -> Any:
    best = [0.0]

    def show(trial: dict[str, Any], done: int, total: int) -> None:
        best[0] = max(best[0], trial["value"])
        params = " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in trial["params"].items()
        )
        state = "" if trial["state"] == "complete" else f" {trial['state']}"
        print(
            f"trial {trial['number']:>4} ({done}/{total})  {params}  val acc "
            f"{trial['value']:.3f}{state} ({trial['epochs']} epochs, {trial['seconds']:.1f} s)"
            f"  best {best[0]:.3f}",
            flush=True,
        )

    return show


def _write_search(result: Any, args: argparse.Namespace, write: Any) -> None:
    out: Path = args.out
    record = {
        "command": "search",
        "xpscratch_version": __version__,
        "summary": result.summary(),
        "next_round": f"--space {format_space(result.narrowed(args.top_k))}",
        "result": result.to_dict(),
    }
    js, best20, scatter = (
        out / n for n in ("search.json", "search_best20.png", "search_scatter.png")
    )
    write(js, (json.dumps(record, indent=1) + "\n").encode())
    plot_search_best20(result, best20)
    plot_search_scatter(result, scatter)
    print(result.summary())
    print(f"   wrote {js}, {best20} and {scatter}", flush=True)


def _check_dataset(dataset: str) -> None:
    """Fail before any experiment runs if the dataset's files are not there."""
    load_mnist(dataset=dataset)


def _activate_backend(args: argparse.Namespace) -> tuple[Any, Any] | int:
    """Enter ``--backend`` and check ``--dtype`` on it: (context, Backend), or exit status 2."""
    backend, device = _split_spec(args.backend)
    try:
        context = use_backend(backend, device) if backend else _active_backend()
        b = context.__enter__()
    except BackendError as exc:
        return _usage_error(f"--backend {args.backend}: {exc}")
    try:
        float_dtype(b.xp, args.dtype, b.device)
    except BackendError as exc:
        context.__exit__(None, None, None)
        return _usage_error(f"--dtype {args.dtype}: {exc}")
    return context, b


def _split_spec(spec: str | None) -> tuple[str | None, str | None]:
    if spec is None:
        return None, None
    name, _, device = spec.strip().partition(":")
    return name, (device or None)


class _active_backend:
    """A context manager that leaves the active backend as it is (and reports it)."""

    def __enter__(self) -> Any:
        return get_backend()

    def __exit__(self, *exc: Any) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    """The ``xpscratch`` command; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        if args.command == "search":
            return _search(args)
        return _list() if args.command == "list" else _run(args)
    except KeyboardInterrupt:
        print("xpscratch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader has gone (| head): stop quietly, as the docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1


if __name__ == "__main__":
    sys.exit(main())
