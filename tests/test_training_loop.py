"""The Trainer: the book's loop, no per-step sync, NaN detection, early stopping, output."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

import xpscratch
from xpscratch.checkpoint import load_checkpoint
from xpscratch.networks import MultiLayerNet, MultiLayerNetExtend
from xpscratch.optim import SGD
from xpscratch.random import permutation
from xpscratch.trainer import NonFiniteLossError, Trainer
from xpscratch.training import Callback
from xpscratch.training import history as trainer_mod

HOST = xpscratch.backend.host_namespace()  # reference permutations, computed on the host


def blobs(n: int = 200, d: int = 20, k: int = 5, seed: int = 0):
    """Gaussian clusters: learnable, so accuracies move, and the same on every run."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    t = rng.integers(0, k, n)
    x = centers[t] + rng.normal(size=(n, d))
    return x, t.astype(np.int64)


class RecordingNet:
    """A fake network that records which samples each mini-batch held.

    ``x[:, 0]`` and ``t`` are the sample ids; ``accuracy`` returns the sum of the ids it
    was asked about, so the test can tell which samples were evaluated.
    """

    def __init__(self, dtype: str = "float64") -> None:
        self.params = {"W": xpscratch.asarray(np.zeros(1), dtype)}
        self.dtype = self.params["W"].dtype
        self.batches: list[np.ndarray] = []
        self.val_script: list[float] = []
        self.val_size = -1

    def gradient(self, x, t):
        self.batches.append(xpscratch.to_numpy(t))
        xp = xpscratch.backend.namespace(x)
        return {"W": xp.zeros_like(self.params["W"])}

    def loss(self, x, t, train_flg=False):
        xp = xpscratch.backend.namespace(x)
        return xp.sum(x) * 0.0

    def accuracy(self, x, t, batch_size=None):
        if x.shape[0] == self.val_size:
            return self.val_script.pop(0)
        return float(np.sum(xpscratch.to_numpy(t)))


def test_book_semantics_every_sample_once_per_epoch_same_shuffle_everywhere(backend, float_dtype):
    n, bs, epochs = 103, 10, 3
    ids = np.arange(n)
    x = np.stack([ids, ids], axis=1).astype(np.float64)
    net = RecordingNet(float_dtype)
    tr = Trainer(
        net,
        x,
        ids,
        x[:60],
        ids[:60],
        epochs=epochs,
        mini_batch_size=bs,
        evaluate_sample_num_per_epoch=40,
        verbose=False,
        seed=7,
    )
    history = tr.train()

    assert tr.iter_per_epoch == 11  # ceil(103 / 10): the partial batch is used
    assert len(net.batches) == epochs * 11 == len(tr.train_loss_list) == history.iterations
    for e in range(epochs):
        batches = net.batches[e * 11 : (e + 1) * 11]
        assert [len(b) for b in batches] == [10] * 10 + [3]
        order = np.concatenate(batches)
        assert sorted(order.tolist()) == list(range(n))  # each sample exactly once
        expected = np.asarray(permutation(7, "trainer/shuffle", e, n, xp=HOST))
        np.testing.assert_array_equal(order, expected)  # the same on every backend
    assert not np.array_equal(np.concatenate(net.batches[:11]), np.concatenate(net.batches[11:22]))
    # accuracy on the first 40 train and test samples, as in the book
    assert tr.train_acc_list == tr.test_acc_list == [float(sum(range(40)))] * epochs
    assert history.epochs_run == epochs and history.train_acc == tr.train_acc_list
    assert all(v == 0.0 and isinstance(v, float) for v in tr.train_loss_list)


def test_matches_a_hand_written_book_loop():
    """Loss recorded after the update with train_flg=False; params follow plain SGD."""
    x, t = blobs(60, 8, 3)
    kwargs = dict(use_batchnorm=True, use_dropout=True, dropout_ratio=0.3, dtype="float64")
    net = MultiLayerNetExtend(8, [6], 3, seed=3, **kwargs)
    tr = Trainer(
        net,
        x,
        t,
        x,
        t,
        epochs=2,
        mini_batch_size=16,
        optimizer_param={"lr": 0.1},
        verbose=False,
        seed=11,
    )
    tr.train()

    ref = MultiLayerNetExtend(8, [6], 3, seed=3, **kwargs)
    opt, losses = SGD(lr=0.1), []
    xd, td = xpscratch.asarray(x, "float64"), xpscratch.asarray(t)
    xp = xpscratch.get_backend().xp
    for epoch in range(2):
        perm = xpscratch.asarray(np.asarray(permutation(11, "trainer/shuffle", epoch, 60, xp=HOST)))
        for i in range(0, 60, 16):
            idx = perm[i : min(i + 16, 60)]
            xb, tb = xp.take(xd, idx, axis=0), xp.take(td, idx, axis=0)
            opt.update(ref.params, ref.gradient(xb, tb))
            losses.append(float(ref.loss(xb, tb)))
    assert tr.train_loss_list == losses
    for k, v in ref.params.items():
        np.testing.assert_array_equal(xpscratch.to_numpy(net.params[k]), xpscratch.to_numpy(v))
    assert tr.train_acc_list[-1] == ref.accuracy(xd, td)


