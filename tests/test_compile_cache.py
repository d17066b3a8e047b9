"""JAX's persistent compilation cache: ``backend.enable_compile_cache`` and the command.

Its own file (not test_backend.py, test_cli.py): the cache is process-wide JAX state, so
most tests run in a fresh process, with the cache in ``tmp_path`` and the environment
cleared of the user's own settings (conftest.py turns the cache off for every other test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from xpscratch import backend as _backend
from xpscratch.backend import (
    CompileCacheWarning,
    compile_cache_warnings_once,
    default_compile_cache_dir,
    enable_compile_cache,
)

ROOT = Path(__file__).resolve().parents[1]
JAX_SETTINGS = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "JAX_ENABLE_COMPILATION_CACHE",
)
CACHE_HIT = "/jax/compilation_cache/cache_hits"


def _env(cache_root: Path | None, **extra: str) -> dict[str, str]:
    """This process's environment without the user's (or conftest's) cache settings."""
    env = {k: v for k, v in os.environ.items() if k not in JAX_SETTINGS}
    env.pop("XPSCRATCH_COMPILE_CACHE", None)
    env.pop("XPSCRATCH_CACHE_DIR", None)
    if cache_root is not None:
        env["XPSCRATCH_CACHE_DIR"] = str(cache_root)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def _python(code: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*-cache")) if folder.is_dir() else []


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line.lower()]


# -- the folder, and what enable_compile_cache changes (in this process) ------------------


def test_default_folder_follows_xpscratch_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XPSCRATCH_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_compile_cache_dir() == tmp_path / "mine" / "jax"
    monkeypatch.delenv("XPSCRATCH_CACHE_DIR")
    assert default_compile_cache_dir() == tmp_path / "xdg" / "xpscratch" / "jax"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_compile_cache_dir() == tmp_path / "home" / ".cache" / "xpscratch" / "jax"


@pytest.fixture
def jax_cache_settings(monkeypatch):
    """JAX's cache settings and environment as they were, put back after the test."""
    jax = pytest.importorskip("jax")
    for name in (*JAX_SETTINGS, "XPSCRATCH_COMPILE_CACHE", "XPSCRATCH_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_enable_compilation_cache",
    )
    saved = {n: getattr(jax.config, n) for n in names}
    yield jax
    for name, value in saved.items():
        jax.config.update(name, value)
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()  # forget a cache opened in the test's folder


def test_enable_sets_jax_folder_threshold_and_environment(jax_cache_settings, tmp_path):
    jax = jax_cache_settings
    folder = tmp_path / "a" / "jax"
    assert enable_compile_cache(folder) == str(folder)
    assert jax.config.jax_compilation_cache_dir == str(folder)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == (
        _backend.COMPILE_CACHE_MIN_SECONDS
    )
    # spawned processes (a search's workers) read JAX's settings from the environment
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(folder)
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) == (
        _backend.COMPILE_CACHE_MIN_SECONDS
    )
    assert folder.stat().st_mode & 0o777 == 0o700  # trusted code: only its owner writes


def test_enable_keeps_the_users_own_cache_untouched(jax_cache_settings, tmp_path):
    jax = jax_cache_settings
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "theirs"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 7.0)
    assert enable_compile_cache(tmp_path / "ours") == str(tmp_path / "theirs")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 7.0
    assert not (tmp_path / "ours").exists()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_enable_keeps_the_users_threshold(jax_cache_settings, tmp_path, monkeypatch):
    jax = jax_cache_settings
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2.5")
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.5)  # as JAX read it
    assert enable_compile_cache(tmp_path / "c") == str(tmp_path / "c")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 2.5


@pytest.mark.parametrize("off", ["0", "false", "OFF", "no"])
def test_opting_out_leaves_jax_alone(jax_cache_settings, tmp_path, monkeypatch, off):
    jax = jax_cache_settings
    monkeypatch.setenv("XPSCRATCH_COMPILE_CACHE", off)
    assert enable_compile_cache(tmp_path / "c") is None
    assert jax.config.jax_compilation_cache_dir is None
    assert not (tmp_path / "c").exists()


