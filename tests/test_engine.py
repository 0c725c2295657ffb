"""The statistics engine (batches/engine) against independent pandas / SciPy / NumPy computations.

No database and no Django needed: ``pytest -p no:django --noconftest tests/test_engine.py`` (the
shared conftest imports Django models), or simply with the rest of the suite. The data is
generated with a fixed seed: 2,000 students, six correlated indicators in two dimensions (about
1 % of the scores missing), plus degenerate columns (constant, all missing, a single score), and
school / grade groups with unknown codes, an unused label and a one-student school.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from batches import engine
from batches.engine import (
    CALCULATION_TYPES,
    compute,
    correlation,
    correlation_units,
    descriptive,
    descriptive_units,
    distribution,
    distribution_units,
    group_comparison,
    group_comparison_units,
    plan_units,
    to_json_number,
)

SEED = 20250601
N_STUDENTS = 2000
ACADEMIC = ["math", "physics", "chemistry"]
NON_ACADEMIC = ["sport", "art", "conduct"]
# Degenerate columns: constant (0.1 and 72.3 are not exact in binary: a naive mean/std drifts),
# never scored, scored once (in a dimension of its own).
CONSTANT, EMPTY, SINGLE = "attendance", "music", "pilot_test"
INDICATORS = [*ACADEMIC, *NON_ACADEMIC, CONSTANT, EMPTY, SINGLE]
DIMENSION_OF = {
    **dict.fromkeys(ACADEMIC, "academic"),
    **dict.fromkeys(NON_ACADEMIC, "non_academic"),
    CONSTANT: "academic",
    EMPTY: "non_academic",
    SINGLE: "pilot",
}
SCHOOLS = [f"S{i:02d}" for i in range(1, 13)]  # S12 is never used, S11 has one student
GRADES = ["7", "8", "9"]


@dataclass
class Data:
    values: np.ndarray
    groups: dict
    frame: pd.DataFrame


def generate(seed: int = SEED, n: int = N_STUDENTS) -> Data:
    rng = np.random.default_rng(seed)
    means = np.array([68.0, 65.0, 70.0, 75.0, 78.0, 82.0])
    sds = np.array([12.0, 11.0, 10.0, 9.0, 8.0, 6.0])
    within_academic, within_non_academic, across = 0.65, 0.45, 0.25
    corr = np.full((6, 6), across)
    corr[:3, :3] = within_academic
    corr[3:, 3:] = within_non_academic
    np.fill_diagonal(corr, 1.0)
    scores = rng.multivariate_normal(means, corr * np.outer(sds, sds), size=n)
    scores = np.clip(np.round(scores, 1), 40.0, 100.0)
    scores[rng.random(scores.shape) < 0.01] = np.nan

    constant = np.full(n, 72.3)
    constant[rng.random(n) < 0.01] = np.nan
    empty = np.full(n, np.nan)
    single = np.full(n, np.nan)
    single[rng.integers(n)] = 55.5
    values = np.column_stack([scores, constant, empty, single])

    school = rng.integers(0, 10, n)
    school[rng.random(n) < 0.02] = -1
    school[0] = 10  # S11: exactly one student
    grade = rng.integers(0, 3, n)
    grade[rng.random(n) < 0.01] = -1
    groups = {"school": (school, SCHOOLS), "grade": (grade, GRADES)}
    return Data(values=values, groups=groups, frame=pd.DataFrame(values, columns=INDICATORS))


@pytest.fixture(scope="module")
def data() -> Data:
    return generate()


def close(ours, theirs) -> bool:
    """Ours equals theirs to 1e-9 relative; an undefined (NaN) figure of theirs must be None."""
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return ours is None
    return type(ours) in (int, float) and math.isclose(ours, float(theirs), rel_tol=1e-9, abs_tol=1e-12)


def plain_json(value) -> bool:
    """Only JSON's own Python types (NumPy scalars would slip through json.dumps as floats)."""
    if isinstance(value, dict):
        return all(type(key) is str and plain_json(item) for key, item in value.items())
    if isinstance(value, list):
        return all(plain_json(item) for item in value)
    return value is None or type(value) in (str, int, float, bool)


