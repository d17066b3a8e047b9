"""Philox4x32-10: the published known answers, and the same bits on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpscratch
from xpscratch import random as R
from xpscratch.check._random import KAT_10  # Random123's ten-round vectors: one table

# Random123's tests/kat_vectors: counter (4 words), key (2 words) -> output (4 words)
KAT_7 = [
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT_10)
def test_known_answers_on_python_ints(counter, key, expected):
    assert R.philox4x32(counter, key) == expected


@pytest.mark.parametrize(("counter", "key", "expected"), KAT_7)
def test_known_answers_seven_rounds(counter, key, expected):
    assert R.philox4x32(counter, key, rounds=7) == expected


def _skip_without(backend, xp, dtype: str) -> None:
    if dtype not in R._integer_dtypes(xp, backend.device):
        pytest.skip(
            f"{backend.name} on {backend.device}: no {dtype} (its uint32 path is tested below)"
        )


def test_known_answers_on_every_backend(backend, xp):
    """All three vectors at once, one block per element, in int64 arrays."""
    _skip_without(backend, xp, "int64")
    words = [
        xp.asarray([c[i] for c, _, _ in KAT_10], dtype=xp.int64, device=backend.device)
        for i in range(4)
    ]
    for j, (_, key, expected) in enumerate(KAT_10):
        column = [w[j : j + 1] for w in words]
        out = R.philox4x32(tuple(column), key)
        assert [int(xpscratch.to_numpy(o)[0]) for o in out] == list(expected)


def test_known_answers_on_uint64_arrays(backend, xp):
    """The single-multiply path, on the backends whose uint64 products are exact."""
    if not R._exact_uint64_products(xp):
        pytest.skip(f"{backend.name} has no exact uint64 products: it uses the int64 path")
    _skip_without(backend, xp, "uint64")
    words = [
        xp.asarray([c[i] for c, _, _ in KAT_10], dtype=xp.uint64, device=backend.device)
        for i in range(4)
    ]
    for j, (_, key, expected) in enumerate(KAT_10):
        out = R.philox4x32(tuple(w[j : j + 1] for w in words), key)
        assert all(o.dtype == xp.uint64 for o in out)
        assert [int(xpscratch.to_numpy(xp.astype(o, xp.int64))[0]) for o in out] == list(expected)


def test_the_fast_path_is_taken_where_it_is_exact():
    import array_api_strict

    assert R._exact_uint64_products(xpscratch.backend.namespace(np.ones(1)))
    assert R._exact_uint64_products(array_api_strict)


@pytest.mark.parametrize("n", [1, 7, 4096 + 3])
def test_both_multiply_paths_give_the_same_words(backend, xp, n):
    _skip_without(backend, xp, "int64")
    split = R._words(9, "paths", 4, n, xp, backend.device, wide=False)
    assert split.dtype == xp.int64
    ref = _numpy_reference_bits(9, "paths", 4, n)
    np.testing.assert_array_equal(xpscratch.to_numpy(split), ref)
    if R._exact_uint64_products(xp):
        wide = R._words(9, "paths", 4, n, xp, backend.device, wide=True)
        assert wide.dtype == xp.uint64
        np.testing.assert_array_equal(xpscratch.to_numpy(xp.astype(wide, xp.int64)), ref)


def _numpy_reference_bits(seed, purpose, counter, n):
    """The same stream computed by the scalar (pure Python) Philox, block by block."""
    p0, p1 = R._purpose_words(purpose)
    out = []
    for i in range(-(-n // 4)):
        out.extend(R.philox4x32((i, counter, p0, p1), (seed & R.MASK32, seed >> 32)))
    return np.array(out[:n], dtype=np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 7, 2**64 - 1])
def test_bits_match_the_scalar_reference(backend, seed):
    bits = R.random_bits(seed, "test", 3, 37)
    host = xpscratch.to_numpy(bits)
    # words come as int64, or as uint32 where the device has no 64-bit integers
    device = xpscratch.backend.device_of(bits)
    narrow = "int64" not in R._integer_dtypes(xpscratch.backend.namespace(bits), device)
    assert host.dtype == (np.uint32 if narrow else np.int64) and host.shape == (37,)
    assert host.min() >= 0 and host.max() < 2**32
    np.testing.assert_array_equal(host, _numpy_reference_bits(seed, "test", 3, 37))


def test_a_draw_is_a_pure_function_of_seed_purpose_and_counter(backend):
    first = xpscratch.to_numpy(R.random_bits(5, "dropout/1", 10, 64))
    R.random_bits(5, "dropout/2", 10, 64)  # other draws in between change nothing
    R.random_bits(5, "dropout/1", 11, 64)
    again = xpscratch.to_numpy(R.random_bits(5, "dropout/1", 10, 64))
    np.testing.assert_array_equal(first, again)
    prefix = xpscratch.to_numpy(R.random_bits(5, "dropout/1", 10, 9))
    np.testing.assert_array_equal(prefix, first[:9])
    for other in (
        R.random_bits(6, "dropout/1", 10, 64),
        R.random_bits(5, "dropout/2", 10, 64),
        R.random_bits(5, "dropout/1", 11, 64),
    ):
        assert np.mean(xpscratch.to_numpy(other) == first) < 0.05


def test_uniform_float32_uses_exactly_24_bits(backend):
    u = xpscratch.to_numpy(R.uniform(3, "u", 0, (5, 7), "float32"))
    bits = _numpy_reference_bits(3, "u", 0, 35).reshape(5, 7)
    np.testing.assert_array_equal(u, (bits >> 8).astype(np.float32) / np.float32(2**24))
    assert u.dtype == np.float32 and 0.0 <= u.min() and u.max() < 1.0


def test_uniform_float64_uses_exactly_53_bits(backend, float_dtype):
    if float_dtype != "float64":
        pytest.skip("this device has no float64")
    u = xpscratch.to_numpy(R.uniform(3, "u", 0, 40, "float64"))
    bits = _numpy_reference_bits(3, "u", 0, 80).reshape(40, 2)
    expected = ((bits[:, 0] >> 5) * 2**26 + (bits[:, 1] >> 6)) / 2.0**53
    np.testing.assert_array_equal(u, expected)
    assert np.all(u * 2**53 == np.floor(u * 2**53))


def test_uniform_is_uniform():
    u = xpscratch.to_numpy(R.uniform(0, "stats", 0, 200_000, "float64"))
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    expected = len(u) / 20
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < 43.8  # the 0.999 quantile of chi-square with 19 degrees of freedom
    assert abs(u.mean() - 0.5) < 0.005


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.5, 0.9])
def test_keep_mask_is_an_integer_comparison(backend, ratio):
    mask = xpscratch.to_numpy(R.keep_mask(9, "drop", 4, (100, 50), ratio))
    bits = _numpy_reference_bits(9, "drop", 4, 5000).reshape(100, 50)
    np.testing.assert_array_equal(mask, bits >= round(ratio * 2**32))
    assert abs((1 - mask.mean()) - ratio) < 4 * math.sqrt(ratio * (1 - ratio) / 5000) + 1e-12


@pytest.mark.parametrize("ratio", [0.2, 0.5, 0.7])
def test_keep_mask_keeps_a_word_equal_to_the_threshold(backend, xp, ratio):
    """A word exactly at ``round(ratio * 2**32)`` is kept (``>=``), one below it is dropped:
    with random words a tie almost never happens, so only constructed words pin it."""
    threshold = round(ratio * 2**32)
    dt = R.random_bits(0, "tie", 0, 1).dtype  # the words' dtype on this device
    words = xp.asarray([threshold - 1, threshold, threshold + 1], dtype=dt, device=backend.device)
    mask = xpscratch.to_numpy(R._as_mask(words, (3,), ratio, xp))
    assert mask.tolist() == [False, True, True]


def test_keep_mask_rejects_bad_ratios():
    for ratio in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="drop ratio"):
            R.keep_mask(0, "d", 0, 4, ratio)


def test_normal_is_bit_identical_on_every_backend(backend, float_dtype):
    z = xpscratch.to_numpy(R.normal(11, "init/W1", 0, (30, 20), float_dtype, scale=0.5))
    with xpscratch.use_backend("numpy"):
        ref = xpscratch.to_numpy(R.normal(11, "init/W1", 0, (30, 20), float_dtype, scale=0.5))
    assert z.dtype == np.dtype(float_dtype)
    np.testing.assert_array_equal(z, ref)


def test_normal_moments_and_box_muller_reference():
    z = xpscratch.to_numpy(R.normal(1, "n", 0, 100_001, "float64"))
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(z**4) - 3.0) < 0.1  # kurtosis of a normal
    # independent Box-Muller on the same uniforms
    u = xpscratch.to_numpy(R.uniform(1, "n", 0, (2, 50_001), "float64"))
    r = np.sqrt(-2.0 * np.log1p(-u[0]))
    expected = np.concatenate([r * np.cos(2 * np.pi * u[1]), r * np.sin(2 * np.pi * u[1])])
    np.testing.assert_allclose(z, expected[:100_001], rtol=1e-12, atol=1e-12)


def test_permutation_is_a_permutation_and_identical_everywhere(backend):
    p = xpscratch.to_numpy(R.permutation(4, "shuffle", 2, 1000))
    assert sorted(p.tolist()) == list(range(1000))
    with xpscratch.use_backend("numpy"):
        ref = xpscratch.to_numpy(R.permutation(4, "shuffle", 2, 1000))
    np.testing.assert_array_equal(p, ref)
    other = xpscratch.to_numpy(R.permutation(4, "shuffle", 3, 1000))
    assert not np.array_equal(p, other)


def test_permutation_sorts_the_documented_keys():
    p = xpscratch.to_numpy(R.permutation(8, "s", 0, 50))
    bits = _numpy_reference_bits(8, "s", 0, 100).reshape(50, 2)
    keys = (bits[:, 0] << 31) | (bits[:, 1] >> 1)
    np.testing.assert_array_equal(p, np.argsort(keys, kind="stable"))


def test_stream_advances_and_restores(backend):
    s = R.RandomStream(seed=3, purpose="dropout/1")
    a = xpscratch.to_numpy(s.bits(16))
    saved = s.state_dict()
    b = xpscratch.to_numpy(s.bits(16))
    assert saved == {"seed": 3, "purpose": "dropout/1", "counter": 1} and s.counter == 2
    np.testing.assert_array_equal(a, _numpy_reference_bits(3, "dropout/1", 0, 16))
    np.testing.assert_array_equal(b, _numpy_reference_bits(3, "dropout/1", 1, 16))
    t = R.RandomStream()
    t.load_state_dict(saved)
    np.testing.assert_array_equal(xpscratch.to_numpy(t.bits(16)), b)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "7"])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        R.RandomStream(seed=seed)


def test_bad_counter_is_refused():
    with pytest.raises(ValueError, match="counter"):
        R.random_bits(0, "x", 2**32, 4)


# -- the word paths: uint64, int64, uint32 (no 64-bit integers) and randomgen ------------

PATH_DTYPES = {"uint64": "uint64", "int64": "int64", "uint32": "uint32"}


def _runs_path(xp, device, path) -> bool:
    """Whether ``xp`` has the dtype and exact operations a path needs (torch: no uint32
    shifts or comparisons, no exact uint64 products)."""
    if path == "uint64":
        return R._exact_uint64_products(xp) and "uint64" in R._integer_dtypes(xp, device)
    if path not in R._integer_dtypes(xp, device):
        return False
    try:
        a = xp.asarray([0xFFFFFFFF, 7], dtype=getattr(xp, path), device=device)
        bool(xp.all(((a >> 16) * 3 + (a << 1)) >= 0))
    except Exception:
        return False
    return True


def _as_int_list(words) -> list[int]:
    return [int(v) for v in xpscratch.to_numpy(words).astype(np.uint64).tolist()]


def _scalar_blocks(seed, purpose, counter, n) -> list[int]:
    return _numpy_reference_bits(seed, purpose, counter, n).tolist()


@pytest.fixture
def no_x64():
    """array_api_strict's device without int64/uint64/float64 (as JAX by default)."""
    with xpscratch.use_backend("array_api_strict", "no_x64") as b:
        yield b


