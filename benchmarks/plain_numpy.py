"""The references for overhead: the same network written straight against NumPy.

``PlainNet()`` is the book's code style (``common/layers.py``, ``multi_layer_net_extend.py``,
``optimizer.py``), with no array-API layer and no portable RNG: ``x.sum()``, boolean
masks from ``np.random``, ``np.dot``.  It computes what xpscratch computes (the same
layers, the same formulas, the first layer's unused ``dx`` included), so the time
difference is the cost of the array-API layer.  It is deliberately not tuned beyond
the book: a user switching from the book's code to xpscratch should lose nothing.

``PlainNet(lean=True)`` with ``LEAN_OPTIMIZERS`` does exactly xpscratch's operations (a
float ReLU mask, in-place updates, no input gradient in the first layer) in raw NumPy:
against it, the time difference is the array-API layer's own cost.  Both use NumPy's
generator for dropout masks, where xpscratch uses its portable Philox stream.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np


class Relu:
    def forward(self, x, train_flg=True):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout = dout.copy()  # the book writes into dout; xpscratch does not, so neither do we
        dout[self.mask] = 0
        return dout


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x, train_flg=True):
        self.x = x
        return np.dot(x, self.W) + self.b

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx


class BatchNormalization:
    def __init__(self, gamma, beta, momentum=0.9):
        self.gamma, self.beta, self.momentum = gamma, beta, momentum
        self.running_mean = np.zeros_like(gamma)
        self.running_var = np.zeros_like(gamma)

    def forward(self, x, train_flg=True):
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc**2, axis=0)
            std = np.sqrt(var + 10e-7)
            xn = xc / std
            self.batch_size, self.xc, self.xn, self.std = x.shape[0], xc, xn, std
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            xn = (x - self.running_mean) / np.sqrt(self.running_var + 10e-7)
        return self.gamma * xn + self.beta

    def backward(self, dout):
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc += (2.0 / self.batch_size) * self.xc * dvar
        dmu = np.sum(dxc, axis=0)
        return dxc - dmu / self.batch_size


class Dropout:
    def __init__(self, dropout_ratio=0.5, rng=None):
        self.dropout_ratio = dropout_ratio
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def forward(self, x, train_flg=True):
        if train_flg:
            # the book's np.random.rand(*x.shape) > ratio, from a Generator (float64 draws)
            self.mask = self.rng.random(x.shape) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        return dout * self.mask


class LeanRelu:
    """A float mask, multiplied: what xpscratch does (cheaper than boolean-mask writes)."""

    def forward(self, x, train_flg=True):
        self.mask = (x > 0).astype(x.dtype)
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class LeanAffine(Affine):
    """``x @ W`` then ``+= b`` in place; the first layer skips the input's gradient."""

    def __init__(self, W, b, need_dx=True):
        super().__init__(W, b)
        self.need_dx = need_dx

    def forward(self, x, train_flg=True):
        self.x = x
        out = x @ self.W
        out += self.b
        return out

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T if self.need_dx else None


class LeanBatchNormalization(BatchNormalization):
    """The book's formulas with xpscratch's in-place steps."""

    def forward(self, x, train_flg=True):
        if not train_flg:
            return super().forward(x, train_flg)
        mu = x.mean(axis=0)
        xc = x - mu
        var = np.mean(xc * xc, axis=0)
        std = np.sqrt(var + 1e-6)
        self.batch_size, self.xc, self.std = x.shape[0], xc, std
        self.xn = xc / std
        self.running_mean *= self.momentum
        self.running_mean += (1.0 - self.momentum) * mu
        self.running_var *= self.momentum
        self.running_var += (1.0 - self.momentum) * var
        out = self.gamma * self.xn
        out += self.beta
        return out

    def backward(self, dout):
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxc = self.gamma * dout
        tmp = dxc * self.xc
        tmp /= self.std * self.std
        dvar = 0.5 * -tmp.sum(axis=0) / self.std
        dxc /= self.std
        tmp = (2.0 / self.batch_size) * self.xc
        tmp *= dvar
        dxc += tmp
        dxc -= dxc.sum(axis=0) / self.batch_size
        return dxc


