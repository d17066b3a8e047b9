"""Random numbers that agree bit for bit on every backend.

The array API has no random module, and NumPy, CuPy and torch each have their own
generators with different streams.  xpscratch uses one counter-based generator,
Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11,
the generator of Random123 and cuRAND), written in portable array-API integer
operations so that it runs unchanged, on the device, on every backend.

* Each 32-bit word is kept in an int64 within [0, 2**32): torch has no arithmetic on
  uint32, and the 32x32-bit multiply is split on the 16-bit halves of the Philox
  constant so that no intermediate reaches 2**63.
* A draw is a pure function of ``(seed, purpose, counter)``: the key is the 64-bit
  seed, the counter block is ``(index, counter, hash(purpose))``.  A layer's dropout
  mask at step s therefore does not depend on what else drew random numbers before.
* Uniform floats take exactly 24 (float32) or 53 (float64) random bits; masks compare
  the integer bits with a threshold, so there are no float ties between backends.
* Normal samples use transcendental functions whose last bit differs between
  libraries, so they are computed once on the host in float64 (Box-Muller) and moved
  to the device once.  They are only used to initialise weights.

:class:`RandomStream` holds ``(seed, purpose, counter)`` and advances the counter by
one per draw; its state is three plain values, saved in checkpoints.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from . import backend as _backend

__all__ = [
    "RandomStream",
    "keep_mask",
    "normal",
    "permutation",
    "philox4x32",
    "random_bits",
    "uniform",
]

MASK32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
Shape = int | tuple[int, ...]


def _mulhilo(a: int, b: Any) -> tuple[Any, Any]:
    """High and low 32-bit words of the 64-bit product of a constant ``a`` and ``b``.

    Exact for a Python int ``b`` and for a uint64 array: the product of two 32-bit
    values fits in 64 unsigned bits.
    """
    p = b * a
    hi = p >> 32
    p &= MASK32  # p is ours: mask it in place
    return hi, p


def _mulhilo_int64(a: int, b: Any) -> tuple[Any, Any]:
    """:func:`_mulhilo` for int64 arrays (torch has no exact uint64 products).

    The multiply is split on the 16-bit halves of ``a``: each partial product stays
    below 2**48, which int64 holds on every backend.
    """
    p_lo = b * (a & 0xFFFF)
    p_hi = b * (a >> 16)
    t = p_lo + ((p_hi & 0xFFFF) << 16)
    return (p_hi >> 16) + (t >> 32), t & MASK32


def philox4x32(counter: tuple[Any, Any, Any, Any], key: tuple[int, int], rounds: int = 10):
    """Philox4x32-R on four counter words and a 2-word key.

    Words are Python ints (the scalar reference), or arrays of int64 or uint64 holding
    values in [0, 2**32), one block per element; the output has the arrays' dtype.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    arrays = [c for c in counter if not isinstance(c, int)]
    int64 = bool(arrays) and arrays[0].dtype == _backend.namespace(arrays[0]).int64
    mulhilo = _mulhilo_int64 if int64 else _mulhilo
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = mulhilo(PHILOX_M0, c0)
        hi1, lo1 = mulhilo(PHILOX_M1, c2)
        # hi0 and hi1 are new arrays (or ints): xor in place, saving two temporaries
        hi1 ^= c1
        hi1 ^= k0
        hi0 ^= c3
        hi0 ^= k1
        c0, c1, c2, c3 = hi1, lo1, hi0, lo0
    return c0, c1, c2, c3


