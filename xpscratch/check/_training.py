"""Group 4, training: seeded training runs, a Trainer run, and checkpoints that cross
between this backend and NumPy in both directions, all against NumPy's numbers.

Moved here from the test suite (which now calls this group on every backend):
``test_training_matches_numpy_on_every_backend`` (tests/test_networks.py),
``test_cross_backend_training_matches_numpy`` (tests/test_trainer.py) and
``test_numpy_checkpoint_continues_on_every_backend`` (tests/test_checkpoint.py), with
their cases and tolerances.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np  # seeded host data sets

from ..backend import asarray, backend_name, get_backend, to_numpy
from ..checkpoint import load_checkpoint
from ..networks import MultiLayerNetExtend
from ..optim import SGD, Adam, Momentum, Optimizer
from ..trainer import Trainer
from ._compare import Banded, Group
from ._target import Target


def _data(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, n)


def _blobs(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    t = rng.integers(0, k, n)
    return centers[t] + rng.normal(size=(n, d)), t.astype(np.int64)


# name -> (optimizer, network settings, hidden sizes, data (n, d, classes), batch size)
RUNS: dict[str, tuple[Callable[[], Optimizer], dict, list[int], tuple[int, int, int], int]] = {
    "SGD + L2": (lambda: SGD(lr=0.1), {"weight_decay_lambda": 0.01}, [8, 8], (40, 10, 4), 10),
    "Adam + BN + Dropout": (
        lambda: Adam(lr=0.01),
        {"use_batchnorm": True, "use_dropout": True, "dropout_ratio": 0.2},
        [8, 8],
        (40, 10, 4),
        10,
    ),
    "Momentum + LayerNorm": (
        lambda: Momentum(lr=0.05),
        {"use_layernorm": True, "activation": "tanh"},
        [8, 8],
        (40, 10, 4),
        10,
    ),
    # the book's 5-layer network (4 hidden layers) with BatchNorm and Dropout, Adam
    "5-layer BN + Dropout, Adam": (
        lambda: Adam(lr=0.005),
        {"use_batchnorm": True, "use_dropout": True, "dropout_ratio": 0.15},
        [32, 32, 32, 32],
        (200, 20, 10),
        25,
    ),
}


def train_run(name: str, dtype: str, steps: int) -> dict[str, np.ndarray]:
    """``steps`` mini-batch updates; the loss of every step and the final parameters."""
    make_opt, kwargs, hidden, (n, d, classes), batch = RUNS[name]
    X, T = _data(n, d, classes, seed=1)
    net = MultiLayerNetExtend(d, hidden, classes, seed=3, dtype=dtype, **kwargs)
    x, t = asarray(X, dtype), asarray(T)
    optimizer = make_opt()
    losses = []
    for i in range(steps):
        lo = (i * batch) % n
        xb, tb = x[lo : lo + batch, ...], t[lo : lo + batch]
        losses.append(net.loss(xb, tb, train_flg=True))
        optimizer.update(net.params, net.gradient(xb, tb))
    out = {f"param {k}": to_numpy(v) for k, v in net.params.items()}
    out["losses"] = np.array([float(to_numpy(v)) for v in losses])
    return out


def trainer_run(dtype: str) -> dict[str, Any]:
    """Two epochs of the Trainer (BN + Dropout, Adam) on Gaussian blobs."""
    x, t = _blobs(200, 20, 5)
    net = MultiLayerNetExtend(
        20,
        [16, 16],
        5,
        use_batchnorm=True,
        use_dropout=True,
        dropout_ratio=0.2,
        dtype=dtype,
        seed=2,
    )
    h = Trainer(
        net,
        x,
        t,
        x[:50],
        t[:50],
        epochs=2,
        mini_batch_size=16,
        optimizer="Adam",
        optimizer_param={"lr": 0.01},
        verbose=False,
        seed=3,
    ).train()
    return {"train_loss": np.array(h.train_loss), "train_acc": h.train_acc, "test_acc": h.test_acc}


X, T = _blobs(90, 10, 4)
XV, TV = _blobs(30, 10, 4, seed=1)
RICH = {"use_batchnorm": True, "use_dropout": True, "dropout_ratio": 0.2}


def _trainer(dtype: str, epochs: int) -> Trainer:
    net = MultiLayerNetExtend(10, [8, 8], 4, dtype=dtype, seed=0, **RICH)
    return Trainer(
        net,
        X,
        T,
        X[:40],
        T[:40],
        verbose=False,
        x_val=XV,
        t_val=TV,
        epochs=epochs,
        optimizer="Adam",
        optimizer_param={"lr": 0.01},
        mini_batch_size=16,
    )


def _resume(path: str, dtype: str) -> Trainer:
    # The op-by-op step, as before compiled steps were the default: in float32 a compiled
    # (XLA) 4-epoch BN + dropout + Adam run lands up to 4.5x the NumPy noise band away on
    # BN's beta and the last bias (rounding, not formulas: compiled vs eager agree to 1e-9
    # in float64); the band policy does not cover compiled rounding yet (group "compiled").
    net = MultiLayerNetExtend(10, [8, 8], 4, dtype=dtype, seed=1, **RICH)
    return Trainer.resume(
        path, X, T, X[:40], T[:40], x_val=XV, t_val=TV, verbose=False, epochs=4, network=net,
    )  # fmt: skip


def _state(tr: Trainer) -> dict[str, Any]:
    s = tr.network.state_dict()
    out = {f"{grp} {k}": to_numpy(v) for grp in ("params", "buffers") for k, v in s[grp].items()}
    out["train_loss"] = np.array(tr.train_loss_list)
    out["rng"] = s["rng"]
    out["step"] = (tr.optimizer.step, tr.current_iter)
    return out


def _save_first_half(dtype: str, directory: str, tag: str) -> str:
    first = _trainer(dtype, 2)
    first.train()
    path = os.path.join(directory, f"{tag}.ckpt")
    first.save_checkpoint(path)
    return path


def _fed_to_batchnorm(t: Target, hidden: int, prefix: str) -> set[str]:
    """In float32, the biases that feed a BatchNorm: their gradient is zero in theory and
    only rounding noise in practice, which Adam turns into steps of size lr in a random
    direction.  They cannot agree and change nothing downstream (BN subtracts them)."""
    if t.dtype == "float64":
        return set()
    return {f"{prefix}b{i}" for i in range(1, hidden + 1)}


def check_training(t: Target, g: Group) -> None:
    tol = t.tol.trajectory
    steps = t.steps or 300
    for name, (_, kwargs, hidden, _, _) in RUNS.items():
        noise = (
            _fed_to_batchnorm(t, len(hidden), "param ") if kwargs.get("use_batchnorm") else set()
        )
        with g.case(name):
            mine, ref = t.both(
                ("train", name, steps), lambda dtype, name=name: train_run(name, dtype, steps)
            )
            truth = ref.truth["losses"]
            g.require(f"{name}: NumPy's loss falls", truth[-1] < truth[0])
            for k in ref:
                if k not in noise:
                    g.close(f"{name} {k} ({steps} steps)", mine[k], ref[k], tol)
        if noise:
            g.notes.append(f"{name}: {sorted(noise)} not compared in float32 (zero gradient)")
    with g.case("Trainer epoch"):
        mine, ref = t.both(("trainer",), trainer_run)
        g.close("Trainer train_loss (2 epochs)", mine["train_loss"], ref["train_loss"], tol)
        g.require(
            "Trainer: 26 losses", len(mine["train_loss"]) == len(ref.truth["train_loss"]) == 26
        )
        accuracies = (mine["train_acc"], mine["test_acc"])
        g.require(
            "Trainer accuracies as one of NumPy's runs",
            ref.any(lambda r: (r["train_acc"], r["test_acc"]) == accuracies),
            f"{accuracies} vs NumPy's {(ref.truth['train_acc'], ref.truth['test_acc'])}",
        )
    # the band of the whole 4-epoch run (a float32 BN's statistics drift within a few
    # epochs: the nudged runs show how far)
    rtol, atol = tol, 0.0
    skip = _fed_to_batchnorm(t, 2, "params ")
    with tempfile.TemporaryDirectory(prefix="xpscratch-check-") as tmp:
        with g.case("checkpoint NumPy -> backend"):
            straight = t.references.banded(("ckpt straight",), t.dtype, _straight)
            path = t.references.get(
                ("ckpt numpy", tmp), t.dtype, lambda dtype: _save_first_half(dtype, tmp, "numpy")
            )
            with t.active() as b:
                resumed = _resume(path, t.dtype)
                resumed.train()
                here = _state(resumed)
                g.require(
                    "resumed on the backend's device",
                    get_backend().device == b.device and resumed.current_epoch == 4,
                )
                _compare_state(g, "NumPy checkpoint resumed here", here, straight, rtol, atol, skip)
                # and the reverse: saved on this backend, resumed on NumPy
                back_path = _save_first_half(t.dtype, tmp, "backend")
                saved = load_checkpoint(back_path)
                g.require(
                    "checkpoint records the backend",
                    saved["backend"] in (b.name, backend_name(b.xp)),
                )
            with g.case("checkpoint backend -> NumPy"):
                there = t.references.get(
                    ("ckpt back", back_path, t.label),
                    t.dtype,
                    lambda dtype: _state_after(_resume(back_path, dtype)),
                )
                _compare_state(
                    g, "backend checkpoint resumed on NumPy", there, straight, rtol, atol, skip
                )


def _straight(dtype: str) -> dict[str, Any]:
    return _state_after(_trainer(dtype, 4))


def _state_after(tr: Trainer) -> dict[str, Any]:
    tr.train()
    return _state(tr)


def _compare_state(
    g: Group, what: str, mine: dict, ref: Banded, rtol: float, atol: float, skip: set[str]
) -> None:
    plain = ref.plain
    g.require(
        f"{what}: dropout streams and step",
        mine["rng"] == plain["rng"] and mine["step"] == plain["step"],
        f"{mine['rng']}, {mine['step']} vs {plain['rng']}, {plain['step']}",
    )
    for k in ref:
        if k not in ("rng", "step") and k not in skip:
            g.close(f"{what}: {k}", mine[k], ref[k], rtol, atol)
