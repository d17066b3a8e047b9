"""tools/compare_results.py: the before/after check of every number in two result folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "tools" / "compare_results.py"
_spec = importlib.util.spec_from_file_location("compare_results", _PATH)
compare_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_results)


def _write(folder: Path, name: str, data: dict) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps(data))


RESULT = {
    "experiment": "x",
    "elapsed_s": 1.5,
    "xpscratch_version": "0.1.0",
    "settings": {"lr": 0.01, "iters": 3},
    "result": {"loss": [2.302585092994046, 1.0, float("nan")], "name": "SGD", "ok": True},
}


def test_identical_folders_have_no_difference_and_count_every_number(tmp_path):
    _write(tmp_path / "a", "x.json", RESULT)
    _write(tmp_path / "b", "x.json", {**RESULT, "elapsed_s": 9.0, "xpscratch_version": "9"})
    files, numbers, diffs = compare_results.compare_dirs(tmp_path / "a", tmp_path / "b")
    assert (files, numbers, diffs) == (1, 5, [])
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0


def test_one_ulp_a_type_a_string_and_a_missing_file_are_differences(tmp_path):
    changed = json.loads(json.dumps(RESULT))
    changed["result"]["loss"][0] = 2.3025850929940455  # one ulp below
    changed["settings"]["iters"] = 3.0  # int -> float
    changed["result"]["name"] = "Adam"
    _write(tmp_path / "a", "x.json", RESULT)
    _write(tmp_path / "a", "y.json", RESULT)
    _write(tmp_path / "b", "x.json", changed)
    files, _, diffs = compare_results.compare_dirs(tmp_path / "a", tmp_path / "b")
    assert files == 1
    assert len(diffs) == 4
    assert any("x.json.result.loss[0]" in d for d in diffs)
    assert any(d.startswith("y.json: only in") for d in diffs)
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1


def test_empty_folders_are_not_a_pass(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert compare_results.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1


SCHEMA_0 = {
    "experiment": "optimizer_compare_mnist",
    "elapsed_s": 3.5,
    "backend": "numpy",
    "dtype": "float32",
    "seed": 0,
    "dataset": "mnist-small",
    "settings": {"optimizers": ["SGD", "Adam"], "learning_rates": {}},
    "result": {
        "settings": {"optimizers": ["SGD", "Adam"], "learning_rates": {}},
        "backend": "numpy",
        "dtype": "float32",
        "seed": 0,
        "dataset": "mnist-small",
        "elapsed_s": 3.1,
        "train_loss": {"SGD": [2.3, 1.0], "Adam": [2.2, 0.5]},
    },
}
SCHEMA_1 = {
    "schema": 1,
    "experiment": "optimizer_compare_mnist",
    "elapsed_s": 3.9,
    "backend": "numpy",
    "dtype": "float32",
    "seed": 0,
    "dataset": "mnist-small",
    "settings": {"optimizers": ["SGD", "Adam"], "learning_rates": {"SGD": 0.01, "Adam": 0.001}},
    "result": {"train_loss": {"SGD": [2.3, 1.0], "Adam": [2.2, 0.5]}},
}


def test_schema_0_is_read_with_exactly_the_documented_changes(tmp_path):
    _write(tmp_path / "a", "m.json", SCHEMA_0)
    _write(tmp_path / "b", "m.json", SCHEMA_1)
    files, numbers, diffs = compare_results.compare_dirs(tmp_path / "a", tmp_path / "b")
    assert (files, diffs) == (1, [])
    assert numbers == 1 + 1 + 2 + 4  # schema, seed, the two rates, the four losses
    # a loss, a learning rate other than the default, or a changed seed is still a difference
    for path, value in (
        (("result", "train_loss", "Adam", 1), 0.25),
        (("settings", "learning_rates", "Adam"), 0.002),
        (("seed",), 1),
    ):
        changed = json.loads(json.dumps(SCHEMA_1))
        *keys, last = path
        target = changed
        for key in keys:
            target = target[key]
        target[last] = value
        _write(tmp_path / "c", "m.json", changed)
        _, _, diffs = compare_results.compare_dirs(tmp_path / "a", tmp_path / "c")
        assert len(diffs) == 1, (path, diffs)


def test_schema_0_metadata_that_disagrees_or_a_dropped_dataset_is_a_difference(tmp_path):
    before = json.loads(json.dumps(SCHEMA_0))
    before["result"]["dtype"] = "float64"  # the repeated copy disagreed
    _write(tmp_path / "a", "m.json", before)
    after = {k: v for k, v in SCHEMA_1.items() if k != "dataset"}  # this one uses a dataset
    _write(tmp_path / "b", "m.json", after)
    _, _, diffs = compare_results.compare_dirs(tmp_path / "a", tmp_path / "b")
    assert any("result.dtype" in d for d in diffs)
    assert any(".dataset: missing after" in d for d in diffs)


def test_schema_0_of_a_2d_experiment_drops_its_seed_and_dataset(tmp_path):
    before = {"experiment": "optimizer_zoo", "seed": 0, "dataset": "mnist-small", "result": {}}
    before["result"] = {"seed": 0, "dataset": "mnist-small", "paths": [1.0]}
    _write(tmp_path / "a", "z.json", before)
    _write(
        tmp_path / "b",
        "z.json",
        {"schema": 1, "experiment": "optimizer_zoo", "result": {"paths": [1.0]}},
    )
    assert compare_results.compare_dirs(tmp_path / "a", tmp_path / "b") == (1, 2, [])
