"""``xpscratch``: list and run the chapter's experiments from the command line.

    xpscratch list
    xpscratch run all                      # every experiment, the book's settings, numpy
    xpscratch run batch_norm_test --quick --backend torch:cuda --out results/
    xpscratch search --space lr=log:1e-6:1e-2,weight_decay=log:1e-8:1e-4 --trials 100 \
        --workers 4 --sampler tpe --storage sqlite:///study.db

Each run writes ``<out>/<name>.png`` (the book's figure) and ``<out>/<name>.json`` (layout
version ``schema``, the settings, backend, dtype, seed and dataset where the experiment uses
them, xpscratch version, time, and under ``result`` every measured number), both
atomically, and prints the conclusion in numbers; several experiments end with a summary
table (conclusion, time, files written, failures) and the total time.  A search prints
one line per finished trial and writes ``<out>/search.json`` (every trial),
``<out>/search_best20.png`` (the book's figure 6-24) and ``<out>/search_scatter.png``
(validation accuracy against each hyperparameter).  Usage errors (unknown experiment,
backend or dtype, a bad search space or storage, an output path that cannot be written, a
missing dataset or matplotlib) are found before any work and exit with status 2, a failed
experiment or search with 1; what finished before a failure is kept (each experiment's
files are written when it ends, a search's trials as each one ends).  ``--no-plot``
writes the JSON only (no matplotlib needed); ``--download`` fetches a missing dataset
first.  On JAX, ``run``, ``search`` and ``check`` keep compiled programs in JAX's
persistent compilation cache (:func:`xpscratch.backend.enable_compile_cache`), so the next
run loads them; ``--no-compile-cache`` or ``XPSCRATCH_COMPILE_CACHE=0`` turns it off.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from ._atomic import atomic_write_bytes
from ._interrupts import interrupt_of
from ._threads import limit_threads
from .backend import (
    BACKENDS,
    BackendError,
    compile_cache_warnings_once,
    enable_compile_cache,
    float_dtype,
    get_backend,
    use_backend,
)
from .datasets import DATASETS, load_mnist
from .experiments import EXPERIMENTS
from .experiments._common import result_record
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
from .search._storage import check_study_name
from .search._workers import SPAWN_HINT
from .search.space import SPACE_HELP

EXIT_USAGE = 2
DOWNLOAD_HELP = "download the dataset first if its files are missing (MD5-verified)"
NO_PLOT_HELP = "write the JSON only, no figures (matplotlib not needed)"
NO_COMPILE_CACHE_HELP = (
    "JAX: compile every program again instead of loading it from the compilation cache "
    "($XPSCRATCH_CACHE_DIR/jax or ~/.cache/xpscratch/jax; XPSCRATCH_COMPILE_CACHE=0 too)"
)

# library advice, and what a user of the command does instead
_CLI_ADVICE = (
    (re.compile(r"(?:use |call )?set_backend\('(\w+)'\)"), r"use --backend \1"),
    (re.compile(r"call load_mnist\([^)]*download=True\)"), "run again with --download"),
    (re.compile(r"pass download=True"), "add --download"),
    (re.compile(r" \(or pass data_dir=\.\.\.\)"), ""),
    (re.compile(r"dataset='([\w-]+)' \(the default\)"), r"--dataset \1 (the default)"),
    (re.compile(r"workers \(workers=N\)"), "--workers"),
    (re.compile(r"training set \(train_size=\)"), "--train-size"),
    (re.compile(r" The finished trials are kept \(SearchError\.trials\);"), ""),
)


def cli_message(message: str) -> str:
    """A library message with its advice rewritten for the command line."""
    for pattern, advice in _CLI_ADVICE:
        message = pattern.sub(advice, message)
    return message


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
        description="Run experiments (by name, or 'all') and write <out>/<name>.png and .json; "
        "'all' ends with a summary table.",
        epilog="experiments: " + ", ".join(EXPERIMENTS),
    )
    run.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="experiment name(s), or 'all' (listed below, and by 'xpscratch list')",
    )
    run.add_argument(
        "--backend",
        default=None,
        metavar="NAME[:DEVICE]",
        help=f"array backend, one of {', '.join(BACKENDS)}, optionally with a device "
        "(torch:cuda, array_api_strict:device1); default: $XPSCRATCH_BACKEND or numpy",
    )
    run.add_argument(
        "--dataset",
        default="mnist-small",
        choices=DATASETS,
        help="images to train on (default: mnist-small, embedded and offline)",
    )
    run.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)
    run.add_argument(
        "--seed",
        type=int,
        default=0,
        help="initial weights, mini-batch order and masks follow it (default: 0)",
    )
    run.add_argument(
        "--quick", action="store_true", help="fewer iterations/epochs/trials, for a fast look"
    )
    run.add_argument("--dtype", choices=("float32", "float64"), default=None)
    run.add_argument("--out", default="out", type=Path, help="output folder (default: ./out)")
    run.add_argument(
        "--no-progress", action="store_true", help="no progress bars (for logs and CI)"
    )
    run.add_argument("--no-plot", action="store_true", help=NO_PLOT_HELP)
    run.add_argument("--no-compile-cache", action="store_true", help=NO_COMPILE_CACHE_HELP)
    _search_parser(sub)
    from .check._cli import add_parser as add_check_parser  # loaded when parsing, like DATASETS

    add_check_parser(sub)
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
    s.add_argument(
        "--top-k",
        type=int,
        default=5,
        help="best trials whose span sizes the narrowed space (centred on the best)",
    )
    s.add_argument("--backend", default=None, metavar="NAME[:DEVICE]", help="as for 'run'")
    s.add_argument(
        "--dataset",
        default="mnist-small",
        choices=DATASETS,
        help="images, split into train and validation (default: mnist-small)",
    )
    s.add_argument("--download", action="store_true", help=DOWNLOAD_HELP)
    s.add_argument("--dtype", choices=("float32", "float64"), default=None)
    s.add_argument("--out", default="out", type=Path, help="output folder (default: ./out)")
    s.add_argument("--no-plot", action="store_true", help=NO_PLOT_HELP)
    s.add_argument("--no-compile-cache", action="store_true", help=NO_COMPILE_CACHE_HELP)


def _list() -> int:
    width = max(map(len, EXPERIMENTS))
    for name, exp in EXPERIMENTS.items():
        print(f"{name:<{width}}  {exp.description}")
    sys.stdout.flush()  # a closed pipe (xpscratch list | head) fails here, inside main()
    return 0


def _usage_error(message: str) -> int:
    print(f"xpscratch: error: {cli_message(message)}", file=sys.stderr)
    return EXIT_USAGE


def _check_out(out: Path, files: list[str]) -> None:
    """Refuse (before any work) an output folder or file that cannot be written.

    The folder is made and a probe file written in it, then both removed: permission bits
    do not tell everything (root passes ``os.access`` on ``/proc``, a read-only mount).
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder; give a folder for the results")
    existing = out
    while not existing.exists():  # the folder will be made inside the nearest existing one
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, so the folder cannot be made")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {existing} is not writable; choose another --out")
    for name in files:
        if (out / name).is_dir():
            raise ValueError(
                f"--out {out}: {out / name} is a folder; move it or choose another --out"
            )
    made = [out, *out.parents[: len(out.parents) - len(existing.parents) - 1]]
    made = [d for d in made if not d.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".xpscratch-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(
            f"--out {out}: cannot write there ({exc.strerror or exc}); choose another --out"
        ) from exc
    finally:  # leave nothing behind: the first write makes the folder again
        for d in made:  # deepest first
            with contextlib.suppress(OSError):
                d.rmdir()


