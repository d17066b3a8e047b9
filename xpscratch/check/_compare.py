"""One group's comparisons: cases counted, the largest differences kept, failures named.

A :class:`Group` never raises: a wrong number, a wrong shape or an exception inside a
case becomes a recorded failure, so one broken backend cannot stop the report.
"""

from __future__ import annotations

import contextlib
import math
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np  # host-side comparison of results already copied back with to_numpy

from ..backend import to_numpy

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Failure:
    case: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"case": self.case, "detail": self.detail}


@dataclass
class Group:
    """The outcome of one group of the battery on one backend, device and dtype."""

    name: str
    target: str
    dtype: str
    cases: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst: float = 0.0  # the largest difference as a fraction of its tolerance
    rtols: set[float] = field(default_factory=set)
    atols: set[float] = field(default_factory=set)
    exact: int = 0
    failures: list[Failure] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # called with (case, kind, the backend's values on the host) by close ("values"),
    # equal ("bits") and require ("condition"): how --save-baseline records a run
    record: Callable[[str, str, Any], None] | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        if self.failures:
            return FAIL
        return SKIP if self.skipped is not None or self.cases == 0 else PASS

    @property
    def tolerance(self) -> str:
        parts = []
        if self.exact:
            parts.append("exact")
        if self.rtols:
            r = max(self.rtols)
            parts.append(f"rtol {r:.0e}" if len(self.rtols) == 1 else f"rtol<={r:.0e}")
        if self.atols - {0.0}:
            parts.append(f"atol<={max(self.atols):.1e}")
        return ", ".join(parts) or "-"

    # -- recording -----------------------------------------------------------------------

    def fail(self, case: str, detail: str) -> None:
        self.failures.append(Failure(case, detail))

    @contextlib.contextmanager
    def case(self, name: str) -> Iterator[None]:
        """Run a case's code; an exception is this case's failure, not the report's end."""
        try:
            yield
        except Exception as exc:  # a backend bug must show as FAIL with what it raised
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.cases += 1
            self.fail(
                name,
                f"raised {type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})",
            )

    def close(self, case: str, actual: Any, expected: Any, rtol: float, atol: float = 0.0) -> bool:
        """``|actual - expected| <= atol + rtol |expected|`` elementwise (NaN equals NaN)."""
        self.cases += 1
        self._record(case, "values", actual)
        self.rtols.add(rtol)
        self.atols.add(atol)
        a, e = _host(actual), _host(expected)
        if a.shape != e.shape:
            self.fail(case, f"shape {a.shape} != NumPy's {e.shape}")
            return False
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        both_nan = np.isnan(a64) & np.isnan(e64)
        diff = np.where(both_nan, 0.0, np.abs(a64 - e64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        scale = np.abs(e64)
        rel = np.divide(
            diff, scale, out=np.zeros_like(diff), where=scale > 0
        )  # 0 where NumPy's is 0
        allowed = atol + rtol * scale
        ratio = np.divide(diff, allowed, out=np.where(diff > 0, np.inf, 0.0), where=allowed > 0)
        if diff.size:
            self._keep(float(diff.max()), float(rel.max()), float(ratio.max()))
        bad = diff > allowed
        if np.any(bad):
            i = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.ndim else ()
            self.fail(
                case,
                f"{int(bad.sum())} of {bad.size} values differ: max abs {diff.max():.3e}, "
                f"max rel {rel.max():.3e} (tolerance rtol {rtol:g} atol {atol:g}); worst at "
                f"{tuple(int(k) for k in i)}: {a64[i]!r} vs NumPy {e64[i]!r}",
            )
            return False
        return True

    def equal(self, case: str, actual: Any, expected: Any) -> bool:
        """Bit-identical: same shape, same dtype, same values.

        Integers compare by value: a device without 64-bit integers holds the same random
        words and indices as uint32/int32 where NumPy has int64.
        """
        self.cases += 1
        self._record(case, "bits", actual)
        self.exact += 1
        a, e = _host(actual), _host(expected)
        if a.dtype.kind in "iu" and e.dtype.kind in "iu":
            a, e = a.astype(np.int64), e.astype(np.int64)  # all values < 2**63
        if a.shape != e.shape or a.dtype != e.dtype:
            self.fail(case, f"{a.dtype}{a.shape} != NumPy's {e.dtype}{e.shape}")
            return False
        same = (a == e) | (np.isnan(a) & np.isnan(e)) if a.dtype.kind == "f" else a == e
        if not np.all(same):
            diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
            self._keep(float(np.nanmax(diff)), math.inf, math.inf)
            i = np.unravel_index(int(np.argmin(same)), same.shape) if same.ndim else ()
            self.fail(
                case,
                f"{int((~same).sum())} of {same.size} values differ (bits must be identical); "
                f"first at {tuple(int(k) for k in i)}: {a[i]!r} vs NumPy {e[i]!r}",
            )
            return False
        return True

    def require(self, case: str, ok: bool, detail: str = "") -> bool:
        """A condition the backend's result must share with NumPy's (e.g. a conclusion)."""
        self.cases += 1
        self._record(case, "condition", ok)
        self.exact += 1
        if not ok:
            self.fail(case, detail or "condition does not hold")
        return bool(ok)

    def _record(self, case: str, kind: str, values: Any) -> None:
        if self.record is not None:
            self.record(case, kind, bool(values) if kind == "condition" else _host(values))

    def _keep(self, abs_diff: float, rel_diff: float, ratio: float) -> None:
        self.max_abs = max(self.max_abs, abs_diff)
        self.max_rel = max(self.max_rel, rel_diff)
        self.worst = max(self.worst, ratio)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.name,
            "target": self.target,
            "dtype": self.dtype,
            "status": self.status,
            "cases": self.cases,
            "max_abs": _finite(self.max_abs),
            "max_rel": _finite(self.max_rel),
            "fraction_of_tolerance": _finite(self.worst),
            "tolerance": self.tolerance,
            "seconds": round(self.seconds, 2),
            "skipped": self.skipped,
            "notes": list(self.notes),
            "failures": [f.to_dict() for f in self.failures],
        }


def _host(x: Any) -> np.ndarray:
    if isinstance(x, (list, tuple, int, float, bool)):
        return np.asarray(x)
    return to_numpy(x)


def _finite(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)


Compare = Callable[[Group], None]
