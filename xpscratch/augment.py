"""Data augmentation on the device: small random shifts and rotations of images.

Each image is rotated about its centre and then shifted; every output pixel takes the
input at the inverse-transformed position, bilinearly interpolated (or the nearest
pixel), with zeros outside the image.  Only array-API operations are used: the
source pixels are gathered with ``xp.take`` on the flattened batch, so the images
never leave the device.

The same images on every backend: the per-image parameters come from
:mod:`xpscratch.random` (Philox, bit-identical everywhere), and the rotation is
parametrised by ``t = tan(angle / 2)``, with ``cos = (1 - t^2) / (1 + t^2)`` and
``sin = 2t / (1 + t^2)``.  Those are correctly rounded IEEE operations on every
library, whereas ``xp.cos``/``xp.sin`` may differ in the last bit between them (and
a last-bit difference can move a coordinate across a pixel boundary).  ``t`` is drawn
uniformly, so angles are uniform to within 2% at 15 degrees.

On JAX the whole augmentation (the draw and the warp) runs as one compiled program per
stream, settings and batch shape, with the counter passed in as a device array: op by
op it is about a hundred small dispatches per batch.  The program has the eager
images' bits: the products that meet a sum are kept from fusing into FMAs (see the
notes above ``_program``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from .backend import (
    backend_name,
    compile_function,
    device_of,
    index_dtype,
    is_traced,
    namespace,
    put_scalar,
    unfused,
)
from .random import RandomStream, _check, uniform

__all__ = [
    "RandomShiftRotate",
    "random_shift_rotate",
    "shift_rotate",
    "shift_rotate_params",
    "trace_count",
]

MODES = ("bilinear", "nearest")


def _image_layout(x: Any, image_shape: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """(N, C, H, W) of a batch shaped (N, H*W), (N, H, W) or (N, C, H, W)."""
    if x.ndim == 4:
        return tuple(int(s) for s in x.shape)  # type: ignore[return-value]
    if x.ndim == 3:
        return int(x.shape[0]), 1, int(x.shape[1]), int(x.shape[2])
    if x.ndim == 2:
        d = int(x.shape[1])
        if image_shape is None:
            side = math.isqrt(d)
            if side * side != d:
                raise ValueError(
                    f"rows of {d} values are not square images: pass image_shape=(H, W)"
                )
            image_shape = (side, side)
        h, w = (int(s) for s in image_shape)
        if h * w != d:
            raise ValueError(f"image_shape {image_shape} has {h * w} pixels, the rows have {d}")
        return int(x.shape[0]), 1, h, w
    raise ValueError(
        f"expected images shaped (N, H*W), (N, H, W) or (N, C, H, W), got {tuple(x.shape)}"
    )


def _checked_layout(x: Any, image_shape: tuple[int, int] | None, mode: str) -> tuple[int, ...]:
    """(N, C, H, W) of ``x``, once ``mode`` and the dtype are checked."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not namespace(x).isdtype(x.dtype, "real floating"):
        raise TypeError(f"images must be floating point, got {x.dtype}")
    return _image_layout(x, image_shape)


def shift_rotate(
    x: Any,
    shift_x: Any,
    shift_y: Any,
    cos: Any,
    sin: Any,
    *,
    image_shape: tuple[int, int] | None = None,
    mode: str = "bilinear",
) -> Any:
    """Rotate each image by the angle with ``(cos, sin)``, then shift it, on the device.

    ``shift_x``/``shift_y`` move the content right/down by that many pixels (floats
    allowed); ``(cos, sin) = (0, 1)`` turns an image as ``np.rot90`` does
    (anticlockwise on screen).  All four are arrays of shape (N,), one value per image,
    on ``x``'s device.  The result has ``x``'s shape and dtype; channels of an image
    move together.
    """
    namespace(x, shift_x, shift_y, cos, sin)  # one library and device, or a clear error
    n, c, h, w = _checked_layout(x, image_shape, mode)
    for name, p in (("shift_x", shift_x), ("shift_y", shift_y), ("cos", cos), ("sin", sin)):
        if tuple(p.shape) != (n,):
            raise ValueError(f"{name} must have shape ({n},), one value per image; got {p.shape}")
    return _warp(x, shift_x, shift_y, cos, sin, (n, c, h, w), mode, operator.mul)


