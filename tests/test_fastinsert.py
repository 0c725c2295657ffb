"""The hot paths' hand-built INSERTs store exactly what the ORM stores, for first and repeated
(remembered) values alike."""

from __future__ import annotations

from django.db import connection

from tasks.actors import SYSTEM
from tasks.audit import audit_entry
from tasks.fastinsert import insert_rows
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
    TaskLog.objects.create(task=newest, timestamp=timezone.now(), message="of the deleted task")
    task_cancel(actor=SYSTEM, task_id=newest.pk)
    task_delete(actor=SYSTEM, task_id=newest.pk)
    TaskLog.objects.create(task=kept, timestamp=timezone.now(), message="second")
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
