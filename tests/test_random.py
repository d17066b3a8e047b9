"""Philox4x32-10: the published known answers, and the same bits on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpscratch
from xpscratch import random as R

# Random123's tests/kat_vectors: counter (4 words), key (2 words) -> output (4 words)
KAT_10 = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
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


def test_known_answers_on_every_backend(backend, xp):
    """All three vectors at once, one block per element, in int64 arrays."""
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
    assert host.dtype == np.int64 and host.shape == (37,)
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
