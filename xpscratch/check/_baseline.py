"""Regression against yourself: ``xpscratch check --save-baseline F.json``, then later
``xpscratch check --baseline F.json`` on the same backend and device.

NumPy tells whether a backend is right; a baseline tells whether it *changed*: after
upgrading CuPy, a driver or torch, every case that moved is listed (the first one, in
the battery's order, is where to look), beside what changed in the environment.

What a baseline holds, per backend, dtype, group and case (in the battery's order):

* bits (random words, masks, permutations, initial weights, indices): a SHA-256 of the
  values; they must be identical.
* values (every other array compared with NumPy): the backend's own values, in its own
  dtype; each must be within :data:`ULPS` units in the last place of the baseline's
  (NaN matches NaN, an infinity the same infinity).  Same backend and device: anything
  more is a change in the arithmetic (a new kernel, summation order or thread count).
* conditions (a conclusion, a known answer): the same truth value.

and the environment header: versions, BLAS, threads, CPU, GPU, driver, and the variables
that change numbers (:data:`VARIABLES`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np  # host-side: the values were copied back with to_numpy

from ._compare import Group

FORMAT = "xpscratch-check-baseline"
VERSION = 1
ULPS = 4
"""How far a value may move from its baseline, in units in the last place of its dtype."""

VARIABLES = (
    "OPENBLAS_CORETYPE",
    "MKL_CBWR",
    "XLA_FLAGS",
    "JAX_ENABLE_X64",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "NVIDIA_TF32_OVERRIDE",
    "CUPY_TF32",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
)
"""Environment variables that can change a backend's numbers, kept with the baseline
(the thread counts are in the report's header already)."""


class BaselineError(ValueError):
    """A baseline file that cannot be used (missing, not a baseline, another battery)."""


@dataclass
class Recorder:
    """Collects each case's values as the groups run: ``run(..., watch=recorder.watch)``."""

    cases: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def watch(self, g: Group) -> None:
        entries = self.cases.setdefault(group_key(g.target, g.dtype, g.name), [])
        seen: dict[str, int] = {}

        def record(case: str, kind: str, values: Any) -> None:
            seen[case] = seen.get(case, 0) + 1  # a case name used twice is told apart
            name = case if seen[case] == 1 else f"{case} #{seen[case]}"
            entries.append({"case": name, **encode(kind, values)})

        g.record = record


def group_key(target: str, dtype: str, group: str) -> str:
    return f"{target} {dtype} {group}"


def encode(kind: str, values: Any) -> dict[str, Any]:
    if kind == "condition":
        return {"kind": kind, "value": bool(values)}
    a = np.ascontiguousarray(values)
    if kind == "bits":
        digest = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()
        return {"kind": kind, "dtype": a.dtype.str, "shape": list(a.shape), "sha256": digest}
    data = base64.b64encode(zlib.compress(a.tobytes(), 6)).decode("ascii")
    return {"kind": kind, "dtype": a.dtype.str, "shape": list(a.shape), "data": data}


def decode(entry: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(entry["data"]))
    return np.frombuffer(raw, dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])


def environment(report: Any) -> dict[str, Any]:
    """Everything that decides the numbers: the report's header and each target's info."""
    return {
        "header": dict(report.header),
        "targets": {t.label: dict(t.info) for t in report.targets},
        "variables": {k: os.environ[k] for k in VARIABLES if k in os.environ},
    }


def save_data(report: Any, recorder: Recorder) -> bytes:
    """The baseline file's bytes (JSON): the environment and every recorded case."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "ulps": ULPS,
        "environment": environment(report),
        "groups": recorder.cases,
    }
    return (json.dumps(data, indent=1, default=str) + "\n").encode()


def load(path: str) -> dict[str, Any]:
    """A baseline file, or :class:`BaselineError` saying what is wrong with it."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise BaselineError("no such file; save one first with --save-baseline") from None
    except IsADirectoryError:
        raise BaselineError("is a folder, not a baseline file") from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot be read as a baseline ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BaselineError("is not an xpscratch check baseline (save one with --save-baseline)")
    if data.get("version") != VERSION:
        raise BaselineError(
            f"has baseline version {data.get('version')}; this xpscratch reads {VERSION}"
        )
    env, groups = data.get("environment"), data.get("groups")
    if not (
        isinstance(env, dict)
        and isinstance(env.get("header"), dict)
        and isinstance(env.get("targets"), dict)
        and isinstance(groups, dict)
        and all(isinstance(v, list) and len(k.split(" ")) >= 3 for k, v in groups.items())
    ):
        raise BaselineError("is damaged: its environment or groups are missing")
    return data


def selection(data: dict[str, Any]) -> dict[str, Any]:
    """What the baseline ran: backends, dtype, groups, battery size and TF32."""
    header = data["environment"]["header"]
    dtypes = header.get("dtypes", ["float64", "float32"])
    groups = list(dict.fromkeys(k.rsplit(" ", 1)[1] for k in data["groups"]))
    return {
        "backends": list(data["environment"]["targets"]),
        "dtype": dtypes[0] if len(dtypes) == 1 else "both",
        "groups": groups,
        "quick": header.get("battery") == "quick",
        "allow_tf32": bool(header.get("allow_tf32")),
    }


# -- comparing a run with its baseline --------------------------------------------------------


@dataclass
class Moved:
    group: str  # "target dtype group"
    case: str
    detail: str


