"""Compiled training steps: the book's objects traced into one program (``jax.jit``,
``torch.compile``).

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

Where it compiles: JAX (``jax.jit``), and torch (``torch.compile(fullgraph=True)``,
Inductor): with ``compile=True``, or "auto" where :data:`TORCH_MEASURED` shows that
compiling pays (on the CPU it does not for the book's run lengths: a compiled step is
faster, its compile takes 10-60 s; see the README's "Compiled steps").  Elsewhere
``compile_step`` runs the same step eagerly (``compiled`` is False).  CuPy runs eagerly
too: capturing the step in a CUDA graph is not proven on a GPU yet.  On torch a
learning-rate schedule (a number that changes per step) is not compiled yet:
``compile=True`` refuses it, "auto" runs such a step eagerly.

On JAX, one program per architecture and shape: the compiled function is shared by every
step whose network and optimizer have the same structure (classes, layer sizes and
settings, the dropout streams' seeds), so the networks of one experiment and the trials
of a search trace once.  The hyperparameters that runs vary (``lr``, ``momentum``,
AdamW's ``weight_decay``, the network's ``weight_decay_lambda``) are 0-d arrays passed
in, not numbers baked into the program: changing one (a search trial, a learning-rate
schedule) does not compile again.  Whether each is zero is part of the structure (the
code branches on it).
"""

from __future__ import annotations

import weakref
from typing import Any

import array_api_compat

from .._interrupts import deferred_interrupts
from ..backend import backend_name, compile_function, device_of, index_dtype, namespace
from ..functions import argmax_rows, check_labels
from ..layers import BatchNormalization, Dropout
from ..optim import Optimizer, functional_update
from ..random import RandomStream

__all__ = [
    "CompiledStep",
    "compile_step",
    "compile_reason",
    "compiled_permutation",
    "trace_count",
]


def compile_reason(network: Any, optimizer: Optimizer, *, forced: bool = False) -> str | None:
    """Why this network and optimizer are not compiled here (None: they are).

    ``forced`` (``compile=True``) compiles on torch even where "auto" leaves it eager
    because ``torch.compile`` measured slower than torch's eager step
    (:data:`TORCH_MEASURED`).
    """
    first = network.params[next(iter(network.params))]
    xp = namespace(first)
    name = backend_name(xp)
    if name == "cupy":
        return (
            "compiled steps run on JAX only; CuPy runs the step eagerly, because capturing "
            "it in a CUDA graph is not proven on a GPU yet"
        )
    if name not in ("jax", "torch"):
        return (
            f"compiled steps run on JAX only (and on torch: see the README's 'Compiled "
            f"steps'); the {name} backend runs the step eagerly"
        )
    if name == "torch" and callable(optimizer.lr):  # JAX takes lr as an array argument
        return (
            "a learning-rate schedule changes a number every step, which a compiled step "
            "cannot take yet; use a constant lr or compile=False"
        )
    if not hasattr(network, "layers") or not hasattr(network, "last_layer"):
        return "compile_step needs one of xpscratch's networks (layers and last_layer)"
    if name == "torch" and not forced:
        return _torch_auto_reason(device_of(first))
    return None


def _objects(network: Any, optimizer: Optimizer) -> list[Any]:
    objs = [network, optimizer, network.last_layer, *network.layers.values()]
    objs += [layer.stream for layer in network.layers.values() if isinstance(layer, Dropout)]
    return objs


# Hyperparameters passed to the program as 0-d arrays (what experiments and searches vary)
TRACED_OPTIMIZER = ("lr", "momentum", "weight_decay")
TRACED_NETWORK = ("weight_decay_lambda",)
# a network's config entries that only choose the first weights: not part of the program
_INIT_ONLY = ("seed", "weight_init_std", *TRACED_NETWORK)
# the layers' settings the program reads (a layer's other attributes are its arrays)
_LAYER_SETTINGS = ("dropout_ratio", "inverted", "momentum", "eps", "label_smoothing")


