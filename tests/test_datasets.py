"""Tests for xpscratch.datasets (host-side loading, IDX parsing, downloads, split helpers)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xpscratch.datasets as ds
from xpscratch.datasets import (
    DATASETS,
    DatasetError,
    DatasetNotFoundError,
    _download,
    default_data_dir,
    iterate_minibatches,
    load_mnist,
    mnist,
    read_idx,
    shuffle_dataset,
    train_validation_split,
)

EMBEDDED = Path(mnist.__file__).parent / "data" / "mnist-small"
NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# ---------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """Serialize a uint8 array as IDX (independent of the library's reader)."""
    arr = np.asarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | arr.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, *, gz: bool | None = None, magic: int | None = None):
    data = idx_bytes(arr, magic)
    if gz if gz is not None else path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def synthetic(n_train: int = 12, n_test: int = 7, seed: int = 1):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def write_dataset(directory: Path, arrays=None, suffix: str = ".gz", names=NAMES):
    directory.mkdir(parents=True, exist_ok=True)
    arrays = synthetic() if arrays is None else arrays
    for name, arr in zip(names, arrays, strict=True):
        write_idx(directory / (name + suffix), arr)
    return arrays


class FakeNet:
    """Stands in for urllib: serves bytes per URL, raises URLError for anything else."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[str] = []

    def __call__(self, url: str, timeout: float):
        self.requests.append(url)
        if url in self.files:
            return io.BytesIO(self.files[url])
        raise urllib.error.URLError("no network in tests")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Point every lookup location into tmp_path and make the network unreachable."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("XPSCRATCH_DATA_DIR", raising=False)
    monkeypatch.setattr(mnist, "SYSTEM_DATA_DIRS", {"mnist": (), "fashion-mnist": ()})
    monkeypatch.setattr(_download, "_urlopen", FakeNet({}))
    return tmp_path


# ---------------------------------------------------------------- embedded mnist-small


def test_public_api():
    assert DATASETS == ("mnist-small", "mnist", "fashion-mnist")
    assert set(ds.__all__) >= {
        "load_mnist",
        "read_idx",
        "DatasetError",
        "DatasetNotFoundError",
        "shuffle_dataset",
        "train_validation_split",
        "iterate_minibatches",
        "DATASETS",
        "default_data_dir",
    }
    assert issubclass(DatasetError, ValueError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_embedded_shapes_and_dtypes():
    (x, t), (xt, tt) = load_mnist()
    assert x.shape == (5000, 784) and xt.shape == (10000, 784)
    assert x.dtype == np.float32 and xt.dtype == np.float32
    assert t.shape == (5000,) and tt.shape == (10000,)
    assert t.dtype == np.int64 and tt.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert xt.min() == 0.0 and xt.max() == 1.0


def test_embedded_class_balance():
    (_, t), (_, tt) = load_mnist()
    assert np.bincount(t, minlength=10).tolist() == [500] * 10
    # The shuffled order is a plain random permutation: prefixes are only roughly balanced.
    assert np.bincount(t[:300], minlength=10).tolist() == [40, 32, 27, 21, 24, 27, 24, 40, 41, 24]
    # Official MNIST test-set class counts.
    assert np.bincount(tt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_embedded_known_values():
    (_, _), (xt, tt) = load_mnist(normalize=False)
    assert tt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert int(xt[0].sum(dtype=np.int64)) == 18454
    # Independent reader: gzip + struct, no xpscratch code.
    with gzip.open(EMBEDDED / "t10k-images-idx3-ubyte.gz", "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        first = f.read(rows * cols)
    assert (magic, n, rows, cols) == (0x803, 10000, 28, 28)
    assert sum(first) == 18454
    assert xt[0].tobytes() == first
    with gzip.open(EMBEDDED / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        assert struct.unpack(">II", f.read(8)) == (0x801, 10000)
        assert list(f.read(10)) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_normalize_false_is_uint8_and_consistent():
    (x8, t8), (xt8, _) = load_mnist(normalize=False)
    (xf, tf), _ = load_mnist(normalize=True)
    assert x8.dtype == np.uint8 and xt8.dtype == np.uint8
    assert x8.max() == 255 and xt8.max() == 255
    np.testing.assert_array_equal(xf, x8.astype(np.float32) / np.float32(255.0))
    np.testing.assert_array_equal(t8, tf)


def test_flatten_false():
    (x, _), (xt, _) = load_mnist(flatten=False)
    assert x.shape == (5000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28)
    (xf, _), _ = load_mnist(flatten=True)
    np.testing.assert_array_equal(x.reshape(5000, 784), xf)


def test_one_hot():
    (_, t1), (_, tt1) = load_mnist(one_hot_label=True)
    (_, t), (_, tt) = load_mnist()
    for oh, lab in ((t1, t), (tt1, tt)):
        assert oh.shape == (len(lab), 10) and oh.dtype == np.float32
        np.testing.assert_array_equal(oh.sum(axis=1), 1.0)
        assert set(np.unique(oh).tolist()) == {0.0, 1.0}
        np.testing.assert_array_equal(oh.argmax(axis=1), lab)


def test_results_are_independent_copies():
    (x, t), (xt, tt) = load_mnist(normalize=False)
    x[:] = 0
    t[:] = 0
    xt[:] = 0
    (x2, t2), (xt2, _) = load_mnist(normalize=False)
    assert x2.max() == 255 and t2.max() == 9 and xt2.max() == 255


def test_embedded_checksum_is_verified(monkeypatch, tmp_path):
    bad = tmp_path / "embedded"
    shutil.copytree(EMBEDDED, bad)
    # A structurally valid file with different content must still be rejected.
    labels = read_idx(bad / "t10k-labels-idx1-ubyte.gz").copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(bad / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(mnist, "_EMBEDDED_DIR", bad)
    mnist._load_embedded.cache_clear()
    try:
        with pytest.raises(DatasetError, match="SHA-256") as ei:
            load_mnist()
        assert str(bad / "t10k-labels-idx1-ubyte.gz") in str(ei.value)
    finally:
        mnist._load_embedded.cache_clear()


def test_unknown_dataset():
    with pytest.raises(ValueError, match="mnist-small, mnist, fashion-mnist"):
        load_mnist(dataset="cifar10")


# ---------------------------------------------------------------- read_idx


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.gz", "a"):
        out = read_idx(write_idx(tmp_path / name, arr))
        assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
        np.testing.assert_array_equal(out, arr)
    # Non-ubyte IDX types are big-endian on disk and come back in native order.
    ints = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "i.idx").write_bytes(struct.pack(">II", 0x0C01, 3) + ints.tobytes())
    got = read_idx(tmp_path / "i.idx")
    assert got.dtype == np.int32 and got.dtype.isnative and got.tolist() == [1, -2, 70000]


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


GOOD = idx_bytes(np.zeros((5, 28, 28), np.uint8))
GOOD_GZ = gzip.compress(GOOD, mtime=0)


def _crc_broken(data: bytes) -> bytes:
    b = bytearray(data)
    b[-8] ^= 0xFF  # first byte of the CRC32 in the gzip trailer
    return bytes(b)


@pytest.mark.parametrize(
    ("name", "payload", "match"),
    [
        ("wrong-magic", struct.pack(">IIII", 0x12345678, 5, 28, 28) + bytes(3920), "magic"),
        ("unknown-type", struct.pack(">IIII", 0x0000FF03, 5, 28, 28) + bytes(3920), "magic"),
        ("zero-dims", struct.pack(">I", 0x0800), "magic"),
        ("empty", b"", "too short"),
        ("short-header", struct.pack(">III", 0x0803, 5, 28), "truncated header"),
        ("truncated", GOOD[:-2720], "truncated: expected 3920 bytes of pixel data, found 1200"),
        ("trailing", GOOD + b"\x00\x01\x02", "3 unexpected trailing bytes"),
        # the edges (issue 22): the first magic byte 0 but not the second; one byte extra
        ("second-magic-byte", struct.pack(">IIII", 0x00010803, 5, 28, 28) + bytes(3920), "magic"),
        ("first-magic-byte", struct.pack(">IIII", 0x01000803, 5, 28, 28) + bytes(3920), "magic"),
        ("one-trailing-byte", GOOD + b"\x00", "1 unexpected trailing bytes"),
        ("truncated.gz", GOOD_GZ[: len(GOOD_GZ) // 2], "truncated gzip"),
        ("crc.gz", _crc_broken(GOOD_GZ), "corrupt gzip"),
        ("garbage.gz", b"this is not gzip at all", "not a gzip file"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, name, payload, match):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(DatasetError, match=match) as ei:
        read_idx(path)
    assert str(ei.value).startswith(str(path) + ":")


def test_read_idx_refuses_an_impossible_number_of_dimensions(tmp_path):
    path = tmp_path / "ndim255"
    path.write_bytes(struct.pack(">I", 0x08FF) + struct.pack(">255I", *[1] * 255) + b"\x00")
    with pytest.raises(DatasetError, match="header says 255 dimensions .* 1 to 32"):
        read_idx(path)  # was NumPy's "maximum supported dimension for an ndarray"


def test_a_gz_is_inflated_no_further_than_its_header_implies(tmp_path, monkeypatch):
    """A 20 KB .gz whose header claims 10 labels but which inflates to 20 MB (issue 22
    item 15: the whole bomb was inflated before the trailing bytes were noticed)."""
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(10, np.uint8)) + bytes(20 << 20)))
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(gzip, "decompress", None)  # the unbounded path must not be taken
    with pytest.raises(DatasetError, match="inflates beyond the 18 bytes its IDX header"):
        read_idx(path)


def test_a_dataset_with_zero_images_is_an_error(tmp_path):
    xtr, ttr, xte, tte = synthetic()
    write_dataset(tmp_path / "d", (xtr[:0], ttr[:0], xte, tte))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz: holds 0 images"):
        load_mnist(dataset="mnist", data_dir=tmp_path / "d")


def test_read_idx_truncated_labels_message(tmp_path):
    path = write_idx(tmp_path / "l.gz", np.zeros(10, np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-4]))
    with pytest.raises(DatasetError, match="expected 10 bytes of label data, found 6"):
        read_idx(path)


# ---------------------------------------------------------------- full datasets on disk


def test_missing_full_mnist_raises_helpful_error(isolated):
    with pytest.raises(DatasetNotFoundError) as ei:
        load_mnist(dataset="mnist")
    msg = str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)
    assert str(default_data_dir() / "mnist") in msg
    assert str(isolated / "xdg" / "xpscratch" / "mnist") in msg
    assert "download=True" in msg and "XPSCRATCH_DATA_DIR" in msg and "mnist-small" in msg
    for name in NAMES:
        assert name in msg
    # download=False must never touch the network.
    assert _download._urlopen.requests == []


def test_default_data_dir(monkeypatch, tmp_path):
    assert default_data_dir() == tmp_path / "xdg" / "xpscratch"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_data_dir() == Path.home() / ".cache" / "xpscratch"


def test_env_data_dir_loads_synthetic_official_names(monkeypatch, tmp_path):
    arrays = write_dataset(tmp_path / "env" / "mnist")
    monkeypatch.setenv("XPSCRATCH_DATA_DIR", str(tmp_path / "env"))
    (x, t), (xt, tt) = load_mnist(dataset="mnist", normalize=False, flatten=False)
    # Official names but not the official bytes: files on disk are validated structurally only.
    np.testing.assert_array_equal(x[:, 0], arrays[0])
    np.testing.assert_array_equal(t, arrays[1])
    np.testing.assert_array_equal(xt[:, 0], arrays[2])
    np.testing.assert_array_equal(tt, arrays[3])
    assert t.dtype == np.int64


def test_data_dir_takes_precedence_and_plain_names(monkeypatch, tmp_path):
    write_dataset(tmp_path / "env" / "mnist", synthetic(seed=1))
    mine = write_dataset(tmp_path / "mine", synthetic(n_train=3, n_test=2, seed=2), suffix="")
    monkeypatch.setenv("XPSCRATCH_DATA_DIR", str(tmp_path / "env"))
    (x, t), _ = load_mnist(dataset="mnist", data_dir=tmp_path / "mine", normalize=False)
    np.testing.assert_array_equal(x.reshape(-1, 28, 28), mine[0])
    np.testing.assert_array_equal(t, mine[1])
    # An incomplete explicit data_dir is an error naming the missing file (issue 13: it
    # fell through to $XPSCRATCH_DATA_DIR and loaded its 12 images instead)
    (tmp_path / "mine" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError, match="lacks t10k-labels-idx1-ubyte"):
        load_mnist(dataset="mnist", data_dir=tmp_path / "mine")


def test_an_explicit_data_dir_without_the_files_is_an_error(monkeypatch, tmp_path):
    write_dataset(default_data_dir() / "mnist")  # the cache has them: it must not be used
    write_dataset(tmp_path / "env" / "mnist")
    monkeypatch.setenv("XPSCRATCH_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as ei:
        load_mnist(dataset="mnist", data_dir=tmp_path / "typo")
    msg = str(ei.value)
    assert f"data_dir {tmp_path / 'typo'} does not exist" in msg and "download=True" in msg
    (tmp_path / "half").mkdir()
    write_idx(tmp_path / "half" / "train-images-idx3-ubyte.gz", synthetic()[0])
    with pytest.raises(DatasetNotFoundError) as ei:
        load_mnist(dataset="mnist", data_dir=tmp_path / "half")
    missing = "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
    assert f"lacks {missing}" in str(ei.value)
    assert _download._urlopen.requests == []


def test_rewritten_file_is_reloaded(tmp_path):
    write_dataset(tmp_path / "d", synthetic(seed=1))
    (_, t1), _ = load_mnist(dataset="mnist", data_dir=tmp_path / "d")
    arrays = synthetic(n_train=4, seed=3)
    write_dataset(tmp_path / "d", arrays)
    (_, t2), _ = load_mnist(dataset="mnist", data_dir=tmp_path / "d")
    np.testing.assert_array_equal(t2, arrays[1])


@pytest.mark.parametrize(
    ("case", "bad_file", "match"),
    [
        ("label-range", "train-labels-idx1-ubyte.gz", "label out of range: 12 at index 3"),
        ("count", "t10k-images-idx3-ubyte.gz", "6 images, but .* has 7 labels"),
        ("swapped", "train-images-idx3-ubyte.gz", "not an IDX image file"),
        ("labels-3d", "t10k-labels-idx1-ubyte.gz", "not an IDX label file"),
        ("size", "train-images-idx3-ubyte.gz", "images are 28x27"),
    ],
)
def test_dataset_consistency_errors(tmp_path, case, bad_file, match):
    xtr, ttr, xte, tte = synthetic()
    if case == "label-range":
        ttr[3] = 12
    elif case == "count":
        xte = xte[:6]
    elif case == "labels-3d":
        tte = np.zeros((7, 1, 1), np.uint8)
    elif case == "size":
        xtr = xtr[:, :, :27]
    write_dataset(tmp_path / "d", (xtr, ttr, xte, tte))
    if case == "swapped":
        shutil.copy(tmp_path / "d" / "train-labels-idx1-ubyte.gz", tmp_path / "d" / bad_file)
    with pytest.raises(DatasetError, match=match) as ei:
        load_mnist(dataset="mnist", data_dir=tmp_path / "d")
    assert str(tmp_path / "d" / bad_file) in str(ei.value)


def test_corrupt_gzip_in_dataset_dir_names_file(tmp_path):
    write_dataset(tmp_path / "d")
    path = tmp_path / "d" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="truncated gzip") as ei:
        load_mnist(dataset="mnist", data_dir=tmp_path / "d")
    assert str(path) in str(ei.value)


def test_fashion_mnist_from_system_dir(monkeypatch, tmp_path):
    arrays = write_dataset(tmp_path / "usr-share" / "fashion-mnist")
    monkeypatch.setattr(
        mnist, "SYSTEM_DATA_DIRS", {"fashion-mnist": (tmp_path / "usr-share" / "fashion-mnist",)}
    )
    (x, t), (xt, tt) = load_mnist(dataset="fashion-mnist", one_hot_label=True)
    assert x.shape == (12, 784) and xt.shape == (7, 784)
    np.testing.assert_array_equal(t.argmax(axis=1), arrays[1])
    np.testing.assert_array_equal(xt, arrays[2].reshape(7, 784) / np.float32(255))
    # The system dir is searched for fashion-mnist only.
    with pytest.raises(DatasetNotFoundError):
        load_mnist(dataset="mnist")
    monkeypatch.setattr(mnist, "SYSTEM_DATA_DIRS", {})
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_mnist(dataset="fashion-mnist")


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist absent"
)
def test_real_debian_fashion_mnist(monkeypatch):
    monkeypatch.setattr(
        mnist, "SYSTEM_DATA_DIRS", {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}
    )
    (x, t), (xt, tt) = load_mnist(dataset="fashion-mnist")
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert np.bincount(t).tolist() == [6000] * 10 and np.bincount(tt).tolist() == [1000] * 10


# ---------------------------------------------------------------- downloads (no network)


def _embedded_as_remote(monkeypatch, mirrors=("https://down.example/", "https://up.example/")):
    """Serve the embedded files as if they were the full MNIST on the second mirror."""
    blobs = {n + ".gz": (EMBEDDED / (n + ".gz")).read_bytes() for n in NAMES}
    md5 = dict(mnist._REMOTES["mnist"].md5)
    # The embedded t10k files are the official ones; the train subset is not.
    assert (
        hashlib.md5(blobs["t10k-images-idx3-ubyte.gz"]).hexdigest()
        == md5["t10k-images-idx3-ubyte.gz"]
    )
    for n in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        md5[n] = hashlib.md5(blobs[n]).hexdigest()
    monkeypatch.setitem(mnist._REMOTES, "mnist", mnist._Remote(mirrors=mirrors, md5=md5))
    net = FakeNet({mirrors[1] + name: data for name, data in blobs.items()})
    monkeypatch.setattr(_download, "_urlopen", net)
    return blobs, net


def test_download_into_cache(monkeypatch, tmp_path):
    blobs, net = _embedded_as_remote(monkeypatch)
    (x, t), (xt, tt) = load_mnist(dataset="mnist", download=True)
    (xs, ts), (xts, tts) = load_mnist()
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(tt, tts)
    cache = tmp_path / "xdg" / "xpscratch" / "mnist"
    assert sorted(os.listdir(cache)) == sorted(blobs)  # no temp files left
    for name, data in blobs.items():
        assert (cache / name).read_bytes() == data
    assert len(net.requests) == 8  # each file: dead mirror first, then the good one
    # Cached now: no further requests even with download=True.
    load_mnist(dataset="mnist", download=True)
    assert len(net.requests) == 8


def test_download_goes_to_data_dir_and_only_fetches_missing(monkeypatch, tmp_path):
    blobs, net = _embedded_as_remote(monkeypatch)
    target = tmp_path / "target"
    target.mkdir()
    (target / "t10k-labels-idx1-ubyte.gz").write_bytes(blobs["t10k-labels-idx1-ubyte.gz"])
    load_mnist(dataset="mnist", data_dir=target, download=True)
    assert sorted(os.listdir(target)) == sorted(blobs)
    assert not any("t10k-labels" in u for u in net.requests)


def test_download_md5_mismatch_leaves_nothing(monkeypatch, tmp_path):
    blobs, net = _embedded_as_remote(monkeypatch)
    net.files = {u: (d + b"x" if "train-images" in u else d) for u, d in net.files.items()}
    with pytest.raises(DatasetNotFoundError, match="MD5 mismatch") as ei:
        load_mnist(dataset="mnist", download=True)
    assert "train-images-idx3-ubyte.gz" in str(ei.value)
    cache = tmp_path / "xdg" / "xpscratch" / "mnist"
    assert "train-images-idx3-ubyte.gz" not in os.listdir(cache)
    assert not [f for f in os.listdir(cache) if f.endswith(".part") or f.startswith(".")]


def test_a_failed_download_does_not_advise_download_true(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="failed") as ei:
        load_mnist(dataset="mnist", download=True)
    msg = str(ei.value)
    assert "download=True" not in msg  # it was given
    assert "check the network" in msg and "ossci-datasets.s3.amazonaws.com/mnist/" in msg


def test_a_silent_mirror_fails_in_seconds_and_is_named(monkeypatch, tmp_path):
    timeouts = []

    def silent(url, timeout):
        timeouts.append(timeout)
        raise urllib.error.URLError(TimeoutError("timed out"))

    monkeypatch.setattr(_download, "_urlopen", silent)
    with pytest.raises(DatasetNotFoundError) as ei:
        load_mnist(dataset="mnist", download=True)
    assert timeouts and max(timeouts) <= 10  # was 30 s per mirror and file
    for mirror in mnist._REMOTES["mnist"].mirrors:
        assert f"{mirror}train-images-idx3-ubyte.gz: no answer within 10 s" in str(ei.value)


def test_download_without_network_raises_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="failed") as ei:
        load_mnist(dataset="mnist", download=True)
    msg = str(ei.value)
    assert "ossci-datasets.s3.amazonaws.com" in msg and "URLError" in msg
    cache = tmp_path / "xdg" / "xpscratch" / "mnist"
    assert os.listdir(cache) == []


class _Broken(io.BytesIO):
    def read(self, n=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection reset mid-download")
        return super().read(min(n, 100))


def test_interrupted_download_keeps_existing_file(monkeypatch, tmp_path):
    dest = tmp_path / "dl" / "file.gz"
    dest.parent.mkdir()
    dest.write_bytes(b"good old content")
    payload = b"new content " * 1000
    monkeypatch.setattr(_download, "_urlopen", lambda url, timeout: _Broken(payload))
    with pytest.raises(_download.DownloadFailed, match="connection reset"):
        _download.download_file(["https://x/file.gz"], dest, hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == b"good old content"
    assert os.listdir(dest.parent) == ["file.gz"]
    # The same payload served intact replaces the file atomically.
    monkeypatch.setattr(_download, "_urlopen", lambda url, timeout: io.BytesIO(payload))
    _download.download_file(["https://x/file.gz"], dest, hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert os.listdir(dest.parent) == ["file.gz"]


def test_interrupt_during_download_cleans_up(monkeypatch, tmp_path):
    class Interrupted(io.BytesIO):
        def read(self, n=-1):
            raise KeyboardInterrupt

    monkeypatch.setattr(_download, "_urlopen", lambda url, timeout: Interrupted(b""))
    with pytest.raises(KeyboardInterrupt):
        _download.download_file(["https://x/f"], tmp_path / "f", "0" * 32)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- helpers


def test_shuffle_dataset_reproducible_and_paired():
    x = np.arange(50 * 3).reshape(50, 3)
    t = np.arange(50) * 10
    x1, t1 = shuffle_dataset(x, t, seed=7)
    x2, t2 = shuffle_dataset(x, t, seed=7)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(t1, t2)
    perm = np.random.default_rng(7).permutation(50)
    np.testing.assert_array_equal(t1, t[perm])
    np.testing.assert_array_equal(x1[:, 0] // 3 * 10, t1)  # rows stay with their labels
    assert not np.array_equal(t1, t)
    assert not np.array_equal(shuffle_dataset(x, t, seed=8)[1], t1)
    with pytest.raises(ValueError, match="same length"):
        shuffle_dataset(x, t[:-1])


def test_shuffle_4d_images():
    (x, t), _ = load_mnist(flatten=False, normalize=False)
    xs, ts = shuffle_dataset(x[:100], t[:100], seed=0)
    assert xs.shape == (100, 1, 28, 28)
    assert sorted(map(bytes, xs)) == sorted(map(bytes, x[:100]))


def test_train_validation_split():
    x = np.arange(500 * 2).reshape(500, 2)
    t = np.arange(500)
    (xtr, ttr), (xv, tv) = train_validation_split(x, t)
    assert len(xtr) == len(ttr) == 400 and len(xv) == len(tv) == 100
    assert sorted(np.concatenate([ttr, tv]).tolist()) == list(range(500))
    np.testing.assert_array_equal(xtr[:, 0] // 2, ttr)
    np.testing.assert_array_equal(xv[:, 0] // 2, tv)
    # Book semantics: shuffle, then the first validation_num samples are validation.
    xs, ts = shuffle_dataset(x, t, seed=0)
    np.testing.assert_array_equal(tv, ts[:100])
    (_, ttr2), (_, tv2) = train_validation_split(x, t, validation_rate=0.25, shuffle=False)
    assert tv2.tolist() == list(range(125)) and ttr2.tolist() == list(range(125, 500))
    (_, _), (_, tv3) = train_validation_split(x[:7], t[:7], validation_rate=0.2)
    assert len(tv3) == 1  # int(7 * 0.2)
    with pytest.raises(ValueError):
        train_validation_split(x, t, validation_rate=1.5)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 300),
    batch_size=st.integers(1, 64),
    seed=st.integers(0, 2**32 - 1),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
)
def test_iterate_minibatches_covers_epoch(n, batch_size, seed, shuffle, drop_last):
    with pytest.warns(DeprecationWarning, match="batch_indices"):
        batches = list(
            iterate_minibatches(n, batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last)
        )
    flat = np.concatenate(batches) if batches else np.array([], np.int64)
    assert all(b.dtype == np.int64 for b in batches)
    assert len(np.unique(flat)) == len(flat)  # no index twice
    assert all(len(b) == batch_size for b in batches[:-1])
    if drop_last:
        assert len(batches) == n // batch_size
        assert all(len(b) == batch_size for b in batches)
        assert len(flat) == n - n % batch_size
    else:
        assert len(batches) == -(-n // batch_size)
        assert sorted(flat.tolist()) == list(range(n))
    if not shuffle:
        assert flat.tolist() == list(range(len(flat)))


@pytest.mark.filterwarnings("ignore:xpscratch.datasets.iterate_minibatches is deprecated")
def test_iterate_minibatches_seeded_orders():
    a = np.concatenate(list(iterate_minibatches(100, 32, seed=(0, 1))))
    b = np.concatenate(list(iterate_minibatches(100, 32, seed=(0, 1))))
    c = np.concatenate(list(iterate_minibatches(100, 32, seed=(0, 2))))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert [len(x) for x in iterate_minibatches(100, 32)] == [32, 32, 32, 4]
    assert [len(x) for x in iterate_minibatches(100, 32, drop_last=True)] == [32, 32, 32]
    with pytest.raises(ValueError):
        list(iterate_minibatches(10, 0))


class _Body:
    """A response body: endless zeros (``step`` bytes a read), each read ``tick`` s apart."""

    def __init__(self, clock: list[float], step: int, tick: float = 0.0):
        self.clock, self.step, self.tick, self.reads = clock, step, tick, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def read(self, n: int) -> bytes:
        self.reads += 1
        self.clock[0] += self.tick
        return bytes(min(n, self.step))


def test_a_download_has_a_size_cap_and_an_overall_time_limit(monkeypatch, tmp_path):
    """Issue 22 item 16: an endless body wrote 402 MB for a 9.9 MB file, and a mirror
    dripping a byte every 2 s never timed out. Both now fail (per mirror), nothing is kept."""
    clock = [0.0]
    monkeypatch.setattr(_download.time, "monotonic", lambda: clock[0])
    dest = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    endless = _Body(clock, 1 << 16)
    monkeypatch.setattr(_download, "_urlopen", lambda url, timeout: endless)
    with pytest.raises(_download.DownloadFailed, match="more than 33554432 bytes"):
        _download.download_file(["https://endless.example/x"], dest, "0" * 32)
    assert endless.reads <= 513 and not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the partial file is gone
    drip = _Body(clock, 1, tick=2.0)
    monkeypatch.setattr(_download, "_urlopen", lambda url, timeout: drip)
    with pytest.raises(_download.DownloadFailed, match="not done within 600 s"):
        _download.download_file(["https://drip.example/x"], dest, "0" * 32)
    assert drip.reads <= 302 and not dest.exists()


def test_a_small_gz_whose_header_claims_a_huge_array_is_refused_before_filling_memory(tmp_path):
    """The header's cap is no bound when the header itself claims a huge array: a 200 KB
    .gz claiming (and holding) 200 MB of labels was inflated whole (issue 22 item 15)."""
    import tracemalloc
    import zlib

    n = 200 << 20
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    header = struct.pack(">II", 0x0801, n)  # labels, n of them
    body = [z.compress(header)] + [z.compress(bytes(8 << 20)) for _ in range(n >> 23)]
    path = tmp_path / "claims.gz"
    path.write_bytes(b"".join([*body, z.flush()]))
    assert path.stat().st_size < 400_000
    tracemalloc.start()
    try:
        refused = r"claims.gz: its [0-9,]+ compressed bytes inflate beyond [0-9,]+ \(64 times"
        with pytest.raises(DatasetError, match=refused + r".* claims 209,715,208 bytes\)"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 128 << 20, f"{peak:,} bytes allocated before the refusal"
