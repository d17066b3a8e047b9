"""What is timed: the workloads (cases) and, for each competitor, what one step of a case is.

A *case* is one row group of the results table, e.g. ``a/adam/float64``.  A *competitor*
is one implementation: xpscratch on a backend (``xpscratch-numpy``, ``xpscratch-torch``,
``xpscratch-strict``, ``xpscratch-jax``, ``xpscratch-cupy``, ``xpscratch-torch-cuda``), the
plain NumPy references (``numpy``: the book's code; ``numpy-lean``: xpscratch's operations
in raw NumPy; :mod:`benchmarks.plain_numpy`) or PyTorch (``torch``, ``torch-cuda``,
:mod:`benchmarks.torch_ref`).  :func:`build` returns a :class:`Runner`
whose ``step()`` does one unit of work: one training step (forward, backward, update),
one epoch through the Trainer, one RNG call or one matrix product.

Every library is imported inside :func:`build`, so that a worker process imports only
what its competitor needs, after its thread settings are in place.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BOOK_NET = (784, 100, 100, 100, 100, 10)  # the book's 5-layer net
ISSUE14_NET = (784, 100, 100, 100, 100, 100, 10)  # issue 14's table: 5 hidden layers
WIDE_NET = (784, 1024, 1024, 1024, 10)  # compute-bound
LEARNING_RATES = {"sgd": 0.01, "adam": 0.001}
DROPOUT_RATIO = 0.5
ISSUE14_RATIO = 0.2
# random.py as it was before the stream was made faster (issue 14): the "-before"
# competitors run it, in the same rounds, to measure before and after in one run
BEFORE_COMMIT = "3bab610"

XPSCRATCH_BACKENDS = {
    "xpscratch-numpy": ("numpy", None),
    "xpscratch-torch": ("torch", "cpu"),
    "xpscratch-strict": ("array_api_strict", None),
    "xpscratch-jax": ("jax", "cpu"),
    "xpscratch-jax-compiled": ("jax", "cpu"),  # compile_step / Trainer(compile=True)
    "xpscratch-torch-compiled": ("torch", "cpu"),  # the same under torch.compile
    "xpscratch-cupy": ("cupy", None),
    "xpscratch-torch-cuda": ("torch", "cuda"),
    "xpscratch-numpy-before": ("numpy", None),
    "xpscratch-torch-before": ("torch", "cpu"),
    "xpscratch-numpy-portable": ("numpy", None),
}
CPU_COMPETITORS = (
    "numpy",
    "numpy-lean",
    "xpscratch-numpy",
    "torch",
    "xpscratch-torch",
    "xpscratch-strict",
    "xpscratch-jax",
    "xpscratch-jax-compiled",
)
GPU_COMPETITORS = ("torch-cuda", "xpscratch-cupy", "xpscratch-torch-cuda")
# run only when named in --competitors: random.py at BEFORE_COMMIT, NumPy without the
# optional randomgen fast path (the portable Philox), and torch.compile'd steps (each case
# compiles for 10-80 s on 2 cores)
ON_REQUEST = (
    "xpscratch-numpy-before",
    "xpscratch-torch-before",
    "xpscratch-numpy-portable",
    "xpscratch-torch-compiled",
)
ALL_COMPETITORS = CPU_COMPETITORS + GPU_COMPETITORS + ON_REQUEST
# shown for information, no target: strict is a correctness backend, not a fast one; JAX
# dispatches op by op on these small arrays (xpscratch does not jit)
INFO_ONLY = ("xpscratch-strict", "xpscratch-jax")
# what each competitor needs installed (and, for the GPU ones, a usable CUDA device)
REQUIRES = {
    "numpy": "numpy",
    "numpy-lean": "numpy",
    "xpscratch-numpy": "numpy",
    "torch": "torch",
    "xpscratch-torch": "torch",
    "xpscratch-strict": "strict",
    "xpscratch-jax": "jax",
    "xpscratch-jax-compiled": "jax",
    "xpscratch-torch-compiled": "torch",
    "xpscratch-cupy": "cupy_gpu",
    "torch-cuda": "torch_gpu",
    "xpscratch-torch-cuda": "torch_gpu",
    "xpscratch-numpy-before": "numpy",
    "xpscratch-torch-before": "torch",
    "xpscratch-numpy-portable": "numpy",
}
# the matrix-product peak each competitor is measured against: its own BLAS
PEAK_OF = {
    "numpy": "numpy",
    "numpy-lean": "numpy",
    "xpscratch-numpy": "numpy",
    "xpscratch-strict": "numpy",
    "xpscratch-jax": "xpscratch-jax",  # XLA's own CPU matmul (Eigen), not OpenBLAS
    "xpscratch-jax-compiled": "xpscratch-jax",
    "torch": "torch",
    "xpscratch-torch": "torch",
    "xpscratch-torch-compiled": "torch",
    "xpscratch-cupy": "xpscratch-cupy",
    "torch-cuda": "torch-cuda",
    "xpscratch-torch-cuda": "torch-cuda",
    "xpscratch-numpy-before": "numpy",
    "xpscratch-torch-before": "torch",
    "xpscratch-numpy-portable": "numpy",
}
# Which competitors compute the first layer's input gradient, which nobody uses: the book's
# code does (and so the plain reference); autograd does not, and neither does xpscratch.
COMPUTES_FIRST_DX = {"numpy"}


@dataclass(frozen=True)
class Case:
    key: str
    workload: str
    kind: str  # "step", "epoch", "rng" or "matmul"
    title: str
    sizes: tuple[int, ...] = ()
    batch: int = 0
    optimizer: str = "sgd"
    dtype: str = "float32"
    batchnorm: bool = False
    dropout: bool = False
    dropout_ratio: float = DROPOUT_RATIO
    rng: str = ""  # "mask", "uniform" or "normal"
    n: int = 0  # samples per RNG call, or the matrix size
    where: str = "any"  # "cpu", "gpu" or "any": which competitors run it
    unit: str = "ms/step"


def peak_case(where: str) -> Case:
    """A float32 matrix product big enough to run at the BLAS's peak (timed beside (c))."""
    n = 1024 if where == "cpu" else 8192
    return Case(
        f"peak/{where}",
        "peak",
        "matmul",
        f"{n}x{n} float32 matmul",
        n=n,
        where=where,
        unit="ms/matmul",
    )


