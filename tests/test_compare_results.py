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