@pytest.fixture
def jnp():
    """jax.numpy with 64-bit mode off (JAX's default): uint32 words."""
    jax = pytest.importorskip("jax")
    if jax.config.jax_enable_x64:
        pytest.skip("jax_enable_x64 is on in this process")
    return pytest.importorskip("jax.numpy")


def test_uint32_multiply_keeps_every_intermediate_below_2_32():
    """Every partial product and sum of the 16-bit split, recorded on the worst operands."""
    seen = []

    class Tracked(int):
        def _op(self, other, f):
            out = Tracked(f(int(self), int(other)))
            seen.append(int(out))
            return out

    for name, f in {
        "and": int.__and__,
        "or": int.__or__,
        "rshift": int.__rshift__,
        "lshift": int.__lshift__,
        "mul": int.__mul__,
        "add": int.__add__,
    }.items():
        setattr(Tracked, f"__{name}__", lambda s, o, f=f: s._op(o, f))
        setattr(Tracked, f"__r{name}__", lambda s, o, f=f: Tracked(o)._op(s, f))
    for a in (R.PHILOX_M0, R.PHILOX_M1, R.MASK32):
        for b in (0, 1, 0xFFFF, 0x10000, 0xFFFF0000, 0x89ABCDEF, R.MASK32):
            seen.clear()
            hi, lo = R._mulhilo_uint32(a, Tracked(b))
            assert (int(hi), int(lo)) == ((a * b) >> 32, (a * b) & R.MASK32)
            assert seen and max(seen) < 2**32, (hex(a), hex(b), hex(max(seen)))