def n_dimensions(indicators=INDICATORS) -> int:
    return len({DIMENSION_OF[name] for name in indicators})


# ---------------------------------------------------------------------------------------------
# Descriptive


def test_the_generated_data_looks_like_assessment_scores(data):
    scores = data.frame[ACADEMIC + NON_ACADEMIC]
    assert 0.005 < scores.isna().to_numpy().mean() < 0.015
    assert scores.min().min() >= 40 and scores.max().max() <= 100
    assert scores.corr().loc["math", "physics"] > 0.5
    assert data.frame[EMPTY].isna().all() and data.frame[SINGLE].count() == 1


def test_descriptive_per_indicator_matches_pandas_describe(data):
    result = descriptive(data.values, INDICATORS, DIMENSION_OF)
    assert list(result["indicators"]) == INDICATORS
    for name in INDICATORS:
        column = data.frame[name]
        described = column.describe()
        expected = {
            "count": described["count"],
            "missing": column.isna().sum(),
            "mean": described["mean"],
            "std": column.std(ddof=1),
            "min": described["min"],
            "p25": described["25%"],
            "median": column.quantile(0.5),
            "p75": described["75%"],
            "max": described["max"],
        }
        ours = result["indicators"][name]
        assert ours["dimension"] == DIMENSION_OF[name]
        assert type(ours["count"]) is int and type(ours["missing"]) is int
        for key, value in expected.items():
            assert close(ours[key], float(value)), (name, key, ours[key], value)


def test_descriptive_per_dimension_pools_the_scores_of_its_indicators(data):
    result = descriptive(data.values, INDICATORS, DIMENSION_OF)["dimensions"]
    assert list(result) == ["academic", "non_academic", "pilot"]
    for dim, ours in result.items():
        names = [name for name in INDICATORS if DIMENSION_OF[name] == dim]
        assert ours["indicators"] == names
        pooled = pd.concat([data.frame[name] for name in names], ignore_index=True)
        expected = {
            "count": pooled.count(),
            "missing": pooled.isna().sum(),
            "mean": pooled.mean(),
            "std": pooled.std(ddof=1),
            "min": pooled.min(),
            "p25": pooled.quantile(0.25),
            "median": pooled.quantile(0.5),
            "p75": pooled.quantile(0.75),
            "max": pooled.max(),
        }
        for key, value in expected.items():
            assert close(ours[key], float(value)), (dim, key, ours[key], value)
    assert result["pilot"]["count"] == 1 and result["pilot"]["std"] is None
    assert result["pilot"]["median"] == 55.5


def test_degenerate_columns_give_none_or_exact_zero_never_nan(data):
    ours = descriptive(data.values, INDICATORS, DIMENSION_OF)["indicators"]
    assert ours[CONSTANT]["std"] == 0.0 and ours[CONSTANT]["min"] == ours[CONSTANT]["max"] == 72.3
    assert ours[EMPTY] == {
        "dimension": "non_academic",
        "count": 0,
        "missing": N_STUDENTS,
        **dict.fromkeys(("mean", "std", "min", "p25", "median", "p75", "max")),
    }
    assert ours[SINGLE]["std"] is None and ours[SINGLE]["mean"] == ours[SINGLE]["p25"] == 55.5
    # Thirty copies of 0.1: the float mean is not exactly 0.1, yet the spread must be exactly 0.
    tenths = np.full((30, 1), 0.1)
    assert descriptive(tenths, ["x"], {"x": "d"})["indicators"]["x"]["std"] == 0.0


# ---------------------------------------------------------------------------------------------
# Correlation


