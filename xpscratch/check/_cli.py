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
from ..backend import BACKENDS
from . import EXIT_FAILED, EXIT_USAGE, GROUPS, run


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
    p.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the test suite's short experiment runs instead of each experiment's --quick size",
    )
    p.add_argument("--json", metavar="FILE", help="also write the whole report as JSON")
    p.add_argument(
        "--allow-tf32",
        action="store_true",
        help="GPU: keep TF32 float32 matmuls, with TF32's looser float32 tolerance",
    )
    p.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help="run only this group (repeatable): random, layers, optimizers, "
        "training, experiments, gpu",
    )


def main(args: argparse.Namespace) -> int:
    if args.group and any(g not in GROUPS for g in args.group):
        print(
            f"xpscratch check: unknown group in {args.group}; choose from {list(GROUPS)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    for option, path in (("--json", args.json),):
        why = path and unwritable(path)
        if why:
            print(f"xpscratch check: {option} {path}: {why}", file=sys.stderr)
            return EXIT_USAGE
    specs = args.backend or ["all"]
    start = time.perf_counter()
    try:
        report = run(
            None if "all" in specs else specs,
            dtype=args.dtype,
            quick=args.quick,
            allow_tf32=args.allow_tf32,
            groups=args.group,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except Exception as exc:  # a bug in the check itself: a message, never a traceback
        print(
            f"xpscratch check: the check itself failed: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    for spec, why in report.unusable.items():
        print(f"xpscratch check: --backend {spec}: {why}", file=sys.stderr)
    print(report.format())
    print(f"total {time.perf_counter() - start:.1f} s")
    if args.json:
        data = (json.dumps(report.to_dict(), indent=1, default=str) + "\n").encode()
        try:
            with atomic_open(args.json) as f:
                f.write(data)
        except OSError as exc:  # e.g. the disk filled during the run: a message, no traceback
            print(f"xpscratch check: --json {args.json}: not written: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {args.json}")
    return report.exit_status


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
