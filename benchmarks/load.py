"""A busy machine: how much slower does an experiment run with one busy process per core?

Issue 24's target: ``xpscratch run ... --quick`` under load takes at most 3x its quiet
time.  The load is one pure-Python busy loop per core (like a browser, an IDE, a second
notebook).  Each configuration runs the same command quiet and loaded, in turns, and the
ratio loaded/quiet is the median over rounds:

* ``limited``: xpscratch's default (BLAS and OpenMP held to one thread while training);
* ``library threads``: ``XPSCRATCH_THREADS=all``, the libraries' own defaults (OpenBLAS
  starts one thread per core), which is what xpscratch did before the limit.

    python benchmarks/load.py                       # batch_norm_test --quick, 3 rounds
    python benchmarks/load.py --experiment optimizer_compare_mnist --rounds 5

Thread variables of this shell (OPENBLAS_NUM_THREADS, ...) are removed for the runs: they
would decide the thread count themselves.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CONFIGURATIONS = {"limited": {}, "library threads": {"XPSCRATCH_THREADS": "all"}}


def _busy(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _run_once(experiment: str, extra_env: dict[str, str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.pop("XPSCRATCH_THREADS", None)
    env.update(extra_env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "xpscratch", "run", experiment, "--quick"]
        start = time.perf_counter()
        subprocess.run(
            [*command, "--no-plot", "--out", out], env=env, check=True, capture_output=True
        )
        return time.perf_counter() - start


def _loaded(experiment: str, extra_env: dict[str, str]) -> float:
    stop = multiprocessing.Event()
    load = [multiprocessing.Process(target=_busy, args=(stop,)) for _ in range(os.cpu_count() or 1)]
    for p in load:
        p.start()
    try:
        return _run_once(experiment, extra_env)
    finally:
        stop.set()
        for p in load:
            p.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Time an experiment quiet and with one busy process per core, with "
        "xpscratch's thread limit and with the libraries' own thread counts."
    )
    parser.add_argument("--experiment", default="batch_norm_test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    results = {}
    for name, extra in CONFIGURATIONS.items():
        quiet, loaded = [], []
        for _ in range(args.rounds):  # in turns: a slow spell of the machine hits both
            quiet.append(_run_once(args.experiment, extra))
            loaded.append(_loaded(args.experiment, extra))
        ratio = statistics.median(b / a for a, b in zip(quiet, loaded, strict=True))
        results[name] = {"quiet_s": quiet, "loaded_s": loaded, "loaded_over_quiet": ratio}
        print(
            f"{name:16} quiet {statistics.median(quiet):7.1f} s   loaded "
            f"{statistics.median(loaded):7.1f} s   loaded/quiet {ratio:5.2f}x",
            flush=True,
        )
    report = {"experiment": args.experiment, "cores": os.cpu_count(), "results": results}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
