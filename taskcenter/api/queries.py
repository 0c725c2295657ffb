"""The API's hottest reads as whole, hand-written SELECT statements, each under its name.

- ``TOKEN_USER``: an API token and its user (every request that bears a token);
- ``TASK_DETAIL``: a task's detail row (the detail and every steering action's answer);
- ``TASK_STAGES``: a task's stages in order (the detail and the progress);
- ``TASK_PROGRESS``: a task's overall progress (polled by frontends).

Kept because they pay on ``bench/api.py`` (docs/performance.md, "Which bypasses of Django pay
(API)"): building these queries with the ORM on every request costs more than the answer.
Each statement takes one argument, compared with a model field that prepares it for the
database as the ORM's lookup would, and names the model field of each of its columns, whose
values are converted as ``values_list`` converts them: the backend's converters, then the
field's ``from_db_value``. tests/test_api_queries.py checks each against its ORM equivalent.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field
from rest_framework.authtoken.models import Token

from tasks.models import Task, TaskStage, TaskType


class Select:
    """A SELECT statement with one ``%s`` parameter, ``argument``: the model field the
    parameter is compared with; ``columns``: the model field of each selected column, in order."""

    def __init__(self, sql: str, *, argument: Field, columns: Sequence[Field]):
        self.sql = sql
        self.argument = argument
        self.columns = tuple(columns)
        self._local = threading.local()

    def rows(self, value, *, using: str = DEFAULT_DB_ALIAS) -> list[tuple]:
        """The statement's rows for ``value``, converted as ``values_list`` converts them."""
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [self.argument.get_db_prep_value(value, connection)])
            rows = cursor.fetchall()
        converters = self._converters(connection)
        if not converters:
            return [tuple(row) for row in rows]
        converted = []
        for row in rows:
            values = list(row)
            for index, convert, column in converters:
                values[index] = convert(values[index], column, connection)
            converted.append(tuple(values))
        return converted

    def first(self, value, *, using: str = DEFAULT_DB_ALIAS) -> tuple | None:
        found = self.rows(value, using=using)
        return found[0] if found else None

    def _converters(self, connection) -> list[tuple]:
        """``(column index, converter, column)`` for each converter of each column, as the ORM's
        compiler finds them (once per thread and connection)."""
        cached = getattr(self._local, "converters", None)
        if cached is not None and cached[0] is connection:
            return cached[1]
        converters = []
        for index, field in enumerate(self.columns):
            column = field.get_col(field.model._meta.db_table)
            for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
                converters.append((index, convert, column))
        self._local.converters = (connection, converters)
        return converters


def _fields(model, *names: str) -> list[Field]:
    return [model._meta.get_field(name) for name in names]


User = get_user_model()

TOKEN_USER = Select(
    """
    SELECT "authtoken_token"."key", "authtoken_token"."created",
           "auth_user"."id", "auth_user"."password", "auth_user"."last_login", "auth_user"."is_superuser",
           "auth_user"."username", "auth_user"."first_name", "auth_user"."last_name", "auth_user"."email",
           "auth_user"."is_staff", "auth_user"."is_active", "auth_user"."date_joined"
    FROM "authtoken_token"
    INNER JOIN "auth_user" ON "auth_user"."id" = "authtoken_token"."user_id"
    WHERE "authtoken_token"."key" = %s
    """,
    argument=Token._meta.get_field("key"),
    columns=[
        *_fields(Token, "key", "created"),
        *_fields(
            User,
            "id",
            "password",
            "last_login",
            "is_superuser",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_staff",
            "is_active",
            "date_joined",
        ),
    ],
)

#: The columns of tasks.api.serializers.DETAIL_COLUMNS, in its order.
TASK_DETAIL = Select(
    """
    SELECT "tasks_task"."id", "tasks_task"."task_type", "batches_batch"."batch_code", "tasks_task"."status",
           "tasks_task"."progress", "tasks_task"."error_message", "tasks_task"."error_category",
           "tasks_task"."attempt", "tasks_task"."max_attempts", "tasks_task"."trigger", "tasks_task"."priority",
           "tasks_task"."run_after", "auth_user"."username",
           "tasks_task"."created_at", "tasks_task"."started_at", "tasks_task"."completed_at",
           "tasks_task"."updated_at",
           EXISTS (
               SELECT 1 FROM "tasks_tasktype"
               WHERE "tasks_tasktype"."name" = "tasks_task"."task_type" AND "tasks_tasktype"."paused"
           ),
           "tasks_task"."params", "tasks_task"."result"
    FROM "tasks_task"
    LEFT OUTER JOIN "batches_batch" ON "batches_batch"."id" = "tasks_task"."batch_id"
    LEFT OUTER JOIN "auth_user" ON "auth_user"."id" = "tasks_task"."created_by_id"
    WHERE "tasks_task"."id" = %s
    """,
    argument=Task._meta.pk,
    columns=[
        *_fields(Task, "id", "task_type"),
        Task._meta.get_field("batch").related_model._meta.get_field("batch_code"),
        *_fields(
            Task,
            "status",
            "progress",
            "error_message",
            "error_category",
            "attempt",
            "max_attempts",
            "trigger",
            "priority",
            "run_after",
        ),
        User._meta.get_field("username"),
        *_fields(Task, "created_at", "started_at", "completed_at", "updated_at"),
        TaskType._meta.get_field("paused"),
        *_fields(Task, "params", "result"),
    ],
)

TASK_STAGES = Select(
    """
    SELECT "tasks_taskstage"."name", "tasks_taskstage"."status", "tasks_taskstage"."progress"
    FROM "tasks_taskstage"
    WHERE "tasks_taskstage"."task_id" = %s
    ORDER BY "tasks_taskstage"."position"
    """,
    argument=TaskStage._meta.get_field("task"),
    columns=_fields(TaskStage, "name", "status", "progress"),
)

TASK_PROGRESS = Select(
    """
    SELECT "tasks_task"."id", "tasks_task"."progress"
    FROM "tasks_task"
    WHERE "tasks_task"."id" = %s
    """,
    argument=Task._meta.pk,
    columns=_fields(Task, "id", "progress"),
)


def task_stages(task_id) -> list[tuple]:
    """A task's stages as ``(name, status, progress)``, in order."""
    return TASK_STAGES.rows(task_id)
