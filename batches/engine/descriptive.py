"""Descriptive statistics per indicator and per dimension.

Result::

    {"indicators": {name: {"dimension", "count", "missing", "mean", "std", "min", "p25",
                           "median", "p75", "max"}},
     "dimensions": {dim: {"indicators": [names], <the same statistics over the pooled scores>}}}

``std`` is the sample standard deviation (n - 1); percentiles interpolate linearly (NumPy's and
pandas' default). Undefined figures (no values; std of one value) are None. Units: one per
indicator, then one per dimension.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from batches.engine.numbers import to_json_number


def summarize(present: np.ndarray, total: int) -> dict:
    """Statistics of the non-missing values ``present`` out of ``total`` slots."""
    count = int(present.size)
    stats = {"count": count, "missing": int(total - count)}
    if count == 0:
        stats.update(dict.fromkeys(("mean", "std", "min", "p25", "median", "p75", "max")))
        return stats
    p25, median, p75 = np.percentile(present, [25, 50, 75])
    stats.update(
        {
            "mean": to_json_number(present.mean()),
            "std": to_json_number(present.std(ddof=1)) if count > 1 else None,
            "min": to_json_number(present.min()),
            "p25": to_json_number(p25),
            "median": to_json_number(median),
            "p75": to_json_number(p75),
            "max": to_json_number(present.max()),
        }
    )
    return stats


def descriptive(
    values: np.ndarray,
    indicators: list[str],
    dimension_of: dict[str, str],
    on_unit: Callable[[], None] | None = None,
) -> dict:
    n_students = values.shape[0]
    by_indicator = {}
    for j, name in enumerate(indicators):
        column = values[:, j]
        by_indicator[name] = {"dimension": dimension_of[name], **summarize(column[~np.isnan(column)], n_students)}
        if on_unit:
            on_unit()
    by_dimension = {}
    for dim in dict.fromkeys(dimension_of[name] for name in indicators):
        members = [j for j, name in enumerate(indicators) if dimension_of[name] == dim]
        pooled = values[:, members].ravel()
        by_dimension[dim] = {
            "indicators": [indicators[j] for j in members],
            **summarize(pooled[~np.isnan(pooled)], pooled.size),
        }
        if on_unit:
            on_unit()
    return {"indicators": by_indicator, "dimensions": by_dimension}


def descriptive_units(indicators: list[str], dimension_of: dict[str, str]) -> int:
    return len(indicators) + len({dimension_of[name] for name in indicators})
