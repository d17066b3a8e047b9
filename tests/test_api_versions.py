"""The array API standard's versions: every version array-api-strict offers from
xpscratch's oldest supported one (backend.MIN_API_VERSION, 2023.12) to its newest
(the draft included) runs the core of the layer, optimizer and random tests; older
versions are refused with the reason.

array-api-strict's ``api_version`` flag is process-wide: each test sets it for its
duration only (``ArrayAPIStrictFlags``).  Cost: about 2 s for all versions and devices.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xpscratch
from xpscratch import backend as B
from xpscratch.functions import argmax_rows
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.optim import Adam
from xpscratch.random import permutation, uniform

strict = pytest.importorskip("array_api_strict")
_flags = pytest.importorskip("array_api_strict._flags")

OFFERED = [*_flags.supported_versions, _flags.draft_version]
SUPPORTED = [v for v in OFFERED if v >= B.MIN_API_VERSION]
REFUSED = [v for v in OFFERED if v < B.MIN_API_VERSION]


def test_the_oldest_supported_version_is_2023_12():
    assert B.MIN_API_VERSION == "2023.12"
    assert SUPPORTED[0] == "2023.12" and "2024.12" in SUPPORTED


@pytest.fixture
def api_version(request):
    with warnings.catch_warnings():  # the draft version warns that it is a draft
        warnings.simplefilter("ignore")
        with strict.ArrayAPIStrictFlags(api_version=request.param):
            assert strict.__array_api_version__ == request.param
            yield request.param


def _train(steps: int = 3) -> tuple[dict[str, np.ndarray], float, np.ndarray]:
    """A few Adam steps of a net with batch norm, dropout and weight decay on the active
    backend: its parameters, its last loss and a prediction (argmax_rows), on the host."""
    net = MultiLayerNetExtend(
        6, [5, 4], 3, seed=3, use_batchnorm=True, use_dropout=True, weight_decay_lambda=0.01
    )
    opt = Adam(lr=0.01)
    rng = np.random.default_rng(0)
    x = xpscratch.asarray(rng.standard_normal((8, 6)), dtype=net.dtype)
    t = xpscratch.asarray(rng.integers(0, 3, 8))
    for _ in range(steps):
        grads = net.gradient(x, t)
        opt.update(net.params, grads)
    loss = float(xpscratch.to_numpy(net.loss(x, t)))
    pred = xpscratch.to_numpy(argmax_rows(net.predict(x)))
    return {k: xpscratch.to_numpy(v) for k, v in net.params.items()}, loss, pred


@pytest.mark.parametrize("api_version", SUPPORTED, indirect=True)
@pytest.mark.parametrize("device", ["CPU_DEVICE", "no_x64"])
def test_layers_optimizers_and_random_under_each_version(api_version, device):
    dtype = "float64" if device == "CPU_DEVICE" else "float32"
    with xpscratch.use_backend("numpy"), xpscratch.use_default_dtype(dtype):
        want_params, want_loss, want_pred = _train()
        want_u = xpscratch.to_numpy(uniform(5, "v", 0, (7,), dtype))
        want_perm = xpscratch.to_numpy(permutation(5, "v", 0, 9))
    with xpscratch.use_backend("array_api_strict", device) as b, xpscratch.use_default_dtype(dtype):
        params, loss, pred = _train()
        u = xpscratch.to_numpy(uniform(5, "v", 0, (7,), dtype, xp=b.xp, device=b.device))
        perm = xpscratch.to_numpy(permutation(5, "v", 0, 9, xp=b.xp, device=b.device))
    rtol = 1e-10 if dtype == "float64" else 1e-4
    for k, v in want_params.items():
        np.testing.assert_allclose(params[k], v, rtol=rtol, atol=rtol, err_msg=k)
    assert loss == pytest.approx(want_loss, rel=rtol)
    np.testing.assert_array_equal(pred, want_pred)
    np.testing.assert_array_equal(u, want_u)  # the published stream, bit for bit
    np.testing.assert_array_equal(perm, want_perm)


@pytest.mark.parametrize("api_version", REFUSED, indirect=True)
def test_older_versions_are_refused_with_the_reason(api_version):
    with pytest.raises(B.BackendError, match=f"{api_version}.*2023.12 or newer"):
        xpscratch.set_backend("array_api_strict")
    with pytest.raises(B.BackendError, match=f"{api_version}.*2023.12 or newer"):
        B.check_namespace(strict)
