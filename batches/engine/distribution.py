"""Histograms per indicator.

Result: ``{name: {"edges": [bins + 1 floats], "counts": [bins ints], "count": n}}`` with
``numpy.histogram`` semantics (equal-width bins from the column's min to max; a constant column
gets NumPy's ±0.5 range); an empty column gives empty lists. Units: one per indicator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from batches.engine.numbers import to_json_number


def distribution(
    values: np.ndarray, indicators: list[str], bins: int = 20, on_unit: Callable[[], None] | None = None
) -> dict:
    out = {}
    for j, name in enumerate(indicators):
        column = values[:, j]
        column = column[~np.isnan(column)]
        if column.size == 0:
            out[name] = {"edges": [], "counts": [], "count": 0}
        else:
            counts, edges = np.histogram(column, bins=bins)
            out[name] = {
                "edges": [to_json_number(edge) for edge in edges],
                "counts": [int(c) for c in counts],
                "count": int(column.size),
            }
        if on_unit:
            on_unit()
    return out