def _check_plotting(args: argparse.Namespace) -> None:
    if not args.no_plot and importlib.util.find_spec("matplotlib") is None:
        raise ValueError(
            "drawing the figures needs matplotlib, which is not installed: pip install "
            "'xpscratch[plot]', or add --no-plot to write the numbers (JSON) only"
        )


def _run(args: argparse.Namespace) -> int:
    names = list(EXPERIMENTS) if "all" in args.names else list(dict.fromkeys(args.names))
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        return _usage_error(
            f"unknown experiment(s) {', '.join(map(repr, unknown))}; "
            f"choose from: all, {', '.join(EXPERIMENTS)} (see 'xpscratch list')"
        )
    if not 0 <= args.seed < 2**64:
        return _usage_error(f"--seed must be in [0, 2**64), got {args.seed}")
    try:
        _check_plotting(args)
        _check_out(args.out, [f"{n}.{ext}" for n in names for ext in ("json", "png")])
    except ValueError as exc:
        return _usage_error(str(exc))
    try:
        _check_dataset(args.dataset, args.download)
    except Exception as exc:  # DatasetError: missing files, with the fix in its message
        return _usage_error(f"--dataset {args.dataset}: {exc}")
    activated = _activate_backend(args)
    if isinstance(activated, int):
        return activated
    context, b = activated
    try:
        start = time.perf_counter()
        rows = [_run_one(EXPERIMENTS[name], args, b, atomic_write_bytes) for name in names]
        if len(rows) > 1:
            _print_table(rows, time.perf_counter() - start, args.out)
        return 1 if any(row["failed"] for row in rows) else 0
    finally:
        context.__exit__(None, None, None)


