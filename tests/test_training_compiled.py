"""Compiled training steps (xpscratch.training.compiled): the same numbers as eager steps."""

from __future__ import annotations

import numpy as np
import pytest

import xpscratch
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.optim import SGD, Adam, StepDecay
from xpscratch.training.compiled import compile_step


def _net(dtype, hidden=(9, 8), **kw):
    # compiled programs are shared by structure: a test counting traces uses its own sizes
    settings = dict(use_batchnorm=True, use_dropout=True, dropout_ratio=0.3, seed=5)
    settings.update(kw)
    return MultiLayerNetExtend(12, list(hidden), 4, dtype=dtype, **settings)


def _batch(dtype, n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = xpscratch.asarray(rng.standard_normal((n, 12)), dtype=dtype)
    t = xpscratch.asarray(rng.integers(0, 4, n))
    return x, t


def _np(a):
    return xpscratch.to_numpy(a)


def _state(net, opt):
    out = {f"p/{k}": _np(v) for k, v in net.params.items()}
    out.update({f"bn/{k}": _np(v) for k, v in net._buffers().items()})
    for slot in opt.slots:
        out.update({f"{slot}/{k}": _np(v) for k, v in opt.state[slot].items()})
    return out


def _counters(net, opt):
    rng = net.state_dict()["rng"]
    return opt.step, {k: v["counter"] for k, v in rng.items()}


def _assert_close(a, b, rtol):
    # atol = rtol: the biases before BN have a zero gradient in exact arithmetic, so
    # they hold rounding noise (1e-13) whose digits are not comparable; all else is O(1)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=rtol, err_msg=k)


def test_no_python_state_freezes_under_tracing(backend, float_dtype):
    """Five compiled steps against five eager ones, compared after every step (1e-10): masks
    (through the parameters and the stream counters), Adam's t and state, BN statistics.
    Before the functional core the masks froze at the trace-time counter and t at 1."""
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("compiled vs eager to 1e-12 needs JAX's float64 (jax-x64)")
    eager_net, eager_opt = _net(float_dtype), Adam(lr=0.05)
    net, opt = _net(float_dtype), Adam(lr=0.05)
    step = compile_step(net, opt)
    assert step.compiled
    for i in range(5):
        x, t = _batch(float_dtype, seed=i % 2)  # two batches: same shapes, no retrace
        grads = eager_net.gradient(x, t)
        eager_opt.update(eager_net.params, grads)
        loss = step(x, t)
        assert loss.shape == ()
        np.testing.assert_allclose(_np(loss), _np(eager_net.last_layer.loss), rtol=1e-12)
        assert (
            _counters(net, opt)
            == _counters(eager_net, eager_opt)
            == (i + 1, {"Dropout1": i + 1, "Dropout2": i + 1})
        )
        _assert_close(_state(net, opt), _state(eager_net, eager_opt), 1e-10)
    assert step.compiles == 1


def test_a_long_float64_trajectory_matches_eager(backend, float_dtype):
    """300 steps of BN + dropout + Adam (weight decay on): within 1e-9 relative."""
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("compiled vs eager to 1e-9 needs JAX's float64 (jax-x64)")
    kw = dict(weight_decay_lambda=0.01)
    eager_net, eager_opt = _net(float_dtype, **kw), Adam(lr=0.01)
    net, opt = _net(float_dtype, **kw), Adam(lr=0.01)
    step = compile_step(net, opt)
    batches = [_batch(float_dtype, seed=s) for s in range(4)]
    for i in range(300):
        x, t = batches[i % 4]
        eager_opt.update(eager_net.params, eager_net.gradient(x, t))
        step(x, t)
    assert _counters(net, opt) == _counters(eager_net, eager_opt)
    _assert_close(_state(net, opt), _state(eager_net, eager_opt), 1e-9)


def test_no_transfer_inside_a_compiled_step(backend, float_dtype):
    """After the first call, a step copies nothing between host and device."""
    if backend.name != "jax":
        pytest.skip("jax.transfer_guard is JAX's")
    import jax

    net, opt = _net(float_dtype), Adam(lr=0.01)
    step = compile_step(net, opt)
    x, t = _batch(float_dtype)
    step(x, t)
    with jax.transfer_guard("disallow"):
        for _ in range(3):
            loss = step(x, t)
    assert np.isfinite(float(loss))


def test_a_compiled_run_continues_eagerly_and_back(backend, float_dtype):
    """Compiled and eager steps are interchangeable (checkpoints hold host counters)."""
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("needs JAX's float64")
    ref_net, ref_opt = _net(float_dtype), Adam(lr=0.05)
    net, opt = _net(float_dtype), Adam(lr=0.05)
    step = compile_step(net, opt)
    x, t = _batch(float_dtype)
    for i in range(9):
        ref_opt.update(ref_net.params, ref_net.gradient(x, t))
        if i in (3, 4, 6):
            opt.update(net.params, net.gradient(x, t))
        else:
            step(x, t)
    # a checkpoint loaded under it (counters moved back) is picked up by the next step
    saved_net, saved_opt = ref_net.state_dict(), ref_opt.state_dict()
    ref_opt.update(ref_net.params, ref_net.gradient(x, t))
    net.load_state_dict(saved_net)
    opt.load_state_dict(saved_opt, net.params)
    step(x, t)
    assert _counters(net, opt) == _counters(ref_net, ref_opt)
    _assert_close(_state(net, opt), _state(ref_net, ref_opt), 1e-10)


def test_a_failed_compiled_step_changes_nothing(backend, float_dtype):
    """An error in the compiled call leaves every object as it was."""
    if backend.name != "jax":
        pytest.skip("the compiled path is JAX's")
    net, opt = _net(float_dtype), Adam(lr=0.05)
    step = compile_step(net, opt)
    x, t = _batch(float_dtype)
    step(x, t)
    before, counters = _state(net, opt), _counters(net, opt)
    attributes = {name: dict(vars(layer)) for name, layer in net.layers.items()}
    bad = xpscratch.asarray(np.zeros((16, 5)), dtype=float_dtype)
    with pytest.raises(ValueError, match="input size must be 12"):
        step(bad, t)
    assert _counters(net, opt) == counters
    for k, v in _state(net, opt).items():
        assert np.array_equal(v, before[k]), k
    for name, layer in net.layers.items():
        assert vars(layer).keys() == attributes[name].keys()
        assert all(vars(layer)[k] is v for k, v in attributes[name].items()), name


def test_eager_backends_run_the_same_step(backend, float_dtype):
    """Off JAX the step is the eager one, bit for bit; compile=True refuses, naming why."""
    if backend.name == "jax":
        pytest.skip("JAX compiles")
    a_net, a_opt = _net(float_dtype), Adam(lr=0.05)
    b_net, b_opt = _net(float_dtype), Adam(lr=0.05)
    step = compile_step(b_net, b_opt)
    assert not step.compiled and "JAX only" in step.reason
    x, t = _batch(float_dtype)
    for _ in range(3):
        a_opt.update(a_net.params, a_net.gradient(x, t))
        loss = step(x, t)
    assert np.array_equal(_np(loss), _np(a_net.last_layer.loss))
    for k, v in _state(a_net, a_opt).items():
        assert np.array_equal(v, _state(b_net, b_opt)[k]), k
    with pytest.raises(ValueError, match="cannot compile this training step.*JAX only"):
        compile_step(b_net, b_opt, compile=True)


def test_a_schedule_compiles_once_and_is_followed(backend, float_dtype):
    """An lr schedule is a number passed in each step, not baked in: one trace, and the
    compiled steps follow the schedule as the eager ones do."""
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("compiled vs eager to 1e-10 needs JAX's float64")
    ref_net, ref_opt = _net(float_dtype, (9, 4)), SGD(lr=StepDecay(0.1, step_size=2, gamma=0.5))
    net, opt = _net(float_dtype, (9, 4)), SGD(lr=StepDecay(0.1, step_size=2, gamma=0.5))
    step = compile_step(net, opt, compile=True)
    x, t = _batch(float_dtype)
    for _ in range(5):
        ref_opt.update(ref_net.params, ref_net.gradient(x, t))
        step(x, t)
    assert step.compiles == 1
    _assert_close(_state(net, opt), _state(ref_net, ref_opt), 1e-10)
    with pytest.raises(ValueError, match="compile must be"):
        compile_step(net, opt, compile="yes")


def test_a_changed_hyperparameter_is_used_without_retracing(backend, float_dtype):
    """lr and weight decay are arrays passed in: changing them never runs stale numbers
    and compiles nothing new; whether weight decay is on is part of the program."""
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("needs JAX's float64")
    kw = dict(hidden=(9, 5), weight_decay_lambda=0.1)
    ref_net, ref_opt = _net(float_dtype, **kw), SGD(lr=0.1)
    net, opt = _net(float_dtype, **kw), SGD(lr=0.1)
    step = compile_step(net, opt)
    x, t = _batch(float_dtype)
    for lr, lam in ((0.1, 0.1), (0.1, 0.1), (0.02, 0.3), (0.02, 0.0)):
        ref_opt.lr = opt.lr = lr
        ref_net.weight_decay_lambda = net.weight_decay_lambda = lam
        ref_opt.update(ref_net.params, ref_net.gradient(x, t))
        step(x, t)
        _assert_close(_state(net, opt), _state(ref_net, ref_opt), 1e-10)
    assert step.compiles == 2  # the last lambda is 0: the decay's code is left out


def test_networks_of_one_architecture_share_one_trace(backend, float_dtype):
    """Three runs of one architecture and optimizer class, with other first weights, lr,
    momentum and weight decay (the networks of an experiment, a search's trials): one
    trace between them, each run equal to its eager twin.  A dropout stream with
    another seed is another program (its words are constants of the trace)."""
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("compiled vs eager to 1e-10 needs JAX's float64")
    from xpscratch.optim import Momentum

    x, t = _batch(float_dtype)
    steps = []
    for i, (lr, mu, lam) in enumerate(((0.1, 0.9, 0.01), (0.03, 0.5, 0.2), (0.2, 0.8, 0.05))):
        kw = dict(hidden=(9, 6), weight_init_std=0.1 * (i + 1), weight_decay_lambda=lam)
        ref_net, ref_opt = _net(float_dtype, **kw), Momentum(lr=lr, momentum=mu)
        net, opt = _net(float_dtype, **kw), Momentum(lr=lr, momentum=mu)
        step = compile_step(net, opt)
        for _ in range(2):
            ref_opt.update(ref_net.params, ref_net.gradient(x, t))
            step(x, t)
        _assert_close(_state(net, opt), _state(ref_net, ref_opt), 1e-10)
        steps.append(step)
    assert sum(s.compiles for s in steps) == 1
    ref_net, ref_opt = _net(float_dtype, hidden=(9, 6), seed=6), Momentum(lr=0.1)
    net, opt = _net(float_dtype, hidden=(9, 6), seed=6), Momentum(lr=0.1)
    other = compile_step(net, opt)
    ref_opt.update(ref_net.params, ref_net.gradient(x, t))
    other(x, t)
    assert other.compiles == 1
    _assert_close(_state(net, opt), _state(ref_net, ref_opt), 1e-10)


def _data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((70, 12))
    return x, rng.integers(0, 4, 70)


def _trainer(float_dtype, compile, **kw):
    from xpscratch.training import Trainer

    x, t = _data()
    settings = dict(epochs=2, mini_batch_size=16, optimizer="adam", verbose=False)
    settings.update(kw)
    return Trainer(
        _net(float_dtype),
        x,
        t,
        x[:20],
        t[:20],
        optimizer_param={"lr": 0.05},
        compile=compile,
        **settings,
    )


def test_the_trainer_compiles_and_records_the_same_run(backend, float_dtype, tmp_path):
    """Trainer(compile=True): the same losses, accuracies and state as eager (float64),
    and a checkpoint of a compiled run resumes eagerly (and back) to the same numbers."""
    if backend.name != "jax" or float_dtype != "float64":
        pytest.skip("compiled vs eager to 1e-10 needs JAX's float64")
    from xpscratch.training import Trainer

    eager, compiled = _trainer(float_dtype, False), _trainer(float_dtype, True)
    assert eager.compiled_step is None and compiled.compiled_step.compiled
    h1, h2 = eager.train(), compiled.train()
    np.testing.assert_allclose(h2.train_loss, h1.train_loss, rtol=1e-10)
    assert h2.train_acc == h1.train_acc and h2.test_acc == h1.test_acc
    _assert_close(
        _state(compiled.network, compiled.optimizer), _state(eager.network, eager.optimizer), 1e-10
    )
    # half a run compiled, saved, the rest eager; and the other way round
    for first, second in ((True, False), (False, True)):
        part = _trainer(float_dtype, first)
        for _ in range(5):
            part.train_step()
        path = tmp_path / f"{first}.ckpt"
        part.save_checkpoint(path)
        x, t = _data()
        rest = Trainer.resume(
            path, x, t, x[:20], t[:20], network=_net(float_dtype), compile=second, epochs=2
        )
        rest.train()
        _assert_close(
            _state(rest.network, rest.optimizer), _state(eager.network, eager.optimizer), 1e-10
        )


def test_the_trainer_refuses_to_compile_where_it_cannot(backend, float_dtype):
    if backend.name == "jax":
        assert _trainer(float_dtype, "auto").compiled_step is not None
        return
    assert _trainer(float_dtype, "auto").compiled_step is None
    with pytest.raises(ValueError, match="cannot compile this training step"):
        _trainer(float_dtype, True)


def test_a_nan_in_the_batch_gives_a_nan_loss(backend, float_dtype):
    """XLA turns ReLU's x * (x > 0) into a select that maps NaN to 0: the compiled
    step's losses must still be NaN for a batch holding one (the Trainer stops there)."""
    if backend.name != "jax":
        pytest.skip("the compiled path is JAX's")
    net, opt = _net(float_dtype, use_batchnorm=False, use_dropout=False), SGD(lr=0.1)
    x, t = _batch(float_dtype)
    bad = xpscratch.to_numpy(x).copy()
    bad[3, 2] = np.nan
    assert np.isfinite(_np(compile_step(net, opt)(x, t)))
    assert np.isnan(_np(compile_step(net, opt)(xpscratch.asarray(bad, dtype=float_dtype), t)))


def test_cupy_says_plainly_why_it_runs_eagerly(monkeypatch):
    """No CUDA-graph capture is proven on a GPU: CuPy's reason (shown by `xpscratch check`'s
    compiled group) says the step runs eagerly and why."""
    from xpscratch.training import compiled

    monkeypatch.setattr(compiled, "backend_name", lambda xp: "cupy")
    net = MultiLayerNetExtend(3, [2], 2, dtype="float64")
    reason = compiled.compile_reason(net, SGD())
    assert "CuPy runs the step eagerly" in reason and "CUDA graph" in reason
    assert "not proven on a GPU" in reason


def test_a_compiled_permutation_is_the_streams_own(backend):
    """epoch_order on JAX draws the permutation as one program: the very same order as
    the stream's op-by-op draw (NumPy's host reference), and the counter advances."""
    from xpscratch.random import RandomStream
    from xpscratch.training.batches import epoch_order

    for n, epoch in ((1, 0), (7, 3), (100, 0), (100, 1), (1001, 5)):
        want = RandomStream(9, "test/shuffle", epoch).permutation(n, xp=np)
        stream = RandomStream(9, "test/shuffle")
        got = epoch_order(stream, n, epoch=epoch, xp=backend.xp, device=backend.device)
        assert np.array_equal(_np(got), np.asarray(want)), (n, epoch)
        assert stream.counter == epoch + 1