@functools.cache
def _exact_uint64_products(xp: Any) -> bool:
    """Whether ``xp`` multiplies, shifts, masks and compares uint64 arrays exactly.

    NumPy, CuPy and array-api-strict do; torch's uint64 support is partial (it may
    refuse ``*`` or ``>>``), so torch takes the int64 split-multiply path.  Both give
    the same words; this only picks the faster one.
    """
    uint64 = getattr(xp, "uint64", None)
    if uint64 is None:
        return False
    try:
        b = xp.asarray([MASK32, 0x89ABCDEF], dtype=uint64)
        hi, lo = _mulhilo(PHILOX_M1, b)
        hi ^= 0
        got = xp.stack([hi ^ 1, lo, xp.astype(hi >= 0x10000000, uint64)])
        ref = [
            [((v * PHILOX_M1) >> 32) ^ 1 for v in (MASK32, 0x89ABCDEF)],
            [(v * PHILOX_M1) & MASK32 for v in (MASK32, 0x89ABCDEF)],
            [int(((v * PHILOX_M1) >> 32) >= 0x10000000) for v in (MASK32, 0x89ABCDEF)],
        ]
        return _backend.to_numpy(xp.astype(got, xp.int64)).tolist() == ref
    except Exception:  # any refusal means: not supported, use the portable path
        return False