def test_losses_stay_on_device_until_report_points(monkeypatch):
    calls = []
    real = trainer_mod.to_numpy
    monkeypatch.setattr(trainer_mod, "to_numpy", lambda a: calls.append(a.shape) or real(a))
    x, t = blobs(400, 8, 3)
    net = MultiLayerNet(8, [6], 3, dtype="float64")
    tr = Trainer(net, x, t, x, t, epochs=1, mini_batch_size=10, verbose=False, log_every=7)
    loss = tr.train_step()
    assert getattr(loss, "shape", None) == ()  # an array (NumPy: a 0-d scalar), not a float
    assert calls == [] and tr.loss_log.pending  # nothing converted yet
    tr.train()
    # 40 steps: reports at steps 7, 14, ..., 35 and the epoch end, each one transfer
    assert calls == [(7,), (7,), (7,), (7,), (7,), (5,)]
    assert len(tr.train_loss_list) == 40 and all(isinstance(v, float) for v in tr.train_loss_list)
    np.testing.assert_allclose(tr.train_loss_list[0], float(loss))


def _first_nonfinite_by_stepping(x, t, lr: float, epochs: int, bs: int) -> int:
    """The reference: the book's loop by hand, one float() per step."""
    net, opt, n, it = MultiLayerNet(20, [16, 16], 5, dtype="float32", seed=0), SGD(lr), len(x), 0
    xd, td = xpscratch.asarray(x, "float32"), xpscratch.asarray(t)
    xp = xpscratch.get_backend().xp
    for epoch in range(epochs):
        perm = xpscratch.asarray(np.asarray(permutation(0, "trainer/shuffle", epoch, n, xp=HOST)))
        for i in range(0, n, bs):
            idx = perm[i : min(i + bs, n)]
            xb, tb = xp.take(xd, idx, axis=0), xp.take(td, idx, axis=0)
            opt.update(net.params, net.gradient(xb, tb))
            if not math.isfinite(float(net.loss(xb, tb))):
                return it
            it += 1
    raise AssertionError("the reference run never diverged")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("lr, log_every", [(1e6, 50), (10.0, 50), (10.0, 2), (10.0, 7)])
def test_absurd_learning_rate_names_first_nonfinite_iteration(lr, log_every):
    x, t = blobs(200, 20, 5)

    def make():
        net = MultiLayerNet(20, [16, 16], 5, dtype="float32", seed=0)
        return Trainer(
            net,
            x,
            t,
            x,
            t,
            epochs=5,
            mini_batch_size=16,
            verbose=False,
            optimizer="SGD",
            optimizer_param={"lr": lr},
            log_every=log_every,
        )

    first = _first_nonfinite_by_stepping(x, t, lr, epochs=5, bs=16)
    assert first > 0
    tr = make()
    with pytest.raises(NonFiniteLossError) as info:
        tr.train()
    err = info.value
    assert err.iteration == first and err.epoch == first // tr.iter_per_epoch + 1
    msg = str(err)
    assert f"iteration {first} " in msg and f"epoch {err.epoch}" in msg
    assert "learning rate" in msg and "float64" in msg
    assert isinstance(err, FloatingPointError)
    assert tr.current_iter <= first + max(log_every, tr.iter_per_epoch)  # caught promptly
    assert math.isfinite(tr.train_loss_list[first - 1]) and not math.isfinite(err.loss)


def test_nan_in_the_data_is_reported_at_the_batch_that_holds_it(backend, float_dtype):
    x, t = blobs(90, 6, 3)
    bad = 57
    x[bad, 2] = np.nan
    net = MultiLayerNet(6, [5], 3, dtype=float_dtype)
    tr = Trainer(
        net, x, t, x[:10], t[:10], epochs=2, mini_batch_size=8, verbose=False, seed=4, log_every=3
    )
    perm = np.asarray(permutation(4, "trainer/shuffle", 0, 90, xp=HOST))
    expected = int(np.flatnonzero(perm == bad)[0]) // 8
    with pytest.raises(NonFiniteLossError, match=rf"iteration {expected} .*epoch 1") as info:
        tr.train()
    assert info.value.iteration == expected
    assert all(math.isfinite(v) for v in tr.train_loss_list[:expected])


