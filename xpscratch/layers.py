"""The book's layers (``common/layers.py``): each backward sits under its forward.

Layers hold the network's parameter arrays (``W``, ``b``, ``gamma``, ``beta``) and
store their gradients as ``dW``, ``db``, ``dgamma``, ``dbeta``.  Optimizers update
writable arrays in place and replace immutable ones (JAX), so a network hands its
layers the current parameters before each forward pass.  Layer state that changes in
training (BatchNormalization's running statistics) is replaced by new arrays, never
changed in place, so that a training step can be undone.  All
arithmetic follows the namespace of the inputs.  Every ``forward`` takes
``train_flg`` (only BatchNormalization and Dropout use it) so that a network can call
all layers alike.
"""

from __future__ import annotations

from typing import Any

from .backend import device_of, namespace
from .functions import LOG_EPSILON, cross_entropy_error, one_hot, softmax
from .random import RandomStream

__all__ = [
    "Affine",
    "BatchNormalization",
    "Dropout",
    "LayerNormalization",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "Tanh",
]


class Relu:
    def __init__(self) -> None:
        self.mask = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        xp = namespace(x)
        # A float mask: multiplying is cheaper than xp.where, and backward reuses it.
        self.mask = xp.astype(x > 0, x.dtype)
        return x * self.mask

    def backward(self, dout: Any) -> Any:
        return dout * self.mask  # a new array: the book's in-place write corrupted dout


class Sigmoid:
    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        xp = namespace(x)
        e = xp.exp(-xp.abs(x))  # no overflow for large |x|
        self.out = xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * (1.0 - self.out) * self.out


