"""CSV import of assessment records: all or nothing, --skip-invalid, and the import task's path rules."""

from __future__ import annotations

from functools import partial

import pytest
from django.core.management import CommandError, call_command

from batches.models import AssessmentRecord
from taskcenter.errors import InvalidInput, NotFound
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.runtime.worker import run_task
from tasks.services import task_create

HEADER = "student_id,school,grade,class,dimension,indicator,score,assessed_at\n"
GOOD = [
    "S1,SCH1,7,7-1,academic,math,81.5,2025-06-01\n",
    "S1,SCH1,7,7-1,non_academic,arts,,2025-06-01\n",
    "S2,SCH1,8,8-2,academic,chinese,70,2025-06-02\n",
]


def write(path, lines):
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def test_a_valid_file_is_imported_with_missing_scores_kept_as_null(db, tmp_path, capsys):
    call_command("import_assessments", str(write(tmp_path / "ok.csv", GOOD)))
    assert AssessmentRecord.objects.count() == 3
    assert AssessmentRecord.objects.get(indicator="arts").score is None
    assert "imported 3 records" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("S3,SCH1,7,7-1,sports,math,80,2025-06-01\n", "line 5: unknown dimension 'sports'"),
        ("S3,SCH1,7,7-1,academic,math,eighty,2025-06-01\n", "line 5: score 'eighty' is not a number"),
        ("S3,SCH1,7,7-1,academic,arts,80,2025-06-01\n", "line 5: unknown indicator 'arts' for dimension academic"),
        ("S3,SCH1,7,7-1,academic,math,80,01/06/2025\n", "line 5: assessed_at '01/06/2025' is not a date"),
        ("S3,,7,7-1,academic,math,80,2025-06-01\n", "line 5: school is empty"),
    ],
)
def test_a_bad_row_stops_the_import_naming_its_line_and_imports_nothing(db, tmp_path, bad_row, message):
    path = write(tmp_path / "bad.csv", [*GOOD, bad_row])
    with pytest.raises(CommandError) as failure:
        call_command("import_assessments", str(path))
    assert message in str(failure.value)
    assert "nothing was imported" in str(failure.value)
    assert not AssessmentRecord.objects.exists()


def test_a_missing_column_is_named(db, tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("student_id,school,grade,dimension,indicator,score\nS1,A,7,academic,math,1\n")
    with pytest.raises(CommandError, match="missing column\\(s\\): class, assessed_at"):
        call_command("import_assessments", str(path))


def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(db, tmp_path, capsys):
    path = write(tmp_path / "mixed.csv", [GOOD[0], "S9,SCH1,7,7-1,academic,math,x,2025-06-01\n", GOOD[2]])
    call_command("import_assessments", str(path), "--skip-invalid")
    captured = capsys.readouterr()
    assert AssessmentRecord.objects.count() == 2
    assert "skipped line 3: score 'x' is not a number" in captured.err
    assert "imported 2 records; skipped 1 invalid rows" in captured.out


def test_import_task_reads_only_inside_the_import_directory(db, tmp_path, settings):
    settings.TASKCENTER_IMPORT_DIR = tmp_path / "imports"
    settings.TASKCENTER_IMPORT_DIR.mkdir()
    write(settings.TASKCENTER_IMPORT_DIR / "june.csv", GOOD)
    secret = write(tmp_path / "outside.csv", GOOD)
    for path in ["../outside.csv", str(secret), "", "a/../../outside.csv"]:
        with pytest.raises(InvalidInput) as refused:
            task_create(actor=SYSTEM, task_type="import_assessments", params={"path": path})
        assert "params.path" in refused.value.errors
    with pytest.raises(NotFound, match="no file 'missing.csv'"):
        task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "missing.csv"})
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "june.csv"})
    assert run_task(str(task.pk)) == "completed"
    task.refresh_from_db()
    assert task.result == {"file": "june.csv", "imported": 3, "skipped": 0, "skipped_lines": []}
    assert AssessmentRecord.objects.count() == 3


