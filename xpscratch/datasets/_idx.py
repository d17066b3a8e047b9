"""Strict reader for the IDX file format used by MNIST and Fashion-MNIST.

Format (big-endian): a 4-byte magic ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` 4-byte
dimension sizes, then exactly ``prod(dims)`` items. Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from math import prod
from pathlib import Path

import numpy as np

from ._errors import DatasetError

__all__ = ["read_idx", "parse_idx", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 0x00000803  # ubyte, 3 dims (N, rows, cols)
LABELS_MAGIC = 0x00000801  # ubyte, 1 dim (N,)

# IDX dtype code -> big-endian NumPy dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NDIM = 32  # NumPy 1.x's limit; real IDX files have 1 (labels) to 4 dimensions


def _decompress(data: bytes, path: str) -> bytes:
    if data[:2] != _GZIP_MAGIC:
        if path.endswith(".gz"):
            raise DatasetError(f"{path}: not a gzip file (has a .gz name but no gzip header)")
        return data
    try:
        return gzip.decompress(data)
    except EOFError as e:
        raise DatasetError(f"{path}: truncated gzip stream (incomplete download?): {e}") from e
    except (OSError, zlib.error) as e:
        # BadGzipFile (CRC/length mismatch) is an OSError; a damaged deflate stream is zlib.error.
        raise DatasetError(f"{path}: corrupt gzip data: {e}") from e


def parse_idx(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> tuple[int, np.ndarray]:
    """Parse IDX bytes (optionally gzip-compressed); return ``(magic, array)``.

    The array has native byte order and is read-only. Raises :class:`DatasetError` naming
    ``path`` for any structural problem.
    """
    path = os.fspath(path)
    raw = _decompress(data, path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if magic >> 16 == 0 and code in _IDX_DTYPES and ndim > _MAX_NDIM:
        raise DatasetError(
            f"{path}: header says {ndim} dimensions (magic 0x{magic:08X}); IDX files have 1 "
            f"to {_MAX_NDIM} (images 3, labels 1): the file is damaged or not an IDX file"
        )
    if magic >> 16 != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DatasetError(
            f"{path}: bad magic number 0x{magic:08X} (expected 0x0000TTNN with a known "
            f"type code TT, e.g. 0x{IMAGES_MAGIC:08X} for images, 0x{LABELS_MAGIC:08X} for labels)"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DatasetError(
            f"{path}: truncated header: expected {header_len} bytes for {ndim} dimensions, "
            f"found {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = prod(dims) * dtype.itemsize
    found = len(raw) - header_len
    what = (
        "pixel data" if magic == IMAGES_MAGIC else "label data" if magic == LABELS_MAGIC else "data"
    )
    if found < expected:
        raise DatasetError(
            f"{path}: truncated: expected {expected} bytes of {what}, found {found} "
            f"(dims {'x'.join(map(str, dims))})"
        )
    if found > expected:
        raise DatasetError(
            f"{path}: {found - expected} unexpected trailing bytes after {expected} bytes of "
            f"{what} (dims {'x'.join(map(str, dims))})"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return magic, arr


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (plain or ``.gz``) into a read-only NumPy array with shape ``dims``.

    Raises :class:`FileNotFoundError` if the file is missing and :class:`DatasetError`
    (a ``ValueError``) naming the file if it is malformed: bad magic, truncated or oversized
    payload, corrupt or truncated gzip.
    """
    return parse_idx(Path(path).read_bytes(), path)[1]
