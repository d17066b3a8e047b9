"""Parameter updates (the book's ``common/optimizer.py``), simplest first.

``optimizer.update(params, grads)`` leaves the updated arrays in ``params`` (and the
new state in ``state``) on every backend, all or nothing: it first computes every array
the update needs (:meth:`Optimizer.compute_update`, which changes nothing), then stores
the update (:meth:`Optimizer.apply_update`, with Ctrl-C held off), so an error or an
interrupt never leaves some parameters updated and others not, or the step count
advanced without them.  Where arrays are writable (NumPy, CuPy, torch, strict) storing
changes the parameter arrays in place (``p -= step``: no copy, the written formula's
rounding), so every holder of a parameter (the book's layers) sees it; where they are
immutable (JAX) the new arrays replace the old ones under the same keys, and a network
hands its layers the current ``params`` before each forward pass.  Slot arrays are
always new ones.  An optimizer's state is plain data: a step count and one dict of
arrays per slot (``v``, ``h``, ``m``), created with ``zeros_like`` on the parameters'
own backend and device.
``state_dict()`` / ``load_state_dict()`` save and restore it.

Hyperparameters are Python floats.  ``lr`` may also be a schedule (any callable
``step -> float``, see :mod:`xpscratch.schedules`), evaluated on the host once per update.

The defaults reproduce the book's numbers: epsilon 1e-7 added after the square root,
Adam's bias correction folded into its step size, Nesterov in its corrected form.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

from . import _inplace as ip
from ._checks import check_fraction, check_nonnegative
from ._interrupts import deferred_interrupts
from .backend import asarray, move, namespace, writable
from .schedules import (
    CosineDecay,
    LinearDecay,
    Schedule,
    StepDecay,
    schedule_from_config,
    schedule_to_config,
)

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "CosineDecay",
    "LinearDecay",
    "Momentum",
    "Nesterov",
    "OPTIMIZERS",
    "Optimizer",
    "OptimizerUpdate",
    "RMSprop",
    "Schedule",
    "StepDecay",
    "functional_update",
    "make_optimizer",
    "optimizer_from_config",
    "weight_matrices",
]

EPS = 1e-7  # the book's epsilon, added after the square root


# How a rule changes a parameter: operations on it, in order, e.g. (("mul", c), ("sub", x))
# for p * c - x.  They are applied in place when the update is stored, where the array is
# writable (no copy, and the rounding of the written formula), or at once into a new array
# where it is immutable (storing is then only an assignment, which cannot fail half way).
Change = tuple[tuple[str, Any], ...]
_OPS = {"add": ip.add, "sub": ip.sub, "mul": ip.mul}


def minus(x: Any) -> Change:
    """``p - x``."""
    return (("sub", x),)


def plus(x: Any) -> Change:
    """``p + x``."""
    return (("add", x),)


def _changed(p: Any, change: Change, inplace: bool) -> Any:
    for op, x in change:
        p = _OPS[op](p, x, inplace)
    return p


@dataclasses.dataclass(frozen=True)
class OptimizerUpdate:
    """An update computed but not yet stored: each parameter's change, the new slot
    arrays and the new step count (for an immutable parameter, its new array)."""

    changes: dict[str, Change]
    state: dict[str, dict[str, Any]]
    step: int


class Optimizer:
    """Base class: step counting, learning-rate schedules, state creation and saving."""

    slots: tuple[str, ...] = ()

    def __init__(self, lr: float | Callable[[int], float]) -> None:
        self.lr = lr if callable(lr) else check_nonnegative("lr", lr)
        self.step = 0  # updates done so far
        self.state: dict[str, dict[str, Any]] | None = None

    def init(self, params: Mapping[str, Any]) -> None:
        """Create the state: one zero array per slot and parameter, like the parameter."""
        self.state = self._zero_state(params)

    def _zero_state(self, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            slot: {k: namespace(p).zeros_like(p) for k, p in params.items()} for slot in self.slots
        }

    def current_lr(self) -> float:
        """The learning rate the next update uses."""
        return float(self.lr(self.step)) if callable(self.lr) else self.lr

    def update(self, params: dict[str, Any], grads: Mapping[str, Any]) -> None:
        """Update every parameter in ``params`` from ``grads``: ``params[key]`` then holds it.

        All or nothing: :meth:`compute_update`, then :meth:`apply_update`.
        """
        self.apply_update(params, self.compute_update(params, grads))

    def compute_update(
        self, params: Mapping[str, Any], grads: Mapping[str, Any]
    ) -> OptimizerUpdate:
        """The update for ``grads``: every new array it needs, computed; nothing changes.

        Every gradient is checked first (names, shapes, backend and device).
        """
        for key, p in params.items():
            if key not in grads:
                raise KeyError(f"no gradient for parameter {key!r}; grads has {sorted(grads)}")
            g = grads[key]
            namespace(p, g)  # refuse a gradient from another backend or device, clearly
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(
                    f"gradient for {key!r} has shape {tuple(g.shape)}, parameter {tuple(p.shape)}"
                )
        state = self.state if self.state is not None else self._zero_state(params)
        lr, t = self.current_lr(), self.step + 1
        changes: dict[str, Change] = {}
        new_state: dict[str, dict[str, Any]] = {slot: {} for slot in self.slots}
        for key, p in params.items():
            current = [state[slot][key] for slot in self.slots]
            change, *values = self._apply(key, p, grads[key], lr, *current, t=t)
            if not writable(p):
                change = (("set", _changed(p, change, inplace=False)),)
            changes[key] = change
            for slot, value in zip(self.slots, values, strict=True):
                new_state[slot][key] = value
        return OptimizerUpdate(changes, new_state, t)

    def apply_update(self, params: dict[str, Any], update: OptimizerUpdate) -> None:
        """Store a computed update, with Ctrl-C held off: writable parameter arrays are
        changed in place (so the layers holding them see it), immutable ones replaced."""
        with deferred_interrupts():
            for key, change in update.changes.items():
                if change[0][0] == "set":
                    params[key] = change[0][1]
                else:
                    _changed(params[key], change, inplace=True)
            self.state, self.step = update.state, update.step

    def _apply(self, key: str, p: Any, g: Any, lr: float, *slots: Any, t: int) -> tuple:
        """``(change, *new_slots)`` for update number ``t`` (from 1): how ``p`` changes
        (:data:`Change`, e.g. ``minus(lr * g)``) and the slots' new arrays.

        A rule writes into nothing it is given (``p``, ``g``, a slot): only into its own
        temporaries (``a -= b`` rebinds ``a`` where arrays are immutable).
        """
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """``{'step': int, slot: {param name: array}}``; arrays stay on their backend.

        The arrays are copies: later updates may change the optimizer's arrays in place
        and must not change a state that was saved.
        """
        state: dict[str, Any] = {"step": self.step}
        for slot in self.slots:
            arrays = self.state[slot] if self.state is not None else {}
            state[slot] = {k: namespace(a).asarray(a, copy=True) for k, a in arrays.items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        """Restore a saved state onto the backend and device of ``params``.

        Host (NumPy) arrays from a checkpoint are copied onto the parameters' device;
        a state for other parameter names or shapes is refused, and the current state
        is then left as it was.  The arrays are copied, never shared with ``state``.
        """
        loaded: dict[str, dict[str, Any]] = {slot: {} for slot in self.slots}
        for slot in self.slots:
            saved = state.get(slot, {})
            if set(saved) != set(params):
                raise ValueError(
                    f"{type(self).__name__} state slot {slot!r} holds {sorted(saved)}, "
                    f"but the parameters are {sorted(params)}"
                )
            for key, p in params.items():
                value = saved[key]
                if tuple(value.shape) != tuple(p.shape):
                    raise ValueError(
                        f"saved {slot}[{key!r}] has shape {tuple(value.shape)}, "
                        f"parameter {tuple(p.shape)}"
                    )
                array = asarray(value, p.dtype, like=p)
                # asarray returns an array already on the right backend as is
                loaded[slot][key] = (
                    namespace(p).asarray(array, copy=True) if array is value else array
                )
        self.state, self.step = loaded, int(state["step"])

    def to(self, backend: Any = None, device: Any = None, dtype: Any = None) -> Optimizer:
        """Move the state's slots to another backend, device or float dtype (a copy
        through the host), as ``network.to`` moves the parameters; returns itself."""
        if self.state is not None:
            flat = {(slot, k): a for slot, arrays in self.state.items() for k, a in arrays.items()}
            moved = move(flat, backend, device, dtype)
            self.state = {
                slot: {k: moved[slot, k] for k in arrays} for slot, arrays in self.state.items()
            }
        return self

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters as JSON data (a schedule as ``{"schedule": name, ...}``).

        :func:`optimizer_from_config` builds the same optimizer from it.
        """
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key in ("state", "step"):
                continue
            if isinstance(value, Schedule) and dataclasses.is_dataclass(value):
                out[key] = schedule_to_config(value)
            elif isinstance(value, bool | int | float | str) or value is None:
                out[key] = value
            elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
                out[key] = list(value)
            else:
                out[key] = {"unserializable": repr(value)}
        return out

    def __repr__(self) -> str:
        hyper = {k: v for k, v in vars(self).items() if k not in ("state", "step")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in hyper.items())})"


