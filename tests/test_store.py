"""The task store's hand-written statements store exactly what the ORM stores, and its writes are
atomic: all of a write or none of it, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from taskcenter.db.sqlite3.base import WriterLock
from tasks import store
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task, TaskLog, TaskStage
from tasks.runtime.registry import get_job_type
from tasks.services import task_create


def _raw(model, pk) -> tuple:
    """The row as the database holds it (no conversion back to Python)."""
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in model._meta.concrete_fields)
    pk_value = model._meta.pk.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        pk_column = connection.ops.quote_name(model._meta.pk.column)
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {pk_column} = %s", [pk_value])
        return cursor.fetchone()


def _without(row: tuple, model, *names) -> tuple:
    skip = {model._meta.get_field(name).column for name in names}
    pairs = zip(model._meta.concrete_fields, row, strict=True)
    return tuple(value for field, value in pairs if field.column not in skip)


@pytest.mark.parametrize("vendor", ["sqlite", "postgresql"])
def test_the_creation_statement_writes_every_column_of_a_task_and_of_its_audit_row(vendor):
    """A model field added without its column in create_task would be left to the database."""
    text = " ".join(store._statements("create_task", vendor))
    for model, prefix in ((Task, ""), (AuditLog, "audit_")):
        for field in model._meta.concrete_fields:
            if field.db_returning:
                continue
            assert re.search(rf'\b"?{field.column}"?\b', text), f"{model.__name__}.{field.column}"
            assert f"%({prefix}{field.attname})s" in text, f"{model.__name__}.{field.attname}"


def test_a_created_task_its_stages_and_audit_row_match_what_the_orm_writes(db, manager):
    from tasks.actors import Actor

    actor = Actor(user=manager, address="10.0.0.7")
    params = {"seconds": 0.0, "steps": 3, "fail_at_step": None, "fail_times": 0}
    ours = task_create(actor=actor, task_type="canary", params=params)
    theirs = Task.objects.create(
        task_type="canary", params=params, created_by=manager, enqueued_at=ours.enqueued_at, max_attempts=3
    )
    assert not ours._state.adding and ours.created_at is not None
    assert _without(_raw(Task, ours.pk), Task, "id", "created_at", "updated_at") == _without(
        _raw(Task, theirs.pk), Task, "id", "created_at", "updated_at"
    )
    stored = Task.objects.get(pk=ours.pk)
    assert stored.params == params and stored.created_at == ours.created_at
    stages = list(TaskStage.objects.filter(task=ours).values_list("name", "position", "weight", "status", "progress"))
    assert stages == [("burn", 0, 1.0, "pending", 0.0)]

    entry = AuditLog.objects.get(action="task.create", target_id=str(ours.pk))
    orm_entry = AuditLog.objects.create(
        actor=manager,
        actor_name=entry.actor_name,
        action="task.create",
        target_type="task",
        target_id=str(ours.pk),
        to_status="pending",
        details=entry.details,
        client_address="10.0.0.7",
    )
    assert _without(_raw(AuditLog, entry.pk), AuditLog, "id", "created_at") == _without(
        _raw(AuditLog, orm_entry.pk), AuditLog, "id", "created_at"
    )
    assert entry.actor_name == "manager" and entry.details["task_type"] == "canary"


def test_a_run_log_lines_keep_their_text_data_and_time_exactly(db):
    """Log lines travel to the database as JSON: unicode, control characters, exact floats and
    nested data come back as they were, and times keep their microseconds."""
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    execution = uuid.uuid4()
    assert store.claim(task.pk, execution, "test:1") is not None
    when = timezone.now().replace(microsecond=123456)
    data = {"ratio": 0.30000000000000004, "big": 2**53 + 1, "text": '统计 \u2028 "q" \\', "nested": [1, {"a": None}]}
    lines = [
        TaskLog(task_id=task.pk, timestamp=when, level=20, message="first\nline\t ünï", data=data),
        TaskLog(task_id=task.pk, timestamp=when, level=30, message="no data", data=None),
    ]
    assert store.flush(task.pk, execution, progress=50.0, stages={"burn": ("processing", 50.0)}, logs=lines[:1])
    assert store.complete(task.pk, execution, result={"ok": True}, checkpoint=None, logs=lines[1:])
    stored = list(TaskLog.objects.filter(task=task).order_by("id").values_list("timestamp", "level", "message", "data"))
    assert stored == [(when, 20, "first\nline\t ünï", data), (when, 30, "no data", None)]
    assert TaskLog.objects.filter(task=task, data__isnull=True).count() == 1  # SQL NULL, as the ORM stores None


def test_a_claim_returns_the_task_as_a_run_needs_it_and_audits_it(db):
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 2})
    execution = uuid.uuid4()
    claimed = store.claim(task.pk, execution, "host:42")
    assert (claimed.pk, claimed.status, claimed.execution_id, claimed.task_type) == (
        task.pk,
        "processing",
        execution,
        "canary",
    )
    assert claimed.params == task.params and claimed.checkpoint is None and claimed.attempt == 1
    row = Task.objects.get(pk=task.pk)
    assert (row.status, row.execution_id, row.worker) == ("processing", execution, "host:42")
    assert row.started_at is not None and row.heartbeat_at is not None
    entry = AuditLog.objects.get(action="worker.claim", target_id=str(task.pk))
    assert (entry.actor_name, entry.from_status, entry.to_status) == ("system", "pending", "processing")
    assert entry.details == {"execution_id": str(execution), "worker": "host:42"}
    assert store.claim(task.pk, uuid.uuid4(), "host:43") is None, "held: a second claim changes nothing"
    assert AuditLog.objects.filter(action="worker.claim").count() == 1


def test_a_completion_that_lost_its_claim_writes_nothing(db):
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    execution = uuid.uuid4()
    store.claim(task.pk, execution, "test:1")
    line = TaskLog(task_id=task.pk, timestamp=timezone.now(), level=20, message="late")
    assert not store.complete(task.pk, uuid.uuid4(), result={"x": 1}, checkpoint=None, logs=[line])
    row = Task.objects.get(pk=task.pk)
    assert row.status == "processing" and row.result is None
    assert not TaskLog.objects.filter(task=task).exists()
    assert not AuditLog.objects.filter(action="worker.complete").exists()
    assert TaskStage.objects.get(task=task).status == "pending"


@pytest.fixture
def outside_transactions(transactional_db):
    """The test outside any transaction: a store write then runs on its own (on SQLite by
    ``write_directly``, counted in the list this returns)."""
    calls = []
    if connection.vendor == "sqlite":
        original = connection.write_directly

        def counting(*args, **kwargs):
            calls.append(1)
            return original(*args, **kwargs)

        connection.write_directly = counting
        yield calls
        del connection.write_directly
    else:
        yield calls


def test_a_failing_write_writes_nothing_and_leaves_the_database_writable(outside_transactions):
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    stages_before = TaskStage.objects.count()
    job = get_job_type("canary")
    duplicate = Task(id=task.pk)
    with pytest.raises(IntegrityError):
        # The same id again: the task's INSERT fails, and no stage or audit row may stay.
        store._write("create_task", {**store._values(duplicate), **_audit_values(), "stages": "[]"})
    assert TaskStage.objects.count() == stages_before
    assert AuditLog.objects.filter(action="task.create").count() == 1
    if connection.vendor == "sqlite":
        # No transaction left open, and the write lock let go: another holder gets it (at once,
        # or after the few milliseconds of a write by a cluster another test left running).
        assert not connection.connection.in_transaction
        lock = WriterLock(connection.connection.writer_lock.path, timeout=5)
        lock.acquire()  # WriterLockTimeout while still held
        lock.close()
    again = store.create(job=job, params={"seconds": 0, "steps": 1}, actor=SYSTEM, trigger="api")
    assert Task.objects.filter(pk=again.pk).exists()
    assert len(outside_transactions) == (3 if connection.vendor == "sqlite" else 0)


def _audit_values() -> dict:
    entry = AuditLog(action="task.create", target_type="task", target_id="x", to_status="pending")
    return store._values(entry, "audit_")


def test_a_write_inside_an_atomic_block_joins_it(outside_transactions):
    job = get_job_type("canary")
    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = store.create(job=job, params={}, actor=SYSTEM, trigger="api")
        raise RuntimeError("the outer block fails")
    assert not Task.objects.filter(pk=rolled_back.pk).exists()
    assert not AuditLog.objects.filter(target_id=str(rolled_back.pk)).exists()
    assert outside_transactions == []


def test_tests_that_count_queries_see_the_writes_production_makes(outside_transactions):
    """Capturing queries does not switch the store to another way of writing."""
    job = get_job_type("canary")
    with CaptureQueriesContext(connection) as queries:
        task = store.create(job=job, params={}, actor=SYSTEM, trigger="api")
        store.claim(task.pk, uuid.uuid4(), "test:1")
    sql = [query["sql"] for query in queries.captured_queries]
    assert any("INSERT INTO tasks_task" in text for text in sql)
    assert any("UPDATE tasks_task SET" in text and "'processing'" in text for text in sql)
    assert len(outside_transactions) == (2 if connection.vendor == "sqlite" else 0)
    if connection.vendor == "postgresql":  # one statement each: one round trip, no BEGIN/COMMIT
        assert len(sql) == 2


def test_stage_log_and_audit_ids_keep_following_time_after_the_newest_task_is_deleted(db):
    """They carry no AUTOINCREMENT on SQLite (no sqlite_sequence page per write): a deleted task's
    ids may be given again, but a live task's rows still come in id order as they were written."""
    from tasks.services import task_cancel, task_delete

    def create():
        return task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})

    kept = create()
    TaskLog.objects.create(task=kept, timestamp=timezone.now(), message="first")
    newest = create()
    deleted = TaskLog.objects.create(task=newest, timestamp=timezone.now(), message="of the deleted task")
    task_cancel(actor=SYSTEM, task_id=newest.pk)
    task_delete(actor=SYSTEM, task_id=newest.pk)
    second = TaskLog.objects.create(task=kept, timestamp=timezone.now(), message="second")
    if connection.vendor == "sqlite":
        assert second.id <= deleted.id, "the largest id present plus one (no AUTOINCREMENT)"
    again = create()

    assert list(TaskLog.objects.filter(task=kept).order_by("id").values_list("message", flat=True)) == [
        "first",
        "second",
    ]
    assert TaskStage.objects.filter(task=again).get().id > TaskStage.objects.filter(task=kept).get().id
    audit = list(AuditLog.objects.filter(target_id__in=[str(kept.pk), str(again.pk)]).order_by("id"))
    assert [row.target_id for row in audit] == [str(kept.pk), str(again.pk)]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_sequence")
            sequences = {name for (name,) in cursor.fetchall()}
        assert not sequences & {"tasks_taskstage", "tasks_tasklog", "tasks_auditlog"}
