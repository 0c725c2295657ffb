"""JSON-safe numbers: no NaN or infinity ever leaves the engine."""

from __future__ import annotations

import math

import numpy as np


def to_json_number(value):
    """NaN / ±inf → None; NumPy scalars → plain Python numbers."""
    if value is None:
        return None
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None
