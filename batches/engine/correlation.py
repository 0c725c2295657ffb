"""Pearson correlation between indicators across students, pairwise-complete.

``correlation(values, indicators, on_unit=None)`` returns::

    {"indicators": [names],                      # row / column order of both matrices
     "matrix": [[float | None, ...], ...],       # k × k Pearson r, symmetric
     "n": [[int, ...], ...]}                     # k × k students used for each pair

For each pair only the students with both scores count — the same figures as
``pandas.DataFrame.corr()`` with its default ``min_periods``. ``n[i][i]`` is the indicator's
number of scores. r is None where it is undefined: fewer than two pairs, or no variance in either
indicator over the pair's students (checked exactly, min == max, so a constant column is never
turned into noise by rounding). The diagonal is 1.0 where the indicator has variance, else None.
Each r is computed two-pass (mean-centred sums), then clipped to [-1, 1] against rounding.

Units (``on_unit`` calls): one per row of the matrix, i.e. one per indicator — see
:func:`batches.engine.plan.correlation_units`. Row ``i`` computes the pairs ``(i, j >= i)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from batches.engine.numbers import OnUnit, as_matrix, tick


def _varies(x: np.ndarray) -> bool:
    return x.size > 1 and bool(x.min() != x.max())


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson r of two equally long 1-D arrays without missing values; None where undefined."""
    if x.size < 2 or not (_varies(x) and _varies(y)):
        return None
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(np.dot(dx, dx))
    syy = float(np.dot(dy, dy))
    r = float(np.dot(dx, dy)) / float(np.sqrt(sxx * syy))
    return min(1.0, max(-1.0, r))


def correlation(values: np.ndarray, indicators: Sequence[str], on_unit: OnUnit = None) -> dict:
    """Pairwise-complete Pearson correlation matrix; see the module docstring for the shape."""
    matrix = as_matrix(values, indicators)
    k = len(indicators)
    # One contiguous row per indicator: the per-pair reductions then run over contiguous memory.
    columns = np.ascontiguousarray(matrix.T)
    present = ~np.isnan(columns)
    complete = present.all(axis=1)

    r: list[list[float | None]] = [[None] * k for _ in range(k)]
    n: list[list[int]] = [[0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i, k):
            if complete[i] and complete[j]:
                x, y = columns[i], columns[j]
            else:
                both = present[i] & present[j]
                x, y = columns[i, both], columns[j, both]
            n[i][j] = n[j][i] = int(x.size)
            if i == j:
                r[i][i] = 1.0 if _varies(x) else None
            else:
                r[i][j] = r[j][i] = pearson(x, y)
        tick(on_unit)
    return {"indicators": list(indicators), "matrix": r, "n": n}
