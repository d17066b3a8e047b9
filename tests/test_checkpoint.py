"""Checkpoints: exact resume, cross-backend resume, refusals, corruption and atomic saves."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import xpscratch
from xpscratch import checkpoint as ckpt
from xpscratch.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from xpscratch.networks import MultiLayerNet, MultiLayerNetExtend
from xpscratch.optim import Momentum
from xpscratch.schedules import StepDecay
from xpscratch.trainer import Trainer


def blobs(n: int = 90, d: int = 10, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    t = rng.integers(0, k, n)
    return centers[t] + rng.normal(size=(n, d)), t.astype(np.int64)


X, T = blobs()
XV, TV = blobs(30, seed=1)
X16, T16 = blobs(60, d=16, k=3)  # 4x4 "images" for the augmentation test
PLAIN = dict(use_batchnorm=False, use_dropout=False)
RICH = dict(use_batchnorm=True, use_dropout=True, dropout_ratio=0.2)


def make(net_seed=0, hidden=(8, 8), net_kw=PLAIN, dtype="float64", **kw):
    net = MultiLayerNetExtend(10, list(hidden), 4, dtype=dtype, seed=net_seed, **net_kw)
    kw.setdefault("optimizer", "SGD")
    kw.setdefault("optimizer_param", {"lr": 0.05})
    kw.setdefault("mini_batch_size", 16)
    kw.setdefault("verbose", False)
    tr = Trainer(net, X, T, X[:40], T[:40], x_val=XV, t_val=TV, **kw)
    return net, tr


def assert_same_run(a: Trainer, b: Trainer, rtol: float = 0.0, atol: float = 0.0) -> None:
    if rtol == 0.0:
        assert a.train_loss_list == b.train_loss_list
        assert a.train_acc_list == b.train_acc_list and a.test_acc_list == b.test_acc_list
        assert a.val_acc_list == b.val_acc_list
    else:
        np.testing.assert_allclose(a.train_loss_list, b.train_loss_list, rtol=rtol)
    sa, sb = a.network.state_dict(), b.network.state_dict()
    for group in ("params", "buffers"):
        assert sa[group].keys() == sb[group].keys()
        for k in sa[group]:
            ha, hb = xpscratch.to_numpy(sa[group][k]), xpscratch.to_numpy(sb[group][k])
            if rtol == 0.0:
                assert ha.tobytes() == hb.tobytes(), k  # bit for bit
            else:
                np.testing.assert_allclose(ha, hb, rtol=rtol, atol=atol, err_msg=k)
    assert sa["rng"] == sb["rng"]
    assert a.optimizer.step == b.optimizer.step and a.current_iter == b.current_iter


@pytest.mark.parametrize(
    "net_kw, opt",
    [(PLAIN, {}), (RICH, {"optimizer": "Adam", "optimizer_param": {"lr": 0.01}})],
    ids=["sgd", "bn-dropout-adam"],
)
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, net_kw, opt):
    _, straight = make(net_kw=net_kw, epochs=4, **opt)
    straight.train()

    path = tmp_path / "run.ckpt"
    _, first = make(net_kw=net_kw, epochs=2, **opt)
    first.train()
    first.save_checkpoint(path)
    # a different seed everywhere: everything that matters must come from the file
    _, second = make(net_seed=99, seed=5, net_kw=net_kw, epochs=4, **opt)
    second.load_checkpoint(path)
    second.train()
    assert_same_run(straight, second)
    assert len(second.train_loss_list) == 4 * straight.iter_per_epoch


def test_a_state_taken_does_not_change_when_training_goes_on(backend, float_dtype):
    """``s = tr.state_dict(); tr.train(); tr.load_state_dict(s)`` restored a mixture on
    numpy and torch: the parameters were the live arrays that updates write into, while
    the optimizer's slots were copies (issue 22)."""
    opt = {"optimizer": "Adam", "optimizer_param": {"lr": 0.01}}
    _, straight = make(net_kw=RICH, epochs=3, dtype=float_dtype, **opt)
    straight.train()
    _, tr = make(net_kw=RICH, epochs=3, dtype=float_dtype, **opt)
    for _ in range(7):
        tr.train_step()
    state, net_state = tr.state_dict(), tr.network.state_dict()
    taken = {k: xpscratch.to_numpy(v).tobytes() for k, v in net_state["params"].items()}
    tr.train()
    for k, v in net_state["params"].items():
        assert xpscratch.to_numpy(v).tobytes() == taken[k], k
    tr.load_state_dict(state)
    tr.train()
    assert_same_run(straight, tr)