class _Scalar:
    """A traced hyperparameter in place of its Python float while the step traces.

    Arithmetic uses the 0-d array (``lr * g`` rounds as with the float: JAX takes a
    Python float in the array's dtype); truth is the host value's, which is part of
    the program's structure (``if lam:`` picks the code).  Arrays meeting it defer to
    its reflected operations, so no value is baked in by accident.
    """

    __slots__ = ("value", "truth")

    def __init__(self, value: Any, truth: bool) -> None:
        self.value, self.truth = value, truth

    def __bool__(self) -> bool:
        return self.truth

    def __neg__(self) -> Any:
        return -self.value

    def __add__(self, other: Any) -> Any:
        return self.value + _unwrap(other)

    def __radd__(self, other: Any) -> Any:
        return _unwrap(other) + self.value

    def __sub__(self, other: Any) -> Any:
        return self.value - _unwrap(other)

    def __rsub__(self, other: Any) -> Any:
        return _unwrap(other) - self.value

    def __mul__(self, other: Any) -> Any:
        return self.value * _unwrap(other)

    def __rmul__(self, other: Any) -> Any:
        return _unwrap(other) * self.value

    def __truediv__(self, other: Any) -> Any:
        return self.value / _unwrap(other)

    def __rtruediv__(self, other: Any) -> Any:
        return _unwrap(other) / self.value

    def __pow__(self, other: Any) -> Any:
        return self.value ** _unwrap(other)

    def __rpow__(self, other: Any) -> Any:
        return _unwrap(other) ** self.value


def _unwrap(x: Any) -> Any:
    return x.value if isinstance(x, _Scalar) else x


def _traced_names(obj: Any, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if isinstance(getattr(obj, n, None), float) or n == "lr"]


def hyperparameters(network: Any, optimizer: Optimizer) -> dict[str, float]:
    """The host values of the hyperparameters a compiled step takes as arrays."""
    out = {
        f"opt/{n}": float(getattr(optimizer, n))
        for n in _traced_names(optimizer, TRACED_OPTIMIZER)
        if n != "lr"
    }
    out["opt/lr"] = float(optimizer.current_lr())
    out.update({f"net/{n}": getattr(network, n) for n in _traced_names(network, TRACED_NETWORK)})
    return out


def network_structure(network: Any) -> tuple:
    """What a program reads of ``network`` besides its arrays (see :func:`structure`)."""
    config = getattr(network, "config", None)
    if not isinstance(config, dict):
        return ("instance", network)  # shares nothing: kept alive with its program
    layers = [network.last_layer, *network.layers.values()]
    return (
        type(network).__module__,
        type(network).__qualname__,
        repr(sorted((k, v) for k, v in config.items() if k not in _INIT_ONLY)),
        tuple(
            (
                type(la).__name__,
                tuple((n, getattr(la, n)) for n in _LAYER_SETTINGS if hasattr(la, n)),
            )
            for la in layers
        ),
        tuple((la.stream.seed, la.stream.purpose) for la in layers if isinstance(la, Dropout)),
    )


def structure(network: Any, optimizer: Optimizer, loss_after_update: bool) -> tuple:
    """What a compiled step's program depends on, besides its inputs' shapes and dtypes:
    equal structures share one program.  A network without a ``config`` shares none."""
    net = network_structure(network)
    traced = set(_traced_names(optimizer, TRACED_OPTIMIZER))
    opt = tuple(
        (k, "traced", k == "lr" or bool(v)) if k in traced else (k, v)
        for k, v in sorted(vars(optimizer).items())
        if k not in ("state", "step")
    )
    hyper = tuple((n, bool(getattr(network, n))) for n in _traced_names(network, TRACED_NETWORK))
    return (
        type(optimizer).__module__,
        type(optimizer).__qualname__,
        opt,
        net,
        hyper,
        loss_after_update,
    )


class _Program:
    """One shared compiled function per structure: ``compile_function`` (``jax.jit``) of
    :meth:`trace`, which traces through the step calling it now (``use`` sets it just
    before each call; JAX traces during the call, for a new shape or dtype)."""

    def __init__(self, key: tuple, method: str, xp: Any) -> None:
        self.key, self._method = key, method
        self._owner: Any = None
        self.function = compile_function(self.trace, xp)

    def use(self, owner: Any) -> Any:
        self._owner = weakref.ref(owner)
        return self.function

    def trace(self, *arrays: Any) -> Any:
        owner = self._owner() if self._owner is not None else None
        if owner is None:  # pragma: no cover - set by use() in the same call
            raise RuntimeError("a compiled program was traced without its step")
        return getattr(owner, self._method)(*arrays)


