"""Job types of the batches app: ``statistics`` (a batch's calculation) and ``import_assessments``."""

from __future__ import annotations

import json
import time

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from batches import assessments
from batches.engine import compute, plan_units
from batches.importer import (
    IMPORT_PATH_PATTERN,
    ImportFailed,
    ImportFileMissing,
    ImportReport,
    discard_staged,
    discard_staged_by,
    insert_rows,
    open_csv,
    publish_staged,
    read_batches,
    resolve_import_path,
)
from batches.models import AssessmentRecord
from batches.sources import CALCULATION_TYPES, DEFAULT_HISTOGRAM_BINS, get_source, validate_batch_config
from taskcenter.api.serializers import StrictBooleanField
from taskcenter.errors import InvalidInput, NotFound
from tasks.runtime.errors import ConfigurationError, DataError, RetryableError
from tasks.runtime.files import remove_task_files, task_files_dir
from tasks.runtime.registry import register

STAGES = [("data_loading", 0.6), ("statistical_calculation", 0.35), ("result_aggregation", 0.05)]


class StatisticsParams(serializers.Serializer):
    """A snapshot of the batch taken when it was started."""

    data_source = serializers.CharField()
    config = serializers.JSONField()

    def validate(self, attrs):
        try:
            attrs["config"] = validate_batch_config(attrs["data_source"], attrs["config"])
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.errors) from None
        return attrs


class LoadStore:
    """Loaded chunks on disk (``TASKCENTER_CHECKPOINT_DIR/<task id>/``): one ``.npz`` per chunk."""

    def __init__(self, task_id):
        self.task_id = task_id
        self.path = task_files_dir(task_id)

    def save(self, index: int, **arrays: np.ndarray) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f"chunk-{index:05d}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(self.path / f"chunk-{index:05d}.npz")  # a chunk is there whole or not at all

    def load(self, count: int) -> list[dict[str, np.ndarray]] | None:
        files = [self.path / f"chunk-{i:05d}.npz" for i in range(count)]
        if not all(f.exists() for f in files):
            return None
        out = []
        for f in files:
            with np.load(f) as data:
                out.append({key: data[key] for key in data.files})
        return out

    def clear(self) -> None:
        remove_task_files(self.task_id)


def _load(ctx, config: dict, store: LoadStore) -> dict:
    """Stage 1: stream the records into arrays; checkpoint after every chunk."""
    ctx.stage("data_loading")
    state = ctx.checkpoint
    total = assessments.count_records(config)
    chunks: list[dict[str, np.ndarray]] = []
    rows_read, n_students, after, schools, grades = 0, 0, None, [], []
    if state.get("stage") == "data_loading" and state.get("chunks"):
        restored = store.load(state["chunks"])
        if restored is not None:
            chunks = restored
            rows_read, n_students = state["rows_read"], state["students"]
            after, schools, grades = state["last_student"], state["schools"], state["grades"]
            ctx.log("info", f"continuing data loading after {rows_read} rows", rows_read=rows_read)
        else:
            ctx.log("warn", "loading checkpoint files are missing on this machine; loading again")
    if total == 0:
        raise DataError("no assessment records match the batch's selection (dimensions and filters)")
    school_index = {name: i for i, name in enumerate(schools)}
    grade_index = {name: i for i, name in enumerate(grades)}
    ctx.progress(rows_read, total)
    with_groups = "group_comparison" in config["calculation_types"]
    chunks_iter = assessments.iter_chunks(
        config, after_student=after, chunk_rows=settings.TASKCENTER_STATS_CHUNK_ROWS, with_groups=with_groups
    )
    for chunk in chunks_iter:
        # Row number of each record's student: students arrive in order, whole per chunk.
        new_student = np.empty(len(chunk), dtype=bool)
        new_student[0] = True
        new_student[1:] = chunk.students[1:] != chunk.students[:-1]
        rows = (n_students - 1 + np.cumsum(new_student)).astype(np.int32)
        n_students = int(rows[-1]) + 1
        school_codes = _codes(chunk.schools, school_index, len(chunk))
        grade_codes = _codes(chunk.grades, grade_index, len(chunk))
        arrays = {
            "rows": rows,
            "indicators": chunk.indicators,
            "scores": chunk.scores,
            "schools": school_codes,
            "grades": grade_codes,
        }
        chunks.append(arrays)
        store.save(len(chunks) - 1, **arrays)
        rows_read += len(chunk)
        after = chunk.last_student
        ctx.save_checkpoint(
            {
                "stage": "data_loading",
                "chunks": len(chunks),
                "rows_read": rows_read,
                "students": n_students,
                "last_student": after,
                "schools": list(school_index),
                "grades": list(grade_index),
            }
        )
        ctx.progress(rows_read, max(total, rows_read))
    return _assemble(chunks, n_students, list(school_index), list(grade_index), rows_read)