def test_early_stopping_on_validation_accuracy():
    x, t = blobs(40, 4, 2)
    net = RecordingNet()
    net.val_size, net.val_script = 7, [0.5, 0.6, 0.6, 0.55, 0.7, 0.8]
    tr = Trainer(
        net,
        x,
        t,
        x,
        t,
        epochs=6,
        mini_batch_size=10,
        verbose=False,
        x_val=x[:7],
        t_val=t[:7],
        early_stopping_patience=2,
    )
    h = tr.train()
    assert h.stopped_early and h.best_epoch == 2 and h.epochs_run == 4
    assert h.val_acc == [0.5, 0.6, 0.6, 0.55] and h.iterations == 16

    net.val_script = [0.5, 0.6, 0.6, 0.55, 0.7, 0.8]
    tr = Trainer(
        net,
        x,
        t,
        x,
        t,
        epochs=6,
        mini_batch_size=10,
        verbose=False,
        x_val=x[:7],
        t_val=t[:7],
        early_stopping_patience=3,
    )
    h = tr.train()
    assert not h.stopped_early and h.best_epoch == 6 and h.epochs_run == 6


def test_restore_best_puts_back_the_best_epochs_weights():
    x, t = blobs(120, 10, 4, seed=1)
    xv, tv = blobs(40, 10, 4, seed=2)
    tv = (tv + 1) % 4  # labels the net cannot learn: the best epoch is not the last

    def make(epochs, **kw):
        net = MultiLayerNet(10, [8], 4, dtype="float64", seed=5)
        return net, Trainer(
            net,
            x,
            t,
            x,
            t,
            epochs=epochs,
            mini_batch_size=20,
            optimizer_param={"lr": 0.2},
            verbose=False,
            **kw,
        )

    net, tr = make(6, x_val=xv, t_val=tv, restore_best=True)
    h = tr.train()
    assert h.best_epoch is not None and h.best_epoch < 6 and not h.stopped_early
    assert max(h.val_acc) == h.val_acc[h.best_epoch - 1]
    ref_net, ref = make(h.best_epoch)
    ref.train()
    for k, v in ref_net.params.items():
        np.testing.assert_array_equal(xpscratch.to_numpy(net.params[k]), xpscratch.to_numpy(v))
    assert h.final_test_acc == ref_net.accuracy(ref.x_test, ref.t_test)


def test_restore_best_stopped_mid_epoch_right_after_the_best_epoch_restores_it():
    """max_iterations stops the run partway into the epoch after the best one: the weights
    then are that partial epoch's, and restore_best must put the best epoch's back (issue
    22 item 10: a mutant that skipped the restore when the best epoch was the last whole
    one survived)."""
    x, t = blobs(120, 10, 4, seed=1)
    xv, tv = blobs(40, 10, 4, seed=2)
    tv = (tv + 1) % 4  # labels the net cannot learn: the best epoch is not the last

    def make(**kw):
        net = MultiLayerNet(10, [8], 4, dtype="float64", seed=5)
        return net, Trainer(
            net, x, t, x, t, mini_batch_size=20, optimizer_param={"lr": 0.2}, verbose=False,
            **kw,
        )  # fmt: skip

    _, full = make(epochs=6, x_val=xv, t_val=tv)
    best = full.train().best_epoch
    assert best is not None and 1 <= best < 6
    stop = best * full.iter_per_epoch + 2  # two updates into the epoch after the best
    net, tr = make(epochs=6, max_iterations=stop, x_val=xv, t_val=tv, restore_best=True)
    h = tr.train()
    assert (h.best_epoch, tr.current_epoch, tr.iter_in_epoch) == (best, best, 2)
    ref_net, ref = make(epochs=best)
    ref.train()
    cut_net, cut = make(epochs=6, max_iterations=stop)
    cut.train()
    for k, v in ref_net.params.items():
        got = xpscratch.to_numpy(net.params[k])
        np.testing.assert_array_equal(got, xpscratch.to_numpy(v))
        assert not np.array_equal(got, xpscratch.to_numpy(cut_net.params[k]))
    assert h.final_test_acc == ref_net.accuracy(ref.x_test, ref.t_test)


def test_max_iterations_stops_mid_epoch_and_epochs_still_bound():
    x, t = blobs(103, 6, 3)
    net = MultiLayerNet(6, [5], 3, dtype="float64")
    h = Trainer(net, x, t, x, t, mini_batch_size=10, max_iterations=15, verbose=False).train()
    assert h.iterations == 15 and h.epochs_run == 1 and len(h.train_acc) == 1
    h = Trainer(
        net, x, t, x, t, epochs=1, mini_batch_size=10, max_iterations=100, verbose=False
    ).train()
    assert h.iterations == 11


def test_verbose_false_prints_nothing_and_never_imports_tqdm(capsys, monkeypatch):
    poisoned = types.ModuleType("tqdm.auto")
    poisoned.__getattr__ = lambda name: pytest.fail("tqdm imported with verbose=False")
    monkeypatch.setitem(sys.modules, "tqdm.auto", poisoned)
    x, t = blobs(50, 6, 3)
    Trainer(
        MultiLayerNet(6, [5], 3), x, t, x, t, epochs=2, mini_batch_size=10, verbose=False
    ).train()
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