def peak_label(competitor: str) -> str:
    """The label of the matmul-peak entry a competitor is compared with."""
    return "peak:" + PEAK_OF[competitor]


def cases(workloads: str = "abcdef", *, gpu: bool = False) -> list[Case]:
    """The cases of the chosen workloads, in table order."""
    out = []
    for w, sizes, bn in (("a", BOOK_NET, False), ("b", BOOK_NET, True)):
        if w not in workloads:
            continue
        title = "book 5-layer net, batch 128" + (", BN + dropout" if bn else "")
        for opt in ("sgd", "adam"):
            for dtype in ("float32", "float64"):
                out.append(
                    Case(f"{w}/{opt}/{dtype}", w, "step", title, sizes, 128, opt, dtype, bn, bn)
                )
    if "c" in workloads:
        title = "784-1024-1024-1024-10"
        out.append(Case("c/sgd/float32", "c", "step", title + ", batch 256", WIDE_NET, 256))
        if gpu:
            out.append(
                Case(
                    "c/sgd/float32/b1024",
                    "c",
                    "step",
                    title + ", batch 1024",
                    WIDE_NET,
                    1024,
                    where="gpu",
                )
            )
    if "d" in workloads:
        out.append(
            Case(
                "d/sgd/float32",
                "d",
                "epoch",
                "one epoch of mnist-small through the Trainer",
                BOOK_NET,
                128,
                unit="ms/epoch",
            )
        )
    if "e" in workloads:
        for rng, n, title in (
            ("mask", 128 * 100, "dropout mask 128x100"),
            ("uniform", 2**20, "2^20 uniform float32"),
            ("normal", 2**20, "2^20 normal float32"),
        ):
            out.append(Case(f"e/{rng}", "e", "rng", title, rng=rng, n=n, unit="ms/call"))
    if "f" in workloads:  # issue 14's table: 784-100x5-10, SGD, float32, dropout 0.2
        title = "784-100x5-10, batch 128, dropout 0.2"
        for key, bn, dropout in (
            ("plain", False, False),
            ("bn", True, False),
            ("dropout", False, True),
            ("bn+dropout", True, True),
        ):
            out.append(
                Case(
                    f"f/{key}",
                    "f",
                    "step",
                    title,
                    ISSUE14_NET,
                    128,
                    batchnorm=bn,
                    dropout=dropout,
                    dropout_ratio=ISSUE14_RATIO,
                )
            )
    if "g" in workloads:  # issue 21's table: compiled steps; 784-100x5-10, float32
        title = "784-100x5-10, batch 128"
        out.append(Case("g/plain/sgd", "g", "step", title, ISSUE14_NET, 128))
        out.append(
            Case(
                "g/bn+dropout/adam",
                "g",
                "step",
                title + ", BN + dropout 0.2",
                ISSUE14_NET,
                128,
                "adam",
                batchnorm=True,
                dropout=True,
                dropout_ratio=ISSUE14_RATIO,
            )
        )
    return out


