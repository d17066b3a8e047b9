"""Libraries beyond the five, as registered backends (issue 23): dask's evaluation points
keep a step's graph bounded; a Trainer run finishes on dask and ndonnx and agrees with
NumPy; pydata sparse is refused naming what it lacks.  Each skips where not installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xpscratch
from xpscratch import backend as B
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.trainer import Trainer


def _trainer(steps: int) -> Trainer:
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((60, 5)), rng.integers(0, 3, 60)
    net = MultiLayerNetExtend(
        5, [4], 3, seed=1, use_batchnorm=True, use_dropout=True, dtype="float64"
    )
    return Trainer(
        net,
        x,
        t,
        x[:20],
        t[:20],
        mini_batch_size=20,
        optimizer="Adam",
        max_iterations=steps,
        verbose=False,
    )


def _register(name: str, module: str):
    with warnings.catch_warnings():  # ndonnx warns that onnxruntime is not installed
        warnings.simplefilter("ignore")
        ns = pytest.importorskip(module)
    if name not in B.registered_backends():
        B.register_backend(name, lambda device: ns)
    return ns


def test_dask_a_steps_graph_does_not_grow_with_the_step_count():
    _register("dask", "array_api_compat.dask.array")
    with xpscratch.use_backend("dask"):
        tr = _trainer(12)
        sizes = []
        for step in range(12):
            tr.train_step()
            if step in (3, 11):
                graph = tr.network.params["W1"].__dask_graph__()
                sizes.append(len(graph))
    assert sizes[0] == sizes[1] <= 2, sizes  # persisted: the stored value, nothing else


@pytest.mark.parametrize(
    "name, module", [("dask", "array_api_compat.dask.array"), ("ndonnx", "ndonnx")]
)
def test_a_trainer_run_finishes_and_agrees_with_numpy(name, module):
    _register(name, module)
    with xpscratch.use_backend("numpy"):
        want = _trainer(3).train()
    with xpscratch.use_backend(name), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = _trainer(3).train()
    np.testing.assert_allclose(
        got.train_loss, want.train_loss, rtol=1e-9
    )  # float64: only summation order differs
    assert got.test_acc == pytest.approx(want.test_acc)


def test_sparse_is_refused_naming_the_missing_functions():
    sparse = pytest.importorskip("sparse")
    with pytest.raises(B.BackendError, match="lacks the standard functions .*arange"):
        xpscratch.set_backend(sparse)
