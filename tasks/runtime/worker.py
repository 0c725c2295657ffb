"""The one django-q2 entry point: ``run_task(task_id)`` claims a task, runs its job, records the end.

Claiming is a compare-and-set ``pending → processing`` that stamps a fresh ``execution_id``
(the fencing token) and requires that no earlier execution still holds the task. A duplicate
delivery, an early delivery of a delayed retry, or a message for a task that moved on changes
nothing and returns.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import traceback
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_q.exceptions import TimeoutException

from taskcenter import metrics
from taskcenter.errors import IllegalTransition, InvalidInput, NotFound
from tasks.models import Task, TaskLog
from tasks.runtime import hotpath, resources
from tasks.runtime.context import TaskContext
from tasks.runtime.errors import Cancelled, ClaimLost, JobError, Paused, TimedOut
from tasks.runtime.files import remove_task_files
from tasks.runtime.queue import hand_over
from tasks.runtime.registry import JobType, get_job_type
from tasks.services import StaleExecution, transition
from tasks.states import RETRYABLE_CATEGORIES, ErrorCategory, LogLevel, TaskStatus, Trigger

logger = logging.getLogger("taskcenter.worker")


_HOST = socket.gethostname()


def worker_name() -> str:
    # Worker processes are forked: read the pid at call time.
    return f"{_HOST}:{os.getpid()}"


def run_task(task_id: str) -> str:
    """Run one task to its end (or to its interruption). Returns what happened, for django-q2."""
    try:
        task_id = uuid.UUID(str(task_id))
    except ValueError:  # a malformed id in a message: nothing to run
        logger.warning("ignoring message for malformed task id %r", task_id)
        return "ignored"
    execution_id = uuid.uuid4()
    job_task = hotpath.claim(task_id, execution_id, worker_name())
    if job_task is None:
        # Not claimable as a due pending task: the general path says why (or wins a late race).
        claimed = _claim(task_id, execution_id)
        if claimed != "claimed":
            return claimed
        job_task = Task.objects.get(pk=task_id)
    resources.count_task()  # claimed: a run, whatever its outcome (duplicates and refusals are not)
    try:
        job = get_job_type(job_task.task_type)
    except InvalidInput:  # a type that was unregistered since the task was created
        job = None
    if job is None:
        _fail(job_task.pk, execution_id, None, ErrorCategory.CONFIG, f"unknown task type {job_task.task_type!r}", "")
        return "failed"
    ctx = TaskContext(task=job_task, job=job, execution_id=execution_id)
    started = time.monotonic()
    try:
        result = job.func(ctx)
    except (Cancelled, Paused) as interrupt:
        _release(ctx, reason=str(interrupt))
        return "interrupted"
    except ClaimLost:
        _forget_if_deleted(job_task.pk)
        return "claim lost"
    except (TimedOut, TimeoutException) as exc:
        _fail(job_task.pk, execution_id, ctx, ErrorCategory.TIMEOUT, f"timeout: {exc}", traceback.format_exc(), job)
        return "failed"
    except JobError as exc:
        message = str(exc) or exc.__class__.__name__
        _fail(job_task.pk, execution_id, ctx, exc.category, message, traceback.format_exc(), job)
        return "failed"
    except Exception as exc:
        message = f"{exc.__class__.__name__}: {exc}"
        _fail(job_task.pk, execution_id, ctx, ErrorCategory.SYSTEM, message, traceback.format_exc(), job)
        return "failed"
    try:
        completed = _complete(ctx, result)
    except JobError as exc:  # a completion hook refused it: rolled back with everything it wrote
        _fail(job_task.pk, execution_id, ctx, exc.category, str(exc), traceback.format_exc(), job)
        return "failed"
    if completed:
        metrics.TASK_DURATION.labels(job.name).observe(time.monotonic() - started)
    return "completed"


def _claim(task_id: uuid.UUID, execution_id: uuid.UUID) -> str:
    now = timezone.now()
    try:
        transition(
            task_id,
            TaskStatus.PROCESSING,
            action="worker.claim",
            assume=TaskStatus.PENDING,
            # No earlier execution may still hold it, and a delayed retry is not due before its time.
            guard=Q(execution_id__isnull=True) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)),
            fields={
                "execution_id": execution_id,
                "worker": worker_name(),
                "heartbeat_at": now,
                "started_at": Coalesce(F("started_at"), now),
                "next_attempt_at": None,
                "error_message": "",
                "error_category": None,
            },
            details={"execution_id": str(execution_id), "worker": worker_name()},
        )
    except NotFound:
        return "gone"
    except (IllegalTransition, StaleExecution):
        return "not claimable"
    return "claimed"


def _complete(ctx: TaskContext, result) -> bool:
    """Record the result; False when a user's cancel or pause got there first (no result). When a
    completion hook raises, nothing is written and the run's buffered logs stay for the failure."""
    logs = ctx.pending_logs()
    try:
        recorded = hotpath.complete(
            ctx.task_id,
            ctx.execution_id,
            result=result,
            checkpoint=ctx.checkpoint_data,
            logs=logs,
            hooks=ctx.completion_hooks,
        ) or _complete_by_transition(ctx, result, logs)
    except Exception:
        ctx.restore_logs(logs)
        raise
    if not recorded:
        # Cancelled or paused (or cancelled and deleted) between the job's last check and its
        # return: that decision wins, and no result is written.
        ctx.restore_logs(logs)
        _release(ctx, reason="stopped before completion was recorded")
    return recorded


