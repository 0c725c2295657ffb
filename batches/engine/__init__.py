"""The statistics engine: pure NumPy, no Django (the ``statistics`` job adapts its data to it).

Input, built by the caller:

- ``values``: float64 array (students × indicators); NaN = missing score (infinities are rejected).
- ``indicators``: the column names (unique); ``dimension_of``: indicator → dimension name.
- ``groups`` (group comparison only): ``{kind: (codes, labels)}``, ``codes`` one int per student
  indexing ``labels``, -1 = unknown group (left out).

Functions (result shapes in each module's docstring):

- :func:`descriptive` — count, missing, mean, std, min, p25, median, p75, max per indicator and
  per dimension (pooled scores).
- :func:`correlation` — pairwise-complete Pearson matrix plus the pairs used.
- :func:`distribution` — equal-width histogram per indicator.
- :func:`group_comparison` — count, mean, std per group kind, label and indicator.
- :func:`compute` — the requested ones, in :data:`CALCULATION_TYPES` order.
- :func:`plan_units` (and ``*_units``) — how many ``on_unit()`` calls they will make.

Every result is plain JSON (``json.dumps(result, allow_nan=False)`` works): undefined figures are
None, numbers are Python ``int`` / ``float``. ``on_unit()``, when given, is called after each
unit of work so that the caller reports honest progress; whatever it raises (a cancellation)
propagates unchanged and stops the computation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from batches.engine.correlation import correlation
from batches.engine.descriptive import descriptive
from batches.engine.distribution import distribution
from batches.engine.groups import Groups, group_comparison
from batches.engine.numbers import OnUnit, to_json_number
from batches.engine.plan import (
    CALCULATION_TYPES,
    correlation_units,
    descriptive_units,
    distribution_units,
    group_comparison_units,
    plan_units,
    requested,
)

#: Kept for callers written against the first version of the engine.
ORDER = CALCULATION_TYPES

__all__ = [
    "CALCULATION_TYPES",
    "ORDER",
    "compute",
    "correlation",
    "correlation_units",
    "descriptive",
    "descriptive_units",
    "distribution",
    "distribution_units",
    "group_comparison",
    "group_comparison_units",
    "plan_units",
    "to_json_number",
]


def compute(
    values: np.ndarray,
    indicators: Sequence[str],
    dimension_of: Mapping[str, str],
    calculation_types: Iterable[str],
    groups: Groups | None = None,
    bins: int = 20,
    on_unit: OnUnit = None,
) -> dict:
    """Run the requested calculations in :data:`CALCULATION_TYPES` order.

    Returns ``{calculation: result}`` for the requested ones only. Without ``groups``,
    ``group_comparison`` is ``{}`` (and makes no unit). Unknown calculation names raise
    ``ValueError`` before anything runs.
    """
    out: dict = {}
    for calculation in requested(calculation_types):
        if calculation == "descriptive":
            out[calculation] = descriptive(values, indicators, dimension_of, on_unit)
        elif calculation == "correlation":
            out[calculation] = correlation(values, indicators, on_unit)
        elif calculation == "distribution":
            out[calculation] = distribution(values, indicators, bins, on_unit)
        else:
            out[calculation] = group_comparison(values, indicators, groups or {}, on_unit)
    return out
