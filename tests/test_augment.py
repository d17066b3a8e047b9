"""Random shifts and rotations on the device: hand-checked cases, an independent float64
loop reference, and the same images on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpscratch
import xpscratch.augment as augment_module
from xpscratch.augment import (
    RandomShiftRotate,
    random_shift_rotate,
    shift_rotate,
    shift_rotate_params,
)


def dev(a, dtype):
    return xpscratch.asarray(np.asarray(a, dtype=np.float64), dtype)


def host(a) -> np.ndarray:
    return np.asarray(xpscratch.to_numpy(a), dtype=np.float64)


def params(values, dtype):
    """Per-image (shift_x, shift_y, cos, sin) arrays on the active backend."""
    cols = np.asarray(values, dtype=np.float64).T
    return [dev(c, dtype) for c in cols]


def reference(img: np.ndarray, dx: float, dy: float, cos: float, sin: float, mode: str):
    """One (H, W) image by plain Python loops, written from the definition.

    Output pixel (row i, column j) shows the input at centre + R(p - shift - centre),
    with p = (j, i) and R = [[cos, -sin], [sin, cos]]; bilinear interpolation is the
    sum of the pixels near it weighted by the tent max(0, 1 - |distance|) per axis
    (pixels outside the image count as 0).
    """
    h, w = img.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            a, b = j - dx - cx, i - dy - cy
            sx, sy = cos * a - sin * b + cx, sin * a + cos * b + cy
            if mode == "nearest":
                p, q = round(sx), round(sy)  # Python's round is half to even, as xp.round
                out[i, j] = img[q, p] if 0 <= p < w and 0 <= q < h else 0.0
                continue
            total = 0.0
            for q in range(math.floor(sy) - 1, math.floor(sy) + 3):
                for p in range(math.floor(sx) - 1, math.floor(sx) + 3):
                    if 0 <= p < w and 0 <= q < h:
                        weight = max(0.0, 1 - abs(sx - p)) * max(0.0, 1 - abs(sy - q))
                        total += weight * img[q, p]
            out[i, j] = total
    return out


def test_shift_by_one_pixel_by_hand(backend, float_dtype):
    img = np.arange(1.0, 26.0).reshape(5, 5)
    x = dev(img.reshape(1, 25), float_dtype)
    right = host(shift_rotate(x, *params([[1.0, 0.0, 1.0, 0.0]], float_dtype)))
    expected = np.zeros((5, 5))
    expected[:, 1:] = img[:, :-1]  # content moves one column right, column 0 is empty
    np.testing.assert_array_equal(right.reshape(5, 5), expected)
    up = host(shift_rotate(x, *params([[0.0, -1.0, 1.0, 0.0]], float_dtype), mode="nearest"))
    expected = np.zeros((5, 5))
    expected[:-1, :] = img[1:, :]  # a negative shift_y moves it up
    np.testing.assert_array_equal(up.reshape(5, 5), expected)
    # half a pixel to the right: the mean of the two neighbours (and half the first one)
    half = host(shift_rotate(x, *params([[0.5, 0.0, 1.0, 0.0]], float_dtype))).reshape(5, 5)
    np.testing.assert_array_equal(half[:, 0], img[:, 0] / 2)
    np.testing.assert_array_equal(half[:, 1:], (img[:, :-1] + img[:, 1:]) / 2)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_rotation_by_0_is_the_identity_and_by_90_is_rot90(backend, float_dtype, mode):
    rng = np.random.default_rng(0)
    imgs = rng.uniform(size=(3, 2, 6, 6))  # (N, C, H, W): channels turn together
    x = dev(imgs, float_dtype)
    exact = np.asarray(imgs, dtype=float_dtype).astype(np.float64)
    identity = shift_rotate(x, *params([[0, 0, 1, 0]] * 3, float_dtype), mode=mode)
    assert identity.dtype == x.dtype and tuple(identity.shape) == (3, 2, 6, 6)
    np.testing.assert_array_equal(host(identity), exact)
    quarter = shift_rotate(x, *params([[0, 0, 0, 1]] * 3, float_dtype), mode=mode)
    np.testing.assert_array_equal(host(quarter), np.rot90(exact, k=1, axes=(2, 3)))
    half = shift_rotate(x, *params([[0, 0, -1, 0]] * 3, float_dtype), mode=mode)
    np.testing.assert_array_equal(host(half), np.rot90(exact, k=2, axes=(2, 3)))
    # a 4x4 grid rotated by hand: the top row becomes the left column, read upwards
    grid = dev(np.arange(16.0).reshape(1, 16), float_dtype)
    turned = shift_rotate(grid, *params([[0, 0, 0, 1]], float_dtype), mode=mode)
    assert host(turned).reshape(4, 4)[:, 0].tolist() == [3.0, 2.0, 1.0, 0.0]


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_matches_an_independent_loop_reference(backend, float_dtype, mode):
    rng = np.random.default_rng(1)
    imgs = rng.uniform(size=(4, 7, 9))  # (N, H, W), not square
    angles = np.radians([0.0, 13.0, -31.0, 100.0])
    p = np.stack(
        [[1.3, -0.7, 2.25, -3.9], [0.4, 2.6, -1.15, 0.0], np.cos(angles), np.sin(angles)],
        axis=1,
    )
    p = np.asarray(p, dtype=float_dtype).astype(np.float64)  # the values the device sees
    imgs = np.asarray(imgs, dtype=float_dtype).astype(np.float64)
    out = host(shift_rotate(dev(imgs, float_dtype), *params(p, float_dtype), mode=mode))
    for k in range(4):
        ref = reference(imgs[k], *p[k], mode)
        tol = 1e-12 if float_dtype == "float64" else 1e-5
        np.testing.assert_allclose(out[k], ref, rtol=0, atol=tol, err_msg=f"image {k}")
    assert np.abs(out - imgs).max() > 0.1  # they did move


def test_flat_rows_are_square_images_unless_told(backend, float_dtype):
    rng = np.random.default_rng(2)
    imgs = rng.uniform(size=(2, 4, 6))
    p = params([[0.3, -1.2, 0.8, 0.6], [1.0, 0.5, 0.6, -0.8]], float_dtype)
    as_3d = host(shift_rotate(dev(imgs, float_dtype), *p))
    flat = shift_rotate(dev(imgs.reshape(2, 24), float_dtype), *p, image_shape=(4, 6))
    assert tuple(flat.shape) == (2, 24)
    np.testing.assert_array_equal(host(flat).reshape(2, 4, 6), as_3d)
    with pytest.raises(ValueError, match="image_shape"):
        shift_rotate(dev(imgs.reshape(2, 24), float_dtype), *p)  # 24 is not a square
    with pytest.raises(ValueError, match="has 25 pixels"):
        shift_rotate(dev(imgs.reshape(2, 24), float_dtype), *p, image_shape=(5, 5))


def test_random_parameters_are_in_range_and_spread():
    with xpscratch.use_backend("numpy"):
        dx, dy, cos, sin = (
            host(a)
            for a in shift_rotate_params(
                3, "test", 0, 4000, max_shift=2.0, max_degrees=15.0, dtype="float64"
            )
        )
    angles = np.degrees(np.arctan2(sin, cos))
    np.testing.assert_allclose(cos**2 + sin**2, 1.0, rtol=1e-15)
    for values, limit in ((dx, 2.0), (dy, 2.0), (angles, 15.0)):
        assert np.all(np.abs(values) <= limit + 1e-12)
        assert values.min() < -0.95 * limit and values.max() > 0.95 * limit
        assert abs(values.mean()) < 0.05 * limit  # symmetric
    assert np.corrcoef(dx, dy)[0, 1] ** 2 < 0.01  # independent draws
    # the tan(angle/2) parametrisation is close to uniform in the angle: each quarter
    # of [-15, 15] degrees holds 25% +- 3%
    counts, _ = np.histogram(angles, bins=4, range=(-15, 15))
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)


def test_same_images_on_every_backend(backend, float_dtype):
    rng = np.random.default_rng(4)
    imgs = rng.uniform(size=(5, 784))
    x = dev(imgs, float_dtype)
    out = random_shift_rotate(x, 7, "augment", 3)
    assert out.dtype == x.dtype and tuple(out.shape) == (5, 784)
    assert xpscratch.backend.device_of(out) == backend.device
    with xpscratch.use_backend("numpy"):
        ref = host(random_shift_rotate(dev(imgs, float_dtype), 7, "augment", 3))
    # Philox bits and + - * / floor are exact or correctly rounded everywhere: bit for bit
    np.testing.assert_array_equal(host(out), ref)
    # it is shift_rotate with the drawn parameters, which follow (seed, purpose, counter)
    p = shift_rotate_params(7, "augment", 3, 5, dtype=float_dtype)
    np.testing.assert_array_equal(host(shift_rotate(x, *p)), ref)
    assert not np.array_equal(host(random_shift_rotate(x, 7, "augment", 4)), ref)
    assert not np.array_equal(host(random_shift_rotate(x, 8, "augment", 3)), ref)


def test_stream_advances_one_counter_per_batch(backend, float_dtype):
    x = dev(np.random.default_rng(5).uniform(size=(3, 1, 28, 28)), float_dtype)
    augment = RandomShiftRotate(1.5, 10.0, seed=2, purpose="p", mode="nearest")
    first, second = host(augment(x)), host(augment(x))
    assert augment.stream.state_dict() == {"seed": 2, "purpose": "p", "counter": 2}
    for counter, got in ((0, first), (1, second)):
        want = random_shift_rotate(x, 2, "p", counter, max_shift=1.5, max_degrees=10.0,
                                   mode="nearest")  # fmt: skip
        np.testing.assert_array_equal(got, host(want))
    # nearest sampling only moves pixels: every output value is an input value or 0
    values = set(host(x).ravel().tolist()) | {0.0}
    assert set(first.ravel().tolist()) <= values


def test_bad_arguments_are_clear_errors(backend, float_dtype):
    x = dev(np.zeros((2, 16)), float_dtype)
    p = params([[0, 0, 1, 0]] * 2, float_dtype)
    with pytest.raises(ValueError, match="mode"):
        shift_rotate(x, *p, mode="cubic")
    with pytest.raises(ValueError, match="mode"):
        RandomShiftRotate(mode="bicubic")
    with pytest.raises(ValueError, match=r"shift_x must have shape \(2,\)"):
        shift_rotate(x, *params([[0, 0, 1, 0]] * 3, float_dtype))
    with pytest.raises(ValueError, match="expected images"):
        shift_rotate(dev(np.zeros(16), float_dtype), *p[:1] * 4)
    with pytest.raises(TypeError, match="floating point"):
        shift_rotate(xpscratch.asarray(np.zeros((2, 16), dtype=np.int64)), *p)
    with pytest.raises(ValueError, match="max_degrees"):
        random_shift_rotate(x, 0, "p", 0, max_degrees=200.0)


def test_a_rewound_stream_gives_the_same_batches_again(backend, float_dtype):
    """The counter a stream keeps on the device (JAX) follows the host's: a loaded
    state is obeyed, and a counter past 2**32 - 1 is refused as op by op."""
    x = dev(np.random.default_rng(6).uniform(size=(4, 36)), float_dtype)
    augment = RandomShiftRotate(seed=9, purpose="p")
    augment(x)
    state = augment.state_dict()
    third = [host(augment(x)), host(augment(x))]
    augment.load_state_dict(state)
    np.testing.assert_array_equal(host(augment(x)), third[0])
    np.testing.assert_array_equal(host(augment(x)), third[1])
    np.testing.assert_array_equal(third[0], host(random_shift_rotate(x, 9, "p", 1)))
    augment.stream.counter = 2**32 - 1
    augment(x)
    with pytest.raises(ValueError, match="counter"):
        augment(x)


def _jax_only(backend) -> None:
    if backend.name != "jax":
        pytest.skip("the compiled augmentation is JAX's")


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_jax_runs_one_program_with_numpy_bits(backend, float_dtype, mode):
    """On JAX the augmentation is one compiled program, with NumPy's images bit for bit
    over many counters: XLA's FMAs (a*b+c rounded once) would change a third of the
    pixels, and a last-bit change of a parameter can move a coordinate across a pixel."""
    _jax_only(backend)
    imgs = np.random.default_rng(7).uniform(size=(100, 784))  # a batch of MNIST's shape
    with xpscratch.use_backend("numpy"):
        x_host = dev(imgs, float_dtype)
        want = [
            host(random_shift_rotate(x_host, 5, "augment", c, mode=mode, max_degrees=20.0))
            for c in range(24)
        ]
    x = dev(imgs, float_dtype)
    augment = RandomShiftRotate(2.0, 20.0, seed=5, purpose="augment", mode=mode)
    before = augment_module.trace_count()
    for c in range(24):
        np.testing.assert_array_equal(host(augment(x)), want[c], err_msg=f"counter {c}")
    assert augment_module.trace_count() == before + 1  # compiled, once for all counters
    # the function too, and a parameter draw on its own: the same bits
    np.testing.assert_array_equal(
        host(random_shift_rotate(x, 5, "augment", 23, mode=mode, max_degrees=20.0)), want[23]
    )
    with xpscratch.use_backend("numpy"):
        p_host = shift_rotate_params(5, "augment", 3, 100, max_degrees=20.0, dtype=float_dtype)
    p = shift_rotate_params(5, "augment", 3, 100, max_degrees=20.0, dtype=float_dtype)
    for a, b in zip(p, p_host, strict=True):
        np.testing.assert_array_equal(host(a), host(b))
    # channels, a non-square image, large turns and shifts
    odd = np.random.default_rng(8).uniform(size=(7, 3, 5, 9))
    kw = dict(max_shift=4.0, max_degrees=170.0, mode=mode)
    for c in range(8):
        with xpscratch.use_backend("numpy"):
            want = host(random_shift_rotate(dev(odd, float_dtype), 2, "odd", c, **kw))
        got = host(random_shift_rotate(dev(odd, float_dtype), 2, "odd", c, **kw))
        np.testing.assert_array_equal(got, want, err_msg=f"counter {c}")


def test_jax_traces_once_per_shape_not_per_counter(backend, float_dtype):
    _jax_only(backend)
    rng = np.random.default_rng(8)
    batch, small = (dev(rng.uniform(size=(n, 1, 8, 8)), float_dtype) for n in (10, 3))
    augment = RandomShiftRotate(1.0, 5.0, seed=11, purpose="traces")
    start = augment_module.trace_count()
    for _ in range(4):
        augment(batch)
    assert augment_module.trace_count() == start + 1
    augment(small)  # a new shape: traced once more
    augment(small)
    augment(batch)
    assert augment_module.trace_count() == start + 2
    # another stream object with the same seed, purpose and settings shares the program
    again = RandomShiftRotate(1.0, 5.0, seed=11, purpose="traces")
    np.testing.assert_array_equal(host(again(batch)), host(random_shift_rotate(
        batch, 11, "traces", 0, max_shift=1.0, max_degrees=5.0)))  # fmt: skip
    assert augment_module.trace_count() == start + 2
    rows = RandomShiftRotate(seed=11, purpose="traces", image_shape=[5, 2])  # a list
    assert tuple(rows(dev(rng.uniform(size=(4, 10)), float_dtype)).shape) == (4, 10)


def test_jax_augmentation_copies_nothing_between_host_and_device(backend, float_dtype):
    """Device data in, device data out: no implicit transfer, also on the first call
    (the counter is put on the device explicitly, then carried there)."""
    _jax_only(backend)
    import jax

    x = dev(np.random.default_rng(9).uniform(size=(6, 1, 28, 28)), float_dtype)
    augment = RandomShiftRotate(seed=3, purpose="guarded", mode="nearest")
    xpscratch.backend.namespace(x)  # array_api_compat's first look at JAX makes an array
    with jax.transfer_guard("disallow"):
        outs = [augment(x) for _ in range(3)]
        one = random_shift_rotate(x, 3, "guarded", 1, mode="nearest")
    np.testing.assert_array_equal(host(outs[1]), host(one))
    assert augment.stream.counter == 3
