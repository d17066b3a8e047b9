"""The ``xpscratch`` command: list, run, its files and its errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xpscratch
from xpscratch.cli import main
from xpscratch.experiments import EXPERIMENTS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(EXPERIMENTS)
    assert all(len(line.split(maxsplit=1)) == 2 for line in out)  # each with a description


def test_run_writes_a_png_and_a_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "results"
    argv = ["run", "optimizer_compare_naive", "--quick", "--out", str(out), "--no-progress"]
    assert main([*argv, "--dtype", "float64", "--seed", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "optimizer_compare_naive.json",
        "optimizer_compare_naive.png",
    ]  # no temporary files left behind
    assert (out / "optimizer_compare_naive.png").read_bytes()[:8] == PNG_MAGIC
    record = json.loads((out / "optimizer_compare_naive.json").read_text())
    assert record["xpscratch_version"] == xpscratch.__version__
    assert (record["backend"], record["dtype"], record["schema"]) == ("numpy", "float64", 1)
    assert "seed" not in record and "dataset" not in record  # it uses neither
    assert record["quick"] is True
    assert record["settings"]["steps"] == 30
    # the metadata once: "result" holds the measurements only, one elapsed_s in all
    assert set(record["result"]) == {"trajectories", "final_distance", "start_distance"}
    assert record["result"]["final_distance"]["AdaGrad"] < 0.2
    assert len(record["result"]["trajectories"]["SGD"]) == 31
    stdout = capsys.readouterr().out
    assert "AdaGrad" in stdout and record["summary"] in stdout
    assert os.stat(out / "optimizer_compare_naive.json").st_mode & 0o044  # readable by others


def test_several_experiments_end_with_a_summary_table(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(
        EXPERIMENTS,
        "optimizer_zoo",
        dataclasses.replace(EXPERIMENTS["optimizer_zoo"], runner=broken),
    )
    argv = ["run", "optimizer_compare_naive", "optimizer_zoo", "weight_init_activation_histogram"]
    assert main([*argv, "--quick", "--out", str(tmp_path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    table = out[out.index("== summary: 3 experiments, 1 failed") :].splitlines()
    assert [line.split()[0] for line in table[2:5]] == argv[1:]
    naive, zoo, hist = table[2:5]
    assert " 2 " in naive and "distance from (0,0) after 30 steps" in naive
    assert " 0 " in zoo and "FAILED RuntimeError: boom" in zoo
    record = json.loads((tmp_path / "weight_init_activation_histogram.json").read_text())
    assert "dataset" not in record and record["seed"] == 0  # random inputs, no dataset
    assert table[5].startswith("total ") and str(tmp_path) in table[5]


def test_run_help_lists_the_experiments(capsys):
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in EXPERIMENTS)
    for option in ("--seed", "--dataset", "--no-progress"):
        assert option in text
    assert "mini-batch order" in text and "embedded" in text


def test_run_on_another_backend(tmp_path):
    pytest.importorskip("matplotlib")
    argv = ["run", "optimizer_compare_naive", "--out", str(tmp_path), "--no-progress"]
    assert main([*argv, "--backend", "array_api_strict:device1"]) == 0
    record = json.loads((tmp_path / "optimizer_compare_naive.json").read_text())
    assert record["backend"] == "array_api_strict" and "device1" in record["device"]
    assert record["dtype"] == "float32"  # the default


def test_unknown_experiment_exits_2_and_names_the_choices(tmp_path, capsys):
    assert main(["run", "optimizer_compare_naiv", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment" in err and "optimizer_compare_naive" in err
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backend", "mxnet"], "unknown backend 'mxnet'"),
        (["--backend", "numpy:cuda"], "numpy runs on the CPU only"),
        (["--backend", "array_api_strict:no_float64", "--dtype", "float64"], "float64"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_bad_options_exit_2_with_a_message(argv, message, tmp_path, capsys):
    assert main(["run", "all", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_missing_dataset_exits_2_with_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XPSCRATCH_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    code = main(["run", "all", "--dataset", "mnist", "--out", str(tmp_path / "o")])
    if code == 0:  # pragma: no cover - a machine with MNIST where we did not look
        pytest.skip("full MNIST is installed system-wide here")
    assert code == 2
    assert "mnist" in capsys.readouterr().err


def test_argparse_usage_errors_return_2(capsys):
    assert main([]) == 2
    assert main(["run", "all", "--dtype", "float16"]) == 2
    assert "float16" in capsys.readouterr().err


def test_python_dash_m_xpscratch():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "xpscratch", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hyperparameter_optimization" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "xpscratch", "run", "nope"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown experiment" in bad.stderr


def test_the_command_does_not_import_heavy_modules():
    code = (
        "import sys; from xpscratch.cli import main; main(['list']); "
        "print(sorted(m for m in ('torch', 'matplotlib', 'tqdm') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_closed_pipe_ends_quietly():
    """``xpscratch list | head -2``: no BrokenPipeError traceback (issue 13)."""
    cmd = [sys.executable, "-m", "xpscratch", "list"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the reader closes before anything is written, so the write always meets a closed pipe
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 1
    assert "BrokenPipeError" not in err and "Traceback" not in err and "Exception" not in err, err
    shell = subprocess.run(
        f"{' '.join(cmd)} | head -2", shell=True, capture_output=True, text=True, cwd=ROOT,
        env=env, timeout=60,
    )  # fmt: skip
    assert len(shell.stdout.splitlines()) == 2 and shell.stderr == ""


# -- checked before any work; what finished is kept; advice for a CLI user (issue 13) --------


class _Ran:
    """Counts the experiments the command runs (each runs as before)."""

    def __init__(self, monkeypatch):
        import xpscratch.cli as cli

        self.calls = 0
        real = cli._run_one

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(cli, "_run_one", counting)


@pytest.mark.parametrize("command", ["run", "search"])
def test_a_bad_out_is_refused_before_any_work(command, tmp_path, capsys, monkeypatch):
    ran = _Ran(monkeypatch)
    trials = []
    monkeypatch.setattr("xpscratch.cli.search", lambda *a, **k: trials.append(1))
    afile = tmp_path / "afile"
    afile.write_text("mine")
    first = ["run", "optimizer_compare_naive", "--quick"] if command == "run" else ["search"]
    for out in (afile, afile / "sub"):
        assert (
            main(
                [*first, "--out", str(out), "--no-progress"]
                if command == "run"
                else [*first, "--out", str(out)]
            )
            == 2
        )
        assert f"--out {out}" in capsys.readouterr().err
    assert ran.calls == 0 and trials == [] and afile.read_text() == "mine"


def test_run_keeps_what_finished_when_a_later_step_fails(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")

    def broken_plot(result, path):
        raise RuntimeError("the figure broke")

    monkeypatch.setattr("xpscratch.plot.plot_optimizer_compare_naive", broken_plot)
    argv = ["run", "optimizer_compare_naive", "--quick", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the figure broke" in err and "Traceback" not in err
    record = json.loads((tmp_path / "optimizer_compare_naive.json").read_text())
    assert record["result"]["final_distance"]["AdaGrad"] < 0.2  # the numbers were kept


def test_a_search_keeps_its_finished_trials_when_it_fails(tmp_path, capsys, monkeypatch):
    from xpscratch.search import SearchError

    def failing_search(*args, on_trial, **kw):
        for i in range(2):
            on_trial(
                {
                    "number": i,
                    "params": {"lr": 0.1},
                    "value": 0.5,
                    "state": "complete",
                    "epochs": 1,
                    "seconds": 0.1,
                },
                i + 1,
                5,
            )
        raise SearchError("worker 1 died")

    monkeypatch.setattr("xpscratch.cli.search", failing_search)
    assert main(["search", "--trials", "5", "--out", str(tmp_path)]) == 1
    assert "worker 1 died" in capsys.readouterr().err
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["partial"] is True and [t["number"] for t in saved["trials"]] == [0, 1]


def test_without_matplotlib_run_and_search_stop_before_any_work(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else real(n, *a)
    )
    ran = _Ran(monkeypatch)
    argv = ["run", "optimizer_compare_naive", "--quick", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 2
    assert main(["search", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("needs matplotlib") == 2 and "--no-plot" in err
    assert ran.calls == 0 and not any(tmp_path.iterdir())
    assert main([*argv, "--no-plot"]) == 0  # the JSON-only path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optimizer_compare_naive.json"]


def test_advice_is_for_a_command_line_user(tmp_path, capsys, monkeypatch):
    env = {**os.environ, "XPSCRATCH_BACKEND": "nope"}  # read once per process: a new one
    proc = subprocess.run(
        [sys.executable, "-m", "xpscratch", "run", "all", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "XPSCRATCH_BACKEND='nope'" in proc.stderr and "--backend None" not in proc.stderr
    if importlib_util_find("cupy") is None:
        assert main(["run", "all", "--backend", "cupy", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "--backend numpy" in err and "set_backend" not in err
    # the library keeps its own advice
    with pytest.raises(xpscratch.backend.BackendError, match=r"set_backend\('numpy'\)"):
        if importlib_util_find("cupy") is None:
            xpscratch.set_backend("cupy")
        else:  # pragma: no cover
            raise xpscratch.backend.BackendError("set_backend('numpy')")


def importlib_util_find(name):
    import importlib.util

    return importlib.util.find_spec(name)


@pytest.mark.parametrize("command", ["run", "search"])
def test_download_is_an_option_and_the_missing_dataset_message_names_it(
    command, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("XPSCRATCH_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    first = ["run", "all"] if command == "run" else ["search"]
    code = main([*first, "--dataset", "mnist", "--out", str(tmp_path / "o")])
    if code == 0:  # pragma: no cover - a machine with MNIST where we did not look
        pytest.skip("full MNIST is installed system-wide here")
    err = capsys.readouterr().err
    assert code == 2 and "--download" in err and "download=True" not in err
    seen = []

    def fake_load(dataset, download=False, **kw):
        seen.append((dataset, download))
        raise xpscratch.datasets.DatasetError("offline")

    monkeypatch.setattr("xpscratch.cli.load_mnist", fake_load)
    assert main([*first, "--dataset", "mnist", "--download", "--out", str(tmp_path / "o")]) == 2
    assert seen == [("mnist", True)]


def test_an_unexpected_error_is_a_message_not_a_traceback(capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr("xpscratch.cli._run", boom)
    assert main(["run", "all"]) == 1
    err = capsys.readouterr().err
    assert "xpscratch: error: RuntimeError: something unforeseen" in err


def test_an_out_that_cannot_be_created_is_found_before_any_work(capsys, monkeypatch):
    """Issue 22 item 23: root passes os.access on /proc, yet nothing can be made there;
    the folder and a file in it are tried first, so the run's results are not lost."""
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    ran = _Ran(monkeypatch)
    argv = ["run", "optimizer_compare_naive", "--quick", "--no-plot", "--no-progress"]
    assert main([*argv, "--out", "/proc/xpscratch-nope"]) == 2
    err = capsys.readouterr().err
    assert "--out /proc/xpscratch-nope: cannot write there" in err and ran.calls == 0