@pytest.mark.parametrize("progress", [False, True])
def test_verbose_prints_the_books_epoch_lines(capsys, progress):
    x, t = blobs(50, 6, 3)
    tr = Trainer(
        MultiLayerNet(6, [5], 3),
        x,
        t,
        x,
        t,
        epochs=2,
        mini_batch_size=10,
        verbose=True,
        progress=progress,
        x_val=x[:5],
        t_val=t[:5],
    )
    tr.train()
    out = capsys.readouterr()
    for e in (1, 2):
        line = f"=== epoch:{e}, train acc:{tr.train_acc_list[e - 1]}, test acc:"
        assert line in out.out
    assert "val acc:" in out.out and "Final Test Accuracy" in out.out
    assert ("train" in out.err) == progress  # the tqdm bar goes to stderr


def test_data_is_moved_once_in_the_networks_dtype(backend, float_dtype):
    x, t = blobs(30, 4, 2)
    net = MultiLayerNet(4, [3], 2, dtype=float_dtype)
    tr = Trainer(net, x, t, x, t, epochs=1, mini_batch_size=10, verbose=False)
    labels = xpscratch.backend.index_dtype(backend.xp, backend.device)  # int32 without int64
    assert tr.x_train.dtype == net.dtype and tr.t_train.dtype == labels
    assert xpscratch.backend.device_of(tr.x_train) == backend.device
    device_x = tr.x_train  # arrays already on the device are used as they are
    assert Trainer(net, device_x, tr.t_train, x, t, verbose=False).x_train is device_x


def test_bad_arguments_are_refused_clearly():
    x, t = blobs(30, 4, 2)
    net = MultiLayerNet(4, [3], 2)
    with pytest.raises(ValueError, match="x_val and t_val"):
        Trainer(net, x, t, x, t, early_stopping_patience=2)
    with pytest.raises(ValueError, match="mini_batch_size"):
        Trainer(net, x, t, x, t, mini_batch_size=0)
    with pytest.raises(ValueError, match="t_train has 29"):
        Trainer(net, x, t[:29], x, t)
    with pytest.raises(ValueError, match="optimizer_param"):
        Trainer(net, x, t, x, t, optimizer=SGD(), optimizer_param={"lr": 1.0})
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(net, x, t, x, t, optimizer="sgdd")


def test_history_is_json_ready():
    import json

    x, t = blobs(30, 4, 2)
    h = Trainer(
        MultiLayerNet(4, [3], 2), x, t, x, t, epochs=2, mini_batch_size=10, verbose=False
    ).train()
    d = json.loads(json.dumps(h.to_dict()))
    assert d["iterations"] == 6 and d["epochs_run"] == 2 and len(d["train_loss"]) == 6
    assert d["best_epoch"] is None and d["stopped_early"] is False


def test_mnist_smoke():
    datasets = pytest.importorskip("xpscratch.datasets")
    (x, t), (xt, tt) = datasets.load_mnist()
    net = MultiLayerNet(784, [50], 10, seed=0)
    tr = Trainer(
        net,
        x[:1000],
        t[:1000],
        xt[:500],
        tt[:500],
        epochs=4,
        mini_batch_size=50,
        optimizer="SGD",
        optimizer_param={"lr": 0.1},
        verbose=False,
    )
    h = tr.train()
    # the book's chapter-6 nets reach ~0.9 on MNIST; 1000 samples and 4 epochs get > 0.8
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.test_acc[-1] > 0.8 and h.train_acc[-1] > h.train_acc[0]


def test_checkpoint_from_before_label_smoothing_still_loads():
    # a network config saved before label_smoothing existed lacks the key: it meant 0
    x, t = blobs(30, 4, 2)
    src = Trainer(MultiLayerNet(4, [3], 2), x, t, x, t, epochs=1, mini_batch_size=10,
                  verbose=False)  # fmt: skip
    src.train()
    state = src.state_dict()
    del state["network"]["config"]["label_smoothing"]
    dst = Trainer(MultiLayerNet(4, [3], 2, seed=5), x, t, x, t, verbose=False)
    dst.load_state_dict(state)
    assert dst.current_iter == 3
    smoothed = Trainer(MultiLayerNet(4, [3], 2, label_smoothing=0.1), x, t, x, t, verbose=False)
    with pytest.raises(ValueError, match="label_smoothing: checkpoint 0.0 vs network 0.1"):
        smoothed.load_state_dict(state)


