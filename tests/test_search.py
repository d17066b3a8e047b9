"""xpscratch.search: the space, the objective, random and TPE search, parallel workers,
resuming after a kill, a study shared by processes on PostgreSQL, and the CLI.

References are independent of the code under test: Philox draws from
``xpscratch.random.uniform`` (the array generator), the book's Trainer run by hand, the
book's conclusion (best learning rates 1e-3..1e-2, tiny ones at chance), a sequential
in-process run for every parallel or shared one, and the study's own records in the
storage (read with Optuna) for "each trial exactly once".

PostgreSQL: ``XPSCRATCH_TEST_POSTGRES_URL`` (CI starts a server), else a throwaway cluster
started here when the server binaries are installed, else the tests skip, or fail with
``XPSCRATCH_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

import xpscratch
from xpscratch.backend import _resolve, host_namespace, to_numpy
from xpscratch.random import uniform
from xpscratch.search import (
    BOOK_SPACE,
    Choice,
    LogUniform,
    Objective,
    SearchError,
    SearchResult,
    Uniform,
    format_space,
    narrow,
    parse_space,
    sample,
    search,
    space_to_dict,
)
from xpscratch.search._workers import device_spec as _device_spec
from xpscratch.search.study import check_importable

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SLOW = pytest.mark.skipif(
    not os.environ.get("XPSCRATCH_SLOW_TESTS"), reason="slow: set XPSCRATCH_SLOW_TESTS=1"
)
TINY = Objective(train_size=200, epochs=3)  # a trial in ~20 ms: for mechanics, not learning
SMALL = Objective(epochs=20)  # ~0.25 s: long enough to kill a process in the middle


def strip(trials):
    """Records without their wall-clock time (the only field that may differ)."""
    return [{k: v for k, v in t.items() if k != "seconds"} for t in trials]


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def env() -> dict[str, str]:
    threads = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    path = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return {**os.environ, **threads, "PYTHONPATH": path}


def optuna():
    return pytest.importorskip("optuna", reason="pip install 'xpscratch[search]'")


# ---------------------------------------------------------------------------
# the space
# ---------------------------------------------------------------------------


def test_space_syntax_json_and_round_trip(tmp_path):
    space = parse_space("lr=log:1e-6:1e-2, momentum=uniform:0.5:0.99,optimizer=choice:sgd|adam")
    assert space == {
        "lr": LogUniform(1e-6, 1e-2),
        "momentum": Uniform(0.5, 0.99),
        "optimizer": Choice(("sgd", "adam")),
    }
    assert parse_space(format_space(space)) == space
    assert parse_space(space_to_dict(space)) == space  # what search.json stores
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"lr": "log:1e-6:1e-2", "batch_size": {"choice": [50, 100]}}))
    assert parse_space(str(path)) == {
        "lr": LogUniform(1e-6, 1e-2),
        "batch_size": Choice((50, 100)),
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr=log:0:1", "0 < low < high"),
        ("lr=log:1e-2:1e-6", "0 < low < high"),
        ("lr=uniform:1:1", "low < high"),
        ("lr=lin:0:1", "not a parameter"),
        ("lr=log:1e-6", "not a parameter"),
        ("lr", "NAME=SPEC"),
        ("lr=log:1e-6:1e-2,lr=log:1e-3:1e-2", "given twice"),
        ("optimizer=choice:sgd|sgd", "distinct"),
        ("", "at least one parameter"),
        ("missing.json", "cannot read"),
    ],
)
def test_bad_spaces_are_refused_with_the_syntax(text, message):
    with pytest.raises(ValueError, match=message):
        parse_space(text)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "optimizer=choice:sgd|adamax",
            "optimizer=choice:sgd|adamax: optimizer: unknown optimizer 'adamax'",
        ),
        ("batch_size=choice:0|10", "batch_size must be a positive integer, got 0"),
        ("batch_size=choice:10.5|20", "batch_size must be a positive integer, got 10.5"),
        ("batch_size=uniform:10:100", "batch_size needs a choice of values"),
        ("optimizer=uniform:0:1", "optimizer needs a choice of values"),
        ("lr=uniform:-0.1:0.1", "lr must be a finite number > 0, got -0.1"),
        ("lr=choice:0|0.1", "lr must be a finite number > 0, got 0"),
        ("lr=choice:nan|0.1", "lr must be a finite number > 0, got nan"),
        ("momentum=uniform:0.5:1", r"momentum must be a number in \[0, 1\), got 1.0"),
        ("momentum=choice:0.9|-0.1", r"momentum must be a number in \[0, 1\), got -0.1"),
        ("weight_decay=uniform:-1e-4:1e-4", "weight_decay must be a finite number >= 0"),
    ],
)
def test_every_value_a_space_can_draw_is_checked_when_it_is_built(text, message):
    """Before any trial: these failed only when a trial drew the bad value (issue 13)."""
    with pytest.raises(ValueError, match=message):
        parse_space(text)
    with pytest.raises(ValueError, match=message):
        search(text, 2, TINY)


def test_the_objectives_own_settings_are_checked_before_any_trial():
    for kwargs, message in [
        ({"lr": -0.01}, "Objective.lr must be a finite number > 0"),
        ({"weight_decay": float("nan")}, "Objective.weight_decay must be a finite number"),
        ({"optimizer": "adamax"}, "Objective.optimizer: unknown optimizer 'adamax'"),
    ]:
        with pytest.raises(ValueError, match=message):
            Objective(**kwargs)


def test_random_draws_are_rows_of_the_philox_array_generator():
    space = parse_space(
        "weight_decay=log:1e-8:1e-4,lr=log:1e-6:1e-2,momentum=uniform:0.5:0.9,opt=choice:a|b|c"
    )
    n = 40
    u = to_numpy(uniform(7, "study", 0, (n, 4), "float64", xp=host_namespace()))
    for k in (39, 0, 17):  # any trial on its own, in any order
        draw = sample(space, 7, k, "study")
        assert draw["weight_decay"] == 10.0 ** (-8 + 4 * u[k, 0])  # exactly
        assert draw["lr"] == 10.0 ** (-6 + 4 * u[k, 1])
        assert draw["momentum"] == 0.5 + 0.4 * u[k, 2]
        assert draw["opt"] == "abc"[int(u[k, 3] * 3)]
    assert sample(space, 7, 3, "other study") != sample(space, 7, 3, "study")
    assert sample(space, 8, 3, "study") != sample(space, 7, 3, "study")
    lrs = [sample(space, 0, k, "s")["lr"] for k in range(200)]
    assert all(1e-6 <= v <= 1e-2 for v in lrs)
    assert min(lrs) < 10**-5.5 and max(lrs) > 10**-2.5  # spread over the decades


def test_narrow_centres_the_best_trials_span_on_the_best():
    space = parse_space("lr=log:1e-6:1e-2,m=uniform:0:1,opt=choice:sgd|adam|adagrad")
    trials = [
        {"value": v, "params": {"lr": lr, "m": m, "opt": o}}
        for v, lr, m, o in [
            (0.9, 1e-2, 0.50, "adam"),
            (0.8, 1e-3, 0.51, "sgd"),
            (0.1, 1e-6, 0.90, "adagrad"),
            (0.7, 3e-3, 0.52, "adam"),
        ]
    ]
    out = narrow(space, trials, top_k=3)
    # lr: the best 3 span a decade; a decade around the best (1e-2), slid back inside
    assert out["lr"].low == pytest.approx(1e-3) and out["lr"].high == pytest.approx(1e-2)
    # m: 5% of the old width (their span is 2%), around the best's 0.50
    assert out["m"].low == pytest.approx(0.475) and out["m"].high == pytest.approx(0.525)
    assert out["opt"] == Choice(("sgd", "adam"))  # adagrad was only in the worst trial
    one = narrow(space, trials, top_k=1)["lr"]
    assert math.log10(one.high / one.low) == pytest.approx(0.1)  # a point: 0.1 decades


def test_narrow_searches_past_a_best_trial_at_the_edge_and_leaves_out_chance():
    """Issue 24: the quick search's best 5 were one trial that learned (0.23, the highest
    lr) and four at chance; their span lay below it, and round 2 scored 0.20."""
    space = parse_space("lr=log:1e-6:1e-2")
    trials = [
        {"value": v, "params": {"lr": 10.0**e}}
        for v, e in [(0.23, -2.44), (0.11, -2.72), (0.1, -3.08), (0.08, -3.85), (0.07, -3.96)]
    ]
    spread = narrow(space, trials)["lr"]  # 1.5 decades around the best, slid back inside
    assert math.log10(spread.low) == pytest.approx(-3.52) and spread.high == 1e-2
    learned = narrow(space, trials, chance_level=0.19)["lr"]  # the one that learned
    assert math.log10(learned.low) == pytest.approx(-2.49)
    assert math.log10(learned.high) == pytest.approx(-2.39)
    assert narrow(space, trials, chance_level=0.5) == narrow(space, trials)  # none above
    result = _result([0.23, 0.11, 0.1, 0.08, 0.07])  # lr 1e-2, 1e-3, ...: chance left out
    window = result.narrowed()["lr"]
    assert math.log10(window.low) == pytest.approx(-2.05)
    assert math.log10(window.high) == pytest.approx(-1.95)


def _result(values, train_size=500):
    trials = [
        {"number": i, "value": v, "params": {"lr": 10.0 ** -(i + 2)}, "state": "complete",
         "val_acc": [v], "train_acc": [v], "epochs": 1, "seconds": 0.1}
        for i, v in enumerate(values)
    ]  # fmt: skip
    objective = {"train_size": train_size, "validation_rate": 0.2, "epochs": 1}
    return SearchResult(
        "lr=log:1e-6:1e-1", "random", 0, "s", None, 1, objective, trials, "numpy", "cpu",
        "float32", 1.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "train_size", "at_chance"),
    [
        ([0.12, 0.15, 0.09, 0.11, 0.1], 500, True),  # 100 validation images: 3 sd = 0.09
        ([0.18, 0.15, 0.09, 0.11, 0.1], 500, True),  # 0.18 < 0.19: still noise
        ([0.20, 0.15, 0.09, 0.11, 0.1], 500, False),
        ([0.155, 0.12, 0.09, 0.11, 0.1], 50_000, False),  # 10,000 images: 3 sd = 0.009 < 0.05
        ([0.16, 0.12, 0.09, 0.11, 0.1], 50_000, False),
        ([0.14, 0.12, 0.09, 0.11, 0.1], 50_000, True),  # the 0.05 floor
    ],
)
def test_a_search_at_chance_offers_no_narrowed_space(values, train_size, at_chance):
    """Issue 24 item 6: best-5 ranges of chance-level ties were printed as advice."""
    result = _result(values, train_size)
    assert result.at_chance() is at_chance
    summary = result.summary()
    assert ("within noise of chance" in summary) is at_chance
    assert ("narrowed space:" in summary) is not at_chance


def test_narrow_stays_inside_the_old_space_so_the_next_round_accepts_it():
    """Best trials at a bound: the widened window slid past it (momentum 1.0007, a
    negative weight decay, lr above the old range) and the next round refused the space."""
    space = parse_space("lr=log:1e-4:1e-2,momentum=uniform:0.9:0.999,weight_decay=uniform:0:1e-3")
    trials = [
        {"value": v, "params": {"lr": 1e-2, "momentum": 0.999, "weight_decay": 0.0}}
        for v in (0.9, 0.8, 0.7)
    ]
    out = narrow(space, trials, top_k=3)
    assert out["momentum"].high == 0.999 and out["momentum"].low == pytest.approx(0.999 - 0.00495)
    assert out["weight_decay"].low == 0.0 and out["weight_decay"].high == pytest.approx(5e-5)
    assert out["lr"].high == 1e-2 and math.log10(out["lr"].high / out["lr"].low) == pytest.approx(
        0.1
    )
    assert parse_space(space_to_dict(out)) == out  # the next round takes it as it is


# ---------------------------------------------------------------------------
# the objective, on every backend
# ---------------------------------------------------------------------------


def test_objective_is_the_books_training_run():
    """Against the book's Trainer driven by hand on the same split (the reference)."""
    from xpscratch.datasets import load_mnist, train_validation_split
    from xpscratch.networks import MultiLayerNet
    from xpscratch.trainer import Trainer

    with xpscratch.use_backend("numpy"):
        (x, t), _ = load_mnist()
        (x_tr, t_tr), (x_val, t_val) = train_validation_split(x[:300], t[:300], seed=5)
        net = MultiLayerNet(784, [20, 20], 10, weight_decay_lambda=1e-4, seed=5, dtype="float64")
        trainer = Trainer(
            net, x_tr, t_tr, x_val, t_val, epochs=4, mini_batch_size=50,
            optimizer="momentum", optimizer_param={"lr": 0.05, "momentum": 0.8},
            verbose=False, seed=5,
        )  # fmt: skip
        trainer.train()
        objective = Objective(
            train_size=300, hidden_size_list=(20, 20), epochs=4, batch_size=50, seed=5,
            dtype="float64", optimizer="momentum",
        )  # fmt: skip
        rec = objective({"lr": 0.05, "weight_decay": 1e-4, "momentum": 0.8})
    assert rec["val_acc"] == trainer.test_acc_list and rec["train_acc"] == trainer.train_acc_list
    assert rec["value"] == trainer.test_acc_list[-1] and rec["state"] == "complete"
    assert rec["epochs"] == 4 and rec["value"] > 0.5


