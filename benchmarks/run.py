"""Time xpscratch against plain NumPy and PyTorch: ``python benchmarks/run.py``.

Each competitor runs in its own worker process (:mod:`benchmarks.worker`) with its thread
count fixed before NumPy/torch load.  For every case the workers take turns, one timed
block each, in a rotating order (A B C, B C A, ...), for a number of rounds; a ratio is
the median over rounds of the two competitors' times in the same round, so load from
other processes on a shared machine hits both sides of a ratio alike.

Options: ``--quick`` (fewer, shorter rounds), ``--workloads abcdef`` (and ``g``), ``--threads 1``
(``2`` or ``1,2`` for two-thread figures, reported separately), ``--competitors``,
``--rounds``, ``--block-seconds``, ``--settle``, ``--no-gpu``, ``--smoke`` (one step per
block, for tests) and ``--out PATH`` (default ``benchmarks/results/latest.json``; a smoke
run writes a file only when given ``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks import workloads  # noqa: E402
from benchmarks.workloads import Case  # noqa: E402

WORKER = Path(__file__).resolve().parent / "worker.py"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"
STEP_WORKLOADS = ("a", "b", "c", "f")


class Worker:
    """A competitor's process, driven one JSON line at a time."""

    def __init__(self, competitor: str, threads: int) -> None:
        self.competitor = competitor
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ)
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), competitor, "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
            cwd=str(ROOT),
        )

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            tail = self.log.read().strip().splitlines()[-5:]
            return {"ok": False, "error": "worker exited: " + " | ".join(tail)}
        return json.loads(line)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.log.close()