@dataclass
class Comparison:
    """A run against its baseline: the cases that moved and what changed around them."""

    compared: int = 0
    identical: int = 0
    moved: list[Moved] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # cases this run has, the baseline not
    not_run: list[str] = field(default_factory=list)  # baseline groups not run this time
    changes: list[str] = field(default_factory=list)  # the environment's differences

    @property
    def exit_status(self) -> int:
        """1 if a case moved, 3 if nothing was compared with the baseline, else 0."""
        return 1 if self.moved else 3 if self.compared == 0 else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "identical": self.identical,
            "ulps": ULPS,
            "moved": [vars(m) for m in self.moved],
            "first_moved": vars(self.moved[0]) if self.moved else None,
            "new_cases": self.new,
            "not_run": self.not_run,
            "environment_changes": self.changes,
            "exit_status": self.exit_status,
        }

    def format(self) -> str:
        lines = ["against the baseline:"]
        if self.changes:
            lines.append("  environment changed:")
            lines += [f"    {c}" for c in self.changes]
        else:
            lines.append("  environment: unchanged")
        for m in self.moved:
            lines.append(f"  MOVED {m.group}: {m.case}: {m.detail}")
        if len(self.new) > 0:
            lines.append(f"  {len(self.new)} cases not in the baseline, e.g. {self.new[0]}")
        lines += [f"  not run this time: {k}" for k in self.not_run]
        if self.moved:
            first = self.moved[0]
            verdict = (
                f"BASELINE MOVED: {len(self.moved)} of {self.compared} cases moved; "
                f"the first, in the battery's order: {first.group}: {first.case}"
            )
        elif self.compared == 0:
            verdict = "BASELINE NOTHING CHECKED: no case of this run is in the baseline"
        else:
            verdict = (
                f"BASELINE SAME: {self.compared} cases as the baseline "
                f"({self.identical} identical, the rest within {ULPS} ulp)"
            )
        lines.append(verdict)
        return "\n".join(lines)


def compare(data: dict[str, Any], report: Any, recorder: Recorder) -> Comparison:
    """Compare this run's recorded cases (and environment) with a loaded baseline."""
    c = Comparison(changes=environment_changes(data["environment"], environment(report)))
    base_groups: dict[str, list[dict]] = data["groups"]
    for key, entries in recorder.cases.items():
        if key not in base_groups:
            c.new += [f"{key}: {e['case']}" for e in entries]
            continue
        base = {e["case"]: e for e in base_groups[key]}
        now = {e["case"] for e in entries}
        for e in entries:
            if e["case"] not in base:
                c.new.append(f"{key}: {e['case']}")
                continue
            c.compared += 1
            try:
                detail = difference(base[e["case"]], e)
            except (KeyError, TypeError, ValueError, zlib.error) as exc:  # a damaged entry
                detail = f"the baseline's entry cannot be read ({type(exc).__name__}: {exc})"
            if detail is None:
                c.identical += 1
            elif detail:
                c.moved.append(Moved(key, e["case"], detail))
        for name in base:
            if name not in now:
                c.compared += 1
                c.moved.append(Moved(key, name, "in the baseline, not in this run"))
    c.not_run = [k for k in base_groups if k not in recorder.cases]
    return c


def difference(base: dict[str, Any], now: dict[str, Any]) -> str | None:
    """'' within ULPS (not identical), None identical, else what moved."""
    if base["kind"] != now["kind"]:
        return f"was compared as {base['kind']}, now as {now['kind']}"
    if now["kind"] == "condition":
        return None if base["value"] == now["value"] else f"was {base['value']}, now {now['value']}"
    if base["dtype"] != now["dtype"] or base["shape"] != now["shape"]:
        return (
            f"was {np.dtype(base['dtype'])}{tuple(base['shape'])}, "
            f"now {np.dtype(now['dtype'])}{tuple(now['shape'])}"
        )
    if now["kind"] == "bits":
        return None if base["sha256"] == now["sha256"] else "bits differ (SHA-256 of the values)"
    if base["data"] == now["data"]:
        return None
    b, a = decode(base), decode(now)
    if b.dtype.kind not in "fc":
        bad = b != a
        i = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
        return f"{int(bad.sum())} of {bad.size} values differ; first at {i}: {b[i]!r}, now {a[i]!r}"
    ulps = ulp_distance(a, b)
    bad = ulps > ULPS
    if not np.any(bad):
        return "" if np.any(ulps > 0) else None  # only -0.0 against 0.0 would reach None
    flat = np.flatnonzero(bad.ravel())
    i = np.unravel_index(int(flat[0]), bad.shape) if bad.ndim else ()
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # 0 in the baseline
        rel = np.abs(a.astype(np.float64) - b.astype(np.float64)) / np.abs(b.astype(np.float64))
    worst = float(np.nanmax(np.where(bad, rel, 0.0), initial=0.0))
    return (
        f"{int(bad.sum())} of {bad.size} values moved more than {ULPS} ulp (at most "
        f"{_ulps(float(ulps.max()))} ulp, rel {worst:.1e}); first at "
        f"{tuple(int(k) for k in i)}: {b[i]!r}, now {a[i]!r}"
    )


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Units in the last place of ``b``'s dtype between ``a`` and ``b``, elementwise:
    0 for NaN against NaN and for the same infinity, inf for NaN against a number."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    spacing = np.spacing(np.maximum(np.abs(b), np.abs(a)).astype(b.dtype)).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = np.abs(a64 - b64) / spacing
    same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    return np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))


def _ulps(v: float) -> str:
    return "inf" if not np.isfinite(v) else f"{v:.3g}"


def environment_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """'what: before -> after' for every setting that differs (run-size keys left out)."""
    skip = {"header dtypes", "header battery"}
    old, new = _flatten(before), _flatten(after)
    changes = []
    for k in dict.fromkeys([*old, *new]):
        if k in skip or any(k.startswith(s + " ") for s in skip):
            continue
        if old.get(k) != new.get(k):
            changes.append(f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}")
    return changes


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(d, dict):
        return {prefix: str(d)}
    out: dict[str, str] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix} {k}".strip()))
    return out