def test_crash_mid_epoch_resumes_from_the_last_automatic_checkpoint(tmp_path):
    path = tmp_path / "auto.ckpt"
    # the early-stopping state and the best weights (epoch 1 here, before the last
    # checkpoint) must survive the crash too
    stop = dict(early_stopping_patience=5, restore_best=True)
    _, straight = make(net_kw=RICH, epochs=3, **stop)
    straight.train()
    assert straight.best_epoch == 1  # so that restoring needs the saved best weights

    net, crashing = make(net_kw=RICH, epochs=3, checkpoint_path=path, **stop)
    real, calls = net.gradient, []

    def gradient(x, t):
        calls.append(1)
        if len(calls) == 2 * crashing.iter_per_epoch + 3:  # inside epoch 3
            raise KeyboardInterrupt
        return real(x, t)

    net.gradient = gradient
    with pytest.raises(KeyboardInterrupt):
        crashing.train()
    assert load_checkpoint(path)["trainer"]["epoch"] == 2
    resumed = Trainer.resume(path, X, T, X[:40], T[:40], x_val=XV, t_val=TV, verbose=False)
    assert resumed.restore_best and resumed.early_stopping_patience == 5
    resumed.train()
    assert_same_run(straight, resumed)
    assert resumed.best_epoch == straight.best_epoch


def test_resume_in_the_middle_of_an_epoch_with_a_schedule(tmp_path):
    opt = lambda: Momentum(lr=StepDecay(0.05, step_size=7, gamma=0.5))  # noqa: E731
    _, straight = make(net_kw=RICH, epochs=3, optimizer=opt(), optimizer_param=None)
    straight.train()

    path = tmp_path / "mid.ckpt"
    _, first = make(net_kw=RICH, max_iterations=9, optimizer=opt(), optimizer_param=None)
    assert first.train().iterations == 9 and first.iter_in_epoch == 3  # 6 per epoch
    first.save_checkpoint(path)
    # network and optimizer rebuilt from the file (config, dtype, class, schedule)
    resumed = Trainer.resume(
        path, X, T, X[:40], T[:40], x_val=XV, t_val=TV, verbose=False, epochs=3, max_iterations=None
    )
    assert isinstance(resumed.optimizer, Momentum)
    assert resumed.optimizer.lr == StepDecay(0.05, step_size=7, gamma=0.5)
    resumed.train()
    assert_same_run(straight, resumed)


def test_automatic_checkpoints_every_n_epochs_and_at_the_end(tmp_path, monkeypatch):
    saved = []
    real = ckpt.save_checkpoint
    monkeypatch.setattr(
        ckpt,
        "save_checkpoint",
        lambda p, s, **kw: saved.append(s.current_epoch) or real(p, s, **kw),
    )
    path = tmp_path / "every2.ckpt"
    _, tr = make(epochs=5, checkpoint_path=path, checkpoint_every=2)
    tr.train()
    assert saved == [2, 4, 5]  # and at the end
    assert load_checkpoint(path)["trainer"]["epoch"] == 5
    assert os.listdir(tmp_path) == ["every2.ckpt"]
    saved.clear()
    _, tr = make(epochs=4, checkpoint_path=path, checkpoint_every=2)
    tr.train()
    assert saved == [2, 4]  # no second save of the same state


def _numpy_runs(tmp_dir: str) -> tuple[str, Trainer]:
    with xpscratch.use_backend("numpy"):
        _, straight = make(net_kw=RICH, epochs=4, optimizer="Adam", optimizer_param={"lr": 0.01})
        straight.train()
        _, first = make(net_kw=RICH, epochs=2, optimizer="Adam", optimizer_param={"lr": 0.01})
        first.train()
        path = os.path.join(tmp_dir, "numpy.ckpt")
        first.save_checkpoint(path)
    return path, straight