def _warp(
    x: Any,
    shift_x: Any,
    shift_y: Any,
    cos: Any,
    sin: Any,
    layout: tuple[int, int, int, int],
    mode: str,
    product: Callable[[Any, Any], Any],
) -> Any:
    """:func:`shift_rotate` on checked arguments.  ``product(a, b)`` is ``a * b`` for
    every product that meets a sum (``operator.mul`` eagerly; kept from fusing into an
    FMA in the compiled program, see :func:`_compiled`)."""
    xp = namespace(x)
    n, c, h, w = layout
    dt, device = x.dtype, device_of(x)
    idx = index_dtype(xp, device)  # int64, or int32 where the device has no 64-bit ints
    # coordinates of the output pixels relative to the centre, as rows (1, H*W)
    pixel = xp.arange(h * w, dtype=idx, device=device)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    u = xp.reshape(xp.astype(pixel % w, dt), (1, -1)) - cx
    v = xp.reshape(xp.astype(pixel // w, dt), (1, -1)) - cy

    def col(p: Any) -> Any:
        return xp.reshape(xp.astype(p, dt), (-1, 1))

    # the source of output pixel p is centre + R (p - shift - centre): the inverse map
    pu, pv = u - col(shift_x), v - col(shift_y)
    cos_, sin_ = col(cos), col(sin)
    sx = product(cos_, pu) - product(sin_, pv) + cx  # (N, H*W)
    sy = product(sin_, pu) + product(cos_, pv) + cy

    flat = xp.reshape(x, (-1,))
    # the first element of each (image, channel) plane in the flattened batch
    base = xp.reshape(xp.arange(n * c, dtype=idx, device=device) * (h * w), (n, c, 1))

    def sample(px: Any, py: Any, weight: Any) -> Any:
        """weight * x[py, px] per output pixel, 0 where (px, py) is outside the image."""
        inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
        index = xp.astype(product(py, w) + px, idx) * xp.astype(inside, idx)
        index = xp.reshape(base + xp.reshape(index, (n, 1, h * w)), (-1,))
        values = xp.reshape(xp.take(flat, index), (n, c, h * w))
        return product(values, xp.reshape(weight * xp.astype(inside, dt), (n, 1, h * w)))

    if mode == "nearest":
        out = sample(xp.round(sx), xp.round(sy), xp.ones_like(sx))
    else:
        x0, y0 = xp.floor(sx), xp.floor(sy)
        fx, fy = sx - x0, sy - y0
        gx, gy = 1.0 - fx, 1.0 - fy
        out = sample(x0, y0, gx * gy)
        out += sample(x0 + 1.0, y0, fx * gy)
        out += sample(x0, y0 + 1.0, gx * fy)
        out += sample(x0 + 1.0, y0 + 1.0, fx * fy)
    return xp.reshape(out, tuple(x.shape))


def shift_rotate_params(
    seed: int,
    purpose: str,
    counter: int,
    n: int,
    *,
    max_shift: float = 2.0,
    max_degrees: float = 15.0,
    dtype: Any = None,
    xp: Any = None,
    device: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """Random ``(shift_x, shift_y, cos, sin)`` for ``n`` images: a pure function of
    ``(seed, purpose, counter)``, identical on every backend.

    Shifts are uniform in [-max_shift, max_shift] pixels; ``tan(angle / 2)`` is uniform
    in +-tan(max_degrees / 2), so angles lie in [-max_degrees, max_degrees].
    """
    _check_limits(max_shift, max_degrees)
    r = uniform(seed, purpose, counter, (3, n), dtype, xp=xp, device=device)
    return _draw_params(r, max_shift, max_degrees, operator.mul)


def _check_limits(max_shift: float, max_degrees: float) -> None:
    if not (0.0 <= max_shift and 0.0 <= max_degrees < 180.0):
        raise ValueError(
            f"need max_shift >= 0 and 0 <= max_degrees < 180, got {max_shift!r}, {max_degrees!r}"
        )


def _draw_params(
    r: Any, max_shift: float, max_degrees: float, product: Callable[[Any, Any], Any]
) -> tuple[Any, Any, Any, Any]:
    """``(shift_x, shift_y, cos, sin)`` from the uniform draws ``r`` (3, N); ``product``
    as in :func:`_warp`."""
    signed = product(2.0, r) - 1.0  # in [-1, 1)
    t = signed[2, :] * math.tan(math.radians(max_degrees) / 2.0)
    t2 = product(t, t)
    cos = (1.0 - t2) / (1.0 + t2)
    sin = (2.0 * t) / (1.0 + t2)
    shift = float(max_shift)
    return product(signed[0, :], shift), product(signed[1, :], shift), cos, sin


def random_shift_rotate(
    x: Any,
    seed: int,
    purpose: str,
    counter: int,
    *,
    max_shift: float = 2.0,
    max_degrees: float = 15.0,
    image_shape: tuple[int, int] | None = None,
    mode: str = "bilinear",
) -> Any:
    """Each image of ``x`` rotated by up to ``max_degrees`` and shifted by up to
    ``max_shift`` pixels, at random: the same result on every backend for the same
    ``(seed, purpose, counter)``.

    On JAX it runs as one compiled program per stream, settings and batch shape (see
    :func:`trace_count`), with the same bits as op by op.
    """
    shape = None if image_shape is None else tuple(image_shape)
    settings = (float(max_shift), float(max_degrees), shape, mode)
    return _augment(x, seed, purpose, counter, None, settings)[0]


def _augment(
    x: Any, seed: int, purpose: str, counter: int, held: Any, settings: tuple
) -> tuple[Any, Any]:
    """``(images, counter + 1 on the device or None)``; ``held``: ``counter`` as a 0-d
    uint32 array on ``x``'s device already (or None)."""
    max_shift, max_degrees, image_shape, mode = settings
    _check_limits(max_shift, max_degrees)
    _checked_layout(x, image_shape, mode)
    xp = namespace(x)
    if backend_name(xp) != "jax" or is_traced(x):
        params = shift_rotate_params(
            seed,
            purpose,
            counter,
            int(x.shape[0]),
            max_shift=max_shift,
            max_degrees=max_degrees,
            dtype=x.dtype,
            xp=xp,
            device=device_of(x),
        )
        return shift_rotate(x, *params, image_shape=image_shape, mode=mode), None
    _check(seed, counter)
    if held is None:
        held = put_scalar(counter, "uint32", x)
    device = str(device_of(x))
    zero = _ZEROS.get(device)
    if zero is None:
        zero = _ZEROS[device] = put_scalar(0, "int32", x)
    return _program(seed, purpose, settings, x)(x, held, zero)


# ---------------------------------------------------------------------------
# JAX: the whole augmentation as one compiled program
# ---------------------------------------------------------------------------
# Op by op, JAX dispatches about a hundred small operations per batch (10-13 ms for 100
# MNIST images against NumPy's 1-1.5 ms), and its first batch compiles each of them
# (2.5-4 s); compiled, it is one program (0.2-0.3 ms).  XLA would fuse each
# ``a * b + c`` into an FMA there (one rounding, not two: other bits than NumPy's, in a
# third of the pixels), so every product that meets a sum goes through
# ``backend.unfused``, which keeps it rounded on its own.  The rest is exact or
# correctly rounded either way: Philox words, the power-of-two scalings of ``uniform``,
# ``+ - /``, ``floor``, ``round``, ``take``.

_PROGRAMS: dict[tuple, Any] = {}  # (stream, settings, device) -> its jitted function
_PROGRAMS_SIZE = 64
_ZEROS: dict[str, Any] = {}  # device -> a 0-d int32 zero there, for ``unfused``
_TRACES = [0]


def trace_count() -> int:
    """How many times augmentation programs were traced (compiled) in this process: on
    JAX one per stream, settings and batch shape or dtype, none per counter."""
    return _TRACES[0]


def _program(seed: int, purpose: str, settings: tuple, x: Any) -> Any:
    """The jitted ``(x, counter, zero) -> (images, counter + 1)`` for one stream and
    settings on ``x``'s device (``jax.jit`` traces it again for a new shape or dtype)."""
    device = device_of(x)
    key = (seed, purpose, settings, str(device))
    found = _PROGRAMS.get(key)
    if found is not None:
        return found
    max_shift, max_degrees, image_shape, mode = settings

    def augment(x: Any, counter: Any, zero: Any) -> tuple[Any, Any]:
        _TRACES[0] += 1  # runs only while jax.jit traces

        def product(a: Any, b: Any) -> Any:
            return unfused(a * b, zero)

        layout = _image_layout(x, image_shape)
        r = uniform(seed, purpose, counter, (3, layout[0]), x.dtype, xp=namespace(x), device=device)
        params = _draw_params(r, max_shift, max_degrees, product)
        return _warp(x, *params, layout, mode, product), counter + 1

    if len(_PROGRAMS) >= _PROGRAMS_SIZE:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))  # the oldest
    found = _PROGRAMS[key] = compile_function(augment, namespace(x))
    return found


class RandomShiftRotate:
    """A stream of random shifts and rotations: each call augments one batch.

    ``augment = RandomShiftRotate(2.0, 15.0, seed=0, purpose="augment")`` then
    ``x_batch = augment(x_batch)`` in the training loop; call ``k`` uses counter ``k``
    of ``RandomStream(seed, purpose)``, so a run is the same on every backend and its
    position is the stream's ``state_dict()``.
    """

    def __init__(
        self,
        max_shift: float = 2.0,
        max_degrees: float = 15.0,
        *,
        seed: int = 0,
        purpose: str = "augment",
        image_shape: tuple[int, int] | None = None,
        mode: str = "bilinear",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.max_shift, self.max_degrees = float(max_shift), float(max_degrees)
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self.mode = mode
        self.stream = RandomStream(seed, purpose)
        self._held: tuple[tuple[int, str], Any] | None = None  # ((counter, device), array)

    def __call__(self, x: Any) -> Any:
        s = self.stream
        counter = s.counter
        settings = (self.max_shift, self.max_degrees, self.image_shape, self.mode)
        # on JAX the counter stays on the device from call to call (no copy per batch),
        # made again from the host's if that changed (a checkpoint loaded)
        place = (counter, str(device_of(x)))
        held = self._held[1] if self._held is not None and self._held[0] == place else None
        out, following = _augment(x, s.seed, s.purpose, counter, held, settings)
        s.counter = counter + 1  # only once the batch was augmented
        self._held = None if following is None else ((counter + 1, place[1]), following)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The stream's position (what a checkpoint needs to resume the same batches)."""
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)
