"""Testing a job type: run it in the test's process through the worker's own code path."""

from __future__ import annotations

from django.test import override_settings

from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.runtime.worker import run_task
from tasks.services import task_create
from tasks.states import TaskStatus, Trigger

__all__ = ["run_job"]


def run_job(name: str, params: dict | None = None) -> Task:
    """Create a task of job type ``name`` with ``params`` and run it here as a worker would: claim it,
    call the job with its context, record how it ended. Automatic retries run at once (without
    their backoff) until the task is no longer pending.

    Returns the task, read again: ``status`` (``completed`` or ``failed``), ``result``,
    ``progress``, ``attempt``, ``error_category`` (``data``, ``config``, ``system``, ``timeout``),
    ``error_message``, ``checkpoint``; its log lines are ``task.logs.order_by("id")`` (``level``,
    ``message``, ``data``) and its stages ``task.stages.order_by("position")``.

    Bad ``params`` raise the error the API answers 400 with (``exc.errors`` names each field).
    Needs the database (pytest-django's ``db`` fixture, or ``django.test.TestCase``).
    """
    # Started as code starts it (a schedule's trigger), so types users may not start run here too.
    task = task_create(actor=SYSTEM, task_type=name, params=params, trigger=Trigger.SCHEDULE)
    with override_settings(TASKCENTER_RETRY_BACKOFF_SCALE=0):
        for _ in range(task.max_attempts):
            run_task(str(task.pk))
            task.refresh_from_db()
            if task.status != TaskStatus.PENDING:
                break
    return task
