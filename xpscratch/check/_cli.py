"""The ``xpscratch check`` subcommand: its arguments, and running it to an exit status."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .._atomic import atomic_open
from ..backend import BACKENDS
from . import GROUPS, run


def add_parser(sub: Any) -> None:
    """Register ``check`` on the ``xpscratch`` command's subparsers."""
    p = sub.add_parser(
        "check",
        help="prove a backend and device against NumPy, and say how close",
        description="Run the cross-backend battery (random numbers, layers, optimizers, "
        "training, the book's experiments, GPU sync and matmul precision) against NumPy "
        "computed in the same run. Exit status: 0 all passed, 1 a group failed, 2 a "
        "selected backend is not usable here.",
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
        return 2
    if args.json and not Path(args.json).resolve().parent.is_dir():
        print(
            f"xpscratch check: --json {args.json}: the folder "
            f"{Path(args.json).resolve().parent} does not exist; create it first",
            file=sys.stderr,
        )
        return 2
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
        return 1
    for spec, why in report.unusable.items():
        print(f"xpscratch check: --backend {spec}: {why}", file=sys.stderr)
    print(report.format())
    print(f"total {time.perf_counter() - start:.1f} s")
    if args.json:
        data = (json.dumps(report.to_dict(), indent=1, default=str) + "\n").encode()
        with atomic_open(args.json) as f:
            f.write(data)
        print(f"wrote {args.json}")
    return report.exit_status