class LeanDropout(Dropout):
    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = (self.rng.random(x.shape) > self.dropout_ratio).astype(x.dtype)
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)


class SoftmaxWithLoss:
    def forward(self, x, t):
        self.t = t
        x = x - np.max(x, axis=-1, keepdims=True)
        e = np.exp(x)
        self.y = e / np.sum(e, axis=-1, keepdims=True)
        batch = self.y.shape[0]
        return -np.sum(np.log(self.y[np.arange(batch), t] + 1e-7)) / batch

    def backward(self, dout=1):
        batch = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch), self.t] -= 1
        return dx / batch


class PlainNet:
    """784-...-10 with optional BN and dropout, He initialisation, in ``dtype``.

    ``lean=True`` swaps in the ``Lean*`` layers: xpscratch's operations exactly, minus the
    array-API layer, so that the time difference is the layer's overhead alone.
    """

    def __init__(
        self,
        sizes,
        *,
        use_batchnorm=False,
        use_dropout=False,
        dtype="float32",
        seed=0,
        lean=False,
        dropout_ratio=0.5,
    ):
        rng = np.random.default_rng(seed)
        affine = LeanAffine if lean else Affine
        batchnorm = LeanBatchNormalization if lean else BatchNormalization
        relu = LeanRelu if lean else Relu
        dropout = LeanDropout if lean else Dropout
        self.params = {}
        self.layers = OrderedDict()
        n = len(sizes) - 1
        for i in range(1, n + 1):
            W = rng.standard_normal((sizes[i - 1], sizes[i])) * np.sqrt(2.0 / sizes[i - 1])
            self.params[f"W{i}"] = W.astype(dtype)
            self.params[f"b{i}"] = np.zeros(sizes[i], dtype=dtype)
            W, b = self.params[f"W{i}"], self.params[f"b{i}"]
            self.layers[f"Affine{i}"] = affine(W, b, i > 1) if lean else affine(W, b)
            if i == n:
                break
            if use_batchnorm:
                self.params[f"gamma{i}"] = np.ones(sizes[i], dtype=dtype)
                self.params[f"beta{i}"] = np.zeros(sizes[i], dtype=dtype)
                self.layers[f"BatchNorm{i}"] = batchnorm(
                    self.params[f"gamma{i}"], self.params[f"beta{i}"]
                )
            self.layers[f"Relu{i}"] = relu()
            if use_dropout:
                self.layers[f"Dropout{i}"] = dropout(dropout_ratio, np.random.default_rng(seed + i))
        self.last_layer = SoftmaxWithLoss()
        self.n = n

    def predict(self, x, train_flg=False):
        for layer in self.layers.values():
            x = layer.forward(x, train_flg)
        return x

    def loss(self, x, t, train_flg=False):
        return self.last_layer.forward(self.predict(x, train_flg), t)

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        return float(np.sum(y == t)) / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for i in range(1, self.n + 1):
            grads[f"W{i}"] = self.layers[f"Affine{i}"].dW
            grads[f"b{i}"] = self.layers[f"Affine{i}"].db
            if f"BatchNorm{i}" in self.layers:
                grads[f"gamma{i}"] = self.layers[f"BatchNorm{i}"].dgamma
                grads[f"beta{i}"] = self.layers[f"BatchNorm{i}"].dbeta
        return grads


class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        # math.sqrt, not the book's np.sqrt: a NumPy float64 scalar would promote a float32
        # update to float64 under NumPy 2's rules (NEP 50) and make the reference slower
        lr_t = self.lr * math.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


class LeanAdam(Adam):
    """The same update as xpscratch's Adam, with its in-place steps."""

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key, p in params.items():
            g, m, v = grads[key], self.m[key], self.v[key]
            dm = g - m
            dm *= 1.0 - self.beta1
            m += dm
            dv = g * g
            dv -= v
            dv *= 1.0 - self.beta2
            v += dv
            denom = np.sqrt(v)
            denom += 1e-7
            step = lr_t * m
            step /= denom
            p -= step


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
LEAN_OPTIMIZERS = {"sgd": SGD, "adam": LeanAdam}