def test_search_agrees_with_numpy(backend, float_dtype):
    objective = Objective(train_size=200, epochs=4, dtype=float_dtype)
    mine = search(BOOK_SPACE, 3, objective, seed=1, study_name="agree")
    with xpscratch.use_backend("numpy"):
        ref = search(BOOK_SPACE, 3, objective, seed=1, study_name="agree")
    assert mine.backend == backend.name and mine.dtype == float_dtype
    assert [t["params"] for t in mine.trials] == [t["params"] for t in ref.trials]  # host draws
    for a, b in zip(mine.trials, ref.trials, strict=True):
        np.testing.assert_allclose(a["val_acc"], b["val_acc"], rtol=0, atol=0.026)  # 1 of 40


class _WhereAmI(Objective):
    """Reports the backend, device and dtype a worker process trains on."""

    def __call__(self, params):
        b = xpscratch.get_backend()
        dtype = xpscratch.get_default_dtype()
        return {"value": 0.0, "state": "complete", "val_acc": [], "train_acc": [], "epochs": 0,
                "seconds": 0.0, "where": [b.name, str(b.device), dtype]}  # fmt: skip


def test_workers_train_on_the_parents_backend(backend, float_dtype):
    assert _resolve(backend.name, _device_spec(backend)).device == backend.device
    with xpscratch.use_default_dtype(float_dtype):
        r = search("lr=log:1e-3:1e-2", 2, _WhereAmI(), workers=2)
    assert all(t["where"] == [backend.name, str(backend.device), float_dtype] for t in r.trials)


