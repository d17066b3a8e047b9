"""Searches kept in an Optuna study: TPE, resuming, and many processes or machines at once.

Trial slots.  A search of N trials fills slots 0..N-1, each with exactly one finished
trial.  A worker claims work with ``study.ask()``, which first pops a WAITING trial (a
retry) atomically and otherwise creates a new one, numbered by the storage under a lock.
A new trial's slot is the number of new (non-retry) trials numbered before it: computed
from data fixed when trials are created, so every process agrees on it without any lock
of ours; a new trial whose slot is N or more is marked FAIL unrun (surplus).  Random
search draws slot k's hyperparameters from Philox, so they do not depend on which worker
or machine runs it.

Dead workers.  A trial records its owner (host, pid, process start time).  A RUNNING
trial whose owner process on this host is gone is failed and its slot re-queued as a
WAITING copy with the same hyperparameters (the first worker to fail it wins; the
storage refuses the others).  On a database, trials also send Optuna heartbeats, so
that trials of a dead machine are re-queued by the other machines after ``GRACE_S``.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import queue
import socket
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

try:
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "TPE search and --storage need Optuna: pip install 'xpscratch[search]' "
        "(random search without a storage needs nothing more)"
    ) from exc

from ._storage import (
    StorageFailure,
    from_storage,
    opens_storage,
    storage_cause,
    storage_failed,
)
from ._workers import OnTrial, SearchError, activate, worker_died
from .objective import Objective, TrialRecord
from .space import Choice, LogUniform, Space, sample, space_to_dict

SLOT, OWNER, RETRY_OF, RESULT, CONFIG = (
    f"xpscratch:{k}" for k in ("slot", "owner", "retry_of", "result", "config")
)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_S = 0.5  # how often an idle worker or the parent looks at the study
HEARTBEAT_S = 10  # database storages: a running trial's heartbeat ...
GRACE_S = 60  # ... and how long without one before another machine re-queues it

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class StudyConfig:
    space: Space
    trials: int
    objective: Objective
    sampler: str
    seed: int
    storage: str | None
    study_name: str
    where: tuple  # (backend, device, dtype, workers) for worker processes

    def fingerprint(self) -> dict[str, Any]:
        """What must match for two runs to share a study (not the trial count or backend)."""
        objective = {k: v for k, v in self.objective.to_dict().items() if k != "dtype"}
        return {
            "space": space_to_dict(self.space),
            "sampler": self.sampler,
            "seed": self.seed,
            "objective": objective,
        }


class PhiloxSampler(optuna.samplers.BaseSampler):
    """Random search inside Optuna: slot k gets :func:`sample` ``(space, seed, k, name)``."""

    def __init__(self, space: Space, seed: int, purpose: str) -> None:
        self.space, self.seed, self.purpose = space, seed, purpose

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict:
        return {}

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> dict:
        return {}

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        return sample(self.space, self.seed, trial.user_attrs[SLOT], self.purpose)[name]


@contextmanager
def _quiet() -> Iterator[None]:
    # heartbeats and fail_stale_trials are "experimental" and meant for Study.optimize, which
    # cannot hand out trial slots: we use them as documented, and say so once, here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
        yield


def run_study(cfg: StudyConfig, on_trial: OnTrial | None) -> list[TrialRecord]:
    """Run the search in this process (one worker) or in ``workers`` spawned processes."""
    workers = cfg.where[3]
    with _quiet(), tempfile.TemporaryDirectory(prefix="xpscratch-search-") as tmp:
        if cfg.storage is None and workers > 1:  # processes cannot share an in-memory study
            cfg = replace(cfg, storage=f"journal:{os.path.join(tmp, 'study.log')}")
        study, _ = open_study(cfg)
        progress = _Progress(cfg.trials, on_trial)
        try:
            if workers == 1:
                work(study, cfg, progress)
            else:
                _run_workers(study, cfg, progress)
            progress.poll(study)
            return collect(study, cfg.trials)
        except Exception as exc:
            if not from_storage(exc):
                raise
            # the database died mid-search: say so, and keep what had finished
            records = [progress.records[k] for k in sorted(progress.records)]
            error = SearchError(storage_failed(cfg.storage, exc, len(records), cfg.trials))
            error.trials = records
            raise error from None


def _run_workers(study: Any, cfg: StudyConfig, progress: _Progress) -> None:
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(cfg, errors)) for _ in range(cfg.where[3])]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            progress.poll(study)
            _raise_reported(errors)
            died = [p for p in procs if p.exitcode not in (None, 0)]
            if died:
                _raise_reported(errors)  # its last words, if it had time to say them
                raise SearchError(worker_died(died[0].pid, died[0].exitcode))
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()  # its trial stays RUNNING, and is re-queued on resume
            p.join()


def _raise_reported(errors: Any) -> None:
    """Raise the error a worker reported, if one did within ``POLL_S``."""
    try:
        summary, details, storage = errors.get(timeout=POLL_S)
    except queue.Empty:
        return
    if storage:  # the parent names the storage, and keeps the finished trials
        raise StorageFailure(summary)
    exc = SearchError(f"a search worker failed: {summary}")
    exc.worker_traceback = details  # for a debugger; not for the message
    raise exc


def _worker_main(cfg: StudyConfig, errors: Any) -> None:
    try:
        activate(*cfg.where)
        parent = multiprocessing.parent_process()
        with _quiet():
            study, _ = open_study(cfg)
            # a worker whose search was killed stops after its trial instead of going on alone
            work(study, cfg, None, stop=lambda: parent is not None and not parent.is_alive())
    except BaseException as exc:
        if from_storage(exc):
            errors.put((storage_cause(exc, cfg.storage), traceback.format_exc(), True))
        else:
            errors.put((f"{type(exc).__name__}: {exc}", traceback.format_exc(), False))
        raise SystemExit(1) from None


def _make_storage(url: str | None) -> Any:
    if url is None:
        return None
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = url[len("journal:") :]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        url = f"postgresql+psycopg://{rest}"  # the driver [search] installs, on any SQLAlchemy
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}  # workers take turns
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(5):
        try:
            with _quiet():
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=_requeue,
                    **kwargs,
                )
        except (IntegrityError, OperationalError) as exc:
            # processes starting at once on a new database race to set it up: PostgreSQL
            # refuses the second row, SQLite the second "CREATE TABLE"
            racing = isinstance(exc, IntegrityError) or "already exists" in str(exc)
            if not racing or attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


@opens_storage
def open_study(cfg: StudyConfig) -> tuple[Any, Any]:
    """Create the study, or load it and check that it is the same search."""
    storage = _make_storage(cfg.storage)
    if cfg.sampler == "tpe":
        sampler: Any = optuna.samplers.TPESampler(seed=cfg.seed)
    else:
        sampler = PhiloxSampler(cfg.space, cfg.seed, cfg.study_name)
    study = optuna.create_study(
        storage=storage,
        sampler=sampler,
        study_name=cfg.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    mine, theirs = cfg.fingerprint(), study.user_attrs.get(CONFIG)
    if theirs is None:
        study.set_user_attr(CONFIG, mine)
    elif theirs != mine:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ValueError(
            f"study {cfg.study_name!r} in this storage was started with other settings "
            f"({', '.join(diff)} differ: {', '.join(f'{k}={theirs.get(k)}' for k in diff)}); "
            "rerun it with the same settings, or pick another study name"
        )
    return study, storage


# ---------------------------------------------------------------------------
# one worker
# ---------------------------------------------------------------------------


def work(study: Any, cfg: StudyConfig, progress: _Progress | None, stop: Any = None) -> None:
    """Claim and run trials until every slot of the study has a finished trial."""
    owner = _owner(os.getpid())
    storage = study._storage
    while stop is None or not stop():
        fail_dead(study)
        claim = _claim(study, cfg.trials, owner)
        if claim is None:
            if len(_finished_slots(study, cfg.trials)) >= cfg.trials:
                return
            if progress is not None:
                progress.poll(study)
            time.sleep(POLL_S)  # the rest are running elsewhere: wait for them (or their end)
            continue
        trial, slot = claim
        with _heartbeat(storage, trial._trial_id):
            try:
                params = {name: _suggest(trial, name, p) for name, p in cfg.space.items()}
                record = cfg.objective(params)
            except BaseException:
                # interrupted or failed: the slot goes back to the queue for a rerun
                _fail_and_requeue(study, study._storage.get_trial(trial._trial_id))
                raise
        trial.set_user_attr(RESULT, record)
        if record["state"] == "pruned":
            trial.report(record["value"], record["epochs"])  # how TPE ranks a pruned trial
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, record["value"])
        if progress is not None:
            progress.poll(study)


def _claim(study: Any, n: int, owner: str) -> tuple[Any, int] | None:
    trials = study.get_trials(deepcopy=False)
    waiting = any(t.state == TrialState.WAITING for t in trials)
    if not waiting and sum(RETRY_OF not in t.user_attrs for t in trials) >= n:
        return None
    trial = study.ask()
    trial.set_user_attr(OWNER, owner)
    slot = trial.user_attrs.get(SLOT)
    if slot is None:  # a new trial, not a retry
        slot = _fresh_slot(study.get_trials(deepcopy=False), trial.number)
        if slot >= n:  # another worker took the last slot since we looked
            study.tell(trial, state=TrialState.FAIL)
            return None
        trial.set_user_attr(SLOT, slot)
    return trial, slot


def _fresh_slot(trials: list[Any], number: int) -> int:
    return sum(t.number < number and RETRY_OF not in t.user_attrs for t in trials)


def _suggest(trial: Any, name: str, p: Any) -> Any:
    if isinstance(p, Choice):
        return trial.suggest_categorical(name, p.values)
    return trial.suggest_float(name, p.low, p.high, log=isinstance(p, LogUniform))


def _heartbeat_interval(storage: Any) -> int | None:
    get = getattr(storage, "get_heartbeat_interval", None)
    return None if get is None else get()


@contextmanager
def _heartbeat(storage: Any, trial_id: int) -> Iterator[None]:
    """Database storages: tell other machines this trial is alive while it trains."""
    if _heartbeat_interval(storage) is None:
        yield
        return
    beat = storage.record_heartbeat
    beat(trial_id)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                beat(trial_id)
            except Exception:  # the storage failed: the trial's end reports it, once
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# ---------------------------------------------------------------------------
# dead workers
# ---------------------------------------------------------------------------


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "" if fields[0] in "ZX" else fields[19]  # a zombie has ended


def _owner(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _dead(t: Any) -> bool:
    owner = t.user_attrs.get(OWNER)
    if owner is None:  # died between creating the trial and naming itself, or elsewhere
        start = t.datetime_start
        now = datetime.datetime.now(start.tzinfo) if start else None
        return start is not None and (now - start).total_seconds() > GRACE_S
    host, pid, started = owner.rsplit(":", 2)
    if host != socket.gethostname() or os.name == "nt":  # (Windows: os.kill would kill it)
        return False  # another machine's: its heartbeat tells (database storages)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, under another user
    return _start_time(int(pid)) != started  # ended (zombie) or the pid was reused


def fail_dead(study: Any) -> None:
    """Fail and re-queue the RUNNING trials whose worker is gone."""
    if _heartbeat_interval(study._storage) is not None:  # database storages
        optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _dead(t):
            _fail_and_requeue(study, t)


def _fail_and_requeue(study: Any, t: Any) -> None:
    try:
        # the storage sets FAIL for one process only: the others get the error
        if not study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
            return
    except UpdateFinishedTrialError:
        return
    _requeue(study, t)


def _requeue(study: Any, t: Any) -> None:
    """A WAITING copy of a failed trial: same slot, same hyperparameters (if drawn)."""
    slot = t.user_attrs.get(SLOT)
    if slot is None:
        slot = _fresh_slot(study.get_trials(deepcopy=False), t.number)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=t.params,
            distributions=t.distributions,
            user_attrs={SLOT: slot, RETRY_OF: t.number},
        )
    )


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------


def _finished_slots(study: Any, n: int) -> dict[int, Any]:
    slots: dict[int, Any] = {}
    for t in study.get_trials(deepcopy=False, states=FINISHED):
        slot = t.user_attrs.get(SLOT)
        if slot is not None and slot < n and RESULT in t.user_attrs:
            slots.setdefault(slot, t)
    return slots


def _record(slot: int, t: Any) -> TrialRecord:
    return {"number": slot, "params": dict(t.params), **t.user_attrs[RESULT]}


def collect(study: Any, n: int) -> list[TrialRecord]:
    """One record per slot, in slot order."""
    slots = _finished_slots(study, n)
    missing = sorted(set(range(n)) - set(slots))
    if missing:
        raise SearchError(f"trials {missing[:10]} did not finish; rerun the search to resume")
    return [_record(k, slots[k]) for k in range(n)]


class _Progress:
    """Calls ``on_trial`` once for each trial that finished, here or elsewhere."""

    def __init__(self, n: int, on_trial: OnTrial | None) -> None:
        self.n, self.on_trial = n, on_trial
        self.records: dict[int, TrialRecord] = {}  # kept if the storage fails later

    def poll(self, study: Any) -> None:
        slots = _finished_slots(study, self.n)
        for k in sorted(set(slots) - set(self.records)):
            self.records[k] = _record(k, slots[k])
            if self.on_trial is not None:
                self.on_trial(self.records[k], len(self.records), self.n)