def is_gpu(competitor: str) -> bool:
    return competitor in GPU_COMPETITORS


def competitors_for(case: Case, available: list[str]) -> list[str]:
    """The competitors that run ``case``, in table order."""
    if case.kind == "matmul":  # one per BLAS: the others use the same library
        names = ("numpy", "torch") if case.where == "cpu" else ("xpscratch-cupy", "torch-cuda")
        return [c for c in names if c in available]
    wanted = {"cpu": CPU_COMPETITORS, "gpu": GPU_COMPETITORS}.get(case.where, ALL_COMPETITORS)
    return [c for c in ALL_COMPETITORS if c in wanted and c in available]


def blas_flops(case: Case, competitor: str) -> float | None:
    """Matrix-product FLOPs per step: forward, dW, and dx of every layer but (usually) the first.

    Elementwise work is not counted; it is small next to the products on the wide net.
    """
    if case.kind == "matmul":
        return 2.0 * case.n**3
    if case.kind != "step":
        return None
    layers = [a * b for a, b in zip(case.sizes[:-1], case.sizes[1:], strict=True)]
    per_sample = 2.0 * (2 * sum(layers) + sum(layers[1:]))
    if competitor in COMPUTES_FIRST_DX:
        per_sample += 2.0 * layers[0]
    return case.batch * per_sample


@dataclass
class Runner:
    """One competitor's implementation of one case: ``step()`` is the timed unit of work."""

    step: Callable[[], Any]
    lib: str  # "cpu", "cupy" or "torch": what must be synchronised after timing on a GPU
    info: dict[str, Any] = field(default_factory=dict)
    # waits until all the work ``step`` dispatched has been done, where dispatch is
    # asynchronous on the CPU too (JAX); None: ``step`` returns when its work is done
    sync: Callable[[], None] | None = None


@functools.cache
def _mnist() -> tuple[Any, ...]:
    from xpscratch.datasets import load_mnist

    (x_train, t_train), (x_test, t_test) = load_mnist()  # the embedded mnist-small
    return x_train, t_train, x_test, t_test


def _data(case: Case, smoke: bool) -> tuple[Any, ...]:
    x_train, t_train, x_test, t_test = _mnist()
    if case.kind == "epoch":
        if smoke:
            return x_train[:200], t_train[:200], x_test[:100], t_test[:100]
        return x_train, t_train, x_test, t_test
    return x_train[: case.batch], t_train[: case.batch]


def build(case: Case, competitor: str, *, smoke: bool = False) -> Runner:
    """Build ``competitor``'s runner for ``case`` (imports the libraries it needs)."""
    if case.kind == "matmul":
        return _matmul(case, competitor)
    if smoke:  # the same code paths on less data
        case = dataclasses.replace(case, n=128 * 32) if case.kind == "rng" else case
        case = dataclasses.replace(case, batch=16) if case.kind == "step" else case
    if competitor in XPSCRATCH_BACKENDS:
        return _xpscratch(case, competitor, smoke)
    if competitor in ("numpy", "numpy-lean"):
        return _plain(case, smoke, lean=competitor == "numpy-lean")
    if competitor in ("torch", "torch-cuda"):
        return _torch(case, "cuda" if competitor == "torch-cuda" else "cpu", smoke)
    raise ValueError(f"unknown competitor {competitor!r}; choose from {ALL_COMPETITORS}")


# ---------------------------------------------------------------------------
# matrix products (the peak)
# ---------------------------------------------------------------------------


