"""The Trainer's callbacks (xpscratch.training.callbacks): each alone, and the keyword
arguments that build them equal to the explicit callback."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import xpscratch
from xpscratch import checkpoint as ckpt
from xpscratch.networks import MultiLayerNet
from xpscratch.training import (
    Callback,
    Checkpoint,
    EarlyStopping,
    Progress,
    PruneAfter,
    Trainer,
)
from xpscratch.training import history as history_mod
from xpscratch.training.progress import NoBar, open_bar


def blobs(n: int = 120, d: int = 10, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    t = rng.integers(0, k, n)
    return centers[t] + rng.normal(size=(n, d)), t.astype(np.int64)


X, T = blobs(seed=1)
XV, TV = blobs(40, seed=2)
TV = (TV + 1) % 4  # labels the net cannot learn: the best epoch is not the last


def make(epochs=6, callbacks=(), **kw):
    net = MultiLayerNet(10, [8], 4, dtype="float64", seed=5)
    kw.setdefault("verbose", False)
    tr = Trainer(net, X, T, X, T, epochs=epochs, mini_batch_size=20,
                 optimizer_param={"lr": 0.2}, x_val=XV, t_val=TV, callbacks=callbacks,
                 **kw)  # fmt: skip
    return net, tr


def weights(net):
    return {k: xpscratch.to_numpy(v).tobytes() for k, v in net.params.items()}


class ScriptedVal(Callback):
    """Replaces the validation accuracy by a script (runs before the callbacks under test)."""

    def __init__(self, script):
        self.script = list(script)

    def on_epoch_end(self, trainer):
        acc = self.script[trainer.current_epoch - 1]
        trainer.val_acc_list[-1] = acc
        # redo the trainer's bookkeeping with the scripted value
        trainer.best_val_acc, trainer.best_epoch, trainer.epochs_since_best = _best(
            trainer.val_acc_list
        )


def _best(accs):
    best = max(range(len(accs)), key=lambda i: (accs[i], -i))
    return accs[best], best + 1, len(accs) - 1 - best


class Recorder(Callback):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_train_begin(self, trainer):
        self.log.append((self.name, "begin"))

    def on_step_end(self, trainer, loss):
        self.log.append((self.name, "step", getattr(loss, "shape", None)))

    def on_epoch_end(self, trainer):
        self.log.append((self.name, "epoch", trainer.current_epoch))

    def on_train_end(self, trainer):
        self.log.append((self.name, "end"))

    def on_train_exit(self, trainer):
        self.log.append((self.name, "exit"))


# -- the hooks ------------------------------------------------------------------------------


def test_hooks_run_in_order_and_step_hooks_get_a_device_loss_without_a_sync(monkeypatch):
    conversions = []
    real = history_mod.to_numpy
    monkeypatch.setattr(history_mod, "to_numpy", lambda a: conversions.append(a.shape) or real(a))
    log = []
    _, tr = make(epochs=2, callbacks=[Recorder("a", log), Recorder("b", log)], log_every=1000)
    tr.train()
    steps = [e for e in log if e[1] == "step"]
    assert len(steps) == 2 * 2 * tr.iter_per_epoch  # two callbacks, every step
    assert all(shape == () for _, _, shape in steps)  # 0-d arrays, never floats
    assert conversions == [(6,), (6,)]  # one transfer per epoch end, none per step
    assert log[:2] == [("a", "begin"), ("b", "begin")]
    epochs = [e for e in log if e[1] == "epoch"]
    assert epochs == [("a", "epoch", 1), ("b", "epoch", 1), ("a", "epoch", 2), ("b", "epoch", 2)]
    # train end in reverse (as nested blocks exit), then every exit
    assert log[-4:] == [("b", "end"), ("a", "end"), ("a", "exit"), ("b", "exit")]


def test_exit_hooks_run_after_an_error_and_end_hooks_do_not():
    log = []

    class Boom(Callback):
        def on_epoch_end(self, trainer):
            raise RuntimeError("boom")

    _, tr = make(epochs=2, callbacks=[Recorder("a", log), Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        tr.train()
    assert ("a", "exit") in log and ("a", "end") not in log


def test_a_callback_stops_the_run_with_stopped_early():
    class StopAfterTwo(Callback):
        def on_epoch_end(self, trainer):
            trainer.stopped_early = trainer.current_epoch == 2

    _, tr = make(epochs=6, callbacks=[StopAfterTwo()])
    h = tr.train()
    assert h.epochs_run == 2 and h.stopped_early and h.iterations == 2 * tr.iter_per_epoch


# -- EarlyStopping ----------------------------------------------------------------------------


def test_early_stopping_alone_stops_patience_epochs_after_the_best():
    script = [0.5, 0.6, 0.6, 0.55, 0.7, 0.8]
    _, tr = make(epochs=6, callbacks=[ScriptedVal(script), EarlyStopping(patience=2)])
    h = tr.train()
    assert h.stopped_early and h.best_epoch == 2 and h.epochs_run == 4
    _, tr = make(epochs=6, callbacks=[ScriptedVal(script), EarlyStopping(patience=3)])
    h = tr.train()
    assert not h.stopped_early and h.best_epoch == 6 and h.epochs_run == 6


def test_early_stopping_restore_best_puts_back_the_best_epochs_weights():
    net, tr = make(epochs=6, callbacks=[EarlyStopping(restore_best=True)])
    h = tr.train()
    assert h.best_epoch is not None and h.best_epoch < 6
    ref_net, ref = make(epochs=h.best_epoch)
    ref.train()
    assert weights(net) == weights(ref_net)
    assert h.final_test_acc == ref.history.final_test_acc


def test_early_stopping_sugar_equals_the_explicit_callback():
    net_a, a = make(epochs=8, early_stopping_patience=2, restore_best=True)
    net_b, b = make(epochs=8, callbacks=[EarlyStopping(2, restore_best=True)])
    ha, hb = a.train(), b.train()
    assert ha == hb and weights(net_a) == weights(net_b)
    assert [type(cb) for cb in a.callbacks] == [EarlyStopping]
    assert (a.early_stopping_patience, a.restore_best) == (2, True)
    assert (b.early_stopping_patience, b.restore_best) == (2, True)


def test_early_stopping_needs_a_validation_set_and_a_positive_patience():
    net = MultiLayerNet(10, [8], 4, dtype="float64")
    with pytest.raises(ValueError, match="x_val and t_val"):
        Trainer(net, X, T, X, T, verbose=False, callbacks=[EarlyStopping(3)])
    with pytest.raises(ValueError, match="early_stopping_patience must be a positive int"):
        EarlyStopping(0)


# -- Checkpoint -------------------------------------------------------------------------------


def _meta(path):
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__meta__"][()]))
        arrays = {k: npz[k].tobytes() for k in npz.files if k != "__meta__"}
    return meta, arrays


def test_checkpoint_alone_saves_every_n_epochs_and_at_the_end(tmp_path, monkeypatch):
    saved = []
    real = ckpt.save_checkpoint
    monkeypatch.setattr(
        ckpt,
        "save_checkpoint",
        lambda p, s, **kw: saved.append(s.current_epoch) or real(p, s, **kw),
    )
    _, tr = make(epochs=5, callbacks=[Checkpoint(tmp_path / "c.ckpt", every=2)])
    tr.train()
    assert saved == [2, 4, 5]
    assert ckpt.load_checkpoint(tmp_path / "c.ckpt")["trainer"]["epoch"] == 5


def test_checkpoint_sugar_writes_the_same_file_as_the_explicit_callback(tmp_path):
    stop = EarlyStopping(3, restore_best=True)
    _, a = make(epochs=4, checkpoint_path=tmp_path / "a.ckpt", checkpoint_every=2,
                early_stopping_patience=3, restore_best=True)  # fmt: skip
    _, b = make(epochs=4, callbacks=[stop, Checkpoint(tmp_path / "b.ckpt", every=2)])
    a.train()
    b.train()
    assert _meta(tmp_path / "a.ckpt") == _meta(tmp_path / "b.ckpt")
    meta, _ = _meta(tmp_path / "b.ckpt")
    assert meta["trainer"]["run"]["checkpoint_every"] == 2 and meta["trainer"]["run"]["autosave"]
    assert meta["trainer"]["run"]["early_stopping_patience"] == 3
    # resuming rebuilds the callbacks from the file's run settings
    resumed = Trainer.resume(tmp_path / "b.ckpt", X, T, X, T, x_val=XV, t_val=TV, verbose=False)
    assert [type(cb) for cb in resumed.callbacks] == [EarlyStopping, Checkpoint]
    saving = resumed.callbacks[1]
    assert saving.path == tmp_path / "b.ckpt" and saving.every == 2


def test_a_checkpoint_written_before_the_callbacks_existed_still_loads(tmp_path):
    # the old layout: the best weights at the top level, no "callbacks" section
    _, src = make(epochs=3, restore_best=True, checkpoint_path=tmp_path / "new.ckpt")
    src.train()
    state = ckpt.load_checkpoint(tmp_path / "new.ckpt")
    state["best_state"] = state.pop("callbacks")["early_stopping"]["best_state"]
    assert state["best_state"] is not None
    ckpt.save_checkpoint(tmp_path / "old.ckpt", state)
    _, straight = make(epochs=6, restore_best=True)
    straight.train()
    net, dst = make(epochs=6, restore_best=True)
    dst.load_checkpoint(tmp_path / "old.ckpt")
    dst.train()
    assert dst.history == straight.history
    assert weights(net) == weights(straight.network)


# -- Progress ---------------------------------------------------------------------------------


def test_progress_alone_shows_a_bar_and_prints_no_lines(capsys):
    _, tr = make(epochs=2, callbacks=[Progress()])
    tr.train()
    out = capsys.readouterr()
    assert out.out == "" and "train" in out.err


def test_progress_sugar_equals_the_explicit_callback(capsys):
    _, a = make(epochs=2, verbose=True)
    a.train()
    out_a = capsys.readouterr()
    _, b = make(epochs=2, verbose=True, progress=False, callbacks=[Progress()])
    b.train()
    out_b = capsys.readouterr()
    assert [type(cb) for cb in a.callbacks] == [Progress]
    assert out_a.out == out_b.out and "Final Test Accuracy" in out_a.out
    assert "train" in out_a.err and "train" in out_b.err


def test_progress_without_tqdm_prints_the_lines_and_no_bar(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: not installed
    assert isinstance(open_bar(10, "x"), NoBar)
    _, tr = make(epochs=1, verbose=True)
    tr.train()
    out = capsys.readouterr()
    assert "=== epoch:1" in out.out and out.err == ""


def test_open_bar_falls_back_to_the_text_bar_when_the_widget_fails(monkeypatch):
    import types

    import tqdm.std

    def widget(*args, **kwargs):
        raise ImportError("IProgress not found. Please update jupyter and ipywidgets.")

    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=widget))
    bar = open_bar(3, "x", disable=True)
    assert isinstance(bar, tqdm.std.tqdm)
    bar.close()


# -- PruneAfter ------------------------------------------------------------------------------


def test_prune_after_stops_a_hopeless_run_at_that_epoch_only():
    prune = PruneAfter(2, lambda acc: True)
    _, tr = make(epochs=5, callbacks=[prune])
    h = tr.train()
    assert prune.pruned and h.epochs_run == 2
    keep = PruneAfter(2, lambda acc: False)
    _, tr = make(epochs=5, callbacks=[keep])
    assert not keep.pruned and tr.train().epochs_run == 5


def test_prune_after_equals_the_hand_driven_loop_it_replaced():
    seen = []
    prune = PruneAfter(3, lambda acc: seen.append(acc) or True)
    net_a, a = make(epochs=5, callbacks=[prune])
    a.train()
    net_b, b = make(epochs=5)
    while not b.finished:  # what the search's objective did before
        epoch = b.current_epoch
        b.train_step()
        if b.current_epoch != epoch and b.current_epoch == 3:
            break
    assert a.test_acc_list == b.test_acc_list and seen == [b.test_acc_list[-1]]
    assert a.train_loss_list == b.train_loss_list and weights(net_a) == weights(net_b)


def test_a_checkpoint_path_in_a_missing_folder_is_refused_at_construction(tmp_path):
    x, t = blobs()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Trainer(
            MultiLayerNet(10, [8], 4),
            x,
            t,
            x,
            t,
            epochs=1,
            verbose=False,
            checkpoint_path=tmp_path / "missing" / "run.npz",
        )
    with pytest.raises(IsADirectoryError, match="is a folder"):
        Checkpoint(tmp_path)


def test_a_ctrl_c_during_the_lazy_tqdm_import_waits_until_it_is_whole():
    """The bar imports tqdm lazily; a Ctrl-C in the middle of that import left its modules
    half-initialised and every later train() failed with a NameError (issue 22).  In a
    fresh process (tqdm not yet imported), a real SIGINT lands inside the import."""
    import subprocess
    import sys

    code = """
import os, signal, sys
from xpscratch.training.progress import open_bar

class SigintOnImport:
    def find_spec(self, name, path, target=None):
        if name == "tqdm.std":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, SigintOnImport())
try:
    open_bar(3, "x").close()
    print("no interrupt")
except KeyboardInterrupt:
    print("interrupted", "tqdm.auto" in sys.modules)
sys.meta_path.pop(0)
bar = open_bar(3, "x", file=open(os.devnull, "w"))
bar.update(1)
bar.close()
print("bar works")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split("\n")[:2] == ["interrupted True", "bar works"], out.stdout + out.stderr