def _run_one(exp: Any, args: argparse.Namespace, b: Any, write: Any) -> dict[str, Any]:
    """Run, draw and record one experiment; its row of the summary table."""
    print(f"== {exp.name} ({exp.description}) on {b.name}:{b.device}", flush=True)
    start = time.perf_counter()
    row: dict[str, Any] = {"name": exp.name, "conclusion": "", "files": [], "failed": ""}
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
        if interrupt_of(exc) is not None:  # a Ctrl-C that JAX returned as a SystemError
            raise KeyboardInterrupt from None
        print(
            f"xpscratch: {exp.name} failed: {type(exc).__name__}: {cli_message(str(exc))}",
            file=sys.stderr,
        )
        row.update(failed=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start)
        return row
    out: Path = args.out
    png, js = out / f"{exp.name}.png", out / f"{exp.name}.json"
    try:
        if not args.no_plot:
            exp.plot(result, png)
            row["files"].append(png)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the numbers are still written
        print(f"xpscratch: {exp.name}: no figure: {type(exc).__name__}: {exc}", file=sys.stderr)
        row["failed"] = f"figure: {type(exc).__name__}: {exc}"
    # the time of the run and its figure
    elapsed = time.perf_counter() - start
    record = result_record(exp, result, quick=args.quick, elapsed_s=elapsed, version=__version__)
    summary = record["summary"]
    text = json.dumps(record, indent=1) + "\n"
    row.update(conclusion=summary.splitlines()[0] if summary else "", seconds=record["elapsed_s"])
    try:
        write(js, text.encode())
    except OSError as exc:  # a full disk: show the numbers that could not be kept, go on
        print(summary)
        print(f"== {exp.name}: the numbers that could not be saved:\n{text}", end="")
        print(f"xpscratch: {exp.name}: could not write {js}: {exc}", file=sys.stderr)
        row["failed"] = f"could not write {js}: {exc.strerror or exc}"
        return row
    row["files"].insert(0, js)
    print(summary)
    print(f"   wrote {' and '.join(map(str, row['files']))} ({row['seconds']:.1f} s)", flush=True)
    return row


def _print_table(rows: list[dict[str, Any]], total_s: float, out: Path) -> None:
    """The summary of a run of several experiments: one line each, then the total time."""
    width = max(len(r["name"]) for r in rows)
    print(f"\n== summary: {len(rows)} experiments, {sum(bool(r['failed']) for r in rows)} failed")
    print(f"{'experiment':<{width}}  {'time':>7}  files  conclusion (first line) / failure")
    for r in rows:
        what = f"FAILED {r['failed']}" if r["failed"] else r["conclusion"]
        if len(what) > 100:
            what = what[:97] + "..."
        print(f"{r['name']:<{width}}  {r['seconds']:>6.1f}s  {len(r['files']):>5}  {what}")
    print(f"total {total_s:.1f} s; files in {out}", flush=True)


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
        check_study_name(args.study_name, args.storage)
        make_optimizer(args.optimizer)  # an unknown name fails here, with the choices
        for name in ("trials", "workers", "top_k"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0 <= args.seed < 2**64:
            raise ValueError(f"--seed must be in [0, 2**64), got {args.seed}")
        _check_plotting(args)
        _check_out(args.out, list(SEARCH_FILES))
        available = _check_dataset(args.dataset, args.download)
        if args.train_size is not None and args.train_size > available:
            raise ValueError(
                f"--train-size {args.train_size}: {args.dataset!r} has {available} training "
                f"images; give at most {available}"
            )
    except Exception as exc:  # a bad space, storage, setting, output or missing dataset
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
                on_trial=_trial_printer(_trial_saver(args, atomic_write_bytes)),
            )
        except ImportError as exc:  # Optuna missing: the message names the extra to install
            return _usage_error(str(exc))
        except (SearchError, ValueError) as exc:
            # the `if __name__ == "__main__":` advice is for scripts; here the CLI is main
            why = str(exc).replace(SPAWN_HINT, "").strip()
            print(
                f"xpscratch: search failed: {cli_message(why)} (the finished trials "
                f"are in {args.out / SEARCH_FILES[0]})",
                file=sys.stderr,
            )
            return 1
    finally:
        context.__exit__(None, None, None)
    return _write_search(result, args, atomic_write_bytes)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--hidden must be positive sizes like 100,100; got {text!r}")
    return sizes


