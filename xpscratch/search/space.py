"""A search space declared once: log-uniform, uniform and choice parameters.

``"lr=log:1e-6:1e-2,weight_decay=log:1e-8:1e-4"`` (the book's ranges) is the same
space as ``{"lr": LogUniform(1e-6, 1e-2), "weight_decay": LogUniform(1e-8, 1e-4)}``;
``uniform:A:B`` and ``choice:a|b|c`` are the other two kinds.  A JSON file holds an
object with the same strings as values (or ``{"log": [a, b]}``, ``{"uniform": [a, b]}``,
``{"choice": [...]}``).

Random search draws trial ``k`` of a study from Philox: column ``j`` of row ``k`` of
``xpscratch.random.uniform(seed, study_name, 0, (n, len(space)), "float64")``, computed
on its own in pure Python, so any process on any machine draws the same value for
``(seed, study_name, k)`` without drawing the trials before it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._checks import check_fraction, check_nonnegative, check_positive, check_positive_int
from ..optim import OPTIMIZERS
from ..random import MASK32, _purpose_words, philox4x32

__all__ = [
    "Choice",
    "LogUniform",
    "Space",
    "Uniform",
    "format_space",
    "narrow",
    "narrow_log",
    "parse_space",
    "sample",
    "space_from_dict",
    "space_to_dict",
]


def _optimizer_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in OPTIMIZERS:
        raise ValueError(f"{name}: unknown optimizer {value!r}; choose one of {sorted(OPTIMIZERS)}")
    return value


# what the objective accepts for each hyperparameter it can search: every value a space
# can draw is checked against these when the space is built, before any trial runs
VALUE_CHECKS = {
    "lr": check_positive,
    "weight_decay": check_nonnegative,
    "momentum": check_fraction,
    "batch_size": check_positive_int,
    "optimizer": _optimizer_name,
}
NEEDS_CHOICE = {"batch_size": "choice:50|100", "optimizer": "choice:sgd|adam"}  # not ranges


@dataclass(frozen=True)
class LogUniform:
    """``10 ** U(log10 low, log10 high)``: for scales (learning rate, weight decay)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_bounds(self, positive=True)

    def from_unit(self, u: float) -> float:
        lo, hi = math.log10(self.low), math.log10(self.high)
        # rounding in pow may step a hair outside; a sampler must stay inside
        return min(max(10.0 ** (lo + (hi - lo) * u), self.low), self.high)


@dataclass(frozen=True)
class Uniform:
    """``U(low, high)``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_bounds(self, positive=False)

    def from_unit(self, u: float) -> float:
        return min(self.low + (self.high - self.low) * u, self.high)


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (strings or numbers), each equally likely."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values or len(set(self.values)) != len(self.values):
            raise ValueError(f"choice needs distinct values, got {list(self.values)}")
        bad = [v for v in self.values if not isinstance(v, (str, int, float, bool))]
        if bad:
            raise ValueError(f"choice values must be strings or numbers, got {bad}")

    def from_unit(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]


Param = LogUniform | Uniform | Choice
Space = dict[str, Param]


def _check_bounds(p: LogUniform | Uniform, positive: bool) -> None:
    kind = type(p).__name__
    for v in (p.low, p.high):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{kind} bounds must be finite numbers, got {p.low!r}, {p.high!r}")
    if not p.low < p.high or (positive and p.low <= 0):
        need = "0 < low < high" if positive else "low < high"
        raise ValueError(f"{kind} needs {need}, got low={p.low:g}, high={p.high:g}")
    object.__setattr__(p, "low", float(p.low))
    object.__setattr__(p, "high", float(p.high))


def _unit(seed: int, purpose: str, k: int, j: int, columns: int) -> float:
    """Element (k, j) of ``uniform(seed, purpose, 0, (n, columns), "float64")``, alone.

    Element ``e`` takes random words ``2e`` and ``2e + 1``: both in Philox block ``e // 2``.
    """
    e = k * columns + j
    words = philox4x32((e // 2, 0, *_purpose_words(purpose)), (seed & MASK32, seed >> 32))
    w = 2 * (e % 2)
    mantissa = (words[w] >> 5) * 2**26 + (words[w + 1] >> 6)
    return mantissa * 2.0**-53


def sample(space: Mapping[str, Param], seed: int, k: int, purpose: str) -> dict[str, Any]:
    """Trial ``k``'s hyperparameters: a pure function of ``(space, seed, purpose, k)``."""
    if not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    n = len(space)
    return {
        name: p.from_unit(_unit(seed, purpose, k, j, n))
        for j, (name, p) in enumerate(space.items())
    }


