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
            names = set(npz.files)
            if _META not in names:
                raise CheckpointError("it has no __meta__ entry")
            meta = json.loads(str(npz[_META][()]))
            # read every array now: a zip CRC error must surface here, not mid-load
            arrays = {name: npz[name] for name in names if name != _META}
    except CheckpointError as exc:
        raise CheckpointError(f"{str(path)!r} is not an xpscratch checkpoint: {exc}") from None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: {type(exc).__name__}: {exc}. The file is "
            "truncated or corrupt (was the save interrupted?); use an earlier checkpoint"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an xpscratch checkpoint (no format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format version {version!r}; this xpscratch "
            f"({__version__}) reads versions up to {FORMAT_VERSION}: upgrade xpscratch"
        )
    missing = [key for key in _RUN_KEYS if key not in meta]
    if missing:
        raise CheckpointError(
            f"{str(path)!r} is an xpscratch checkpoint file but holds no training run "
            f"(missing {', '.join(missing)}): save one with Trainer.save_checkpoint"
        )
    try:
        return _decode(meta, arrays)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is inconsistent: {exc}") from None


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
                raise CheckpointError(f"array {key!r} is missing")
            a = arrays[key]
            if list(a.shape) != list(value["shape"]) or str(a.dtype) != value["dtype"]:
                raise CheckpointError(
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
