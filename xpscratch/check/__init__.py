"""``xpscratch check``: prove a backend and device against NumPy, and say how close.

    xpscratch check                              # every usable backend and device
    xpscratch check --backend torch:cuda --dtype float32 --json report.json

    >>> from xpscratch import check
    >>> report = check.run(["numpy"], dtype="float64", quick=True)
    >>> report.passed, report.to_dict()["targets"][0]["groups"][0]["status"]

For each backend and device the battery runs six groups, each against NumPy computed in
the same run (:mod:`._policy` states the tolerances): random numbers, layers and
functions, optimizers, training (with checkpoints crossing to and from NumPy), the
book's experiments, and on GPU backends the no-sync check and the matmul precision.
The test suite calls the same groups (tests/test_check.py): one definition of
cross-backend agreement, used twice.  Needs only the core install.

Exit statuses: 0 every selected backend and dtype ran and every group passed; 1 a group
failed (a device that cannot draw the random numbers fails every group), or with
``--baseline`` a case moved; 2 bad usage (checked before any work: an unknown group, a
``--json``/``--save-baseline`` path that cannot be written, an unreadable baseline) or a
selected backend not usable here; 3 NOTHING CHECKED: a selected backend, device or
dtype ran no case (``--backend jax --dtype float64`` without JAX's 64-bit mode), which
is never a pass.  A FAIL outranks 2, and 2 outranks 3.

``array_api_extra.testing.assert_close``/``assert_equal`` are not used: they compare two
arrays of one namespace and raise on the first mismatch, while every case here compares a
backend's result with NumPy's and must report the largest differences and carry on to the
next case; using them would also make array-api-extra a core dependency for no check that
:class:`Group` does not already make (shape, dtype, NaN positions, values).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backend import BackendError, _resolve, available_backends, float_dtype
from ..random import random_bits
from . import _compiled
from ._compare import FAIL, PASS, SKIP, Group
from ._environment import device_info, header, library_versions
from ._experiments import SHORT, check_experiment, check_experiments
from ._gpu import check_gpu, matmul_precision, set_matmul_precision
from ._layers import check_layers
from ._optimizers import check_optimizers
from ._policy import FLOAT32, FLOAT32_TF32, FLOAT64, Tolerances, tolerances
from ._random import check_random
from ._report import format_report
from ._target import References, Target, is_gpu
from ._training import check_training

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOTHING_CHECKED",
    "EXIT_PASSED",
    "EXIT_USAGE",
    "FLOAT32",
    "FLOAT32_TF32",
    "FLOAT64",
    "GROUPS",
    "SHORT",
    "Group",
    "Report",
    "Target",
    "Tolerances",
    "check_experiment",
    "devices",
    "make_target",
    "run",
    "run_group",
    "tolerances",
]

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_CHECKED = 0, 1, 2, 3
"""``xpscratch check``'s exit statuses: every group passed; a group failed (or, with
``--baseline``, a case moved); bad usage or a selected backend not usable here; nothing
checked (a selected backend, device or dtype ran no case: every group skipped)."""

GROUPS: dict[str, Callable[[Target, Group], None]] = {
    "random": check_random,
    "layers": check_layers,
    "optimizers": check_optimizers,
    "training": check_training,
    "experiments": check_experiments,
    "gpu": check_gpu,
    "compiled": _compiled.check_compiled,
}


@dataclass
class TargetReport:
    label: str
    info: dict[str, Any]
    groups: list[Group] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.label,
            **self.info,
            "seconds": round(self.seconds, 1),
            "groups": [g.to_dict() for g in self.groups],
        }


@dataclass
class Report:
    """What :func:`run` found: the header, and one row per group, backend and dtype."""

    header: dict[str, Any]
    targets: list[TargetReport] = field(default_factory=list)
    unusable: dict[str, str] = field(default_factory=dict)

    @property
    def groups(self) -> list[Group]:
        return [g for t in self.targets for g in t.groups]

    @property
    def nothing_checked(self) -> list[str]:
        """Each selected backend, device or dtype that ran no case, with why (empty: none).

        A backend and device must run a case in some dtype, and each dtype asked for
        (``both``: float64 and float32) on some backend: a selection that only skipped
        is not a pass.  A (backend, dtype) skipped while the same backend ran the other
        dtype, and that dtype ran elsewhere (``--backend all``), is listed, not failed.
        """
        why = []
        for t in self.targets:
            if not any(_ran(g) for g in t.groups):
                why.append(f"{t.label}: no group ran a case ({_skip_reasons(t.groups)})")
        for dtype in self.header.get("dtypes", []):
            groups = [g for g in self.groups if g.dtype == dtype]
            if self.targets and not any(_ran(g) for g in groups):
                why.append(
                    f"{dtype}: no selected backend ran a case in {dtype} ({_skip_reasons(groups)})"
                )
        return why

    @property
    def skipped(self) -> list[tuple[str, str, str]]:
        """(backend, dtype, why) for each backend and dtype where every group was skipped."""
        found = []
        for t in self.targets:
            for dtype in dict.fromkeys(g.dtype for g in t.groups):
                groups = [g for g in t.groups if g.dtype == dtype]
                if not any(_ran(g) for g in groups):
                    found.append((t.label, dtype, _skip_reasons(groups)))
        return found

    @property
    def passed(self) -> bool:
        return self.exit_status == EXIT_PASSED

    @property
    def exit_status(self) -> int:
        """0: every group passed; 1: one failed; 2: a selected backend is not usable
        here; 3: nothing checked (a selected backend, device or dtype ran no case)."""
        if any(g.status == FAIL for g in self.groups):
            return EXIT_FAILED
        if self.unusable:
            return EXIT_USAGE
        return EXIT_NOTHING_CHECKED if self.nothing_checked else EXIT_PASSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "targets": [t.to_dict() for t in self.targets],
            "unusable": dict(self.unusable),
            "nothing_checked": self.nothing_checked,
            "skipped": [{"target": t, "dtype": d, "why": why} for t, d, why in self.skipped],
            "passed": self.passed,
            "exit_status": self.exit_status,
        }

    def format(self) -> str:
        return format_report(self)


def _ran(g: Group) -> bool:
    return g.cases > 0 or bool(g.failures)


def _skip_reasons(groups: list[Group]) -> str:
    """The distinct reasons the groups were skipped, in order."""
    idle = [g for g in groups if not _ran(g)]
    # the gpu group's "CPU backend" skip explains nothing when the others skipped too
    idle = [g for g in idle if g.name != "gpu"] or idle
    reasons = dict.fromkeys(g.skipped or f"{g.name}: no case" for g in idle)
    return "; ".join(reasons) or "no group selected"


def devices(name: str) -> list[Any]:
    """The devices of a usable backend, as ``use_backend`` accepts them."""
    b = _resolve(name)
    if name == "numpy":
        return [None]
    found = []
    with warnings.catch_warnings():  # torch's info warns about its deprecated device types
        warnings.simplefilter("ignore")
        listed = b.xp.__array_namespace_info__().devices()
    for d in listed:
        if d is None or str(d) == "meta":  # torch's meta device holds no data
            continue
        # the forms set_backend takes: strict's devices by name, CuPy's by index, JAX's by
        # platform ('jax:cpu', 'jax:gpu')
        if name == "cupy":
            found.append(d.id)
        elif name == "jax":
            found.append(str(getattr(d, "platform", d)).replace("cuda", "gpu"))
        else:
            found.append(getattr(d, "_device", d))
    return list(dict.fromkeys(found)) or [b.device]


def _label(name: str, device: Any) -> str:
    if name == "numpy" or device is None:
        return name
    text = getattr(device, "_device", None) or getattr(device, "platform", None) or device
    return f"{name}:{text}"


def make_target(
    name: str,
    device: Any,
    dtype: str,
    *,
    quick: bool = True,
    allow_tf32: bool = False,
    references: References | None = None,
) -> Target:
    """A target for one backend, device and dtype (raises BackendError if unusable)."""
    b = _resolve(name, device)
    return Target(
        name,
        device,
        _label(name, device),
        dtype,
        quick,
        allow_tf32,
        references or References(),
        backend=b,
    )


def run_group(group: str, target: Target, watch: Callable[[Group], None] | None = None) -> Group:
    """One group of the battery on one target; never raises for a wrong result.

    ``watch(group)`` is called before the group runs (a baseline sets its recorder)."""
    g = Group(group, target.label, target.dtype)
    if watch is not None:
        watch(g)
    start = time.perf_counter()
    b = target.backend
    if group == "gpu" and not is_gpu(b):
        g.skipped = "CPU backend: no device synchronisation or matmul precision to check"
    elif target.dtype == "float64" and (why := _no_float64(target)) is not None:
        g.skipped = f"{target.label} has no float64 ({why})"
    elif (why := _no_random_numbers(target)) is not None:
        g.require("drawing xpscratch's random numbers", False, why)  # a FAIL, never a SKIP
    else:
        with g.case(f"{group} (setting up)"):
            GROUPS[group](target, g)
    g.seconds = time.perf_counter() - start
    return g


def _no_random_numbers(t: Target) -> str | None:
    """Why this device cannot draw xpscratch's random numbers (None: it can).

    Devices without 64-bit integers (strict's no_x64, JAX's default) draw on the uint32
    path; a device where even that fails cannot run the battery (every group draws
    random numbers): each group FAILs with this reason, for a backend that cannot draw
    the published stream is broken, not exempt.
    """
    with t.active():
        try:
            random_bits(0, "check/probe", 0, 4)
        except Exception as exc:  # the missing int64 shows as whatever the library raises
            return f"cannot draw random numbers on {t.label} ({type(exc).__name__}: {exc})"
    return None


def _no_float64(t: Target) -> str | None:
    """Why this device has no float64 (None: it has), in set_backend's words."""
    try:
        float_dtype(t.backend.xp, "float64", t.backend.device)
    except BackendError as exc:
        return str(exc)
    return None


