"""xpscratch._threads: training holds BLAS and OpenMP to one thread (issue 24: OpenBLAS's
spinning threads made a run 10-60x slower on a busy laptop), and the user can say otherwise."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import xpscratch
from xpscratch import _threads
from xpscratch.networks import MultiLayerNet
from xpscratch.optim import SGD
from xpscratch.training import Trainer
from xpscratch.training.callbacks import Callback

LIBRARY_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.fixture
def no_thread_variables(monkeypatch):
    for v in (_threads.THREADS_VARIABLE, *LIBRARY_VARIABLES):
        monkeypatch.delenv(v, raising=False)


@pytest.fixture
def two_blas_threads():
    """BLAS at two threads outside the block under test (CI starts it at one)."""
    with threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() != {2}:
            pytest.skip(f"this BLAS cannot be set to two threads: {threadpool_info()}")
        yield


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, 1),
        ({"XPSCRATCH_THREADS": "3"}, 3),
        ({"XPSCRATCH_THREADS": "all"}, None),
        ({"OPENBLAS_NUM_THREADS": "4"}, None),  # the user chose, for the library itself
        ({"OMP_NUM_THREADS": "2", "XPSCRATCH_THREADS": "1"}, 1),
    ],
)
def test_the_limit_is_one_thread_unless_the_user_says_otherwise(
    monkeypatch, no_thread_variables, env, expected
):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert _threads.thread_limit() == expected


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_bad_thread_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(_threads.THREADS_VARIABLE, value)
    with pytest.raises(ValueError, match="XPSCRATCH_THREADS.*at least 1.*'all'"):
        _threads.thread_limit()


def test_limit_threads_holds_blas_to_one_thread_and_gives_it_back(
    no_thread_variables, two_blas_threads
):
    with xpscratch.limit_threads():
        assert _blas_threads() == {1}
    assert _blas_threads() == {2}
    with xpscratch.limit_threads(2):
        assert _blas_threads() == {2}


class _RecordThreads(Callback):
    def __init__(self) -> None:
        self.seen: set[int] = set()

    def on_step_end(self, trainer, loss) -> None:
        self.seen |= _blas_threads()


def test_training_runs_with_one_blas_thread(no_thread_variables, two_blas_threads):
    rng = np.random.default_rng(0)
    x = xpscratch.asarray(rng.standard_normal((20, 6)), "float64")
    t = xpscratch.asarray(rng.integers(0, 3, 20))
    record = _RecordThreads()
    net = MultiLayerNet(6, [5], 3, dtype="float64")
    Trainer(
        net,
        x,
        t,
        x,
        t,
        epochs=1,
        mini_batch_size=10,
        optimizer=SGD(lr=0.1),
        callbacks=[record],
        verbose=False,
    ).train()
    assert record.seen == {1}
    assert _blas_threads() == {2}


def test_an_experiment_runs_with_one_blas_thread(no_thread_variables, two_blas_threads):
    from xpscratch.experiments._common import run_context

    with run_context("float64"):
        assert _blas_threads() == {1}


def test_a_search_worker_keeps_one_blas_thread():
    """A worker process only trains: the limit stays for the whole process."""
    code = (
        "from threadpoolctl import threadpool_info, threadpool_limits\n"
        "threadpool_limits(limits=2)\n"
        "from xpscratch.search._workers import activate\n"
        "activate('numpy', None, 'float32', 2)\n"
        "print(sorted({i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'}))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in LIBRARY_VARIABLES}
    env.pop(_threads.THREADS_VARIABLE, None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[1]", out.stdout + out.stderr