# ---------------------------------------------------------------------------
# parsing and printing
# ---------------------------------------------------------------------------

SPACE_HELP = (
    "NAME=log:LOW:HIGH, NAME=uniform:LOW:HIGH or NAME=choice:A|B|C, comma-separated "
    "(e.g. lr=log:1e-6:1e-2,weight_decay=log:1e-8:1e-4), or a JSON file with an object "
    'of such strings ({"lr": "log:1e-6:1e-2"})'
)


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _param(name: str, spec: Any) -> Param:
    if isinstance(spec, Mapping) and len(spec) == 1:
        (kind, args), text = next(iter(spec.items())), json.dumps(spec)
        args = list(args) if isinstance(args, (list, tuple)) else [args]
    elif isinstance(spec, str):
        kind, _, rest = spec.strip().partition(":")
        text = spec
        args = [_scalar(a.strip()) for a in rest.split("|" if kind == "choice" else ":")]
    else:
        raise ValueError(f"{name}: cannot read {spec!r}; expected {SPACE_HELP}")
    try:
        if kind == "choice":
            return Choice(tuple(args))
        if kind in ("log", "uniform") and len(args) == 2:
            return (LogUniform if kind == "log" else Uniform)(*args)
    except ValueError as exc:
        raise ValueError(f"{name}={text}: {exc}") from None
    raise ValueError(f"{name}={text}: not a parameter; expected {SPACE_HELP}")


def space_from_dict(spec: Mapping[str, Any]) -> Space:
    """A space from ``{name: "log:1e-6:1e-2" | {"log": [1e-6, 1e-2]} | Param}``."""
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"a search space needs at least one parameter: {SPACE_HELP}")
    out: Space = {}
    for name, p in spec.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"parameter names must be identifiers, got {name!r}")
        out[name] = p if isinstance(p, (LogUniform, Uniform, Choice)) else _param(name, p)
        check_values(name, out[name])
    return out


def check_values(name: str, p: Param) -> None:
    """Refuse a parameter that can draw a value the objective does not accept."""
    check = VALUE_CHECKS.get(name)
    if check is None:
        return  # not one of the objective's: Objective.check names the ones it knows
    text = format_space({name: p})
    if not isinstance(p, Choice) and name in NEEDS_CHOICE:
        raise ValueError(
            f"{text}: {name} needs a choice of values, e.g. {name}={NEEDS_CHOICE[name]}"
        )
    values = p.values if isinstance(p, Choice) else (p.low, p.high)
    for v in values:
        try:
            check(name, v)
        except ValueError as exc:
            raise ValueError(f"{text}: {exc}") from None


def parse_space(text: str | os.PathLike | Mapping[str, Any]) -> Space:
    """A space from the command-line syntax, a JSON file's path, or a mapping."""
    if isinstance(text, Mapping):
        return space_from_dict(text)
    text = os.fspath(text)
    if text.endswith(".json") or (os.path.isfile(text) and "=" not in text):
        try:
            with open(text, encoding="utf-8") as f:
                return space_from_dict(json.load(f))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the search space file {text}: {exc}") from None
    spec: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"{item!r} is not NAME=SPEC; the syntax is {SPACE_HELP}")
        if name.strip() in spec:
            raise ValueError(f"parameter {name.strip()!r} is given twice")
        spec[name.strip()] = value
    return space_from_dict(spec)