def test_mismatched_network_or_optimizer_is_refused_before_anything_changes(tmp_path):
    path = tmp_path / "a.ckpt"
    _, tr = make(net_kw=RICH, epochs=1)
    tr.train()
    tr.save_checkpoint(path)

    cases = [
        (
            dict(hidden=(8, 6), net_kw=RICH),
            r"hidden_size_list: checkpoint \[8, 8\] vs network \[8, 6\]",
        ),
        (dict(net_kw=dict(RICH, use_dropout=False)), "use_dropout"),
        (dict(net_kw=RICH, optimizer="Adam"), "trained with SGD, this trainer uses Adam"),
    ]
    for kwargs, message in cases:
        net, other = make(net_seed=3, epochs=1, **kwargs)
        before = {k: xpscratch.to_numpy(v).copy() for k, v in net.params.items()}
        with pytest.raises(ValueError, match=message):
            other.load_checkpoint(path)
        for k, v in net.params.items():  # nothing half-loaded
            np.testing.assert_array_equal(xpscratch.to_numpy(v), before[k])
        assert other.current_iter == 0 and other.train_loss_list == []

    # without a config (any network with state_dict): names and shapes are compared
    net, other = make(net_seed=3, hidden=(8, 6), net_kw=RICH, epochs=1)
    net.config = None
    with pytest.raises(ValueError, match=r"'W2' has shape \(8, 8\), this network's is \(8, 6\)"):
        other.load_checkpoint(path)
    # another training set: the shuffle would differ
    net = MultiLayerNetExtend(10, [8, 8], 4, dtype="float64", **RICH)
    other = Trainer(net, X[:50], T[:50], X, T, verbose=False)
    with pytest.raises(ValueError, match="trained on 90 samples, this trainer has 50"):
        other.load_checkpoint(path)


