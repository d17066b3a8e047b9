"""Group 2, layers and functions: forward and backward against NumPy, and a numerical
gradient check of the BN+Dropout network on the device itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np  # seeded host inputs, moved to the device with asarray

from .. import functions as F
from ..backend import asarray, namespace, to_numpy
from ..layers import (
    Affine,
    BatchNormalization,
    Dropout,
    LayerNormalization,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)
from ..networks import MultiLayerNetExtend
from ._compare import Group
from ._target import Target


def _inputs(dtype: str, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    host = {
        "x": rng.standard_normal((8, 12)),
        "x3": rng.standard_normal((5, 3, 4)),
        "W": rng.standard_normal((12, 7)) * 0.3,
        "b": rng.standard_normal(7) * 0.1,
        "dout": rng.standard_normal((8, 12)),
        "dout7": rng.standard_normal((5, 7)),
        "logits": rng.standard_normal((8, 5)) * 3.0,
        "gamma": 1.0 + 0.1 * rng.standard_normal(12),
        "beta": 0.1 * rng.standard_normal(12),
    }
    out = {k: asarray(v, dtype) for k, v in host.items()}
    out["labels"] = asarray(rng.integers(0, 5, 8))
    out["onehot"] = asarray(np.eye(5)[rng.integers(0, 5, 8)], dtype)
    return out


def _host(d: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: to_numpy(v) for k, v in d.items()}


def _affine(dtype: str) -> dict:
    a = _inputs(dtype)
    layer = Affine(a["W"], a["b"])
    out = layer.forward(a["x3"])
    dx = layer.backward(a["dout7"])
    return _host({"out": out, "dx": dx, "dW": layer.dW, "db": layer.db})


def _activation(cls: type) -> Callable[[str], dict]:
    def run(dtype: str) -> dict:
        a = _inputs(dtype)
        layer = cls()
        out = layer.forward(a["x"])
        return _host({"out": out, "dx": layer.backward(a["dout"])})

    return run


def _softmax_loss(smoothing: float, onehot: bool) -> Callable[[str], dict]:
    def run(dtype: str) -> dict:
        a = _inputs(dtype)
        layer = SoftmaxWithLoss(label_smoothing=smoothing)
        loss = layer.forward(a["logits"], a["onehot"] if onehot else a["labels"])
        return _host({"loss": loss, "dx": layer.backward(1)})

    return run


def _batch_norm(dtype: str) -> dict:
    a = _inputs(dtype)
    layer = BatchNormalization(a["gamma"], a["beta"])
    out = layer.forward(a["x"], train_flg=True)
    dx = layer.backward(a["dout"])
    layer.forward(a["x"] * 0.5 + 0.2, train_flg=True)  # a second batch for the running stats
    test = layer.forward(a["x"], train_flg=False)
    return _host(
        {
            "train out": out,
            "dx": dx,
            "dgamma": layer.dgamma,
            "dbeta": layer.dbeta,
            "running_mean": layer.running_mean,
            "running_var": layer.running_var,
            "test out": test,
        }
    )


def _layer_norm(dtype: str) -> dict:
    a = _inputs(dtype)
    layer = LayerNormalization(a["gamma"], a["beta"])
    out = layer.forward(a["x"])
    dx = layer.backward(a["dout"])
    return _host({"out": out, "dx": dx, "dgamma": layer.dgamma, "dbeta": layer.dbeta})


def _dropout(inverted: bool) -> Callable[[str], dict]:
    def run(dtype: str) -> dict:
        a = _inputs(dtype)
        layer = Dropout(0.3, seed=11, purpose="dropout/7", inverted=inverted)
        out = layer.forward(a["x"], train_flg=True)
        dx = layer.backward(a["dout"])
        again = layer.forward(a["x"], train_flg=True)  # the next mask of the stream
        return _host({"out": out, "dx": dx, "out 2": again, "test": layer.forward(a["x"], False)})

    return run


def _functions(dtype: str) -> dict:
    a = _inputs(dtype)
    y = F.softmax(a["logits"])
    return _host(
        {
            "softmax": y,
            "sigmoid": F.sigmoid(a["x"] * 8.0),
            "relu": F.relu(a["x"]),
            "tanh": F.tanh(a["x"]),
            "cross_entropy": F.cross_entropy_error(y, a["labels"]),
            "one_hot": F.one_hot(a["labels"], 5, dtype=a["x"].dtype),
        }
    )


LAYER_CASES: dict[str, Callable[[str], dict]] = {
    "Affine": _affine,
    "Relu": _activation(Relu),
    "Sigmoid": _activation(Sigmoid),
    "Tanh": _activation(Tanh),
    "SoftmaxWithLoss labels": _softmax_loss(0.0, False),
    "SoftmaxWithLoss one-hot": _softmax_loss(0.0, True),
    "SoftmaxWithLoss smoothing 0.1": _softmax_loss(0.1, False),
    "BatchNormalization train/test": _batch_norm,
    "LayerNormalization": _layer_norm,
    "Dropout book": _dropout(False),
    "Dropout inverted": _dropout(True),
    "functions": _functions,
}


def _bn_dropout_gradients(dtype: str) -> tuple[dict, dict]:
    """Backprop and central differences of the BN+Dropout network, on the active device."""
    rng = np.random.default_rng(0)
    x, t = asarray(rng.standard_normal((12, 6)), dtype), asarray(rng.integers(0, 3, 12))
    net = MultiLayerNetExtend(
        6, [5, 4], 3, seed=7, dtype=dtype, use_batchnorm=True, use_dropout=True, dropout_ratio=0.3
    )
    brng = np.random.default_rng(3)  # biases off ReLU's kink at 0 (see test_networks)
    biases = {k: brng.uniform(0.05, 0.3, p.shape) for k, p in net.params.items() if k[0] == "b"}
    net.load_state_dict({"params": biases, "buffers": {}, "rng": {}}, strict=False)
    numeric = net.numerical_gradient(x, t, h=1e-4)
    return _host(net.gradient(x, t)), _host(numeric)


# the elementwise functions the layers and optimizers use, on inputs where each is well
# conditioned: a library's exp, log, sqrt or tanh may be off by an ulp or two at a point
# (CUDA's expf and tanhf by 2), but never biased: over thousands of points the mean
# signed error of an honest one is a fraction of an ulp
ELEMENTWISE = {
    "exp": (-5.0, 5.0),
    "log": (2.0, 100.0),
    "sqrt": (0.01, 100.0),
    "tanh": (0.1, 3.0),
}
MEAN_ULPS = 1.0  # a 4-ulp bias (the smallest the fault harness injects) is 4
MAX_ULPS = 8.0  # any one point


def _elementwise_errors(t: Target, name: str) -> tuple[float, float]:
    """Mean signed and largest error of ``xp.<name>`` on the device, in ulps of its dtype,
    against NumPy float64 on the very same (dtype-rounded) inputs."""
    lo, hi = ELEMENTWISE[name]
    host = np.linspace(lo, hi, 4096).astype(t.dtype)
    with t.active():
        x = asarray(host, t.dtype)
        got = to_numpy(getattr(namespace(x), name)(x)).astype(np.float64)
    truth = getattr(np, name)(host.astype(np.float64))
    ulps = (got - truth) / (np.abs(truth) * np.finfo(t.dtype).eps)
    return float(np.mean(ulps)), float(np.max(np.abs(ulps)))


def check_layers(t: Target, g: Group) -> None:
    rtol = t.tol.op
    for name in ELEMENTWISE:
        with g.case(f"{name}: no bias"):
            mean, worst = _elementwise_errors(t, name)
            g.require(
                f"{name}: mean error within {MEAN_ULPS:g} ulp, each within {MAX_ULPS:g}",
                abs(mean) <= MEAN_ULPS and worst <= MAX_ULPS,
                f"mean signed error {mean:+.2f} ulp, worst {worst:.1f} ulp on 4096 points "
                f"of [{ELEMENTWISE[name][0]:g}, {ELEMENTWISE[name][1]:g}]",
            )
    for name, run in LAYER_CASES.items():
        with g.case(name):
            mine, ref = t.both(("layer", name), run)
            for k in ref:
                if k == "one_hot":
                    g.equal(f"{name} {k}", mine[k], ref[k])
                else:
                    g.close(f"{name} {k}", mine[k], ref[k], rtol)
    if t.dtype != "float64":
        g.notes.append(
            "numerical gradient check skipped in float32: ReLU's kink lies within the "
            "finite-difference step (float32 backprop is compared with NumPy above)"
        )
        return
    with g.case("numerical gradient BN+Dropout"):
        with t.active():
            grads, numeric = _bn_dropout_gradients(t.dtype)
        for k in numeric:  # the tests' tolerances: rtol 1e-5, atol 1e-7 (tests/test_networks)
            g.close(f"numerical gradient {k}", grads[k], numeric[k], 1e-5, 1e-7)