def probe(skip: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, str(WORKER), "--probe", "--skip", ",".join(skip)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def available_competitors(found: dict, wanted: list[str] | None, gpu: bool) -> list[str]:
    names = [
        c
        for c in workloads.ALL_COMPETITORS
        if found.get(workloads.REQUIRES[c], False) and (gpu or not workloads.is_gpu(c))
    ]
    if wanted:
        unknown = sorted(set(wanted) - set(workloads.ALL_COMPETITORS))
        if unknown:
            sys.exit(f"unknown competitors {unknown}; choose from {workloads.ALL_COMPETITORS}")
        names = [c for c in names if c in wanted]
    else:  # the before/portable variants run only when named
        names = [c for c in names if c not in workloads.ON_REQUEST]
    return names


def machine_info(probed: dict) -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        if commit and changed:
            commit += " + uncommitted changes"
    except OSError:
        commit = ""
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": probed["versions"],
        "gpus": probed["gpus"],
        "git_commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def entries_for(case: Case, competitors: list[str]) -> dict[str, tuple[str, Case]]:
    """label -> (competitor, case) of the workers that take turns in ``case``'s rounds.

    The compute-bound case (c) also times each BLAS's matrix-product peak in its rounds
    (labels ``peak:numpy``, ``peak:torch``, ...), so that "% of peak" divides two numbers
    measured under the same load.
    """
    entries = {c: (c, case) for c in competitors}
    if case.workload == "c":
        for c in competitors:
            label = workloads.peak_label(c)
            if label not in entries:
                where = "gpu" if workloads.is_gpu(c) else "cpu"
                entries[label] = (label.removeprefix("peak:"), workloads.peak_case(where))
    return entries


def run_case(case: Case, competitors: list[str], threads: int, args) -> dict:
    """Interleave the competitors' timed blocks over the rounds; summarise each."""
    result = {"case": asdict(case), "threads": threads, "competitors": {}}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    entries = entries_for(case, competitors)
    workers, times, info = {}, {}, {}
    for label, (comp, entry_case) in entries.items():
        # one at a time: a worker's warm-up must not overlap another's timing
        w = Worker(comp, threads)
        reply = w.ask(
            cmd="setup",
            case=asdict(entry_case),
            block_s=args.block_seconds,
            warm_s=args.warm_seconds,
            smoke=args.smoke,
        )
        if not reply.get("ok"):
            result["competitors"][label] = {
                "error": reply.get("error"),
                "traceback": reply.get("traceback"),
            }
            w.close()
            continue
        workers[label], times[label] = w, []
        info[label] = reply["info"] | {"k": reply["k"]}
    order = list(workers)
    for r in range(args.rounds):
        shift = r % max(len(order), 1)
        for label in order[shift:] + order[:shift]:
            if label not in workers:
                continue
            if threads > 1 and args.settle:
                # the previous worker's BLAS/OpenMP threads spin-wait for a while after
                # its block: let them go idle so they do not steal this block's cores
                time.sleep(args.settle)
            reply = workers[label].ask(cmd="run")
            if not reply.get("ok"):
                result["competitors"][label] = {"error": reply.get("error")}
                workers.pop(label).close()
                times.pop(label)
                continue
            times[label].append(reply["seconds"] / reply["k"])
    for label, w in workers.items():
        reply = w.ask(cmd="finish")
        w.close()
        info[label]["memory"] = reply.get("memory", {})
    for label, ts in times.items():
        comp, entry_case = entries[label]
        result["competitors"][label] = _summary(entry_case, comp, ts, times) | info[label]
    result["loadavg_before_after"] = [
        load_before,
        os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    ]
    return result


def _paired(a: list[float], b: list[float]) -> float | None:
    """The median over rounds of a[r] / b[r] (None unless both ran every round)."""
    if len(a) != len(b) or not a:
        return None
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _summary(case: Case, comp: str, ts: list[float], times: dict[str, list[float]]) -> dict:
    ms = [t * 1e3 for t in ts]
    med = statistics.median(ms)
    p25, p75 = _quantile(ms, 0.25), _quantile(ms, 0.75)
    entry = {
        "median_ms": med,
        "p25_ms": p25,
        "p75_ms": p75,
        "min_ms": min(ms),
        "max_ms": max(ms),
        "spread_pct": 100.0 * (p75 - p25) / med,
        "rounds_ms": ms,
    }
    flops = workloads.blas_flops(case, comp)
    if flops:
        entry["gflops"] = flops / (med * 1e-3) / 1e9
        peak_label = workloads.peak_label(comp)
        if case.kind == "step" and peak_label in times:
            # (flops / t) / (peak flops / t_peak), paired round by round
            peak = workloads.peak_case("gpu" if workloads.is_gpu(comp) else "cpu")
            ratio = _paired(times[peak_label], ts)
            if ratio is not None:
                entry["pct_own_peak"] = 100.0 * ratio * flops / workloads.blas_flops(peak, comp)
    if case.kind == "rng":
        entry["msamples_per_s"] = case.n / (med * 1e-3) / 1e6
    if case.kind != "matmul":
        for ref in ("numpy", "numpy-lean", "torch", "torch-cuda"):
            if ref in times and ref != comp:
                ratio = _paired(ts, times[ref])
                if ratio is not None:
                    entry[f"x_{ref}"] = ratio
        eager = comp.removesuffix("-compiled")  # a compiled step against its eager one
        if eager != comp and eager in times:
            ratio = _paired(ts, times[eager])
            if ratio is not None:
                entry["x_eager"] = ratio
        before = comp.removesuffix("-portable") + "-before"
        if before in times and before != comp:  # the same backend with random.py before
            ratio = _paired(ts, times[before])
            if ratio is not None:
                entry["x_before"] = ratio
    return entry


def peaks_of(results: list[dict]) -> dict[str, float]:
    """Median matrix-product GFLOP/s of each BLAS, from the (c) rounds."""
    return {
        label: e["gflops"]
        for res in results
        for label, e in res["competitors"].items()
        if label.startswith("peak:") and "gflops" in e
    }


def check_targets(results: list[dict]) -> list[dict]:
    """The issue's targets, each met or missed, with the measured value."""
    out = []
    for res in results:
        case, comp = res["case"], res["competitors"]
        key = case["key"]
        xps = comp.get("xpscratch-numpy", {})
        if case["workload"] in STEP_WORKLOADS and case["where"] != "gpu":
            if "x_numpy" in xps:
                v = xps["x_numpy"]
                out.append(_target(key, "xpscratch-numpy / plain NumPy <= 1.05", v, v <= 1.05))
            # (b)'s lean reference draws masks from NumPy's generator, not Philox: the
            # ratio there is the RNG's cost too, not only the layer's, so no target
            if "x_numpy-lean" in xps and case["workload"] != "b":
                v = xps["x_numpy-lean"]
                what = "xpscratch-numpy / numpy-lean <= 1.05 (the layer's own cost)"
                out.append(_target(key, what, v, v <= 1.05))
            if "x_torch" in xps:
                v = xps["x_torch"]
                out.append(_target(key, "xpscratch-numpy / torch CPU <= 1.00", v, v <= 1.0))
        # issue 21: a compiled JAX step against the lean NumPy step (compile time apart)
        jit = comp.get("xpscratch-jax-compiled", {})
        limit = {"a/sgd/float32": 0.8, "b/adam/float32": 1.0}.get(key)
        if limit and "x_numpy-lean" in jit:
            v = jit["x_numpy-lean"]
            what = f"xpscratch-jax-compiled / numpy-lean <= {limit}"
            out.append(_target(key, what, v, v <= limit))
        # and a torch.compile'd step against torch's eager one: "auto" compiles torch only
        # where this is met (xpscratch.training.compiled.TORCH_MEASURED)
        compiled = comp.get("xpscratch-torch-compiled", {})
        if "x_eager" in compiled:
            v = compiled["x_eager"]
            what = "xpscratch-torch-compiled / xpscratch-torch <= 1.00"
            out.append(_target(key, what, v, v <= 1.0))
        if case["workload"] == "c" and case["where"] != "gpu" and "pct_own_peak" in xps:
            v = xps["pct_own_peak"]
            out.append(_target(key, "xpscratch-numpy % of matmul peak >= 80", v, v >= 80))
        cupy = comp.get("xpscratch-cupy", {})
        if key == "c/sgd/float32/b1024" and "x_torch-cuda" in cupy:
            v = 1.0 / cupy["x_torch-cuda"]
            out.append(_target(key, "xpscratch-cupy steps/s / torch CUDA >= 0.9", v, v >= 0.9))
        for c in ("xpscratch-cupy", "xpscratch-torch-cuda"):
            check = comp.get(c, {}).get("device_check")
            if check:
                ok = not check["blocked_on_device"] and check["host_to_device_calls"] == 0
                out.append(_target(key, f"{c}: no sync or transfer in a step", ok, ok))
    return out


def issue14_targets(results: list[dict]) -> list[dict]:
    """Issue 14's targets: the portable RNG near NumPy's generator, dropout steps near NumPy."""
    out = []
    ops = {}
    for res in results:
        case, comp = res["case"], res["competitors"]
        key = case["key"]
        xps = comp.get("xpscratch-numpy", {})
        limit = {"e/mask": 2.0, "e/uniform": 3.0, "e/normal": 3.0}.get(key)
        if limit and "x_numpy" in xps:
            v = xps["x_numpy"]
            what = f"xpscratch-numpy / NumPy's generator <= {limit}"
            out.append(_target(key, what, v, v <= limit))
        if case["workload"] == "b" and "x_numpy-lean" in xps:
            v = xps["x_numpy-lean"]
            out.append(_target(key, "xpscratch-numpy / numpy-lean <= 1.10", v, v <= 1.10))
        if key == "f/bn+dropout" and "x_numpy" in xps:
            v = xps["x_numpy"]
            out.append(_target(key, "xpscratch-numpy / plain NumPy <= 1.00", v, v <= 1.0))
        if key == "e/mask":
            ops = {c: e["mask_ops_per_call"] for c, e in comp.items() if "mask_ops_per_call" in e}
    for new, old in (
        ("xpscratch-numpy-portable", "xpscratch-numpy-before"),
        ("xpscratch-torch", "xpscratch-torch-before"),
    ):
        if new in ops and old in ops:
            v = ops[old] / ops[new]
            what = f"array operations per mask, {old} / {new} >= 4"
            out.append(_target("e/mask", what, v, v >= 4))
    return out


def _target(case: str, what: str, value, met: bool) -> dict:
    return {"case": case, "target": what, "value": value, "met": bool(met)}


def print_table(results: list[dict], threads: int, peaks: dict[str, float]) -> None:
    print(f"\n== {threads} thread(s) ==  (median over rounds; spread = IQR/median; ratios are")
    print("   per-round medians: x<1 means faster than the reference)")
    head = f"{'case':22} {'competitor':21} {'median':>10} {'spread':>7} {'xNumPy':>7} {'xLean':>6} "
    head += f"{'xTorch':>7} {'GFLOP/s':>8} {'%peak':>6} {'RSS MiB':>8}"
    print(head)
    print("-" * len(head))
    for res in results:
        case = res["case"]
        for c, e in res["competitors"].items():
            if "error" in e:
                print(f"{case['key']:22} {c:21} error: {e['error']}")
                continue
            torch_ref = e.get("x_torch-cuda") if workloads.is_gpu(c) else e.get("x_torch")
            cols = [
                f"{e['median_ms']:8.3f}ms",
                f"{e['spread_pct']:6.1f}%",
                _fmt(e.get("x_numpy"), "7.3f"),
                _fmt(e.get("x_numpy-lean"), "6.3f"),
                _fmt(torch_ref, "7.3f"),
                _fmt(e.get("gflops"), "8.1f"),
                _fmt(e.get("pct_own_peak"), "6.1f"),
                _fmt(e.get("memory", {}).get("peak_rss_mib"), "8.0f"),
            ]
            extra = ""
            if "msamples_per_s" in e:
                extra = f"  {e['msamples_per_s']:.1f} Msamples/s"
            if "mask_ops_per_call" in e:
                extra += f"  {e['mask_ops_per_call']:.1f} ops/mask"
            if "x_eager" in e:
                extra += f"  x eager {e['x_eager']:.3f}"
            if "compile_s" in e:
                extra += f"  compile {e['compile_s']:.1f} s"
            if "x_before" in e:
                extra += f"  x before {e['x_before']:.3f}"
            check = e.get("device_check")
            if check:
                extra += "  sync:" + ("YES" if check["blocked_on_device"] else "none")
                extra += f" h2d:{check['host_to_device_calls']}"
            if c in workloads.INFO_ONLY:
                extra += "  (info)"
            print(f"{case['key']:22} {c:21} " + " ".join(cols) + extra)
    if peaks:
        print(
            "matmul peaks, GFLOP/s (median, timed in the (c) rounds):",
            ", ".join(f"{k.removeprefix('peak:')} {v:.1f}" for k, v in peaks.items()),
        )


def print_targets(targets: list[dict]) -> None:
    if not targets:
        return
    print("\ntargets:")
    for t in targets:
        v = t["value"]
        shown = f"{v:.3f}" if isinstance(v, float) else str(v)
        print(f"  [{'met' if t['met'] else 'MISSED'}] {t['case']:22} {t['target']}: {shown}")


def _fmt(value, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{value:{spec}}" if value is not None else " " * (width - 1) + "-"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="xpscratch vs plain NumPy vs PyTorch")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 0.1 s blocks")
    parser.add_argument("--smoke", action="store_true", help="one step per block (tests)")
    parser.add_argument(
        "--workloads", default="abcdef", help="any of a b c d e f g, e.g. 'ac' (g: issue 21)"
    )
    parser.add_argument("--threads", default="1", help="1, 2 or '1,2' (reported separately)")
    parser.add_argument("--competitors", default="", help="comma-separated subset")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--block-seconds", type=float, default=None)
    parser.add_argument("--no-gpu", action="store_true", help="skip GPU competitors")
    parser.add_argument(
        "--settle", type=float, default=0.25, help="pause before each block with >1 thread"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.out is None and not args.smoke:
        args.out = DEFAULT_OUT
    workloads_wanted = args.workloads.replace(",", "")
    if not set(workloads_wanted) <= set("abcdefg"):
        parser.error("--workloads takes letters from 'abcdefg'")
    if args.rounds is None:
        args.rounds = 1 if args.smoke else (5 if args.quick else 11)
    if args.block_seconds is None:
        args.block_seconds = 0.1 if args.quick else 0.25
    args.warm_seconds = 0.2 if args.quick else 0.5
    thread_counts = [int(t) for t in args.threads.split(",")]

    wanted = [c for c in args.competitors.split(",") if c] or None
    names = [c for c in wanted or workloads.ALL_COMPETITORS]
    if args.no_gpu:
        names = [c for c in names if not workloads.is_gpu(c)]
    # importing torch only to learn it is not wanted costs seconds
    skip = [lib for lib in ("torch", "cupy", "jax") if not any(lib in c for c in names)]
    probed = probe(skip)
    gpu = not args.no_gpu and (probed["found"]["cupy_gpu"] or probed["found"]["torch_gpu"])
    available = available_competitors(probed["found"], wanted, gpu)
    report = {"machine": machine_info(probed), "settings": {}, "runs": []}
    report["settings"] = {
        "rounds": args.rounds,
        "block_seconds": args.block_seconds,
        "settle_seconds_multithread": args.settle,
        "quick": args.quick,
        "smoke": args.smoke,
        "competitors": available,
        "gpu": gpu,
        "not_measured": [] if gpu else ["GPU competitors: no usable CUDA GPU on this machine"],
    }
    print(
        f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; "
        f"competitors: {', '.join(available)}" + ("" if gpu else "; GPU: not measured here")
    )
    started = time.perf_counter()
    for threads in thread_counts:
        results = []
        for case in workloads.cases(workloads_wanted, gpu=gpu):
            comps = workloads.competitors_for(case, available)
            if not comps:
                continue
            print(f"  [{threads}t] {case.key} ...", file=sys.stderr, flush=True)
            results.append(run_case(case, comps, threads, args))
        peaks = peaks_of(results)
        targets = check_targets(results) + issue14_targets(results)
        print_table(results, threads, peaks)
        print_targets(targets)
        report["runs"].append(
            {"threads": threads, "peaks": peaks, "targets": targets, "results": results}
        )
    report["settings"]["wall_seconds"] = time.perf_counter() - started
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        with open(tmp, "w") as f:  # atomically: a crash never leaves half a file
            f.write(json.dumps(report, indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.out)
        print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
