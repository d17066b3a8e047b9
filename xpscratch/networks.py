"""The book's fully connected networks (``common/multi_layer_net*.py``).

``MultiLayerNetExtend`` is the one implementation; ``MultiLayerNet`` is it with batch
normalization and dropout off, under the book's shorter signature.  Parameters are
``W1, b1, ..., W{n}, b{n}`` plus ``gamma{i}, beta{i}`` for each normalised hidden layer;
layers are named ``Affine{i}``, ``BatchNorm{i}``, ``Activation_function{i}``,
``Dropout{i}`` as in the book.

Weights are drawn from the stream ``(seed, "init/W{i}")`` and dropout masks from
``(seed, "dropout/{i}")``: the same seed gives the same network and the same training
run on every backend.  Arrays are created on the active backend; after that,
everything follows the parameters.  ``params`` is the one place parameters live:
optimizers may replace its arrays (immutable ones, JAX), and every forward pass first
hands each layer its current parameters.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

from ._checks import check_fraction, check_nonnegative, check_positive_int
from .backend import (
    asarray,
    device_of,
    float_dtype,
    get_backend,
    index_dtype,
    move,
    namespace,
    writable,
)
from .functions import argmax_rows
from .gradient import numerical_gradient
from .initializers import init_std, init_weight, zeros
from .layers import (
    Affine,
    BatchNormalization,
    Dropout,
    LayerNormalization,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)

__all__ = ["ACTIVATIONS", "MultiLayerNet", "MultiLayerNetExtend"]

ACTIVATIONS = {"sigmoid": Sigmoid, "relu": Relu, "tanh": Tanh}


class MultiLayerNetExtend:
    """A fully connected net with optional batch/layer normalization, dropout and weight decay.

    Parameters follow the book; the keyword-only ones are xpscratch's additions:
    ``use_layernorm`` (LayerNormalization instead of BatchNormalization),
    ``weight_decay_kind`` ('l2', the book's 0.5*lambda*||W||^2, or 'l1', lambda*|W|),
    ``inverted_dropout``, ``label_smoothing`` (of the loss, see
    :class:`~xpscratch.layers.SoftmaxWithLoss`; 0 is the book's loss), ``seed`` and
    ``dtype`` (default: the backend's default float).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0.0,
        use_dropout: bool = False,
        dropout_ratio: float = 0.5,
        use_batchnorm: bool = False,
        *,
        use_layernorm: bool = False,
        weight_decay_kind: str = "l2",
        inverted_dropout: bool = False,
        label_smoothing: float = 0.0,
        seed: int = 0,
        dtype: Any = None,
    ) -> None:
        input_size, output_size = (
            check_positive_int(n, v)
            for n, v in (("input_size", input_size), ("output_size", output_size))
        )
        if isinstance(hidden_size_list, str | int) or not hasattr(hidden_size_list, "__iter__"):
            raise ValueError(f"hidden_size_list must be a list of sizes, got {hidden_size_list!r}")
        hidden_size_list = [
            check_positive_int(f"hidden_size_list[{i}]", n) for i, n in enumerate(hidden_size_list)
        ]
        weight_decay_lambda = check_nonnegative("weight_decay_lambda", weight_decay_lambda)
        dropout_ratio = check_fraction("dropout_ratio", dropout_ratio)
        label_smoothing = check_fraction("label_smoothing", label_smoothing)
        init_std(weight_init_std, 1)  # an unknown name or a bad number fails here, not mid-init
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of {list(ACTIVATIONS)}"
            )
        if weight_decay_kind not in ("l2", "l1"):
            raise ValueError(f"weight_decay_kind must be 'l2' or 'l1', got {weight_decay_kind!r}")
        if use_batchnorm and use_layernorm:
            raise ValueError("choose one of use_batchnorm and use_layernorm")
        self.input_size, self.output_size = int(input_size), int(output_size)
        self.hidden_size_list = [int(n) for n in hidden_size_list]
        self.hidden_layer_num = len(self.hidden_size_list)
        self.weight_decay_lambda = float(weight_decay_lambda)
        self.weight_decay_kind = weight_decay_kind
        self.use_dropout, self.use_batchnorm = use_dropout, use_batchnorm
        self.use_layernorm = use_layernorm
        self.config = {
            "input_size": self.input_size,
            "hidden_size_list": self.hidden_size_list,
            "output_size": self.output_size,
            "activation": activation,
            "weight_init_std": weight_init_std,
            "weight_decay_lambda": self.weight_decay_lambda,
            "use_dropout": use_dropout,
            "dropout_ratio": float(dropout_ratio),
            "use_batchnorm": use_batchnorm,
            "use_layernorm": use_layernorm,
            "weight_decay_kind": weight_decay_kind,
            "inverted_dropout": inverted_dropout,
            "label_smoothing": float(label_smoothing),
            "seed": seed,
        }

        b = get_backend()
        dtype = float_dtype(b.xp, dtype, b.device)
        sizes = [self.input_size, *self.hidden_size_list, self.output_size]
        self.params: dict[str, Any] = {}
        for idx in range(1, len(sizes)):
            shape = (sizes[idx - 1], sizes[idx])
            self.params[f"W{idx}"] = init_weight(
                shape, weight_init_std, seed=seed, purpose=f"init/W{idx}", dtype=dtype
            )
            self.params[f"b{idx}"] = zeros(sizes[idx], dtype=dtype)

        self.layers: OrderedDict[str, Any] = OrderedDict()
        for idx in range(1, self.hidden_layer_num + 1):
            self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
            if use_batchnorm or use_layernorm:
                gamma = self.params[f"gamma{idx}"] = b.xp.ones_like(self.params[f"b{idx}"])
                beta = self.params[f"beta{idx}"] = zeros(sizes[idx], dtype=dtype)
                if use_batchnorm:
                    self.layers[f"BatchNorm{idx}"] = BatchNormalization(gamma, beta)
                else:
                    self.layers[f"LayerNorm{idx}"] = LayerNormalization(gamma, beta)
            self.layers[f"Activation_function{idx}"] = ACTIVATIONS[activation]()
            if use_dropout:
                self.layers[f"Dropout{idx}"] = Dropout(
                    dropout_ratio, seed=seed, purpose=f"dropout/{idx}", inverted=inverted_dropout
                )
        idx = self.hidden_layer_num + 1
        self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
        self.last_layer = SoftmaxWithLoss(label_smoothing)

    @property
    def xp(self) -> Any:
        """The parameters' namespace (it follows them, e.g. after :meth:`to`)."""
        return namespace(self.params["W1"])

    @property
    def dtype(self) -> Any:
        """The parameters' float dtype."""
        return self.params["W1"].dtype

    def to(self, backend: Any = None, device: Any = None, dtype: Any = None) -> Any:
        """Move the parameters and batch-norm statistics to another backend, device or
        float dtype (a copy through the host); returns the network itself.

        ``backend`` as for :func:`xpscratch.set_backend` (default: the current one).
        Dropout streams are positions, not arrays: they continue unchanged, so training
        goes on with the same numbers, up to the new backend's rounding.
        """
        buffers = self._buffers()
        moved = move({**self.params, **buffers}, backend, device, dtype)
        for key in self.params:
            self.params[key] = moved[key]
        for key in buffers:
            layer, attr = key.split(".")
            setattr(self.layers[layer], attr, moved[key])
        self._bind_params()
        return self

    # -- forward ----------------------------------------------------------------

    def predict(self, x: Any, train_flg: bool = False) -> Any:
        """Scores before the softmax, shape (N, output_size)."""
        namespace(x, self.params["W1"])  # a clear error for data on another backend or device
        if x.dtype != self.dtype:
            raise TypeError(
                f"input dtype {x.dtype} does not match the network's {self.dtype}; "
                f"convert it with xpscratch.asarray(x, dtype=...)"
            )
        self._bind_params()
        for layer in self.layers.values():
            x = layer.forward(x, train_flg)
        return x

    def _bind_params(self) -> None:
        """Hand each layer the arrays now in ``params`` (an optimizer may have replaced them)."""
        params = self.params
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{idx}"]
            affine.W, affine.b = params[f"W{idx}"], params[f"b{idx}"]
            norm = self.layers.get(f"BatchNorm{idx}") or self.layers.get(f"LayerNorm{idx}")
            if norm is not None:
                norm.gamma, norm.beta = params[f"gamma{idx}"], params[f"beta{idx}"]

    def _weight_decay(self) -> Any:
        lam = self.weight_decay_lambda
        total = 0.0
        for idx in range(1, self.hidden_layer_num + 2):
            W = self.params[f"W{idx}"]
            xp = namespace(W)
            if self.weight_decay_kind == "l2":
                total = total + 0.5 * lam * xp.sum(W * W)
            else:
                total = total + lam * xp.sum(xp.abs(W))
        return total

    def loss(self, x: Any, t: Any, train_flg: bool = False) -> Any:
        """Cross-entropy plus the weight-decay term, as a 0-d array (no device sync)."""
        y = self.predict(x, train_flg)
        loss = self.last_layer.forward(y, t)
        return loss + self._weight_decay() if self.weight_decay_lambda else loss

    def accuracy(self, x: Any, t: Any, batch_size: int | None = None) -> float:
        """Fraction of correct predictions (a Python float: this syncs with the device).

        ``batch_size`` evaluates in chunks to bound memory on large sets.
        """
        xp = namespace(x)
        n = x.shape[0]
        if t.ndim != 1:
            t = argmax_rows(t)
        step = n if batch_size is None else int(batch_size)
        count = index_dtype(xp, device_of(x))
        correct = 0
        for i in range(0, n, step):
            j = min(i + step, n)  # the standard leaves out-of-bounds slice stops unspecified
            y = argmax_rows(self.predict(x[i:j, ...], train_flg=False))
            correct = correct + xp.sum(xp.astype(y == t[i:j], count), dtype=count)
        return float(correct) / n

    # -- backward ---------------------------------------------------------------

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Gradients of the training loss by backpropagation, keyed like ``params``."""
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        first, *rest = self.layers.values()
        for layer in reversed(rest):
            dout = layer.backward(dout)
        if isinstance(first, Affine):  # the input data's gradient is never used: skip it
            first.backward(dout, need_dx=False)
        else:
            first.backward(dout)

        lam = self.weight_decay_lambda
        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{idx}"]
            grads[f"W{idx}"] = affine.dW
            if lam:
                W = self.params[f"W{idx}"]
                decay = lam * W if self.weight_decay_kind == "l2" else lam * namespace(W).sign(W)
                decay += affine.dW  # = dW + decay, without another temporary
                grads[f"W{idx}"] = decay
            grads[f"b{idx}"] = affine.db
            if idx <= self.hidden_layer_num and f"gamma{idx}" in self.params:
                norm = self.layers.get(f"BatchNorm{idx}") or self.layers[f"LayerNorm{idx}"]
                grads[f"gamma{idx}"], grads[f"beta{idx}"] = norm.dgamma, norm.dbeta
        return grads

    def numerical_gradient(self, x: Any, t: Any, h: float = 1e-4) -> dict[str, Any]:
        """Gradients of the training loss by central differences (for checking; slow).

        ``h`` is the book's 1e-4, right for float64; float32 needs about 1e-2.

        Every evaluation sees the same dropout masks that :meth:`gradient` would use
        next, and the network's running statistics and dropout streams are left as
        they were, so the two can be compared on one network.
        """
        saved = self.state_dict()
        buffers = {k: self.xp.asarray(v, copy=True) for k, v in saved["buffers"].items()}

        def loss_w(key: str, w: Any) -> Any:
            self.params[key] = w  # the perturbed array (itself, where perturbed in place)
            self._load_rng(saved["rng"])
            return self.loss(x, t, train_flg=True)

        grads = {}
        for key, p in list(self.params.items()):
            grads[key] = numerical_gradient(functools.partial(loss_w, key), p, h)
            self.params[key] = p
        self.load_state_dict({"params": {}, "buffers": buffers, "rng": saved["rng"]}, strict=False)
        return grads

    # -- state ------------------------------------------------------------------

    def _buffers(self) -> dict[str, Any]:
        out = {}
        for name, layer in self.layers.items():
            if isinstance(layer, BatchNormalization):
                out[f"{name}.running_mean"] = layer.running_mean
                out[f"{name}.running_var"] = layer.running_var
        return out

    def _load_rng(self, rng: dict[str, dict[str, Any]]) -> None:
        for name, stream_state in rng.items():
            self.layers[name].stream.load_state_dict(stream_state)

    def state_dict(self, *, copy: bool = True) -> dict[str, Any]:
        """Parameters, BN running statistics and dropout stream positions: copies (backend
        arrays on the parameters' device), so the state does not change when training
        goes on (updates write into the live parameters where arrays are writable).

        ``copy=False`` gives the live arrays, for a step's own undo record: it needs only
        the BN statistics, which a step replaces and never writes into.
        """
        rng = {
            name: layer.stream.state_dict()
            for name, layer in self.layers.items()
            if isinstance(layer, Dropout)
        }
        params, buffers = dict(self.params), self._buffers()
        if copy:
            params = {k: namespace(v).asarray(v, copy=True) for k, v in params.items()}
            buffers = {k: namespace(v).asarray(v, copy=True) for k, v in buffers.items()}
        return {"params": params, "buffers": buffers, "rng": rng}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy a saved state into this network's arrays: in place where they are
        writable, else as new arrays in ``params`` and the layers' buffers.

        Host arrays are moved onto the parameters' device.  A state from a network of
        another shape is refused with the names and shapes that differ, and then nothing
        is changed: everything is checked before the first array is written.
        """
        targets = {**self.params, **self._buffers()}
        saved = {**state.get("params", {}), **state.get("buffers", {})}
        if strict and set(saved) != set(targets):
            missing, extra = sorted(set(targets) - set(saved)), sorted(set(saved) - set(targets))
            raise ValueError(
                f"state does not fit this network: missing {missing}, unexpected {extra}"
            )
        for key, value in saved.items():
            if key not in targets:
                raise ValueError(f"state has {key!r}, which this network does not have")
            target = targets[key]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"state {key!r} has shape {tuple(value.shape)}, this network's is "
                    f"{tuple(target.shape)}"
                )
        rng = state.get("rng", {})
        streams = [n for n, layer in self.layers.items() if isinstance(layer, Dropout)]
        if set(rng) - set(streams):
            raise ValueError(
                f"state has random streams {sorted(rng)}, this network's dropout layers "
                f"are {streams}"
            )
        # converted (onto the device) before the first write: a failure here changes nothing
        converted = {k: asarray(v, targets[k].dtype, like=targets[k]) for k, v in saved.items()}
        for key, new in converted.items():
            target, value = targets[key], saved[key]
            if writable(target):
                target[...] = new
            elif key in self.params:
                # never share an array with the caller's state
                self.params[key] = (
                    new if new is not value else namespace(new).asarray(new, copy=True)
                )
            else:
                layer, attr = key.split(".")
                setattr(self.layers[layer], attr, new)
        self._bind_params()
        self._load_rng(rng)


class MultiLayerNet(MultiLayerNetExtend):
    """The book's plain fully connected net: no batch normalization, no dropout."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: list[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: float | str = "relu",
        weight_decay_lambda: float = 0.0,
        *,
        weight_decay_kind: str = "l2",
        label_smoothing: float = 0.0,
        seed: int = 0,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size_list,
            output_size,
            activation,
            weight_init_std,
            weight_decay_lambda,
            weight_decay_kind=weight_decay_kind,
            label_smoothing=label_smoothing,
            seed=seed,
            dtype=dtype,
        )


# -- saved configs: what a checkpoint's network section means ---------------------------

# config keys added after checkpoints were first written, with the value an older
# checkpoint (which lacks the key) was trained with
CONFIG_DEFAULTS = {"label_smoothing": 0.0}
# keys that only shape the initial weights: a network built with other values can still
# take a saved state
INIT_ONLY_CONFIG = ("seed", "weight_init_std")


def check_saved_network(class_name: Any, config: dict[str, Any] | None, network: Any) -> None:
    """Refuse a saved network (class name and config) that ``network`` cannot continue.

    Networks without a config (any object with ``params``) are compared by class name.
    """
    mine = getattr(network, "config", None)
    if mine is None or config is None:
        if class_name != type(network).__name__:
            raise ValueError(
                f"the checkpoint holds a {class_name}, this trainer a {type(network).__name__}"
            )
        return
    saved = {**CONFIG_DEFAULTS, **config}
    diff = [
        f"{k}: checkpoint {saved.get(k)!r} vs network {mine.get(k)!r}"
        for k in sorted(set(mine) | set(saved))
        if k not in INIT_ONLY_CONFIG and saved.get(k) != mine.get(k)
    ]
    if diff:
        raise ValueError("the checkpoint's network differs from this one: " + "; ".join(diff))


def network_from_config(class_name: Any, config: dict[str, Any] | None, dtype: Any) -> Any:
    """The network a checkpoint describes (its class and config), with fresh weights."""
    cls = {"MultiLayerNet": MultiLayerNet, "MultiLayerNetExtend": MultiLayerNetExtend}.get(
        str(class_name)
    )
    if cls is None or config is None:
        raise ValueError(f"cannot rebuild a {class_name} from the checkpoint; pass network=...")
    accepted = _CONFIG_ARGS[cls.__name__]
    return cls(**{k: v for k, v in config.items() if k in accepted}, dtype=dtype)


_BOOK_ARGS = ("input_size", "hidden_size_list", "output_size", "activation", "weight_init_std")
_BOOK_ARGS += ("weight_decay_lambda", "weight_decay_kind", "label_smoothing", "seed")
_CONFIG_ARGS = {
    "MultiLayerNet": _BOOK_ARGS,
    "MultiLayerNetExtend": _BOOK_ARGS
    + ("use_dropout", "dropout_ratio", "use_batchnorm", "use_layernorm", "inverted_dropout"),
}