def _matmul(case: Case, competitor: str) -> Runner:
    n = case.n
    if competitor == "numpy":
        import numpy as np

        rng = np.random.default_rng(0)
        a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        return Runner(lambda: np.matmul(a, b, out=c), "cpu", {"blas": _numpy_blas()})
    if competitor == "xpscratch-cupy":
        import cupy

        a = cupy.random.random((n, n), dtype=cupy.float32)
        b = cupy.random.random((n, n), dtype=cupy.float32)
        c = cupy.empty((n, n), dtype=cupy.float32)
        return Runner(lambda: cupy.matmul(a, b, out=c), "cupy", {"blas": "cuBLAS (CuPy)"})
    if competitor == "xpscratch-jax":
        import jax

        key_a, key_b = jax.random.split(jax.random.key(0))
        a = jax.random.uniform(key_a, (n, n), dtype="float32")
        b = jax.random.uniform(key_b, (n, n), dtype="float32")
        # each product waits for itself: independent dispatches may finish out of order
        return Runner(
            lambda: jax.block_until_ready(jax.numpy.matmul(a, b)), "cpu", {"blas": "XLA (JAX)"}
        )
    import torch

    device = "cuda" if competitor == "torch-cuda" else "cpu"
    a = torch.rand((n, n), device=device)
    b = torch.rand((n, n), device=device)
    c = torch.empty((n, n), device=device)
    lib = "torch" if device == "cuda" else "cpu"
    return Runner(lambda: torch.matmul(a, b, out=c), lib, {"blas": f"torch ({device})"})


def _numpy_blas() -> str:
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        return "unknown"


# ---------------------------------------------------------------------------
# xpscratch
# ---------------------------------------------------------------------------


