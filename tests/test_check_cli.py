"""xpscratch check's command line (xpscratch/check/_cli.py): its exit statuses, nothing
checked is never a pass, and report paths refused before any work."""

from __future__ import annotations

import json
import os

import pytest

from xpscratch import check
from xpscratch.check import _cli
from xpscratch.cli import main

QUICK = ["check", "--quick"]


def test_exit_statuses_are_documented_in_help_and_module(capsys):
    assert main(["check", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for status in ("0 every selected backend", "1 a group failed", "2 bad usage", "3 NOTHING"):
        assert status in text, status
    assert (check.EXIT_PASSED, check.EXIT_FAILED, check.EXIT_USAGE) == (0, 1, 2)
    assert check.EXIT_NOTHING_CHECKED == 3 and "3 NOTHING CHECKED" in check.__doc__


def test_a_passing_selection_exits_0(capsys):
    assert main([*QUICK, "--backend", "numpy", "--group", "random", "--dtype", "float32"]) == 0
    assert "PASSED: 1 groups passed, 0 failed, 0 skipped (exit status 0)" in capsys.readouterr().out


def test_a_dtype_the_backend_lacks_is_nothing_checked_not_a_pass(tmp_path, capsys):
    """strict's no_float64 device in float64 (as JAX without its 64-bit mode): every group
    skipped, which used to print PASSED and exit 0."""
    path = tmp_path / "r.json"
    args = ["--backend", "array_api_strict:no_float64", "--dtype", "float64", "--json", str(path)]
    status = main([*QUICK, *args])
    out = capsys.readouterr().out
    assert status == check.EXIT_NOTHING_CHECKED
    assert "PASSED" not in out
    assert "NOTHING CHECKED: array_api_strict:no_float64: no group ran a case" in out
    assert "NOTHING CHECKED: float64: no selected backend ran a case in float64" in out
    assert "does not support float64" in out  # set_backend's reason, with its fix
    data = json.loads(path.read_text())
    assert data["exit_status"] == 3 and not data["passed"] and len(data["nothing_checked"]) == 2


def test_both_dtypes_need_a_case_each(capsys):
    # float32 ran, float64 ran nowhere: the dtype asked for was not checked
    status = main([*QUICK, "--backend", "array_api_strict:no_float64", "--group", "random"])
    out = capsys.readouterr().out
    assert status == 3 and "NOTHING CHECKED: float64:" in out
    assert "NOTHING CHECKED: array_api_strict:no_float64" not in out  # it ran float32


def test_only_groups_that_cannot_run_here_is_nothing_checked(capsys):
    assert main([*QUICK, "--backend", "numpy", "--group", "gpu", "--dtype", "float32"]) == 3
    assert "CPU backend" in capsys.readouterr().out


def test_backend_all_lists_each_skipped_target_and_why_and_passes(monkeypatch):
    # 'all' over numpy and strict's five devices (JAX's slower start left out)
    monkeypatch.setattr(check, "available_backends", lambda: ["numpy", "array_api_strict"])
    report = check.run("all", dtype="both", quick=True, groups=["random"])
    assert len(report.targets) == 6
    assert report.exit_status == 0, report.format()
    skipped = {(t, d): why for t, d, why in report.skipped}
    assert ("array_api_strict:no_float64", "float64") in skipped
    assert "does not support float64" in skipped["array_api_strict:no_float64", "float64"]
    text = report.format()
    for t, d, _ in report.skipped:
        assert f"SKIP {t} {d}: " in text
    assert report.to_dict()["skipped"] and not report.nothing_checked


def test_a_device_that_cannot_draw_random_numbers_fails_every_group(monkeypatch, capsys):
    """As CuPy did on an H200 (an unhashable Device in a cache): every group used to be
    SKIPPED with the reason and the check said PASSED."""

    def broken(seed, purpose, counter, n):
        raise TypeError("unhashable type: 'Device'")

    monkeypatch.setattr(check, "random_bits", broken)
    t = check.make_target("numpy", None, "float32", quick=True)
    g = check.run_group("layers", t)
    assert g.status == "FAIL" and g.skipped is None
    assert "cannot draw random numbers on numpy (TypeError: unhashable" in g.failures[0].detail
    status = main([*QUICK, "--backend", "numpy", "--group", "random", "--dtype", "float32"])
    out = capsys.readouterr().out
    assert status == 1 and "FAILED: 0 groups passed, 1 failed" in out
    assert "FAIL numpy float32 random: drawing xpscratch's random numbers" in out


# -- report paths are checked before any work ---------------------------------------------------


@pytest.fixture
def no_battery(monkeypatch):
    """The battery must not start: a refused path is found before any work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the battery ran before the path was checked")

    monkeypatch.setattr(_cli, "run", refuse)


def _refused(capsys, path, words):
    status = main([*QUICK, "--backend", "numpy", "--json", str(path)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert f"--json {path}: " in err and words in err and "Traceback" not in err


def test_a_folder_is_refused_before_any_work(no_battery, tmp_path, capsys):
    _refused(capsys, tmp_path, "is a folder")


def test_a_missing_folder_is_refused_before_any_work(no_battery, tmp_path, capsys):
    _refused(capsys, tmp_path / "nope" / "r.json", "does not exist")


def test_a_read_only_file_is_refused_before_any_work(no_battery, tmp_path, monkeypatch, capsys):
    path = tmp_path / "r.json"
    path.write_text("{}")
    path.chmod(0o444)  # root writes it anyway: os.access says what a user would see
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and str(p) != str(path))
    _refused(capsys, path, "read-only")
    assert path.read_text() == "{}"


def test_a_file_system_that_takes_no_files_is_refused_before_any_work(no_battery, capsys):
    # /proc takes no new files, even from root (a read-only file system behaves alike)
    _refused(capsys, "/proc/xpscratch-report.json", "cannot write in /proc")


def test_jax_float64_without_its_64_bit_mode_is_nothing_checked(capsys):
    """The issue's case: it printed 'PASSED: 6 of 6 groups passed or skipped', exit 0."""
    jax = pytest.importorskip("jax")
    if jax.config.jax_enable_x64:
        pytest.skip("JAX's 64-bit mode is on in this process")
    status = main([*QUICK, "--backend", "jax", "--dtype", "float64"])
    out = capsys.readouterr().out
    assert status == 3 and "PASSED" not in out
    assert "NOTHING CHECKED: jax: no group ran a case" in out and "jax_enable_x64" in out