def test_an_unwritable_folder_is_one_warning_and_no_cache(jax_cache_settings, tmp_path):
    jax = jax_cache_settings
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made inside a file (even by root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert enable_compile_cache(blocker / "jax") is None
    assert [w.category for w in caught] == [CompileCacheWarning]
    text = str(caught[0].message)
    assert str(blocker / "jax") in text and "XPSCRATCH_CACHE_DIR" in text
    assert "XPSCRATCH_COMPILE_CACHE=0" in text
    assert jax.config.jax_compilation_cache_dir is None


def test_cache_warnings_are_said_once_and_others_pass(jax_cache_settings, tmp_path, capsys):
    jax = jax_cache_settings
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "c"))
    with warnings.catch_warnings(record=True) as others, compile_cache_warnings_once():
        warnings.simplefilter("always")
        for name in ("jit_step", "jit_accuracy", "jit_step"):
            warnings.warn(
                f"Error writing persistent compilation cache entry for '{name}': "
                "OSError: [Errno 28] No space left on device",
                stacklevel=1,
            )
        warnings.warn(
            "Error reading persistent compilation cache entry for 'jit_f': bad", stacklevel=1
        )
        warnings.warn("an unrelated warning", RuntimeWarning, stacklevel=1)
    said = capsys.readouterr().err
    ours = [line for line in said.splitlines() if line.startswith("xpscratch: warning:")]
    assert len(ours) == 1
    assert "No space left on device" in ours[0] and "XPSCRATCH_COMPILE_CACHE=0" in ours[0]
    assert str(tmp_path / "c") in ours[0]
    assert not jax.config.jax_enable_compilation_cache  # off after the first error
    assert [(w.category, str(w.message)) for w in others] == [
        (RuntimeWarning, "an unrelated warning")
    ]


# -- in new processes: the command, a second process, and damaged entries ------------------

STEP_SNIPPET = """
import hashlib, json, sys
import jax
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event))
import numpy as np
from xpscratch import backend
from xpscratch.backend import compile_cache_warnings_once, enable_compile_cache, to_numpy
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.optim import Adam
from xpscratch.training import compile_step

with compile_cache_warnings_once():
    folder = enable_compile_cache(sys.argv[1] if len(sys.argv) > 1 else None)
    backend.set_backend("jax")
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.standard_normal((20, 12)).astype(np.float32))
    t = backend.asarray(rng.integers(0, 4, 20))
    net = MultiLayerNetExtend(12, [16, 16], 4, use_batchnorm=True, use_dropout=True,
                              dropout_ratio=0.2, seed=1)
    step = compile_step(net, Adam(lr=0.01))
    losses = [float(to_numpy(step(x, t))) for _ in range(4)]
    digest = hashlib.sha256()
    for key in sorted(net.params):
        digest.update(to_numpy(net.params[key]).tobytes())
hit = hits.count("/jax/compilation_cache/cache_hits")
out = {"folder": folder, "hits": hit, "losses": [v.hex() for v in losses]}
print(json.dumps({**out, "params": digest.hexdigest()}))
"""