def test_augment_maps_each_training_batch_and_nothing_else():
    """augment= is applied to every mini-batch before the update (and its recorded loss);
    accuracies use the unchanged images.  Reference: the book's loop written by hand."""
    from xpscratch.augment import RandomShiftRotate

    x, t = blobs(60, 16, 3)
    net = MultiLayerNet(16, [8], 3, seed=3, dtype="float64")
    augment = RandomShiftRotate(1.0, 20.0, seed=7, image_shape=(4, 4))
    tr = Trainer(
        net, x, t, x, t, epochs=2, mini_batch_size=16, optimizer_param={"lr": 0.1},
        verbose=False, seed=11, augment=augment,
    )  # fmt: skip
    tr.train()
    assert augment.stream.counter == 2 * 4  # one draw per mini-batch

    ref = MultiLayerNet(16, [8], 3, seed=3, dtype="float64")
    ref_augment = RandomShiftRotate(1.0, 20.0, seed=7, image_shape=(4, 4))
    opt, losses = SGD(lr=0.1), []
    xd, td = xpscratch.asarray(x, "float64"), xpscratch.asarray(t)
    xp = xpscratch.get_backend().xp
    for epoch in range(2):
        perm = xpscratch.asarray(np.asarray(permutation(11, "trainer/shuffle", epoch, 60, xp=HOST)))
        for i in range(0, 60, 16):
            idx = perm[i : min(i + 16, 60)]
            xb, tb = ref_augment(xp.take(xd, idx, axis=0)), xp.take(td, idx, axis=0)
            opt.update(ref.params, ref.gradient(xb, tb))
            losses.append(float(ref.loss(xb, tb)))
    assert tr.train_loss_list == losses
    for k, v in ref.params.items():
        np.testing.assert_array_equal(xpscratch.to_numpy(net.params[k]), xpscratch.to_numpy(v))
    assert tr.train_acc_list[-1] == ref.accuracy(xd, td)
    plain = MultiLayerNet(16, [8], 3, seed=3, dtype="float64")
    Trainer(plain, x, t, x, t, epochs=2, mini_batch_size=16, optimizer_param={"lr": 0.1},
            verbose=False, seed=11).train()  # fmt: skip
    w_plain, w_aug = (xpscratch.to_numpy(n.params["W1"]) for n in (plain, net))
    assert not np.array_equal(w_plain, w_aug)  # augmentation changed the training


def test_evaluate_sample_num_larger_than_a_set_evaluates_all_of_it(backend, float_dtype):
    x, t = blobs(30, 6, 3)
    xt, tt = blobs(12, 6, 3, seed=1)
    net = MultiLayerNet(6, [5], 3, seed=0, dtype=float_dtype)
    tr = Trainer(net, x, t, xt, tt, epochs=1, mini_batch_size=10, verbose=False,
                 evaluate_sample_num_per_epoch=20)  # fmt: skip
    tr.train()  # 20 > 12 test samples: as the book's x[:20], all 12 (strict refuses the slice)
    xd, td = xpscratch.asarray(xt, float_dtype), xpscratch.asarray(tt)
    assert tr.test_acc_list == [net.accuracy(xd, td)]
    assert tr.train_acc_list == [net.accuracy(xpscratch.asarray(x[:20], float_dtype),
                                              xpscratch.asarray(t[:20]))]  # fmt: skip


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverged_run_is_never_saved_over_a_good_checkpoint(tmp_path):
    x, t = blobs(200, 20, 5)
    net = MultiLayerNet(20, [16, 16], 5, dtype="float32", seed=0)
    tr = Trainer(
        net,
        x,
        t,
        x,
        t,
        epochs=5,
        mini_batch_size=16,
        verbose=False,
        optimizer_param={"lr": 10.0},
        log_every=2,
    )
    good = tmp_path / "good.npz"
    tr.save_checkpoint(good)  # before any update: finite weights
    before = good.read_bytes()
    with pytest.raises(NonFiniteLossError) as info:
        tr.train()
    first = info.value.iteration
    # the guard is not spent by the raise: every later report point refuses again
    for _ in range(2):
        with pytest.raises(NonFiniteLossError, match=rf"iteration {first} .*not saved"):
            tr.save_checkpoint(good)
    assert good.read_bytes() == before
    with pytest.raises(NonFiniteLossError, match=rf"iteration {first} "):
        tr.train()  # continuing reports the same first bad loss
    # saved on explicit request, but only under a name that holds no file yet
    with pytest.raises(FileExistsError, match="diverged"):
        tr.save_checkpoint(good, allow_diverged=True)
    assert good.read_bytes() == before
    tr.save_checkpoint(tmp_path / "diverged.npz", allow_diverged=True)
    saved = xpscratch.checkpoint.load_checkpoint(tmp_path / "diverged.npz")
    assert not math.isfinite(saved["history"]["train_loss"][first])


def test_the_trainer_never_trains_on_a_batch_of_one(backend, float_dtype):
    x, t = blobs(101, 6, 3)
    net = RecordingNet(float_dtype)
    tr = Trainer(net, x, t, x, t, epochs=2, mini_batch_size=50, verbose=False)
    tr.train()
    assert tr.iter_per_epoch == 2 and [len(b) for b in net.batches] == [50, 51, 50, 51]
    assert sorted(np.concatenate(net.batches[:2]).tolist()) == sorted(t.tolist())
    # with batch normalization, 101 samples in batches of 100 train (one batch of 101)
    bn = MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, dtype=float_dtype)
    tr = Trainer(bn, x, t, x, t, epochs=2, mini_batch_size=100, verbose=False)
    h = tr.train()
    assert h.iterations == 2 and all(math.isfinite(v) for v in h.train_loss)