_PROGRAMS: dict[tuple, _Program] = {}  # structure -> its shared compiled function
_TRACES = [0]


def trace_count() -> int:
    """How many times training steps have been traced in this process (all steps; not
    the accuracies and shuffles, which are programs of their own)."""
    return _TRACES[0]


def _program(key: tuple, method: str, xp: Any) -> _Program:
    # keyed by library too: one structure on JAX and on torch is two programs
    key = (backend_name(xp), *key)
    program = _PROGRAMS.get(key)
    if program is None:
        program = _PROGRAMS[key] = _Program(key, method, xp)
    return program


_NOT_DEFAULT: set[tuple[str, str]] = set()  # (library, device): not the default device


def _host_value(host: Any, dtype: Any, xp: Any, device: Any) -> Any:
    """A host number as a 0-d array on ``device``, made once, where it belongs.

    On the default device ``device=`` is left out: JAX's costs 10x (a schedule's lr is
    made anew each step).  A device found not to be the default gets ``device=`` from
    then on, rather than an array made on the wrong device first, every time.
    """
    key = (backend_name(xp), str(device))
    if key not in _NOT_DEFAULT:
        value = xp.asarray(host, dtype=dtype)
        if device_of(value) == device:  # checked each time: the default can change
            return value
        _NOT_DEFAULT.add(key)
    return xp.asarray(host, dtype=dtype, device=device)


class _Shuffle:
    """The traced body of :func:`compiled_permutation` for one stream and size."""

    def __init__(self, seed: int, purpose: str, n: int, xp: Any, device: Any) -> None:
        self.seed, self.purpose, self.n, self.device = seed, purpose, n, device
        self.program = _Program(("permutation", seed, purpose, n, str(device)), "_pure", xp)

    def _pure(self, counter: Any) -> Any:
        stream = RandomStream(self.seed, self.purpose, counter)
        return stream.permutation(self.n, xp=namespace(counter), device=self.device)


_SHUFFLES: dict[tuple, _Shuffle] = {}


def compiled_permutation(stream: RandomStream, n: int, xp: Any, device: Any) -> Any:
    """``stream.permutation(n, xp=xp, device=device)`` on JAX as one program per stream
    and size (op by op it is hundreds of small operations, each compiled on first use):
    the same permutation, the counter passed in as an array.  Advances the counter."""
    key = (stream.seed, stream.purpose, int(n), str(device))
    shuffle = _SHUFFLES.get(key)
    if shuffle is None:
        shuffle = _SHUFFLES[key] = _Shuffle(stream.seed, stream.purpose, int(n), xp, device)
    counter = _host_value(stream.counter, index_dtype(xp, device), xp, device)
    order = shuffle.program.use(shuffle)(counter)
    stream.counter += 1
    return order