def _codes(values, index: dict[str, int], n: int) -> np.ndarray:
    """Small integer codes for group labels (schools, grades); -1 when groups are not loaded."""
    if values is None:
        return np.full(n, -1, dtype=np.int32)
    labels, inverse = np.unique(values.astype(str), return_inverse=True)
    mapping = np.array([index.setdefault(label, len(index)) for label in labels], dtype=np.int32)
    return mapping[inverse]


def _assemble(chunks, n_students: int, schools: list[str], grades: list[str], rows_read: int) -> dict:
    return {
        "chunks": chunks,
        "students": n_students,
        "schools": schools,
        "grades": grades,
        "rows_read": rows_read,
    }


def _matrix(loaded: dict, n_indicators: int):
    """Students × indicators (NaN where missing; the mean when a student has several scores)."""
    n = loaded["students"]
    sums = np.zeros((n, n_indicators))
    counts = np.zeros((n, n_indicators), dtype=np.int32)
    school = np.full(n, -1, dtype=np.int64)
    grade = np.full(n, -1, dtype=np.int64)
    for chunk in loaded["chunks"]:
        keep = chunk["indicators"] >= 0
        rows, cols, scores = chunk["rows"][keep], chunk["indicators"][keep], chunk["scores"][keep]
        present = ~np.isnan(scores)
        np.add.at(sums, (rows[present], cols[present]), scores[present])
        np.add.at(counts, (rows[present], cols[present]), 1)
        school[chunk["rows"]] = chunk["schools"]
        grade[chunk["rows"]] = chunk["grades"]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return values, school, grade


@register(
    "statistics",
    stages=STAGES,
    description="Descriptive statistics, correlation, distributions and group comparison over a batch's data.",
    timeout_seconds=3600,
    max_attempts=3,
    retry_backoff_base=10.0,
    retry_backoff_max=300.0,
    params=StatisticsParams,
    params_from_batch=True,
)
def statistics_job(ctx):
    source = get_source(ctx.params["data_source"])
    if source.name != assessments.SOURCE.name:
        raise ConfigurationError(f"data source {source.name!r} has no loader")
    config = ctx.params["config"]
    indicators = source.indicators(config["include_dimensions"])
    dimension_of = {name: dim for dim in config["include_dimensions"] for name in source.dimensions[dim]}
    calculations = [c for c in CALCULATION_TYPES if c in config["calculation_types"]]
    store = LoadStore(ctx.task_id)
    started = time.monotonic()

    state = ctx.checkpoint
    loaded = None
    if state.get("stage") in ("statistical_calculation", "result_aggregation"):
        chunks = store.load(state["chunks"])
        if chunks is not None:
            loaded = _assemble(chunks, state["students"], state["schools"], state["grades"], state["rows_read"])
        else:
            ctx.log("warn", "loaded data is missing on this machine; loading again")
            state = {}
            ctx.save_checkpoint({})
    if loaded is None:
        loaded = _load(ctx, config, store)
    load_state = {
        "chunks": len(loaded["chunks"]),
        "rows_read": loaded["rows_read"],
        "students": loaded["students"],
        "schools": loaded["schools"],
        "grades": loaded["grades"],
    }
    values, school, grade = _matrix(loaded, len(indicators))
    del loaded
    ctx.log("info", f"loaded {load_state['rows_read']} records of {load_state['students']} students")

    # Stage 2: one checkpoint per calculation type, so a resume keeps what is done.
    ctx.stage("statistical_calculation")
    partial: dict = dict(state.get("partial") or {}) if state.get("stage") == "statistical_calculation" else {}
    todo = [c for c in calculations if c not in partial]
    groups = {"school": (school, load_state["schools"]), "grade": (grade, load_state["grades"])}
    bins = int(config.get("histogram_bins", DEFAULT_HISTOGRAM_BINS))
    units_total = max(
        1,
        plan_units(
            todo,
            len(indicators),
            group_kinds=len(groups),
            n_dimensions=len({dimension_of[name] for name in indicators}),
        ),
    )
    units_done = 0

    def on_unit():
        nonlocal units_done
        units_done += 1
        ctx.progress(units_done, units_total)

    ctx.save_checkpoint({"stage": "statistical_calculation", **load_state, "partial": partial}, flush=True)
    for calculation in todo:
        result = compute(values, indicators, dimension_of, [calculation], groups=groups, bins=bins, on_unit=on_unit)[
            calculation
        ]
        partial[calculation] = result
        ctx.save_checkpoint({"stage": "statistical_calculation", **load_state, "partial": partial}, flush=True)

    ctx.stage("result_aggregation")
    result = {
        "data_source": source.name,
        "include_dimensions": config["include_dimensions"],
        "calculation_types": calculations,
        "filters": config.get("filters") or {},
        "indicators": [{"name": name, "dimension": dimension_of[name]} for name in indicators],
        "records": load_state["rows_read"],
        "students": load_state["students"],
        "computed_at": timezone.now().isoformat(),
        "duration_seconds": round(time.monotonic() - started, 3),
        **{calculation: partial[calculation] for calculation in calculations},
    }
    json.dumps(result, allow_nan=False)  # a NaN here is a bug: fail loudly rather than store it
    ctx.progress(1, 1)
    store.clear()
    return result