@pytest.mark.parametrize("which", ["t_train", "t_test", "t_val"])
def test_labels_are_checked_once_where_the_data_enters(which, monkeypatch, backend):
    x, t = blobs(40, 6, 3)
    sets = {"t_train": t.copy(), "t_test": t[:20].copy(), "t_val": t[:10].copy()}
    sets[which][7] = 3  # of 3 classes
    net = MultiLayerNet(6, [5], 3)
    calls = []
    monkeypatch.setattr(net, "gradient", lambda *a: calls.append(a))
    with pytest.raises(xpscratch.functions.LabelError, match=rf"{which}: .* 3 at index 7"):
        Trainer(
            net,
            x,
            sets["t_train"],
            x[:20],
            sets["t_test"],
            x_val=x[:10],
            t_val=sets["t_val"],
            epochs=1,
            verbose=False,
        )
    assert calls == []  # refused at construction, before any work
    with pytest.raises(xpscratch.functions.LabelError, match="t_train: labels must be integer"):
        Trainer(net, x, t.astype(np.float64), x, t, epochs=1, verbose=False)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0.0, 0.0, 0.0], "row 7 has 0 ones"),
        ([1.0, 1.0, 0.0], "row 7 has 2 ones"),
        ([0.5, 0.5, 0.0], "row 7 has a value other than 0 and 1"),
    ],
)
def test_one_hot_labels_are_checked_where_the_data_enters(backend, float_dtype, row, message):
    """An all-zero one-hot row trained silently, as class 0, while its loss said otherwise
    (issue 22): one-hot rows must each hold a single 1 among zeros."""
    x, t = blobs(40, 6, 3)
    hot = np.eye(3)[t]
    bad = hot.copy()
    bad[7] = row
    net = MultiLayerNet(6, [5], 3, dtype=float_dtype)
    with pytest.raises(xpscratch.functions.LabelError, match=rf"t_train: one-hot {message}"):
        Trainer(net, x, bad, x, hot, epochs=1, verbose=False)
    Trainer(net, x, hot, x, hot, epochs=1, verbose=False)  # good rows pass


def test_an_empty_test_or_validation_set_is_refused_before_training():
    x, t = blobs(40, 6, 3)
    net = MultiLayerNet(6, [5], 3)
    for kw in ({"x_test": x[:0], "t_test": t[:0]}, {"x_val": x[:0], "t_val": t[:0]}):
        args = {"x_test": x, "t_test": t, **kw}
        with pytest.raises(ValueError, match=r"x_(test|val) is empty"):
            Trainer(
                net, x, t, args.pop("x_test"), args.pop("t_test"), epochs=1, verbose=False, **args
            )


# -- a step is all or nothing: an interrupt anywhere, then continuing, changes no number --


class _HookRecorder(Callback):
    """Records each call of its hooks, and at each epoch end what the automatic checkpoint
    (the callback before it) holds: a lost autosave or a hook run twice shows."""

    def __init__(self, path) -> None:
        self.path, self.events = path, []

    def on_step_end(self, trainer, loss) -> None:
        self.events.append(("step", trainer.current_iter))

    def on_epoch_end(self, trainer) -> None:
        saved = load_checkpoint(self.path)["trainer"]
        self.events.append(("epoch", trainer.current_epoch, saved["epoch"], saved["iteration"]))


def _interruptible_run(tmp_path, name: str, dtype: str):
    """A small run with every stateful piece: BN, dropout, Adam, augmentation, a
    validation set, early-stopping bookkeeping and an automatic checkpoint each epoch.
    41 samples in batches of 20: two batches an epoch (the last one of 21: the fold)."""
    from xpscratch.augment import RandomShiftRotate
    from xpscratch.training import Checkpoint

    path = tmp_path / f"{name}.npz"

    x, t = blobs(n=81, d=16, k=4, seed=3)
    net = MultiLayerNetExtend(
        16,
        [12, 12],
        4,
        use_batchnorm=True,
        use_dropout=True,
        dropout_ratio=0.3,
        seed=5,
        dtype=dtype,
    )
    return Trainer(
        net, x[:41], t[:41], x[41:61], t[41:61], epochs=3, mini_batch_size=20,
        optimizer="adam", optimizer_param={"lr": 0.05}, verbose=False, seed=11,
        x_val=x[61:], t_val=t[61:], restore_best=True, log_every=1,
        augment=RandomShiftRotate(1.0, 10.0, seed=2, image_shape=(4, 4)),
        callbacks=[Checkpoint(path), _HookRecorder(path)],
        # the points patched are the eager step's (a compiled step calls them only while
        # tracing); the compiled step's all-or-nothing is in test_training_compiled.py
        compile=False,
    )  # fmt: skip