def _complete_by_transition(ctx: TaskContext, result, logs: list[TaskLog]) -> bool:
    """The general path of :func:`_complete`, which says why the fast one changed nothing; False
    when the execution no longer holds a processing task."""
    try:
        with transaction.atomic():
            transition(
                ctx.task_id,
                TaskStatus.COMPLETED,
                action="worker.complete",
                execution_id=ctx.execution_id,
                assume=TaskStatus.PROCESSING,
                fields={
                    "result": result,
                    "progress": 100.0,
                    "completed_at": timezone.now(),
                    "execution_id": None,
                    "heartbeat_at": None,
                    "checkpoint": ctx.checkpoint_data,
                },
            )
            ctx.finished_stage_updates()
            TaskLog.objects.bulk_create(logs)
            for hook in ctx.completion_hooks:
                hook()
    except (IllegalTransition, StaleExecution, NotFound):
        return False
    return True


def _release(ctx: TaskContext, *, reason: str) -> None:
    """Save the checkpoint and let go of a task a user paused or cancelled."""
    with transaction.atomic():
        released = (
            Task.objects.filter(pk=ctx.task_id, execution_id=ctx.execution_id)
            .exclude(status=TaskStatus.PROCESSING)
            .update(
                execution_id=None,
                heartbeat_at=None,
                checkpoint=ctx.checkpoint_data,
                worker="",
                # A paused task shows the progress its checkpoint holds (the resume continues
                # from there); a cancelled one keeps what it showed when it was cancelled.
                progress=Case(When(status=TaskStatus.PAUSED, then=Value(ctx.progress_value)), default=F("progress")),
            )
        )
        if released:
            logs = ctx.pending_logs()
            logs.append(
                TaskLog(
                    task_id=ctx.task_id,
                    timestamp=timezone.now(),
                    level=LogLevel.INFO,
                    message=f"execution stopped: {reason}",
                    data={"checkpoint": ctx.checkpoint_data},
                )
            )
            TaskLog.objects.bulk_create(logs)
    if not released:
        _forget_if_deleted(ctx.task_id)
        return
    row = Task.objects.filter(pk=ctx.task_id).values_list("status", "updated_at").first()
    status, changed_at = row if row else (None, None)
    if status == TaskStatus.CANCELLED and changed_at:
        metrics.CANCEL_LATENCY.observe(max(0.0, (timezone.now() - changed_at).total_seconds()))
    # Resumed (or retried) while this execution was winding down: its claim attempt was refused
    # because we still held the task, so hand it over again now that we let go.
    if status == TaskStatus.PENDING:
        hand_over(ctx.task_id, timeout_seconds=ctx.job.timeout_seconds)


def _forget_if_deleted(task_id) -> None:
    """A task deleted while this execution wound down (cancelled, then deleted at once): remove
    what the job may have written to its files after the deletion removed them."""
    if not Task.objects.filter(pk=task_id).exists():
        remove_task_files(task_id)


