"""Strict reader for the IDX file format used by MNIST and Fashion-MNIST.

Format (big-endian): a 4-byte magic ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` 4-byte
dimension sizes, then exactly ``prod(dims)`` items. Files may be gzip-compressed.
"""

from __future__ import annotations

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
# MNIST-style files inflate 2-5 fold; a header that claims a huge array in a small .gz
# (deflate reaches ~1000-fold) is refused here, before it fills memory
MAX_INFLATION = 64
_INFLATION_SLACK = 1 << 20
_STEP = 1 << 20  # bytes inflated per call


def _header_cap(head: bytes) -> int | None:
    """Bytes an IDX file with this header holds, or None while the header is incomplete."""
    if len(head) < 4:
        return None
    code, ndim = head[2], head[3]
    if head[:2] != b"\0\0" or code not in _IDX_DTYPES or not 0 < ndim <= _MAX_NDIM:
        return 4  # a bad magic: parse_idx names it from the first four bytes
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        return None
    dims = struct.unpack(f">{ndim}I", head[4:header_len])
    return header_len + prod(dims) * np.dtype(_IDX_DTYPES[code]).itemsize


def _gunzip_capped(data: bytes, path: str) -> bytes:
    """Inflate gzip ``data`` no further than its IDX header implies (plus one byte, so
    parse_idx can report trailing data): a small .gz that claims a little and inflates to
    gigabytes is refused after the claimed size, not after filling memory."""
    out = bytearray()
    cap: int | None = None
    limit = MAX_INFLATION * len(data) + _INFLATION_SLACK
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not d.eof:
            chunk = rest if not d.unconsumed_tail else d.unconsumed_tail
            rest = b""
            if cap is not None and len(out) > cap:
                raise DatasetError(
                    f"{path}: inflates beyond the {cap} bytes its IDX header implies "
                    "(damaged or not an IDX file)"
                )
            if len(out) > limit:
                raise DatasetError(
                    f"{path}: its {len(data):,} compressed bytes inflate beyond {limit:,} "
                    f"({MAX_INFLATION} times their size; its IDX header claims {cap or 0:,} "
                    "bytes): a damaged or hostile file, refused before it fills memory"
                )
            # a step at a time: one byte past the header's claim or the limit is enough
            want = min(_STEP, limit + 1 - len(out), *(() if cap is None else (cap + 1 - len(out),)))
            more = d.decompress(chunk, want)
            if not chunk and not more and not d.eof:
                raise EOFError("compressed stream ended before the end-of-stream marker")
            out += more
            if cap is None:
                cap = _header_cap(bytes(out[: 4 + 4 * _MAX_NDIM]))
        rest = d.unused_data
        if rest[:2] != _GZIP_MAGIC:
            break  # gzip ignores trailing padding after the last member
    return bytes(out)


def _decompress(data: bytes, path: str) -> bytes:
    if data[:2] != _GZIP_MAGIC:
        if path.endswith(".gz"):
            raise DatasetError(f"{path}: not a gzip file (has a .gz name but no gzip header)")
        return data
    try:
        return _gunzip_capped(data, path)
    except EOFError as e:
        raise DatasetError(f"{path}: truncated gzip stream (incomplete download?): {e}") from e
    except (OSError, zlib.error) as e:
        # A CRC/length mismatch or a damaged deflate stream is zlib.error.
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