class SGD(Optimizer):
    """Stochastic gradient descent: W <- W - lr * g."""

    def __init__(self, lr: float | Callable[[int], float] = 0.01) -> None:
        super().__init__(lr)

    def _apply(self, key, p, g, lr, *, t):
        return (minus(lr * g),)


class Momentum(Optimizer):
    """Momentum (Polyak 1964): v <- momentum*v - lr*g; W <- W + v."""

    slots = ("v",)

    def __init__(self, lr: float | Callable[[int], float] = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = check_fraction("momentum", momentum)

    def _apply(self, key, p, g, lr, v, *, t):
        v = v * self.momentum
        v -= lr * g
        return plus(v), v


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient (Sutskever et al. 2013; Bengio et al. 2012's form).

    W <- W + momentum^2 * v - (1 + momentum) * lr * g, then v <- momentum*v - lr*g.
    The book's code updates v first and then uses the new v in the W step, which is
    not Nesterov's method; this is the corrected order.
    """

    slots = ("v",)

    def __init__(self, lr: float | Callable[[int], float] = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = check_fraction("momentum", momentum)

    def _apply(self, key, p, g, lr, v, *, t):
        mu = self.momentum
        step = (mu * mu) * v
        step -= ((1.0 + mu) * lr) * g
        v = v * mu
        v -= lr * g
        return plus(step), v


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011): h <- h + g*g; W <- W - lr * g / (sqrt(h) + eps)."""

    slots = ("h",)

    def __init__(self, lr: float | Callable[[int], float] = 0.01, eps: float = EPS) -> None:
        super().__init__(lr)
        self.eps = check_nonnegative("eps", eps)

    def _apply(self, key, p, g, lr, h, *, t):
        gg = g * g
        gg += h  # = h + g*g: a + b rounds as b + a
        return minus(_scaled_step(lr, g, gg, self.eps)), gg


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012).

    h <- decay*h + (1 - decay)*g*g; W <- W - lr * g / (sqrt(h) + eps).
    """

    slots = ("h",)

    def __init__(
        self,
        lr: float | Callable[[int], float] = 0.01,
        decay_rate: float = 0.99,
        eps: float = EPS,
    ) -> None:
        super().__init__(lr)
        self.decay_rate = check_fraction("decay_rate", decay_rate)
        self.eps = check_nonnegative("eps", eps)

    def _apply(self, key, p, g, lr, h, *, t):
        h = h * self.decay_rate
        gg = g * g
        gg *= 1.0 - self.decay_rate
        h += gg
        return minus(_scaled_step(lr, g, h, self.eps)), h


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015).

    m <- m + (1-beta1)(g - m); v <- v + (1-beta2)(g*g - v);
    W <- W - lr_t * m / (sqrt(v) + eps), lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t).

    That is the book's form: the bias correction folded into the step size, so eps
    (1e-7) meets the uncorrected sqrt(v).  ``eps_after_bias_correction=True`` gives the
    paper's algorithm exactly, lr * m_hat / (sqrt(v_hat) + eps), usually with eps=1e-8.
    """

    slots = ("m", "v")

    def __init__(
        self,
        lr: float | Callable[[int], float] = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = EPS,
        eps_after_bias_correction: bool = False,
    ) -> None:
        super().__init__(lr)
        self.beta1, self.beta2 = check_fraction("beta1", beta1), check_fraction("beta2", beta2)
        self.eps = check_nonnegative("eps", eps)
        self.eps_after_bias_correction = eps_after_bias_correction

    def _apply(self, key, p, g, lr, m, v, *, t):
        dm = g - m
        dm *= 1.0 - self.beta1
        dm += m  # = m + (1-beta1)(g - m): a + b rounds as b + a
        m = dm
        dv = g * g
        dv -= v
        dv *= 1.0 - self.beta2
        dv += v
        v = dv
        c1, c2, root_c2 = _bias_corrections(self.beta1, self.beta2, t, m)
        if self.eps_after_bias_correction:
            step = _scaled_step(lr / c1, m, v, self.eps, root_c2)
        else:
            step = _scaled_step(lr * root_c2 / c1, m, v, self.eps)
        return minus(step), m, v


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam plus decoupled weight decay.

    W <- W - lr * weight_decay * W before the Adam step, for the parameters ``decay``
    names: by default :func:`weight_matrices` (``W1``, ``W2``, ...: the weights only, as
    the book's weight decay; biases and BN's gamma and beta are not decayed).  Pass
    ``decay`` as a collection of parameter names to choose others.  Uses the paper's
    epsilon placement and eps=1e-8.
    """

    def __init__(
        self,
        lr: float | Callable[[int], float] = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        decay: Collection[str] | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, eps_after_bias_correction=True)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.decay = None if decay is None else tuple(sorted(decay))

    def _apply(self, key, p, g, lr, m, v, *, t):
        change, m, v = super()._apply(key, p, g, lr, m, v, t=t)
        decayed = weight_matrices(key, p) if self.decay is None else key in self.decay
        if decayed and self.weight_decay:  # p * (1 - lr * weight_decay) first
            change = (("mul", 1.0 - lr * self.weight_decay), *change)
        return change, m, v


def functional_update(
    optimizer: Optimizer,
    params: Mapping[str, Any],
    grads: Mapping[str, Any],
    state: dict[str, dict[str, Any]],
    step: Any,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], Any]:
    """One update as a pure function of arrays: ``(new params, new state, new step)``.

    ``optimizer``'s rule with the ``state`` and ``step`` given (under ``jax.jit`` a 0-d
    array count, so Adam's bias correction is array math); the optimizer itself is
    left as it was, and nothing passed in changes (new arrays throughout).  For
    compiled loops, where the state must live in the arrays the loop carries.
    """
    saved = optimizer.state, optimizer.step
    try:
        optimizer.state, optimizer.step = state, step
        update = optimizer.compute_update(params, grads)
    finally:
        optimizer.state, optimizer.step = saved
    new_params = {
        key: change[0][1] if change[0][0] == "set" else _changed(params[key], change, False)
        for key, change in update.changes.items()
    }
    return new_params, update.state, update.step


def weight_matrices(name: str, p: Any) -> bool:
    """AdamW's default decay mask: the weight matrices, named ``W`` or ``W1``, ``W2``, ...

    The networks' (and the book's) names for the Affine layers' weights; biases ``b{i}``
    and normalisation's ``gamma{i}``/``beta{i}`` are not decayed.
    """
    return name == "W" or (name[:1] == "W" and name[1:].isdigit())


def _bias_corrections(beta1: float, beta2: float, t: Any, like: Any) -> tuple[Any, Any, Any]:
    """Adam's ``1 - beta1^t``, ``1 - beta2^t`` and the latter's square root.

    Python floats for a Python int ``t`` (the eager step, as always); for a 0-d array
    ``t`` (a compiled step's count) array math in ``like``'s dtype, so that nothing in
    the step is a number that changes from one step to the next.  In float32 it is
    ``-expm1(t * log(beta))``: there ``1 - beta2^t`` loses most of its digits (0.999^t
    rounds to 6e-8 of 1, and 1 - 0.999 is 1e-3: 6e-5 relative at t = 1), which put
    compiled float32 Adam runs 5-20x further from the float64 truth than eager ones.  In
    float64 it is the eager formula, ``1 - beta^t``: XLA's pow (JAX on the CPU) gives
    CPython's bits (measured for t up to 20,000, beta 0.8-0.999; NumPy's and torch's
    vectorised pow may differ by an ulp).  expm1 would be more accurate there, but
    1e-13 away from the eager numbers at small t: more than ``xpscratch check``'s
    float64 band allows on a 2-D Adam path (optimizer_zoo, compiled on JAX).
    """
    if isinstance(t, int):
        c2 = 1.0 - beta2**t
        return 1.0 - beta1**t, c2, math.sqrt(c2)
    xp = namespace(like)
    t = xp.astype(t, like.dtype)
    if like.dtype == xp.float64:
        c1, c2 = 1.0 - beta1**t, 1.0 - beta2**t
    else:
        c2 = -xp.expm1(t * math.log(beta2))  # the Python float meets the array in its dtype
        c1 = -xp.expm1(t * math.log(beta1))
    return c1, c2, xp.sqrt(c2)


def _scaled_step(scale: Any, x: Any, h: Any, eps: float, h_scale: Any = None) -> Any:
    """``scale * x / (sqrt(h) / h_scale + eps)``, evaluated in that order.

    On its own temporaries, in place where the library allows (``a /= b`` falls back to
    ``a = a / b`` on immutable arrays): that rounds exactly as the expression does
    (``a += b`` is ``a + b``; Python-float factors commute exactly), with two
    temporaries instead of four.
    """
    denom = namespace(h).sqrt(h)
    if h_scale is not None:
        denom /= h_scale
    denom += eps
    step = scale * x
    step /= denom
    return step


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def make_optimizer(name: str, **hyperparameters: Any) -> Optimizer:
    """An optimizer by (case-insensitive) name, as the book's Trainer chooses one."""
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}"
        ) from None
    return cls(**hyperparameters)


def optimizer_from_config(class_name: str, config: Mapping[str, Any]) -> Optimizer:
    """The optimizer that :meth:`Optimizer.get_config` describes (step 0, no state).

    Keys the class does not take (saved by another version) are ignored.
    """
    cls = OPTIMIZERS.get(str(class_name).lower())
    if cls is None:
        raise ValueError(
            f"cannot rebuild optimizer {class_name!r}; pass optimizer=... to Trainer.resume"
        )
    accepted = inspect.signature(cls).parameters
    kwargs = {}
    for key, value in config.items():
        if key not in accepted:
            continue
        if isinstance(value, dict) and "schedule" in value:
            value = schedule_from_config(value)
        elif isinstance(value, dict):
            raise ValueError(
                f"cannot rebuild the optimizer's {key}={value['unserializable']}; "
                "pass optimizer=... to Trainer.resume"
            )
        kwargs[key] = value
    return cls(**kwargs)
