"""Django's Tasks API (DEP 14) on taskcenter: ``TASKS = {"default": {"BACKEND":
"taskcenter.tasks_backend.TaskcenterBackend"}}``.

A function decorated with ``@task`` is a task type named by its module path, with one stage
``run``; ``.enqueue(*args, **kwargs)`` creates a taskcenter task of it (trigger ``enqueue``, params
``{"args": […], "kwargs": {…}}``, the Task's ``priority`` and ``run_after``) that shows, steers and
retries like any other, and ``get_result(id)`` reads it back as a ``TaskResult`` whose id is the
task's id. Statuses fold into DEP 14's four: pending and paused are READY, processing RUNNING,
completed SUCCESSFUL (``return_value``), failed and cancelled FAILED (``errors``). With
``takes_context=True`` the function's ``context`` is Django's ``TaskContext`` with taskcenter's
``progress``, ``log`` and ``check`` besides, so cancel and pause reach it.

Django 6 ships the framework as ``django.tasks``; on Django 5.2 the ``django-tasks`` backport
provides it as ``django_tasks``.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, replace
from typing import Any

from django.utils.module_loading import import_string
from rest_framework import serializers

try:
    from django.tasks import TaskContext, TaskResult, TaskResultStatus
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
except ImportError:  # Django 5.2
    from django_tasks import TaskContext, TaskResult, TaskResultStatus
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import TaskError
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

from taskcenter.errors import InvalidInput, NotFound
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task, TaskLog
from tasks.runtime.registry import get_job_type, register
from tasks.services import parse_task_id, task_create
from tasks.states import TaskStatus, Trigger

#: The stage of every task type made from a ``@task`` function.
STAGE = "run"
#: How a failure's exception is kept with the task: a log line's ``data`` carries these keys.
ERROR_CLASS, ERROR_TRACEBACK = "exception_class_path", "traceback"

_STATUSES = {
    TaskStatus.PENDING: TaskResultStatus.READY,
    TaskStatus.PAUSED: TaskResultStatus.READY,
    TaskStatus.PROCESSING: TaskResultStatus.RUNNING,
    TaskStatus.COMPLETED: TaskResultStatus.SUCCESSFUL,
    TaskStatus.FAILED: TaskResultStatus.FAILED,
    TaskStatus.CANCELLED: TaskResultStatus.FAILED,
}


@dataclass(frozen=True, kw_only=True)
class TaskcenterContext(TaskContext):
    """Django's ``TaskContext`` (``task_result``, ``attempt``) with taskcenter's job context:
    ``progress(done, total)``, ``log(level, message, **data)`` and ``check()`` (where a cancel, a
    pause or the timeout stops the function)."""

    job_context: Any = None

    def progress(self, done: float, total: float) -> None:
        self.job_context.progress(done, total)

    def log(self, level: str, message: str, **data: Any) -> None:
        self.job_context.log(level, message, **data)

    def check(self) -> None:
        self.job_context.check()


class TaskcenterBackend(BaseTaskBackend):
    """Runs Django ``@task`` functions as taskcenter tasks (module docstring)."""

    supports_defer = True
    supports_get_result = True
    supports_priority = True

    def validate_task(self, task) -> None:
        """Django's checks; a valid task's function becomes a task type (once per function)."""
        super().validate_task(task)
        _register(task, self.alias)

    def enqueue(self, task, args, kwargs):
        self.validate_task(task)
        # As Django's own backends: arguments that do not round-trip through JSON raise here.
        params = {"args": normalize_json(list(args)), "kwargs": normalize_json(dict(kwargs))}
        created = task_create(
            actor=SYSTEM,
            task_type=task.module_path,
            params=params,
            trigger=Trigger.ENQUEUE,
            priority=task.priority,
            run_after=task.run_after,
            check_permission=False,  # code, not a user: as the framework's other backends
        )
        result = self.get_result(str(created.pk))
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str):
        try:
            task_id = parse_task_id(result_id)
        except (InvalidInput, NotFound):
            raise TaskResultDoesNotExist(result_id) from None
        row = Task.objects.filter(pk=task_id).first()
        if row is None or not hasattr(_function_of(row.task_type), "module_path"):
            raise TaskResultDoesNotExist(result_id)
        return _result(row, self.alias)


class EnqueuedArguments(serializers.Serializer):
    """A ``@task`` task's params: the arguments it was enqueued with."""

    args = serializers.ListField(child=serializers.JSONField(), required=False, default=list)
    kwargs = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)


