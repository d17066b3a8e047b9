"""xpscratch check --save-baseline / --baseline (xpscratch/check/_baseline.py): a backend
against its own earlier run, end to end through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xpscratch import check
from xpscratch.check import _baseline, _cli
from xpscratch.cli import main

RUN = ["check", "--backend", "numpy", "--group", "random", "--group", "layers"]
RUN += ["--dtype", "float64", "--quick"]


@pytest.fixture
def saved(tmp_path, capsys):
    """A baseline of numpy's random and layers groups in float64 (quick battery)."""
    path = tmp_path / "base.json"
    assert main([*RUN, "--save-baseline", str(path)]) == 0
    capsys.readouterr()
    return path


def _compare(capsys, path, *extra):
    status = main(["check", "--baseline", str(path), *extra])
    return status, capsys.readouterr().out


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _entry(data, group, kind, index=0):
    return [e for e in data["groups"][f"numpy float64 {group}"] if e["kind"] == kind][index]


def _shift(entry, ulps):
    """Move a recorded value's first element by ``ulps`` units in the last place."""
    values = _baseline.decode(entry).copy()
    flat = values.reshape(-1)
    i = int(np.flatnonzero(flat != 0)[0])
    for _ in range(ulps):
        flat[i] = np.nextafter(flat[i], np.inf)
    entry.update(_baseline.encode("values", values))


def test_the_baseline_holds_hashes_of_bits_values_otherwise_and_the_environment(saved):
    data = json.loads(saved.read_text())
    assert data["format"] == "xpscratch-check-baseline" and data["ulps"] == 4
    env = data["environment"]
    assert env["header"]["numpy"] == np.__version__ and env["header"]["battery"] == "quick"
    assert env["targets"]["numpy"]["versions"]["numpy"] == np.__version__
    random, layers = data["groups"]["numpy float64 random"], data["groups"]["numpy float64 layers"]
    assert {e["kind"] for e in random} == {"bits", "condition"}
    assert all(len(e["sha256"]) == 64 and "data" not in e for e in random if e["kind"] == "bits")
    assert any(e["kind"] == "values" for e in layers)
    # every case the groups counted is recorded: none compared without being kept
    for group in ("random", "layers"):
        g = check.run_group(group, check.make_target("numpy", None, "float64", quick=True))
        assert len(data["groups"][f"numpy float64 {group}"]) == g.cases
    names = [e["case"] for e in layers]
    assert len(names) == len(set(names))  # a repeated case name is numbered, not lost


def test_a_later_run_on_the_same_backend_is_the_same(saved, capsys):
    status, out = _compare(capsys, saved)  # the backends, dtypes, groups: the baseline's
    assert status == 0, out
    assert "environment: unchanged" in out
    compared = sum(len(v) for v in json.loads(saved.read_text())["groups"].values())
    assert f"BASELINE SAME: {compared} cases as the baseline ({compared} identical" in out


def test_a_tampered_baseline_fails_naming_every_moved_case_and_the_first(saved, capsys):
    def tamper(data):
        _entry(data, "random", "bits", 3)["sha256"] = "0" * 64
        _shift(_entry(data, "layers", "values", 2), 5)
        _entry(data, "random", "condition")["value"] = False
        _entry(data, "layers", "values", 5)["data"] = "not base64 of zlib!"
        data["groups"]["numpy float64 layers"].append(
            {"case": "a case this run lacks", "kind": "condition", "value": True}
        )

    _edit(saved, tamper)
    data = json.loads(saved.read_text())
    first = _entry(data, "random", "condition")["case"]  # the known answers come first
    bits = _entry(data, "random", "bits", 3)["case"]
    values = _entry(data, "layers", "values", 2)["case"]
    damaged = _entry(data, "layers", "values", 5)["case"]
    status, out = _compare(capsys, saved, "--json", str(saved.parent / "r.json"))
    assert status == 1, out
    assert f"MOVED numpy float64 random: {first}: was False, now True" in out
    assert f"MOVED numpy float64 random: {bits}: bits differ" in out
    assert f"MOVED numpy float64 layers: {values}: 1 of " in out and "at most 5 ulp" in out
    assert "a case this run lacks: in the baseline, not in this run" in out
    assert f"MOVED numpy float64 layers: {damaged}: the baseline's entry cannot be read" in out
    assert "BASELINE MOVED: 5 of " in out
    assert f"the first, in the battery's order: numpy float64 random: {first}" in out
    report = json.loads((saved.parent / "r.json").read_text())
    assert report["exit_status"] == 1 and not report["passed"]
    assert len(report["baseline"]["moved"]) == 5
    assert report["baseline"]["first_moved"]["case"] == first