def _words(
    seed: int, purpose: str, counter: int, n: int, xp: Any, device: Any, *, wide: bool | None
) -> Any:
    """``n`` Philox words in [0, 2**32), uint64 where ``xp`` computes them exactly, else int64."""
    _check(seed, counter)
    if wide is None:
        wide = _exact_uint64_products(xp)
    blocks = -(-n // 4)
    index = xp.arange(blocks, dtype=xp.uint64 if wide else xp.int64, device=device)
    p0, p1 = _purpose_words(purpose)
    words = philox4x32((index, counter, p0, p1), (seed & MASK32, seed >> 32))
    return xp.reshape(xp.stack(words, axis=1), (-1,))[:n]


def _purpose_words(purpose: str) -> tuple[int, int]:
    # hashlib, not hash(): Python's string hash changes from one process to the next
    h = int.from_bytes(hashlib.blake2b(purpose.encode(), digest_size=8).digest(), "little")
    return h & MASK32, h >> 32


def _check(seed: int, counter: int) -> None:
    if not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    if not (isinstance(counter, int) and 0 <= counter < 2**32):
        raise ValueError(f"counter must be an int in [0, 2**32), got {counter!r}")


def _size(shape: Shape) -> tuple[tuple[int, ...], int]:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return shape, math.prod(shape)


def _target(xp: Any, device: Any) -> tuple[Any, Any]:
    if xp is None:
        b = _backend.get_backend()
        return b.xp, b.device if device is None else device
    return xp, device


def random_bits(
    seed: int, purpose: str, counter: int, n: int, *, xp: Any = None, device: Any = None
) -> Any:
    """``n`` random 32-bit words, as an int64 array in [0, 2**32), on ``xp``/``device``.

    Word ``4*i + j`` is word ``j`` of Philox block ``(i, counter, purpose)``.
    """
    xp, device = _target(xp, device)
    words = _words(seed, purpose, counter, n, xp, device, wide=None)
    return words if words.dtype == xp.int64 else xp.astype(words, xp.int64)


def uniform(
    seed: int,
    purpose: str,
    counter: int,
    shape: Shape,
    dtype: Any = None,
    *,
    xp: Any = None,
    device: Any = None,
) -> Any:
    """Uniform floats in [0, 1) made exactly from 24 (float32) or 53 (float64) bits."""
    xp, device = _target(xp, device)
    dt = _backend.float_dtype(xp, dtype, device)
    shape, n = _size(shape)
    if dt == xp.float32:
        bits = _words(seed, purpose, counter, n, xp, device, wide=None)
        u = xp.astype(bits >> 8, dt) * (2.0**-24)
    else:
        bits = xp.reshape(_words(seed, purpose, counter, 2 * n, xp, device, wide=None), (n, 2))
        mantissa = (bits[:, 0] >> 5) * (2**26) + (bits[:, 1] >> 6)
        u = xp.astype(mantissa, dt) * (2.0**-53)
    return xp.reshape(u, shape)


def keep_mask(
    seed: int,
    purpose: str,
    counter: int,
    shape: Shape,
    drop_ratio: float,
    *,
    xp: Any = None,
    device: Any = None,
) -> Any:
    """Boolean mask that is False with probability ``drop_ratio`` (an integer comparison).

    The threshold is ``round(drop_ratio * 2**32)``: a word below it drops the unit.
    """
    if not 0.0 <= drop_ratio < 1.0:
        raise ValueError(f"drop ratio must be in [0, 1), got {drop_ratio!r}")
    xp, device = _target(xp, device)
    shape, n = _size(shape)
    bits = _words(seed, purpose, counter, n, xp, device, wide=None)
    return xp.reshape(bits >= round(drop_ratio * 2**32), shape)


def normal(
    seed: int,
    purpose: str,
    counter: int,
    shape: Shape,
    dtype: Any = None,
    *,
    scale: float = 1.0,
    xp: Any = None,
    device: Any = None,
) -> Any:
    """Standard normal samples times ``scale``, bit-identical on every backend.

    Computed on the host in float64 (Box-Muller on 53-bit uniforms), scaled and
    rounded to ``dtype`` there, then moved to the device once.
    """
    xp, device = _target(xp, device)
    dt = _backend.float_dtype(xp, dtype, device)
    shape, n = _size(shape)
    hp = _backend.host_namespace()
    m = -(-n // 2)
    u = uniform(seed, purpose, counter, (2, m), "float64", xp=hp)
    radius = hp.sqrt(-2.0 * hp.log(1.0 - u[0, :]))  # 1 - u is in (0, 1]: log is finite
    theta = (2.0 * math.pi) * u[1, :]
    z = hp.concat([radius * hp.cos(theta), radius * hp.sin(theta)])[:n] * scale
    host = hp.reshape(
        hp.astype(z, getattr(hp, "float64" if dt == xp.float64 else "float32")), shape
    )
    return xp.asarray(host, device=device, copy=True)


def permutation(
    seed: int, purpose: str, counter: int, n: int, *, xp: Any = None, device: Any = None
) -> Any:
    """A random permutation of ``range(n)`` (int64), computed on the device.

    Sorts 63-bit random keys; a stable sort makes even a (rare) tie deterministic.
    """
    xp, device = _target(xp, device)
    bits = xp.reshape(_words(seed, purpose, counter, 2 * n, xp, device, wide=None), (n, 2))
    keys = (bits[:, 0] << 31) | (bits[:, 1] >> 1)  # < 2**63: the same order in int64 or uint64
    return xp.argsort(keys, stable=True)


@dataclass
class RandomStream:
    """A named stream of draws: each call uses the next counter value.

    ``RandomStream(seed, "dropout/3")`` gives the same masks on every backend, and
    its whole state is ``(seed, purpose, counter)``.
    """

    seed: int = 0
    purpose: str = "default"
    counter: int = 0

    def __post_init__(self) -> None:
        _check(self.seed, self.counter)

    def _next(self) -> int:
        c = self.counter
        self.counter += 1
        return c

    def bits(self, n: int, *, xp: Any = None, device: Any = None) -> Any:
        return random_bits(self.seed, self.purpose, self._next(), n, xp=xp, device=device)

    def uniform(self, shape: Shape, dtype: Any = None, *, xp: Any = None, device: Any = None):
        return uniform(self.seed, self.purpose, self._next(), shape, dtype, xp=xp, device=device)

    def normal(
        self,
        shape: Shape,
        dtype: Any = None,
        *,
        scale: float = 1.0,
        xp: Any = None,
        device: Any = None,
    ) -> Any:
        c = self._next()
        return normal(self.seed, self.purpose, c, shape, dtype, scale=scale, xp=xp, device=device)

    def keep_mask(
        self, shape: Shape, drop_ratio: float, *, xp: Any = None, device: Any = None
    ) -> Any:
        c = self._next()
        return keep_mask(self.seed, self.purpose, c, shape, drop_ratio, xp=xp, device=device)

    def permutation(self, n: int, *, xp: Any = None, device: Any = None) -> Any:
        return permutation(self.seed, self.purpose, self._next(), n, xp=xp, device=device)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "purpose": self.purpose, "counter": self.counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check(int(state["seed"]), int(state["counter"]))
        self.seed, self.purpose, self.counter = (
            int(state["seed"]),
            str(state["purpose"]),
            int(state["counter"]),
        )
