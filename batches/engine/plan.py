"""How many units of work (``on_unit()`` calls) each calculation makes, announced before it runs.

The caller reports progress as "units done / units total", so these counts must be exact: the
tests check every function against them.

==================  ==========================================================
calculation         units
==================  ==========================================================
descriptive         one per indicator, then one per dimension
correlation         one per indicator (a row of the matrix)
distribution        one per indicator
group_comparison    one per (group kind, indicator)
==================  ==========================================================

A unit is small — on 100,000 students a few milliseconds; the heaviest, a correlation row, grows
with the number of indicators — so cancellation is noticed quickly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

#: Every calculation the engine knows, in the order :func:`batches.engine.compute` runs them.
CALCULATION_TYPES: tuple[str, ...] = ("descriptive", "correlation", "distribution", "group_comparison")


def requested(calculation_types: Iterable[str]) -> list[str]:
    """The requested calculations in engine order, each once; unknown names are an error."""
    wanted = set(calculation_types)
    unknown = sorted(wanted - set(CALCULATION_TYPES))
    if unknown:
        raise ValueError(f"unknown calculation type(s): {', '.join(unknown)}")
    return [name for name in CALCULATION_TYPES if name in wanted]


def descriptive_units(n_indicators: int, n_dimensions: int) -> int:
    """``n_dimensions`` counts the distinct dimensions of the indicators actually passed."""
    return n_indicators + n_dimensions


def correlation_units(n_indicators: int) -> int:
    return n_indicators


def distribution_units(n_indicators: int) -> int:
    return n_indicators


def group_comparison_units(n_indicators: int, group_kinds: int | Collection) -> int:
    """``group_kinds``: their number, or the ``groups`` mapping (or any collection of kinds)."""
    kinds = group_kinds if isinstance(group_kinds, int) else len(group_kinds)
    return kinds * n_indicators


def plan_units(
    calculation_types: Iterable[str],
    n_indicators: int,
    *,
    group_kinds: int | Collection = 0,
    n_dimensions: int | None = None,
) -> int:
    """Total ``on_unit()`` calls of ``compute(..., calculation_types, ...)`` on such input.

    ``n_dimensions`` (the distinct dimensions among the indicators) is required when
    ``descriptive`` is requested; ``group_kinds`` matters only for ``group_comparison`` (0 when
    ``compute`` gets no groups).
    """
    total = 0
    for calculation in requested(calculation_types):
        if calculation == "descriptive":
            if n_dimensions is None:
                raise ValueError("plan_units needs n_dimensions when 'descriptive' is requested")
            total += descriptive_units(n_indicators, n_dimensions)
        elif calculation == "correlation":
            total += correlation_units(n_indicators)
        elif calculation == "distribution":
            total += distribution_units(n_indicators)
        else:
            total += group_comparison_units(n_indicators, group_kinds)
    return total