# ---------------------------------------------------------------------------
# random search and TPE: the book's conclusion, parallel = sequential, pruning
# ---------------------------------------------------------------------------


def check_book_conclusion(r) -> None:
    best = r.best(5)
    assert 1e-3 <= best[0]["params"]["lr"] <= 1e-2 and best[0]["value"] > 0.3
    assert all(t["params"]["lr"] >= 1e-3 for t in r.trials if t["value"] > 0.15)  # all that learn
    tiny = [t for t in r.trials if t["params"]["lr"] < 1e-5]
    assert tiny and all(max(t["val_acc"]) < 0.2 for t in tiny)  # tiny rates: chance level


CONCLUSION = Objective(epochs=30)  # the book's network and split; lr 5e-3+ learns by then
PRUNED = Objective(epochs=30, prune_after=15)  # the 6-layer net is at chance until epoch ~10
_runs: dict = {}


def book_search(objective=CONCLUSION, sampler="random"):
    key = (objective, sampler)
    if key not in _runs:
        _runs[key] = search(BOOK_SPACE, 16, objective, sampler=sampler, seed=0)
    return _runs[key]


def test_book_conclusion_with_random_search():
    check_book_conclusion(book_search())


def test_book_conclusion_with_tpe_and_pruning():
    optuna()
    r = book_search(PRUNED, "tpe")
    check_book_conclusion(r)
    # after its random start-up trials, TPE samples where the good trials were
    late = [t["params"]["lr"] for t in r.trials[10:]]
    print(f"\nTPE's last 6 learning rates: {[f'{v:.1e}' for v in late]}")
    assert sorted(late)[len(late) // 2] >= 1e-3


def test_parallel_equals_sequential():
    kwargs = dict(seed=3, study_name="parallel")
    one = search(BOOK_SPACE, 6, TINY, **kwargs)
    two = search(BOOK_SPACE, 6, TINY, workers=2, **kwargs)
    assert [t["number"] for t in two.trials] == list(range(6))
    assert strip(two.trials) == strip(one.trials)


def test_every_kind_of_parameter_through_optuna_matches_the_core(tmp_path):
    optuna()
    space = "lr=log:1e-3:1e-1,optimizer=choice:sgd|momentum,momentum=uniform:0.5:0.9"
    core = search(space, 5, TINY, seed=1)
    kept = search(space, 5, TINY, seed=1, storage=f"journal:{tmp_path / 's.log'}")
    assert strip(kept.trials) == strip(core.trials)
    assert {t["params"]["optimizer"] for t in core.trials} == {"sgd", "momentum"}
    tpe = search(space, 5, TINY, seed=1, sampler="tpe")
    assert all(isinstance(t["params"]["momentum"], float) for t in tpe.trials)


def test_pruning_saves_epochs_and_keeps_the_best():
    plain, pruned = book_search(), book_search(PRUNED)
    assert strip(pruned.best()) == strip(plain.best())  # the winner is not cut
    p = pruned.pruning()
    assert p["pruned"] >= 8 and p["epochs_saved"] == 15 * p["pruned"]
    assert p["epochs_run"] + p["epochs_saved"] == 16 * 30
    for a, b in zip(plain.trials, pruned.trials, strict=True):
        assert b["val_acc"] == a["val_acc"][: b["epochs"]]  # a pruned trial is a prefix
        if b["state"] == "pruned":
            assert b["epochs"] == 15 and a["val_acc"][14] < 0.15
    assert "epochs saved" in pruned.summary()
    print(
        f"\npruning at epoch 15 of 30: {p['pruned']}/16 trials pruned, {p['epochs_saved']} "
        f"epochs saved ({p['fraction_saved']:.0%}); {plain.elapsed_s:.1f} s -> "
        f"{pruned.elapsed_s:.1f} s"
    )


@pytest.mark.slow
@SLOW
def test_tpe_reaches_an_accuracy_in_fewer_trials_than_random():
    """Over 5 seeds, trials needed to reach val acc 0.35 (budget 40; never = 41).

    A 784-50-50-10 net for 10 epochs (15 s in all): only lr of about 7e-3 to 1e-2, 4% of
    the book's log range, gets there.
    """
    optuna()
    objective = Objective(hidden_size_list=(50, 50), epochs=10)
    needed = {}
    for sampler in ("random", "tpe"):
        needed[sampler] = [
            search(BOOK_SPACE, 40, objective, sampler=sampler, seed=s).trials_to_reach(0.35) or 41
            for s in range(5)
        ]
    print(f"\ntrials to val acc 0.35 over seeds 0-4: {needed}")
    assert sorted(needed["tpe"])[2] < sorted(needed["random"])[2]  # the medians
    assert max(needed["tpe"]) <= 40  # TPE gets there with every seed


# ---------------------------------------------------------------------------
# storages: resume after a kill, settings checks, Optuna only when needed
# ---------------------------------------------------------------------------

SEARCH_SCRIPT = """
import sys
from xpscratch.search import Objective, search
if __name__ == "__main__":
    storage, name, trials, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    r = search({space!r}, trials, Objective(**{objective!r}), seed=2, storage=storage,
               study_name=name, workers=workers)
    print("RESULT", __import__("json").dumps(r.trials))
"""


FINISHED = ("COMPLETE", "PRUNED")


def search_process(storage: str, name: str, trials: int, workers: int = 1, objective=SMALL):
    code = SEARCH_SCRIPT.format(space=BOOK_SPACE, objective=objective.to_dict())
    return subprocess.Popen(
        [sys.executable, "-c", code, storage, name, str(trials), str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )


def read_result(proc) -> list:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.split("RESULT ", 1)[1])


_storages: dict[str, object] = {}


def load_trials(storage: str, name: str):
    """The study's trials as its storage holds them (one storage object per URL)."""
    from xpscratch.search._optuna import _make_storage

    if storage not in _storages:
        _storages[storage] = _make_storage(storage)
    return optuna().load_study(study_name=name, storage=_storages[storage]).get_trials()


@pytest.mark.parametrize(
    "race",
    [
        "(sqlite3.OperationalError) table alembic_version already exists",  # SQLite
        "(psycopg.errors.UniqueViolation) duplicate key value",  # PostgreSQL
    ],
)
def test_processes_starting_at_once_on_a_new_database_wait_for_its_set_up(
    race, tmp_path, monkeypatch
):
    """Two processes creating one new database race to create its tables: the loser's
    "CREATE TABLE" (SQLite) or row (PostgreSQL) fails, and it must open the database
    the winner made instead of stopping the search (seen in CI: a search and a
    process reading its study started at once)."""
    o = optuna()
    from sqlalchemy.exc import IntegrityError, OperationalError

    from xpscratch.search import _optuna

    real, calls = o.storages.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            kind = IntegrityError if "duplicate" in race else OperationalError
            raise kind("CREATE TABLE alembic_version", {}, Exception(race))
        return real(*args, **kwargs)

    monkeypatch.setattr(o.storages, "RDBStorage", racing)
    monkeypatch.setattr(_optuna.time, "sleep", lambda s: None)
    storage = _optuna._make_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert isinstance(storage, real) and len(calls) == 2

    def locked(*args, **kwargs):  # any other error is the user's to see, at once
        calls.append(args[0])
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    monkeypatch.setattr(o.storages, "RDBStorage", locked)
    calls.clear()
    with pytest.raises(OperationalError, match="locked"):
        _optuna._make_storage(f"sqlite:///{tmp_path / 'other.db'}")
    assert len(calls) == 1


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_resume_after_a_killed_worker_loses_nothing(kind, tmp_path):
    o = optuna()
    storage = f"journal:{tmp_path / 'study.log'}" if kind == "journal" else (
        f"sqlite:///{tmp_path / 'study.db'}"
    )  # fmt: skip
    name, n = "resume", 8
    proc = search_process(storage, name, n)
    deadline = time.monotonic() + 120
    while True:  # kill it in the middle of a trial, with some finished
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        try:
            trials = load_trials(storage, name)
        except Exception:  # not created yet
            trials = []
        done = [t for t in trials if t.state.name in FINISHED]
        # training: a RUNNING trial with its hyperparameters drawn (a kill while the process
        # writes to a journal file would leave Optuna's file lock, which expires after 30 s)
        if len(done) >= 2 and any(t.state.name == "RUNNING" and len(t.params) == 2 for t in trials):
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            break
        time.sleep(0.02)
    before = {t.number: t for t in load_trials(storage, name) if t.state.name in FINISHED}
    killed = [t for t in load_trials(storage, name) if t.state == o.trial.TrialState.RUNNING]
    assert len(killed) == 1 and 2 <= len(before) < n

    resumed = search(BOOK_SPACE, n, SMALL, seed=2, storage=storage, study_name=name)
    fresh = search(BOOK_SPACE, n, SMALL, seed=2, study_name=name)  # in memory, uninterrupted
    assert strip(resumed.trials) == strip(fresh.trials)  # nothing lost, nothing changed

    after = load_trials(storage, name)
    for number, t in before.items():  # finished trials were kept, not rerun
        assert after[number].datetime_complete == t.datetime_complete
    assert after[killed[0].number].state == o.trial.TrialState.FAIL
    slots = [t.user_attrs["xpscratch:slot"] for t in after if t.state.name in FINISHED]
    assert sorted(slots) == list(range(n))  # each slot finished exactly once
    retry = [t for t in after if t.user_attrs.get("xpscratch:retry_of") == killed[0].number]
    assert len(retry) == 1 and retry[0].params == killed[0].params  # same hyperparameters


def test_every_credential_form_is_masked():
    from xpscratch.search._storage import mask_password

    for url, masked in [
        ("postgresql://u:topsecret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db?password=topsecret", "postgresql://u@h/db?password=***"),
        ("postgresql://u:top@secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql+psycopg://u:a@h/db?sslmode=require&PASSWORD=b&sslpassword=c&pwd=d",
            "postgresql+psycopg://u:***@h/db?sslmode=require&PASSWORD=***&sslpassword=***&pwd=***",
        ),
        ("sqlite:///study.db", "sqlite:///study.db"),
        ("journal:/tmp/s.log", "journal:/tmp/s.log"),
        (None, None),
    ]:
        assert mask_password(url) == masked


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def test_storage_problems_are_one_clear_error_before_any_trial(tmp_path):
    optuna()
    from xpscratch.search import StorageError, check_storage

    not_db = tmp_path / "notes.db"
    not_db.write_text("my notes, not a database\n")
    not_journal = tmp_path / "notes.log"
    not_journal.write_text("12 apples\n")
    cases = [
        ("foo://host/db", "'foo' is not a database this search can use"),
        ("postgresql://u:pw@h:notaport/db", "not a valid database URL"),
        (f"sqlite:///{not_db}", f"{not_db} is not an SQLite database"),
        (f"sqlite:///{tmp_path}/missing/s.db", "does not exist; create it first"),
        (f"journal:{not_journal}", f"{not_journal} is not an Optuna journal"),
        (f"journal:{tmp_path}", "is a directory"),
    ]
    for url, message in cases:
        with pytest.raises(StorageError, match=message):
            check_storage(url)
        with pytest.raises(StorageError, match=message):
            search(BOOK_SPACE, 2, TINY, storage=url)
    assert not_db.read_text() == "my notes, not a database\n"  # untouched
    assert not_journal.read_text() == "12 apples\n"


def test_an_unreachable_database_is_one_clear_error_without_the_password():
    optuna()
    pytest.importorskip("psycopg")
    from xpscratch.search import StorageError

    port = _closed_port()
    url = f"postgresql://u:topsecret@127.0.0.1:{port}/db?password=querysecret"
    start = time.perf_counter()
    with pytest.raises(StorageError) as info:
        search(BOOK_SPACE, 2, TINY, storage=url)
    message = str(info.value)
    assert message.startswith(
        f"cannot open the storage 'postgresql://u:***@127.0.0.1:{port}/db?password=***': "
        "OperationalError"
    )
    assert "Connection refused" in message and "is the database server running" in message
    assert "topsecret" not in message and "querysecret" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert time.perf_counter() - start < 30


def test_a_password_in_the_query_is_never_saved_or_printed(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    optuna()
    from xpscratch.cli import main

    out = tmp_path / "o"
    storage = f"sqlite:///{tmp_path / 's.db'}?password=topsecret"
    argv = ["search", "--trials", "2", "--epochs", "1", "--train-size", "200"]
    assert main([*argv, "--storage", storage, "--out", str(out)]) == 0
    saved = (out / "search.json").read_text()
    assert json.loads(saved)["result"]["storage"].endswith("s.db?password=***")
    printed = capsys.readouterr()
    assert "topsecret" not in saved + printed.out + printed.err
    bad = f"postgresql://u@127.0.0.1:{_closed_port()}/db?password=topsecret"
    assert main([*argv, "--storage", bad, "--out", str(tmp_path / "o2")]) == 1
    printed = capsys.readouterr()
    assert "password=***" in printed.err and "topsecret" not in printed.out + printed.err


def test_a_study_refuses_other_settings(tmp_path):
    optuna()
    storage = f"journal:{tmp_path / 's.log'}"
    search(BOOK_SPACE, 2, TINY, seed=1, storage=storage, study_name="s")
    with pytest.raises(ValueError, match="seed"):
        search(BOOK_SPACE, 2, TINY, seed=2, storage=storage, study_name="s")
    # more trials for the same study is fine: the first two are not rerun
    r = search(BOOK_SPACE, 3, TINY, seed=1, storage=storage, study_name="s")
    assert len(r.trials) == 3 and len(load_trials(storage, "s")) == 3


def test_random_search_needs_no_optuna_and_tpe_names_the_extra():
    code = """
import builtins, sys
real_import = builtins.__import__
def no_optuna(name, *a, **k):
    if name == "optuna" or name.startswith("optuna."):
        raise ImportError("No module named 'optuna'")
    return real_import(name, *a, **k)
builtins.__import__ = no_optuna
from xpscratch.search import Objective, search
r = search("lr=log:1e-3:1e-2", 2, Objective(train_size=200, epochs=1))
print("random ok", len(r.trials))
for kw in ({"sampler": "tpe"}, {"storage": "sqlite:///x.db"}):
    try:
        search("lr=log:1e-3:1e-2", 2, Objective(train_size=200, epochs=1), **kw)
    except ImportError as exc:
        print("error:", exc)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env(), cwd=ROOT,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "random ok 2"
    assert len(lines) == 3 and all("pip install 'xpscratch[search]'" in x for x in lines[1:])


def test_bad_arguments_fail_before_any_work():
    for kwargs, message in [
        ({"trials": 0}, "trials"),
        ({"workers": 0}, "workers"),
        ({"sampler": "grid"}, "sampler"),
        ({"seed": -1}, "seed"),
        ({"storage": "study.db"}, "journal:PATH"),
        ({"space": "dropout=uniform:0:1"}, "cannot search"),
    ]:
        args = {"space": BOOK_SPACE, "trials": 2, **kwargs}
        with pytest.raises(ValueError, match=message):
            search(args.pop("space"), args.pop("trials"), TINY, **args)
    with pytest.raises(ValueError, match="prune_after"):
        Objective(epochs=5, prune_after=6)


# ---------------------------------------------------------------------------
# several machines on one PostgreSQL study
# ---------------------------------------------------------------------------


def _pg_bindir() -> str | None:
    found = shutil.which("initdb")
    if found:  # Debian keeps the tools together in /usr/lib/postgresql/N/bin
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: p.split("/"))
    return os.path.dirname(versions[-1]) if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database: CI's, or a throwaway local cluster; else skip (or fail in CI)."""
    required = os.environ.get("XPSCRATCH_REQUIRE_POSTGRES") == "1"
    give_up = pytest.fail if required else pytest.skip
    for module in ("optuna", "sqlalchemy", "psycopg"):
        try:
            __import__(module)
        except ImportError:
            give_up(f"{module} is missing: pip install 'xpscratch[search]'")
    if os.environ.get("XPSCRATCH_TEST_POSTGRES_URL"):
        yield os.environ["XPSCRATCH_TEST_POSTGRES_URL"]
        return
    bindir = _pg_bindir()
    if bindir is None:
        give_up("no PostgreSQL server here (apt-get install postgresql), and no "
                "XPSCRATCH_TEST_POSTGRES_URL")  # fmt: skip
    root = tempfile.mkdtemp(prefix="xpscratch-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data = os.path.join(root, "data")

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(f"{bindir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    pg(f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-o",
       f"-h 127.0.0.1 -p {port} -k {root}", "start")  # fmt: skip
    try:
        pg(f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "search")
        yield f"postgresql://postgres@127.0.0.1:{port}/search"
    finally:
        pg(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_machines_share_a_postgres_study(postgres_url):
    """Three processes (as three machines would) on one study: each trial exactly once."""
    name, n = unique("machines"), 9
    procs = [search_process(postgres_url, name, n, objective=TINY) for _ in range(3)]
    results = [read_result(p) for p in procs]
    ref = search(BOOK_SPACE, n, TINY, seed=2, study_name=name)  # in-process, sequential
    for r in results:  # every machine reports the whole study, equal to the sequential run
        assert strip(r) == strip(ref.trials)

    trials = load_trials(postgres_url, name)
    ran = [t for t in trials if "xpscratch:slot" in t.user_attrs]
    assert sorted(t.user_attrs["xpscratch:slot"] for t in ran) == list(range(n))  # once each
    assert all(t.state == optuna().trial.TrialState.COMPLETE for t in ran)
    assert all(not t.params for t in trials if t not in ran)  # surplus asks never trained
    owners = {t.user_attrs["xpscratch:owner"] for t in ran}
    assert len(owners) >= 2  # the work was shared
    best = max(ran, key=lambda t: (t.value, -t.user_attrs["xpscratch:slot"]))
    assert best.user_attrs["xpscratch:slot"] == ref.best()[0]["number"]
    assert best.value == ref.best()[0]["value"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # our study.ask() below
def test_a_dead_machines_trial_is_requeued_through_heartbeats(postgres_url, monkeypatch):
    """A RUNNING trial of another host whose heartbeat stopped is rerun, once."""
    from xpscratch.search import _optuna as engine

    monkeypatch.setattr(engine, "GRACE_S", 1)
    name, n = unique("heartbeat"), 3
    cfg = engine.StudyConfig(
        parse_space(BOOK_SPACE), n, TINY, "random", 2, postgres_url, name,
        ("numpy", None, "float32", 1),
    )  # fmt: skip
    study, storage = engine.open_study(cfg)
    trial = study.ask()
    trial.set_user_attr("xpscratch:owner", "elsewhere:123:456")
    trial.set_user_attr("xpscratch:slot", 0)
    storage.record_heartbeat(trial._trial_id)
    time.sleep(1.5)  # the other machine is gone
    r = search(BOOK_SPACE, n, TINY, seed=2, storage=postgres_url, study_name=name)
    ref = search(BOOK_SPACE, n, TINY, seed=2, study_name=name)
    assert strip(r.trials) == strip(ref.trials)
    states = {t.number: t.state for t in load_trials(postgres_url, name)}
    assert states[trial.number] == optuna().trial.TrialState.FAIL


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------


def test_cli_search_writes_json_and_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from xpscratch.cli import main

    out = tmp_path / "o"
    argv = ["search", "--trials", "4", "--epochs", "3", "--train-size", "200", "--seed", "5"]
    assert main([*argv, "--workers", "2", "--out", str(out), "--prune-after", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "search.json",
        "search_best20.png",
        "search_scatter.png",
    ]  # and no temporary files
    for png in ("search_best20.png", "search_scatter.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    record = json.loads((out / "search.json").read_text())
    result = record["result"]
    assert [t["number"] for t in result["trials"]] == [0, 1, 2, 3]
    assert result["objective"]["epochs"] == 3 and result["seed"] == 5
    assert parse_space(result["space"]) == parse_space(BOOK_SPACE)
    # every trial is pruned at chance (0.125 on 40 validation images): no round two offered
    assert record["next_round"] is None
    assert "within noise of chance" in record["summary"]
    assert "narrowed space:" not in record["summary"]
    expected = search(BOOK_SPACE, 4, Objective(train_size=200, epochs=3, seed=5, prune_after=2),
                      seed=5)  # fmt: skip
    assert strip(result["trials"]) == strip(expected.trials)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("trial")]
    assert len(lines) == 4 and all("val acc" in x and "best" in x for x in lines)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--space", "lr=log:0:1"], "0 < low < high"),
        (["--space", "dropout=uniform:0:1"], "cannot search"),
        (["--trials", "0"], "--trials"),
        (["--workers", "0"], "--workers"),
        (["--storage", "study.db"], "journal:PATH"),
        (["--prune-after", "99"], "prune_after"),
        (["--backend", "mxnet"], "unknown backend"),
        (["--sampler", "grid"], "grid"),
        (["--optimizer", "foo"], "unknown optimizer"),
        (["--hidden", "100,x"], "--hidden"),
        (["--space", "momentum=uniform:0.5:0.9"], "--optimizer momentum"),
    ],
)
def test_cli_search_usage_errors_exit_2(argv, message, tmp_path, capsys):
    from xpscratch.cli import main

    assert main(["search", "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_train_size_too_small_to_split_is_refused_when_the_objective_is_built():
    for size in (1, 4):
        with pytest.raises(ValueError, match=rf"train_size={size} .* 0 validation .* at least 5"):
            Objective(train_size=size)
    Objective(train_size=5)


def test_an_objective_from_a_notebook_is_refused_before_spawning(monkeypatch):
    # A notebook's classes live in a __main__ without a file: spawned workers cannot
    # unpickle them and died with "Can't get attribute" (a BrokenProcessPool).
    monkeypatch.setitem(sys.modules, "__main__", ModuleType("__main__"))
    notebook_objective = type("MyObjective", (Objective,), {"__module__": "__main__"})
    with pytest.raises(ValueError, match="MyObjective is defined in this notebook"):
        search("lr=log:1e-4:1e-1", 2, notebook_objective(epochs=1), workers=2)
    # the built-in Objective, and any objective with one worker, are fine
    check_importable(Objective(epochs=1), 2)
    check_importable(notebook_objective(epochs=1), 1)


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited (nobody reaped it yet)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_search(tmp_path):
    """Issue 22 item 13: `xpscratch search --workers 2` killed by SIGKILL left its two
    worker processes running on; now they exit within seconds of their parent."""
    cmd = [sys.executable, "-m", "xpscratch", "search", "--workers", "2", "--trials", "8"]
    cmd += ["--epochs", "50", "--no-plot", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline:
            workers = {p for p in _children(proc.pid) if b"spawn_main" in _cmdline(p)}
            if len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2, "the search did not start its two workers"
        time.sleep(3)  # let them import and start a trial
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "orphaned workers still running"
    finally:
        proc.kill()
        proc.wait()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_failed_workers_message_carries_no_traceback():
    """Issue 22 item 18: a worker's failure reached the CLI's message with its whole
    traceback; the message is one line now, the traceback kept apart for a debugger."""
    import queue
    from types import SimpleNamespace

    _optuna = pytest.importorskip("xpscratch.search._optuna")
    errors: queue.Queue = queue.Queue()
    with pytest.raises(SystemExit):
        _optuna._worker_main(SimpleNamespace(where=("nope", None, "float32", 2)), errors)
    summary, details, from_storage = errors.get_nowait()
    assert not from_storage
    assert summary.startswith("BackendError:") and "Traceback" not in summary
    assert details.startswith("Traceback")


# ---------------------------------------------------------------------------
# a storage that dies mid-search; what a dead worker's message advises (issue 22)
# ---------------------------------------------------------------------------


def _ruin(db: Path) -> None:
    """The database file overwritten in place, under the search's open connection."""
    with open(db, "r+b") as f:
        f.write(os.urandom(db.stat().st_size))


def test_a_database_that_dies_mid_search_stops_it_naming_the_storage(tmp_path):
    """Issue 22 item 18: the database dying between trials gave a raw traceback
    (StorageInternalError '... e.g. exceeding max length'); now one SearchError names the
    storage and the driver's cause, and keeps the trials that had finished."""
    optuna()
    db = tmp_path / "study.db"
    storage = f"sqlite:///{db}"
    seen = []

    def on_trial(record, done, total):
        seen.append(record)
        if done == 2:
            _ruin(db)

    with pytest.raises(SearchError) as info:
        search(BOOK_SPACE, 5, TINY, seed=2, storage=storage, on_trial=on_trial)
    message = str(info.value)
    assert message.startswith(
        f"the storage {storage!r} failed during the search, after 2 of 5 trials had finished: "
        "DatabaseError: file is not a database. is the database file still there"
    ), message
    assert "exceeding max length" not in message and "\n" not in message
    assert [t["number"] for t in info.value.trials] == [0, 1]
    assert info.value.trials == seen
    expected = search(BOOK_SPACE, 2, TINY, seed=2)  # the same draws, no storage
    assert strip(info.value.trials) == strip(expected.trials)


def test_cli_search_stops_on_a_dead_database_with_the_finished_trials_saved(
    tmp_path, capsys, monkeypatch
):
    optuna()
    from xpscratch.cli import main
    from xpscratch.search.objective import Objective as Objective_

    db, out = tmp_path / "study.db", tmp_path / "o"
    real, calls = Objective_.__call__, []

    def ruin_before_the_third(self, params):
        calls.append(1)
        if len(calls) == 3:
            _ruin(db)
        return real(self, params)

    monkeypatch.setattr(Objective_, "__call__", ruin_before_the_third)
    argv = ["search", "--trials", "5", "--epochs", "3", "--train-size", "200", "--no-plot"]
    assert main([*argv, "--storage", f"sqlite:///{db}", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"xpscratch: search failed: the storage 'sqlite:///{db}' failed")
    assert "Traceback" not in err and "SearchError.trials" not in err
    assert f"(the finished trials are in {out / 'search.json'})" in err
    saved = json.loads((out / "search.json").read_text())
    assert saved["partial"] and [t["number"] for t in saved["trials"]] == [0, 1]


KILLED_WORKER_SCRIPT = """
import os, signal, sys
from xpscratch.search import Objective, search

class Killed(Objective):
    def __call__(self, params):
        os.kill(os.getpid(), signal.SIGKILL)  # as the system's out-of-memory killer does

{start}
"""
GUARDED = """if __name__ == "__main__":
    try:
        search({space!r}, 4, Killed(train_size=200, epochs=1), storage=sys.argv[1], workers=2)
    except Exception as exc:
        print("ERROR", exc)
"""
UNGUARDED = """try:
    search({space!r}, 4, Objective(train_size=200, epochs=1), workers=2)
except Exception as exc:
    if __name__ != "__main__":
        raise  # a worker re-running the script (as __mp_main__): it dies of it
    print("ERROR", exc)
"""


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "unguarded"])
def test_a_dead_workers_message_gives_the_advice_that_applies(tmp_path, guarded):
    """Issue 22 item 20: every dead worker got the `if __name__ == "__main__":` advice, also
    from a guarded script and the CLI. A worker killed by SIGKILL is most often out of
    memory; the guard advice is for a script that lacks the guard."""
    if guarded:
        optuna()
    start = (GUARDED if guarded else UNGUARDED).format(space=BOOK_SPACE)
    script = tmp_path / "run_search.py"
    script.write_text(KILLED_WORKER_SCRIPT.format(start=start))
    proc = subprocess.run(
        [sys.executable, str(script), f"journal:{tmp_path / 'study.log'}"],
        capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=300,
    )  # fmt: skip
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert errors, proc.stdout + proc.stderr
    message = errors[0]
    if guarded:
        assert re.search(r"search worker process \d+ was killed by SIGKILL\. ", message), message
        assert "for want of memory: run fewer workers (workers=N)" in message
        assert "__main__" not in message
    else:
        assert "`if __name__ == '__main__':`" in message
        assert "SIGKILL" not in message


def test_the_cli_gives_a_dead_workers_advice_in_its_own_terms(tmp_path, capsys, monkeypatch):
    from xpscratch.cli import main
    from xpscratch.search._workers import worker_died

    def dying(*args, **kw):
        raise SearchError(worker_died(7, -9))

    monkeypatch.setattr("xpscratch.cli.search", dying)
    assert main(["search", "--trials", "2", "--no-plot", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "search worker process 7 was killed by SIGKILL" in err
    assert "run fewer --workers or a smaller --train-size" in err
    assert "workers=" not in err and "__main__" not in err


def test_the_script_advice_reads_the_main_script(tmp_path, monkeypatch):
    from xpscratch.search._workers import unguarded_main_script

    cases = {
        "if __name__ == '__main__':\n    main()\n": False,
        'if "__main__" == __name__:\n    main()\n': False,
        "search()\n": True,
        "if __name__ != '__main__':\n    pass\nsearch()\n": True,
        "def f():\n    if __name__ == '__main__':\n        pass\nf()\n": True,  # not at the top
        "x = 'if __name__ == \"__main__\":'\n": True,  # text, not a guard
    }
    for source, unguarded in cases.items():
        path = tmp_path / "main_script.py"
        path.write_text(source)
        main = ModuleType("__main__")
        main.__file__ = str(path)
        monkeypatch.setitem(sys.modules, "__main__", main)
        assert unguarded_main_script() is unguarded, source
    main.__spec__ = SimpleNamespace(name="xpscratch.__main__")  # python -m xpscratch
    assert unguarded_main_script() is False
    main.__spec__ = SimpleNamespace(name="my_search")  # python -m my_search: it is re-run
    assert unguarded_main_script() is True
    del main.__file__  # a notebook or an interactive session: nothing is re-run
    assert unguarded_main_script() is False


def test_an_over_long_study_name_is_refused_before_any_work_naming_the_limit(tmp_path, capsys):
    """Issue 22 item 20: a study name longer than a database's column (512) failed when the
    study was created, with "is the database server running?"."""
    optuna()
    from xpscratch.cli import main
    from xpscratch.search import StorageError

    url = f"postgresql://u:secret@127.0.0.1:{_closed_port()}/db"
    with pytest.raises(StorageError) as info:
        search(BOOK_SPACE, 2, TINY, storage=url, study_name="s" * 513)
    message = str(info.value)
    assert "is 513 characters long; a database storage" in message
    assert "at most 512: choose a shorter study name" in message
    assert "server" not in message and "secret" not in message
    with pytest.raises(StorageError, match="is the database server running"):
        search(BOOK_SPACE, 2, TINY, storage=url, study_name="s" * 512)  # fits: connects
    journal = f"journal:{tmp_path / 'study.log'}"
    search(BOOK_SPACE, 1, TINY, storage=journal, study_name="s" * 513)  # a journal keeps it
    argv = ["search", "--storage", url, "--study-name", "s" * 600, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "is 600 characters long" in capsys.readouterr().err


def test_a_value_too_long_for_postgres_is_not_blamed_on_the_server(postgres_url):
    """Past the check (a name the storage refuses), the cause is the driver's, and the
    hint names the length, not a server that is plainly running."""
    from xpscratch.search import StorageError
    from xpscratch.search._optuna import StudyConfig, open_study

    cfg = StudyConfig(parse_space(BOOK_SPACE), 1, TINY, "random", 0, postgres_url, "s" * 513,
                      ("numpy", None, "float64", 1))  # fmt: skip
    with pytest.raises(StorageError) as info:
        open_study(cfg)
    message = str(info.value)
    assert "too long" in message and "longer than 512 characters?" in message, message
    assert "server running" not in message
