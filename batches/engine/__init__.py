"""The statistics engine: pure NumPy, no Django. The ``statistics`` job adapts data to it.

Input: ``values`` (students × indicators, float64, NaN = missing), the indicator names, each
indicator's dimension and, for group comparison, ``groups`` {kind: (codes per student, labels)}.
Every result is JSON-safe (no NaN). ``on_unit()`` is called after each unit of work so that the
caller reports honest progress and can stop (an exception it raises propagates).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from batches.engine.correlation import correlation
from batches.engine.descriptive import descriptive
from batches.engine.distribution import distribution
from batches.engine.groups import group_comparison
from batches.engine.numbers import to_json_number

ORDER = ("descriptive", "correlation", "distribution", "group_comparison")

__all__ = [
    "ORDER",
    "compute",
    "correlation",
    "descriptive",
    "distribution",
    "group_comparison",
    "plan_units",
    "to_json_number",
]


def plan_units(calculation_types, n_indicators: int, *, group_kinds: int = 0, n_dimensions: int | None = None) -> int:
    """How many times :func:`compute` will call ``on_unit`` (``n_dimensions`` defaults to 2)."""
    dims = 2 if n_dimensions is None else n_dimensions
    per_type = {
        "descriptive": n_indicators + dims,
        "correlation": n_indicators,
        "distribution": n_indicators,
        "group_comparison": group_kinds * n_indicators,
    }
    return sum(per_type[c] for c in calculation_types)


def compute(
    values: np.ndarray,
    indicators: list[str],
    dimension_of: dict[str, str],
    calculation_types,
    groups: dict | None = None,
    bins: int = 20,
    on_unit: Callable[[], None] | None = None,
) -> dict:
    """Run the requested calculations in the engine's order; returns {type: result}."""
    out: dict = {}
    for calculation in ORDER:
        if calculation not in calculation_types:
            continue
        if calculation == "descriptive":
            out[calculation] = descriptive(values, indicators, dimension_of, on_unit)
        elif calculation == "correlation":
            out[calculation] = correlation(values, indicators, on_unit)
        elif calculation == "distribution":
            out[calculation] = distribution(values, indicators, bins, on_unit)
        else:
            out[calculation] = group_comparison(values, indicators, groups or {}, on_unit)
    return out