def _step_run(env: dict[str, str], *argv: str, before: str = "") -> dict:
    """STEP_SNIPPET in a new process (``before``: code run first); its JSON and stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", before + STEP_SNIPPET, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**json.loads(proc.stdout.splitlines()[-1]), "stderr": proc.stderr}


def test_a_second_process_loads_the_step_and_gets_the_same_bits(tmp_path):
    pytest.importorskip("jax")
    env = _env(tmp_path)
    cold = _step_run(env)
    folder = tmp_path / "jax"
    assert cold["folder"] == str(folder) and cold["hits"] == 0
    written = _entries(folder)
    assert written  # the training step among them (and the small eager programs)
    warm = _step_run(env)
    assert warm["hits"] >= 1  # loaded, not compiled
    assert _entries(folder) == written  # nothing new to compile
    # a loaded program is the compiled one: the same losses and weights, bit for bit
    assert (warm["losses"], warm["params"]) == (cold["losses"], cold["params"])
    assert not _warnings(cold["stderr"] + warm["stderr"])


def test_a_full_disk_and_half_written_entries_are_one_warning(tmp_path):
    """Writes that fail part-way (as on a full disk: the file size limit here) leave
    half-written entries; neither the failed writes nor, in the next process, the damaged
    entries fail the run or change its numbers, and each process says so once."""
    pytest.importorskip("jax")
    env = _env(None)
    folder = tmp_path / "c"
    limit = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: EFBIG, not a kill\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))\n"
    )
    full = _step_run(env, str(folder), before=limit)
    said = _warnings(full["stderr"])
    assert len(said) == 1 and said[0].startswith("xpscratch: warning:"), full["stderr"]
    assert str(folder) in said[0]
    damaged = [p for p in _entries(folder) if p.stat().st_size == 2000]
    assert len(damaged) == 1  # cut off at the limit; then the cache was off: no more tries
    after = _step_run(env, str(folder))  # reads the damaged entries
    assert len(_warnings(after["stderr"])) == 1, after["stderr"]
    assert (after["losses"], after["params"]) == (full["losses"], full["params"])


def _run_cli(
    tmp_path: Path, env: dict[str, str], *options: str, name: str = "optimizer_compare_naive"
) -> subprocess.CompletedProcess:
    """``xpscratch run NAME --quick`` in a new process; its stdout ends with JAX's cache hits.
    The default experiment runs op by op (each operation a small program JAX compiles);
    weight_init_compare compiles a training step."""
    argv = ["run", name, "--quick", "--no-plot", "--no-progress"]
    code = (
        "import sys, jax\n"
        f"hits = []\n"
        "jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event))\n"
        "from xpscratch.cli import main\n"
        f"rc = main({[*argv, '--out', str(tmp_path / 'out'), *options]!r})\n"
        f"print('hits', hits.count({CACHE_HIT!r}))\n"
        "sys.exit(rc)\n"
    )
    return _python(code, env)


def _hits(proc: subprocess.CompletedProcess) -> int:
    return int(proc.stdout.split("hits ")[-1])


def test_the_command_caches_on_jax_and_a_second_run_loads(tmp_path):
    pytest.importorskip("jax")
    env = _env(tmp_path / "root")
    folder = tmp_path / "root" / "jax"
    first = _run_cli(tmp_path, env, "--backend", "jax", name="weight_init_compare")
    assert first.returncode == 0, first.stderr[-3000:]
    assert _hits(first) == 0 and _entries(folder)
    second = _run_cli(tmp_path, env, "--backend", "jax", name="weight_init_compare")
    assert second.returncode == 0, second.stderr[-3000:]
    assert _hits(second) >= len(_entries(folder)) // 2  # most programs loaded, not compiled
    assert not _warnings(first.stderr + second.stderr)


def test_the_command_keeps_the_users_jax_cache(tmp_path):
    pytest.importorskip("jax")
    theirs = tmp_path / "theirs"
    env = _env(
        tmp_path / "root",
        JAX_COMPILATION_CACHE_DIR=str(theirs),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    proc = _run_cli(tmp_path, env, "--backend", "jax")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _entries(theirs)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_command_opts_out(tmp_path, how):
    pytest.importorskip("jax")
    off = {"environment": {"XPSCRATCH_COMPILE_CACHE": "0"}}.get(how, {})
    proc = _run_cli(
        tmp_path,
        _env(tmp_path / "root", **off),
        "--backend",
        "jax",
        *(["--no-compile-cache"] if how == "flag" else []),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "root").exists()


def test_an_unwritable_cache_folder_is_one_warning_and_the_run_succeeds(tmp_path):
    pytest.importorskip("jax")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = _run_cli(tmp_path, _env(blocker), "--backend", "jax")
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = _warnings(proc.stderr)
    assert len(said) == 1 and said[0].startswith("xpscratch: warning:"), proc.stderr
    assert str(blocker / "jax") in said[0]
    assert (tmp_path / "out" / "optimizer_compare_naive.json").exists()


def test_numpy_runs_import_no_jax(tmp_path):
    argv = ["run", "optimizer_compare_naive", "--quick", "--no-plot", "--no-progress"]
    code = (
        "import sys\nfrom xpscratch.cli import main\n"
        f"rc = main({[*argv, '--backend', 'numpy', '--out', str(tmp_path / 'out')]!r})\n"
        "assert 'jax' not in sys.modules, 'jax was imported'\nsys.exit(rc)\n"
    )
    proc = _python(code, _env(tmp_path / "root"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(("name", "cached"), [("jax", True), ("numpy", False)])
def test_check_caches_on_jax_only(tmp_path, name, cached):
    pytest.importorskip("jax")
    argv = ["check", "--backend", name, "--group", "random", "--dtype", "float32", "--quick"]
    code = (
        "import sys\nfrom xpscratch.cli import main\n"
        f"rc = main({argv!r})\n"
        "print('jax imported', 'jax' in sys.modules)\nsys.exit(rc)\n"
    )
    proc = _python(code, _env(tmp_path / "root"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert bool(_entries(tmp_path / "root" / "jax")) == cached
    assert proc.stdout.strip().endswith(f"jax imported {cached}")


@pytest.mark.parametrize("off", [False, True])
def test_the_example_scripts_cache_on_jax_as_the_command_does(tmp_path, off):
    pytest.importorskip("jax")
    pytest.importorskip("matplotlib")
    script = ROOT / "examples" / "optimizer_compare_naive.py"
    argv = ["--backend", "jax", "--quick", "--no-progress", "--out", str(tmp_path / "out")]
    proc = subprocess.run(
        [sys.executable, str(script), *argv, *(["--no-compile-cache"] if off else [])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_env(tmp_path / "root"), "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert bool(_entries(tmp_path / "root" / "jax")) is not off