SEARCH_FILES = ("search.json", "search_best20.png", "search_scatter.png")


def _trial_saver(args: argparse.Namespace, write: Any) -> Any:
    """Rewrite ``<out>/search.json`` (atomically) with the trials finished so far."""
    trials: list[dict[str, Any]] = []

    def save(trial: dict[str, Any]) -> None:
        trials.append(trial)
        record = {
            "command": "search",
            "xpscratch_version": __version__,
            "partial": True,  # the search has not finished: these trials have
            "trials": trials,
        }
        path = args.out / SEARCH_FILES[0]
        try:
            write(path, (json.dumps(record, indent=1) + "\n").encode())
        except OSError as exc:  # a full disk: the search goes on, the trial is printed
            print(f"xpscratch: could not write {path}: {exc} (the search goes on)", file=sys.stderr)

    return save


def _trial_printer(save: Any = None) -> Any:
    best = [0.0]

    def show(trial: dict[str, Any], done: int, total: int) -> None:
        if save is not None:
            save(trial)
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


def _write_search(result: Any, args: argparse.Namespace, write: Any) -> int:
    """search.json first (every trial), then the figures; 1 if a step after it failed."""
    js, best20, scatter = (args.out / n for n in SEARCH_FILES)
    try:
        record = {
            "command": "search",
            "xpscratch_version": __version__,
            "summary": result.summary(),
            "next_round": None
            if result.at_chance()
            else f"--space {format_space(result.narrowed(args.top_k))}",
            "result": result.to_dict(),
        }
    except Exception as exc:  # keep every trial even if the summary cannot be made
        print(f"xpscratch: the search's summary failed: {exc}", file=sys.stderr)
        trials = {"trials": getattr(result, "trials", [])}
        record = {"command": "search", "xpscratch_version": __version__, "result": trials}
        write(js, (json.dumps(record, indent=1, default=str) + "\n").encode())
        return 1
    write(js, (json.dumps(record, indent=1) + "\n").encode())
    print(result.summary())
    if args.no_plot:
        print(f"   wrote {js}", flush=True)
        return 0
    try:
        plot_search_best20(result, best20)
        plot_search_scatter(result, scatter)
    except Exception as exc:
        print(
            f"xpscratch: the search's figures failed ({type(exc).__name__}: {exc}); "
            f"the trials are in {js}",
            file=sys.stderr,
        )
        return 1
    print(f"   wrote {js}, {best20} and {scatter}", flush=True)
    return 0


def _check_dataset(dataset: str, download: bool = False) -> int:
    """Fail before any experiment runs if the dataset's files are not there (or fetch them);
    the number of training images."""
    (x, _), _ = load_mnist(dataset=dataset, download=download)
    return len(x)


def _activate_backend(args: argparse.Namespace) -> tuple[Any, Any] | int:
    """Enter ``--backend`` and check ``--dtype`` on it: (context, Backend), or exit status 2."""
    backend, device = _split_spec(args.backend)
    try:
        context = use_backend(backend, device) if backend else _active_backend()
        b = context.__enter__()
    except BackendError as exc:  # without --backend, the message names $XPSCRATCH_BACKEND
        return _usage_error(f"--backend {args.backend}: {exc}" if backend else str(exc))
    if str(b.device) == "meta":  # torch's meta device holds no data: no number comes back
        context.__exit__(None, None, None)
        return _usage_error(
            f"--backend {args.backend}: torch's meta device holds no data, so no result can be "
            "read back; use torch:cpu or torch:cuda"
        )
    try:
        float_dtype(b.xp, args.dtype, b.device)
    except BackendError as exc:
        context.__exit__(None, None, None)
        return _usage_error(f"--dtype {args.dtype}: {exc}")
    if b.name == "jax" and not args.no_compile_cache:
        enable_compile_cache()  # a new process loads what an earlier one compiled
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
        # one BLAS thread (see xpscratch._threads); one line for JAX's cache errors
        with limit_threads(), compile_cache_warnings_once():
            if args.command == "search":
                return _search(args)
            if args.command == "check":
                from .check._cli import main as check_main

                return check_main(args)
            return _list() if args.command == "list" else _run(args)
    except KeyboardInterrupt:
        print("xpscratch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader has gone (| head): stop quietly, as the docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
    except Exception as exc:  # never a raw traceback: name the problem and stop
        if interrupt_of(exc) is not None:  # a Ctrl-C that JAX returned as a SystemError
            print("xpscratch: interrupted", file=sys.stderr)
            return 130
        print(f"xpscratch: error: {type(exc).__name__}: {cli_message(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
