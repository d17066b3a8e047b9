"""Random numbers that agree bit for bit on every backend.

The array API has no random module, and NumPy, CuPy and torch each have their own
generators with different streams.  xpscratch uses one counter-based generator,
Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11,
the generator of Random123 and cuRAND), written in portable array-API integer
operations so that it runs unchanged, on the device, on every backend.

* Each 32-bit word is kept in [0, 2**32), in one of three dtypes chosen once per
  namespace and device (:func:`_path`): uint64 where its products are exact (one
  multiply); int64 on torch (the multiply split on the constant's 16-bit halves, every
  product below 2**48); uint32 where the device has no 64-bit integers (JAX without
  x64, strict's ``no_x64``: both operands split, every intermediate below 2**32).  On
  NumPy the optional ``randomgen`` computes the same words in compiled code.
* The rounds run on whole arrays, both multiply lanes stacked in one array, and a
  :class:`RandomStream` computes small draws of one size a few counters ahead: a
  dropout mask is about a dozen array operations (kernel launches on a GPU).
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
import importlib
import math
from dataclasses import dataclass, field
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
MASK16 = 0xFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
Shape = int | tuple[int, ...]


def _mulhilo(a: int, b: Any) -> tuple[Any, Any]:
    """High and low 32-bit words of the 64-bit product of a constant ``a`` and ``b``.

    Exact for a Python int ``b`` and for a uint64 array: the product of two 32-bit
    values fits in 64 unsigned bits.  ``a`` may also be an array of constants.
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
    return _split_a(b, a & MASK16, a >> 16)


def _split_a(b: Any, a_lo: Any, a_hi: Any) -> tuple[Any, Any]:
    # the int64 multiply with the halves of the constant given (ints or arrays)
    p_lo = b * a_lo
    p_hi = b * a_hi
    t = p_hi & MASK16
    t <<= 16
    t += p_lo  # < 2**49
    p_hi >>= 16
    p_hi += t >> 32
    t &= MASK32
    return p_hi, t


def _mulhilo_uint32(a: int, b: Any) -> tuple[Any, Any]:
    """:func:`_mulhilo` for uint32 arrays, on devices without 64-bit integers.

    Both operands are split into 16-bit halves; every partial product and every partial
    sum stays below 2**32, so nothing relies on how a backend handles overflow (the
    array API leaves it unspecified).
    """
    return _split_ab(b, a & MASK16, a >> 16)


def _split_ab(b: Any, a_lo: Any, a_hi: Any) -> tuple[Any, Any]:
    b_lo, b_hi = b & MASK16, b >> 16
    ll, lh, hl = b_lo * a_lo, b_lo * a_hi, b_hi * a_lo  # each < 2**32
    mid = (ll >> 16) + (lh & MASK16) + (hl & MASK16)  # < 3 * 2**16
    lo = (ll & MASK16) | ((mid & MASK16) << 16)
    # every partial sum is at most the high word itself, so below 2**32
    hi = b_hi * a_hi + (lh >> 16) + (hl >> 16) + (mid >> 16)
    return hi, lo


