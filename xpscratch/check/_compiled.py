"""Group "compiled": a compiled training step (``compile_step``) against the eager one on the
same backend, device and dtype.

BN + dropout + Adam with weight decay, the same batches: after every step the step count
and the dropout counters must be equal (a frozen Python number under tracing shows here),
and at the end every parameter, running statistic and Adam slot must agree (in float32
all but the biases before BN, which hold rounding noise BN removes): to 1e-9
relative in float64 (50 steps), and in float32 after 5 steps within 1e-4 relative (the
two programs round in different orders; provisional until the check's float32
trajectory policy covers compiled steps).  On JAX the compiled steps also run under
``jax.transfer_guard("disallow")``: no host/device copy inside a step.  Backends that
do not compile say why and skip: CuPy runs the step eagerly, because capturing it in a
CUDA graph is not proven on a GPU (``compile_reason`` says so in the group's note).
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import numpy as np  # host data, moved once before the steps

from ..backend import asarray, to_numpy
from ..networks import MultiLayerNetExtend
from ..optim import Adam
from ..training.compiled import compile_step
from ._compare import Group
from ._target import Target


def _net(dtype: str) -> MultiLayerNetExtend:
    return MultiLayerNetExtend(
        20, [16, 16], 10, use_batchnorm=True, use_dropout=True, dropout_ratio=0.3,
        weight_decay_lambda=0.01, seed=3, dtype=dtype,
    )  # fmt: skip


def _arrays(net: Any, opt: Adam) -> dict[str, Any]:
    out = {f"params/{k}": v for k, v in net.params.items()}
    out.update({f"buffers/{k}": v for k, v in net._buffers().items()})
    out.update({f"{s}/{k}": v for s in opt.slots for k, v in opt.state[s].items()})
    return out


def _counts(net: Any, opt: Adam) -> tuple[int, dict[str, int]]:
    return opt.step, {k: v["counter"] for k, v in net.state_dict()["rng"].items()}


def check_compiled(t: Target, g: Group) -> None:
    with g.case("compiled vs eager step"), t.active() as b:
        eager_net, eager_opt = _net(t.dtype), Adam(lr=0.01)
        net, opt = _net(t.dtype), Adam(lr=0.01)
        step = compile_step(net, opt)
        if not step.compiled:
            g.skipped = f"runs eagerly: {step.reason}"
            g.notes.append(g.skipped)
            return
        rng = np.random.default_rng(0)
        batches = [
            (asarray(rng.standard_normal((32, 20)), t.dtype), asarray(rng.integers(0, 10, 32)))
            for _ in range(4)
        ]
        steps = 50 if t.dtype == "float64" else 5
        step(*batches[0])  # compiles
        eager_opt.update(eager_net.params, eager_net.gradient(*batches[0]))
        jax = importlib.import_module("jax") if b.name == "jax" else None
        for i in range(1, steps):
            x, y = batches[i % 4]
            eager_opt.update(eager_net.params, eager_net.gradient(x, y))
            with contextlib.nullcontext() if jax is None else jax.transfer_guard("disallow"):
                step(x, y)
            g.cases += 1
            if _counts(net, opt) != _counts(eager_net, eager_opt):
                g.fail(
                    "counters", f"step {i}: {_counts(net, opt)} != {_counts(eager_net, eager_opt)}"
                )
                return
        g.exact += 1
        rtol = 1e-9 if t.dtype == "float64" else 1e-4
        mine, ref = _arrays(net, opt), _arrays(eager_net, eager_opt)
        # The biases before BN have a zero true gradient: they hold rounding noise (1e-13
        # in float64, where atol = rtol covers it), which Adam turns into lr-sized moves in
        # float32; BN removes them from every output, so float32 leaves them out.
        noise = {f"params/b{i}" for i in range(1, len(net.hidden_size_list) + 1)}
        for key in ref:
            if t.dtype == "float32" and key in noise:
                continue
            g.close(key, to_numpy(mine[key]), to_numpy(ref[key]), rtol, rtol)
        g.notes.append(f"{steps} steps compiled ({step.compiles} trace) vs eager")