class ImportParams(serializers.Serializer):
    path = serializers.RegexField(
        IMPORT_PATH_PATTERN, max_length=255, help_text="A CSV file, relative to the import directory."
    )
    skip_invalid = StrictBooleanField(default=False)

    def validate_path(self, value):
        try:
            resolve_import_path(value)
        except ImportFileMissing as exc:
            raise NotFound(str(exc)) from None  # a well-formed path naming nothing: 404, not 400
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


@register(
    "import_assessments",
    stages=[("import", 1.0)],
    description="Imports assessment records from a CSV file in the import directory (all or nothing).",
    timeout_seconds=3600,
    max_attempts=1,
    params=ImportParams,
    permissions=("batches.add_assessmentrecord",),
    delete_dependents=discard_staged_by,
)
def import_assessments_job(ctx):
    """All or nothing, yet cancellable and pausable at any time: each batch of rows is written
    *staged* (marked with this task, read by nobody) in a short transaction together with the
    checkpoint that counts it, and the task's completion publishes the rows in the transaction
    that records it. A pause, a cancel, a timeout or a lost worker leaves the staged rows and
    the checkpoint in step, so a resume or retry continues after the last batch written; an
    invalid row (without ``skip_invalid``) discards them; deleting the task deletes them."""
    try:
        path = resolve_import_path(ctx.params["path"])
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    ctx.stage("import")
    stat = path.stat()
    fingerprint = [stat.st_size, stat.st_mtime_ns]
    state = ctx.checkpoint
    if state and state.get("file") != fingerprint:
        dropped = discard_staged(ctx.task_id)
        ctx.log("warn", f"{path.name} changed since the last run: starting over ({dropped} staged rows dropped)")
        state = {}
    elif state and AssessmentRecord.with_staged.filter(import_task_id=ctx.task_id).count() != state.get("imported"):
        # The staged rows are not what the checkpoint counts (they were deleted meanwhile).
        dropped = discard_staged(ctx.task_id)
        ctx.log("warn", f"the staged rows do not match the checkpoint: starting over ({dropped} dropped)")
        state = {}
    report = ImportReport.from_dict(state)
    rows_done = int(state.get("rows", 0))
    size = max(1, stat.st_size)
    ctx.progress(int(state.get("bytes", 0)), size)
    if rows_done:
        ctx.log("info", f"continuing after row {rows_done} ({report.imported} imported)", resumed_from=rows_done)
    skip_invalid = ctx.params.get("skip_invalid", False)
    try:
        with open_csv(path) as handle:
            batches = read_batches(
                handle, skip_invalid=skip_invalid, report=report, skip_rows=rows_done, while_skipping=ctx.check
            )
            for rows, rows_read in batches:
                position = handle.buffer.tell()
                _stage_rows(ctx, rows, {"file": fingerprint, "rows": rows_read, "bytes": position}, report)
                ctx.progress(position, size)
    except ImportFailed as exc:
        discard_staged(ctx.task_id)
        ctx.clear_checkpoint()
        ctx.flush()  # a failure keeps the last checkpoint written: this one says "from the start"
        raise DataError(f"{path.name}: {exc}; nothing was imported") from None
    counted = report.imported
    ctx.on_complete(lambda: _publish(ctx.task_id, counted))
    for line, error in report.skipped:
        ctx.log("warn", f"skipped line {line}: {error}", line=line)
    return {"file": ctx.params["path"], **report.as_dict()}


def _publish(task_id, counted: int) -> None:
    """Publish the task's staged rows — all ``counted`` of them, or none (the completion's
    transaction rolls back and the run fails): rows deleted meanwhile, by a deletion of the task
    racing with its retry, would otherwise make part of the file pass for the whole."""
    published = publish_staged(task_id)
    if published != counted:
        raise RetryableError(
            f"{published} staged rows of the {counted} counted are left (deleted meanwhile): nothing was"
            " published; a retry starts over"
        )


def _stage_rows(ctx, rows: list[tuple], position: dict, report: ImportReport) -> None:
    """One batch of staged rows and the checkpoint that counts them (``position`` in the file and
    the report), in one transaction — which a cancel or pause noticed by the checkpoint's write
    rolls back whole."""
    previous = ctx.checkpoint_data
    try:
        with transaction.atomic():
            insert_rows(rows, import_task_id=ctx.task_id)
            done = ImportReport(report.imported + len(rows), report.skipped_count, report.skipped)
            ctx.save_checkpoint({**position, **done.as_dict()}, flush=True)
    except BaseException:
        # Back to what the database still says.
        if previous is None:
            ctx.clear_checkpoint()
        else:
            ctx.save_checkpoint(previous)
        raise
    report.imported += len(rows)
