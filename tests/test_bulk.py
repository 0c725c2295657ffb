"""Bulk work in bounded pieces: cancelling by type or all, deleting a batch with many tasks, a task
with many log lines. On SQLite a transaction holds the database's only write lock."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.models import Batch
from batches.services import batch_create, batch_start
from tasks import services, store
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task, TaskLog, TaskStage
from tasks.runtime.registry import dependents_cleanups
from tests.api_helpers import client_for, envelope_of

CONFIG = {"include_dimensions": ["academic"], "calculation_types": ["descriptive"]}


@pytest.fixture
def api(manager):
    return client_for(manager)


def test_cancel_all_cancels_the_oldest_few_per_request_and_says_how_many_remain(api, make_task, monkeypatch):
    monkeypatch.setattr(services, "MAX_CANCEL_PER_REQUEST", 2, raising=False)
    tasks = [make_task("pending") for _ in range(3)] + [make_task("processing"), make_task("paused")]
    finished = make_task("completed")

    first = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"all": True}, format="json"), 200)
    assert list(first["data"]["results"]) == [str(t.pk) for t in tasks[:2]]
    assert (first["data"]["total_count"], first["data"]["success_count"], first["data"]["remaining"]) == (2, 2, 3)
    assert "3" in first["message"] and "call again" in first["message"]
    assert Task.objects.filter(status="cancelled").count() == 2

    second = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"all": True}, format="json"), 200)["data"]
    third = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"all": True}, format="json"), 200)
    assert (second["success_count"], second["remaining"]) == (2, 1)
    assert (third["data"]["success_count"], third["data"]["remaining"]) == (1, 0)
    assert "call again" not in third["message"]
    assert Task.objects.filter(status="cancelled").count() == 5
    assert Task.objects.get(pk=finished.pk).status == "completed"
    assert AuditLog.objects.filter(action="task.cancel").count() == 5


def test_cancel_by_type_counts_only_that_type_as_remaining(api, make_task, monkeypatch):
    monkeypatch.setattr(services, "MAX_CANCEL_PER_REQUEST", 1, raising=False)
    canaries = [make_task("pending") for _ in range(2)]
    other = make_task("pending", task_type="maintenance.purge")
    body = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"task_types": ["canary"]}, format="json"), 200)
    assert list(body["data"]["results"]) == [str(canaries[0].pk)] and body["data"]["remaining"] == 1
    by_ids = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"task_ids": [str(other.pk)]}, format="json"), 200)
    assert by_ids["data"]["success_count"] == 1 and by_ids["data"]["remaining"] == 0


def _batch_with_finished_tasks(code: str, count: int) -> Batch:
    batch = batch_create(actor=SYSTEM, batch_code=code, data_source="student_assessments", config=CONFIG)
    now = timezone.now()
    tasks = Task.objects.bulk_create(
        Task(task_type="statistics", status="completed", batch=batch, params={}, completed_at=now) for _ in range(count)
    )
    TaskStage.objects.bulk_create(TaskStage(task=task, name="run", position=0) for task in tasks)
    TaskLog.objects.bulk_create(
        TaskLog(task=task, timestamp=now, message=f"line {n}") for task in tasks for n in range(2)
    )
    return batch


def _watch_between_chunks(monkeypatch, batch, on_call=None) -> list:
    """Record, before each chunk of a batch deletion, the batch's tasks as committed then (the
    dependents' cleanups run between two chunks' transactions)."""
    seen = []

    def watch(task_ids):
        assert not connection.in_atomic_block  # between transactions, not inside one
        seen.append(Task.objects.filter(batch_id=batch.pk).count())
        if on_call is not None:
            on_call(len(seen))

    monkeypatch.setattr(store, "dependents_cleanups", lambda: [*dependents_cleanups(), watch])
    return seen


@pytest.mark.django_db(transaction=True)
def test_deleting_a_batch_with_many_tasks_commits_them_in_chunks_and_audits_them(api, monkeypatch):
    batch = _batch_with_finished_tasks("MANY", 450)
    seen = _watch_between_chunks(monkeypatch, batch)
    envelope_of(api.delete("/api/v1/statistics/batches/MANY"), 200)
    assert seen == [450, 250, 50]  # each chunk committed before the next began
    assert not Batch.objects.filter(batch_code="MANY").exists()
    assert not Task.objects.exists() and not TaskStage.objects.exists() and not TaskLog.objects.exists()
    chunks = AuditLog.objects.filter(action="batch.delete_tasks", target_id="MANY").order_by("id")
    assert [row.details["deleted_tasks"] for row in chunks] == [200, 200]
    final = AuditLog.objects.get(action="batch.delete", target_id="MANY")
    assert final.details["deleted_tasks"] == 450 and final.actor_name == "manager"


def test_a_task_started_between_chunks_stops_the_batch_deletion_and_stays(no_cluster, api, monkeypatch):
    batch = _batch_with_finished_tasks("RACE", 300)
    started = []

    def start_after_first_chunk(calls):
        if calls == 2:  # the first chunk is committed: another operator starts the batch now
            started.append(batch_start(actor=SYSTEM, batch_code="RACE"))

    _watch_between_chunks(monkeypatch, batch, start_after_first_chunk)
    refused = envelope_of(api.delete("/api/v1/statistics/batches/RACE"), 409)
    assert "active task" in refused["message"] and "200" in refused["message"]
    assert Batch.objects.filter(batch_code="RACE").exists()
    assert Task.objects.get(pk=started[0].pk).status == "pending"
    assert Task.objects.filter(batch_id=batch.pk).count() == 101  # 100 finished left, and the new one
    assert AuditLog.objects.get(action="batch.delete_tasks", target_id="RACE").details["deleted_tasks"] == 200
    assert not AuditLog.objects.filter(action="batch.delete", target_id="RACE").exists()


@pytest.mark.django_db(transaction=True)
def test_a_task_with_many_log_lines_loses_them_in_several_statements(api, make_task, monkeypatch):
    monkeypatch.setattr(store, "LOG_ROWS_PER_TRANSACTION", 100)
    task = make_task("failed")
    TaskLog.objects.bulk_create(TaskLog(task=task, timestamp=timezone.now(), message=f"{n}") for n in range(250))
    with CaptureQueriesContext(connection) as queries:
        envelope_of(api.delete(f"/api/v1/tasks/{task.pk}"), 200)
    log_deletes = [q for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "tasks_tasklog"')]
    assert len(log_deletes) >= 3
    assert not Task.objects.filter(pk=task.pk).exists() and not TaskLog.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_active_tasks_log_lines_stay_when_its_deletion_is_refused(api, make_task, monkeypatch):
    monkeypatch.setattr(store, "LOG_ROWS_PER_TRANSACTION", 100)
    task = make_task("processing")
    TaskLog.objects.bulk_create(TaskLog(task=task, timestamp=timezone.now(), message=f"{n}") for n in range(150))
    store.delete_dependents([task.pk])  # as a deletion that saw it finished a moment ago would
    envelope_of(api.delete(f"/api/v1/tasks/{task.pk}"), 409)
    assert TaskLog.objects.filter(task=task).count() == 150