def test_import_task_with_a_bad_row_fails_as_data_error_and_imports_nothing(db, tmp_path, settings):
    settings.TASKCENTER_IMPORT_DIR = tmp_path
    write(tmp_path / "bad.csv", [*GOOD, "S3,SCH1,7,7-1,academic,math,101,2025-06-01\n"])
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "bad.csv"})
    run_task(str(task.pk))
    task.refresh_from_db()
    assert (task.status, task.error_category) == ("failed", "data")
    assert "line 5: score 101 is outside 0–100" in task.error_message
    assert not AssessmentRecord.objects.exists()


def big_file(path, rows: int):
    """``rows`` valid rows: students S0000001… with one math score each."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for i in range(rows):
            handle.write(f"S{i:07d},SCH1,7,7-1,academic,math,{i % 100},2025-06-01\n")
    return path


@pytest.fixture
def import_dir(tmp_path, settings, monkeypatch):
    from batches import importer

    settings.TASKCENTER_IMPORT_DIR = tmp_path
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    return tmp_path


def stop_after_batches(monkeypatch, batches: int, stop):
    """Run ``stop(task_id)`` after the import task has staged ``batches`` batches."""
    from batches import jobs

    original, calls = jobs._stage_rows, []

    def staged(ctx, *args):
        original(ctx, *args)
        calls.append(1)
        if len(calls) == batches:
            stop(task_id=ctx.task_id)

    monkeypatch.setattr(jobs, "_stage_rows", staged)


def interrupted_import(import_dir, monkeypatch, *, rows: int, batches: int, stop) -> Task:
    """An import task of ``rows`` rows (2 per batch) that ``stop(task_id)`` interrupted after
    ``batches`` batches; the interruption is no longer patched in when it returns."""
    big_file(import_dir / "big.csv", rows)
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "big.csv"})
    stop_after_batches(monkeypatch, batches, stop)
    assert run_task(str(task.pk)) == "interrupted"
    monkeypatch.undo()
    monkeypatch.setattr("batches.importer.BATCH_ROWS", 2)
    return task


def test_an_import_task_stages_its_rows_until_it_completes_and_a_retry_continues_after_a_cancel(
    db, import_dir, monkeypatch
):
    from tasks.models import TaskLog
    from tasks.services import task_cancel, task_delete, task_retry

    big_file(import_dir / "big.csv", 9)
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "big.csv"})
    stop_after_batches(monkeypatch, 2, lambda task_id: task_cancel(actor=SYSTEM, task_id=task_id))
    assert run_task(str(task.pk)) == "interrupted"
    task.refresh_from_db()
    # Cancelled after two batches: nothing is data, the two batches wait staged with the
    # checkpoint that counts them (the third batch, cut short by the cancel, left nothing).
    assert (task.status, task.result, task.execution_id) == ("cancelled", None, None)
    assert AssessmentRecord.objects.count() == 0
    assert AssessmentRecord.with_staged.filter(import_task=task).count() == 4
    assert (task.checkpoint["rows"], task.checkpoint["imported"]) == (4, 4)

    monkeypatch.undo()
    monkeypatch.setattr("batches.importer.BATCH_ROWS", 2)
    task_retry(actor=SYSTEM, task_id=task.pk)
    assert run_task(str(task.pk)) == "completed"
    task.refresh_from_db()
    assert task.result == {"file": "big.csv", "imported": 9, "skipped": 0, "skipped_lines": []}
    students = sorted(AssessmentRecord.objects.values_list("student_id", flat=True))
    assert students == [f"S{i:07d}" for i in range(9)]  # every row once
    assert not AssessmentRecord.with_staged.filter(import_task__isnull=False).exists()
    assert TaskLog.objects.filter(task=task, message__startswith="continuing after row 4").exists()

    # Staged rows of a task that never completes go with the task.
    again = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "big.csv"})
    stop_after_batches(monkeypatch, 1, lambda task_id: task_cancel(actor=SYSTEM, task_id=task_id))
    run_task(str(again.pk))
    assert AssessmentRecord.with_staged.filter(import_task=again).count() == 2
    task_delete(actor=SYSTEM, task_id=again.pk)
    assert AssessmentRecord.with_staged.count() == 9


def test_an_import_task_that_meets_a_bad_row_drops_what_it_staged(db, import_dir):
    write(import_dir / "bad.csv", [*GOOD, *GOOD, "S3,SCH1,7,7-1,academic,math,101,2025-06-01\n"])
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "bad.csv"})
    run_task(str(task.pk))
    task.refresh_from_db()
    assert (task.status, task.error_category, task.checkpoint) == ("failed", "data", None)
    assert "line 8: score 101 is outside 0–100" in task.error_message
    assert not AssessmentRecord.with_staged.exists()


def test_a_changed_file_is_imported_from_the_start(db, import_dir, monkeypatch):
    from tasks.models import TaskLog
    from tasks.services import task_pause, task_resume

    path = big_file(import_dir / "big.csv", 6)
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "big.csv"})
    stop_after_batches(monkeypatch, 1, lambda task_id: task_pause(actor=SYSTEM, task_id=task_id))
    assert run_task(str(task.pk)) == "interrupted"
    assert AssessmentRecord.with_staged.filter(import_task=task).count() == 2
    monkeypatch.undo()
    monkeypatch.setattr("batches.importer.BATCH_ROWS", 2)
    big_file(path, 5)
    task_resume(actor=SYSTEM, task_id=task.pk)
    assert run_task(str(task.pk)) == "completed"
    assert AssessmentRecord.objects.count() == 5
    assert TaskLog.objects.filter(task=task, message__contains="changed since the last run").exists()


def test_rows_staged_by_an_unfinished_import_are_not_data(db, tmp_path):
    from batches import assessments
    from batches.importer import insert_rows

    call_command("import_assessments", str(write(tmp_path / "ok.csv", GOOD)))
    importing = task_create(actor=SYSTEM, task_type="canary", params={})
    insert_rows([("S7", "SCH1", "7", "", "academic", "math", 50.0, "2025-06-01")], import_task_id=importing.pk)
    config = {"include_dimensions": ["academic"]}
    assert assessments.count_records(config) == 2
    assert sum(len(chunk) for chunk in assessments.iter_chunks(config, with_groups=False)) == 2
    assert AssessmentRecord.objects.count() == 3 and AssessmentRecord.with_staged.count() == 4


def test_an_import_whose_staged_rows_went_meanwhile_starts_over(db, import_dir, monkeypatch):
    from batches.importer import discard_staged
    from tasks.models import TaskLog
    from tasks.services import task_pause, task_resume

    task = interrupted_import(import_dir, monkeypatch, rows=6, batches=2, stop=partial(task_pause, actor=SYSTEM))
    assert discard_staged(task.pk) == 4  # as a deletion racing with the resume would
    task_resume(actor=SYSTEM, task_id=task.pk)
    assert run_task(str(task.pk)) == "completed"
    assert sorted(AssessmentRecord.objects.values_list("student_id", flat=True)) == [f"S{i:07d}" for i in range(6)]
    assert TaskLog.objects.filter(task=task, message__contains="do not match the checkpoint").exists()


def test_a_cancel_is_noticed_while_a_resumed_import_passes_over_the_rows_it_imported(
    db, import_dir, monkeypatch, settings
):
    from batches import jobs
    from tasks.services import task_cancel, task_pause, task_resume

    task = interrupted_import(import_dir, monkeypatch, rows=9, batches=3, stop=partial(task_pause, actor=SYSTEM))
    settings.TASKCENTER_FLUSH_INTERVAL = 0  # every check looks at the database
    real_read = jobs.read_batches

    def cancelled_while_skipping(*args, while_skipping, **kwargs):
        def check():
            task_cancel(actor=SYSTEM, task_id=task.pk)
            while_skipping()

        return real_read(*args, while_skipping=check, **kwargs)

    monkeypatch.setattr(jobs, "read_batches", cancelled_while_skipping)
    task_resume(actor=SYSTEM, task_id=task.pk)
    assert run_task(str(task.pk)) == "interrupted"
    task.refresh_from_db()
    assert task.status == "cancelled" and task.checkpoint["rows"] == 6
    assert AssessmentRecord.with_staged.filter(import_task=task).count() == 6  # nothing new staged


def test_the_delete_page_of_an_import_counts_its_staged_rows_instead_of_listing_them(
    db, import_dir, monkeypatch, admin_client
):
    from tasks.services import task_cancel

    task = interrupted_import(import_dir, monkeypatch, rows=9, batches=3, stop=partial(task_cancel, actor=SYSTEM))
    page = admin_client.get(f"/admin/tasks/task/{task.pk}/delete/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Assessment records: 6" in page
    assert "S0000001" not in page  # no row listed one by one
    response = admin_client.post(f"/admin/tasks/task/{task.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Task.objects.filter(pk=task.pk).exists() and not AssessmentRecord.with_staged.exists()


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        (b"S3,SCH\xe9,7,7-1,academic,math,80,2025-06-01\n", "line 6: not valid UTF-8"),
        (b"S3,SCH\x001,7,7-1,academic,math,80,2025-06-01\n", "line 6: a NUL byte"),
        (b"S3,SCH1,7,7-1,academic,math,80,2025-06-01," + b"x" * 70_000 + b"\n", "line 6: longer than 65536 characters"),
        (b'S3,SCH1,7,7-1,academic,math,80,"2025-06-01\n' + b"x\n" * 70_000, "line 6: a field longer than"),
        (b"S3,SCH1,7,7-1,academic," + b"m" * 10_000 + b",80,2025-06-01\n", "line 6: unknown indicator 'mmmmm"),
    ],
    ids=["invalid-utf8", "nul-byte", "long-line", "unclosed-quote", "long-field"],
)
def test_an_import_task_meeting_a_malformed_line_fails_as_data_error_naming_it_and_drops_what_it_staged(
    db, import_dir, bad_line, message
):
    (import_dir / "bad.csv").write_bytes((HEADER + "".join(GOOD) + GOOD[0]).encode() + bad_line + GOOD[1].encode())
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "bad.csv"})
    run_task(str(task.pk))
    task.refresh_from_db()
    assert (task.status, task.error_category) == ("failed", "data")
    assert message in task.error_message and "nothing was imported" in task.error_message
    assert len(task.error_message) < 300  # the offending value is not copied into the message
    assert not AssessmentRecord.with_staged.exists()  # two batches of two rows were staged before it


def test_an_import_whose_staged_rows_go_while_it_runs_publishes_nothing_and_a_retry_starts_over(
    db, import_dir, monkeypatch
):
    from tasks.services import task_retry

    big_file(import_dir / "big.csv", 9)
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "big.csv"})

    def delete_the_first_batch(task_id):
        # As a deletion of the task does, a batch per transaction, racing with a retry that
        # passed its start-of-run check already.
        first = AssessmentRecord.with_staged.filter(import_task_id=task_id).order_by("pk")[:2]
        AssessmentRecord.with_staged.filter(pk__in=list(first.values_list("pk", flat=True))).delete()

    stop_after_batches(monkeypatch, 3, delete_the_first_batch)
    assert run_task(str(task.pk)) == "failed"
    task.refresh_from_db()
    assert (task.status, task.error_category, task.result) == ("failed", "system", None)
    assert "7 staged rows of the 9 counted" in task.error_message
    assert not AssessmentRecord.objects.exists()  # no part of the file published as the whole

    monkeypatch.undo()
    monkeypatch.setattr("batches.importer.BATCH_ROWS", 2)
    task_retry(actor=SYSTEM, task_id=task.pk)
    assert run_task(str(task.pk)) == "completed"
    assert sorted(AssessmentRecord.objects.values_list("student_id", flat=True)) == [f"S{i:07d}" for i in range(9)]
