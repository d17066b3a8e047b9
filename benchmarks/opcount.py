"""Count the array operations of a draw: a namespace proxy whose arrays count their operators.

Every call of a namespace function (``xp.stack``, ``xp.arange``, ...) and every operator
on an array (``*``, ``>>``, ``^=``, ``>=``, indexing, ...) counts as one operation: on a
GPU each is a kernel launch (indexing that makes a view aside, which is counted apart).
:func:`ops_per_call` draws through :class:`CountingNamespace` with the real namespace
underneath, so the words are the real ones; only the counting is added.
"""

from __future__ import annotations

import contextlib
import operator
from collections import Counter
from typing import Any

_BINARY = "add sub mul truediv floordiv mod pow and or xor lshift rshift lt le gt ge eq ne".split()


class CountingArray:
    """An array whose operators count themselves in ``ns.counts`` and return wrapped arrays."""

    __slots__ = ("_a", "_ns")

    def __init__(self, a: Any, ns: CountingNamespace) -> None:
        self._a, self._ns = a, ns

    def __array_namespace__(self, api_version: Any = None) -> CountingNamespace:
        return self._ns

    @property
    def dtype(self) -> Any:
        return self._a.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._a.shape)

    @property
    def ndim(self) -> int:
        return self._a.ndim

    @property
    def device(self) -> Any:
        return self._a.device

    def __len__(self) -> int:
        return len(self._a)

    def __bool__(self) -> bool:
        return bool(self._a)

    def __getitem__(self, key: Any) -> CountingArray:
        self._ns.counts["indexing"] += 1
        return CountingArray(self._a[_unwrap(key)], self._ns)


def _make_binary(name: str):
    op = getattr(operator, name if name not in ("and", "or") else name + "_")

    def forward(self, other):
        self._ns.counts["operators"] += 1
        return CountingArray(op(self._a, _unwrap(other)), self._ns)

    def reflected(self, other):
        self._ns.counts["operators"] += 1
        return CountingArray(op(_unwrap(other), self._a), self._ns)

    inplace_op = getattr(operator, "i" + name, None)

    def inplace(self, other):
        self._ns.counts["operators"] += 1
        self._a = inplace_op(self._a, _unwrap(other))
        return self

    return forward, reflected, inplace


for _name in _BINARY:
    _f, _r, _i = _make_binary(_name)
    setattr(CountingArray, f"__{_name}__", _f)
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(CountingArray, f"__r{_name}__", _r)
        setattr(CountingArray, f"__i{_name}__", _i)


def _invert(self):
    self._ns.counts["operators"] += 1
    return CountingArray(~self._a, self._ns)


CountingArray.__invert__ = _invert
CountingArray.__hash__ = None


def _unwrap(x: Any) -> Any:
    if isinstance(x, CountingArray):
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


class CountingNamespace:
    """Wraps an array-API namespace: each function call counts one operation."""

    def __init__(self, xp: Any) -> None:
        self._xp = xp
        self.counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._xp, name)
        if not callable(value) or name.startswith("__") or isinstance(value, type):
            return value
        if name in ("isdtype",):
            return value

        def call(*args, **kwargs):
            self.counts["functions"] += 1
            out = value(*_unwrap(args), **_unwrap(kwargs))
            return self._wrap(out)

        return call

    def __array_namespace_info__(self) -> Any:
        return self._xp.__array_namespace_info__()

    def _wrap(self, out: Any) -> Any:
        if isinstance(out, tuple):
            return tuple(self._wrap(o) for o in out)
        if hasattr(out, "shape") and hasattr(out, "dtype") and not isinstance(out, type):
            return CountingArray(out, self)
        return out

    def total(self, *, views: bool = True) -> int:
        return sum(v for k, v in self.counts.items() if views or k != "indexing")


@contextlib.contextmanager
def _seen_through(ns: CountingNamespace):
    """Let ``xpscratch.backend`` see through the proxy: ``namespace``/``to_numpy``/device."""
    from xpscratch import backend

    saved = backend.namespace, backend.to_numpy, backend.device_of

    def namespace(*arrays):
        if any(isinstance(a, CountingArray) for a in arrays):
            return ns
        return saved[0](*arrays)

    backend.namespace = namespace
    backend.to_numpy = lambda x: saved[1](_unwrap(x))
    backend.device_of = lambda x: saved[2](_unwrap(x))
    try:
        yield
    finally:
        backend.namespace, backend.to_numpy, backend.device_of = saved


def ops_per_call(draw, xp: Any, *, calls: int = 64) -> dict[str, float]:
    """Average operations of ``draw(ns)`` over ``calls`` calls (after one warm-up call).

    ``draw`` receives the counting namespace and must pass it as ``xp=``.  Returns the
    mean total (indexing included), the mean without indexing, and the largest single
    call (a stream that computes several draws ahead has one large call in a few).
    """
    ns = CountingNamespace(xp)
    with _seen_through(ns):
        draw(ns)  # warm-up: one-time probes and constants are not per-call work
        per_call = []
        for _ in range(calls):
            ns.counts.clear()
            draw(ns)
            per_call.append((ns.total(), ns.total(views=False)))
    return {
        "ops_per_call": sum(t for t, _ in per_call) / calls,
        "ops_per_call_without_views": sum(t for _, t in per_call) / calls,
        "ops_max_call": max(t for t, _ in per_call),
        "calls": calls,
    }