@pytest.mark.parametrize("path", ["uint64", "int64", "uint32"])
def test_known_answers_on_every_path(backend, xp, path):
    """The Random123 vectors through philox4x32 on arrays of each path's dtype."""
    if not _runs_path(xp, backend.device, path):
        pytest.skip(f"{backend.name} has no exact {path} arithmetic")
    dt = getattr(xp, path)
    words = [
        xp.asarray([c[i] for c, _, _ in KAT_10], dtype=dt, device=backend.device) for i in range(4)
    ]
    for j, (_, key, expected) in enumerate(KAT_10):
        out = R.philox4x32(tuple(w[j : j + 1] for w in words), key)
        assert all(o.dtype == dt for o in out)
        assert [_as_int_list(o)[0] for o in out] == list(expected)


def test_block_words_reproduce_the_known_answers():
    """The stacked-lane engine on the published vectors (seed = key, purpose words = c2, c3)."""
    # block i of _block_words is (i, counter, p0, p1): pick the vector with c0 = 0
    counter, key, expected = KAT_10[0]
    assert counter == (0, 0, 0, 0) and key == (0, 0)
    for path in ("uint64", "int64", "uint32"):
        orig = R._purpose_words
        try:
            R._purpose_words = lambda purpose: (0, 0)
            words = R._block_words(0, "kat", 0, 1, 4, np, None, path)
        finally:
            R._purpose_words = orig
        assert _as_int_list(words[0, :]) == list(expected)


