"""The one django-q2 entry point: ``run_task(task_id)`` claims a task, runs its job, records the end.

Claiming is a compare-and-set ``pending → processing`` that stamps a fresh ``execution_id``
(the fencing token) and requires that no earlier execution still holds the task. A duplicate
delivery, an early delivery of a delayed retry, or a message for a task that moved on changes
nothing and returns.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import uuid

from django.utils import timezone
from django_q.exceptions import TimeoutException

from taskcenter import metrics
from taskcenter.errors import InvalidInput
from tasks import store
from tasks.models import Task
from tasks.runtime import resources
from tasks.runtime.context import TaskContext
from tasks.runtime.errors import Cancelled, ClaimLost, JobError, Paused, TimedOut
from tasks.runtime.files import remove_task_files
from tasks.runtime.queue import tasks_table_is_the_queue
from tasks.runtime.registry import load_job_type, types_within_timeout_of
from tasks.runtime.watchdog import hand_over_waiting
from tasks.states import ErrorCategory, TaskStatus

logger = logging.getLogger("taskcenter.worker")


_HOST = socket.gethostname()


def worker_name() -> str:
    # Worker processes are forked: read the pid at call time.
    return f"{_HOST}:{os.getpid()}"


def run_task(task_id: str, task_type: str | None = None) -> str:
    """Run one task to its end (or to its interruption): the one the message names, or a due task
    of higher priority that the message's time limit covers (``task_type``: the named task's
    type). Returns what happened, for django-q2."""
    try:
        task_id = uuid.UUID(str(task_id))
    except ValueError:  # a malformed id in a message: nothing to run
        logger.warning("ignoring message for malformed task id %r", task_id)
        return "ignored"
    execution_id = uuid.uuid4()
    task = store.claim(task_id, execution_id, worker_name(), swap_types=types_within_timeout_of(task_type))
    if task is None:
        # A duplicate delivery, an early one of a delayed retry, a task that moved on or is gone,
        # or one whose type is paused or at its limit: with a broker that keeps its own messages
        # this one is spent, and the task is sent again when its type can take it.
        if not tasks_table_is_the_queue() and store.withhold(task_id):
            return "held back"
        return "not claimable" if Task.objects.filter(pk=task_id).exists() else "gone"
    try:
        return _run(task, execution_id)
    finally:
        if not tasks_table_is_the_queue():
            hand_over_waiting(task.task_type)  # a slot of its type may have freed


def _run(task: Task, execution_id: uuid.UUID) -> str:
    resources.count_task()  # claimed: a run, whatever its outcome (duplicates and refusals are not)
    try:
        job = load_job_type(task.task_type)
    except InvalidInput:  # a type that was unregistered since the task was created
        _fail(task.pk, execution_id, None, ErrorCategory.CONFIG, f"unknown task type {task.task_type!r}", "")
        return "failed"
    ctx = TaskContext(task=task, job=job, execution_id=execution_id)
    started = time.monotonic()
    try:
        result = job.func(ctx)
    except (Cancelled, Paused) as interrupt:
        _release(ctx, reason=str(interrupt))
        return "interrupted"
    except ClaimLost:
        _forget_if_deleted(task.pk)
        return "claim lost"
    except (TimedOut, TimeoutException) as exc:
        _fail(task.pk, execution_id, ctx, ErrorCategory.TIMEOUT, f"timeout: {exc}", traceback.format_exc())
        return "failed"
    except JobError as exc:
        message = str(exc) or exc.__class__.__name__
        _fail(task.pk, execution_id, ctx, exc.category, message, traceback.format_exc())
        return "failed"
    except Exception as exc:
        message = f"{exc.__class__.__name__}: {exc}"
        _fail(task.pk, execution_id, ctx, ErrorCategory.SYSTEM, message, traceback.format_exc())
        return "failed"
    try:
        completed = _complete(ctx, result)
    except JobError as exc:  # a completion hook refused it: rolled back with everything it wrote
        _fail(task.pk, execution_id, ctx, exc.category, str(exc), traceback.format_exc())
        return "failed"
    if completed:
        metrics.TASK_DURATION.labels(job.name).observe(time.monotonic() - started)
    return "completed"


def _complete(ctx: TaskContext, result) -> bool:
    """Record the result; False when a user's cancel or pause got there first (no result). When a
    completion hook raises, nothing is written and the run's buffered logs stay for the failure."""
    logs = ctx.pending_logs()
    try:
        recorded = store.complete(
            ctx.task_id,
            ctx.execution_id,
            result=result,
            checkpoint=ctx.checkpoint_data,
            logs=logs,
            hooks=ctx.completion_hooks,
        )
    except Exception:
        ctx.restore_logs(logs)
        raise
    if not recorded:
        # Cancelled or paused (or cancelled and deleted) between the job's last check and its
        # return: that decision wins, and no result is written.
        ctx.restore_logs(logs)
        _release(ctx, reason="stopped before completion was recorded")
    return recorded


def _release(ctx: TaskContext, *, reason: str) -> None:
    """Save the checkpoint and let go of a task a user paused or cancelled."""
    released = store.release(
        ctx.task_id,
        ctx.execution_id,
        reason=reason,
        checkpoint=ctx.checkpoint_data,
        # A paused task shows the progress its checkpoint holds (the resume continues from there).
        progress=ctx.progress_value,
        logs=ctx.pending_logs(),
    )
    if released is None:
        _forget_if_deleted(ctx.task_id)
        return
    status, changed_at = released
    if status == TaskStatus.CANCELLED:
        metrics.CANCEL_LATENCY.observe(max(0.0, (timezone.now() - changed_at).total_seconds()))


def _forget_if_deleted(task_id) -> None:
    """A task deleted while this execution wound down (cancelled, then deleted at once): remove
    what the job may have written to its files after the deletion removed them."""
    if not Task.objects.filter(pk=task_id).exists():
        remove_task_files(task_id)


def _fail(task_id, execution_id, ctx, category: str, message: str, trace: str) -> None:
    """Record a failure of this execution (retried automatically when the policy allows).

    When a user's cancel or pause got there first (the job raised before its next check), that
    decision stands: the execution lets go of the task as for any interruption, keeping its
    checkpoint, and the error goes into the task's log only.
    """
    logs = ctx.pending_logs() if ctx else []
    recorded = store.fail(
        task_id,
        execution_id,
        category=category,
        message=message,
        trace=trace,
        checkpoint=ctx.checkpoint_data if ctx else store.KEEP,
        logs=logs,
        action="worker.fail",
    )
    if not recorded and ctx is not None:
        ctx.restore_logs(logs)
        _release(ctx, reason=f"stopped by a user; the error raised after it is not a failure: {message[:500]}")
