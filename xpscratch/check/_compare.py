"""One group's comparisons: cases and values counted, the largest differences kept,
failures named.

A :class:`Group` never raises: a wrong number, a wrong shape or an exception inside a
case becomes a recorded failure, so one broken backend cannot stop the report.  A case
compared with a :class:`Banded` reference takes the policy's truth-and-band route
(:mod:`._policy`); a plain value is compared with ``rtol``/``atol`` as given.
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
from ._policy import FACTOR, FLOOR_ULPS
from ._policy import allowed as band_allowed

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Failure:
    case: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"case": self.case, "detail": self.detail}


@dataclass
class Banded:
    """NumPy's side of a case: the float64 truth, the plain run in the target's dtype and
    the nudged runs; indexing or an attribute picks the same part of all of them."""

    truth: Any
    plain: Any
    nudged: list[Any]

    @property
    def runs(self) -> list[Any]:
        return [self.truth, self.plain, *self.nudged]

    def __getitem__(self, key: Any) -> Banded:
        return Banded(self.truth[key], self.plain[key], [s[key] for s in self.nudged])

    def __getattr__(self, name: str) -> Banded:
        if name.startswith("__"):
            raise AttributeError(name)
        return Banded(
            getattr(self.truth, name),
            getattr(self.plain, name),
            [getattr(s, name) for s in self.nudged],
        )

    def __iter__(self) -> Iterator[Any]:
        return iter(self.truth)

    def __len__(self) -> int:
        return len(self.truth)

    def items(self) -> Iterator[tuple[Any, Banded]]:
        return ((k, self[k]) for k in self.truth)

    def map(self, f: Callable[[Any], Any]) -> Banded:
        """``f`` applied to every run."""
        return Banded(f(self.truth), f(self.plain), [f(s) for s in self.nudged])

    def any(self, condition: Callable[[Any], bool]) -> bool:
        """Whether one of NumPy's runs (truth, plain, nudged) satisfies ``condition``."""
        return any(condition(r) for r in self.runs)


@dataclass
class Group:
    """The outcome of one group of the battery on one backend, device and dtype."""

    name: str
    target: str
    dtype: str
    cases: int = 0
    values: int = 0  # how many numbers were compared (bits, values, conditions)
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst: float = 0.0  # the largest difference as a fraction of its tolerance
    rtols: set[float] = field(default_factory=set)
    atols: set[float] = field(default_factory=set)
    exact: int = 0
    banded: int = 0  # cases compared with the truth and its noise band
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
        if self.banded:
            parts.append(f"band x{FACTOR:g} + {FLOOR_ULPS:g} ulp")
        if self.rtols - {0.0}:
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

    def close(
        self, case: str, actual: Any, expected: Any, rtol: float = 0.0, atol: float = 0.0
    ) -> bool:
        """Within the policy's band of a :class:`Banded` reference (``rtol`` and ``atol``
        added to it), or ``|actual - expected| <= atol + rtol |expected|`` for a plain
        one.  A NaN or inf must be matched (NaN by NaN, inf by inf of the same sign)."""
        self.cases += 1
        self._record(case, "values", actual)
        self.rtols.add(rtol)
        self.atols.add(atol)
        banded = isinstance(expected, Banded)
        self.banded += banded
        a = _host(actual)
        e = _host(expected.truth if banded else expected)
        if a.shape != e.shape:
            self.fail(case, f"shape {a.shape} != NumPy's {e.shape}")
            return False
        self.values += int(a.size)
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        if banded:
            runs = [_host(r).astype(np.float64) for r in [expected.plain, *expected.nudged]]
            if any(r.shape != e.shape for r in runs):
                self.fail(case, "NumPy's runs disagree in shape (a case that is not seeded)")
                return False
            limit = band_allowed(e64, runs, self.dtype, rtol, atol)
            matched = _same_nonfinite(a64, e64)
            for r in runs:
                matched |= _same_nonfinite(a64, r)
        else:
            runs = []
            limit = atol + rtol * np.where(np.isfinite(e64), np.abs(e64), 0.0)
            matched = _same_nonfinite(a64, e64)
        finite = np.isfinite(a64) & np.isfinite(e64)
        diff = np.where(finite, np.abs(a64 - e64), np.inf)
        diff = np.where(matched, 0.0, diff)
        scale = np.abs(np.where(np.isfinite(e64), e64, 0.0))
        rel = np.divide(diff, scale, out=np.where(diff > 0, np.inf, 0.0), where=scale > 0)
        ratio = np.divide(diff, limit, out=np.where(diff > 0, np.inf, 0.0), where=limit > 0)
        if diff.size:
            finite_diff = diff[np.isfinite(diff)]
            self._keep(
                float(finite_diff.max(initial=0.0)),
                float(rel[np.isfinite(rel)].max(initial=0.0)),
                float(ratio.max()),
            )
        bad = ~(diff <= limit)
        if np.any(bad):
            i = np.unravel_index(int(np.argmax(np.where(bad, ratio, -1.0))), ratio.shape)
            how = (
                f"band x{float(ratio[i]):.3g}, allowed {float(limit[i]):.3e}"
                if banded
                else f"tolerance rtol {rtol:g} atol {atol:g}"
            )
            self.fail(
                case,
                f"{int(bad.sum())} of {bad.size} values differ: max abs "
                f"{float(finite_diff.max(initial=0.0)):.3e}, "
                f"max rel {float(rel[np.isfinite(rel)].max(initial=0.0)):.3e} ({how}); worst "
                f"at {tuple(int(k) for k in i)}: {a64[i]!r} vs NumPy {e64[i]!r}",
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
        a, e = _host(actual), _host(expected.plain if isinstance(expected, Banded) else expected)
        self.values += int(a.size)
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
        self.values += 1
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
            "values": self.values,
            "max_abs": _finite(self.max_abs),
            "max_rel": _finite(self.max_rel),
            "fraction_of_tolerance": _finite(self.worst),
            "tolerance": self.tolerance,
            "seconds": round(self.seconds, 2),
            "skipped": self.skipped,
            "notes": list(self.notes),
            "failures": [f.to_dict() for f in self.failures],
        }


def _same_nonfinite(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Where both are NaN, or both the same infinity."""
    return (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))


def _host(x: Any) -> np.ndarray:
    if isinstance(x, (list, tuple, int, float, bool)):
        return np.asarray(x)
    return to_numpy(x)


def _finite(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)


Compare = Callable[[Group], None]
