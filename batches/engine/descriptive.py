"""Descriptive statistics per indicator and per dimension.

``descriptive(values, indicators, dimension_of, on_unit=None)`` returns::

    {"indicators": {name: {"dimension": str, "count": int, "missing": int, "mean": float | None,
                           "std": float | None, "min": float | None, "p25": float | None,
                           "median": float | None, "p75": float | None, "max": float | None}},
     "dimensions": {dim: {"indicators": [names in column order], <the same statistics>}}}

A dimension pools every score of its indicators (``count`` / ``missing`` count score slots, i.e.
students × indicators of the dimension). Dimensions appear in the order of their first indicator.

- ``count``: non-missing scores; ``missing``: NaN slots.
- ``std``: sample standard deviation (ddof=1), exactly 0.0 for a constant column.
- ``p25`` / ``median`` / ``p75``: linear interpolation (NumPy's and pandas' ``quantile`` default).
- Undefined figures (no score at all; ``std`` of a single score) are None, never NaN.

Units (``on_unit`` calls): one per indicator, then one per dimension — see
:func:`batches.engine.plan.descriptive_units`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from batches.engine.numbers import OnUnit, as_matrix, tick, to_json_number

STATISTICS = ("count", "missing", "mean", "std", "min", "p25", "median", "p75", "max")


def summarize(scores: np.ndarray, slots: int) -> dict:
    """Statistics of ``scores`` (the non-missing values, 1-D) out of ``slots`` score slots."""
    count = int(scores.size)
    stats: dict = {"count": count, "missing": int(slots - count)}
    if count == 0:
        stats.update(dict.fromkeys(STATISTICS[2:]))
        return stats
    low, high = scores.min(), scores.max()
    p25, median, p75 = np.percentile(scores, [25.0, 50.0, 75.0])
    if count < 2:
        std = None
    elif low == high:
        # The floating-point mean of n copies of x need not be exactly x: avoid a ~1e-15 "spread".
        std = 0.0
    else:
        std = to_json_number(scores.std(ddof=1))
    stats.update(
        {
            "mean": to_json_number(scores.mean()),
            "std": std,
            "min": to_json_number(low),
            "p25": to_json_number(p25),
            "median": to_json_number(median),
            "p75": to_json_number(p75),
            "max": to_json_number(high),
        }
    )
    return stats


def dimensions_in_order(indicators: Sequence[str], dimension_of: Mapping[str, str]) -> dict[str, list[int]]:
    """Dimension → column indices of its indicators, dimensions in order of first appearance."""
    missing = [name for name in indicators if name not in dimension_of]
    if missing:
        raise ValueError(f"no dimension given for indicator(s): {', '.join(missing)}")
    members: dict[str, list[int]] = {}
    for column, name in enumerate(indicators):
        members.setdefault(dimension_of[name], []).append(column)
    return members


def descriptive(
    values: np.ndarray,
    indicators: Sequence[str],
    dimension_of: Mapping[str, str],
    on_unit: OnUnit = None,
) -> dict:
    """Per-indicator and per-dimension statistics; see the module docstring for the shape."""
    matrix = as_matrix(values, indicators)
    members = dimensions_in_order(indicators, dimension_of)
    n_students = matrix.shape[0]

    by_indicator: dict = {}
    for column, name in enumerate(indicators):
        scores = matrix[:, column]
        by_indicator[name] = {"dimension": dimension_of[name], **summarize(scores[~np.isnan(scores)], n_students)}
        tick(on_unit)

    by_dimension: dict = {}
    for dim, columns in members.items():
        pooled = matrix[:, columns].ravel()
        by_dimension[dim] = {
            "indicators": [indicators[column] for column in columns],
            **summarize(pooled[~np.isnan(pooled)], pooled.size),
        }
        tick(on_unit)
    return {"indicators": by_indicator, "dimensions": by_dimension}