def _run_record(tr, path=None) -> dict:
    """Every number a run leaves: history, weights, buffers, optimizer state, streams,
    and the automatic checkpoint's whole content."""
    state = tr.state_dict()
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        elif hasattr(value, "shape"):
            flat[prefix] = xpscratch.to_numpy(value).copy()
        else:
            flat[prefix] = value

    walk("state", state)
    flat["hooks"] = [cb.events for cb in tr.callbacks if isinstance(cb, _HookRecorder)]
    if path is not None:
        walk("file", load_checkpoint(path))
    return flat


def _assert_same_run(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype and np.array_equal(got[key], value), key
        elif key.endswith("/train_loss") or "_acc" in key:
            assert got[key] == value, key  # Python floats: bit for bit
        elif not key.startswith(("state/network/config", "file/xpscratch_version")):
            assert got[key] == value, key


class _InterruptAt:
    """Raise KeyboardInterrupt in call number ``k`` (from 1) of ``owner.attr``, once:
    on entry (nothing of the call done) or on exit (all of it done, result not returned)."""

    def __init__(self, monkeypatch, owner, attr: str, k: int, where: str) -> None:
        self.original, self.k, self.where, self.calls = getattr(owner, attr), k, where, 0
        self.fired = False
        monkeypatch.setattr(owner, attr, self._wrap())

    def _wrap(self):
        original = self.original

        def wrapper(*args, **kwargs):
            self.calls += 1
            fire = self.calls == self.k
            if fire and self.where == "entry":
                self.fired = True
                raise KeyboardInterrupt
            out = original(*args, **kwargs)
            if fire:
                self.fired = True
                raise KeyboardInterrupt
            return out

        return wrapper


def _train_through_interrupts(tr) -> int:
    """Call train() until it returns, as a user pressing Ctrl-C and re-running the cell."""
    for interrupts in range(5):
        try:
            tr.train()
            return interrupts
        except KeyboardInterrupt:
            continue
    raise AssertionError("train() never finished")


def test_a_second_ctrl_c_during_the_undo_of_a_step_changes_no_number(
    tmp_path, monkeypatch, python_sigint
):
    """Two quick Ctrl-C's: the first cuts a step (after BN and dropout moved), the second,
    a real SIGINT, arrives while the step is being undone.  The undo must finish first;
    continuing then gives the uninterrupted run (issue 22: 36 arrays differed)."""
    import os
    import signal

    from xpscratch import networks, optim

    want = _interruptible_run(tmp_path, "straight", "float64")
    want.train()
    want = _run_record(want)

    tr = _interruptible_run(tmp_path, "double", "float64")
    # in the optimizer's rule: the step's forward pass has moved BN and the dropout streams
    first = _InterruptAt(monkeypatch, optim.Adam, "_apply", 9, "entry")
    original_load = networks.MultiLayerNetExtend.load_state_dict
    seconds = []

    def load_with_a_second_ctrl_c(self, state, strict=True):
        if first.fired and not seconds:  # the undo of the interrupted step
            seconds.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # Python runs its handler between these bytecodes
                pass
        return original_load(self, state, strict)

    monkeypatch.setattr(networks.MultiLayerNetExtend, "load_state_dict", load_with_a_second_ctrl_c)
    assert _train_through_interrupts(tr) >= 1
    assert first.fired and seconds == [True]
    _assert_same_run(_run_record(tr), want)


def _points():
    from xpscratch import augment, checkpoint, layers, optim
    from xpscratch.training import history

    return {
        "optimizer rule": (optim.Adam, "_apply"),
        "Affine.forward": (layers.Affine, "forward"),
        "Affine.backward": (layers.Affine, "backward"),
        "BatchNormalization.forward": (layers.BatchNormalization, "forward"),
        "BatchNormalization.backward": (layers.BatchNormalization, "backward"),
        "Dropout.forward": (layers.Dropout, "forward"),
        "loss layer": (layers.SoftmaxWithLoss, "forward"),
        "augment": (augment, "_augment"),  # under RandomShiftRotate and random_shift_rotate
        "epoch-end accuracy": (MultiLayerNetExtend, "accuracy"),
        "loss transfer": (history, "to_numpy"),
        "autosave": (checkpoint, "save_checkpoint"),
    }


INTERRUPT_POINTS = list(_points())


def _calls_in_a_run(tmp_path, dtype: str) -> dict[str, int]:
    counters = {}
    with pytest.MonkeyPatch.context() as mp:
        for name, (owner, attr) in _points().items():
            counters[name] = _InterruptAt(mp, owner, attr, 0, "entry")
        _interruptible_run(tmp_path, "count", dtype).train()
    return {name: c.calls for name, c in counters.items()}


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """The uninterrupted run's record and call counts, per backend and dtype."""
    return {}


@pytest.mark.parametrize("point", INTERRUPT_POINTS)
def test_an_interrupt_anywhere_in_a_step_then_continuing_gives_the_uninterrupted_run(
    backend, float_dtype, tmp_path, monkeypatch, point, reference_runs
):
    want, calls = _reference_record(
        reference_runs, (backend.name, str(backend.device), float_dtype), tmp_path, float_dtype
    )
    n = calls[point]
    assert n > 0, f"{point} is never called: the test would prove nothing"
    # every call on NumPy (entry and exit in turn), one in the middle of the run elsewhere
    # (CI's time: JAX takes about 15 times as long; the code path is the same)
    ks = range(1, n + 1) if backend.name == "numpy" else [(n + 1) // 2]
    owner, attr = _points()[point]
    for k in ks:
        where = "entry" if k % 2 else "exit"
        with pytest.MonkeyPatch.context() as mp:
            interrupt = _InterruptAt(mp, owner, attr, k, where)
            tr = _interruptible_run(tmp_path, "run", float_dtype)
            interrupts = _train_through_interrupts(tr)
        assert interrupt.fired and interrupts == 1, (where, k)
        _assert_same_run(_run_record(tr, tmp_path / "run.npz"), want)


def _reference_record(reference_runs, key, tmp_path, dtype):
    if key not in reference_runs:
        tr = _interruptible_run(tmp_path, "reference", dtype)
        tr.train()
        reference_runs[key] = (
            _run_record(tr, tmp_path / "reference.npz"),
            _calls_in_a_run(tmp_path, dtype),
        )
    return reference_runs[key]


def test_ctrl_c_while_an_update_is_stored_waits_until_it_is_whole(
    backend, float_dtype, tmp_path, monkeypatch, reference_runs, python_sigint
):
    # a real SIGINT, sent while the optimizer stores the new parameters (in place where
    # writable, into the params dict where not): it must not cut the store in half, but
    # arrive once the step is stored
    import signal

    from xpscratch import optim

    want, _ = _reference_record(
        reference_runs, (backend.name, str(backend.device), float_dtype), tmp_path, float_dtype
    )
    stores = []

    def store():
        stores.append(1)
        if len(stores) == 17:  # the 2nd update's 7th of 10 parameters
            signal.raise_signal(signal.SIGINT)

    for name, op in optim._OPS.items():

        def op_then_count(a, b, inplace, op=op):
            out = op(a, b, inplace)
            if inplace:  # when the update is stored, not while it is computed
                store()
            return out

        monkeypatch.setitem(optim._OPS, name, op_then_count)

    class CountingParams(dict):
        def __setitem__(self, key, value):
            super().__setitem__(key, value)
            store()

    tr = _interruptible_run(tmp_path, "run", float_dtype)
    tr.network.params = CountingParams(tr.network.params)
    with pytest.raises(KeyboardInterrupt):
        tr.train()
    assert len(stores) == 20  # the interrupted store was finished
    assert tr.optimizer.step == tr.current_iter == 2  # the update and its count, together
    assert tr.train()
    _assert_same_run(_run_record(tr, tmp_path / "run.npz"), want)


@pytest.mark.parametrize("point", ["Dropout.forward", "loss layer", "epoch-end accuracy"])
def test_save_checkpoint_after_an_interrupt_then_resume_gives_the_uninterrupted_run(
    backend, float_dtype, tmp_path, monkeypatch, point, reference_runs
):
    # interrupted while computing an update, while recording its loss, in the epoch end:
    # the checkpoint saved then is one the uninterrupted run passes through
    from xpscratch.augment import RandomShiftRotate

    want, calls = _reference_record(
        reference_runs, (backend.name, str(backend.device), float_dtype), tmp_path, float_dtype
    )
    owner, attr = _points()[point]
    with pytest.MonkeyPatch.context() as mp:
        _InterruptAt(mp, owner, attr, (calls[point] + 1) // 2, "exit")
        tr = _interruptible_run(tmp_path, "run", float_dtype)
        with pytest.raises(KeyboardInterrupt):
            tr.train()
    tr.save_checkpoint(tmp_path / "saved.npz")
    x, t = blobs(n=81, d=16, k=4, seed=3)
    resumed = Trainer.resume(
        tmp_path / "saved.npz", x[:41], t[:41], x[41:61], t[41:61],
        x_val=x[61:], t_val=t[61:], verbose=False,
        augment=RandomShiftRotate(1.0, 10.0, seed=2, image_shape=(4, 4)),
        compile=False,  # bit for bit against the eager run (compiled: test_training_compiled)
    )  # fmt: skip
    resumed.train()
    got = _run_record(resumed)
    for key in ("hooks", "state/trainer/run/autosave"):  # the resumed run has no recorder
        got.pop(key), want.get(key)
    _assert_same_run(got, {k: v for k, v in want.items() if k in got and not k.startswith("file/")})


def test_the_trainer_compiles_by_default_where_auto_chooses_it(backend, float_dtype):
    """compile="auto" is the default: a compiled step on JAX, the eager one elsewhere."""
    x, t = blobs(40, 6, 3)
    net = MultiLayerNet(6, [5], 3, dtype=float_dtype)
    tr = Trainer(net, x, t, x[:10], t[:10], epochs=1, mini_batch_size=8, verbose=False)
    assert (tr.compiled_step is not None) == (backend.name == "jax")
