"""Which regulariser helps, and by how much? The book's overfitting set-up, eight ways.

The set-up of :mod:`.overfit_weight_decay`: a 784-100x6-10 ReLU net (He init) learns
the first 300 training images with SGD lr 0.01, batches of 100, for 201 epochs, by the
book's Trainer.  The same network, data, batches, epochs and optimizer are trained
eight ways:

* ``none``: as is;
* ``weight_decay_l2``: the book's weight decay, lambda 0.1 (0.5 * lambda * ||W||^2);
* ``weight_decay_l1``: lambda * |W|, lambda 0.01.  The book gives no L1 value; 0.01
  pulls a typical weight (|W| about 0.1 under He init) as hard as the book's L2 does
  (0.1 * |W|).  0.1 as for L2 stops all learning;
* ``dropout``: the book's dropout, ratio 0.2 (non-inverted);
* ``early_stopping``: training stops once the accuracy on a validation set has not
  improved for 20 epochs, and the weights of its best epoch are put back.  The
  validation set is the 100 training images after the first 300 (never test images:
  choosing the epoch on the test set would flatter the test accuracy);
* ``label_smoothing``: the loss's target is 0.9 on the label plus 0.1/10 on every class;
* ``augmentation``: each mini-batch is randomly shifted (up to 2 pixels) and rotated
  (up to 15 degrees) on the device (:mod:`xpscratch.augment`); accuracy is measured
  on the unchanged images;
* ``ensemble``: 5 unregularised nets, independently seeded (weights and batch order),
  predicting by their averaged softmax probabilities (:mod:`xpscratch.ensemble`).

Each method is run with several seeds (seed, seed+1, ...): train accuracy (on the 300
images), test accuracy (whole test set, once at the end) and their gap, as mean and
spread.  The ensemble's members for seed s are the ``none`` net and nets seeded
s + 1000, s + 2000, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..augment import RandomShiftRotate
from ..ensemble import ensemble_accuracy
from ..networks import MultiLayerNetExtend
from ..optim import SGD
from ..trainer import Trainer
from ._common import (
    ExperimentResult,
    ExperimentSettings,
    load_host,
    mean,
    meta,
    progress_bar,
    resolve_settings,
    run_context,
    to_device,
)

NAME = "regularization_compare"
DESCRIPTION = "300 images, 6 hidden layers: train/test accuracy and gap of 8 regularisers"

METHODS = (
    "none",
    "weight_decay_l2",
    "weight_decay_l1",
    "dropout",
    "early_stopping",
    "label_smoothing",
    "augmentation",
    "ensemble",
)


@dataclass(frozen=True)
class Settings(ExperimentSettings):
    """The settings (``FULL``); ``QUICK`` is the fast look."""

    experiment: ClassVar[str] = NAME
    methods: tuple[str, ...] = METHODS
    seeds: int = 3  # runs per method: seed, seed+1, ...
    train_size: int = 300
    validation_size: int = 100  # training images 300..399, for early stopping only
    test_size: int | None = None  # None: the whole test set
    hidden_size_list: tuple[int, ...] = (100, 100, 100, 100, 100, 100)
    lr: float = 0.01
    batch_size: int = 100
    epochs: int = 201  # the book's max_epochs
    l2_lambda: float = 0.1  # the book's weight decay
    l1_lambda: float = 0.01  # about the book's L2 pull on a weight of 0.1 (see above)
    dropout_ratio: float = 0.2  # the book's
    patience: int = 20  # early stopping: epochs without a better validation accuracy
    label_smoothing: float = 0.1  # Szegedy et al. (2016)
    max_shift: float = 2.0  # augmentation: pixels
    max_degrees: float = 15.0  # augmentation: rotation
    ensemble_size: int = 5

    def check(self) -> None:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown or not self.methods:
            raise ValueError(f"{NAME}: unknown method(s) {unknown}; choose from {list(METHODS)}")
        if self.seeds < 1 or ("ensemble" in self.methods and self.ensemble_size < 1):
            raise ValueError(f"{NAME}: seeds and ensemble_size must be at least 1")
        if "early_stopping" in self.methods and self.validation_size < 1:
            raise ValueError(
                f"{NAME}: early stopping needs validation_size >= 1 (images after the training set)"
            )


FULL = Settings()
QUICK = FULL.replace(seeds=2, epochs=100, test_size=2000, ensemble_size=3)

LABELS = {
    "none": "none",
    "weight_decay_l2": "L2 {l2_lambda:g}",
    "weight_decay_l1": "L1 {l1_lambda:g}",
    "dropout": "dropout {dropout_ratio:g}",
    "early_stopping": "early stop ({patience})",
    "label_smoothing": "smoothing {label_smoothing:g}",
    "augmentation": "augment ±{max_shift:g}px ±{max_degrees:g}°",
    "ensemble": "ensemble of {ensemble_size}",
}
MEMBER_SEED_STEP = 1000  # ensemble member k of seed s is seeded s + 1000 k
EVALUATE_PER_EPOCH = 100  # images for the per-epoch accuracies the Trainer records (unused here)


@dataclass
class RegularizationCompareResult(ExperimentResult):
    methods: list[str]
    labels: list[str]  # per method, with its strength
    train_acc: dict[str, list[float]]  # per method, per seed
    test_acc: dict[str, list[float]]
    member_train_acc: list[list[float]]  # per seed, per ensemble member (member 0: none)
    member_test_acc: list[list[float]]
    best_epoch: list[int]  # early stopping, per seed: the epoch whose weights were kept
    epochs_run: list[int]  # early stopping, per seed

    def gap(self, method: str) -> list[float]:
        """Train minus test accuracy, per seed."""
        return [a - b for a, b in zip(self.train_acc[method], self.test_acc[method], strict=True)]

    def stats(self, method: str) -> dict[str, dict[str, float]]:
        """Mean, min and max over seeds of train accuracy, test accuracy and the gap."""
        out = {}
        for key, values in (
            ("train", self.train_acc[method]),
            ("test", self.test_acc[method]),
            ("gap", self.gap(method)),
        ):
            out[key] = {"mean": mean(values), "min": min(values), "max": max(values)}
        return out

    def table(self) -> str:
        """A Markdown table: mean (min-max) over seeds for each method."""
        n = len(self.train_acc[self.methods[0]])
        lines = [
            f"| method | train acc | test acc | gap | (mean (min-max) of {n} seeds)",
            "|---|---|---|---|",
        ]
        for method, label in zip(self.methods, self.labels, strict=True):
            cells = [
                f"{s['mean']:.3f} ({s['min']:.3f}-{s['max']:.3f})"
                for s in self.stats(method).values()
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def summary(self) -> str:
        n = len(self.train_acc[self.methods[0]])
        means = {m: self.stats(m) for m in self.methods}
        test = ", ".join(f"{m} {means[m]['test']['mean']:.3f}" for m in self.methods)
        gap = ", ".join(f"{m} {means[m]['gap']['mean']:.3f}" for m in self.methods)
        best = max(self.methods, key=lambda m: means[m]["test"]["mean"])
        tight = min(self.methods, key=lambda m: means[m]["gap"]["mean"])
        lines = [f"test acc (mean of {n} seeds): {test}", f"train-test gap: {gap}"]
        last = f"best test accuracy: {best}; smallest gap: {tight}"
        if "none" in means:
            base = means["none"]["test"]["mean"]
            last += f" (best is {means[best]['test']['mean'] - base:+.3f} over none)"
        lines.append(last)
        return "\n".join(lines)


def fit(
    network: Any,
    x: Any,
    t: Any,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    test: tuple[Any, Any],
    augment: Any = None,
    validation: tuple[Any, Any] | None = None,
    patience: int | None = None,
) -> Trainer:
    """The book's Trainer with SGD, quiet; early stopping (best weights restored) with
    ``validation`` and ``patience``.  Per-epoch accuracies use the first
    ``EVALUATE_PER_EPOCH`` images only: this experiment reports final ones."""
    stopping = validation is not None and patience is not None
    trainer = Trainer(
        network,
        x,
        t,
        *test,
        epochs=epochs,
        mini_batch_size=batch_size,
        optimizer=SGD(lr=lr),
        evaluate_sample_num_per_epoch=EVALUATE_PER_EPOCH,
        verbose=False,
        seed=seed,
        x_val=validation[0] if stopping else None,
        t_val=validation[1] if stopping else None,
        early_stopping_patience=patience if stopping else None,
        restore_best=stopping,
        augment=augment,
    )
    trainer.train()
    return trainer


def run_regularization_compare(
    *,
    seed: int = 0,
    quick: bool = False,
    dataset: str = "mnist-small",
    dtype: str | None = None,
    progress: bool = False,
    **overrides: Any,
) -> RegularizationCompareResult:
    """Train the overfitting net with each regulariser and several seeds; final accuracies."""
    s = resolve_settings(FULL, QUICK, quick, overrides)
    methods = list(s.methods)
    n_train, n_val = s.train_size, s.validation_size
    seeds = [seed + i for i in range(s.seeds)]
    members = s.ensemble_size
    epochs, batch_size, lr = s.epochs, s.batch_size, s.lr

    with run_context(dtype) as (backend, dt, start):
        x_all, t_all, x_test, t_test = load_host(
            dataset, train_size=n_train + n_val, test_size=s.test_size
        )
        x, t = to_device(x_all[:n_train], dt), to_device(t_all[:n_train], dt)
        x_val, t_val = to_device(x_all[n_train:], dt), to_device(t_all[n_train:], dt)
        x_test, t_test = to_device(x_test, dt), to_device(t_test, dt)
        runs_per_seed = (
            len(methods)
            - ("ensemble" in methods)
            + (members - 1 + ("none" not in methods) if "ensemble" in methods else 0)
        )
        bar = progress_bar(len(seeds) * runs_per_seed * epochs, NAME, progress)

        def train(run_seed: int, method: str = "none") -> Any:
            kwargs: dict[str, Any] = {}
            if method == "weight_decay_l2":
                kwargs = {"weight_decay_lambda": s.l2_lambda}
            elif method == "weight_decay_l1":
                kwargs = {"weight_decay_lambda": s.l1_lambda, "weight_decay_kind": "l1"}
            elif method == "dropout":
                kwargs = {"use_dropout": True, "dropout_ratio": s.dropout_ratio}
            elif method == "label_smoothing":
                kwargs = {"label_smoothing": s.label_smoothing}
            network = MultiLayerNetExtend(
                x.shape[1], s.hidden_size_list, 10, seed=run_seed, dtype=dt, **kwargs
            )
            augment = None
            if method == "augmentation":
                augment = RandomShiftRotate(
                    s.max_shift,
                    s.max_degrees,
                    seed=run_seed,
                    purpose=f"{NAME}/augment",
                )
            stopping = method == "early_stopping"
            trainer = fit(
                network,
                x,
                t,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=run_seed,
                test=(x_test, t_test),
                augment=augment,
                validation=(x_val, t_val) if stopping else None,
                patience=s.patience if stopping else None,
            )
            bar.update(epochs)  # epochs that early stopping saved included
            return network, trainer

        def accuracies(networks: list[Any]) -> tuple[float, float]:
            """Train and test accuracy of one network, or of an ensemble."""
            if len(networks) == 1:
                net = networks[0]
                return net.accuracy(x, t), net.accuracy(x_test, t_test, batch_size=2000)
            return (
                ensemble_accuracy(networks, x, t),
                ensemble_accuracy(networks, x_test, t_test, batch_size=2000),
            )

        train_acc: dict[str, list[float]] = {m: [] for m in methods}
        test_acc: dict[str, list[float]] = {m: [] for m in methods}
        member_train, member_test, best_epoch, epochs_run = [], [], [], []
        try:
            for sd in seeds:
                plain = None
                for method in (m for m in methods if m != "ensemble"):
                    network, trainer = train(sd, method)
                    if method == "none":
                        plain = network  # also the ensemble's first member
                    if method == "early_stopping":
                        best_epoch.append(int(trainer.best_epoch))
                        epochs_run.append(int(trainer.current_epoch))
                    train_a, test_a = network.accuracy(x, t), trainer.final_test_acc
                    train_acc[method].append(train_a)
                    test_acc[method].append(test_a)
                if "ensemble" in methods:
                    nets = [plain if plain is not None else train(sd)[0]]
                    nets += [train(sd + MEMBER_SEED_STEP * k)[0] for k in range(1, members)]
                    each = [accuracies([net]) for net in nets]
                    member_train.append([a for a, _ in each])
                    member_test.append([b for _, b in each])
                    train_a, test_a = accuracies(nets)
                    train_acc["ensemble"].append(train_a)
                    test_acc["ensemble"].append(test_a)
        finally:
            bar.close()
        return RegularizationCompareResult(
            settings=s,
            **meta(backend, dt, seed, dataset, start),
            methods=methods,
            labels=[LABELS[m].format(**s) for m in methods],
            train_acc=train_acc,
            test_acc=test_acc,
            member_train_acc=member_train,
            member_test_acc=member_test,
            best_epoch=best_epoch,
            epochs_run=epochs_run,
        )