def _nan_if_not_finite(x: Any, *losses: Any) -> tuple[Any, ...]:
    """The losses, NaN where the batch holds a NaN or inf, as eagerly.

    XLA rewrites ReLU's ``x * (x > 0)`` as a select, which turns a NaN into 0: without
    this a NaN in the data would train on silently instead of stopping the run.
    """
    xp = namespace(x)
    finite = xp.all(xp.isfinite(x))
    return tuple(None if v is None else xp.where(finite, v, float("nan")) for v in losses)


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
        forced = compile is True
        reason = compile_reason(network, optimizer, forced=forced) if compile else "compile=False"
        if compile is True and reason is not None:
            raise ValueError(f"cannot compile this training step: {reason}")
        self.compiled = reason is None
        # the Trainer records the book's loss: network.loss(x, t) after the update, in the
        # same program (eagerly it would be a second op-by-op forward pass)
        self.loss_after_update = loss_after_update
        self.reason = reason
        self.compiles = 0
        self._jitted: Any = None  # torch
        self._fingerprint: Any = None
        self._device_counts: dict[str, tuple[Any, Any]] = {}

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

    def _pure(self, params, buffers, opt_state, count, counters, hyper, x, t):  # noqa: ANN001, ANN202
        self.compiles += 1  # runs only while tracing
        _TRACES[0] += 1
        out, loss, after = self._step_arrays(
            params, buffers, opt_state, count, counters, x, t, hyper
        )
        return out, *_nan_if_not_finite(x, loss, after)

    def _step_arrays(self, params, buffers, opt_state, count, counters, x, t, hyper=None):  # noqa: ANN001, ANN202
        network, optimizer = self.network, self.optimizer
        saved = [(obj, dict(vars(obj))) for obj in _objects(network, optimizer)]
        try:
            for key, value in (hyper or {}).items():
                owner, name = (optimizer, key[4:]) if key.startswith("opt/") else (network, key[4:])
                setattr(owner, name, _Scalar(value, bool(getattr(owner, name)) or name == "lr"))
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
            new_params, new_state, new_count = functional_update(
                optimizer, network.params, grads, opt_state, count
            )
            new_buffers = {
                name: (network.layers[name].running_mean, network.layers[name].running_var)
                for name in buffers
            }
            new_counters = {name: network.layers[name].stream.counter for name in counters}
            after = None
            if self.loss_after_update:
                network.params = dict(new_params)
                after = network.loss(x, t)  # train_flg=False: the new running statistics
            out = new_params, new_buffers, new_state, new_count, new_counters
            return out, loss, after
        finally:
            for obj, attributes in saved:
                vars(obj).clear()
                vars(obj).update(attributes)

    def _device_count(self, key: str, host: Any, like: Any, dtype: Any = None) -> Any:
        """The device copy of a host count (or hyperparameter, in ``dtype``), made again
        only when the host value moved."""
        held = self._device_counts.get(key)
        if held is not None and held[0] == host:
            return held[1]
        xp, device = namespace(like), device_of(like)
        dtype = index_dtype(xp, device) if dtype is None else dtype
        value = _host_value(host, dtype, xp, device)
        self._device_counts[key] = (host, value)
        return value

    def compute(self, x: Any, t: Any) -> tuple[Any, Any, Any]:
        """The step's new arrays, computed; nothing changes yet (:meth:`store` does).

        Returns ``(pending, training loss, loss after the update or None)``.
        """
        network, optimizer = self.network, self.optimizer
        xp = namespace(x)
        torch = backend_name(xp) == "torch"
        if torch:
            fingerprint = (
                tuple((k, v) for k, v in vars(optimizer).items() if k not in ("state", "step")),
                repr(getattr(network, "config", None)),
            )
            if self._jitted is None or fingerprint != self._fingerprint:
                self._jitted = _torch_compiled(self)
                self._fingerprint = fingerprint
        if optimizer.state is None:
            optimizer.init(network.params)
        like = x
        dropouts, norms = self._dropouts(), self._norms()
        count = self._device_count("step", optimizer.step, like)
        counters = {
            n: self._device_count(f"rng/{n}", la.stream.counter, like) for n, la in dropouts.items()
        }
        buffers = {n: (la.running_mean, la.running_var) for n, la in norms.items()}
        params = dict(network.params)
        # the compiled call changes nothing: an error or Ctrl-C in it leaves all as it was
        if torch:
            return self._jitted(params, buffers, optimizer.state, count, counters, x, t)
        dtype = params[next(iter(params))].dtype
        hyper = {
            n: self._device_count(n, v, like, dtype)
            for n, v in hyperparameters(network, optimizer).items()
        }
        program = _program(structure(network, optimizer, self.loss_after_update), "_pure", xp)
        return program.use(self)(params, buffers, optimizer.state, count, counters, hyper, x, t)

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

    def _pure_accuracy(self, params, buffers, x, t):  # noqa: ANN001, ANN202
        network = self.network
        saved = [(obj, dict(vars(obj))) for obj in [network, *network.layers.values()]]
        try:
            network.params = dict(params)
            for name, (mean, var) in buffers.items():
                layer = network.layers[name]
                layer.running_mean, layer.running_var = mean, var
            y = argmax_rows(network.predict(x, train_flg=False))
            xp = namespace(x)
            count = index_dtype(xp, device_of(x))
            return xp.sum(xp.astype(y == t, count), dtype=count)
        finally:
            for obj, attributes in saved:
                vars(obj).clear()
                vars(obj).update(attributes)

    def accuracy(self, x: Any, t: Any, batch_size: int | None = None) -> float:
        """``network.accuracy(x, t, batch_size)``, as one program per chunk shape where the
        step compiles (shared by structure, like the step); eagerly elsewhere."""
        network = self.network
        # torch compiles the step only: an accuracy program would cost another compile
        if not self.compiled or backend_name(namespace(x)) != "jax":
            return network.accuracy(x, t, batch_size)
        program = _program(("accuracy", network_structure(network)), "_pure_accuracy", namespace(x))
        function = program.use(self)
        n = x.shape[0]
        if t.ndim != 1:
            t = argmax_rows(t)
        step = n if batch_size is None else int(batch_size)
        buffers = {n_: (la.running_mean, la.running_var) for n_, la in self._norms().items()}
        params, correct = dict(network.params), 0
        for i in range(0, n, step):
            j = min(i + step, n)
            chunk = (x, t) if (i, j) == (0, n) else (x[i:j, ...], t[i:j])
            correct = correct + function(params, buffers, *chunk)
        return float(correct) / n

    def __call__(self, x: Any, t: Any) -> Any:
        """One step on the mini-batch ``(x, t)``; the training loss as a 0-d array (with
        ``loss_after_update``, the book's recorded loss: ``network.loss(x, t)`` after it)."""
        if not self.compiled:
            loss = self._eager(x, t)
            return self.network.loss(x, t) if self.loss_after_update else loss
        pending, loss, after = self.compute(x, t)
        with deferred_interrupts():
            self.store(pending)
        return after if self.loss_after_update else loss