def _selection(backends: str | Sequence[str] | None) -> tuple[list[tuple[str, Any]], dict]:
    """(backend name, device) pairs to check, and the unusable selections with reasons."""
    if backends is None or backends == "all" or list(backends) == ["all"]:
        return [(n, d) for n in available_backends() for d in devices(n)], {}
    pairs, unusable = [], {}
    for spec in [backends] if isinstance(backends, str) else backends:
        name, _, device = spec.strip().partition(":")
        try:
            _resolve(name, device or None)
        except BackendError as exc:
            unusable[spec] = str(exc)
            continue
        if device:
            pairs.append((name, device))
        else:
            pairs.extend(
                (name, d) for d in ([None] if name != "array_api_strict" else devices(name))
            )
    return pairs, unusable


def run(
    backends: str | Sequence[str] | None = None,
    *,
    dtype: str = "both",
    quick: bool = False,
    allow_tf32: bool = False,
    groups: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    watch: Callable[[Group], None] | None = None,
) -> Report:
    """Run the battery on ``backends`` (``NAME[:DEVICE]`` specs; None or 'all': every usable
    backend and device) in ``dtype`` ('float32', 'float64' or 'both').

    A selected backend that cannot be used here is reported in ``Report.unusable`` with
    :func:`set_backend`'s message (exit status 2); nothing raises for a wrong number.
    ``watch`` sees each group before it runs (see :func:`run_group`).
    """
    if dtype not in ("float32", "float64", "both"):
        raise ValueError(f"dtype must be 'float32', 'float64' or 'both', got {dtype!r}")
    names = list(groups or GROUPS)
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ValueError(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")
    dtypes = ["float64", "float32"] if dtype == "both" else [dtype]
    pairs, unusable = _selection(backends)
    report = Report(header(dtypes, quick, allow_tf32), unusable=unusable)
    references = References()
    for name, device in pairs:
        start = time.perf_counter()
        b = _resolve(name, device)
        info = {"backend": name, "versions": library_versions(name), **device_info(b)}
        restore = None
        if is_gpu(b):
            info["matmul_precision_found"] = matmul_precision(b)
            restore = set_matmul_precision(b, allow_tf32)
            info["matmul_precision_used"] = matmul_precision(b)
        tr = TargetReport(_label(name, device), info)
        try:
            for dt in dtypes:
                target = Target(name, device, tr.label, dt, quick, allow_tf32, references, b)
                for group in names:
                    g = run_group(group, target, watch)
                    tr.groups.append(g)
                    if progress is not None:
                        progress(
                            f"{tr.label:<28} {dt:<8} {group:<12} {g.status} ({g.seconds:.1f} s)"
                        )
        finally:
            if restore is not None:
                restore()
        tr.seconds = time.perf_counter() - start
        report.targets.append(tr)
    return report


STATUSES = (PASS, FAIL, SKIP)