def _register(task, alias: str) -> None:
    name = task.module_path
    try:
        get_job_type(name)
        return  # registered by an earlier Task of the same function (``using()`` makes copies)
    except InvalidInput:
        pass
    register(
        name,
        stages=[(STAGE, 1.0)],
        description=(task.func.__doc__ or "").strip().split("\n")[0] or f"Django task {name}",
        params=EnqueuedArguments,
        max_attempts=1,  # DEP 14 has no retries: a failure is final (a user may still retry)
        user_startable=False,  # enqueued by code; its params are the function's arguments
    )(_runner(name, alias))


def _runner(name: str, alias: str):
    """The job of a ``@task`` function: call it with the enqueued arguments; Django's signals
    around the call; a failure's exception kept in the task's log (``TaskResult.errors``)."""

    def run(ctx):
        task = _function_of(name)
        sender = type(task.get_backend())
        started = _result(Task.objects.get(pk=ctx.task_id), alias)
        task_started.send(sender, task_result=started)
        args, kwargs = ctx.params.get("args", []), ctx.params.get("kwargs", {})
        ctx.stage(STAGE)
        try:
            if task.takes_context:
                value = task.func(TaskcenterContext(task_result=started, job_context=ctx), *args, **kwargs)
            else:
                value = task.func(*args, **kwargs)
            value = normalize_json(value)
        except Exception as exc:
            error = TaskError(
                exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
                traceback=traceback.format_exc(),
            )
            ctx.log(
                "error",
                f"{type(exc).__name__}: {exc}",
                **{ERROR_CLASS: error.exception_class_path, ERROR_TRACEBACK: error.traceback},
            )
            failed = replace(started, status=TaskResultStatus.FAILED, errors=[*started.errors, error])
            task_finished.send(sender, task_result=failed)
            raise
        ctx.progress(1, 1)
        # Sent once the completion is recorded, in its transaction (a cancel that got there first
        # records none, and sends nothing).
        ctx.on_complete(
            lambda: task_finished.send(sender, task_result=_result(Task.objects.get(pk=ctx.task_id), alias))
        )
        return {"return_value": value}

    return run


def _function_of(name: str):
    """The ``@task`` object of a task type's module path."""
    try:
        return import_string(name)
    except ImportError:
        return None


def _result(row: Task, alias: str):
    status = _STATUSES[row.status]
    claims = AuditLog.objects.filter(target_type="task", target_id=str(row.pk), action="worker.claim")
    errors = []
    if status == TaskResultStatus.FAILED:
        for data in TaskLog.objects.filter(task=row, data__has_key=ERROR_CLASS).values_list("data", flat=True):
            errors.append(TaskError(exception_class_path=data[ERROR_CLASS], traceback=data[ERROR_TRACEBACK]))
    result = TaskResult(
        task=_function_of(row.task_type).using(priority=row.priority, run_after=row.run_after),
        id=str(row.pk),
        status=status,
        enqueued_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.completed_at,
        last_attempted_at=row.started_at,
        args=row.params.get("args", []),
        kwargs=row.params.get("kwargs", {}),
        backend=alias,
        errors=errors,
        worker_ids=[details.get("worker", "") for details in claims.values_list("details", flat=True)],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", (row.result or {}).get("return_value"))
    return result