# ---------------------------------------------------------------------------
# torch.compile: the same pure step, called so that it compiles once
# ---------------------------------------------------------------------------


# torch.compile'd steps on one CPU thread (benchmarks/, workload g: 784-100x5-10, batch 128,
# float32; README "Compiled steps"): compiled / eager time per step (paired rounds), the
# first call's compile time in seconds (Inductor's disk cache empty), the eager step in ms;
# a heavily loaded 2-core machine, so the times are long, the ratios hold.
TORCH_MEASURED = {
    "plain, SGD": (0.86, 44.0, 5.4),
    "BN + dropout 0.2, Adam": (0.67, 81.0, 15.3),
}
# "auto" compiles torch only where a compiled step is faster and earns its compile back
# within this many steps: a book experiment's run (optimizer_compare_mnist: 2,000 steps)
TORCH_AUTO_STEPS = 2_000


def _torch_break_even(ratio: float, compile_s: float, eager_ms: float) -> float:
    """Steps after which a compiled run has caught up with an eager one (inf: never)."""
    saved_s = eager_ms * (1.0 - ratio) / 1e3
    return compile_s / saved_s if saved_s > 0 else float("inf")


def _torch_auto_reason(device: Any) -> str | None:
    """Why "auto" leaves a torch step eager (None: compiling measured worth it)."""
    if getattr(device, "type", "cpu") != "cpu":
        return (
            f"torch.compile'd steps are not measured on {device} yet, so 'auto' runs "
            "them eagerly; compile=True compiles"
        )
    steps = {what: _torch_break_even(*m) for what, m in TORCH_MEASURED.items()}
    if all(n <= TORCH_AUTO_STEPS for n in steps.values()):
        return None
    measured = "; ".join(
        f"{what}: {ratio:.2f}x eager's time a step, {compile_s:.0f} s to compile, "
        f"{steps[what]:,.0f} steps to earn it back"
        for what, (ratio, compile_s, _) in TORCH_MEASURED.items()
    )
    if all(ratio < 1.0 for ratio, _, _ in TORCH_MEASURED.values()):
        why = (
            "on the CPU a torch.compile'd step is faster than an eager one, but its "
            f"compile costs more than a {TORCH_AUTO_STEPS:,}-step run gains"
        )
    else:
        why = "on the CPU a torch.compile'd step measured no faster than an eager one"
    return (
        f"{why} ({measured}; one thread, see the README's 'Compiled steps'), so 'auto' "
        "runs torch eagerly; compile=True compiles"
    )