def test_correlation_matches_pandas_corr_pairwise_complete(data):
    result = correlation(data.values, INDICATORS)
    assert result["indicators"] == INDICATORS
    expected = data.frame.corr()
    present = data.frame.notna().astype(int)
    pairs = present.T @ present
    for i, a in enumerate(INDICATORS):
        for j, b in enumerate(INDICATORS):
            assert close(result["matrix"][i][j], float(expected.loc[a, b])), (a, b, result["matrix"][i][j])
            assert result["n"][i][j] == pairs.loc[a, b]
            assert result["matrix"][i][j] == result["matrix"][j][i]


def test_correlation_matches_scipy_pearsonr_on_the_pairs_where_both_scores_exist(data):
    result = correlation(data.values, INDICATORS)
    scored = ACADEMIC + NON_ACADEMIC
    for a in scored:
        for b in scored:
            if a == b:
                continue
            both = data.frame[[a, b]].dropna()
            expected = stats.pearsonr(both[a], both[b]).statistic
            i, j = INDICATORS.index(a), INDICATORS.index(b)
            assert close(result["matrix"][i][j], expected), (a, b)
            assert result["n"][i][j] == len(both) < N_STUDENTS


def test_correlation_is_none_where_undefined(data):
    result = correlation(data.values, INDICATORS)
    for name in (CONSTANT, EMPTY, SINGLE):
        row = result["matrix"][INDICATORS.index(name)]
        assert row == [None] * len(INDICATORS), name
    assert all(result["matrix"][i][i] == 1.0 for i in range(6))
    # Two pairs exactly, then variance in only one of two columns within the pairs used.
    values = np.array([[1.0, 2.0, 5.0], [2.0, np.nan, 5.0], [3.0, 1.0, 6.0]])
    small = correlation(values, ["a", "b", "c"])
    assert small["n"] == [[3, 2, 3], [2, 2, 2], [3, 2, 3]]
    assert small["matrix"][0][1] == pytest.approx(-1.0) and small["matrix"][1][2] == pytest.approx(-1.0)
    values[2, 2] = 5.0  # c now constant
    assert correlation(values, ["a", "b", "c"])["matrix"][2] == [None, None, None]


def test_correlation_is_accurate_despite_a_large_common_offset(data):
    shifted = data.values[:, :6] + 1e7
    ours = correlation(shifted, ACADEMIC + NON_ACADEMIC)["matrix"]
    expected = pd.DataFrame(shifted).corr().to_numpy()
    unshifted = data.frame[ACADEMIC + NON_ACADEMIC].corr().to_numpy()
    for i in range(6):
        for j in range(6):
            assert close(ours[i][j], expected[i][j]), (i, j)
            assert math.isclose(ours[i][j], unshifted[i][j], rel_tol=1e-6), (i, j)


# ---------------------------------------------------------------------------------------------
# Distribution


@pytest.mark.parametrize("bins", [20, 7, 1])
def test_distribution_matches_numpy_histogram(data, bins):
    result = distribution(data.values, INDICATORS, bins=bins)
    assert list(result) == INDICATORS
    for name in INDICATORS:
        scores = data.frame[name].dropna().to_numpy()
        ours = result[name]
        assert ours["count"] == len(scores)
        if len(scores) == 0:
            assert ours == {"edges": [], "counts": [], "count": 0}
            continue
        counts, edges = np.histogram(scores, bins=bins)
        assert ours["counts"] == counts.tolist() and sum(ours["counts"]) == len(scores)
        assert len(ours["edges"]) == bins + 1
        assert all(close(x, y) for x, y in zip(ours["edges"], edges.tolist(), strict=True)), name
    assert result[CONSTANT]["edges"][0] == pytest.approx(72.3 - 0.5)
    assert result[CONSTANT]["edges"][-1] == pytest.approx(72.3 + 0.5)


# ---------------------------------------------------------------------------------------------
# Group comparison