def _xpscratch(case: Case, competitor: str, smoke: bool) -> Runner:
    import xpscratch
    from xpscratch.networks import MultiLayerNetExtend
    from xpscratch.optim import make_optimizer
    from xpscratch.random import RandomStream

    name, device = XPSCRATCH_BACKENDS[competitor]
    info: dict[str, Any] = {}
    sync = None
    if name == "jax":
        import jax

        if case.dtype == "float64":  # a worker runs one case: its mode is the case's
            jax.config.update("jax_enable_x64", True)
        info["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
        # dispatch is asynchronous: a block ends when all it dispatched is done (every
        # array alive: parameters, optimizer state and running statistics)
        sync = functools.partial(_jax_block_until_ready, jax)
    backend = xpscratch.set_backend(name, device)
    lib = {"xpscratch-cupy": "cupy", "xpscratch-torch-cuda": "torch"}.get(competitor, "cpu")
    info["backend"] = repr(backend)
    if competitor.endswith("-before"):
        RandomStream = _random_before().RandomStream  # noqa: N806
        info["random_py"] = BEFORE_COMMIT
    if competitor.endswith("-portable"):
        xpscratch.random._randomgen_philox = lambda: None
    if hasattr(xpscratch.random, "_path") and not competitor.endswith("-before"):
        info["philox_path"] = xpscratch.random._path(backend.xp, backend.device)

    if case.kind == "rng":
        stream = RandomStream(0, "benchmark")
        xp, dev = backend.xp, backend.device
        shape = (128, case.n // 128)
        draw = {
            "mask": lambda: stream.keep_mask(shape, DROPOUT_RATIO, xp=xp, device=dev),
            "uniform": lambda: stream.uniform(case.n, "float32", xp=xp, device=dev),
            "normal": lambda: stream.normal(case.n, "float32", xp=xp, device=dev),
        }[case.rng]
        if case.rng == "mask":
            info.update(_count_mask_ops(RandomStream, xp, dev, shape, smoke))
        if sync is not None:  # nothing keeps the draws: each waits for itself
            return Runner(lambda: sync(draw()), lib, info)
        return Runner(draw, lib, info)

    net = MultiLayerNetExtend(
        case.sizes[0],
        list(case.sizes[1:-1]),
        case.sizes[-1],
        use_batchnorm=case.batchnorm,
        use_dropout=case.dropout,
        dropout_ratio=case.dropout_ratio,
        seed=0,
        dtype=case.dtype,
    )
    lr = LEARNING_RATES[case.optimizer]
    compiled = competitor.endswith("-compiled")

    if case.kind == "epoch":
        from xpscratch.trainer import Trainer

        x_train, t_train, x_test, t_test = _data(case, smoke)

        def epoch() -> None:
            # host data in, as a user passes it: moving it to the device is part of the epoch
            trainer = Trainer(
                net,
                x_train,
                t_train,
                x_test,
                t_test,
                epochs=1,
                mini_batch_size=case.batch,
                optimizer=case.optimizer,
                optimizer_param={"lr": lr},
                verbose=False,
                progress=False,
                compile=compiled,
            )
            trainer.train()

        return Runner(epoch, lib, info, sync)

    x_host, t_host = _data(case, smoke)
    x, t = xpscratch.asarray(x_host, case.dtype), xpscratch.asarray(t_host)
    optimizer = make_optimizer(case.optimizer, lr=lr)
    if compiled:
        import time

        from xpscratch.training.compiled import compile_step

        compiled_step = compile_step(net, optimizer, compile=True)
        start = time.perf_counter()
        loss = compiled_step(x, t)  # the first call traces and compiles
        if sync is not None:
            sync(loss)
        info["compile_s"] = round(time.perf_counter() - start, 3)
        for _ in range(2):
            compiled_step(x, t)
        info["compiles_after_3_calls"] = compiled_step.compiles  # 1: no recompile
        return Runner(lambda: compiled_step(x, t), lib, info, sync)

    def step() -> None:
        optimizer.update(net.params, net.gradient(x, t))

    return Runner(step, lib, info, sync)


def _jax_block_until_ready(jax: Any, *arrays: Any) -> None:
    """Wait for ``arrays``, or for every JAX array alive when none are given."""
    jax.block_until_ready(arrays if arrays else jax.live_arrays())


def _count_mask_ops(stream_class, xp: Any, device: Any, shape, smoke: bool) -> dict:
    """Array operations (kernel launches on a GPU) per 128x100 mask, counted by a proxy.

    The proxy is not NumPy's own namespace, so on NumPy this counts the portable Philox;
    the randomgen path is one compiled call, a comparison and a reshape (3).
    """
    from .opcount import ops_per_call

    stream = stream_class(0, "benchmark/count")
    counted = ops_per_call(
        lambda ns: stream.keep_mask(shape, DROPOUT_RATIO, xp=ns, device=device),
        xp,
        calls=8 if smoke else 64,
    )
    return {f"mask_{k}": v for k, v in counted.items()}


@functools.cache
def _random_before() -> Any:
    """xpscratch/random.py at BEFORE_COMMIT, as a module of the package (``git show``)."""
    import subprocess
    import sys
    import types
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:xpscratch/random.py"],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    ).stdout
    module = types.ModuleType("xpscratch._random_before")
    module.__package__ = "xpscratch"
    sys.modules[module.__name__] = module
    exec(compile(src, f"xpscratch/random.py@{BEFORE_COMMIT}", "exec"), module.__dict__)
    import xpscratch.layers

    # Dropout builds its stream from the class layers imported: give it the old one
    xpscratch.layers.RandomStream = module.RandomStream
    return module


# ---------------------------------------------------------------------------
# the plain NumPy reference
# ---------------------------------------------------------------------------


def _plain(case: Case, smoke: bool, lean: bool = False) -> Runner:
    import numpy as np

    from . import plain_numpy as pn

    if case.kind == "rng":
        g = np.random.default_rng(0)
        shape = (128, case.n // 128)
        draw = {
            # the book's rand(*shape) > ratio; numpy-lean makes the float mask it multiplies by
            "mask": (lambda: (g.random(shape) > DROPOUT_RATIO).astype(np.float32))
            if lean
            else (lambda: g.random(shape) > DROPOUT_RATIO),
            "uniform": lambda: g.random(case.n, dtype=np.float32),
            "normal": lambda: g.standard_normal(case.n, dtype=np.float32),
        }[case.rng]
        return Runner(draw, "cpu", {"generator": "numpy PCG64"})

    net = pn.PlainNet(
        case.sizes,
        use_batchnorm=case.batchnorm,
        use_dropout=case.dropout,
        dtype=case.dtype,
        lean=lean,
        dropout_ratio=case.dropout_ratio,
    )
    make_opt = (pn.LEAN_OPTIMIZERS if lean else pn.OPTIMIZERS)[case.optimizer]

    if case.kind == "epoch":
        x_train, t_train, x_test, t_test = _data(case, smoke)
        rng = np.random.default_rng(0)
        n, batch = x_train.shape[0], case.batch

        def epoch() -> None:
            optimizer = make_opt(LEARNING_RATES[case.optimizer])
            xs = x_train.astype(case.dtype, copy=False)
            perm = rng.permutation(n)
            losses = []
            for i in range(0, n, batch):
                idx = perm[i : i + batch]
                xb, tb = xs[idx], t_train[idx]
                optimizer.update(net.params, net.gradient(xb, tb))
                losses.append(net.loss(xb, tb))
            _ = [float(v) for v in losses]  # the Trainer's report point
            net.accuracy(xs, t_train)
            xt = x_test.astype(case.dtype, copy=False)
            net.accuracy(xt, t_test)
            net.accuracy(xt, t_test)  # the Trainer's final test accuracy

        return Runner(epoch, "cpu")

    x, t = _data(case, smoke)
    x = x.astype(case.dtype)
    optimizer = make_opt(LEARNING_RATES[case.optimizer])

    def step() -> None:
        optimizer.update(net.params, net.gradient(x, t))

    return Runner(step, "cpu")


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------


def _torch(case: Case, device: str, smoke: bool) -> Runner:
    import torch
    from torch import nn

    from . import torch_ref

    lib = "torch" if device == "cuda" else "cpu"
    dtype = getattr(torch, case.dtype)

    if case.kind == "rng":
        shape = (128, case.n // 128)
        draw = {
            "mask": lambda: torch.rand(shape, device=device) > DROPOUT_RATIO,
            "uniform": lambda: torch.rand(case.n, device=device),
            "normal": lambda: torch.randn(case.n, device=device),
        }[case.rng]
        return Runner(draw, lib, {"generator": "torch default"})

    model = torch_ref.make_model(
        case.sizes,
        use_batchnorm=case.batchnorm,
        use_dropout=case.dropout,
        dropout_ratio=case.dropout_ratio,
        dtype=case.dtype,
        device=device,
    )
    model.train()
    loss_fn = nn.CrossEntropyLoss()

    if case.kind == "epoch":
        x_train, t_train, x_test, t_test = _data(case, smoke)
        n, batch = x_train.shape[0], case.batch

        def accuracy(x: Any, t: Any) -> float:
            model.eval()
            with torch.no_grad():
                correct = (torch.argmax(model(x), dim=1) == t).sum()
            model.train()
            return correct.item() / x.shape[0]

        def epoch() -> None:
            optimizer = torch_ref.make_optimizer(case.optimizer, model.parameters())
            xs = torch.from_numpy(x_train).to(device=device, dtype=dtype)
            ts = torch.from_numpy(t_train).to(device)
            xt = torch.from_numpy(x_test).to(device=device, dtype=dtype)
            tt = torch.from_numpy(t_test).to(device)
            perm = torch.randperm(n, device=device)
            losses = []
            for i in range(0, n, batch):
                idx = perm[i : i + batch]
                xb, tb = xs.index_select(0, idx), ts.index_select(0, idx)
                torch_ref.train_step(model, optimizer, loss_fn, xb, tb)
                with torch.no_grad():
                    losses.append(loss_fn(model(xb), tb))
            torch.stack(losses).cpu()
            accuracy(xs, ts)
            accuracy(xt, tt)
            accuracy(xt, tt)  # the Trainer's final test accuracy

        return Runner(epoch, lib)

    x_host, t_host = _data(case, smoke)
    x = torch.from_numpy(x_host).to(device=device, dtype=dtype)
    t = torch.from_numpy(t_host).to(device)
    optimizer = torch_ref.make_optimizer(case.optimizer, model.parameters())

    def step() -> None:
        torch_ref.train_step(model, optimizer, loss_fn, x, t)

    return Runner(step, lib)


def flops_note(case: Case) -> str:
    """How the FLOP count is defined, for the JSON file."""
    if case.kind != "step":
        return ""
    return (
        "matrix products only: forward + dW + dx, dx of the first layer counted only where "
        "it is computed (the book-style reference); "
        f"{blas_flops(case, 'xpscratch-numpy') / 1e9:.3f} GFLOP per step without it"
    )


def samples_per_call(case: Case) -> int:
    return case.n if case.kind == "rng" else 0


__all__ = [
    "ALL_COMPETITORS",
    "Case",
    "Runner",
    "blas_flops",
    "build",
    "cases",
    "competitors_for",
    "is_gpu",
]