class _UnhashableDevice:
    """A device object like CuPy's ``cupy.cuda.Device``: usable, but unhashable."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _UnhashableDevice)


class _NumpyOnUnhashableDevice:
    """NumPy's array-API namespace, taking (and dropping) an unhashable ``device=``."""

    def __init__(self) -> None:
        import array_api_compat.numpy as xnp

        self._xp = xnp

    def __getattr__(self, name: str):
        fn = getattr(self._xp, name)
        if not callable(fn) or isinstance(fn, type):
            return fn

        def call(*args, **kwargs):
            if isinstance(kwargs.get("device"), _UnhashableDevice):
                kwargs["device"] = None
            return fn(*args, **kwargs)

        return call


def test_draws_work_on_a_device_object_that_is_unhashable():
    """CuPy's devices are unhashable: a cache keyed by the device refused every CuPy draw
    ("unhashable type: 'cupy.cuda.device.Device'", seen on an H200), so the check skipped
    every CuPy group.  The words must be the host's."""
    xp, device = _NumpyOnUnhashableDevice(), _UnhashableDevice()
    with pytest.raises(TypeError):
        hash(device)
    for path in ("uint64", "int64", "uint32"):
        got = R._block_words(7, "unhashable", 3, 2, 10, xp, device, path)
        expected = R._block_words(7, "unhashable", 3, 2, 10, np, None, path)
        assert _as_int_list(got[1, :]) == _as_int_list(expected[1, :])
        assert _as_int_list(got[0, :]) == _as_int_list(expected[0, :])
    bits = R.random_bits(7, "unhashable", 3, 10, xp=xp, device=device)
    assert _as_int_list(bits) == _as_int_list(R.random_bits(7, "unhashable", 3, 10, xp=np))


