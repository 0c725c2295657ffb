"""Count, mean and standard deviation per group (e.g. per school, per grade) and indicator.

``group_comparison(values, indicators, groups, on_unit=None)`` takes
``groups = {kind: (codes, labels)}``: ``codes`` is an integer array with one entry per student,
an index into ``labels``, or -1 for a student whose group is unknown (left out). It returns::

    {kind: {label: {indicator: {"count": int, "mean": float | None, "std": float | None}}}}

- ``count``: the group's students with a score for the indicator.
- ``mean``: None when ``count`` is 0; ``std``: sample standard deviation (ddof=1), None below two
  scores, exactly 0.0 when all the group's scores are equal.
- Labels without any student (no code pointing at them) are omitted, as in ``pandas.groupby``; a
  label with students but no score for an indicator is kept, with ``count`` 0.

The same figures as ``frame.groupby(kind)[indicators].agg(["count", "mean", "std"])``. The work
is vectorised with ``np.bincount`` (sums, then squared deviations from each group's own mean:
two-pass, for accuracy). Units (``on_unit`` calls): one per (kind, indicator), kinds in the order
of ``groups`` — see :func:`batches.engine.plan.group_comparison_units`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from batches.engine.numbers import OnUnit, as_matrix, tick, to_json_number

Groups = Mapping[str, tuple[np.ndarray, Sequence[str]]]


def _codes(kind: str, codes, labels: Sequence[str], n_students: int) -> np.ndarray:
    array = np.asarray(codes)
    if array.shape != (n_students,):
        raise ValueError(f"group {kind!r}: codes must have shape ({n_students},), got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"group {kind!r}: codes must be integers, got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < -1 or array.max() >= len(labels)):
        raise ValueError(f"group {kind!r}: codes must lie in [-1, {len(labels) - 1}]")
    if len(set(labels)) != len(labels):
        raise ValueError(f"group {kind!r}: labels must be unique")
    return array


def _one_indicator(scores: np.ndarray, codes: np.ndarray, n_groups: int):
    """(count, mean, std) arrays over the groups; NaN where undefined (made None later)."""
    keep = (codes >= 0) & ~np.isnan(scores)
    g, x = codes[keep], scores[keep]
    count = np.bincount(g, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=x, minlength=n_groups) / count
        deviation = x - mean[g]
        std = np.sqrt(np.bincount(g, weights=deviation * deviation, minlength=n_groups) / (count - 1))
    # A constant group's computed mean may be off by an ulp, giving a ~1e-15 std: compare every
    # score with one reference score of its group instead (exact), and report 0.0.
    reference = np.zeros(n_groups)
    reference[g] = x
    varies = np.bincount(g, weights=(x != reference[g]), minlength=n_groups) > 0
    std[(count > 1) & ~varies] = 0.0
    return count, mean, std


def group_comparison(values: np.ndarray, indicators: Sequence[str], groups: Groups, on_unit: OnUnit = None) -> dict:
    """Per-group count / mean / std of each indicator; see the module docstring for the shape."""
    matrix = as_matrix(values, indicators)
    n_students = matrix.shape[0]
    out: dict = {}
    for kind, (raw_codes, labels) in groups.items():
        codes = _codes(kind, raw_codes, labels, n_students)
        n_groups = len(labels)
        observed = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=n_groups))
        table: dict = {labels[index]: {} for index in observed}
        for column, name in enumerate(indicators):
            count, mean, std = _one_indicator(matrix[:, column], codes, n_groups)
            for index in observed:
                n = int(count[index])
                table[labels[index]][name] = {
                    "count": n,
                    "mean": to_json_number(mean[index]) if n > 0 else None,
                    "std": to_json_number(std[index]) if n > 1 else None,
                }
            tick(on_unit)
        out[kind] = table
    return out