def test_a_full_disk_prints_the_numbers_names_the_file_and_goes_on(tmp_path, capsys, monkeypatch):
    """Issue 22 item 14: the first experiment's JSON cannot be written (ENOSPC); its numbers
    are printed, the file named, and the next experiment still runs and is saved."""
    import errno

    import xpscratch.cli as cli

    real = cli.atomic_write_bytes

    def full_for_naive(path, data):
        if Path(path).name == "optimizer_compare_naive.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(cli, "atomic_write_bytes", full_for_naive)
    argv = ["run", "optimizer_compare_naive", "weight_init_activation_histogram", "--quick"]
    assert main([*argv, "--no-plot", "--no-progress", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"could not write {tmp_path / 'optimizer_compare_naive.json'}" in captured.err
    assert "No space left on device" in captured.err and "Traceback" not in captured.err
    printed = captured.out[captured.out.index("could not be saved:") :]
    assert '"final_distance"' in printed  # the numbers themselves, as JSON
    assert not (tmp_path / "optimizer_compare_naive.json").exists()
    assert (tmp_path / "weight_init_activation_histogram.json").exists()  # it went on


def test_a_search_goes_on_after_a_failed_trial_write(tmp_path, capsys, monkeypatch):
    """Issue 22 item 14: a trial's search.json cannot be written (ENOSPC): the search goes on."""
    import errno

    from xpscratch.search import SearchError

    def no_space(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    returned = []

    def fake_search(*args, on_trial, **kw):
        for i in range(3):
            trial = {"number": i, "params": {"lr": 0.1}, "value": 0.5, "state": "complete"}
            on_trial({**trial, "epochs": 1, "seconds": 0.1}, i + 1, 3)
            returned.append(i)
        raise SearchError("stop here")

    monkeypatch.setattr("xpscratch.cli.atomic_write_bytes", no_space)
    monkeypatch.setattr("xpscratch.cli.search", fake_search)
    assert main(["search", "--trials", "3", "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert returned == [0, 1, 2] and captured.out.count("val acc 0.500") == 3
    assert f"could not write {tmp_path / 'search.json'}" in captured.err
    assert "Traceback" not in captured.err


def test_a_seed_or_device_that_cannot_work_is_refused_before_any_work(capsys, monkeypatch):
    """Issue 22 item 19: run --seed 2**64 and --backend torch:meta failed per experiment,
    search --seed 2**64 after starting; now all exit 2 before the first experiment/trial."""
    ran = _Ran(monkeypatch)
    trials = []
    monkeypatch.setattr("xpscratch.cli.search", lambda *a, **k: trials.append(1))
    run = ["run", "optimizer_compare_naive", "--quick", "--no-plot", "--no-progress"]
    assert main([*run, "--seed", str(2**64)]) == 2
    assert "--seed must be in [0, 2**64), got 18446744073709551616" in capsys.readouterr().err
    assert main(["search", "--seed", str(2**64), "--no-plot"]) == 2
    assert "--seed must be in [0, 2**64)" in capsys.readouterr().err
    if importlib.util.find_spec("torch") is not None:
        assert main([*run, "--backend", "torch:meta"]) == 2
        assert "meta device holds no data" in capsys.readouterr().err
    assert ran.calls == 0 and trials == []


def test_search_refuses_an_oversized_train_size_before_the_first_trial(capsys, monkeypatch):
    """Issue 22 item 18: --train-size beyond the dataset failed inside the first trial
    (with --workers and a storage, as a worker's raw traceback); now exit 2 up front."""
    trials = []
    monkeypatch.setattr("xpscratch.cli.search", lambda *a, **k: trials.append(1))
    assert main(["search", "--train-size", "100000", "--no-plot", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "--train-size 100000: 'mnist-small' has 5000 training images" in err
    assert trials == []


def test_a_dead_worker_gives_cli_users_no_script_advice(tmp_path, capsys, monkeypatch):
    """Issue 22 item 20: the `if __name__ == "__main__":` advice is for scripts, not CLI users."""
    from xpscratch.search import SearchError
    from xpscratch.search._workers import SPAWN_HINT

    def dying(*args, **kw):
        raise SearchError(f"search worker process 7 died (exit code -9). {SPAWN_HINT}")

    monkeypatch.setattr("xpscratch.cli.search", dying)
    assert main(["search", "--trials", "2", "--no-plot", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "worker process 7 died (exit code -9)" in err and "__main__" not in err


def test_a_ctrl_c_that_jax_returns_as_a_system_error_stops_the_command(
    tmp_path, capsys, monkeypatch
):
    """Issue 22 item 20: `run all` reported such a Ctrl-C as the experiment failing and went
    on with the next one; it stops the command (exit 130), as a Ctrl-C does."""
    ran = []

    def interrupted(**kw):
        ran.append(1)
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("<built-in function> returned a result with an exception set") from ki

    names = ["optimizer_zoo", "optimizer_compare_naive"]
    for name in names:
        monkeypatch.setitem(
            EXPERIMENTS, name, dataclasses.replace(EXPERIMENTS[name], runner=interrupted)
        )
    argv = ["run", *names, "--no-plot", "--quick", "--out", str(tmp_path)]
    assert main(argv) == 130
    assert ran == [1]  # the second experiment never started
    assert "xpscratch: interrupted" in capsys.readouterr().err