def philox4x32(counter: tuple[Any, Any, Any, Any], key: tuple[int, int], rounds: int = 10):
    """Philox4x32-R on four counter words and a 2-word key.

    Words are Python ints (the scalar reference), or arrays of int64, uint64 or uint32
    holding values in [0, 2**32), one block per element; the output has the arrays'
    dtype.  This is the readable form; draws use :func:`_block_words`, the same
    rounds on stacked arrays.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    arrays = [c for c in counter if not isinstance(c, int)]
    mulhilo = _mulhilo
    word = int  # how a key word meets the arrays
    if arrays:
        xp = _backend.namespace(arrays[0])
        if arrays[0].dtype == xp.int64:
            mulhilo = _mulhilo_int64
        elif arrays[0].dtype == xp.uint32:
            mulhilo = _mulhilo_uint32
            device = _backend.device_of(arrays[0])
            # JAX refuses a Python int above 2**31 - 1 beside a uint32 array
            word = functools.partial(xp.asarray, dtype=xp.uint32, device=device)
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = mulhilo(PHILOX_M0, c0)
        hi1, lo1 = mulhilo(PHILOX_M1, c2)
        # hi0 and hi1 are new arrays (or ints): xor in place, saving two temporaries
        hi1 ^= c1
        hi1 ^= word(k0)
        hi0 ^= c3
        hi0 ^= word(k1)
        c0, c1, c2, c3 = hi1, lo1, hi0, lo0
    return c0, c1, c2, c3


# ---------------------------------------------------------------------------
# Word paths: uint64 (one exact multiply), int64 (split on the constant's halves),
# uint32 (split on both operands' halves), and randomgen's compiled Philox on NumPy
# ---------------------------------------------------------------------------

PATHS = ("uint64", "int64", "uint32", "randomgen")


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
        expected = xp.asarray(ref, dtype=uint64)
        return bool(xp.all(got == expected))
    except Exception:  # any refusal means: not supported, use the portable path
        return False


@functools.cache
def _randomgen_philox() -> Any:
    """randomgen's ``Philox`` class, or None: an optional compiled fast path for NumPy.

    ``Philox(number=4, width=32)`` is the very same generator with the same block
    layout (tested word for word); it is imported only when a NumPy draw first needs it.
    """
    try:
        return importlib.import_module("randomgen").Philox
    except ImportError:
        return None


def _integer_dtypes(xp: Any, device: Any) -> set[str]:
    try:
        names = _backend.device_dtypes(xp, device)
        return {n for n in names if n.startswith(("int", "uint"))}
    except Exception:  # a namespace without the inspection API: trust its attributes
        return {name for name in ("int64", "uint64", "uint32") if hasattr(xp, name)}


_PATH_CACHE: dict[tuple[int, Any], str] = {}


def _path(xp: Any, device: Any) -> str:
    """The fastest exact word path for ``xp`` on ``device`` (decided once for each pair).

    randomgen on the host NumPy namespace where it is installed; else uint64 where the
    products are exact; int64 where there are 64-bit signed integers (torch); uint32
    where the device has no 64-bit integers at all (JAX without x64, strict ``no_x64``).
    """
    # A namespace's integer dtypes are part of the key: JAX's 64-bit mode can be switched
    # at run time, and a path chosen with it on must not be used with it off.
    ints = None if xp is _backend.host_namespace() else frozenset(_integer_dtypes(xp, device))
    try:
        key = (id(xp), device, ints)
        hash(key)
    except TypeError:  # an unhashable device object: decide every time
        key = None
    if key is not None and key in _PATH_CACHE:
        return _PATH_CACHE[key]
    ints = _integer_dtypes(xp, device)
    if "int64" not in ints and "uint64" not in ints:
        path = "uint32"
    elif xp is _backend.host_namespace() and _randomgen_philox() is not None:
        path = "randomgen"
    elif "uint64" in ints and _exact_uint64_products(xp):
        path = "uint64"
    else:
        path = "int64"
    if key is not None:
        _PATH_CACHE[key] = path
    return path


def _device_key(device: Any) -> Any:
    """A hashable stand-in for ``device``: CuPy's ``Device`` objects are unhashable."""
    try:
        hash(device)
    except TypeError:
        return (type(device).__qualname__, getattr(device, "id", None), str(device))
    return device


_LANE_CACHE: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_LANE_CACHE_SIZE = 64


