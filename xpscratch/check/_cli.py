"""The ``xpscratch check`` subcommand: its arguments, and running it to an exit status."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .._atomic import atomic_open
from ..backend import BACKENDS, enable_compile_cache
from . import EXIT_FAILED, EXIT_PASSED, EXIT_USAGE, GROUPS, _baseline, run


def add_parser(sub: Any) -> None:
    """Register ``check`` on the ``xpscratch`` command's subparsers."""
    p = sub.add_parser(
        "check",
        help="prove a backend and device against NumPy, and say how close",
        description="Run the cross-backend battery (random numbers, layers, optimizers, "
        "training, the book's experiments, GPU sync and matmul precision) against NumPy "
        "computed in the same run. Exit status: 0 every selected backend and dtype ran "
        "and passed; 1 a group failed (a device that cannot draw the random numbers "
        "fails), or with --baseline a case moved; 2 bad usage (checked before any work: "
        "an unknown group, a --json or --save-baseline path that cannot be written, an "
        "unreadable --baseline) or a selected backend not usable here; 3 NOTHING CHECKED: "
        "a selected backend, device or dtype ran no case (every group skipped), never a "
        "pass. A failure outranks 2, and 2 outranks 3.",
    )
    p.add_argument(
        "--backend",
        action="append",
        metavar="NAME[:DEVICE]",
        help=f"backend to check, one of {', '.join(BACKENDS)} with an optional device "
        "(torch:cuda, array_api_strict:device1); repeat for several; 'all' (the default): "
        "every usable backend and device",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64", "both"),
        default=None,
        help="default: both (with --baseline: the baseline's)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        default=None,
        help="the test suite's short experiment runs instead of each experiment's --quick size",
    )
    p.add_argument("--json", metavar="FILE", help="also write the whole report as JSON")
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="JAX: compile every program again instead of loading it from the compilation "
        "cache ($XPSCRATCH_CACHE_DIR/jax or ~/.cache/xpscratch/jax; XPSCRATCH_COMPILE_CACHE=0 "
        "too)",
    )
    p.add_argument(
        "--allow-tf32",
        action="store_true",
        help="GPU: keep TF32 float32 matmuls, with TF32's looser float32 tolerance",
    )
    p.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help=f"run only this group (repeatable): {', '.join(GROUPS)}",
    )
    p.add_argument(
        "--save-baseline",
        metavar="FILE",
        help="also save this run's own results (hashes of bits, values otherwise) and its "
        "environment, for a later --baseline on the same backend and device",
    )
    p.add_argument(
        "--baseline",
        metavar="FILE",
        help="also compare this run with a saved baseline: every case that moved (bits "
        f"changed, or a value by more than {_baseline.ULPS} ulp), the first of them, and "
        "what changed in the environment; runs the baseline's backends, dtypes, groups "
        "and battery unless given",
    )


def main(args: argparse.Namespace) -> int:
    if args.group and any(g not in GROUPS for g in args.group):
        return _usage(f"unknown group in {args.group}; choose from {list(GROUPS)}")
    for option, path in (("--json", args.json), ("--save-baseline", args.save_baseline)):
        why = path and unwritable(path)
        if why:
            return _usage(f"{option} {path}: {why}")
    baseline = None
    if args.baseline:
        try:
            baseline = _baseline.load(args.baseline)
        except _baseline.BaselineError as exc:
            return _usage(f"--baseline {args.baseline}: {exc}")
        why = _adopt(args, _baseline.selection(baseline))
        if why:
            return _usage(f"--baseline {args.baseline}: {why}")
    specs = args.backend or ["all"]
    if not args.no_compile_cache and any(s == "all" or s.startswith("jax") for s in specs):
        enable_compile_cache()  # a cached program gives the same bits as a fresh compile
    recorder = _baseline.Recorder() if baseline or args.save_baseline else None
    start = time.perf_counter()
    try:
        report = run(
            None if "all" in specs else specs,
            dtype=args.dtype or "both",
            quick=bool(args.quick),
            allow_tf32=args.allow_tf32,
            groups=args.group,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            watch=recorder.watch if recorder else None,
        )
        comparison = _baseline.compare(baseline, report, recorder) if baseline else None
    except Exception as exc:  # a bug in the check itself: a message, never a traceback
        print(
            f"xpscratch check: the check itself failed: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    for spec, why in report.unusable.items():
        print(f"xpscratch check: --backend {spec}: {why}", file=sys.stderr)
    print(report.format())
    status = report.exit_status
    if comparison is not None:
        print(comparison.format())
        if status == EXIT_FAILED or comparison.exit_status == EXIT_FAILED:
            status = EXIT_FAILED
        elif status == EXIT_PASSED:
            status = comparison.exit_status
    print(f"total {time.perf_counter() - start:.1f} s")
    if args.json:
        data = report.to_dict()
        if comparison is not None:
            data["baseline"] = {"file": args.baseline, **comparison.to_dict()}
        data["exit_status"], data["passed"] = status, status == EXIT_PASSED
        if not _write(args.json, "--json", json.dumps(data, indent=1, default=str) + "\n"):
            return EXIT_USAGE
    if args.save_baseline and recorder is not None:
        if not _write(args.save_baseline, "--save-baseline", _baseline.save_data(report, recorder)):
            return EXIT_USAGE
    if comparison is not None or args.save_baseline:
        print(f"exit status {status}")
    return status


def _usage(message: str) -> int:
    print(f"xpscratch check: {message}", file=sys.stderr)
    return EXIT_USAGE


def _write(path: str, option: str, data: str | bytes) -> bool:
    """Write a report atomically; a message (no traceback) if it fails after all."""
    try:
        with atomic_open(path) as f:
            f.write(data.encode() if isinstance(data, str) else data)
    except OSError as exc:  # e.g. the disk filled during the run
        print(f"xpscratch check: {option} {path}: not written: {exc}", file=sys.stderr)
        return False
    print(f"wrote {path}")
    return True


def _adopt(args: argparse.Namespace, saved: dict) -> str | None:
    """Run what the baseline ran where the command line does not say; refuse a battery
    size or TF32 setting other than the baseline's (its numbers would differ)."""
    args.backend = args.backend or saved["backends"]
    args.dtype = args.dtype or saved["dtype"]
    args.group = args.group or saved["groups"]
    if args.quick is None:
        args.quick = saved["quick"]
    if bool(args.quick) != saved["quick"]:
        size = "the quick battery (--quick)" if saved["quick"] else "the full battery (no --quick)"
        return f"it was saved with {size}; run the same battery"
    if args.allow_tf32 != saved["allow_tf32"]:
        return f"it was saved with TF32 {'allowed' if saved['allow_tf32'] else 'off'}; use the same"
    return None


def unwritable(path: str) -> str | None:
    """Why a report file cannot be written at ``path`` (None: it can), found before any
    work by creating and removing a file beside it: a folder, a missing folder, a
    read-only file or a read-only file system is refused, not found after the battery."""
    p = Path(path)
    if p.is_dir():
        return f"is a folder; give a file name, e.g. {p / 'report.json'}"
    folder = p.resolve().parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist; create it first"
    if p.exists() and not os.access(p, os.W_OK):
        return "the file is read-only; choose another file or make it writable"
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=folder)
    except OSError as exc:  # read-only file system, no permission, /proc and the like
        return f"cannot write in {folder} ({exc.strerror or exc}); choose another folder"
    os.close(fd)
    os.unlink(probe)
    return None
