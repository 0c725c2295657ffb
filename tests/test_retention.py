"""The daily purge's retention: old audit rows, and the files of tasks paused for too long."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.actors import SYSTEM
from tasks.audit import audit
from tasks.models import AuditLog, Task
from tasks.runtime.worker import run_task
from tasks.services import task_create

pytestmark = pytest.mark.django_db


def audit_row_aged(days: int, action: str) -> None:
    audit(actor=SYSTEM, action=action, target_type="task", target_id="x")
    AuditLog.objects.filter(action=action).update(created_at=timezone.now() - timedelta(days=days))


def run_purge(**params) -> dict:
    purge = task_create(actor=SYSTEM, task_type="maintenance.purge", params={"days": 30, **params})
    assert run_task(str(purge.pk)) == "completed"
    purge.refresh_from_db()
    return purge.result


def test_the_purge_deletes_audit_rows_older_than_the_audit_retention_in_chunks(settings):
    settings.TASKCENTER_AUDIT_RETENTION_DAYS = 365
    for days, action in [(800, "old.a"), (400, "old.b"), (366, "old.c"), (300, "kept.a"), (40, "kept.b")]:
        audit_row_aged(days, action)
    result = run_purge(chunk_size=2)
    assert result["deleted_audit_rows"] == 3
    left = set(AuditLog.objects.values_list("action", flat=True))
    assert {"kept.a", "kept.b", "task.create"} <= left and not any(action.startswith("old.") for action in left)


def test_the_purge_counts_every_log_line_it_deletes_also_those_deleted_in_chunks(monkeypatch):
    from tasks import store
    from tasks.models import TaskLog

    monkeypatch.setattr(store, "LOG_ROWS_PER_TRANSACTION", 10)
    long_ago = timezone.now() - timedelta(days=40)
    chatty, quiet = (Task.objects.create(task_type="canary", status="completed") for _ in range(2))
    Task.objects.filter(pk__in=[chatty.pk, quiet.pk]).update(completed_at=long_ago)
    TaskLog.objects.bulk_create(
        [TaskLog(task=chatty, timestamp=long_ago, message=f"line {n}") for n in range(25)]
        + [TaskLog(task=quiet, timestamp=long_ago, message="one")]
    )
    result = run_purge()
    assert result["deleted_tasks"] == 2 and result["deleted_logs"] == 26
    assert not TaskLog.objects.filter(task_id__in=[chatty.pk, quiet.pk]).exists()


def test_the_purge_removes_the_files_of_tasks_paused_longer_than_the_retention(settings, tmp_path):
    settings.TASKCENTER_CHECKPOINT_DIR = tmp_path
    long_ago = timezone.now() - timedelta(days=40)
    paused_long_ago = Task.objects.create(task_type="statistics", status="paused")
    Task.objects.filter(pk=paused_long_ago.pk).update(updated_at=long_ago)
    paused_lately = Task.objects.create(task_type="statistics", status="paused")
    failed = Task.objects.create(task_type="statistics", status="failed")  # a retry continues from its files
    Task.objects.filter(pk=failed.pk).update(updated_at=long_ago)
    for task in (paused_long_ago, paused_lately, failed):
        (tmp_path / str(task.pk)).mkdir()
        (tmp_path / str(task.pk) / "chunk-00000.npz").write_bytes(b"x")
    assert run_purge()["swept_file_dirs"] == 1
    assert {path.name for path in tmp_path.iterdir()} == {str(paused_lately.pk), str(failed.pk)}
    assert Task.objects.get(pk=paused_long_ago.pk).status == "paused"  # the task stays; a resume loads again