def space_to_dict(space: Mapping[str, Param]) -> dict[str, Any]:
    """JSON data that :func:`space_from_dict` reads back into the same space."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Choice):
            out[name] = {"choice": list(p.values)}
        else:
            out[name] = {"log" if isinstance(p, LogUniform) else "uniform": [p.low, p.high]}
    return out


def format_space(space: Mapping[str, Param]) -> str:
    """The command-line syntax of ``space`` (what ``--space`` accepts)."""
    parts = []
    for name, p in space.items():
        if isinstance(p, Choice):
            parts.append(f"{name}=choice:{'|'.join(str(v) for v in p.values)}")
        else:
            kind = "log" if isinstance(p, LogUniform) else "uniform"
            parts.append(f"{name}={kind}:{p.low:.3g}:{p.high:.3g}")
    return ",".join(parts)


# ---------------------------------------------------------------------------
# narrowing around the best trials (the book's second round)
# ---------------------------------------------------------------------------


def narrow_log(
    values: Sequence[float], min_decades: float = 0.1, centre: float | None = None
) -> tuple[float, float]:
    """The log10 span of ``values``, widened around its centre to at least ``min_decades``;
    with ``centre``, a window as wide, centred on ``log10(centre)`` instead."""
    logs = [math.log10(v) for v in values]
    lo, hi = min(logs), max(logs)
    mid = (lo + hi) / 2 if centre is None else math.log10(centre)
    half = max(hi - lo, min_decades) / 2
    if centre is not None or hi - lo < min_decades:
        lo, hi = mid - half, mid + half
    return lo, hi


def _inside(lo: float, hi: float, low: float, high: float, *, log: bool) -> tuple[float, float]:
    """``[lo, hi]`` slid (in log space for a log range) to lie within ``[low, high]``,
    keeping its width where the old range is wide enough, and the old bounds exactly."""
    f, g = (math.log10, lambda v: 10.0**v) if log else ((lambda v: v), (lambda v: v))
    a, b, lo_, hi_ = f(lo), f(hi), f(low), f(high)
    if a < lo_:
        a, b = lo_, b + (lo_ - a)
    if b > hi_:
        a, b = a - (b - hi_), hi_
    a = max(a, lo_)
    return (low if a <= lo_ else g(a)), (high if b >= hi_ else g(b))


def narrow(
    space: Mapping[str, Param],
    trials: Sequence[Mapping[str, Any]],
    top_k: int = 5,
    *,
    chance_level: float | None = None,
) -> Space:
    """The next round's space: for each range, a window as wide as the span of the
    ``top_k`` best trials (by ``value``), centred on the best trial.

    Centred, not the span itself: the best trial often sits at the edge of the best
    ones' span (accuracy still rising with the learning rate), and a span would search
    only its losing side.  Trials at or below ``chance_level`` are left out when any
    trial is above it: their hyperparameters are noise.  Log ranges keep at least 0.1
    decades, uniform ranges 5% of their old width, and a choice keeps the values the
    best trials used, so the next round still explores.  A range stays inside the old
    one (the window slides back in), so the next round never draws a value the
    objective refuses (momentum 1.0007, a negative weight decay).
    """
    ranked = sorted(trials, key=lambda t: t["value"], reverse=True)
    if chance_level is not None:
        ranked = [t for t in ranked if t["value"] > chance_level] or ranked
    best = [t["params"] for t in ranked[: max(int(top_k), 1)]]
    if not best:
        raise ValueError("narrow: no trials to narrow around")
    out: Space = {}
    for name, p in space.items():
        used = [b[name] for b in best]
        if isinstance(p, LogUniform):
            lo, hi = narrow_log(used, centre=used[0])
            lo, hi = _inside(10.0**lo, 10.0**hi, p.low, p.high, log=True)
            out[name] = LogUniform(lo, hi)
        elif isinstance(p, Uniform):
            half = max(max(used) - min(used), 0.05 * (p.high - p.low)) / 2
            out[name] = Uniform(*_inside(used[0] - half, used[0] + half, p.low, p.high, log=False))
        else:
            out[name] = Choice(tuple(v for v in p.values if v in used))
    return out
