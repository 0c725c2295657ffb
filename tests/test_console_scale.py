"""The operators' console at 100,000 tasks: every admin page answers in as many queries as with a
handful. (How long they take is measured by bench/console.py.)"""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import cycle

import pytest
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.models import Batch
from tasks.models import AuditLog, Schedule, Task, TaskLog, TaskStage, TaskType
from tasks.runtime.registry import get_job_type

TYPES = ["canary", "statistics", "import_assessments", "maintenance.purge"]
OPERATORS = ["operator01", "operator02"]


class Rows:
    """Rows of ``model`` written with ``executemany`` in chunks, each value prepared by its field
    as ``bulk_create`` prepares it, the ``fixed`` ones and the defaults once: ``bulk_create``
    compiles its INSERT anew for each batch (of 39 tasks on SQLite), which took twice as long."""

    def __init__(self, model, columns: list[str], **fixed):
        self.fields = [model._meta.get_field(name) for name in columns]
        rest = [
            field
            for field in model._meta.concrete_fields
            if field.name not in columns and not isinstance(field, models.AutoField | models.BigAutoField)
        ]
        self.constants = tuple(
            field.get_db_prep_save(fixed[field.name] if field.name in fixed else field.get_default(), connection)
            for field in rest
        )
        quoted = ", ".join(connection.ops.quote_name(field.column) for field in [*self.fields, *rest])
        self.sql = (
            f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({quoted})"
            f" VALUES ({', '.join(['%s'] * (len(self.fields) + len(rest)))})"
        )
        self.rows: list[tuple] = []

    def add(self, *values) -> None:
        prepared = (field.get_db_prep_save(value, connection) for field, value in zip(self.fields, values, strict=True))
        self.rows.append((*prepared, *self.constants))

    def write(self) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(self.sql, self.rows)
        self.rows = []


def add_tasks(count: int, *, pending: int, processing: int, paused: int, batches: list[Batch], now) -> list:
    """``count`` tasks created over the last 7 days, as an installation accumulates them: the
    newest waiting or running, some paused, one in 25 failed and one in 100 cancelled, the rest
    completed; the types in turn (the statistics ones of ``batches``). Their stages as the
    runtime writes them (for one completed task in ten: lean), the workers' audit rows for one
    task in ten, each operator's for one in fifty — the first ones among them, so that a handful
    of tasks has every actor and action (the audit log's filters take a query per value, by
    design: tasks.audit.distinct_values). Returns the ids of the processing tasks."""
    tasks = Rows(
        Task,
        ["id", "task_type", "batch", "status", "progress", "error_category", "error_message", "execution_id"]
        + ["heartbeat_at", "created_at", "started_at", "completed_at", "updated_at"],
        params={},
    )
    stages = Rows(TaskStage, ["task", "name", "position", "weight", "status", "progress"])
    audit = Rows(AuditLog, ["actor_name", "action", "target_id", "to_status", "created_at"], target_type="task")
    first = now - timedelta(days=7) + timedelta(minutes=10)
    step = (now - first) / count
    types, batch_ids = cycle(TYPES), cycle(batch.pk for batch in batches)
    running = []
    for i in range(count):
        task_id, task_type, created = uuid.uuid4(), next(types), first + step * i
        batch_id = next(batch_ids) if task_type == "statistics" else None
        left = count - i
        started = None if left <= pending else created + timedelta(seconds=1)
        completed = error = execution = None
        if left <= pending:
            status, progress = "pending", 0.0
        elif left <= pending + processing:
            status, progress, started, execution = "processing", 40.0, now - timedelta(minutes=2), uuid.uuid4()
            running.append(task_id)
        elif left <= pending + processing + paused:
            status, progress = "paused", 60.0
        elif i % 25 == 1:
            status, progress, completed, error = "failed", 30.0, started + timedelta(seconds=3), "data"
        elif i % 100 == 2:
            status, progress, completed = "cancelled", 50.0, started + timedelta(seconds=2)
        else:
            status, progress, completed = "completed", 100.0, started + timedelta(seconds=5)
        message = "12 rows without a student id" if error else ""
        heartbeat = now if execution else None
        times = (created, started, completed, completed or heartbeat or created)
        tasks.add(task_id, task_type, batch_id, status, progress, error, message, execution, heartbeat, *times)
        if status != "completed" or i % 10 == 0:
            for position, (name, weight) in enumerate(get_job_type(task_type).stage_weights()):
                stage = (
                    "completed" if status == "completed" else "processing" if position == 0 and started else "pending"
                )
                stages.add(task_id, name, position, weight, stage, 100.0 if stage == "completed" else 0.0)
        if started and i % 10 == 0:
            audit.add("system", "worker.claim", str(task_id), "processing", started)
            if completed:
                audit.add("system", "worker.complete", str(task_id), status, completed)
        if i % 50 < len(OPERATORS):
            audit.add(OPERATORS[i % 50], "task.retry", str(task_id), "pending", created)
        if len(tasks.rows) == 20_000:
            tasks.write()
            stages.write()
    for rows in (tasks, stages, audit):
        rows.write()
    return running


