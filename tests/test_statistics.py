"""The statistics engine end to end: demo data, the job's figures against pandas, edge cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from batches.assessments import INDICATORS, generate
from batches.models import AssessmentRecord
from batches.services import batch_create, batch_start, batch_update
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.runtime.worker import run_task

ALL = ["descriptive", "correlation", "distribution", "group_comparison"]
INDICATOR_ORDER = [name for dim in ("academic", "non_academic") for name in INDICATORS[dim]]


def close(ours, theirs):
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return ours is None
    return ours is not None and math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


def run_batch(code: str, *, dimensions=("academic", "non_academic"), calculations=ALL, filters=None) -> Task:
    config = {"include_dimensions": list(dimensions), "calculation_types": list(calculations)}
    if filters:
        config["filters"] = filters
    batch_create(actor=SYSTEM, batch_code=code, data_source="student_assessments", config=config)
    task = batch_start(actor=SYSTEM, batch_code=code)
    run_task(str(task.pk))
    task.refresh_from_db()
    return task


def frame(**filters) -> pd.DataFrame:
    rows = AssessmentRecord.objects.filter(**filters).values("student_id", "school", "grade", "indicator", "score")
    return pd.DataFrame.from_records(list(rows))


@pytest.fixture
def demo(db):
    generate(1500, seed=7)


def test_generated_data_is_deterministic_with_missing_scores_and_correlations(db):
    generate(400, seed=11)
    first = list(AssessmentRecord.objects.order_by("student_id", "indicator").values_list("score", flat=True))
    AssessmentRecord.objects.all().delete()
    generate(400, seed=11)
    second = list(AssessmentRecord.objects.order_by("student_id", "indicator").values_list("score", flat=True))
    assert first == second and len(first) == 4000
    missing = sum(score is None for score in first) / len(first)
    assert 0.003 < missing < 0.025
    wide = frame().pivot(index="student_id", columns="indicator", values="score").astype(float)
    assert wide[["math", "physics"]].corr().iloc[0, 1] > 0.3
    assert set(wide.columns) == set(INDICATOR_ORDER)


def test_every_figure_matches_an_independent_pandas_computation(demo):
    task = run_batch("B_ALL")
    assert task.status == "completed", task.error_message
    result = task.result
    json.dumps(result, allow_nan=False)
    records = frame()
    wide = records.pivot_table(index="student_id", columns="indicator", values="score", aggfunc="mean", dropna=False)
    wide = wide.reindex(index=sorted(records.student_id.unique()), columns=INDICATOR_ORDER).astype(float)
    assert result["records"] == len(records) and result["students"] == len(wide)

    for name in INDICATOR_ORDER:
        ours, column = result["descriptive"]["indicators"][name], wide[name].dropna()
        expected = {
            "count": len(column),
            "missing": len(wide) - len(column),
            "mean": column.mean(),
            "std": column.std(ddof=1),
            "min": column.min(),
            "p25": column.quantile(0.25),
            "median": column.median(),
            "p75": column.quantile(0.75),
            "max": column.max(),
        }
        for key, value in expected.items():
            assert close(ours[key], float(value)), (name, key, ours[key], value)
    for dim, names in INDICATORS.items():
        pooled = wide[list(names)].to_numpy().ravel()
        pooled = pooled[~np.isnan(pooled)]
        ours = result["descriptive"]["dimensions"][dim]
        assert ours["count"] == len(pooled)
        for key, value in [("mean", pooled.mean()), ("std", pooled.std(ddof=1)), ("median", np.median(pooled))]:
            assert close(ours[key], float(value)), (dim, key)

    corr = wide.corr()
    matrix = result["correlation"]["matrix"]
    for i, a in enumerate(INDICATOR_ORDER):
        for j, b in enumerate(INDICATOR_ORDER):
            assert close(matrix[i][j], float(corr.loc[a, b])), (a, b)

    for name in INDICATOR_ORDER:
        counts, edges = np.histogram(wide[name].dropna().to_numpy(), bins=20)
        ours = result["distribution"][name]
        assert ours["counts"] == counts.tolist()
        assert all(close(x, float(y)) for x, y in zip(ours["edges"], edges, strict=True))

    per_student = records.groupby("student_id")[["school", "grade"]].last()
    for kind in ("school", "grade"):
        joined = wide.join(per_student)
        expected = joined.groupby(kind)[INDICATOR_ORDER].agg(["count", "mean", "std"])
        ours = result["group_comparison"][kind]
        assert set(ours) == set(expected.index)
        for label in expected.index:
            for name in INDICATOR_ORDER:
                for stat in ("count", "mean", "std"):
                    assert close(ours[label][name][stat], float(expected.loc[label, (name, stat)])), (kind, label, name)


def test_filters_and_dimensions_select_the_records(demo):
    task = run_batch(
        "B_FILTER",
        dimensions=["academic"],
        calculations=["descriptive"],
        filters={"schools": ["SCH001", "SCH002"], "grades": ["8"], "assessed_from": "2025-06-05"},
    )
    assert task.status == "completed", task.error_message
    expected = AssessmentRecord.objects.filter(
        dimension="academic", school__in=["SCH001", "SCH002"], grade="8", assessed_at__gte="2025-06-05"
    )
    assert task.result["records"] == expected.count() > 0
    # JSON objects have no order on PostgreSQL (jsonb): the order lives in result["indicators"].
    assert [i["name"] for i in task.result["indicators"]] == list(INDICATORS["academic"])
    assert set(task.result["descriptive"]["indicators"]) == set(INDICATORS["academic"])


def test_the_progress_has_the_three_stages_all_completed(demo):
    task = run_batch("B_STAGES", calculations=["descriptive", "correlation"])
    stages = list(task.stages.order_by("position").values_list("name", "status", "progress"))
    assert stages == [
        ("data_loading", "completed", 100.0),
        ("statistical_calculation", "completed", 100.0),
        ("result_aggregation", "completed", 100.0),
    ]


def test_an_empty_selection_fails_as_a_data_error_with_a_clear_message(demo):
    task = run_batch("B_EMPTY", filters={"schools": ["NO_SUCH_SCHOOL"]})
    assert (task.status, task.error_category, task.attempt) == ("failed", "data", 1)
    assert task.error_message == "no assessment records match the batch's selection (dimensions and filters)"


def test_zero_variance_gives_null_correlation_not_nan(db):
    rows = [
        AssessmentRecord(
            student_id=f"Z{i}",
            school="S",
            grade="7",
            dimension="academic",
            indicator=name,
            score=60.0 if name == "math" else float(i % 7 + j),
            assessed_at="2025-06-01",
        )
        for i in range(30)
        for j, name in enumerate(INDICATORS["academic"])
    ]
    AssessmentRecord.objects.bulk_create(rows)
    task = run_batch("B_ZERO", dimensions=["academic"], calculations=["descriptive", "correlation"])
    assert task.status == "completed", task.error_message
    json.dumps(task.result, allow_nan=False)
    math_index = list(INDICATORS["academic"]).index("math")
    assert all(value is None for value in task.result["correlation"]["matrix"][math_index])
    assert task.result["descriptive"]["indicators"]["math"]["std"] == 0.0


def test_config_is_snapshotted_when_the_batch_starts(demo):
    batch_create(
        actor=SYSTEM,
        batch_code="B_SNAP",
        data_source="student_assessments",
        config={"include_dimensions": ["academic"], "calculation_types": ["descriptive"]},
    )
    first = batch_start(actor=SYSTEM, batch_code="B_SNAP")
    run_task(str(first.pk))
    batch_update(
        actor=SYSTEM,
        batch_code="B_SNAP",
        changes={"config": {"include_dimensions": ["non_academic"], "calculation_types": ["correlation"]}},
    )
    first.refresh_from_db()
    assert first.params["config"]["include_dimensions"] == ["academic"]
    assert set(first.result["descriptive"]["indicators"]) == set(INDICATORS["academic"])


def test_small_loading_chunks_give_the_same_figures(demo, settings):
    whole = run_batch("B_WHOLE", calculations=["descriptive", "correlation"])
    settings.TASKCENTER_STATS_CHUNK_ROWS = 37  # pages that end mid-student, many of them
    chunked = run_batch("B_CHUNKED", calculations=["descriptive", "correlation"])
    assert chunked.status == "completed", chunked.error_message
    for key in ("records", "students", "descriptive", "correlation"):
        assert chunked.result[key] == whole.result[key], key