def _lane_constants(
    xp: Any, device: Any, path: str, seed: int, *, traced: bool = False
) -> tuple[Any, ...]:
    """The per-lane constants of rounds 2-9 for stacked lanes ``[c0, c2]``, made once.

    Each is a ``(2, 1, 1)`` array: the multipliers (or their 16-bit halves) and, for
    each round, the key words xored into the lanes before they swap (``[k1, k0]``).
    Made once per (namespace, device, seed), so a draw moves nothing to the device.
    The cache is keyed by :func:`_device_key`, not the device: CuPy's devices are
    unhashable, and ``functools.lru_cache`` refused them (every CuPy draw failed).
    Inside a trace (``traced``) they are made afresh and never cached: arrays made in a
    trace die with it (``jax.jit``), and dynamo cannot look up a key holding a module.
    """
    if traced:
        return _make_lane_constants(xp, device, path, seed)
    key = (xp, _device_key(device), path, seed)
    found = _LANE_CACHE.get(key)
    if found is None:
        found = _make_lane_constants(xp, device, path, seed)
        if _backend.is_traced(found[0][0]):
            return found  # made inside a trace (jax.jit): dead once it ends, never cached
        if len(_LANE_CACHE) >= _LANE_CACHE_SIZE:
            _LANE_CACHE.pop(next(iter(_LANE_CACHE)))  # the oldest
        _LANE_CACHE[key] = found
    return found


def _make_lane_constants(xp: Any, device: Any, path: str, seed: int) -> tuple[Any, ...]:
    dt = getattr(xp, path)

    def lanes(a: int, b: int) -> Any:
        return xp.asarray([[[a]], [[b]]], dtype=dt, device=device)

    if path == "uint64":
        mult: tuple[Any, ...] = (lanes(PHILOX_M0, PHILOX_M1),)
    else:
        mult = (
            lanes(PHILOX_M0 & MASK16, PHILOX_M1 & MASK16),
            lanes(PHILOX_M0 >> 16, PHILOX_M1 >> 16),
        )
    k0, k1 = seed & MASK32, seed >> 32
    keys = tuple(
        lanes((k1 + r * PHILOX_W1) & MASK32, (k0 + r * PHILOX_W0) & MASK32) for r in range(10)
    )
    return mult, keys


def _scalar_mulhilo(a: int, b: Any, path: str) -> tuple[Any, Any]:
    if isinstance(b, int):
        return _mulhilo(a, b)
    return {"uint64": _mulhilo, "int64": _mulhilo_int64, "uint32": _mulhilo_uint32}[path](a, b)


