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
"""

from __future__ import annotations

import math
from typing import Any

from .backend import device_of, index_dtype, namespace
from .random import RandomStream, uniform

__all__ = ["RandomShiftRotate", "random_shift_rotate", "shift_rotate", "shift_rotate_params"]

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
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    xp = namespace(x, shift_x, shift_y, cos, sin)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"images must be floating point, got {x.dtype}")
    n, c, h, w = _image_layout(x, image_shape)
    for name, p in (("shift_x", shift_x), ("shift_y", shift_y), ("cos", cos), ("sin", sin)):
        if tuple(p.shape) != (n,):
            raise ValueError(f"{name} must have shape ({n},), one value per image; got {p.shape}")
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
    sx = cos_ * pu - sin_ * pv + cx  # (N, H*W)
    sy = sin_ * pu + cos_ * pv + cy

    flat = xp.reshape(x, (-1,))
    # the first element of each (image, channel) plane in the flattened batch
    base = xp.reshape(xp.arange(n * c, dtype=idx, device=device) * (h * w), (n, c, 1))

    def sample(px: Any, py: Any, weight: Any) -> Any:
        """weight * x[py, px] per output pixel, 0 where (px, py) is outside the image."""
        inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
        index = xp.astype(py * w + px, idx) * xp.astype(inside, idx)
        index = xp.reshape(base + xp.reshape(index, (n, 1, h * w)), (-1,))
        values = xp.reshape(xp.take(flat, index), (n, c, h * w))
        return values * xp.reshape(weight * xp.astype(inside, dt), (n, 1, h * w))

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
    if not (0.0 <= max_shift and 0.0 <= max_degrees < 180.0):
        raise ValueError(
            f"need max_shift >= 0 and 0 <= max_degrees < 180, got {max_shift!r}, {max_degrees!r}"
        )
    r = uniform(seed, purpose, counter, (3, n), dtype, xp=xp, device=device)
    xp = namespace(r)
    signed = 2.0 * r - 1.0  # in [-1, 1)
    t = signed[2, :] * math.tan(math.radians(max_degrees) / 2.0)
    t2 = t * t
    cos = (1.0 - t2) / (1.0 + t2)
    sin = (2.0 * t) / (1.0 + t2)
    return signed[0, :] * float(max_shift), signed[1, :] * float(max_shift), cos, sin


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
    ``(seed, purpose, counter)``."""
    params = shift_rotate_params(
        seed,
        purpose,
        counter,
        int(x.shape[0]),
        max_shift=max_shift,
        max_degrees=max_degrees,
        dtype=x.dtype,
        xp=namespace(x),
        device=device_of(x),
    )
    return shift_rotate(x, *params, image_shape=image_shape, mode=mode)


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
        self.image_shape, self.mode = image_shape, mode
        self.stream = RandomStream(seed, purpose)

    def __call__(self, x: Any) -> Any:
        s = self.stream
        counter = s.counter
        out = random_shift_rotate(
            x,
            s.seed,
            s.purpose,
            counter,
            max_shift=self.max_shift,
            max_degrees=self.max_degrees,
            image_shape=self.image_shape,
            mode=self.mode,
        )
        s.counter = counter + 1  # only once the batch was augmented
        return out

    def state_dict(self) -> dict[str, Any]:
        """The stream's position (what a checkpoint needs to resume the same batches)."""
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)