def test_truncated_or_corrupt_files_name_the_file(tmp_path):
    path = tmp_path / "good.ckpt"
    net0, tr = make(epochs=1)
    tr.train()
    tr.save_checkpoint(path)
    data = path.read_bytes()
    w1 = xpscratch.to_numpy(net0.params["W1"]).tobytes()
    flipped = bytearray(data)
    flipped[data.index(w1[:32]) + 5] ^= 0xFF  # a bit flip inside W1's bytes

    bad_files = {
        "truncated.ckpt": data[: len(data) // 2],
        "empty.ckpt": b"",
        "flipped.ckpt": bytes(flipped),
        "text.ckpt": b"not a checkpoint at all\n" * 10,
    }
    for name, content in bad_files.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        net, other = make(net_seed=4, epochs=1)
        before = xpscratch.to_numpy(net.params["W1"]).copy()
        with pytest.raises(CheckpointError, match=name) as info:
            other.load_checkpoint(bad)
        assert isinstance(info.value, ValueError)
        np.testing.assert_array_equal(xpscratch.to_numpy(net.params["W1"]), before)

    other_npz = tmp_path / "other.npz"
    np.savez(other_npz, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="other.npz.*not an xpscratch checkpoint"):
        load_checkpoint(other_npz)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_save_leaves_the_previous_checkpoint_and_no_temp_file(
    tmp_path, monkeypatch, error
):
    path = tmp_path / "keep.ckpt"
    _, tr = make(epochs=1)
    tr.train()
    tr.save_checkpoint(path)
    good = path.read_bytes()

    def broken_writer(f, arrays):
        f.write(b"PK\x03\x04 half of a zip file")  # then the disk fills up, or ^C
        raise error("disk full")

    tr.epochs, tr.max_iter = 2, 2 * tr.iter_per_epoch
    tr.train()
    monkeypatch.setattr(ckpt, "_write", broken_writer)
    with pytest.raises(error, match="disk full"):
        tr.save_checkpoint(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["keep.ckpt"]
    assert load_checkpoint(path)["trainer"]["epoch"] == 1


def test_file_format_is_plain_npz_with_json_metadata(tmp_path):
    path = tmp_path / "fmt.ckpt"
    _, tr = make(net_kw=RICH, epochs=1, optimizer="Adam", optimizer_param={"lr": 0.01})
    tr.train()
    tr.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as npz:  # no pickles: safe to open
        meta = json.loads(str(npz["__meta__"][()]))
        arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
    assert meta["format"] == "xpscratch-checkpoint" and meta["format_version"] == 1
    assert meta["xpscratch_version"] == xpscratch.__version__
    assert meta["backend"] == xpscratch.get_backend().name and meta["dtype"] == "float64"
    assert meta["network"]["config"]["hidden_size_list"] == [8, 8]
    opt = meta["optimizer"]
    assert opt["class"] == "Adam" and opt["hyperparameters"]["lr"] == 0.01
    assert opt["step"] == tr.iter_per_epoch
    assert set(opt["state"]) == {"step", "m", "v"}
    assert meta["network"]["state"]["rng"] == {
        "Dropout1": {"seed": 0, "purpose": "dropout/1", "counter": tr.iter_per_epoch},
        "Dropout2": {"seed": 0, "purpose": "dropout/2", "counter": tr.iter_per_epoch},
    }
    assert meta["trainer"]["shuffle_rng"]["purpose"] == "trainer/shuffle"
    assert meta["trainer"]["epoch"] == 1 and meta["trainer"]["iter_in_epoch"] == 0
    assert meta["history"]["train_loss"] == tr.train_loss_list
    w1 = meta["network"]["state"]["params"]["W1"]
    assert w1["shape"] == [10, 8] and w1["dtype"] == "float64"
    w1_now = xpscratch.to_numpy(tr.network.params["W1"])
    np.testing.assert_array_equal(arrays[w1["__array__"]], w1_now)
    # 6 params + 4 BN gamma/beta + 4 running stats + 2 Adam slots x 10 params
    assert len(arrays) == 10 + 4 + 20


def test_save_and_load_a_plain_state_dict(tmp_path):
    _, tr = make(epochs=1)
    tr.train()
    state = tr.state_dict()
    save_checkpoint(tmp_path / "s.ckpt", state)
    back = load_checkpoint(tmp_path / "s.ckpt")
    assert back["history"] == state["history"]
    for k, v in state["network"]["state"]["params"].items():
        assert isinstance(back["network"]["state"]["params"][k], np.ndarray)
        np.testing.assert_array_equal(back["network"]["state"]["params"][k], xpscratch.to_numpy(v))


def test_plain_multilayernet_resumes_without_network_argument(tmp_path):
    net = MultiLayerNet(10, [6], 4, dtype="float64")
    tr = Trainer(net, X, T, X, T, epochs=1, mini_batch_size=30, verbose=False)
    tr.train()
    tr.save_checkpoint(tmp_path / "p.ckpt")
    resumed = Trainer.resume(tmp_path / "p.ckpt", X, T, X, T, epochs=2, verbose=False)
    assert type(resumed.network) is MultiLayerNet and resumed.network.config == net.config
    resumed.train()
    tr.epochs, tr.max_iter = 2, 2 * tr.iter_per_epoch
    tr.train()
    assert_same_run(tr, resumed)


def test_resume_with_augmentation_continues_the_same_augmented_batches(tmp_path):
    from xpscratch.augment import RandomShiftRotate

    def run(epochs, augment_seed=7):
        net = MultiLayerNet(16, [8], 3, seed=3, dtype="float64")
        aug = RandomShiftRotate(1.0, 20.0, seed=augment_seed, image_shape=(4, 4))
        tr = Trainer(net, X16, T16, X16, T16, epochs=epochs, mini_batch_size=16,
                     optimizer_param={"lr": 0.1}, verbose=False, seed=11, augment=aug)  # fmt: skip
        return tr

    straight = run(4)
    straight.train()
    first = run(2)
    first.train()
    path = tmp_path / "aug.ckpt"
    first.save_checkpoint(path)
    second = run(4, augment_seed=99)  # the augment stream's position comes from the file
    second.load_checkpoint(path)
    second.train()
    assert_same_run(straight, second)
    assert second.augment.stream.seed == 7

    net = MultiLayerNet(16, [8], 3, seed=3, dtype="float64")
    without = Trainer(net, X16, T16, X16, T16, epochs=4, mini_batch_size=16, verbose=False)
    before = xpscratch.to_numpy(net.params["W1"]).copy()
    with pytest.raises(ValueError, match="augment"):
        without.load_checkpoint(path)
    np.testing.assert_array_equal(xpscratch.to_numpy(net.params["W1"]), before)


def test_a_npy_or_a_checkpoint_without_a_run_is_a_clear_error(tmp_path):
    """Were TypeError (a .npy) and KeyError: 'network' (in Trainer.resume) (issue 13)."""
    npy = tmp_path / "weights.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(CheckpointError, match="weights.npy.*not an xpscratch checkpoint.*npy"):
        load_checkpoint(npy)
    no_run = tmp_path / "no_run.ckpt"
    save_checkpoint(no_run, {"network": {"weights": np.zeros(3)}})
    for load in (
        lambda p: load_checkpoint(p),
        lambda p: Trainer.resume(p, X, T, X[:40], T[:40]),
        lambda p: make()[1].load_checkpoint(p),
    ):
        with pytest.raises(CheckpointError, match="no_run.ckpt.*holds no training run .missing "
                           "optimizer, trainer, history"):  # fmt: skip
            load(no_run)
        with pytest.raises(CheckpointError, match="weights.npy"):
            load(npy)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_save_checkpoint_itself_never_writes_a_diverged_run_over_a_file(tmp_path):
    """The public ``save_checkpoint(path, trainer)`` and ``save_checkpoint(path,
    tr.state_dict())`` wrote a NaN-loss run over a good checkpoint (issue 22): the guard
    lives where every save passes."""
    _, tr = make(epochs=3, optimizer_param={"lr": 1e6})
    good = tmp_path / "good.npz"
    save_checkpoint(good, tr)  # before any update
    before = good.read_bytes()
    with pytest.raises(FloatingPointError):
        tr.train()
    for what in (tr, tr.state_dict()):
        with pytest.raises(ckpt.DivergedRunError, match="not saved to .*good.npz.*allow_diverged"):
            save_checkpoint(good, what)
        with pytest.raises(FileExistsError, match="diverged"):
            save_checkpoint(good, what, allow_diverged=True)
    assert good.read_bytes() == before
    save_checkpoint(tmp_path / "kept.npz", tr, allow_diverged=True)
    losses = load_checkpoint(tmp_path / "kept.npz")["history"]["train_loss"]
    assert not all(np.isfinite(losses))
    # NaN weights with a finite loss history (a hand-made state) are refused too
    state = load_checkpoint(good)
    w = next(iter(state["network"]["state"]["params"]))
    state["network"]["state"]["params"][w] = np.full_like(
        state["network"]["state"]["params"][w], np.nan
    )
    with pytest.raises(ckpt.DivergedRunError, match="1 of the saved arrays"):
        save_checkpoint(good, state)
    assert good.read_bytes() == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["trainer"].update(iteration=10**6), "loss history of 12 losses for 1000000"),
        (lambda s: s["trainer"].update(iteration=-5), "iteration is -5"),
        (lambda s: s["trainer"].update(epoch=1.5), "epoch is 1.5"),
        (lambda s: s["history"].update(train_loss=s["history"]["train_loss"][:-3]), "9 losses"),
        (lambda s: s["trainer"].update(iter_in_epoch=99), "99 updates into an epoch of 6"),
        (lambda s: s["trainer"].update(epoch=20), "20 epochs done in 12 updates"),
    ],
)
def test_inconsistent_counters_are_refused_before_anything_changes(tmp_path, edit, message):
    """An edited or damaged file's counters were accepted, and some failed later inside
    train() with a reshape error (issue 22)."""
    _, tr = make(epochs=2)
    tr.train()
    state = tr.state_dict()
    edit(state)
    _, other = make(net_seed=3, epochs=2)
    before = xpscratch.to_numpy(next(iter(other.network.params.values()))).tobytes()
    with pytest.raises(ValueError, match=message):
        other.load_state_dict(state)
    assert xpscratch.to_numpy(next(iter(other.network.params.values()))).tobytes() == before
    assert other.current_iter == 0


