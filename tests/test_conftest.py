"""tests/conftest.py's summary: skips once per backend and reason, failures still listed.

Runs pytest in a subprocess on a throwaway test file next to a copy of the conftest.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TESTS = """
import pytest

@pytest.mark.parametrize("i", range(5))
def test_on_cupy(i):
    pytest.skip("cupy: backend needs 'cupy', which is not installed")  # as the fixture does

@pytest.mark.parametrize("i", range(3))
def test_slow(i):
    pytest.skip("slow: set XPSCRATCH_SLOW_TESTS=1")

@pytest.mark.xfail(reason="a known flaw")
def test_known():
    assert False

def test_fails():
    assert False

@pytest.mark.parametrize("i", range(2))
def test_on_a_backend(backend, i):
    if backend.name == "array_api_strict" and i:
        pytest.skip("skipped for the tally")
"""


def run_pytest(tmp_path: Path, *args: str) -> str:
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(TESTS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XPSCRATCH_TEST_BACKENDS": "numpy,strict-device1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_sample.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout + proc.stderr


XDIST = importlib.util.find_spec("xdist") is not None


@pytest.mark.parametrize(
    "workers",
    [
        [],
        # under pytest-xdist the controller summarises the skips its workers report
        pytest.param(
            ["-n", "2"], marks=pytest.mark.skipif(not XDIST, reason="pytest-xdist missing")
        ),
    ],
    ids=["serial", "xdist"],
)
def test_skips_are_summarised_once_per_backend_and_reason(tmp_path, workers):
    out = run_pytest(tmp_path, "-ra", *workers)
    assert "9 skipped (-rs lists each test)" in out, out
    assert out.count("backend cupy: 5 test(s) skipped: backend needs 'cupy'") == 1, out
    assert "3 test(s) skipped (test_sample.py): slow: set XPSCRATCH_SLOW_TESTS=1" in out, out
    assert "SKIPPED [" not in out, out
    # and one line per backend: what passed and what was skipped there
    assert "backend numpy: 2 passed\n" in out, out
    assert "backend strict-device1: 1 passed, 1 skipped\n" in out, out
    # -ra still lists what needs attention
    assert "FAILED test_sample.py::test_fails" in out, out
    assert "XFAIL test_sample.py::test_known" in out, out


def test_an_explicit_rs_lists_every_skip(tmp_path):
    out = run_pytest(tmp_path, "-rs")
    assert "SKIPPED [5] test_sample.py:6: cupy: backend needs" in out, out
    assert "SKIPPED [3] test_sample.py:10: slow" in out, out


@pytest.mark.parametrize(
    ("extended", "expected"),
    [
        ("", {"numpy", "strict", "torch-cpu", "torch-cuda", "cupy", "jax-gpu"}),
        ("1", {"numpy", "strict", "strict-device1", "strict-device2", "strict-no_float64",
               "strict-no_x64", "torch-cpu", "jax", "jax-x64", "torch-cuda", "cupy", "jax-gpu"}),
    ],
)  # fmt: skip
def test_the_default_run_leaves_the_extended_tier_out(tmp_path, extended, expected):
    """Issue 24 item 4: the README's command runs the core backends; CI adds the rest."""
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_ids.py").write_text("def test_id(backend, request):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "XPSCRATCH_TEST_BACKENDS"}
    env.update(PYTHONPATH=str(ROOT), XPSCRATCH_EXTENDED_TESTS=extended)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    ids = {line.split("[")[1].rstrip("]") for line in proc.stdout.splitlines() if "[" in line}
    assert ids == expected, proc.stdout + proc.stderr