def retry_delay(job: JobType, attempt: int) -> float:
    """Exponential backoff with full jitter: up to ``base * 2**(attempt-1)`` s, capped."""
    ceiling = min(job.retry_backoff_max, job.retry_backoff_base * (2 ** max(attempt - 1, 0)))
    scale = float(getattr(settings, "TASKCENTER_RETRY_BACKOFF_SCALE", 1.0))
    return scale * (ceiling / 2 + random.uniform(0, ceiling / 2))


def _fail(task_id, execution_id, ctx, category: str, message: str, trace: str, job: JobType | None = None) -> None:
    """Record a failure of this execution; schedule an automatic retry when the policy allows.

    When a user's cancel or pause got there first (the job raised before its next check), that
    decision stands: the execution lets go of the task as for any interruption, keeping its
    checkpoint, and the error goes into the task's log only.
    """
    logs = ctx.pending_logs() if ctx else []
    recorded = fail_task(
        task_id,
        category=category,
        message=message,
        trace=trace,
        execution_id=execution_id,
        checkpoint=ctx.checkpoint_data if ctx else None,
        pending_logs=logs,
        job=job,
        action="worker.fail",
    )
    if not recorded and ctx is not None:
        ctx.restore_logs(logs)
        _release(ctx, reason=f"stopped by a user; the error raised after it is not a failure: {message[:500]}")


def fail_task(
    task_id,
    *,
    category: str,
    message: str,
    trace: str = "",
    execution_id: uuid.UUID,
    checkpoint: dict | None = None,
    pending_logs: list[TaskLog] | None = None,
    job: JobType | None = None,
    guard: Q | None = None,
    action: str,
) -> bool:
    """processing → failed for the execution ``execution_id``, then → pending again with backoff
    when ``category`` is retryable and attempts remain; otherwise the failure is final and the
    alert goes out after commit. Used by the worker and by the watchdog (worker_lost).

    ``guard`` is a further condition on the row (the watchdog's: the heartbeat is still stale).
    Returns False when the execution no longer held the task, or ``guard`` failed (nothing changed).
    """
    now = timezone.now()
    fields = {
        "error_message": message[:10000],
        "error_category": category,
        "completed_at": now,
        "execution_id": None,
        "heartbeat_at": None,
        "worker": "",
    }
    if checkpoint is not None:
        fields["checkpoint"] = checkpoint
    with transaction.atomic():
        try:
            transition(
                task_id,
                TaskStatus.FAILED,
                action=action,
                execution_id=execution_id,
                assume=TaskStatus.PROCESSING,
                guard=guard,
                fields=fields,
                details={"error_category": category, "error_message": message[:500]},
            )
        except (IllegalTransition, StaleExecution, NotFound):
            return False
        logs = list(pending_logs or [])
        logs.append(
            TaskLog(
                task_id=task_id,
                timestamp=now,
                level=LogLevel.ERROR,
                message=message[:10000],
                data={"error_category": category, "traceback": trace} if trace else {"error_category": category},
            )
        )
        TaskLog.objects.bulk_create(logs)
        task = Task.objects.get(pk=task_id)
        if job is None:
            try:
                job = get_job_type(task.task_type)
            except InvalidInput:
                job = None
        transaction.on_commit(lambda: metrics.TASK_FAILURES.labels(task.task_type, category).inc())
        if job is not None and category in RETRYABLE_CATEGORIES and task.attempt < task.max_attempts:
            delay = retry_delay(job, task.attempt)
            transition(
                task_id,
                TaskStatus.PENDING,
                action="task.auto_retry",
                fields={
                    "attempt": F("attempt") + 1,
                    "trigger": Trigger.RETRY,
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "completed_at": None,
                },
                details={"delay_seconds": round(delay, 3), "after_attempt": task.attempt},
            )
            transaction.on_commit(lambda: metrics.TASK_RETRIES.labels(task.task_type, category).inc())
            TaskLog.objects.create(
                task_id=task_id,
                timestamp=now,
                level=LogLevel.WARN,
                message=f"attempt {task.attempt} failed ({category}); retrying in {delay:.1f} s",
            )
        else:
            from tasks.runtime.alerts import alert_on_commit

            alert_on_commit(task_id)
    return True
