"""Fault injection for ``xpscratch check``: one function of a real backend made wrong.

Only the target's own runs see the fault: :func:`inject` replaces
``Target.active`` with a version that raises a flag for its block, and every wrapper
below perturbs its result only while the flag is up, so NumPy's truth and band (computed
outside ``active``) stay right, also when the target is NumPy itself.

Namespace faults wrap one function of the array namespace that xpscratch's modules get
from their arrays (``namespace``); the others wrap one method of a layer or optimizer.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from xpscratch import backend as backend_mod
from xpscratch import layers as layers_mod
from xpscratch import optim as optim_mod
from xpscratch import random as random_mod
from xpscratch.check import _target

FAULTY: contextvars.ContextVar[bool] = contextvars.ContextVar("xpscratch_faulty", default=False)
EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


def _on() -> bool:
    return FAULTY.get()


def _dtype_name(x: Any) -> str:
    return "float64" if "64" in str(x.dtype) else "float32"


class _Namespace:
    """An array namespace with one function replaced."""

    def __init__(self, xp: Any, name: str, fn: Callable) -> None:
        self._xp, self._name, self._fn = xp, name, fn

    def __getattr__(self, attr: str) -> Any:
        return self._fn if attr == self._name else getattr(self._xp, attr)


def _namespace_fault(monkeypatch, name: str, make: Callable[[Any, Callable], Callable]) -> None:
    original = backend_mod.namespace
    cache: dict[int, _Namespace] = {}

    def namespace(*arrays: Any) -> Any:
        xp = original(*arrays)
        if not _on():
            return xp
        if id(xp) not in cache:
            cache[id(xp)] = _Namespace(xp, name, make(xp, getattr(xp, name)))
        return cache[id(xp)]

    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("xpscratch") and (
            getattr(mod, "namespace", None) is original
        ):
            monkeypatch.setattr(mod, "namespace", namespace)


def ulps_off(fn_name: str, ulps: float) -> Callable:
    """``xp.<fn_name>`` ``ulps`` ulp too large."""

    def install(monkeypatch) -> None:
        def make(xp, f):
            def wrong(x, *a, **k):
                y = f(x, *a, **k)
                return y * (1.0 + ulps * EPS[_dtype_name(y)])

            return wrong

        _namespace_fault(monkeypatch, fn_name, make)

    return install


def sum_in_lower_precision(monkeypatch) -> None:
    """``xp.sum`` of float64 accumulated in float32, of float32 in float16."""

    def make(xp, f):
        def wrong(x, *a, **k):
            low = xp.float32 if _dtype_name(x) == "float64" else xp.float16
            return xp.astype(f(xp.astype(x, low), *a, **k), x.dtype)

        return wrong

    _namespace_fault(monkeypatch, "sum", make)


def matmul_biased(rel: float) -> Callable:
    """Affine's matmuls (out, dx, dW) ``rel`` relative too large."""

    def install(monkeypatch) -> None:
        forward, backward = layers_mod.Affine.forward, layers_mod.Affine.backward

        def wrong_forward(self, x, *a, **k):
            out = forward(self, x, *a, **k)
            return out * (1.0 + rel) if _on() else out

        def wrong_backward(self, dout, *a, **k):
            dx = backward(self, dout, *a, **k)
            if _on():
                self.dW = self.dW * (1.0 + rel)
                dx = None if dx is None else dx * (1.0 + rel)
            return dx

        monkeypatch.setattr(layers_mod.Affine, "forward", wrong_forward)
        monkeypatch.setattr(layers_mod.Affine, "backward", wrong_backward)

    return install


def adam_eps_moved(monkeypatch) -> None:
    """Adam's epsilon 1e-7 -> 1e-6 (and AdamW's, which is an Adam)."""
    init = optim_mod.Adam.__init__

    def wrong(self, *a, **k):
        init(self, *a, **k)
        if _on():
            self.eps = self.eps * 10.0

    monkeypatch.setattr(optim_mod.Adam, "__init__", wrong)


def update_dropped(monkeypatch) -> None:
    """Every optimizer leaves the last parameter unchanged."""
    for cls in {optim_mod.Optimizer, *optim_mod.Optimizer.__subclasses__()}:
        if "update" not in vars(cls):
            continue
        update = vars(cls)["update"]

        def wrong(self, params, grads, update=update):
            if not _on():
                return update(self, params, grads)
            last = list(params)[-1]
            old = backend_mod.namespace(params[last]).asarray(params[last], copy=True)
            out = update(self, params, grads)
            params[last] = old
            return out

        monkeypatch.setattr(cls, "update", wrong)


def nan_in_relu(monkeypatch) -> None:
    """Relu's first output is NaN."""
    forward = layers_mod.Relu.forward

    def wrong(self, x, *a, **k):
        out = forward(self, x, *a, **k)
        if not _on():
            return out
        xp = backend_mod.namespace(out)
        flat = xp.reshape(out, (-1,))
        first = xp.arange(flat.shape[0], device=backend_mod.device_of(flat)) == 0
        return xp.reshape(xp.where(first, flat * float("nan"), flat), out.shape)

    monkeypatch.setattr(layers_mod.Relu, "forward", wrong)


def philox_nine_rounds(monkeypatch) -> None:
    """Philox4x32 with 9 rounds instead of 10 (every word path but randomgen's)."""
    rounds = backend_mod.repeat_rounds

    def wrong(first, last, body, carry):
        return rounds(first, last - 1 if _on() else last, body, carry)

    monkeypatch.setattr(backend_mod, "repeat_rounds", wrong)


def dropout_threshold_off_by_one(monkeypatch) -> None:
    """The keep test ``word > threshold`` instead of ``word >= threshold``."""
    as_mask = random_mod._as_mask

    def wrong(bits, shape, drop_ratio, xp):
        keep = as_mask(bits, shape, drop_ratio, xp)
        if not _on():
            return keep
        th = xp.asarray(
            round(drop_ratio * 2**32) & 0xFFFFFFFF,
            dtype=bits.dtype,
            device=backend_mod.device_of(bits),
        )
        return keep & ~xp.reshape(bits == th, shape)

    monkeypatch.setattr(random_mod, "_as_mask", wrong)


def bn_variance_unbiased(monkeypatch) -> None:
    """BatchNormalization's batch variance divided by N - 1 instead of N."""
    forward = layers_mod.BatchNormalization.forward
    means: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("bn", default=None)

    def wrong_forward(self, x, *a, **k):
        token = means.set([0] if _on() else None)
        try:
            return forward(self, x, *a, **k)
        finally:
            means.reset(token)

    def make(xp, f):
        def wrong(x, *a, **k):
            y = f(x, *a, **k)
            seen = means.get()
            if seen is None:
                return y
            seen[0] += 1  # BN's second mean is the variance, mean((x - mu)**2)
            return y * (x.shape[0] / (x.shape[0] - 1)) if seen[0] == 2 else y

        return wrong

    _namespace_fault(monkeypatch, "mean", make)
    monkeypatch.setattr(layers_mod.BatchNormalization, "forward", wrong_forward)


def no_fault(monkeypatch) -> None:
    """The wrapper alone: the flag raised, nothing wrong."""


@contextlib.contextmanager
def _faulty_active(self: _target.Target) -> Iterator[Any]:
    with backend_mod.use_backend(self.name, self.device) as b:
        token = FAULTY.set(True)
        try:
            yield b
        finally:
            FAULTY.reset(token)


def inject(monkeypatch, fault: Callable) -> None:
    """Install ``fault`` for the target's runs only."""
    monkeypatch.setattr(_target.Target, "active", _faulty_active)
    fault(monkeypatch)
