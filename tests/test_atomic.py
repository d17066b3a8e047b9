"""atomic_open: the old file or the new one, whole, never a part or a stray temp file."""

from __future__ import annotations

import os

import pytest

from xpscratch._atomic import atomic_open


def test_success_replaces_the_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "result.json"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with atomic_open(target) as f:
        f.write(b"new")
        assert target.read_bytes() == b"old"  # nothing visible before the block ends
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    mask = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "new.bin") as f:
            f.write(b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path, error):
    target = tmp_path / "checkpoint.npz"
    target.write_bytes(b"good")
    with pytest.raises(error), atomic_open(target) as f:
        f.write(b"half")
        raise error("interrupted")
    assert target.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_open(tmp_path / "nope" / "f"):
        pass