@pytest.mark.parametrize("kind", ["school", "grade"])
def test_group_comparison_matches_pandas_groupby(data, kind):
    result = group_comparison(data.values, INDICATORS, data.groups)
    assert list(result) == ["school", "grade"]
    codes, labels = data.groups[kind]
    frame = data.frame.copy()
    frame[kind] = pd.Series(np.asarray(labels, dtype=object)[codes], dtype=object).where(codes >= 0, None)
    expected = frame.groupby(kind)[INDICATORS].agg(["count", "mean", "std"])
    ours = result[kind]
    assert set(ours) == set(expected.index)
    for label in expected.index:
        assert list(ours[label]) == INDICATORS
        for name in INDICATORS:
            for stat in ("count", "mean", "std"):
                theirs = float(expected.loc[label, (name, stat)])
                assert close(ours[label][name][stat], theirs), (kind, label, name, stat, ours[label][name][stat])


def test_group_comparison_edge_cases(data):
    schools = group_comparison(data.values, INDICATORS, data.groups)["school"]
    assert "S12" not in schools  # a label no student points at
    assert schools["S11"]["math"]["count"] == 1 and schools["S11"]["math"]["std"] is None
    assert schools["S01"][EMPTY] == {"count": 0, "mean": None, "std": None}
    assert schools["S01"][CONSTANT]["std"] == 0.0
    tenths = np.full((40, 1), 0.1)
    codes = np.arange(40) % 2
    tiny = group_comparison(tenths, ["x"], {"half": (codes, ["even", "odd"])})["half"]
    assert tiny["even"]["x"] == {"count": 20, "mean": pytest.approx(0.1), "std": 0.0}
    assert group_comparison(data.values, INDICATORS, {}) == {}


# ---------------------------------------------------------------------------------------------
# compute, JSON safety, units of work and cancellation


def test_compute_returns_only_what_was_requested_in_engine_order(data):
    result = compute(data.values, INDICATORS, DIMENSION_OF, ["distribution", "descriptive"], bins=5)
    assert list(result) == ["descriptive", "distribution"]
    assert result["distribution"] == distribution(data.values, INDICATORS, bins=5)
    assert compute(data.values, INDICATORS, DIMENSION_OF, ["group_comparison"]) == {"group_comparison": {}}


DEGENERATE = {
    "no_students": np.empty((0, 3)),
    "one_student": np.array([[50.0, np.nan, 70.0]]),
    "all_missing": np.full((25, 3), np.nan),
    "all_equal": np.full((25, 3), 0.1),
    "two_students": np.array([[50.0, 60.0, np.nan], [51.0, np.nan, 70.0]]),
}


@pytest.mark.parametrize("case", DEGENERATE)
def test_every_result_is_plain_json_even_for_degenerate_data(case):
    values = DEGENERATE[case]
    names = ["a", "b", "c"]
    n = values.shape[0]
    groups = {"g": (np.arange(n) % 2 - (np.arange(n) == 0), ["x", "y"])}
    result = compute(values, names, {"a": "d1", "b": "d1", "c": "d2"}, CALCULATION_TYPES, groups=groups)
    json.dumps(result, allow_nan=False)
    assert plain_json(result)


def test_every_result_is_plain_json_on_the_generated_data(data):
    result = compute(data.values, INDICATORS, DIMENSION_OF, CALCULATION_TYPES, groups=data.groups)
    json.dumps(result, allow_nan=False)
    assert plain_json(result)
    no_indicators = compute(np.empty((5, 0)), [], {}, CALCULATION_TYPES, groups={"g": (np.zeros(5, int), ["x"])})
    json.dumps(no_indicators, allow_nan=False)


class UnitCounter:
    def __init__(self, fail_at: int | None = None):
        self.calls = 0
        self.fail_at = fail_at

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise Cancelled


class Cancelled(Exception):
    pass


@pytest.mark.parametrize(
    "calculations", [[c] for c in CALCULATION_TYPES] + [list(CALCULATION_TYPES), ["correlation", "descriptive"]]
)
def test_on_unit_is_called_exactly_as_often_as_plan_units_announces(data, calculations):
    counter = UnitCounter()
    compute(data.values, INDICATORS, DIMENSION_OF, calculations, groups=data.groups, on_unit=counter)
    planned = plan_units(calculations, len(INDICATORS), group_kinds=len(data.groups), n_dimensions=n_dimensions())
    assert counter.calls == planned > 0
    assert plan_units(calculations, len(INDICATORS), group_kinds=data.groups, n_dimensions=3) == planned