class Tanh:
    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        self.out = namespace(x).tanh(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * (1.0 - self.out * self.out)


class Affine:
    """out = x @ W + b, for input of any shape (N, ...) flattened to (N, fan_in)."""

    def __init__(self, W: Any, b: Any) -> None:
        self.W, self.b = W, b
        self.x = self.original_x_shape = None
        self.dW = self.db = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        xp = namespace(x, self.W)
        self.original_x_shape = tuple(x.shape)
        self.x = x if x.ndim == 2 else xp.reshape(x, (x.shape[0], -1))
        if self.x.shape[1] != self.W.shape[0]:
            raise ValueError(
                f"Affine: input has {self.x.shape[1]} features per sample but W is "
                f"{tuple(self.W.shape)}; the input size must be {self.W.shape[0]}"
            )
        out = self.x @ self.W
        out += self.b  # in place: the product is ours, and one temporary fewer
        return out

    def backward(self, dout: Any, need_dx: bool = True) -> Any:
        """Store ``dW`` and ``db``; return the input's gradient unless ``need_dx`` is False.

        A network's first layer passes ``need_dx=False``: the gradient of the input data
        is thrown away, and its product is the largest of the backward pass.
        """
        xp = namespace(dout)
        self.dW = self.x.T @ dout
        self.db = xp.sum(dout, axis=0)
        if not need_dx:
            return None
        dx = dout @ self.W.T
        return dx if len(self.original_x_shape) == 2 else xp.reshape(dx, self.original_x_shape)


class SoftmaxWithLoss:
    """Softmax followed by the cross-entropy error; ``t`` is labels or one-hot rows.

    ``label_smoothing`` = eps (Szegedy et al., 2016) trains towards the target
    ``(1 - eps) * one_hot(t) + eps / K`` over K classes: the loss becomes
    ``(1 - eps) * CE + eps * mean_k(-log y_k)`` and its gradient ``(y - target) / N``.
    The default 0 is the book's loss, computed exactly as before.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        self.loss = self.y = self.t = None

    def forward(self, x: Any, t: Any) -> Any:
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, t)
        eps = self.label_smoothing
        if eps:
            xp = namespace(self.y)
            # the mean over batch and classes is the batch mean of (1/K) sum_k -log y_k
            uniform = -xp.mean(xp.log(self.y + LOG_EPSILON))
            self.loss = (1.0 - eps) * self.loss + eps * uniform
        return self.loss

    def backward(self, dout: Any = 1) -> Any:
        xp = namespace(self.y)
        batch_size = self.y.shape[0]
        t = self.t
        if tuple(t.shape) != tuple(self.y.shape):
            t = one_hot(t, self.y.shape[1], dtype=self.y.dtype)
        elif t.dtype != self.y.dtype:  # bool/int one-hot rows: strict refuses y - t
            t = xp.astype(t, self.y.dtype)
        if self.label_smoothing:
            eps = self.label_smoothing
            t = (1.0 - eps) * t + eps / self.y.shape[1]
        dx = self.y - t
        dx /= batch_size
        return dx if isinstance(dout, int | float) and dout == 1 else dx * dout


class BatchNormalization:
    """Ioffe & Szegedy (2015): normalise each feature over the batch, then scale and shift.

    As in the book: epsilon 1e-6 added to the biased batch variance, running mean and
    variance (starting at zero) updated as ``running = momentum*running +
    (1-momentum)*batch`` and used when ``train_flg`` is False.
    """

    def __init__(
        self,
        gamma: Any,
        beta: Any,
        momentum: float = 0.9,
        running_mean: Any = None,
        running_var: Any = None,
        eps: float = 1e-6,
    ) -> None:
        xp = namespace(gamma, beta)
        self.gamma, self.beta = gamma, beta
        self.momentum, self.eps = float(momentum), float(eps)
        self.running_mean = xp.zeros_like(gamma) if running_mean is None else running_mean
        self.running_var = xp.zeros_like(gamma) if running_var is None else running_var
        self.input_shape = None
        self.batch_size = self.xc = self.xn = self.std = None
        self.dgamma = self.dbeta = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        xp = namespace(x, self.gamma)
        self.input_shape = tuple(x.shape)
        x = xp.reshape(x, (x.shape[0], -1))
        if train_flg:
            if x.shape[0] < 2:
                raise ValueError(
                    f"BatchNormalization in training mode needs a batch of at least 2 samples, "
                    f"got {x.shape[0]}: one sample has zero variance, so every gradient before "
                    "this layer would be zero and running_var would shrink towards 0. Use a "
                    "larger batch, train_flg=False, or LayerNormalization"
                )
            mu = xp.mean(x, axis=0)
            xc = x - mu
            var = xp.mean(xc * xc, axis=0)
            std = xp.sqrt(var + self.eps)
            self.batch_size, self.xc, self.std = x.shape[0], xc, std
            self.xn = xc / std
            # new arrays, never the old ones changed: a step that fails later (an error, a
            # Ctrl-C) puts the old ones back, and the network reads its buffers from here
            m = self.momentum
            running_mean, running_var = self.running_mean * m, self.running_var * m
            running_mean += (1.0 - m) * mu
            running_var += (1.0 - m) * var
            self.running_mean, self.running_var = running_mean, running_var
            out = self.gamma * self.xn  # xn is kept for backward: a new array
        else:
            out = x - self.running_mean
            out /= xp.sqrt(self.running_var + self.eps)
            out *= self.gamma
        out += self.beta  # in place, as everywhere here: a += b rounds exactly as a + b
        return xp.reshape(out, self.input_shape)

    def backward(self, dout: Any) -> Any:
        xp = namespace(dout)
        dout = xp.reshape(dout, (dout.shape[0], -1))
        self.dbeta = xp.sum(dout, axis=0)
        self.dgamma = xp.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        tmp = dxn * self.xc
        tmp /= self.std * self.std
        dstd = -xp.sum(tmp, axis=0)
        dvar = 0.5 * dstd / self.std
        dxc = dxn  # dxn is not needed any more: dxc = dxn / std, in its place
        dxc /= self.std
        tmp = (2.0 / self.batch_size) * self.xc
        tmp *= dvar
        dxc += tmp
        dmu = xp.sum(dxc, axis=0)
        dxc -= dmu / self.batch_size  # dx
        return xp.reshape(dxc, self.input_shape)


class LayerNormalization:
    """Ba, Kiros & Hinton (2016): normalise each sample over its features.

    Uses no batch statistics, so it behaves the same in training and at test time and
    works for a batch of one.
    """

    def __init__(self, gamma: Any, beta: Any, eps: float = 1e-6) -> None:
        self.gamma, self.beta, self.eps = gamma, beta, float(eps)
        self.input_shape = self.xn = self.inv_std = None
        self.dgamma = self.dbeta = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        xp = namespace(x, self.gamma)
        self.input_shape = tuple(x.shape)
        x = xp.reshape(x, (x.shape[0], -1))
        xc = x - xp.mean(x, axis=1, keepdims=True)
        self.inv_std = 1.0 / xp.sqrt(xp.mean(xc * xc, axis=1, keepdims=True) + self.eps)
        self.xn = xc * self.inv_std
        return xp.reshape(self.gamma * self.xn + self.beta, self.input_shape)

    def backward(self, dout: Any) -> Any:
        xp = namespace(dout)
        dout = xp.reshape(dout, (dout.shape[0], -1))
        self.dbeta = xp.sum(dout, axis=0)
        self.dgamma = xp.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        # d/dx of (x - mean) * inv_std, with the mean and the variance depending on x
        dx = self.inv_std * (
            dxn
            - xp.mean(dxn, axis=1, keepdims=True)
            - self.xn * xp.mean(dxn * self.xn, axis=1, keepdims=True)
        )
        return xp.reshape(dx, self.input_shape)


class Dropout:
    """Srivastava et al. (2014): drop each unit with probability ``dropout_ratio``.

    The book's form (default) keeps units unscaled in training and multiplies by
    ``1 - dropout_ratio`` at test time.  ``inverted=True`` is the modern form: scale
    the kept units by ``1 / (1 - dropout_ratio)`` in training and do nothing at test
    time; both give the same expected activations.  Masks come from the stream
    ``RandomStream(seed, purpose)``, one counter value per training forward, and are
    identical on every backend.
    """

    def __init__(
        self,
        dropout_ratio: float = 0.5,
        *,
        seed: int = 0,
        purpose: str = "dropout",
        inverted: bool = False,
    ) -> None:
        if not 0.0 <= dropout_ratio < 1.0:
            raise ValueError(f"dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        self.dropout_ratio = float(dropout_ratio)
        self.inverted = inverted
        self.stream = RandomStream(seed, purpose)
        self.mask = None

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        xp = namespace(x)
        keep = 1.0 - self.dropout_ratio
        if train_flg:
            mask = self.stream.keep_mask(
                tuple(x.shape), self.dropout_ratio, xp=xp, device=device_of(x)
            )
            self.mask = xp.astype(mask, x.dtype)
            if self.inverted:
                self.mask *= 1.0 / keep
            return x * self.mask
        return x if self.inverted else x * keep

    def backward(self, dout: Any) -> Any:
        return dout * self.mask