def log_lines(task_id, count: int, now) -> None:
    TaskLog.objects.bulk_create(
        TaskLog(task_id=task_id, timestamp=now - timedelta(seconds=count - k), message=f"step {k}")
        for k in range(count)
    )


def pages(task_id) -> dict[str, str]:
    return {
        "dashboard 24h": "/admin/dashboard/",
        "dashboard 24h fragment": "/admin/dashboard/?fragment=1",
        "dashboard 7d": "/admin/dashboard/?window=7d",
        "dashboard 7d fragment": "/admin/dashboard/?window=7d&fragment=1",
        "index": "/admin/",
        "tasks": "/admin/tasks/task/",
        "tasks failed": "/admin/tasks/task/?status=failed",
        "tasks canary": "/admin/tasks/task/?task_type=canary",
        "a processing task": f"/admin/tasks/task/{task_id}/change/",
        "task types": "/admin/tasks/tasktype/",
        "schedules": "/admin/tasks/schedule/",
        "audit log": "/admin/tasks/auditlog/",
        "batches": "/admin/batches/batch/",
        "its whole log": f"/admin/tasks/task/{task_id}/log/",
    }


def queries_per_page(client, task_id) -> dict[str, int]:
    """The queries each page takes to answer (a streamed one read to its end)."""
    counts = {}
    for name, url in pages(task_id).items():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
            assert response.status_code == 200, (name, response.status_code)
            if response.streaming:
                b"".join(response.streaming_content)
        counts[name] = len(captured)
    return counts


def add_batches(first: int, count: int) -> list[Batch]:
    return Batch.objects.bulk_create(
        Batch(batch_code=f"survey-{i}", data_source="student_assessments", config={})
        for i in range(first, first + count)
    )


def add_schedules(batches: list[Batch], now) -> None:
    """A schedule of each type's latest task (a batch's for statistics)."""
    for batch in batches:
        for task_type in TYPES:
            Schedule.objects.create(
                name=f"{batch.batch_code} {task_type}",
                task_type=task_type,
                batch=batch if task_type == "statistics" else None,
                interval_seconds=3600,
                next_run_at=now,
                last_task=Task.objects.filter(task_type=task_type).first(),
            )


@pytest.mark.django_db
def test_every_admin_page_answers_in_as_many_queries_at_100000_tasks_as_with_a_handful(admin_client):
    """Fewer tasks than a list's page at first (a query per row would show), then 100,000 (and
    more batches and schedules, as such an installation has)."""
    now = timezone.now()
    TaskType.objects.update_or_create(name="import_assessments", defaults={"max_concurrency": 1})
    batches = add_batches(0, 2)
    watched = add_tasks(12, pending=2, processing=2, paused=1, batches=batches, now=now)[0]
    log_lines(watched, 3, now)
    add_schedules(batches[:1], now)
    queries_per_page(admin_client, watched)  # the first requests read what a process keeps (content types, …)
    few = queries_per_page(admin_client, watched)

    batches += add_batches(2, 58)
    add_tasks(100_000, pending=200, processing=20, paused=5, batches=batches, now=now)
    log_lines(watched, 1_000, now)
    add_schedules(batches[1:20], now)
    assert Task.objects.count() == 100_012 and TaskLog.objects.filter(task=watched).count() == 1_003
    many = queries_per_page(admin_client, watched)

    grown = {name: (few[name], many[name]) for name in few if many[name] > few[name]}
    assert not grown, f"pages whose queries grew (a handful of tasks, 100,000): {grown}"
