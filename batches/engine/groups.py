"""Mean, standard deviation and count per group (e.g. per school, per grade) and indicator.

Result: ``{kind: {label: {indicator: {"count", "mean", "std"}}}}`` — std is the sample standard
deviation (None below two values); labels with no student at all are omitted. Students whose
group code is -1 are left out. Vectorised with ``np.bincount``. Units: one per (kind, indicator).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from batches.engine.numbers import to_json_number


def group_comparison(
    values: np.ndarray,
    indicators: list[str],
    groups: dict[str, tuple[np.ndarray, list[str]]],
    on_unit: Callable[[], None] | None = None,
) -> dict:
    out: dict = {}
    for kind, (codes, labels) in groups.items():
        codes = np.asarray(codes, dtype=np.int64)
        n_groups = len(labels)
        members = np.bincount(codes[codes >= 0], minlength=n_groups)
        table: dict = {labels[g]: {} for g in range(n_groups) if members[g] > 0}
        for j, name in enumerate(indicators):
            column = values[:, j]
            keep = (codes >= 0) & ~np.isnan(column)
            g, x = codes[keep], column[keep]
            count = np.bincount(g, minlength=n_groups)
            total = np.bincount(g, weights=x, minlength=n_groups)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = total / count
                # Two-pass: squared deviations from each group's own mean.
                deviation = x - mean[g]
                ss = np.bincount(g, weights=deviation * deviation, minlength=n_groups)
                std = np.sqrt(ss / (count - 1))
            for index in range(n_groups):
                if members[index] == 0:
                    continue
                n = int(count[index])
                table[labels[index]][name] = {
                    "count": n,
                    "mean": to_json_number(mean[index]) if n else None,
                    "std": to_json_number(std[index]) if n > 1 else None,
                }
            if on_unit:
                on_unit()
        out[kind] = table
    return out