@pytest.mark.parametrize("path", ["uint64", "int64", "uint32"])
@pytest.mark.parametrize(
    ("seed", "counter", "n"),
    [(0, 0, 1), (9, 4, 7), (2**40 + 7, 3, 37), (2**64 - 1, 2**32 - 1, 4096 + 3)],
)
def test_every_path_gives_the_scalar_reference_words(backend, xp, path, seed, counter, n):
    if not _runs_path(xp, backend.device, path):
        pytest.skip(f"{backend.name} has no exact {path} arithmetic")
    words = R._words(seed, "paths", counter, n, xp, backend.device, path=path)
    assert words.dtype == getattr(xp, path) and words.shape == (n,)
    assert _as_int_list(words) == _scalar_blocks(seed, "paths", counter, n)


@pytest.mark.parametrize("path", ["uint64", "int64", "uint32"])
def test_several_counters_at_once_are_the_single_draws(backend, xp, path):
    """_block_words(count=k) row j == the draw at counter + j, across 2**31 too."""
    if not _runs_path(xp, backend.device, path):
        pytest.skip(f"{backend.name} has no exact {path} arithmetic")
    for counter in (5, 2**31 - 2):
        rows = R._block_words(2**64 - 1, "rows", counter, 5, 101, xp, backend.device, path)
        assert rows.shape == (5, 101)
        for j in range(5):
            got = _as_int_list(rows[j, :])
            assert got == _scalar_blocks(2**64 - 1, "rows", counter + j, 101), (counter, j)


def test_the_path_follows_the_device():
    import array_api_strict

    host = xpscratch.backend.host_namespace()
    assert R._path(host, "cpu") == ("randomgen" if R._randomgen_philox() else "uint64")
    assert R._path(array_api_strict, array_api_strict.Device("CPU_DEVICE")) == "uint64"
    assert R._path(array_api_strict, array_api_strict.Device("no_x64")) == "uint32"


def test_torch_takes_the_int64_path():
    torch = pytest.importorskip("torch")
    assert R._path(xpscratch.backend.namespace(torch.ones(1)), torch.device("cpu")) == "int64"


# -- no 64-bit integers: strict's no_x64 device and JAX ----------------------------------


def test_no_x64_draws_are_the_reference_words(no_x64):
    xp, dev = no_x64.xp, no_x64.device
    bits = R.random_bits(2**64 - 1, "test", 3, 37)
    assert bits.dtype == xp.uint32 and bits.device == dev
    assert _as_int_list(bits) == _scalar_blocks(2**64 - 1, "test", 3, 37)
    u = xpscratch.to_numpy(R.uniform(3, "u", 0, (5, 7), "float32"))
    ref = _numpy_reference_bits(3, "u", 0, 35).reshape(5, 7)
    np.testing.assert_array_equal(u, (ref >> 8).astype(np.float32) / np.float32(2**24))
    for ratio in (0.0, 0.2, 0.5, 0.9, 1 - 2**-40):
        mask = xpscratch.to_numpy(R.keep_mask(9, "drop", 4, (100, 50), ratio))
        ref = _numpy_reference_bits(9, "drop", 4, 5000).reshape(100, 50)
        np.testing.assert_array_equal(mask, ref >= round(ratio * 2**32))


def test_no_x64_stream_is_the_numpy_stream(no_x64):
    s, t = R.RandomStream(7, "dropout/1"), R.RandomStream(7, "dropout/1")
    for _ in range(10):
        got = xpscratch.to_numpy(s.keep_mask((128, 100), 0.2))
        with xpscratch.use_backend("numpy"):
            ref = xpscratch.to_numpy(t.keep_mask((128, 100), 0.2))
        np.testing.assert_array_equal(got, ref)
    z = xpscratch.to_numpy(s.normal((30, 20), "float32", scale=0.5))
    with xpscratch.use_backend("numpy"):
        np.testing.assert_array_equal(
            z, xpscratch.to_numpy(t.normal((30, 20), "float32", scale=0.5))
        )


