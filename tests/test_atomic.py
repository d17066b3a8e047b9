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


def test_leftovers_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    target = tmp_path / "run.ckpt"
    leftovers = [tmp_path / f".run.ckpt.{r}.tmp" for r in ("a1b2c3d4", "zz_99xyq")]
    keep = [
        tmp_path / ".run.ckpt.notes.txt",  # not our naming
        tmp_path / ".run.ckpt.backup_old.tmp",  # not mkstemp's 8 characters
        tmp_path / ".other.ckpt.a1b2c3d4.tmp",  # another path's
        tmp_path / ".run.ckpt.a1b2c3d4.part",  # another suffix's
    ]
    for p in leftovers + keep:
        p.write_bytes(b"x" * 100)
    with atomic_open(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [target, *keep])


@pytest.mark.skipif(not hasattr(os, "fork") or os.name == "nt", reason="POSIX flock")
def test_a_save_killed_mid_write_leaves_a_temp_that_the_next_save_removes(tmp_path):
    import signal
    import subprocess
    import sys

    target = tmp_path / "run.ckpt"
    code = (
        "import sys, time\n"
        "from xpscratch._atomic import atomic_open\n"
        "with atomic_open(sys.argv[1]) as f:\n"
        "    f.write(b'half'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                              env=env)  # fmt: skip
    assert writer.stdout.readline() == b"writing\n"
    (live,) = os.listdir(tmp_path)  # a save in progress: another save must leave it alone
    with atomic_open(target) as f:
        f.write(b"one")
    assert live in os.listdir(tmp_path)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert sorted(os.listdir(tmp_path)) == sorted([live, "run.ckpt"])  # the orphan
    with atomic_open(target) as f:
        f.write(b"two")
    assert os.listdir(tmp_path) == ["run.ckpt"] and target.read_bytes() == b"two"


def test_saving_through_a_symlink_writes_the_links_target(tmp_path):
    real = tmp_path / "store" / "result.json"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "latest.json"
    link.symlink_to(os.path.relpath(real, tmp_path))
    with atomic_open(link) as f:
        f.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert os.listdir(tmp_path / "store") == ["result.json"]
    dangling = tmp_path / "next.json"
    dangling.symlink_to(tmp_path / "store" / "created.json")
    with atomic_open(dangling) as f:
        f.write(b"made")
    assert dangling.is_symlink() and (tmp_path / "store" / "created.json").read_bytes() == b"made"
