"""One competitor in its own process: ``python benchmarks/worker.py COMPETITOR --threads N``.

The thread variables are set here, before NumPy or torch is imported, so BLAS and OpenMP
pools have the size asked for.  The runner (:mod:`benchmarks.run`) then talks to the
worker with one JSON object per line:

* ``{"cmd": "setup", "case": {...}, "block_s": 0.2, "warm_s": 0.3, "smoke": false}``:
  build the case, warm up, choose the number of steps ``k`` in one timed block;
* ``{"cmd": "run"}``: time one block of ``k`` steps (followed by a device sync on a GPU);
* ``{"cmd": "finish"}``: report peak memory and exit.

``--probe`` prints which libraries and GPUs this machine can use, then exits.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
ROOT = Path(__file__).resolve().parents[1]


def pin_threads(threads: int) -> None:
    """Must run before NumPy/torch are imported: their pools read these once, at load."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    # JAX's XLA CPU client has its own pool for one operation's work (read when JAX starts)
    xla = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
    xla += f"intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + xla).strip()


def _setup_torch_threads(threads: int) -> None:
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


def rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0**2 if sys.platform == "darwin" else peak / 1024.0  # bytes vs KiB


def probe(skip: set[str]) -> dict:
    """Which competitors can run here (imports what it checks; used in its own process).

    ``skip`` ('torch', 'cupy') leaves out libraries the run will not use: importing torch
    just to find that it is not wanted costs seconds.
    """
    import importlib.util

    found = {"numpy": importlib.util.find_spec("numpy") is not None}
    found["strict"] = importlib.util.find_spec("array_api_strict") is not None
    found["jax"] = "jax" not in skip and importlib.util.find_spec("jax") is not None
    found["torch"] = found["torch_gpu"] = found["cupy_gpu"] = False
    versions, gpus = {}, {}
    import numpy

    versions["numpy"] = numpy.__version__
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        versions["numpy_blas"] = f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # NumPy < 1.26 has no mode="dicts"
        pass
    if "torch" not in skip and importlib.util.find_spec("torch") is not None:
        import torch

        found["torch"] = True
        versions["torch"] = torch.__version__
        versions["torch_parallel"] = torch.__config__.parallel_info().splitlines()[:6]
        if torch.cuda.is_available():
            found["torch_gpu"] = True
            gpus["torch"] = torch.cuda.get_device_name()
    if "cupy" not in skip and importlib.util.find_spec("cupy") is not None:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                found["cupy_gpu"] = True
                versions["cupy"] = cupy.__version__
                props = cupy.cuda.runtime.getDeviceProperties(0)
                name = props["name"]
                gpus["cupy"] = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as exc:  # no driver, no device
            gpus["cupy_error"] = str(exc).splitlines()[0]
    for mod in ("array_api_compat", "array_api_strict"):
        if importlib.util.find_spec(mod) is not None:
            versions[mod] = __import__(mod).__version__
    if found["jax"]:  # the version without importing JAX (seconds)
        import importlib.metadata

        versions["jax"] = importlib.metadata.version("jax")
    sys.path.insert(0, str(ROOT))
    import xpscratch

    versions["xpscratch"] = getattr(xpscratch, "__version__", "checkout")
    return {"found": found, "versions": versions, "gpus": gpus}


def serve(competitor: str, threads: int, out) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks import workloads

    runner = None
    k = 1
    lib = "cpu"

    def send(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "setup":
                case = workloads.Case(**{**msg["case"], "sizes": tuple(msg["case"]["sizes"])})
                smoke = bool(msg.get("smoke"))
                start = time.perf_counter()
                runner = workloads.build(case, competitor, smoke=smoke)
                _setup_torch_threads(threads)
                lib = runner.lib
                gpu = None
                if lib != "cpu":
                    from benchmarks import gpu

                    gpu.reset_peak_memory(lib)
                rss_built = rss_mib()
                k, info = _warm_up(runner, msg, gpu, smoke)
                if gpu is not None and case.kind in ("step", "rng") and not smoke:
                    info["device_check"] = gpu.check_step(lib, runner.step)
                    info["device"] = gpu.device_name(lib)
                info.update(runner.info, rss_built_mib=rss_built)
                info["setup_s"] = time.perf_counter() - start
                send({"ok": True, "k": k, "info": info})
            elif msg["cmd"] == "run":
                gc.collect()
                start = time.perf_counter()
                for _ in range(k):
                    runner.step()
                if runner.sync is not None:  # asynchronous dispatch on the CPU (JAX)
                    runner.sync()
                if lib != "cpu":
                    from benchmarks import gpu

                    gpu.sync(lib)
                send({"ok": True, "seconds": time.perf_counter() - start, "k": k})
            elif msg["cmd"] == "finish":
                memory = {"peak_rss_mib": peak_rss_mib()}
                if lib != "cpu":
                    from benchmarks import gpu

                    memory["device"] = gpu.device_memory(lib)
                send({"ok": True, "memory": memory})
                return
            else:
                send({"ok": False, "error": f"unknown command {msg['cmd']!r}"})
        except Exception as exc:
            tb = traceback.format_exc().splitlines()[-6:]
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": tb})
            return


def _warm_up(runner, msg: dict, gpu, smoke: bool) -> tuple[int, dict]:
    """Run until warm (caches, allocator pools, lazy initialisation); choose k for a block."""
    if smoke:
        runner.step()
        _sync(runner, gpu)
        return 1, {"warmup_steps": 1}
    warm_s, block_s = float(msg.get("warm_s", 0.3)), float(msg.get("block_s", 0.2))
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < warm_s:
        t0 = time.perf_counter()
        runner.step()
        _sync(runner, gpu)
        times.append(time.perf_counter() - t0)
        if len(times) >= 3 and sum(times) > 4 * warm_s:  # very slow steps: enough
            break
    recent = sorted(times[len(times) // 2 :])
    per_step = recent[len(recent) // 2]
    return max(1, round(block_s / per_step)), {"warmup_steps": len(times)}


def _sync(runner, gpu) -> None:
    """Wait until the step's work is done: JAX's dispatch, then the GPU's stream."""
    if runner.sync is not None:
        runner.sync()
    if gpu is not None:
        gpu.sync(runner.lib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("competitor", nargs="?")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--skip", default="", help="with --probe: torch,cupy to leave out")
    args = parser.parse_args()
    pin_threads(args.threads)
    if args.probe:
        print(json.dumps(probe(set(args.skip.split(",")) - {""})))
        return
    # protocol on the real stdout; anything a library prints goes to stderr instead
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    serve(args.competitor, args.threads, out)


if __name__ == "__main__":
    main()
