"""Pearson correlation between indicators across students, pairwise-complete.

Result::

    {"indicators": [names], "matrix": [[r or None, …], …], "n": [[pairs used, …], …]}

For each pair only the students with both scores count (``pandas.DataFrame.corr()`` with its
default ``min_periods``). Undefined r (fewer than two pairs, or no variance in either column over
those pairs) is None. Each pair is computed two-pass (mean-centred) for accuracy. Units: one per
row of the matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from batches.engine.numbers import to_json_number


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 2:
        return None
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(np.dot(dx, dx))
    syy = float(np.dot(dy, dy))
    if sxx == 0.0 or syy == 0.0:
        return None
    r = float(np.dot(dx, dy)) / np.sqrt(sxx * syy)
    return to_json_number(min(1.0, max(-1.0, r)))


def correlation(values: np.ndarray, indicators: list[str], on_unit: Callable[[], None] | None = None) -> dict:
    k = len(indicators)
    present = ~np.isnan(values)
    matrix: list[list[float | None]] = [[None] * k for _ in range(k)]
    counts = [[0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i, k):
            both = present[:, i] & present[:, j]
            n = int(both.sum())
            counts[i][j] = counts[j][i] = n
            if i == j:
                column = values[both, i]
                r = 1.0 if n >= 2 and float(np.ptp(column)) > 0 else None
            else:
                r = _pearson(values[both, i], values[both, j])
            matrix[i][j] = matrix[j][i] = r
        if on_unit:
            on_unit()
    return {"indicators": list(indicators), "matrix": matrix, "n": counts}


def correlation_units(indicators: list[str]) -> int:
    return len(indicators)