def test_ctrl_c_while_a_checkpoint_loads_waits_until_it_is_whole(
    tmp_path, monkeypatch, python_sigint
):
    """A Ctrl-C during load_checkpoint left the checkpoint's weights with the other run's
    counters, optimizer and history (issue 22): loading is all or nothing."""
    import signal

    path = tmp_path / "run.npz"
    _, saved = make(epochs=2, optimizer="Adam", optimizer_param={"lr": 0.01})
    saved.train()
    saved.save_checkpoint(path)
    _, tr = make(net_seed=7, epochs=2, optimizer="Adam", optimizer_param={"lr": 0.01})
    real = type(tr.network).load_state_dict

    def load_then_ctrl_c(self, state, strict=True):
        out = real(self, state, strict)  # the weights are in: the counters are not yet
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # Python runs its handler between these bytecodes
            pass
        return out

    monkeypatch.setattr(type(tr.network), "load_state_dict", load_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        tr.load_checkpoint(path)
    assert_same_run(saved, tr)  # wholly loaded: weights, counters, optimizer, history


@pytest.mark.parametrize(("verbose", "progress"), [(False, None), (True, False), (False, True)])
def test_resume_keeps_the_runs_verbosity_and_progress_bar(tmp_path, verbose, progress):
    """A run trained with verbose=False came back verbose, with a progress bar (issue 22)."""
    from xpscratch.training.callbacks import Progress

    path = tmp_path / "run.npz"
    _, tr = make(epochs=2, verbose=verbose, progress=progress)
    tr.save_checkpoint(path)
    back = Trainer.resume(path, X, T, X[:40], T[:40], x_val=XV, t_val=TV)
    assert back.verbose == verbose
    has_bar = verbose if progress is None else progress
    assert any(isinstance(cb, Progress) for cb in back.callbacks) == has_bar


def test_resume_refuses_another_dtype_naming_the_fix(tmp_path):
    """A float32 checkpoint loaded into a float64 network without a word (issue 22 item 6)."""
    _, tr = make(dtype="float32", epochs=1)
    tr.train()
    tr.save_checkpoint(tmp_path / "f32.ckpt")
    net, other = make(dtype="float64", epochs=1)
    before = {k: xpscratch.to_numpy(v).copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match=r"trained in float32.*dtype='float32'"):
        other.load_checkpoint(tmp_path / "f32.ckpt")
    for k, v in net.params.items():
        np.testing.assert_array_equal(xpscratch.to_numpy(v), before[k])
    with pytest.raises(ValueError, match="trained in float32"):
        Trainer.resume(tmp_path / "f32.ckpt", X, T, X[:40], T[:40], network=net, verbose=False)
    Trainer.resume(tmp_path / "f32.ckpt", X, T, X[:40], T[:40], verbose=False)  # rebuilt


def test_resume_refuses_other_training_data_of_the_same_size_unless_asked(tmp_path):
    """Other data of the same size resumed silently (issue 22 item 6): the checkpoint keeps
    a fingerprint of the training set; new_data=True continues on other data on purpose."""
    _, tr = make(epochs=1)
    tr.train()
    tr.save_checkpoint(tmp_path / "d.ckpt")
    x2 = X.copy()
    x2[17, 3] += 1e-9  # one value, barely
    for x_other, t_other in ((x2, T), (X, (T + 1) % 4)):
        with pytest.raises(ValueError, match="other training data.*new_data=True"):
            Trainer.resume(tmp_path / "d.ckpt", x_other, t_other, X, T, verbose=False)
        resumed = Trainer.resume(
            tmp_path / "d.ckpt", x_other, t_other, X, T, verbose=False, new_data=True
        )
        assert resumed.current_iter == tr.current_iter
    same = Trainer.resume(tmp_path / "d.ckpt", X.copy(), T.copy(), X, T, verbose=False)
    assert same.current_iter == tr.current_iter
    _, fresh = make(epochs=1)
    fresh.x_train = xpscratch.asarray(x2, "float64")
    with pytest.raises(ValueError, match="other training data"):
        fresh.load_state_dict(tr.state_dict())


# --- hostile files (issue 22 item 15): sizes are checked before anything is inflated ---


def _npy(shape, dtype, data: bytes) -> bytes:
    """An .npy member whose header says ``shape``/``dtype``, followed by ``data``."""
    import io

    f = io.BytesIO()
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(f, header)
    return f.getvalue() + data


def _hostile(tmp_path, name, edit_meta, slot=None, deflate=False):
    """A saved run rewritten: ``edit_meta(meta)`` (or the JSON text it returns) as the
    metadata, and ``slot`` (.npy bytes, or an iterable of chunks) as the member of Adam's
    first moment of W1, deflated if asked."""
    import zipfile

    good = tmp_path / "good.ckpt"
    _, tr = make(epochs=1, optimizer="Adam", optimizer_param={"lr": 0.01})
    tr.train()
    tr.save_checkpoint(good)
    with np.load(good) as npz:
        meta = json.loads(str(npz["__meta__"][()]))
        arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
    slot_key = _slot(meta)["__array__"]
    text = edit_meta(meta)
    text = text if isinstance(text, str) else json.dumps(meta)
    out = tmp_path / name
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("__meta__.npy", _npy((), f"<U{len(text)}", text.encode("utf-32-le")))
        for key, a in arrays.items():
            if key != slot_key or slot is None:
                zf.writestr(key + ".npy", _npy(a.shape, a.dtype, a.tobytes()))
                continue
            info = zipfile.ZipInfo(key + ".npy")
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as f:
                for chunk in [slot] if isinstance(slot, bytes) else slot:
                    f.write(chunk)
    return out


def _slot(meta):
    """The manifest entry of Adam's first moment of W1 (an optimizer slot)."""
    return meta["optimizer"]["state"]["m"]["W1"]


def _load_refused(path, match):
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"{peak:,} bytes allocated before the refusal"


def test_a_small_checkpoint_that_inflates_to_hundreds_of_mb_is_refused_before_inflating(
    tmp_path,
):
    """A 1 MB checkpoint expanded to 1.1 GB when loaded (issue 22 item 15): here 256 MiB of
    deflated zeros in one optimizer slot, a file of about 250 KB."""
    n = 64 << 20  # float32 numbers: 256 MiB

    def bomb(meta):
        _slot(meta).update(shape=[n], dtype="float32")

    chunks = [_npy((n,), "float32", b""), *[bytes(8 << 20)] * ((4 * n) >> 23)]
    path = _hostile(tmp_path, "bomb.ckpt", bomb, chunks, deflate=True)
    assert path.stat().st_size < 1 << 20
    _load_refused(path, r"bomb.ckpt.*inflate to 268,[0-9,]+ bytes from a [0-9,]+-byte file")


def test_an_array_larger_than_the_network_implies_is_refused(tmp_path):
    """Within the inflation bound but larger than any weight of the saved network (10x8):
    an optimizer slot of 1 MiB, stored uncompressed, is refused before it is read."""
    n = 1 << 17

    def big(meta):
        _slot(meta).update(shape=[n], dtype="float64")

    path = _hostile(tmp_path, "big.ckpt", big, _npy((n,), "float64", bytes(8 * n)))
    with pytest.raises(CheckpointError, match=r"big.ckpt.*'a[0-9]+' claims float64\[131072\], more "
                       r"than the network's largest weight \(80 numbers\)"):  # fmt: skip
        load_checkpoint(path)

    def wide(meta):
        meta["network"]["config"]["input_size"] = 10**9  # a network of 8 GB, 10x8 stored

    path = _hostile(tmp_path, "wide.ckpt", wide)
    with pytest.raises(CheckpointError, match=r"wide.ckpt.*implies W1 of shape \[1000000000, 8\]"):
        load_checkpoint(path)
        Trainer.resume(path, X, T, X[:40], T[:40], verbose=False)


@pytest.mark.parametrize("config", [True, False], ids=["book-network", "no-config"])
def test_a_header_that_claims_a_huge_array_is_refused_naming_the_file(tmp_path, config):
    """A header claiming a huge array gave a raw MemoryError (issue 22 item 15)."""
    n = 1 << 40  # 8 TiB of float64 claimed; 8 bytes there

    def huge(meta):
        _slot(meta).update(shape=[n], dtype="float64")
        if not config:
            meta["network"]["config"] = None  # only the header can tell

    path = _hostile(tmp_path, "huge.ckpt", huge, _npy((n,), "float64", bytes(8)))
    _load_refused(path, r"huge.ckpt.*(claims float64\[1099511627776\]|largest weight)")
    if not config:
        with pytest.raises(CheckpointError, match=r"entry holds 8 bytes of data"):
            load_checkpoint(path)


def test_deeply_nested_metadata_is_refused_not_a_recursion_error(tmp_path):
    """Deeply nested metadata gave a RecursionError (issue 22 item 15); brackets inside
    strings are not nesting."""

    def nested(meta):
        meta["callbacks"] = {"x": "[[[[{{{{" * 100}  # text, not nesting: loads
        return json.dumps(meta)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"

    path = _hostile(tmp_path, "deep.ckpt", nested)
    with pytest.raises(CheckpointError, match=r"deep.ckpt.*nested 100001 levels deep"):
        load_checkpoint(path)
    path = _hostile(tmp_path, "text.ckpt", lambda m: m.update(callbacks={"x": "[{" * 999}))
    assert load_checkpoint(path)["callbacks"] == {"x": "[{" * 999}


def test_metadata_larger_than_the_bound_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = _hostile(tmp_path, "meta.ckpt", lambda meta: None)
    load_checkpoint(path)
    monkeypatch.setattr(ckpt, "MAX_META_BYTES", 1000)  # instead of a 256 MiB file
    refused = r"meta.ckpt.*metadata is <U[0-9]+\[\] of [0-9,]+ bytes; a checkpoint's is one "
    with pytest.raises(CheckpointError, match=refused + "JSON string of at most 1,000 bytes"):
        load_checkpoint(path)
