"""Shared helpers: JSON-safe numbers and the checks every engine function makes on its input.

``to_json_number`` is the only way a figure leaves the engine, so no NaN, infinity or NumPy scalar
ever reaches a result (every result passes ``json.dumps(..., allow_nan=False)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

OnUnit = Callable[[], None] | None


def to_json_number(value) -> int | float | None:
    """NaN / ±inf → None; NumPy scalars → plain Python ``int`` / ``float``; None stays None."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def as_matrix(values, indicators: Sequence[str]) -> np.ndarray:
    """``values`` as a float64 (students × indicators) array, checked against ``indicators``.

    NaN means a missing score; infinities are rejected because they would silently turn means and
    histogram ranges into nonsense rather than count as missing.
    """
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"values must be a 2-D (students × indicators) array, got {matrix.ndim} dimension(s)")
    if matrix.shape[1] != len(indicators):
        raise ValueError(f"values has {matrix.shape[1]} columns but {len(indicators)} indicators were named")
    if len(set(indicators)) != len(indicators):
        raise ValueError("indicator names must be unique")
    if np.isinf(matrix).any():
        raise ValueError("values must be finite or NaN (missing); found an infinity")
    return matrix


def tick(on_unit: OnUnit) -> None:
    """Report one finished unit; whatever ``on_unit`` raises (e.g. a cancellation) propagates."""
    if on_unit is not None:
        on_unit()
