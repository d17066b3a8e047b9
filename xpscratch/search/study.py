"""Running a search: trials in parallel processes, optionally in a shared study.

Two engines, one result:

* random search without a storage needs nothing but xpscratch: trial ``k`` gets
  :func:`~xpscratch.search.space.sample` ``(space, seed, k, study_name)`` and the trials
  run in this process or in a pool of ``workers`` processes;
* TPE, or any ``storage``, goes through Optuna (:mod:`._optuna`): every worker process,
  here or on other machines, claims trials from the same study, so a search resumes
  where it stopped and machines share the work.

Every trial trains with the same network seed and its own hyperparameters only, so a
random search gives the same numbers whatever the number of workers or machines.
Worker processes are started with ``spawn`` (safe with torch and CUDA) and activate the
backend, device and float dtype that were active where the search started.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any

from .. import backend as _backend
from .._plain import plain
from ._storage import check_storage, check_study_name, mask_password
from ._workers import OnTrial, SearchError, activate, device_spec, worker_died
from .objective import Objective, TrialRecord
from .space import Param, Space, format_space, narrow, parse_space, sample, space_to_dict

__all__ = ["SAMPLERS", "SearchError", "SearchResult", "check_storage", "search"]

SAMPLERS = ("random", "tpe")
DEFAULT_STUDY = "xpscratch-search"
CHANCE = 0.1  # accuracy of a guess among MNIST's ten classes


def check_importable(objective: Any, workers: int) -> None:
    """Refuse, before any work, an objective that spawned workers could not unpickle.

    A class defined in a notebook or an interactive session lives in a ``__main__``
    without a file, which a spawned process cannot import.
    """
    cls = type(objective)
    main = sys.modules.get("__main__")
    if workers > 1 and cls.__module__ == "__main__" and not getattr(main, "__file__", None):
        raise ValueError(
            f"objective {cls.__name__} is defined in this notebook or interactive session, "
            f"which the {workers} spawned worker processes cannot import: move the class "
            "into a .py module next to the notebook and import it, use the built-in "
            "Objective, or pass workers=1"
        )


@dataclass
class SearchResult:
    """Every trial (in trial-number order) and how the search was run; JSON via ``to_dict``.

    A trial is ``{"number", "params", "value", "state", "val_acc", "train_acc",
    "epochs", "seconds"}``; ``value`` is the final validation accuracy, ``state`` one
    of complete, pruned or diverged.
    """

    space: dict[str, Any]
    sampler: str
    seed: int
    study_name: str
    storage: str | None
    workers: int
    objective: dict[str, Any]
    trials: list[TrialRecord]
    backend: str
    device: str
    dtype: str
    elapsed_s: float

    @property
    def param_space(self) -> Space:
        return parse_space(self.space)

    def best(self, k: int = 1) -> list[TrialRecord]:
        """The ``k`` best trials, best first (ties: the earlier trial first)."""
        return sorted(self.trials, key=lambda t: -t["value"])[:k]

    def trials_to_reach(self, accuracy: float) -> int | None:
        """How many trials (in order) it took to reach ``accuracy``; None if never."""
        for i, t in enumerate(self.trials):
            if t["value"] >= accuracy:
                return i + 1
        return None

    def chance_margin(self) -> float:
        """How far above chance (1/10) a validation accuracy must be to mean anything.

        Three standard deviations of a chance-level classifier's accuracy on the
        validation set (binomial, p = 0.1), and never less than 0.05.
        """
        o = self.objective
        n_val = int(int(o.get("train_size", 0)) * float(o.get("validation_rate", 0.0)))
        sd = math.sqrt(CHANCE * (1 - CHANCE) / n_val) if n_val > 0 else 0.0
        return max(3 * sd, 0.05)

    def at_chance(self) -> bool:
        """True when even the best trial is within noise of chance: narrowing means nothing."""
        return self.best()[0]["value"] < CHANCE + self.chance_margin()

    def narrowed(self, top_k: int = 5) -> Space:
        """The next round's space around the ``top_k`` best trials above chance (the
        book's next round; :func:`~xpscratch.search.space.narrow`)."""
        chance_level = CHANCE + self.chance_margin()
        return narrow(self.param_space, self.trials, top_k, chance_level=chance_level)

    def pruning(self) -> dict[str, Any]:
        """Pruned trials and the epochs (and an estimate of the seconds) they saved."""
        epochs = int(self.objective["epochs"])
        pruned = [t for t in self.trials if t["state"] == "pruned"]
        saved = sum(epochs - t["epochs"] for t in pruned)
        run = sum(t["epochs"] for t in self.trials)
        per_epoch = sum(t["seconds"] for t in self.trials) / max(run, 1)
        return {
            "pruned": len(pruned),
            "epochs_run": run,
            "epochs_saved": saved,
            "fraction_saved": saved / (run + saved) if run + saved else 0.0,
            "seconds_saved_estimate": round(saved * per_epoch, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["pruning"] = self.pruning()
        d["narrowed_space"] = space_to_dict(self.narrowed())
        return plain(d, "SearchResult")

    def summary(self) -> str:
        b = self.best()[0]
        params = ", ".join(f"{k} {_fmt(v)}" for k, v in b["params"].items())
        lines = [
            f"{len(self.trials)} trials ({self.sampler} search, {self.workers} worker(s), "
            f"{self.elapsed_s:.1f} s): best val acc {b['value']:.3f} (trial {b['number']}: "
            f"{params})"
        ]
        top = self.best(5)
        for name in b["params"]:
            vals = [t["params"][name] for t in top]
            if all(isinstance(v, float) for v in vals):
                lines.append(f"  best-{len(top)} {name}: {min(vals):.1e}..{max(vals):.1e}")
        p = self.pruning()
        if self.objective.get("prune_after"):
            lines.append(
                f"  pruned {p['pruned']} trials at epoch {self.objective['prune_after']}: "
                f"{p['epochs_saved']} epochs saved ({p['fraction_saved']:.0%}, "
                f"~{p['seconds_saved_estimate']:.1f} s of training)"
            )
        if self.at_chance():
            lines.append(
                f"  the best trials are within noise of chance (val acc {b['value']:.3f} < "
                f"{CHANCE:.1f} + {self.chance_margin():.3f}): their ranges say nothing, so no "
                "narrowed space is offered; train more epochs or search a wider space"
            )
        else:
            lines.append(f"  narrowed space: {format_space(self.narrowed())}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.2e}" if isinstance(v, float) else str(v)


def search(
    space: str | Mapping[str, Param | str],
    trials: int,
    objective: Objective | None = None,
    *,
    sampler: str = "random",
    seed: int = 0,
    workers: int = 1,
    storage: str | None = None,
    study_name: str = DEFAULT_STUDY,
    on_trial: OnTrial | None = None,
) -> SearchResult:
    """Run ``trials`` trials of ``objective`` over ``space``; the best by validation accuracy.

    ``sampler``: "random" (the book's; reproducible from ``seed``) or "tpe" (Optuna's
    Bayesian TPE, seeded).  ``workers`` processes run trials at once on this machine.
    ``storage`` (an Optuna storage: ``sqlite:///study.db``, ``journal:study.log``,
    ``postgresql://...``) keeps the study, so that rerunning the same call resumes it
    and other machines can work on it at the same time (same ``study_name``).
    ``on_trial(trial, finished, total)`` is called as each trial finishes.  With
    ``workers > 1``, a script must start the search under ``if __name__ == "__main__":``
    (the worker processes are spawned, and import the script); in a notebook the
    built-in :class:`Objective` works as it is, and a subclass must live in a module.
    """
    space = parse_space(space)
    objective = objective or Objective()
    objective.check(space)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    for name, value in (("trials", trials), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    check_storage(storage)
    check_study_name(study_name, storage)
    check_importable(objective, workers)

    b = _backend.get_backend()
    dtype = objective.dtype or _backend.get_default_dtype()
    _backend.float_dtype(b.xp, dtype, b.device)  # float64 on a device without it: fail now
    objective = replace(objective, dtype=dtype)
    where = (b.name, device_spec(b), dtype, workers)
    start = time.perf_counter()
    if sampler == "random" and storage is None:
        records = _run_random(space, trials, objective, seed, study_name, where, on_trial)
    else:
        from ._optuna import StudyConfig, run_study  # lazily: Optuna is an optional extra

        cfg = StudyConfig(space, trials, objective, sampler, seed, storage, study_name, where)
        records = run_study(cfg, on_trial)
    return SearchResult(
        space=space_to_dict(space),
        sampler=sampler,
        seed=seed,
        study_name=study_name,
        storage=mask_password(storage),
        workers=workers,
        objective=objective.to_dict(),
        trials=records,
        backend=b.name,
        device=str(b.device),
        dtype=dtype,
        elapsed_s=round(time.perf_counter() - start, 3),
    )


def _run_random(
    space: Space,
    trials: int,
    objective: Objective,
    seed: int,
    study_name: str,
    where: tuple,
    on_trial: OnTrial | None,
) -> list[TrialRecord]:
    draws = [sample(space, seed, k, study_name) for k in range(trials)]
    records: list[TrialRecord | None] = [None] * trials

    def done(k: int, rec: TrialRecord) -> None:
        records[k] = {"number": k, "params": draws[k], **rec}
        if on_trial is not None:
            on_trial(records[k], sum(r is not None for r in records), trials)

    workers = min(where[3], trials)
    if workers == 1:
        for k in range(trials):
            done(k, objective(draws[k]))
        return records  # type: ignore[return-value]
    context = multiprocessing.get_context("spawn")  # fork is unsafe with torch and CUDA
    pool = ProcessPoolExecutor(workers, context, initializer=activate, initargs=where)
    try:
        futures = {pool.submit(objective, draws[k]): k for k in range(trials)}
        for f in as_completed(futures):
            done(futures[f], f.result())
    except BrokenProcessPool as exc:
        raise SearchError(worker_died(None, None)) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after an error: no more trials
    return records  # type: ignore[return-value]
