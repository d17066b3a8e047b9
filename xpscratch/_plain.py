"""Plain JSON data: what every result's ``to_dict()`` returns (Python numbers, strings, lists)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["plain"]


def plain(value: Any, where: str) -> Any:
    """``value`` as JSON data; NaN/inf become None; anything else is refused, naming ``where``.

    Refuse rather than convert: a NumPy or device scalar here means a missed to_numpy.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN/inf
    if isinstance(value, (list, tuple)):
        return [plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}: {type(value).__name__} is not plain JSON data")