def test_values_may_move_4_ulp_not_5(saved, capsys):
    """The same backend and device: a few ulp at most (pins the tolerance both ways)."""
    _edit(saved, lambda data: _shift(_entry(data, "layers", "values"), 4))
    status, out = _compare(capsys, saved)
    assert status == 0 and "the rest within 4 ulp" in out
    _edit(saved, lambda data: _shift(_entry(data, "layers", "values"), 1))  # now 5
    status, out = _compare(capsys, saved)
    assert status == 1 and "BASELINE MOVED: 1 of " in out and "1 of " in out
    assert "values moved more than 4 ulp (at most 5 ulp" in out


def test_what_changed_in_the_environment_is_shown(saved, capsys, monkeypatch):
    def older(data):
        data["environment"]["header"]["numpy"] = "1.26.4"
        data["environment"]["targets"]["numpy"]["versions"]["numpy"] = "1.26.4"
        data["environment"]["variables"]["OPENBLAS_CORETYPE"] = "Prescott"

    _edit(saved, older)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    status, out = _compare(capsys, saved)
    assert status == 0  # the numbers did not move, but the report says what changed
    assert "environment changed:" in out
    assert f"header numpy: 1.26.4 -> {np.__version__}" in out
    assert f"targets numpy versions numpy: 1.26.4 -> {np.__version__}" in out
    assert "variables OPENBLAS_CORETYPE: Prescott -> Haswell" in out


def test_a_run_that_meets_none_of_the_baseline_is_nothing_checked(saved, capsys):
    status, out = _compare(capsys, saved, "--backend", "array_api_strict", "--group", "random")
    assert status == 3 and "BASELINE NOTHING CHECKED" in out
    assert "not run this time: numpy float64 random" in out


@pytest.fixture
def no_battery(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the battery ran before the baseline was checked")

    monkeypatch.setattr(_cli, "run", refuse)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file; save one first with --save-baseline"),
        ("folder", "is a folder"),
        ("{not json", "cannot be read as a baseline"),
        ('{"format": "something else"}', "is not an xpscratch check baseline"),
        ('{"format": "xpscratch-check-baseline", "version": 1}', "is damaged"),
    ],
)
def test_an_unusable_baseline_is_refused_before_any_work(
    no_battery, tmp_path, capsys, content, words
):
    path = tmp_path / "b.json"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    assert main(["check", "--baseline", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--baseline {path}: {words}" in err and "Traceback" not in err


def test_a_baseline_of_another_battery_size_is_refused(saved, no_battery, capsys):
    _edit(saved, lambda data: data["environment"]["header"].update(battery="full"))
    assert main(["check", "--baseline", str(saved), "--quick"]) == 2
    assert "saved with the full battery (no --quick)" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["folder", "missing", "proc"])
def test_a_save_baseline_path_that_cannot_be_written_exits_2_before_any_work(
    no_battery, tmp_path, capsys, where
):
    path = {
        "folder": tmp_path,
        "missing": tmp_path / "no" / "b.json",
        "proc": "/proc/xpscratch-baseline.json",
    }[where]
    assert main([*RUN, "--save-baseline", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--save-baseline {path}: " in err and "Traceback" not in err


def test_ulp_distance_handles_every_value():
    one_up = np.nextafter(np.float32(1), np.float32(2))
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, 0.0, 1.0], np.float32)
    b = np.array([one_up, np.nan, np.inf, np.inf, -0.0, 1e-30, np.nan], np.float32)
    d = _baseline.ulp_distance(a, b)
    assert d[0] == 1 and d[1] == 0 and d[2] == 0 and d[4] == 0
    assert d[3] == np.inf and d[5] > 1e6 and d[6] == np.inf


def test_a_change_too_small_for_numpys_check_moves_the_baseline(saved, capsys, monkeypatch):
    """Relu 1e-14 relative off (about 45 ulp): the check against NumPy passes (its
    tolerance is far wider, and here NumPy's side changes too), the baseline does not."""
    from xpscratch import layers

    forward = layers.Relu.forward
    monkeypatch.setattr(
        layers.Relu, "forward", lambda self, x, train_flg=True: forward(self, x) * (1 + 1e-14)
    )
    status, out = _compare(capsys, saved)
    assert "PASSED" in out  # against NumPy
    assert status == 1 and "MOVED numpy float64 layers: Relu out" in out
    assert "values moved more than 4 ulp" in out
