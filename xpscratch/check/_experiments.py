"""Group 5, the book's results: each experiment's numbers against NumPy's.

Moved here from the test suite's ``test_<name>_agrees`` tests (tests/test_experiments.py,
test_regularization_compare.py, test_lr_schedule_compare.py, test_optimizer_zoo.py),
with their settings (``SHORT``, the tests' former ``CROSS``): losses and paths within the
policy's band around NumPy's float64 truth (:mod:`._policy`), accuracies within the band
plus one sample of the evaluated set, discrete outcomes (which runs diverged, the
sampled hyperparameters, early-stopping epochs, steps to a target) equal to those of one
of NumPy's runs (the truth, the plain run or a nudged one).

``xpscratch check --quick`` and the test suite run ``SHORT``; the full check runs each
experiment at its own ``--quick`` size (``Experiment.quick``, as ``xpscratch run --quick``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..experiments import EXPERIMENTS
from ._compare import Group
from ._target import Target

# Short runs for the cross-backend comparison (a few seconds each on strict).
SHORT: dict[str, dict[str, Any]] = {
    "optimizer_compare_naive": {},
    "weight_init_activation_histogram": {},
    "optimizer_compare_mnist": {"iterations": 30},
    "weight_init_compare": {"iterations": 30},
    "batch_norm_test": {"num_scales": 3, "epochs": 2},
    "overfit_weight_decay": {"epochs": 4, "test_size": 500},
    "overfit_dropout": {"epochs": 4, "test_size": 500},
    "hyperparameter_optimization": {"trials": 3, "epochs": 3, "rounds": 2, "train_size": 200},
    "regularization_compare": {"seeds": 1, "epochs": 3, "test_size": 500, "ensemble_size": 2},
    "lr_schedule_compare": {"iterations": 30, "test_size": 500},
    "optimizer_zoo": {"steps": {"bowl": 30, "saddle": 100, "rosenbrock": 200, "himmelblau": 50}},
}

TRAIN_ACC_ATOL = 4e-3  # one image of the book's 300-image training set
BN_ACC_ATOL = 1.5e-3  # one image of batch_norm_test's 1000
HYPER_ACC_ATOL = 0.011  # one image of the 40 validation images at SHORT size


def settings(name: str, quick: bool) -> dict[str, Any]:
    exp = EXPERIMENTS[name]
    return dict(SHORT[name]) if quick else dict(exp.quick)


def _test_atol(s: dict[str, Any], name: str) -> float:
    n = s.get("test_size", EXPERIMENTS[name].full.get("test_size") or 10000)
    return 1.25 / n  # one image (2.5e-3 of 500, as the tests had)


def _naive(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    for name, path in r.trajectories.items():
        g.close(f"trajectory {name}", path, ref.trajectories[name], t.tol.trajectory)
    best = min(r.final_distance, key=r.final_distance.get)
    g.require(
        "AdaGrad closest, as on NumPy",
        ref.any(lambda x: min(x.final_distance, key=x.final_distance.get) == best),
    )


def _losses(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    for name, losses in r.train_loss.items():
        g.close(f"train_loss {name}", losses, ref.train_loss[name], t.tol.loss)


# Activation statistics through five saturating layers: the nudged inputs move tanh's
# and sigmoid's arguments, not the last-ulp rounding of their values that another libm
# makes, which the stacked layers amplify (torch float64: up to 9.2e-14 relative).
_LIBM_RTOL = {"float64": 1e-12, "float32": 0.0}


def _histograms(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    for act in r.stats:
        for init in r.stats[act]:
            mine = [list(layer.values()) for layer in r.stats[act][init]]
            theirs = ref.stats[act][init].map(lambda s: [list(layer.values()) for layer in s])
            g.close(f"stats {act} {init}", mine, theirs, t.tol.op + _LIBM_RTOL[t.dtype])

            def moved(h: Any, act: str = act, init: str = init) -> list[int]:
                return [
                    sum(abs(a - b) for a, b in zip(x, y, strict=True))
                    for x, y in zip(r.histograms[act][init], h, strict=True)
                ]

            hist = ref.histograms[act][init]
            g.require(
                f"histogram {act} {init}: at most 2 values moved a bin",
                hist.any(lambda h, moved=moved: max(moved(h)) <= 2),
                f"counts differ by {moved(hist.truth)}",
            )


def _batch_norm(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    g.close("weight_scales", r.weight_scales, ref.weight_scales, 0.0)
    g.close("bn_train_acc", r.bn_train_acc, ref.bn_train_acc, 0.0, BN_ACC_ATOL)
    # scale 1 without BN overflows to NaN, whose argmax is not specified: compare the rest
    g.close(
        "train_acc (scales after the first)", r.train_acc[1:], ref.train_acc[1:], 0.0, BN_ACC_ATOL
    )
    g.require(
        "the same runs diverged",
        ref.any(lambda x: x.diverged == r.diverged),
        f"{r.diverged} vs NumPy's {ref.truth.diverged}",
    )


def _accuracies(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    g.close("train_acc", r.train_acc, ref.train_acc, 0.0, TRAIN_ACC_ATOL)
    g.close("test_acc", r.test_acc, ref.test_acc, 0.0, _test_atol(s, "overfit_dropout"))


def _hyper(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    g.require("rounds", len(r.rounds) == len(ref.truth.rounds))
    for i, mine in enumerate(r.rounds):
        theirs = ref.rounds[i]
        g.require(
            f"round {i} ranges",
            theirs.any(lambda x, mine=mine: x["ranges"] == mine["ranges"]),
            f"{mine['ranges']} vs NumPy's {theirs.truth['ranges']}",
        )
        rates = [x["lr"] for x in mine["trials"]]
        g.require(
            f"round {i} sampled rates",
            theirs.any(lambda x, rates=rates: [y["lr"] for y in x["trials"]] == rates),
        )
        for j, a in enumerate(mine["trials"]):
            b = theirs["trials"][j]["val_acc"]
            g.close(f"round {i} trial {j} val_acc", a["val_acc"], b, 0.0, HYPER_ACC_ATOL)


def _regularization(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    g.require("methods", r.methods == ref.truth.methods)
    test_atol = _test_atol(s, "regularization_compare")
    for m in r.methods:
        g.close(f"{m} train_acc", r.train_acc[m], ref.train_acc[m], 0.0, TRAIN_ACC_ATOL)
        g.close(f"{m} test_acc", r.test_acc[m], ref.test_acc[m], 0.0, test_atol)
    g.close("member_test_acc", r.member_test_acc, ref.member_test_acc, 0.0, test_atol)
    g.require(
        "early stopping epochs",
        ref.any(lambda x: (x.epochs_run, x.best_epoch) == (r.epochs_run, r.best_epoch)),
        f"{r.epochs_run}, {r.best_epoch} vs NumPy's {ref.truth.epochs_run}, {ref.truth.best_epoch}",
    )
    if t.name == "array_api_strict" and t.dtype == "float64":
        # NumPy underneath, same operations: the very same numbers
        g.require(
            "strict float64: identical accuracies",
            (r.train_acc, r.test_acc) == (ref.plain.train_acc, ref.plain.test_acc),
        )


def _schedules(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    test_atol = 1.0 / s.get("test_size", 10000) + 1e-12  # one image, as the test had
    for opt, runs in r.train_loss.items():
        for kind, losses in runs.items():
            g.close(f"{opt} {kind} train_loss", losses, ref.train_loss[opt][kind], t.tol.loss)
            g.close(
                f"{opt} {kind} test_acc",
                r.test_acc[opt][kind],
                ref.test_acc[opt][kind],
                0.0,
                test_atol,
            )


def _zoo(g: Group, r: Any, ref: Any, t: Target, s: dict) -> None:
    for surface, paths in r.paths.items():
        for method, path in paths.items():
            g.close(f"{surface} {method} path", path, ref.paths[surface][method], t.tol.trajectory)
    g.require(
        "steps to target",
        ref.any(lambda x: x.steps_to_target == r.steps_to_target),
        f"{r.steps_to_target} vs NumPy's {ref.truth.steps_to_target}",
    )


COMPARE: dict[str, Callable[[Group, Any, Any, Target, dict], None]] = {
    "optimizer_compare_naive": _naive,
    "optimizer_compare_mnist": _losses,
    "weight_init_activation_histogram": _histograms,
    "weight_init_compare": _losses,
    "batch_norm_test": _batch_norm,
    "overfit_weight_decay": _accuracies,
    "overfit_dropout": _accuracies,
    "hyperparameter_optimization": _hyper,
    "regularization_compare": _regularization,
    "lr_schedule_compare": _schedules,
    "optimizer_zoo": _zoo,
}


# Compared in float64 only: in float32 their runs part from NumPy's through rounding alone
# (measured on torch-cpu at SHORT size; the float32 arithmetic is checked by the layers,
# optimizers and training groups and by the other eight experiments).
FLOAT64_ONLY = {
    "optimizer_compare_mnist": "float32 RMSprop/AdaGrad losses part by up to 57% within "
    "30 steps (lr 0.01 on unnormalised MNIST amplifies rounding)",
    "weight_init_activation_histogram": "float32 tanh saturates to exactly 1.0 on some "
    "backends, moving a few values across the last bin edge",
    "batch_norm_test": "float32 accuracies of the badly scaled nets part by a few images",
}


def check_experiment(name: str, t: Target, g: Group) -> None:
    if (
        t.dtype == "float32"
        and name in FLOAT64_ONLY
        and t.name not in ("numpy", "array_api_strict")
    ):
        g.notes.append(f"{name}: float64 only ({FLOAT64_ONLY[name]})")
        return
    s = settings(name, t.quick)
    with g.case(name):
        r, ref = t.both(
            ("experiment", name, t.quick), lambda dtype: EXPERIMENTS[name].run(dtype=dtype, **s)
        )
        g.require(f"{name} ran on {t.name}", r.backend == t.name, f"result says {r.backend}")
        COMPARE[name](g, r, ref, t, s)


def check_experiments(t: Target, g: Group) -> None:
    for name in EXPERIMENTS:
        check_experiment(name, t, g)