def test_each_function_makes_its_announced_units(data):
    k = len(INDICATORS)
    for run, expected in [
        (lambda on: descriptive(data.values, INDICATORS, DIMENSION_OF, on), descriptive_units(k, n_dimensions())),
        (lambda on: correlation(data.values, INDICATORS, on), correlation_units(k)),
        (lambda on: distribution(data.values, INDICATORS, 20, on), distribution_units(k)),
        (lambda on: group_comparison(data.values, INDICATORS, data.groups, on), group_comparison_units(k, 2)),
    ]:
        counter = UnitCounter()
        run(counter)
        assert counter.calls == expected
    assert plan_units(["group_comparison"], k) == 0  # no groups: compute makes no group unit
    assert plan_units(["descriptive", "descriptive"], 4, n_dimensions=2) == 6


@pytest.mark.parametrize("calculation", CALCULATION_TYPES)
@pytest.mark.parametrize("fail_at", [1, 3])
def test_an_exception_raised_by_on_unit_propagates_and_stops_the_work(data, calculation, fail_at):
    counter = UnitCounter(fail_at=fail_at)
    with pytest.raises(Cancelled):
        compute(data.values, INDICATORS, DIMENSION_OF, [calculation], groups=data.groups, on_unit=counter)
    assert counter.calls == fail_at


# ---------------------------------------------------------------------------------------------
# Input checks, helpers, independence from Django / pandas


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v: descriptive(v[:, :2], INDICATORS, DIMENSION_OF), "columns"),
        (lambda v: descriptive(v, INDICATORS, {"math": "academic"}), "no dimension"),
        (lambda v: correlation(v[0], INDICATORS), "2-D"),
        (lambda v: correlation(np.where(np.isnan(v), np.inf, v), INDICATORS), "infinity"),
        (lambda v: distribution(v, INDICATORS, bins=0), "bins"),
        (lambda v: distribution(v, INDICATORS, bins=2.5), "bins"),
        (lambda v: group_comparison(v, INDICATORS, {"g": (np.full(len(v), 3), ["a", "b"])}), r"\[-1, 1\]"),
        (lambda v: group_comparison(v, INDICATORS, {"g": (np.zeros(3, int), ["a"])}), "shape"),
        (lambda v: group_comparison(v, INDICATORS, {"g": (np.zeros(len(v)), ["a"])}), "integers"),
        (lambda v: compute(v, INDICATORS, DIMENSION_OF, ["median"]), "unknown calculation"),
        (lambda v: plan_units(["descriptive"], 9), "n_dimensions"),
        (lambda v: descriptive(v[:, :2], ["a", "a"], {"a": "d"}), "unique"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(data, call, message):
    with pytest.raises(ValueError, match=message):
        call(data.values)


def test_to_json_number():
    assert to_json_number(np.float64("nan")) is None
    assert to_json_number(float("inf")) is None and to_json_number(-np.inf) is None
    assert to_json_number(None) is None
    assert type(to_json_number(np.int64(3))) is int and to_json_number(np.int64(3)) == 3
    assert type(to_json_number(np.float32(0.5))) is float and to_json_number(np.float32(0.5)) == 0.5
    assert type(to_json_number(np.float64(1.25))) is float


def test_the_engine_imports_only_numpy_and_the_standard_library():
    allowed = {"__future__", "collections", "math", "operator", "numpy", "batches"}
    for path in Path(engine.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
                if node.module and node.module.startswith("batches") and not node.module.startswith("batches.engine"):
                    raise AssertionError(f"{path.name} imports {node.module}")
            else:
                continue
            assert roots <= allowed, (path.name, roots)
