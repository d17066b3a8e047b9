"""An experiment's settings: one frozen dataclass, checked once, read by every caller.

Each experiment module defines ``Settings`` (a subclass of :class:`ExperimentSettings`
whose fields, with a comment each, are the book's values), ``FULL = Settings()`` and
``QUICK = FULL.replace(...)``.  The runner, the CLI and the example scripts read those
instead of repeating them.  Scalar fields are checked (and ints given for a float
widened) against their annotation when an instance is made; :meth:`check` adds an
experiment's own rules.  For old callers an instance is also a read-only mapping
(``s["epochs"]``, ``{**s}``).
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

__all__ = ["ExperimentSettings"]

_SCALARS = (bool, int, float, str)


def _checked(name: str, hint: Any, value: Any) -> Any:
    """``value`` as the annotation ``hint`` asks (scalars and tuples of them), else as is."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise TypeError(f"setting {name!r} must be a sequence, got {value!r}")
        return tuple(_checked(name, args[0], v) for v in value)
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if union and type(None) in args and value is None:
        return None
    scalar = next((a for a in (hint, *(args if union else ())) if a in _SCALARS), None)
    if scalar is None:
        return value
    if scalar is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if scalar is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, scalar) or (scalar is not bool and isinstance(value, bool)):
        optional = " or None" if union and type(None) in args else ""
        raise TypeError(f"setting {name!r} must be {scalar.__name__}{optional}, got {value!r}")
    return value


@dataclass(frozen=True)
class ExperimentSettings(Mapping[str, Any]):
    """Base class of the experiments' settings (see the module docstring)."""

    experiment: ClassVar[str] = "experiment"  # the experiment's NAME, for messages

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            try:
                value = _checked(f.name, hints[f.name], getattr(self, f.name))
            except TypeError as exc:
                raise TypeError(f"{self.experiment}: {exc}") from None
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Refuse values the experiment cannot run with (a ValueError naming the fix)."""

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``; an unknown name is a TypeError listing the settings."""
        unknown = sorted(set(changes) - set(self))
        if unknown:
            raise TypeError(
                f"{self.experiment}: unknown setting(s) {unknown}; the settings are {sorted(self)}"
            )
        # deep copies: a caller editing a result's settings must not change FULL
        return dataclasses.replace(copy.deepcopy(self), **copy.deepcopy(changes))

    # the read-only mapping view
    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))