def _block_words(
    seed: int,
    purpose: str,
    counter: int,
    count: int,
    n: int,
    xp: Any,
    device: Any,
    path: str,
) -> Any:
    """Words of ``count`` consecutive counters at once: shape ``(count, n)``.

    Row ``j`` holds word ``4*i + k`` of Philox block ``(i, counter + j, purpose)``, the
    same words as :func:`philox4x32` gives one block at a time.  The rounds run on
    whole arrays: in the first two, two of the four words are still the same for every
    block (Python ints); from the third on, both multiply lanes ``[c0, c2]`` sit in one
    array and the other two words in another, so a round is one multiply, its split and
    three more operations, whatever the number of blocks and counters.
    """
    dt = getattr(xp, path)
    blocks = -(-n // 4)
    k0, k1 = seed & MASK32, seed >> 32
    p0, p1 = _purpose_words(purpose)
    index = xp.arange(blocks, dtype=dt, device=device)  # word c0

    def const(v: int) -> Any:
        # JAX refuses a Python int above 2**31 - 1 beside a uint32 array: make it one
        return xp.asarray(v, dtype=dt, device=device) if v > 0x7FFFFFFF and path == "uint32" else v

    traced_counter = not isinstance(counter, int)
    if traced_counter:  # a 0-d integer array (a compiled step's counter): count is 1
        counter = xp.astype(xp.reshape(counter, ()), dt)
    if count == 1:
        c1: Any = counter
    else:
        c1 = xp.reshape(xp.arange(count, dtype=dt, device=device) + const(counter), (count, 1))
    # round 0: c2, c3 (and c1) are the same for every block
    hi0, lo0 = _scalar_mulhilo(PHILOX_M0, index, path)
    hi1, lo1 = _mulhilo(PHILOX_M1, p0)
    if traced_counter:
        c0 = counter ^ const(hi1 ^ k0)
    else:
        c0 = counter ^ hi1 ^ k0 if count == 1 else c1 ^ const(hi1 ^ k0)
    c1, c2, c3 = lo1, hi0 ^ const(p1 ^ k1), lo0
    # round 1: c1 is still a Python int, and c0 one too unless count > 1
    k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    hi0, lo0 = _scalar_mulhilo(PHILOX_M0, c0, path)
    hi1, lo1 = _scalar_mulhilo(PHILOX_M1, c2, path)
    c2 = c3 ^ (const(hi0 ^ k1) if isinstance(hi0, int) else hi0 ^ const(k1))
    c0, c1, c3 = hi1 ^ const(c1 ^ k0), lo1, const(lo0) if isinstance(lo0, int) else lo0
    # rounds 2-9 on stacked lanes: x = [c0, c2]; y = [c3, c1] (y swapped, so that
    # each lane's high word is xored with its own lane of y before the lanes swap)
    shape = (count, blocks)
    x = xp.stack([xp.broadcast_to(c0, shape), xp.broadcast_to(c2, shape)])
    if isinstance(c3, int):
        c3 = xp.full(shape, c3, dtype=dt, device=device)
    y = xp.stack([xp.broadcast_to(c3, shape), xp.broadcast_to(c1, shape)])
    traced = _backend.is_traced(x)
    mult, keys = _lane_constants(xp, device, path, seed, traced=traced)
    if traced:  # the rounds become one loop: r is then a traced index
        keys = xp.stack(keys)

    def one_round(r: Any, xy: tuple[Any, Any]) -> tuple[Any, Any]:
        x, y = xy
        if path == "uint64":
            hi, lo = _mulhilo(mult[0], x)
        elif path == "int64":
            hi, lo = _split_a(x, *mult)
        else:
            hi, lo = _split_ab(x, *mult)
        hi ^= y
        hi ^= keys[r]
        return xp.flip(hi, axis=0), lo

    # one loop under jax.jit, a plain Python loop elsewhere (one place for the rounds)
    x, y = _backend.repeat_rounds(2, 10, one_round, (x, y))
    words = xp.stack(
        [x[0, ...], y[1, ...], x[1, ...], y[0, ...]], axis=-1
    )  # (count, blocks, 4): c0 c1 c2 c3
    words = xp.reshape(words, (count, 4 * blocks))
    return words if 4 * blocks == n else words[:, :n]


def _randomgen_words(seed: int, purpose: str, counter: int, n: int) -> Any:
    # randomgen increments its 128-bit counter (c0 + 2**32 c1 + 2**64 c2 + 2**96 c3)
    # before each block: start one before block (0, counter, p0, p1)
    p0, p1 = _purpose_words(purpose)
    start = ((p1 << 96) | (p0 << 64) | (counter << 32)) - 1
    philox = _randomgen_philox()(counter=start % 2**128, key=seed, number=4, width=32)
    return philox.random_raw(n)  # a uint64 array on the host, one 32-bit word each


def _words(
    seed: int,
    purpose: str,
    counter: int,
    n: int,
    xp: Any,
    device: Any,
    *,
    wide: bool | None = None,
    path: str | None = None,
) -> Any:
    """``n`` Philox words in [0, 2**32) in the path's dtype (uint64, int64 or uint32).

    ``wide=True``/``False`` asks for the uint64/int64 path, ``path`` for any path by
    name; by default :func:`_path` picks the fastest for ``xp`` and ``device``.
    """
    _check(seed, counter)
    if path is None:
        path = _path(xp, device) if wide is None else ("uint64" if wide else "int64")
    if path == "randomgen":
        return _randomgen_words(seed, purpose, counter, n)
    if n == 0:
        return xp.zeros(0, dtype=getattr(xp, path), device=device)
    return _block_words(seed, purpose, counter, 1, n, xp, device, path)[0, :]


# purpose -> its two words; a plain dict, not functools.lru_cache: torch.compile traces
# through an lru_cache wrapper into hashlib (a graph break), but reads a dict entry as a
# constant.  A stream fills its entry when made, so a compiled step only reads it.
_PURPOSE_WORDS: dict[str, tuple[int, int]] = {}
_PURPOSE_WORDS_SIZE = 1024


def _purpose_words(purpose: str) -> tuple[int, int]:
    found = _PURPOSE_WORDS.get(purpose)
    if found is None:
        # hashlib, not hash(): Python's string hash changes from one process to the next
        h = int.from_bytes(hashlib.blake2b(purpose.encode(), digest_size=8).digest(), "little")
        found = h & MASK32, h >> 32
        if len(_PURPOSE_WORDS) >= _PURPOSE_WORDS_SIZE:
            _PURPOSE_WORDS.pop(next(iter(_PURPOSE_WORDS)))  # the oldest
        _PURPOSE_WORDS[purpose] = found
    return found


def _check(seed: int, counter: int) -> None:
    if not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    if _is_counter_array(counter):
        return  # a compiled step's counter: its value is not read
    if not (isinstance(counter, int) and 0 <= counter < 2**32):
        raise ValueError(f"counter must be an int in [0, 2**32), got {counter!r}")


def _is_counter_array(counter: Any) -> bool:
    """A 0-d integer array counter, as a compiled step carries (its value unread)."""
    if isinstance(counter, int) or not hasattr(counter, "dtype"):
        return False
    xp = _backend.namespace(counter)
    return counter.ndim == 0 and xp.isdtype(counter.dtype, "integral")


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
    """``n`` random 32-bit words in [0, 2**32) on ``xp``/``device``: int64, or uint32 on a
    device without 64-bit integers.

    Word ``4*i + j`` is word ``j`` of Philox block ``(i, counter, purpose)``.
    """
    xp, device = _target(xp, device)
    return _as_bits(_words(seed, purpose, counter, n, xp, device), xp)


def _as_bits(words: Any, xp: Any) -> Any:
    if words.dtype in (xp.uint32, getattr(xp, "int64", None)):
        return words
    return xp.astype(words, xp.int64)


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
    words = _words(seed, purpose, counter, n if dt == xp.float32 else 2 * n, xp, device)
    # inside xpscratch check's nudged NumPy runs, the floats (never the words) move an ulp
    return _backend._nudge_array(_as_uniform(words, shape, dt, xp, owned=True))


def _as_uniform(bits: Any, shape: tuple[int, ...], dt: Any, xp: Any, *, owned: bool = False) -> Any:
    # ``owned``: the words are this draw's own, so they may be shifted in place
    if dt == xp.float32:
        if owned:
            bits >>= 8
        else:
            bits = bits >> 8
        u = xp.astype(bits, dt)
        u *= 2.0**-24
    else:
        bits = xp.reshape(bits, (-1, 2))
        if bits.dtype == xp.uint32:  # (b0 >> 5) * 2**26 does not fit: add in float64
            u = xp.astype(bits[:, 0] >> 5, dt)
            u *= 2.0**26
            u += xp.astype(bits[:, 1] >> 6, dt)
        else:
            mantissa = bits[:, 0] >> 5
            mantissa *= 2**26
            mantissa += bits[:, 1] >> 6
            u = xp.astype(mantissa, dt)
        u *= 2.0**-53
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
    _check_ratio(drop_ratio)
    xp, device = _target(xp, device)
    shape, n = _size(shape)
    return _as_mask(_words(seed, purpose, counter, n, xp, device), shape, drop_ratio, xp)


def _check_ratio(drop_ratio: float) -> None:
    if not 0.0 <= drop_ratio < 1.0:
        raise ValueError(f"drop ratio must be in [0, 1), got {drop_ratio!r}")


def _as_mask(bits: Any, shape: tuple[int, ...], drop_ratio: float, xp: Any) -> Any:
    threshold = round(drop_ratio * 2**32)
    if threshold > MASK32:  # every word is below it (and it does not fit in uint32)
        return xp.reshape(bits < 0, shape)
    if threshold > 0x7FFFFFFF and bits.dtype == xp.uint32:  # JAX needs it as an array
        threshold = xp.asarray(threshold, dtype=bits.dtype, device=_backend.device_of(bits))
    return xp.reshape(bits >= threshold, shape)


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
    # in place where it rounds the same: x * y == y * x in IEEE arithmetic
    radius = hp.log(1.0 - u[0, :])  # 1 - u is in (0, 1]: log is finite
    radius *= -2.0
    radius = hp.sqrt(radius)
    theta = u[1, :]
    theta *= 2.0 * math.pi
    z_cos, z_sin = hp.cos(theta), hp.sin(theta)
    z_cos *= radius
    z_sin *= radius
    z = hp.concat([z_cos, z_sin])[:n]
    z *= scale
    host = hp.reshape(
        hp.astype(z, getattr(hp, "float64" if dt == xp.float64 else "float32"), copy=False),
        shape,
    )
    if xp is hp:
        return _backend._nudge_array(host)  # made here and held by nobody else
    return xp.asarray(host, device=device, copy=True)


def permutation(
    seed: int, purpose: str, counter: int, n: int, *, xp: Any = None, device: Any = None
) -> Any:
    """A random permutation of ``range(n)`` (the default index dtype), on the device.

    Sorts 63-bit random keys; a stable sort makes even a (rare) tie deterministic.
    """
    xp, device = _target(xp, device)
    return _as_permutation(_words(seed, purpose, counter, 2 * n, xp, device), xp)


def _as_permutation(bits: Any, xp: Any) -> Any:
    bits = xp.reshape(bits, (-1, 2))
    if bits.dtype == xp.uint32:
        return _radix_argsort(bits[:, 0], bits[:, 1] >> 1, xp)
    keys = (bits[:, 0] << 31) | (bits[:, 1] >> 1)  # < 2**63: the same order in int64 or uint64
    return xp.argsort(keys, stable=True)


def _radix_argsort(high: Any, low: Any, xp: Any) -> Any:
    """The stable argsort of the 63-bit keys ``(high << 31) | low`` in uint32 alone.

    Without 64-bit integers the key does not fit one word, and ``argsort`` itself may
    build an int64 result (array-api-strict 2.6.1 on its ``no_x64`` device does).  So:
    a least-significant-digit radix sort whose passes are plain ``sort`` calls on
    ``digit << k | position`` (k bits hold a position), each stable because the positions
    are distinct; the same order as ``argsort(keys, stable=True)``, ties included.
    """
    n = high.shape[0]
    k = max(1, (n - 1).bit_length())
    if k > 24:
        raise ValueError(f"a permutation of {n} items needs 64-bit integers on this device")
    width = 32 - k  # digit bits per pass
    device = _backend.device_of(high)
    positions = xp.arange(n, dtype=xp.uint32, device=device)
    order = positions
    for offset in range(0, 63, width):
        w = min(width, 63 - offset)
        h, lo = xp.take(high, order), xp.take(low, order)
        if offset + w <= 31:  # the digit lies in the low 31 bits
            digit = (lo >> offset) & ((1 << w) - 1)
        elif offset >= 31:  # in the high word
            digit = (h >> (offset - 31)) & ((1 << w) - 1)
        else:  # across both: no bit is shifted out of 32
            below = 31 - offset
            digit = (lo >> offset) | ((h & ((1 << (w - below)) - 1)) << below)
        packed = xp.sort((digit << k) | positions)
        order = xp.take(order, packed & ((1 << k) - 1))
    return xp.astype(order, xp.int32)


# A stream draws the words of several counters in one go when a draw is small (a
# dropout mask): each array operation then covers the next few draws as well, which
# divides the number of operations (kernel launches on a GPU) per draw.  The words are
# the same; only when they are computed changes.
PREFETCH_WORDS = 2**17  # at most this many words computed ahead (1 MiB as uint64)
PREFETCH_DRAWS = 8  # and at most this many draws


@dataclass
class _Prefetched:
    seed: int
    purpose: str
    start: int  # the first counter value of ``words``
    xp: Any
    device: Any
    words: Any  # (count, n): row j is the draw at counter start + j

    def row(self, stream: RandomStream, counter: int, n: int, xp: Any, device: Any) -> Any:
        j = counter - self.start
        same = (self.seed, self.purpose, self.xp) == (stream.seed, stream.purpose, xp)
        if same and self.words.shape[1] == n and 0 <= j < self.words.shape[0]:
            if self.device == device:
                return self.words[j, :]
        return None


@dataclass
class RandomStream:
    """A named stream of draws: each call uses the next counter value.

    ``RandomStream(seed, "dropout/3")`` gives the same masks on every backend, and
    its whole state is ``(seed, purpose, counter)``.  Small draws of one size (dropout
    masks) are computed a few counters ahead, with the very same words.
    """

    seed: int = 0
    purpose: str = "default"
    counter: int = 0
    _ahead: _Prefetched | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check(self.seed, self.counter)
        _purpose_words(self.purpose)  # computed once here, not inside a compiled step

    def _next(self) -> int:
        c = self.counter
        self.counter = c + 1  # a new value: an array counter (a compiled step's) may be shared
        return c

    def _draw_words(self, n: int, xp: Any, device: Any) -> tuple[Any, Any, bool]:
        """The words of the next counter value (from the prefetched ones if they fit),
        their namespace, and whether they are this draw's own (not a prefetched row)."""
        xp, device = _target(xp, device)
        _check(self.seed, self.counter)
        c = self._next()
        if not isinstance(c, int):  # a compiled step's array counter: this draw only
            path = _path(xp, device)
            path = "uint64" if path == "randomgen" else path
            return _block_words(self.seed, self.purpose, c, 1, n, xp, device, path)[0, :], xp, True
        if self._ahead is not None:
            row = self._ahead.row(self, c, n, xp, device)
            if row is not None:
                return row, xp, False
        path = _path(xp, device)
        count = min(PREFETCH_DRAWS, PREFETCH_WORDS // max(n, 1), 2**32 - c)
        if path == "randomgen" or count <= 1 or n == 0:
            self._ahead = None
            return _words(self.seed, self.purpose, c, n, xp, device, path=path), xp, True
        words = _block_words(self.seed, self.purpose, c, count, n, xp, device, path)
        # words made inside a trace die with it: keep none (the next trace draws afresh)
        traced = _backend.is_traced(words)
        self._ahead = None if traced else _Prefetched(self.seed, self.purpose, c, xp, device, words)
        return words[0, :], xp, False

    def bits(self, n: int, *, xp: Any = None, device: Any = None) -> Any:
        words, xp, owned = self._draw_words(n, xp, device)
        bits = _as_bits(words, xp)
        # a prefetched row is shared with the stream: hand out a copy
        return xp.asarray(bits, copy=True) if bits is words and not owned else bits

    def uniform(self, shape: Shape, dtype: Any = None, *, xp: Any = None, device: Any = None):
        xp, device = _target(xp, device)
        dt = _backend.float_dtype(xp, dtype, device)
        shape, n = _size(shape)
        words, xp, owned = self._draw_words(n if dt == xp.float32 else 2 * n, xp, device)
        return _as_uniform(words, shape, dt, xp, owned=owned)

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
        _check_ratio(drop_ratio)
        shape, n = _size(shape)
        words, xp, _ = self._draw_words(n, xp, device)
        return _as_mask(words, shape, drop_ratio, xp)

    def permutation(self, n: int, *, xp: Any = None, device: Any = None) -> Any:
        words, xp, _ = self._draw_words(2 * n, xp, device)
        return _as_permutation(words, xp)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "purpose": self.purpose, "counter": self.counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check(int(state["seed"]), int(state["counter"]))
        self.seed, self.purpose, self.counter = (
            int(state["seed"]),
            str(state["purpose"]),
            int(state["counter"]),
        )
        _purpose_words(self.purpose)
