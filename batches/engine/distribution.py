"""Histograms per indicator.

``distribution(values, indicators, bins=20, on_unit=None)`` returns::

    {name: {"edges": [bins + 1 floats], "counts": [bins ints], "count": int}}

with ``numpy.histogram(scores, bins=bins)`` semantics over the indicator's non-missing scores:
equal-width bins from its min to its max, each bin half-open ``[a, b)`` except the last, which is
closed, so ``sum(counts) == count``. A constant indicator gets NumPy's range ``[x - 0.5, x + 0.5]``
(every score in the middle bin); an indicator without any score gets ``edges == counts == []`` and
``count == 0``.

Units (``on_unit`` calls): one per indicator — see :func:`batches.engine.plan.distribution_units`.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from batches.engine.numbers import OnUnit, as_matrix, tick, to_json_number


def distribution(values: np.ndarray, indicators: Sequence[str], bins: int = 20, on_unit: OnUnit = None) -> dict:
    """Equal-width histogram of each indicator; see the module docstring for the shape."""
    matrix = as_matrix(values, indicators)
    try:
        if isinstance(bins, (bool, np.bool_)):
            raise TypeError
        bins = operator.index(bins)
    except TypeError:
        raise ValueError(f"bins must be an integer, got {bins!r}") from None
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")

    out: dict = {}
    for column, name in enumerate(indicators):
        scores = matrix[:, column]
        scores = scores[~np.isnan(scores)]
        if scores.size == 0:
            out[name] = {"edges": [], "counts": [], "count": 0}
        else:
            counts, edges = np.histogram(scores, bins=bins)
            out[name] = {
                "edges": [to_json_number(edge) for edge in edges],
                "counts": counts.tolist(),
                "count": int(scores.size),
            }
        tick(on_unit)
    return out