def test_no_x64_permutation(no_x64):
    """array_api_strict 2.6.1's own argsort builds an int64 result that its no_x64 device
    refuses: the uint32 path sorts by radix passes of plain sort calls instead."""
    for n in (1, 2, 1000, 5000):
        p = xpscratch.to_numpy(R.permutation(4, "shuffle", 2, n))
        with xpscratch.use_backend("numpy"):
            np.testing.assert_array_equal(p, xpscratch.to_numpy(R.permutation(4, "shuffle", 2, n)))


def test_the_radix_argsort_is_the_stable_argsort_of_the_63_bit_keys():
    """Ties (equal keys) keep their order, and every digit split (low word, across, high
    word) counts, for several sizes (so several digit widths)."""
    rng = np.random.default_rng(3)
    for n in (2, 7, 300, 70_000):
        high = rng.integers(0, 4, n).astype(np.uint32) << 30  # few values: many ties
        low = rng.integers(0, 2**31, n).astype(np.uint32) & 0x7FFF0003
        keys = (high.astype(np.int64) << 31) | low.astype(np.int64)
        got = R._radix_argsort(np.asarray(high), np.asarray(low), np)
        np.testing.assert_array_equal(got, np.argsort(keys, kind="stable"))


def test_the_uint32_permutation_sorts_the_same_keys():
    """Two stable sorts on 32-bit halves give the order of the 63-bit keys, ties included."""
    host = xpscratch.backend.host_namespace()
    words = R._words(8, "s", 0, 2 * 3000, host, "cpu", path="uint32")
    np.testing.assert_array_equal(R._as_permutation(words, host), R.permutation(8, "s", 0, 3000))
    # ties: equal high halves, and equal keys, keep index order as a stable sort does
    w = np.array([[5, 9], [5, 8], [1, 9], [5, 9], [1, 8], [5, 8]], dtype=np.uint32)
    keys = (w[:, 0].astype(np.int64) << 31) | (w[:, 1].astype(np.int64) >> 1)
    np.testing.assert_array_equal(
        R._as_permutation(w.reshape(-1), host), np.argsort(keys, kind="stable")
    )


def test_jax_without_x64_gives_the_same_draws(jnp):
    assert R._path(jnp, None) == "uint32"
    words = R._words(2**64 - 1, "jax", 2**32 - 1, 4099, jnp, None)
    assert words.dtype == jnp.uint32
    assert _as_int_list(np.asarray(words)) == _scalar_blocks(2**64 - 1, "jax", 2**32 - 1, 4099)
    host = xpscratch.backend.host_namespace()
    p = np.asarray(R.permutation(1, "s", 0, 1000, xp=jnp))
    np.testing.assert_array_equal(p, R.permutation(1, "s", 0, 1000, xp=host))
    u = np.asarray(R.uniform(1, "u", 0, 100, "float32", xp=jnp))
    np.testing.assert_array_equal(u, R.uniform(1, "u", 0, 100, "float32", xp=host))
    s = R.RandomStream(3, "d")
    for c in range(10):
        got = np.asarray(s.keep_mask((16, 10), 0.7, xp=jnp))
        np.testing.assert_array_equal(got, R.keep_mask(3, "d", c, (16, 10), 0.7, xp=host))


# -- randomgen, the optional compiled fast path on NumPy ---------------------------------


def test_randomgen_gives_the_same_words():
    pytest.importorskip("randomgen")
    host = xpscratch.backend.host_namespace()
    for seed, counter, n in [(0, 0, 1), (2**64 - 1, 2**32 - 1, 4099), (2**40 + 7, 3, 37)]:
        fast = R._words(seed, "rg", counter, n, host, "cpu", path="randomgen")
        assert _as_int_list(fast) == _scalar_blocks(seed, "rg", counter, n)
        portable = R._words(seed, "rg", counter, n, host, "cpu", path="uint64")
        np.testing.assert_array_equal(fast, portable)


