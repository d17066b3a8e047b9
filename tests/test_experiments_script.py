"""xpscratch.experiments._script: the example scripts' shared command line, run and files."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

from xpscratch.experiments import EXPERIMENTS
from xpscratch.experiments._script import example_parser, run_example

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"backend": "numpy", "seed": 0, "dtype": None, "dataset": "mnist-small", "out": "out"}


def _example(name: str):
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_example_reads_its_settings_and_offers_each_as_an_option(name, capsys):
    module = _example(name)
    assert module.SETTINGS == EXPERIMENTS[name].full  # the book's, not a copy of them
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(module.SETTINGS):
        assert f"--{f.name.replace('_', '-')}" in text, f.name
    # only the options the experiment uses
    options = EXPERIMENTS[name].options
    assert ("--seed" in text, "--dataset" in text) == ("seed" in options, "dataset" in options)


def test_command_line_values_are_parsed_by_the_field_types():
    s = EXPERIMENTS["overfit_weight_decay"].full
    args = example_parser(s, "x", DEFAULTS).parse_args(
        ["--epochs", "3", "--hidden-size-list", "50,20", "--test-size", "none", "--lr", "0.5"]
    )
    changes = {k: v for k, v in vars(args).items() if k in s}
    assert s.replace(**changes) == s.replace(
        epochs=3, hidden_size_list=(50, 20), test_size=None, lr=0.5
    )
    zoo = EXPERIMENTS["optimizer_zoo"].full
    args = example_parser(zoo, "x", DEFAULTS).parse_args(["--steps", '{"bowl": 5}'])
    assert args.steps == {"bowl": 5}
    assert not hasattr(example_parser(zoo, "x", DEFAULTS).parse_args([]), "steps")


def test_run_example_writes_the_figure_and_the_record_to_out(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    exp = EXPERIMENTS["optimizer_compare_naive"]
    out = tmp_path / "out"
    result = run_example(exp.full, "doc", ["--steps", "5", "--out", str(out), "--dtype", "float64"])
    assert sorted(p.name for p in out.iterdir()) == [f"{exp.name}.json", f"{exp.name}.png"]
    record = json.loads((out / f"{exp.name}.json").read_text())
    assert record["schema"] == 1 and record["settings"]["steps"] == 5 == result.settings.steps
    assert len(record["result"]["trajectories"]["SGD"]) == 6 and record["dtype"] == "float64"
    # the same numbers as the library call
    again = exp.run(steps=5, dtype="float64")
    assert record["result"]["final_distance"] == again.final_distance
    assert result.summary() in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "nosuch"], "--backend nosuch: unknown backend 'nosuch'"),
        (["--dataset", "mnsit"], "--dataset: unknown dataset 'mnsit'; valid names: mnist-small"),
        (["--epochs", "0"], "argument --epochs: 0: must be at least 1"),
        (["--hidden-size-list", "100,0"], "argument --hidden-size-list: 100,0: must be at least 1"),
        (["--hidden-size-list", "100,x"], "'100,x' is not a valid value: comma-separated numbers"),
        (["--lr", "fast"], "argument --lr: 'fast' is not a valid value"),
    ],
)
def test_bad_options_are_a_message_and_exit_2_before_any_work(argv, message, tmp_path, capsys):
    """Issue 24 item 5: tracebacks (backend, dataset), an IndexError after training nothing
    (--epochs 0), and "invalid <lambda> value"."""
    module = _example("overfit_dropout")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        module.main([*argv, "--out", str(out), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "lambda" not in err and "Traceback" not in err
    assert not out.exists()  # nothing written: refused before any work


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_the_help_describes_with_the_whole_first_paragraph(name, capsys):
    """Issue 24 item 5: descriptions were the docstring's first line, cut mid-sentence."""
    module = _example(name)
    with pytest.raises(SystemExit):
        module.main(["--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps at spaces and hyphens
    first = " ".join(module.__doc__.strip().split("\n\n")[0].split())
    assert first.replace(" ", "") in text
    assert first.endswith((".", ")", ":")), first  # a whole sentence


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "nosuch"], "--backend nosuch: unknown backend 'nosuch'"),
        (["--epochs", "0"], "argument --epochs: 0: must be at least 1"),
        (["--trials", "x"], "argument --trials: 'x' is not a whole number"),
    ],
)
def test_search_script_refuses_bad_options_with_exit_2(argv, message, tmp_path, capsys):
    module = _example("search")
    with pytest.raises(SystemExit) as exit_info:
        module.main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_search_script_has_a_quick_look(monkeypatch, tmp_path):
    """Issue 24 item 5: search.py had no --quick."""
    module = _example("search")
    calls = []

    def fake_search(space, trials, objective, **kw):
        calls.append((trials, objective.epochs))
        raise SystemExit(0)  # the settings are all this test needs

    monkeypatch.setattr(module, "search", fake_search)
    with pytest.raises(SystemExit):
        module.main(["--quick", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        module.main(["--quick", "--trials", "3", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        module.main(["--out", str(tmp_path)])
    assert calls == [(20, 30), (3, 30), (module.TRIALS, module.EPOCHS)]
