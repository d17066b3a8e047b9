"""``xpscratch``: list and run the chapter's experiments from the command line.

    xpscratch list
    xpscratch run all                      # every experiment, the book's settings, numpy
    xpscratch run batch_norm_test --quick --backend torch:cuda --out results/

Each run writes ``<out>/<name>.png`` (the book's figure) and ``<out>/<name>.json`` (the
settings, backend, dtype, seed, xpscratch version and every measured number), both
atomically, and prints the conclusion in numbers.  Usage errors (unknown experiment,
backend or dtype) exit with status 2, a failed experiment with 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .backend import BACKENDS, BackendError, float_dtype, use_backend

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    from .datasets import DATASETS

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
    return p


def _list() -> int:
    from .experiments import EXPERIMENTS

    width = max(map(len, EXPERIMENTS))
    for name, exp in EXPERIMENTS.items():
        print(f"{name:<{width}}  {exp.description}")
    return 0


def _usage_error(message: str) -> int:
    print(f"xpscratch: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    from .experiments import EXPERIMENTS
    from .experiments._common import atomic_write_bytes

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
    backend, device = _split_spec(args.backend)
    try:
        context = use_backend(backend, device) if backend else _active_backend()
        b = context.__enter__()
    except BackendError as exc:
        return _usage_error(f"--backend {args.backend}: {exc}")
    try:
        try:
            float_dtype(b.xp, args.dtype, b.device)
        except BackendError as exc:
            return _usage_error(f"--dtype {args.dtype}: {exc}")
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


def _check_dataset(dataset: str) -> None:
    """Fail before any experiment runs if the dataset's files are not there."""
    from .datasets import load_mnist

    load_mnist(dataset=dataset)


def _split_spec(spec: str | None) -> tuple[str | None, str | None]:
    if spec is None:
        return None, None
    name, _, device = spec.strip().partition(":")
    return name, (device or None)


class _active_backend:
    """A context manager that leaves the active backend as it is (and reports it)."""

    def __enter__(self) -> Any:
        from .backend import get_backend

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
        return _list() if args.command == "list" else _run(args)
    except KeyboardInterrupt:
        print("xpscratch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
