"""Checkpoints: a training run in one ``.npz`` file, written atomically.

Layout (``numpy.savez``, uncompressed, readable with ``allow_pickle=False``):

* ``__meta__``: a 0-d string array holding JSON: ``format`` ("xpscratch-checkpoint"),
  ``format_version``, ``xpscratch_version`` and the state of :meth:`Trainer.state_dict`:
  backend, device, dtype, network class + config + dropout stream positions, optimizer
  class + hyperparameters + step, the trainer's shuffle stream, epoch, iteration within
  the epoch, run settings and history lists.  Each array in it is replaced by
  ``{"__array__": "a3", "shape": [...], "dtype": "float64"}``.
* ``a0``, ``a1``, ...: those arrays, copied to the host with :func:`xpscratch.to_numpy`
  (parameters, BN running statistics, optimizer slots, best weights).

Saving writes a temporary file in the same directory, flushes and fsyncs it, then
``os.replace``s it over the target, so a crash or an error leaves the previous
checkpoint intact.  Loading reads and checks everything (zip CRCs, the array manifest)
before returning host arrays; nothing is applied to a network here.

This module does host-side file I/O, so it uses NumPy directly (as data loading does).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import __version__
from ._atomic import atomic_open
from .backend import to_numpy

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "DivergedRunError",
    "data_fingerprint",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "xpscratch-checkpoint"
FORMAT_VERSION = 1
_META = "__meta__"
_RUN_KEYS = ("network", "optimizer", "trainer", "history")  # what Trainer.state_dict() holds
_JSON_TYPES = (dict, list, tuple, str, int, float, bool, type(None))


class CheckpointError(ValueError):
    """A checkpoint file cannot be read: truncated, corrupt, or not a checkpoint."""


class DivergedRunError(FloatingPointError):
    """A run whose loss or saved arrays hold NaN or inf: not written over a checkpoint."""


def data_fingerprint(x: Any, t: Any) -> str:
    """A hash of a training set (``x`` in its dtype, labels as int64 or as they are), the
    same on every backend: a resumed run must train on the data it was saved with."""
    h = hashlib.blake2b(digest_size=16)
    for a in (x, t):
        host = np.ascontiguousarray(to_numpy(a))
        if host.dtype.kind in "iub":
            host = host.astype(np.int64)  # JAX's 32-bit labels hash as NumPy's int64 ones
        h.update(f"{host.dtype.str}{host.shape}".encode())
        h.update(memoryview(host).cast("B"))
    return h.hexdigest()


def save_checkpoint(
    path: str | PathLike, trainer_or_state: Any, *, allow_diverged: bool = False
) -> Path:
    """Write a Trainer (or a ``state_dict()``) to ``path`` atomically; returns the path.

    The name is used as given (no ``.npz`` is appended).  A diverged run (a NaN or
    infinite training loss, or NaN/inf in the weights or optimizer state) is refused
    with :class:`DivergedRunError`, so it never replaces a good checkpoint; with
    ``allow_diverged=True`` it is saved, for inspection, only where no file is yet.
    Every save passes here: ``Trainer.save_checkpoint``, autosaves, and direct calls.
    """
    state = trainer_or_state
    if not isinstance(state, dict):
        state = trainer_or_state.state_dict()
    arrays: dict[str, Any] = {}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "xpscratch_version": __version__}
    meta.update(_encode(state, arrays))
    diverged = _divergence(state, arrays)
    if diverged is not None:
        if not allow_diverged:
            raise DivergedRunError(
                f"the run diverged ({diverged}): it is not saved to {str(path)!r}, where it "
                "would replace a good checkpoint; pass allow_diverged=True with a new path "
                "to keep it for inspection"
            )
        if Path(path).exists():
            raise FileExistsError(
                f"{str(path)!r} exists: a diverged run is saved only under a new name, "
                "never over a checkpoint"
            )
    arrays[_META] = np.array(json.dumps(meta))
    path = Path(path)
    _atomic_write(path, arrays)
    return path


def _divergence(state: dict[str, Any], arrays: dict[str, np.ndarray]) -> str | None:
    """What makes this state a diverged run (None: nothing)."""
    history = state.get("history")
    losses = history.get("train_loss", []) if isinstance(history, dict) else []
    for i, loss in enumerate(losses):
        if isinstance(loss, int | float) and not math.isfinite(loss):
            return f"training loss {loss} at iteration {i}"
    bad = sum(1 for a in arrays.values() if a.dtype.kind in "fc" and not np.isfinite(a).all())
    if bad:
        return f"{bad} of the saved arrays (weights or optimizer state) hold NaN or inf"
    return None


def load_checkpoint(path: str | PathLike) -> dict[str, Any]:
    """Read a checkpoint: the saved state with NumPy host arrays.

    Raises FileNotFoundError for a missing file and :class:`CheckpointError` (a
    ValueError) naming the file for one that is truncated, corrupt or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError("it holds one NumPy array (a .npy file), not an .npz archive")
        with loaded as npz:
            members = {info.filename: info for info in npz.zip.infolist()}
            _check_inflation(members, path.stat().st_size)
            if _META + ".npy" not in members:
                raise CheckpointError("it has no __meta__ entry")
            meta = _read_meta(npz, members[_META + ".npy"])
            _check_format(meta, path)
            manifest = _manifest(meta)
            _check_sizes(meta, manifest)
            for key, (shape, dtype) in manifest.items():
                _check_header(npz, members.get(key + ".npy"), key, shape, dtype)
            # read every array now: a zip CRC error must surface here, not mid-load
            arrays = {key: npz[key] for key in manifest}
    except _Stated as exc:
        raise CheckpointError(str(exc)) from None
    except CheckpointError as exc:
        raise CheckpointError(f"{str(path)!r} is not an xpscratch checkpoint: {exc}") from None
    except _Inconsistent as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is inconsistent: {exc}") from None
    except _Refused as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is refused: {exc}") from None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {exc}. The file is "
            "truncated or corrupt (was the save interrupted?); use an earlier checkpoint"
        ) from None
    try:
        return _decode(meta, arrays)
    except _Inconsistent as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is inconsistent: {exc}") from None


