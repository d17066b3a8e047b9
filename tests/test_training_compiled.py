"""Compiled training steps (xpscratch.training.compiled): the same numbers as eager steps."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

import xpscratch
from xpscratch.backend import compile_function, nudging_inputs, set_torch_threads
from xpscratch.networks import MultiLayerNetExtend
from xpscratch.optim import SGD, Adam, StepDecay
from xpscratch.random import RandomStream
from xpscratch.training import compiled
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
    if backend.name in ("jax", "torch"):
        pytest.skip("JAX compiles, and torch with compile=True (tests below)")
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
    if backend.name == "torch":  # "auto" leaves torch eager; True compiles it (below)
        assert _trainer(float_dtype, True).compiled_step is not None
        return
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


# -- torch.compile -------------------------------------------------------------------------
# The same pure step under torch.compile(fullgraph=True).  Inductor compiles C++ for each
# step: 10-60 s on a loaded 2-core machine, so every test that compiles is slow-tier
# (XPSCRATCH_SLOW_TESTS=1) and compiles at most twice; the default tier checks the choice.

slow_compile = pytest.mark.skipif(
    not os.environ.get("XPSCRATCH_SLOW_TESTS"),
    reason="torch.compile takes 10-60 s a step here: set XPSCRATCH_SLOW_TESTS=1",
)


@pytest.fixture
def torch_cpu():
    torch = pytest.importorskip("torch")
    set_torch_threads(1)
    with xpscratch.use_backend("torch", "cpu"):
        yield torch


def _graph_breaks(torch) -> int:
    return sum(torch._dynamo.utils.counters["graph_break"].values())


def test_torch_auto_stays_eager_naming_the_measurement_and_true_compiles(torch_cpu):
    """ "auto" leaves torch eager where the measurement says so, and the reason gives the
    measured ratios and compile times; compile=True compiles (on the first call)."""
    net, opt = _net("float32"), Adam(lr=0.05)
    auto = compile_step(net, opt)
    assert not auto.compiled
    for what, (ratio, compile_s, _) in compiled.TORCH_MEASURED.items():
        assert f"{ratio:.2f}x" in auto.reason and f"{compile_s:.0f} s" in auto.reason, what
    assert "compile=True compiles" in auto.reason
    forced = compile_step(net, opt, compile=True)
    assert forced.compiled and forced.reason is None and forced.compiles == 0
    with pytest.raises(ValueError, match="learning-rate schedule"):
        compile_step(net, SGD(lr=StepDecay(0.1, step_size=2, gamma=0.5)), compile=True)


@pytest.mark.slow
@slow_compile
def test_torch_compiled_draws_are_the_eager_bits(torch_cpu):
    """Dropout masks and permutations drawn inside a torch.compile'd function (the counter
    a 0-d int64 tensor: Inductor's C++ for the int64 Philox split) are the eager draws bit
    for bit, at counters that carry into the high bits, and it compiles once for all."""
    torch = torch_cpu
    xp, device = xpscratch.get_backend().xp, "cpu"
    stream = RandomStream(7, "test/compiled-draws")
    compiles = []

    def draw(counter):
        held = stream.counter
        stream.counter = counter  # a compiled step's counter: a 0-d array, its value unread
        try:
            mask = stream.keep_mask((16, 9), 0.3, xp=xp, device=device)
            return mask, stream.permutation(50, xp=xp, device=device)
        finally:
            stream.counter = held

    draw(xp.asarray(0))  # eagerly first, as a compiled step does: fills the host caches
    fn = compile_function(draw, xp, on_compile=lambda: compiles.append(1))
    for counter in (0, 1, 5, 2**31 - 1, 2**31, 2**32 - 2):
        mask, perm = fn(torch.tensor(counter))
        eager = RandomStream(7, "test/compiled-draws", counter)
        assert torch.equal(mask, eager.keep_mask((16, 9), 0.3, xp=xp, device=device)), counter
        assert torch.equal(perm, eager.permutation(50, xp=xp, device=device)), counter
    assert len(compiles) == 1 and stream.counter == 0


@pytest.mark.slow
@slow_compile
def test_torch_compiled_float64_matches_eager_and_never_recompiles(torch_cpu):
    """BN + dropout + Adam with weight decay, float64: the first five compiled steps against
    eager ones after every step (masks through the parameters and the stream counters,
    Adam's t and state, BN statistics: the silent freeze), then 300 steps within 1e-9
    relative; one compile, no graph break; and a checkpoint moves a run from compiled to
    eager steps and back (state_dicts) with the same numbers, still without a recompile."""
    torch = torch_cpu
    breaks = _graph_breaks(torch)
    kw = dict(weight_decay_lambda=0.01)
    eager_net, eager_opt = _net("float64", **kw), Adam(lr=0.01)
    net, opt = _net("float64", **kw), Adam(lr=0.01)
    step = compile_step(net, opt, compile=True)
    batches = [_batch("float64", seed=s) for s in range(4)]
    for i in range(300):
        x, t = batches[i % 4]
        grads = eager_net.gradient(x, t)
        expected = eager_net.last_layer.loss + eager_net._weight_decay()  # before the update
        eager_opt.update(eager_net.params, grads)
        loss = step(x, t)
        if i < 5:
            assert loss.shape == ()
            np.testing.assert_allclose(_np(loss), _np(expected), rtol=1e-12)
            assert (
                _counters(net, opt)
                == _counters(eager_net, eager_opt)
                == (i + 1, {"Dropout1": i + 1, "Dropout2": i + 1})
            )
            _assert_close(_state(net, opt), _state(eager_net, eager_opt), 1e-10)
    assert _counters(net, opt) == _counters(eager_net, eager_opt)
    _assert_close(_state(net, opt), _state(eager_net, eager_opt), 1e-9)
    # compiled -> eager: the compiled run's checkpoint continues eagerly
    resumed_net, resumed_opt = _net("float64", **kw), Adam(lr=0.01)
    resumed_net.load_state_dict(net.state_dict())
    resumed_opt.load_state_dict(opt.state_dict(), resumed_net.params)
    # eager -> compiled: the eager run's checkpoint, two steps on, loaded under the step
    saved = eager_net.state_dict(), eager_opt.state_dict()
    for i in range(2):
        x, t = batches[i]
        eager_opt.update(eager_net.params, eager_net.gradient(x, t))
        resumed_opt.update(resumed_net.params, resumed_net.gradient(x, t))
    _assert_close(_state(resumed_net, resumed_opt), _state(eager_net, eager_opt), 1e-9)
    net.load_state_dict(saved[0])
    opt.load_state_dict(saved[1], net.params)
    for i in range(2):
        step(*batches[i])
    assert _counters(net, opt) == _counters(eager_net, eager_opt)
    _assert_close(_state(net, opt), _state(eager_net, eager_opt), 1e-9)
    assert step.compiles == 1 and _graph_breaks(torch) == breaks


@pytest.mark.slow
@slow_compile
@pytest.mark.parametrize("kind", ["plain-sgd", "bn-dropout-adam"])
def test_torch_compiled_float32_stays_in_the_float64_truths_band(torch_cpu, kind):
    """30 float32 compiled steps land as close to the float64 truth as honest rounding
    does: within 4x the largest error of three eager float32 runs (one plain, two with
    their inputs nudged by an ulp, as the check's noise band) plus 4 ulps, array by array;
    for the plain SGD net and BN + dropout + Adam; one compile, no graph break.  (With
    Adam's bias correction as 1 - beta2^t in float32, compiled runs were 5-20x further.)"""
    torch = torch_cpu
    breaks = _graph_breaks(torch)

    def run(dtype, compile, nudge=None):
        with contextlib.nullcontext() if nudge is None else nudging_inputs(nudge):
            if kind == "plain-sgd":
                net, opt = _net(dtype, use_batchnorm=False, use_dropout=False), SGD(lr=0.1)
            else:
                net, opt = _net(dtype), Adam(lr=0.01)
            batches = [_batch(dtype, seed=s) for s in range(4)]
        step = compile_step(net, opt, compile=compile)
        for i in range(30):
            step(*batches[i % 4])
        assert step.compiled == compile and step.compiles == int(compile)
        return _state(net, opt)

    truth = run("float64", False)
    honest = [run("float32", False), run("float32", False, 1), run("float32", False, 2)]
    mine = run("float32", True)
    eps = float(np.finfo(np.float32).eps)
    over = {}
    for k, exact in truth.items():
        noise = max(float(np.max(np.abs(h[k] - exact))) for h in honest)
        band = 4.0 * noise + 4.0 * eps * np.abs(exact)
        over[k] = float(np.max(np.abs(mine[k] - exact) / band))
    assert max(over.values()) <= 1.0, over
    assert _graph_breaks(torch) == breaks


@pytest.mark.slow
@slow_compile
def test_torch_trainer_compiled_records_the_eager_run_and_resumes_eagerly(torch_cpu, tmp_path):
    """Trainer(compile=True) on torch (the step and its recorded loss as one graph, the
    evaluations eager between them): the eager run's losses, accuracies and state (float64,
    1e-10), one compile for its 8 steps; its checkpoint resumed eagerly for a third epoch
    ends where a three-epoch eager run does."""
    from xpscratch.training import Trainer

    x, t = _data()
    x, t = x[:64], t[:64]  # 4 full batches an epoch: one shape, one compile

    def trainer(compile, epochs):
        settings = dict(mini_batch_size=16, optimizer="adam", verbose=False)
        return Trainer(
            _net("float64"), x, t, x[:20], t[:20], epochs=epochs, compile=compile,
            optimizer_param={"lr": 0.05}, **settings,
        )  # fmt: skip

    eager, compiled_run = trainer(False, 2), trainer(True, 2)
    h1, h2 = eager.train(), compiled_run.train()
    np.testing.assert_allclose(h2.train_loss, h1.train_loss, rtol=1e-10)
    assert h2.train_acc == h1.train_acc and h2.test_acc == h1.test_acc
    mine, ref = compiled_run, eager
    _assert_close(_state(mine.network, mine.optimizer), _state(ref.network, ref.optimizer), 1e-10)
    assert compiled_run.compiled_step.compiles == 1
    path = tmp_path / "compiled.ckpt"
    compiled_run.save_checkpoint(path)
    rest = Trainer.resume(path, x, t, x[:20], t[:20], network=_net("float64"), epochs=3)
    assert rest.compiled_step is None
    rest.train()
    ref = trainer(False, 3)
    ref.train()
    _assert_close(_state(rest.network, rest.optimizer), _state(ref.network, ref.optimizer), 1e-10)


@pytest.mark.slow
@slow_compile
def test_torch_compiled_functions_each_have_their_own_recompile_limit(torch_cpu):
    """dynamo keeps its graphs on the code object and fails a fullgraph compile past 8 of
    them; every compiled step is one function (``_step_arrays``), so a search's ninth
    network failed.  Nine compiled copies of one function, each on its own shape, all run."""
    torch = torch_cpu

    def double(x):
        return x * 2

    for n in range(1, 10):
        fn = compile_function(double, xpscratch.get_backend().xp)
        assert torch.equal(fn(torch.ones(n)), torch.full((n,), 2.0)), n


def test_one_structure_on_jax_then_on_torch_gets_torchs_own_evaluation():
    """CI ran a JAX test, then torch's compiled Trainer on a network of the same structure
    in one process: the shared program cache, keyed by structure alone, handed torch's
    accuracy JAX's jitted program ("cannot interpret torch.Tensor as an abstract array")."""
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    x, t = _data()
    accuracies = []
    for name, device in (("jax", None), ("torch", "cpu")):
        with xpscratch.use_backend(name, device):
            net = _net("float32", hidden=(7, 3))
            step = compile_step(net, SGD(lr=0.1), compile=True)
            accuracies.append(step.accuracy(xpscratch.asarray(x), xpscratch.asarray(t)))
            assert accuracies[-1] == net.accuracy(xpscratch.asarray(x), xpscratch.asarray(t))
    assert accuracies[0] == accuracies[1]  # the same seeded weights on both libraries


def test_a_count_for_a_device_that_is_not_the_default_is_made_there_directly():
    """A step's counts and hyperparameters are made on the default device without
    ``device=`` (JAX's costs 10x); on another device that first array was made on the
    wrong device and again on the right one, at every change (a schedule: every step)."""
    import array_api_strict as xp

    device = xp.Device("device1")
    made = []

    class Counting:
        def __getattr__(self, name):
            return getattr(xp, name)

        def asarray(self, *args, **kwargs):
            made.append(kwargs.get("device"))
            return xp.asarray(*args, **kwargs)

    values = [compiled._host_value(v, xp.float64, Counting(), device) for v in (0.1, 0.2, 0.3)]
    assert all(v.device == device for v in values)
    assert [float(v) for v in values] == [0.1, 0.2, 0.3]
    assert made == [None, device, device, device]  # one probe of the default, then direct
    default = xp.asarray(0.0).device
    made.clear()
    assert compiled._host_value(2, xp.int64, Counting(), default).device == default
    assert made == [None]
