#!/usr/bin/env python
"""The operators' console at 100,000 tasks: each admin page's time and number of SQL queries.

Fills a fresh SQLite database (or ``--database``, whose tasks, batches, schedules and audit
rows are deleted first) with ``--tasks`` tasks as an installation accumulates them over the last
7 days — all inside the dashboard's 7-day window, the worst case for its charts: canary,
statistics (of 50 batches), import_assessments and maintenance.purge tasks, mostly completed,
some failed (with their error) or cancelled, 200 pending (the newest), 20 processing (started,
part way through a stage) and a few paused; one row per stage of each task's type, as the
runtime writes them; three log lines for one task in ten, an error line per failure and 1,000
lines for the processing task whose page is measured; the audit rows of each task's creation and
of the workers' claim and completion (or failure, or cancel).

Then requests each page in-process (Django's test client, a superuser, the whole admin stack)
``--repeat`` times and prints the median time and the number of SQL queries of each: the
dashboard (24 h and 7 d windows, the page and its ``?fragment=1``), the admin index, the tasks
changelist (unfiltered, failed, canary), a processing task's page, task types, schedules, the
audit log, batches, and the whole log (as text) of the task with 1,000 lines. An open dashboard
requests its fragment every 3 s: ``refresh_core_percent`` is that fragment's time over 3 s, the
share of one core it keeps busy. The last line is one JSON object.

    .venv/bin/python bench/console.py [--tasks 100000] [--repeat 5] [--database URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django, superuser_client

CHUNK = 20_000
#: Task types in the mix, with their share of the tasks and their run time range (seconds).
MIX = [
    ("canary", 0.70, (0.5, 20.0)),
    ("statistics", 0.21, (5.0, 120.0)),
    ("import_assessments", 0.085, (10.0, 300.0)),
    ("maintenance.purge", 0.005, (1.0, 60.0)),
]
PENDING, PROCESSING, PAUSED = 200, 20, 5
FAILED_SHARE, CANCELLED_SHARE = 0.03, 0.01
BATCHES = 50
LOGGED_SHARE = 0.1
LONG_LOG = 1_000
OPERATORS = [f"operator{i:02d}" for i in range(5)]
ERRORS = {
    "data": "12 rows without a student id in the source",
    "system": "OperationalError: could not connect to the data source",
    "timeout": "the task ran longer than its timeout (3600 s)",
    "worker_lost": "the worker stopped sending heartbeats",
    "config": "unknown indicator 'fitness_total' in include_dimensions",
}


class Inserter:
    """Rows of a model written with ``executemany`` in chunks, each value prepared by its field
    (as ``bulk_create`` would, without building a model instance per row); the rows of ``parent``
    are written first (those referenced)."""

    def __init__(self, model, columns: list[str], parent: Inserter | None = None):
        from django.db import connection

        self.connection = connection
        self.fields = [model._meta.get_field(name) for name in columns]
        names = ", ".join(connection.ops.quote_name(field.column) for field in self.fields)
        placeholders = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names}) VALUES ({placeholders})"
        self.rows: list[tuple] = []
        self.count = 0
        self.parent = parent

    def add(self, *values) -> None:
        self.rows.append(
            tuple(
                field.get_db_prep_save(value, self.connection) for field, value in zip(self.fields, values, strict=True)
            )
        )
        if len(self.rows) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        from django.db import transaction

        if self.parent:
            self.parent.flush()
        if self.rows:
            with transaction.atomic(), self.connection.cursor() as cursor:
                cursor.executemany(self.sql, self.rows)
            self.count += len(self.rows)
            self.rows = []


def fill(n_tasks: int, seed: int = 23) -> dict:
    """The tasks, stages, logs, audit rows, batches, task types and schedules described above;
    returns the ids the pages are measured with and how many rows of each kind were written."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from batches.models import Batch
    from tasks.models import AuditLog, Schedule, Task, TaskLog, TaskStage, TaskType
    from tasks.runtime.registry import get_job_type

    rng = random.Random(seed)
    now = timezone.now()
    user = get_user_model().objects.create_user("bench-operator", is_staff=True)
    batches = Batch.objects.bulk_create(
        Batch(
            batch_code=f"survey-{i:03d}",
            description=f"Term survey {i}",
            data_source="student_assessments",
            config={"include_dimensions": ["academic"], "calculation_types": ["descriptive"]},
        )
        for i in range(BATCHES)
    )
    stage_lists = {name: get_job_type(name).stage_weights() for name, _share, _run in MIX}
    types, weights = [name for name, _s, _r in MIX], [share for _n, share, _r in MIX]
    runs = {name: run for name, _s, run in MIX}

    tasks = Inserter(
        Task,
        [
            "id", "batch", "task_type", "status", "progress", "params", "result", "error_message",
            "error_category", "attempt", "max_attempts", "trigger", "priority", "execution_id",
            "heartbeat_at", "worker", "enqueued_at", "created_by", "created_at", "started_at",
            "completed_at", "updated_at",
        ],
    )  # fmt: skip
    stages = Inserter(TaskStage, ["task", "name", "position", "weight", "status", "progress"], parent=tasks)
    logs = Inserter(TaskLog, ["task", "timestamp", "level", "message", "data"], parent=tasks)
    audit = Inserter(
        AuditLog,
        ["actor_name", "action", "target_type", "target_id", "from_status", "to_status", "details", "created_at"],
    )
    # Oldest first, one every 7 days / n: the last PENDING are waiting, the PROCESSING before them
    # running; PAUSED others of the last day were paused part way.
    first = now - timedelta(days=7) + timedelta(minutes=10)
    step = (now - first) / n_tasks
    paused_at = set(rng.sample(range(n_tasks - n_tasks // 7, n_tasks - PENDING - PROCESSING), PAUSED))
    processing_ids = []
    for i in range(n_tasks):
        task_type = rng.choices(types, weights)[0]
        task_id = uuid.uuid4()
        created = first + step * i
        batch = rng.choice(batches) if task_type == "statistics" else None
        params = (
            {"data_source": batch.data_source, "config": batch.config}
            if batch
            else {"seconds": 1, "steps": 10}
            if task_type == "canary"
            else {"file": f"assessments-{i}.csv"}
            if task_type == "import_assessments"
            else {"days": 30, "chunk_size": 500}
        )
        trigger = "schedule" if task_type == "maintenance.purge" else rng.choice(["api", "api", "manual", "schedule"])
        started = created + timedelta(seconds=rng.uniform(0.05, 3.0))
        finished = started + timedelta(seconds=rng.uniform(*runs[task_type]))
        error_category = None
        error_message = ""
        result = None
        execution_id = heartbeat = None
        worker = ""
        attempt = 1
        if i >= n_tasks - PENDING:
            status, progress, started, finished = "pending", 0.0, None, None
        elif i >= n_tasks - PENDING - PROCESSING:
            status, progress, finished = "processing", rng.uniform(5, 95), None
            started = now - timedelta(seconds=rng.uniform(30, 900))
            execution_id, heartbeat, worker = uuid.uuid4(), now, f"worker-{i % 3}:{4000 + i % 8}"
            processing_ids.append(task_id)
        elif i in paused_at:
            status, progress, finished = "paused", rng.uniform(10, 90), None
        else:
            roll = rng.random()
            if roll < FAILED_SHARE:
                status, progress = "failed", rng.uniform(0, 90)
                error_category = rng.choice(list(ERRORS))
                error_message = ERRORS[error_category]
                attempt = 3 if error_category in ("system", "timeout", "worker_lost") else 1
            elif roll < FAILED_SHARE + CANCELLED_SHARE:
                status, progress = "cancelled", rng.uniform(0, 90)
            else:
                status, progress = "completed", 100.0
                result = {"steps": 10, "steps_done": 10} if task_type == "canary" else {"rows": rng.randint(1, 9999)}
        tasks.add(
            task_id, batch and batch.pk, task_type, status, progress, params, result, error_message, error_category,
            attempt, 3, trigger, 0, execution_id, heartbeat, worker, created, user.pk, created, started,
            finished, finished or heartbeat or created,
        )  # fmt: skip

        # Stages: those before the task's progress done, the one it is in processing (while it
        # runs; a failed or cancelled task's stays as it was left), the rest pending.
        reached, current = 0.0, None
        for position, (name, weight) in enumerate(stage_lists[task_type]):
            share = 100.0 * weight
            if status == "completed" or (status != "pending" and progress >= reached + share):
                stage_status, stage_progress = "completed", 100.0
            elif status != "pending" and current is None:
                stage_status, stage_progress = "processing", 100.0 * (progress - reached) / share
                current = name
            else:
                stage_status, stage_progress = "pending", 0.0
            stages.add(task_id, name, position, weight, stage_status, stage_progress)
            reached += share

        actor = rng.choice(OPERATORS) if trigger in ("api", "manual") else "system"
        audit.add(actor, "task.create", "task", str(task_id), "", "pending", {"task_type": task_type}, created)
        if started is not None:
            audit.add("system", "worker.claim", "task", str(task_id), "pending", "processing", {}, started)
        if status == "completed":
            audit.add("system", "worker.complete", "task", str(task_id), "processing", "completed", {}, finished)
        elif status == "failed":
            details = {"error_category": error_category, "error_message": error_message}
            audit.add("system", "worker.fail", "task", str(task_id), "processing", "failed", details, finished)
            logs.add(task_id, finished, 40, error_message, {"error_category": error_category})
        elif status == "cancelled":
            audit.add(
                rng.choice(OPERATORS), "task.cancel", "task", str(task_id), "processing", "cancelled", {}, finished
            )
        if started is not None and rng.random() < LOGGED_SHARE:
            logs.add(task_id, started, 20, f"{task_type} started (attempt {attempt})", None)
            logs.add(task_id, started + timedelta(seconds=0.5), 10, "loaded the parameters", None)
            if finished is not None:
                logs.add(task_id, finished, 20, f"{task_type} finished", None)

    watched = processing_ids[0]
    began = now - timedelta(minutes=10)
    for k in range(LONG_LOG):
        level = 30 if k % 97 == 0 else 20
        logs.add(watched, began + timedelta(seconds=0.5 * k), level, f"step {k + 1} of {LONG_LOG}: 400 rows read", None)
    for inserter in (tasks, stages, logs, audit):
        inserter.flush()

    TaskType.objects.update_or_create(name="import_assessments", defaults={"max_concurrency": 1})
    schedules = [
        Schedule(name="hourly purge", task_type="maintenance.purge", cron="0 * * * *", params={"days": 30}),
        Schedule(name="canary every minute", task_type="canary", interval_seconds=60, params={"seconds": 1}),
        Schedule(name="nightly survey statistics", task_type="statistics", cron="0 2 * * *", batch=batches[0]),
    ]
    for schedule in schedules:
        schedule.next_run_at = now + timedelta(minutes=30)
        schedule.last_task = Task.objects.filter(task_type=schedule.task_type).first()  # the newest
        schedule.save()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
        else:
            for model in (Task, TaskStage, TaskLog, AuditLog, Batch):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    return {
        "processing_task": str(watched),
        "rows": {"tasks": tasks.count, "stages": stages.count, "logs": logs.count, "audit": audit.count},
    }


def pages(ids: dict) -> dict[str, str]:
    """Every page measured, by name."""
    task = ids["processing_task"]
    return {
        "dashboard 24h": "/admin/dashboard/",
        "dashboard 24h fragment": "/admin/dashboard/?fragment=1",
        "dashboard 7d": "/admin/dashboard/?window=7d",
        "dashboard 7d fragment": "/admin/dashboard/?window=7d&fragment=1",
        "index": "/admin/",
        "tasks": "/admin/tasks/task/",
        "tasks failed": "/admin/tasks/task/?status=failed",
        "tasks canary": "/admin/tasks/task/?task_type=canary",
        "task page (processing)": f"/admin/tasks/task/{task}/change/",
        "task types": "/admin/tasks/tasktype/",
        "schedules": "/admin/tasks/schedule/",
        "audit log": "/admin/tasks/auditlog/",
        "batches": "/admin/batches/batch/",
        "whole log (1,000 lines)": f"/admin/tasks/task/{task}/log/",
    }


def fetch(client, url: str) -> bytes:
    """The whole answer to ``url`` (a streamed one read to its end); fails unless 200."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return b"".join(response.streaming_content) if response.streaming else response.content


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    database = setup_django(args.database)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from batches.models import Batch
    from tasks.models import AuditLog, Schedule, Task, TaskType

    # What migrate wrote (the purge's schedule, a control row per type): the fill writes its own.
    for model in (Schedule, Task, Batch, AuditLog, TaskType):
        model.objects.all().delete()
    began = time.perf_counter()
    ids = fill(args.tasks)
    fill_seconds = time.perf_counter() - began
    print(f"filled {ids['rows']} in {fill_seconds:.1f} s ({connection.vendor})", flush=True)
    client = superuser_client()
    figures, queries = {}, {}
    for name, url in pages(ids).items():
        with CaptureQueriesContext(connection) as captured:
            fetch(client, url)
        queries[name] = len(captured)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            fetch(client, url)
            times.append(time.perf_counter() - started)
        figures[name] = round(1000 * statistics.median(times), 1)
        print(f"{name:<28} {figures[name]:>9.1f} ms {queries[name]:>4} queries", flush=True)
    # An open dashboard asks for its fragment every REFRESH_SECONDS.
    from tasks.dashboard import REFRESH_SECONDS

    refresh = {
        window: round(figures[f"dashboard {window} fragment"] / (10 * REFRESH_SECONDS), 1) for window in ("24h", "7d")
    }
    for window, percent in refresh.items():
        print(f"an open dashboard ({window}): {percent} % of one core (a fragment every {REFRESH_SECONDS} s)")
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "tasks": args.tasks,
                "rows": ids["rows"],
                "fill_seconds": round(fill_seconds, 1),
                "repeat": args.repeat,
                "median_ms": figures,
                "queries": queries,
                "refresh_core_percent": refresh,
                "dashboard_max_ms": max(v for k, v in figures.items() if k.startswith("dashboard")),
                "database_url": database if database.startswith("sqlite") else database.split("@")[-1],
            }
        )
    )


if __name__ == "__main__":
    main()