class _Stated(CheckpointError):
    """A CheckpointError whose message already names the file."""


class _Inconsistent(Exception):
    """The metadata and the arrays disagree."""


def _check_format(meta: Any, path: Path) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Stated(f"{str(path)!r} is not an xpscratch checkpoint (no format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise _Stated(
            f"{str(path)!r} has checkpoint format version {version!r}; this xpscratch "
            f"({__version__}) reads versions up to {FORMAT_VERSION}: upgrade xpscratch"
        )
    missing = [key for key in _RUN_KEYS if key not in meta]
    if missing:
        raise _Stated(
            f"{str(path)!r} is an xpscratch checkpoint file but holds no training run "
            f"(missing {', '.join(missing)}): save one with Trainer.save_checkpoint"
        )


# ---------------------------------------------------------------------------
# Sizes are checked before anything is inflated or allocated: a small file must not
# become gigabytes in memory (issue 22 item 15).

MAX_META_BYTES = 256 << 20  # the JSON metadata, 4 bytes a character: 3 million losses
MAX_META_DEPTH = 32  # nesting of the metadata (a saved run uses about 8 levels)
MAX_INFLATION = 64  # checkpoints are written uncompressed: members inflate at most this much
_SLACK = 1 << 20


class _Refused(Exception):
    """A file whose sizes or nesting do not add up: refused before reading it."""


def _check_inflation(members: dict[str, zipfile.ZipInfo], file_size: int) -> None:
    """The members' declared sizes bound what reading them inflates (zipfile stops there)."""
    inflated = sum(info.file_size for info in members.values())
    if inflated > MAX_INFLATION * file_size + _SLACK:
        raise _Refused(
            f"its entries inflate to {inflated:,} bytes from a {file_size:,}-byte file; a "
            f"checkpoint is written uncompressed and may inflate at most {MAX_INFLATION}-fold "
            "(a damaged or hostile file)"
        )