def _torch_compiled(step: CompiledStep) -> Any:
    """``step._step_arrays`` under ``torch.compile(fullgraph=True)``, as ``(arrays) -> out``.

    Unlike ``jax.jit``, dynamo traces with real tensors and guards on every Python value
    the step reads; ``_step_arrays`` reads every attribute of the objects (to put them
    back), and some change from call to call: the optimizer's ``step`` and each stream's
    ``counter`` (host numbers), the arrays the objects hold (parameters bound to the
    layers, the last forward's caches: dynamo compares their identities with the step's
    inputs) and the shapes a layer keeps from its last forward (an evaluation's batch
    size).  Read as they are, a call would fail a guard and compile again.  So for the
    compiled call the host counts become the device counts the step carries, every array
    an object holds (or a dict of them) and every cache of a layer become None (the step
    sets what it reads from its arguments, and a layer is made with None caches), and
    afterwards everything is put back as it was.

    The first call runs the step once eagerly before compiling it (pure: it changes
    nothing), to fill the host caches it consults (array namespaces, writable types,
    Philox constants): dynamo would see them change after its first trace.  Labels in
    host memory are checked here, before the call (eagerly ``cross_entropy_error`` does;
    inside the graph a read would break it).
    """
    network, optimizer = step.network, step.optimizer
    xp = namespace(network.params[next(iter(network.params))])

    def counted() -> None:
        step.compiles += 1

    compiled = compile_function(step._step_arrays, xp, on_compile=counted)
    objects = _objects(network, optimizer)
    layers = {id(layer) for layer in (network.last_layer, *network.layers.values())}
    streams = {name: layer.stream for name, layer in step._dropouts().items()}
    classes = int(getattr(network, "output_size", 0))
    warm: list[bool] = []

    def call(*args: Any) -> Any:
        # (params, buffers, optimizer state, count, counters, ..., x, t): the step's own
        count, counters, t = args[3], args[4], args[-1]
        if classes and t.ndim == 1 and device_of(t).type == "cpu":
            check_labels(t, classes)
        if not warm:
            step._step_arrays(*args)  # eagerly, once: fills the host caches
            warm.append(True)
        saved = [(obj, dict(vars(obj))) for obj in objects]
        try:
            with deferred_interrupts():
                for obj, attributes in saved:
                    hide = _is_cache if id(obj) in layers else _holds_arrays
                    for key, value in attributes.items():
                        if hide(value):
                            setattr(obj, key, None)
                optimizer.step = count
                for name, stream in streams.items():
                    stream.counter, stream._ahead = counters[name], None
            return compiled(*args)
        finally:
            with deferred_interrupts():
                for obj, attributes in saved:
                    vars(obj).clear()
                    vars(obj).update(attributes)

    return call


def _is_cache(value: Any) -> bool:
    """What a layer keeps from its last forward: arrays, shapes, sizes (None when made);
    its settings are floats, bools and streams."""
    return _holds_arrays(value) or isinstance(value, tuple) or type(value) is int


def _holds_arrays(value: Any) -> bool:
    """An array, or a non-empty dict of arrays (or of such dicts): what the step passes in."""
    if isinstance(value, dict):
        return bool(value) and all(_holds_arrays(v) for v in value.values())
    return array_api_compat.is_array_api_obj(value)


def compile_step(
    network: Any,
    optimizer: Optimizer,
    *,
    compile: bool | str = "auto",
    loss_after_update: bool = False,
) -> CompiledStep:
    """A training step ``step(x, t) -> loss`` for ``network`` and ``optimizer``.

    Same effect as ``grads = network.gradient(x, t); optimizer.update(network.params,
    grads)``; compiled with ``jax.jit`` on JAX ("auto" and True) and with
    ``torch.compile`` on torch (True; "auto" where measured worth it), eager elsewhere
    (True refuses, naming why).  The first call on each shape compiles; on JAX steps of
    the same structure share the program (see the module's docstring).  The loss
    returned is the step's training loss, or with ``loss_after_update`` the book's
    recorded one, ``network.loss(x, t)`` after the update.
    """
    return CompiledStep(network, optimizer, compile=compile, loss_after_update=loss_after_update)
