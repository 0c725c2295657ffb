"""The hot paths' hand-built INSERTs store exactly what the ORM stores, for first and repeated
(remembered) values alike."""

from __future__ import annotations

import fcntl
import os

import pytest
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from tasks.actors import SYSTEM
from tasks.audit import audit_entry
from tasks.fastinsert import insert_rows, insert_statements, write
from tasks.models import AuditLog, Task


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


def test_inserted_tasks_match_orm_created_ones_field_for_field(db):
    def make(**values) -> Task:
        return Task(task_type="canary", params={"seconds": 0, "steps": 3, "label": "ü"}, **values)

    # Twice each, so the second row uses the remembered forms of the constant values.
    for round_ in range(2):
        ours, theirs = make(trigger="api", max_attempts=3), make(trigger="api", max_attempts=3)
        insert_rows([ours])
        Task.objects.bulk_create([theirs])
        assert not ours._state.adding
        ours_row = _without(_raw(Task, ours.pk), Task, "id", "created_at", "updated_at")
        theirs_row = _without(_raw(Task, theirs.pk), Task, "id", "created_at", "updated_at")
        assert ours_row == theirs_row, round_
        stored = Task.objects.get(pk=ours.pk)
        assert stored.params == {"seconds": 0, "steps": 3, "label": "ü"}
        assert stored.status == "pending" and stored.progress == 0.0 and stored.result is None


def test_inserted_audit_rows_match_orm_created_ones(db):
    def entry(action: str, details: dict) -> AuditLog:
        # As every service builds them (without Model.__init__): every field must be set.
        built = audit_entry(
            actor=SYSTEM, action=action, target_type="task", target_id="t-1", to_status="pending", details=details
        )
        assert {field.attname for field in AuditLog._meta.concrete_fields} <= set(vars(built))
        return built

    for details in ({}, {"n": 1}, {}, {"n": 1}):
        insert_rows([entry("task.create", details)])
        AuditLog.objects.create(
            action="task.create", target_type="task", target_id="t-1", to_status="pending", details=details
        )
        theirs, ours = AuditLog.objects.order_by("-id")[:2]
        assert _without(_raw(AuditLog, ours.pk), AuditLog, "id", "created_at") == _without(
            _raw(AuditLog, theirs.pk), AuditLog, "id", "created_at"
        )
        assert ours.actor_name == "system" and ours.details == details


def test_stage_log_and_audit_ids_keep_following_time_after_the_newest_task_is_deleted(db):
    """They carry no AUTOINCREMENT on SQLite (no sqlite_sequence page per write): a deleted task's
    ids may be given again, but a live task's rows still come in id order as they were written."""
    from django.utils import timezone

    from tasks.models import TaskLog, TaskStage
    from tasks.services import task_cancel, task_create, task_delete

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


# --- write(): the hot paths' short transactions ---------------------------------------------------


@pytest.fixture
def pending_task(transactional_db):
    """A pending task, with the test outside any transaction (so that ``write`` runs on its own:
    on SQLite, directly on the driver's connection, which the tests check with ``direct_writes``).
    A callback that must never run is ``called.append``: called without an argument it fails."""
    task = Task(task_type="canary", params={"seconds": 0, "steps": 1})
    insert_rows([task])
    return task


@pytest.fixture
def direct_writes(monkeypatch):
    """How many writes went directly to SQLite's connection (always 0 elsewhere)."""
    calls = []
    db = connections[DEFAULT_DB_ALIAS]
    if hasattr(db, "write_directly"):
        original = db.write_directly
        monkeypatch.setattr(db, "write_directly", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    return calls


def _set_worker(task, worker: str, *, status: str = "pending"):
    table = connection.ops.quote_name(Task._meta.db_table)
    pk = Task._meta.pk.get_db_prep_value(task.pk, connection)
    return (f"UPDATE {table} SET worker = %s WHERE id = %s AND status = %s", [worker, pk, status])


def _audit_rows(action: str):
    return insert_statements([audit_entry(actor=SYSTEM, action=action, target_type="task", target_id="t")])


def test_write_runs_the_rest_and_the_callbacks_only_when_the_first_statement_changed_a_row(pending_task, direct_writes):
    called = []
    missed = write(
        _set_worker(pending_task, "w1", status="completed"), _audit_rows("test.miss"), after_commit=[called.append]
    )
    assert missed == 0
    hit = write(
        _set_worker(pending_task, "w2"), _audit_rows("test.hit"), after_commit=[lambda: called.append("hit"), None]
    )
    assert hit == 1
    assert Task.objects.get(pk=pending_task.pk).worker == "w2"
    assert list(AuditLog.objects.filter(action__startswith="test.").values_list("action", flat=True)) == ["test.hit"]
    assert called == ["hit"]
    assert len(direct_writes) == (2 if connection.vendor == "sqlite" else 0)
    if connection.vendor == "postgresql":  # all of it one statement: one round trip, no BEGIN/COMMIT
        with CaptureQueriesContext(connection) as queries:
            assert write(_set_worker(pending_task, "w3"), _audit_rows("test.one")) == 1
        assert len(queries) == 1
        assert AuditLog.objects.filter(action="test.one").count() == 1


def test_a_failing_statement_writes_nothing_and_leaves_the_database_writable(pending_task, direct_writes):
    called = []
    duplicate = insert_statements([Task(id=pending_task.pk, task_type="canary", params={})])
    with pytest.raises(IntegrityError):
        write(_set_worker(pending_task, "lost"), duplicate, after_commit=[lambda: called.append("no")])
    assert Task.objects.get(pk=pending_task.pk).worker == ""
    assert called == []
    if connection.vendor == "sqlite":
        # No transaction left open, and the write lock let go (another holder gets it at once).
        assert not connection.connection.in_transaction
        other = os.open(connection.connection.writer_lock.path, os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while still held
        finally:
            os.close(other)
    assert write(_set_worker(pending_task, "next"), _audit_rows("test.next")) == 1
    assert Task.objects.get(pk=pending_task.pk).worker == "next"
    assert len(direct_writes) == (2 if connection.vendor == "sqlite" else 0)


def test_inside_an_atomic_block_a_write_joins_it_and_its_callbacks_wait_for_its_commit(pending_task, direct_writes):
    called = []
    with pytest.raises(RuntimeError), transaction.atomic():
        write(_set_worker(pending_task, "rolled back"), _audit_rows("test.rolled_back"), after_commit=[called.append])
        raise RuntimeError("the outer block fails")
    assert Task.objects.get(pk=pending_task.pk).worker == ""
    assert not AuditLog.objects.filter(action="test.rolled_back").exists()
    with transaction.atomic():
        write(_set_worker(pending_task, "kept"), [], after_commit=[lambda: called.append("committed")])
        assert called == []
    assert called == ["committed"]
    assert direct_writes == []