def _npy_header(npz: Any, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) of one ``.npy`` member, its data not read."""
    with npz.zip.open(info) as f:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0}.get(
            version, np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(f)
        return tuple(shape), dtype, f.tell()


def _declared_size(npz: Any, info: zipfile.ZipInfo, what: str) -> tuple[tuple[int, ...], Any]:
    shape, dtype, header = _npy_header(npz, info)
    claimed = math.prod(shape) * dtype.itemsize
    if dtype.hasobject or header + claimed != info.file_size:
        raise _Refused(
            f"{what} claims {dtype}{list(shape)} ({claimed:,} bytes), but its entry holds "
            f"{info.file_size - header:,} bytes of data (a damaged or hostile file)"
        )
    return shape, dtype


def _read_meta(npz: Any, info: zipfile.ZipInfo) -> Any:
    shape, dtype = _declared_size(npz, info, "the metadata")
    if shape != () or dtype.kind != "U" or info.file_size > MAX_META_BYTES:
        raise _Refused(
            f"its metadata is {dtype}{list(shape)} of {info.file_size:,} bytes; a checkpoint's "
            f"is one JSON string of at most {MAX_META_BYTES:,} bytes"
        )
    text = str(npz[_META][()])
    depth = _json_depth(text)
    if depth > MAX_META_DEPTH:
        raise _Refused(
            f"its metadata is nested {depth} levels deep; a checkpoint's is at most "
            f"{MAX_META_DEPTH} (a damaged or hostile file)"
        )
    return json.loads(text)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth(text: str) -> int:
    """How deeply JSON ``text`` nests (strings skipped), without parsing it."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _manifest(meta: Any) -> dict[str, tuple[list[Any], str]]:
    """Every array the metadata names: key -> (shape, dtype) as the manifest says."""
    found: dict[str, tuple[list[Any], str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "__array__" in value:
                key, shape = value["__array__"], value.get("shape")
                if not (
                    isinstance(key, str)
                    and isinstance(shape, list)
                    and all(isinstance(n, int) and n >= 0 for n in shape)
                ):
                    raise _Inconsistent(f"a malformed array entry in the manifest: {value!r}")
                found[key] = (shape, str(value.get("dtype")))
                return
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(meta)
    return found


def _network_shapes(meta: Any) -> dict[str, list[int]] | None:
    """The weight shapes the saved network's config implies (None: a network without one)."""
    network = meta.get("network") if isinstance(meta, dict) else None
    config = network.get("config") if isinstance(network, dict) else None
    if not isinstance(config, dict):
        return None
    hidden = config.get("hidden_size_list")
    if not isinstance(hidden, list):
        return None
    sizes = [config.get("input_size"), *hidden, config.get("output_size")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
        return None
    return {f"W{i}": [sizes[i - 1], sizes[i]] for i in range(1, len(sizes))}


def _check_sizes(meta: Any, manifest: dict[str, tuple[list[Any], str]]) -> None:
    """Each array is as large as the network implies: its weights have the config's shapes,
    and nothing else (slots, statistics, best weights) is larger than its largest weight."""
    shapes = _network_shapes(meta)
    if shapes is None:
        return
    state = meta["network"].get("state")
    params = state.get("params") if isinstance(state, dict) else None
    for name, shape in shapes.items():
        entry = params.get(name) if isinstance(params, dict) else None
        if isinstance(entry, dict) and entry.get("shape") != shape:
            raise _Refused(
                f"the network's config implies {name} of shape {shape}, the file holds "
                f"{entry.get('shape')}"
            )
    largest = max(math.prod(s) for s in shapes.values())
    for key, (shape, dtype) in manifest.items():
        if math.prod(shape) > largest:
            raise _Refused(
                f"array {key!r} claims {dtype}{shape}, more than the network's largest weight "
                f"({largest:,} numbers) (a damaged or hostile file)"
            )


def _check_header(
    npz: Any, info: zipfile.ZipInfo | None, key: str, shape: list[int], dtype: str
) -> None:
    if info is None:
        raise _Inconsistent(f"array {key!r} is missing")
    held_shape, held_dtype = _declared_size(npz, info, f"array {key!r}")
    if list(held_shape) != shape or str(held_dtype) != dtype:
        raise _Inconsistent(
            f"array {key!r} is {held_dtype}{list(held_shape)}, the manifest says {dtype}{shape}"
        )


# ---------------------------------------------------------------------------


def _encode(value: Any, arrays: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {str(k): _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, _JSON_TYPES):
        return value
    host = to_numpy(value)
    key = f"a{len(arrays)}"
    arrays[key] = host
    return {"__array__": key, "shape": list(host.shape), "dtype": str(host.dtype)}


def _decode(value: Any, arrays: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            key = value["__array__"]
            if key not in arrays:
                raise _Inconsistent(f"array {key!r} is missing")
            a = arrays[key]
            if list(a.shape) != list(value["shape"]) or str(a.dtype) != value["dtype"]:
                raise _Inconsistent(
                    f"array {key!r} is {a.dtype}{list(a.shape)}, "
                    f"the manifest says {value['dtype']}{value['shape']}"
                )
            return a
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def _write(f: BinaryIO, arrays: dict[str, Any]) -> None:
    np.savez(f, **arrays)


def _atomic_write(path: Path, arrays: dict[str, Any]) -> None:
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot save checkpoint {str(path)!r}: no directory {str(path.parent)!r}"
        )
    with atomic_open(path) as f:
        _write(f, arrays)