def test_numpy_draws_with_and_without_randomgen_are_identical(monkeypatch):
    pytest.importorskip("randomgen")
    host = xpscratch.backend.host_namespace()

    def draws():
        s = R.RandomStream(5, "all")
        return [
            s.keep_mask((128, 100), 0.5, xp=host),
            s.uniform((300,), "float32", xp=host),
            s.uniform((301,), "float64", xp=host),
            s.normal((17, 3), "float64", xp=host),
            s.permutation(999, xp=host),
            s.bits(13, xp=host),
        ]

    assert R._path(host, "cpu") == "randomgen"
    fast = draws()
    monkeypatch.setattr(R, "_path", lambda xp, device: "uint64")
    for a, b in zip(fast, draws(), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_without_randomgen_numpy_takes_the_uint64_path(monkeypatch):
    monkeypatch.setattr(R, "_randomgen_philox", lambda: None)
    monkeypatch.setattr(R, "_PATH_CACHE", {})
    host = xpscratch.backend.host_namespace()
    assert R._path(host, "cpu") == "uint64"
    bits = R.random_bits(9, "x", 2, 50, xp=host)
    np.testing.assert_array_equal(bits, _numpy_reference_bits(9, "x", 2, 50))


# -- a stream computes a few draws ahead: the same words, whatever happens in between -----


def test_stream_draws_ahead_without_changing_a_word(backend):
    s = R.RandomStream(11, "dropout/2")
    shapes = [(128, 100)] * 5 + [(7, 3), (128, 100), (128, 100), (64, 100)] + [(128, 100)] * 12
    for c, shape in enumerate(shapes):
        got = xpscratch.to_numpy(s.keep_mask(shape, 0.2))
        ref = _numpy_reference_bits(11, "dropout/2", c, math.prod(shape)).reshape(shape)
        np.testing.assert_array_equal(got, ref >= round(0.2 * 2**32), err_msg=f"draw {c}")
    # rewinding (a resumed checkpoint) and other draw kinds use the same counters
    s.counter = 3
    u = xpscratch.to_numpy(s.uniform((128, 100), "float32"))
    ref = _numpy_reference_bits(11, "dropout/2", 3, 12800).reshape(128, 100)
    np.testing.assert_array_equal(u, (ref >> 8).astype(np.float32) / np.float32(2**24))
    s.load_state_dict({"seed": 12, "purpose": "dropout/2", "counter": 4})
    got = xpscratch.to_numpy(s.bits(12800))
    np.testing.assert_array_equal(
        got.astype(np.int64), _numpy_reference_bits(12, "dropout/2", 4, 12800)
    )


def test_stream_bits_are_the_callers_own(backend, xp):
    s = R.RandomStream(1, "own")
    first = s.bits(100)
    if not hasattr(first, "__setitem__") or "jax" in type(first).__module__:
        pytest.skip("immutable arrays")
    first[...] = 0  # the caller may write into what it got
    s.counter = 0
    again = xpscratch.to_numpy(s.bits(100))
    np.testing.assert_array_equal(again.astype(np.int64), _numpy_reference_bits(1, "own", 0, 100))


def test_stream_stops_drawing_ahead_at_the_last_counter(backend):
    s = R.RandomStream(2, "end", counter=2**32 - 3)
    for c in range(2**32 - 3, 2**32):
        got = xpscratch.to_numpy(s.keep_mask((10, 10), 0.5))
        ref = _numpy_reference_bits(2, "end", c, 100).reshape(10, 10)
        np.testing.assert_array_equal(got, ref >= 2**31)
    with pytest.raises(ValueError, match="counter"):
        s.keep_mask((10, 10), 0.5)
    assert s.counter == 2**32  # a refused draw leaves the counter as it was


@pytest.mark.parametrize(("dtype", "scale", "n"), [("float64", 1.0, 1001), ("float32", 0.5, 64)])
def test_normal_is_the_documented_box_muller_bit_for_bit(backend, float_dtype, dtype, scale, n):
    """sqrt(-2 log(1 - u0)) * (cos, sin)(2 pi u1), times scale, rounded once: in NumPy."""
    if dtype == "float64" and float_dtype != "float64":
        pytest.skip("this device has no float64")
    bits = _numpy_reference_bits(4, "init/W", 2, 4 * ((n + 1) // 2)).reshape(2, -1, 2)
    u = ((bits[..., 0] >> 5) * 2**26 + (bits[..., 1] >> 6)) / 2.0**53
    r = np.sqrt(-2.0 * np.log(1.0 - u[0]))
    theta = 2.0 * np.pi * u[1]
    expected = (np.concatenate([r * np.cos(theta), r * np.sin(theta)])[:n] * scale).astype(dtype)
    z = xpscratch.to_numpy(R.normal(4, "init/W", 2, n, dtype, scale=scale))
    np.testing.assert_array_equal(z, expected)


def test_the_path_follows_jaxs_64_bit_mode():
    """JAX's 64-bit mode can change at run time: a path chosen with it on (uint64 or
    int64) must not be reused with it off, where JAX would silently narrow the words."""
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    xp, device = xpscratch.backend.namespace(jnp.ones(1)), jax.devices("cpu")[0]
    before = jax.config.jax_enable_x64
    try:
        jax.config.update("jax_enable_x64", True)
        wide = R._path(xp, device)
        jax.config.update("jax_enable_x64", False)
        narrow = R._path(xp, device)
        bits = R._words(5, "mode", 0, 9, xp, device)
    finally:
        jax.config.update("jax_enable_x64", before)
    assert wide != "uint32" and narrow == "uint32"
    assert _as_int_list(bits) == _scalar_blocks(5, "mode", 0, 9)


# -- compiled steps: a counter that is an array, draws inside a trace ------------------


@pytest.mark.parametrize("counter", [0, 7, 2**31 + 5, 2**32 - 1])
def test_an_array_counter_draws_the_int_counters_words(backend, xp, counter):
    """A 0-d integer array counter (a compiled step's) gives the same words and masks."""
    dt = xp.uint32 if R._path(xp, backend.device) == "uint32" else xp.int64
    c = xp.asarray(counter, dtype=dt, device=backend.device)
    ref = R.RandomStream(11, "dropout/1", counter).keep_mask((6, 7), 0.3)
    stream = R.RandomStream(11, "dropout/1", c)
    got = stream.keep_mask((6, 7), 0.3)
    assert np.array_equal(xpscratch.to_numpy(got), xpscratch.to_numpy(ref))
    assert stream._ahead is None  # an array counter prefetches nothing


def _jax_or_skip(backend):
    if backend.name != "jax":
        pytest.skip("jax.jit traces only JAX arrays")
    import jax

    return jax


def test_draws_under_jit_match_eager_and_leave_no_tracer_cached(backend, xp):
    """Traced draws: the same words (rounds in a fori_loop); nothing traced is cached."""
    jax = _jax_or_skip(backend)
    R._LANE_CACHE.clear()
    path = R._path(xp, backend.device)

    @jax.jit
    def draw(counter):
        stream = R.RandomStream(2**40 + 3, "dropout/2", counter)
        return stream.keep_mask((5, 9), 0.5), stream.uniform((3,), "float32"), stream.counter

    for c in (0, 1, 2**31 + 1, 2**32 - 3):
        mask, u, after = draw(xp.asarray(c, dtype=xp.uint32))
        ref = R.RandomStream(2**40 + 3, "dropout/2", c)
        assert np.array_equal(np.asarray(mask), np.asarray(ref.keep_mask((5, 9), 0.5)))
        assert np.array_equal(np.asarray(u), np.asarray(ref.uniform((3,), "float32")))
        assert int(after) == c + 2
    tracer = jax.core.Tracer
    for mult, keys in R._LANE_CACHE.values():
        assert not any(isinstance(a, tracer) for a in (*mult, *keys))
    # the published vector through the traced engine (block 0 of counter 0, key 0)
    counter, key, expected = KAT_10[0]
    orig = R._purpose_words
    try:
        R._purpose_words = lambda purpose: (0, 0)
        words = jax.jit(lambda c: R._block_words(0, "kat", c, 1, 4, xp, None, path))(
            xp.asarray(0, dtype=xp.uint32)
        )
    finally:
        R._purpose_words = orig
    assert _as_int_list(words[0, :]) == list(expected)


def test_traced_rounds_run_in_one_loop(backend, xp):
    """Under jit the eight stacked rounds are one fori_loop, not unrolled (XLA's fusion
    of the unrolled rounds cost hundreds of ms a step)."""
    jax = _jax_or_skip(backend)
    jaxpr = jax.make_jaxpr(lambda c: R.RandomStream(1, "p", c).keep_mask((4, 4), 0.5))(
        xp.asarray(3, dtype=xp.uint32)
    )
    text = str(jaxpr)
    assert text.count("while[") + text.count("scan[") == 1  # fori_loop becomes either
