"""Compiled training steps: the book's objects traced into one program (``jax.jit``).

``step = compile_step(network, optimizer)`` gives ``step(x, t) -> loss``, which has
the effect of ``grads = network.gradient(x, t); optimizer.update(network.params,
grads)`` and returns the step's training loss as a 0-d device array.  Under it is
one pure function of arrays::

    (params, BN statistics, optimizer state, step count t, dropout counters, x, t)
        -> (new params, new statistics, new state, t + 1, counters + 1, loss)

traced once per shape through the book's own code (``gradient``,
``compute_update``): while it traces, the objects hold the trace's arrays, and
afterwards every attribute is put back as it was.  The new arrays are then written
into the objects, with Ctrl-C held off, so the book's code keeps seeing
``network.params``, the running statistics, the optimizer's state and step, and each
dropout stream's counter (all or nothing: the compiled call itself changes nothing).

The step count and the dropout counters also live on the device, as 0-d arrays the
step carries from call to call: a step reads no value and copies nothing from the
host.  Their host values (``optimizer.step``, ``stream.counter``) advance in step; if
anything else changes them (a checkpoint loaded), the device copies are made again.

Where it compiles: JAX (``jax.jit``).  Elsewhere ``compile_step`` runs the same step
eagerly (``compiled`` is False).  torch is left eager on purpose: see the README's
"Compiled steps".  A learning-rate schedule (a number that changes per step) is not
compiled yet: ``compile=True`` refuses it, "auto" runs such a step eagerly.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._interrupts import deferred_interrupts
from ..backend import backend_name, device_of, index_dtype, namespace
from ..layers import BatchNormalization, Dropout
from ..optim import Optimizer, _changed

__all__ = ["CompiledStep", "compile_step", "compile_reason"]


def compile_reason(network: Any, optimizer: Optimizer) -> str | None:
    """Why this network and optimizer cannot be compiled here (None: they can)."""
    xp = namespace(network.params[next(iter(network.params))])
    name = backend_name(xp)
    if name != "jax":
        return (
            f"compiled steps run on JAX only; the {name} backend runs the step eagerly "
            "(torch.compile is not used: see the README's 'Compiled steps')"
        )
    if callable(optimizer.lr):
        return (
            "a learning-rate schedule changes a number every step, which a compiled step "
            "cannot take yet; use a constant lr or compile=False"
        )
    if not hasattr(network, "layers") or not hasattr(network, "last_layer"):
        return "compile_step needs one of xpscratch's networks (layers and last_layer)"
    return None


def _objects(network: Any, optimizer: Optimizer) -> list[Any]:
    objs = [network, optimizer, network.last_layer, *network.layers.values()]
    objs += [layer.stream for layer in network.layers.values() if isinstance(layer, Dropout)]
    return objs


class CompiledStep:
    """``step(x, t) -> loss``: one training step, compiled where possible.

    ``compiled`` tells whether it runs as one compiled program; ``compiles`` counts
    the traces so far (one per new input shape or dtype, or per change of a
    hyperparameter).
    """

    def __init__(
        self,
        network: Any,
        optimizer: Optimizer,
        *,
        compile: bool | str = "auto",
        loss_after_update: bool = False,
    ) -> None:
        if compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {compile!r}")
        self.network, self.optimizer = network, optimizer
        reason = compile_reason(network, optimizer) if compile else "compile=False"
        if compile is True and reason is not None:
            raise ValueError(f"cannot compile this training step: {reason}")
        self.compiled = reason is None
        # the Trainer records the book's loss: network.loss(x, t) after the update, in the
        # same program (eagerly it would be a second op-by-op forward pass)
        self.loss_after_update = loss_after_update
        self.reason = reason
        self.compiles = 0
        self._jitted: Any = None
        self._fingerprint: Any = None
        self._device_counts: dict[str, tuple[int, Any]] = {}

    # -- eager --------------------------------------------------------------

    def _eager(self, x: Any, t: Any) -> Any:
        network = self.network
        grads = network.gradient(x, t)
        loss = network.last_layer.loss
        if network.weight_decay_lambda:
            loss = loss + network._weight_decay()
        self.optimizer.update(network.params, grads)
        return loss

    # -- compiled -----------------------------------------------------------

    def _dropouts(self) -> dict[str, Dropout]:
        return {n: la for n, la in self.network.layers.items() if isinstance(la, Dropout)}

    def _norms(self) -> dict[str, BatchNormalization]:
        layers = self.network.layers.items()
        return {n: la for n, la in layers if isinstance(la, BatchNormalization)}

    def _pure(self, params, buffers, opt_state, count, counters, x, t):  # noqa: ANN001, ANN202
        network, optimizer = self.network, self.optimizer
        self.compiles += 1  # runs only while tracing
        saved = [(obj, dict(vars(obj))) for obj in _objects(network, optimizer)]
        try:
            network.params = dict(params)
            for name, (mean, var) in buffers.items():
                layer = network.layers[name]
                layer.running_mean, layer.running_var = mean, var
            optimizer.state, optimizer.step = opt_state, count
            for name, counter in counters.items():
                stream = network.layers[name].stream
                stream.counter, stream._ahead = counter, None
            grads = network.gradient(x, t)
            loss = network.last_layer.loss
            if network.weight_decay_lambda:
                loss = loss + network._weight_decay()
            update = optimizer.compute_update(network.params, grads)
            new_params = {}
            for key, change in update.changes.items():
                p = network.params[key]
                immutable = change[0][0] == "set"
                new_params[key] = change[0][1] if immutable else _changed(p, change, False)
            new_buffers = {
                name: (network.layers[name].running_mean, network.layers[name].running_var)
                for name in buffers
            }
            new_counters = {name: network.layers[name].stream.counter for name in counters}
            after = None
            if self.loss_after_update:
                network.params = dict(new_params)
                after = network.loss(x, t)  # train_flg=False: the new running statistics
            out = new_params, new_buffers, update.state, update.step, new_counters
            return out, loss, after
        finally:
            for obj, attributes in saved:
                vars(obj).clear()
                vars(obj).update(attributes)

    def _device_count(self, key: str, host: int, like: Any) -> Any:
        """The device copy of a host count, made again only when the host value moved."""
        held = self._device_counts.get(key)
        if held is not None and held[0] == host:
            return held[1]
        xp = namespace(like)
        value = xp.asarray(host, dtype=index_dtype(xp, device_of(like)), device=device_of(like))
        self._device_counts[key] = (host, value)
        return value

    def compute(self, x: Any, t: Any) -> tuple[Any, Any, Any]:
        """The step's new arrays, computed; nothing changes yet (:meth:`store` does).

        Returns ``(pending, training loss, loss after the update or None)``.
        """
        network, optimizer = self.network, self.optimizer
        fingerprint = (
            tuple((k, v) for k, v in vars(optimizer).items() if k not in ("state", "step")),
            repr(getattr(network, "config", None)),
        )
        if self._jitted is None or fingerprint != self._fingerprint:
            jax = importlib.import_module("jax")
            self._jitted, self._fingerprint = jax.jit(self._pure), fingerprint
        if optimizer.state is None:
            optimizer.init(network.params)
        like = x
        dropouts, norms = self._dropouts(), self._norms()
        count = self._device_count("step", optimizer.step, like)
        counters = {
            n: self._device_count(f"rng/{n}", la.stream.counter, like) for n, la in dropouts.items()
        }
        buffers = {n: (la.running_mean, la.running_var) for n, la in norms.items()}
        # the compiled call changes nothing: an error or Ctrl-C in it leaves all as it was
        return self._jitted(dict(network.params), buffers, optimizer.state, count, counters, x, t)

    def store(self, pending: Any) -> None:
        """Write a computed step into the objects (call it with Ctrl-C held off)."""
        network, optimizer = self.network, self.optimizer
        dropouts, norms = self._dropouts(), self._norms()
        new_params, new_buffers, state, new_count, new_counters = pending
        for key, value in new_params.items():
            network.params[key] = value
        for name, (mean, var) in new_buffers.items():
            norms[name].running_mean, norms[name].running_var = mean, var
        optimizer.state, optimizer.step = state, optimizer.step + 1
        self._device_counts["step"] = (optimizer.step, new_count)
        for name, counter in new_counters.items():
            stream = dropouts[name].stream
            stream.counter += 1  # a Dropout draws one mask per training forward
            self._device_counts[f"rng/{name}"] = (stream.counter, counter)

    def __call__(self, x: Any, t: Any) -> Any:
        """One step on the mini-batch ``(x, t)``; the training loss as a 0-d array."""
        if not self.compiled:
            return self._eager(x, t)
        pending, loss, _ = self.compute(x, t)
        with deferred_interrupts():
            self.store(pending)
        return loss


def compile_step(
    network: Any, optimizer: Optimizer, *, compile: bool | str = "auto"
) -> CompiledStep:
    """A training step ``step(x, t) -> loss`` for ``network`` and ``optimizer``.

    Same effect as ``grads = network.gradient(x, t); optimizer.update(network.params,
    grads)``; compiled with ``jax.jit`` on JAX ("auto" and True), eager elsewhere
    (True refuses, naming why).  The first call on each shape compiles.
    """
    return CompiledStep(network, optimizer, compile=compile)
