"""Built-in job types: ``canary`` (end-to-end test workload) and ``maintenance.purge`` (retention)."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from taskcenter.api.serializers import StrictFloatField, StrictIntegerField
from tasks import store
from tasks.models import AuditLog, Task
from tasks.runtime.errors import RetryableError
from tasks.runtime.files import sweep_task_files
from tasks.runtime.registry import register
from tasks.states import FINISHED_STATUSES

#: A canary step longer than this checks for cancel/pause inside the step.
CHECK_EVERY_SECONDS = 0.1


class CanaryParams(serializers.Serializer):
    seconds = StrictFloatField(min_value=0, max_value=3600, default=1.0, help_text="Total CPU time to burn.")
    steps = StrictIntegerField(min_value=1, max_value=100000, default=10, help_text="Equal slices of work.")
    fail_at_step = StrictIntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text="Step (1-based) at which to fail; none, or beyond steps: never fails.",
    )
    fail_times = StrictIntegerField(
        min_value=0, max_value=100, default=0, help_text="The first N attempts fail at fail_at_step (retryable)."
    )


def _burn(seconds: float, ctx) -> None:
    """Keep one core busy for ``seconds`` of wall time, checking for cancel/pause as it goes."""
    end = time.perf_counter() + seconds
    next_check = time.perf_counter() + CHECK_EVERY_SECONDS
    digest = b"taskcenter"
    while True:
        for _ in range(200):
            digest = hashlib.sha256(digest).digest()
        now = time.perf_counter()
        if now >= end:
            return
        if now >= next_check:
            ctx.check()
            next_check = now + CHECK_EVERY_SECONDS


def _trace(task_id, step: int) -> None:
    trace_dir = settings.TASKCENTER_CANARY_TRACE_DIR
    if trace_dir:
        with open(Path(trace_dir) / f"{task_id}.steps", "a") as trace:
            trace.write(f"{step} {os.getpid()}\n")


@register(
    "canary",
    stages=[("burn", 1.0)],
    description="Synthetic workload to test the installation end to end: burns CPU in equal steps.",
    timeout_seconds=3700,
    max_attempts=3,
    retry_backoff_base=2.0,
    retry_backoff_max=60.0,
    params=CanaryParams,
)
def canary(ctx):
    steps = int(ctx.params.get("steps", 10))
    seconds = float(ctx.params.get("seconds", 1.0))
    fail_at = ctx.params.get("fail_at_step")
    fail_times = int(ctx.params.get("fail_times", 0))
    start = int(ctx.checkpoint.get("next_step", 0))
    ctx.stage("burn")
    if start:
        ctx.log("info", f"continuing from step {start} of {steps}", resumed_from=start)
    ctx.progress(start, steps)
    for step in range(start, steps):
        if fail_at is not None and step + 1 == fail_at and ctx.attempt <= fail_times:
            raise RetryableError(f"canary: injected failure at step {fail_at} (attempt {ctx.attempt})")
        if seconds:
            _burn(seconds / steps, ctx)
        _trace(ctx.task_id, step + 1)
        ctx.save_checkpoint({"next_step": step + 1})
        ctx.progress(step + 1, steps)
    return {"steps": steps, "steps_done": steps, "resumed_from": start, "attempt": ctx.attempt}


def retention_days() -> int:
    return settings.TASKCENTER_RETENTION_DAYS


class PurgeParams(serializers.Serializer):
    days = StrictIntegerField(
        min_value=1,
        max_value=36500,
        default=retention_days,
        help_text="Delete finished tasks older than this many days (default: TASKCENTER_RETENTION_DAYS).",
    )
    chunk_size = StrictIntegerField(min_value=1, max_value=5000, default=500)


@register(
    "maintenance.purge",
    stages=[("purge", 1.0)],
    description=(
        "Deletes finished tasks and their logs older than N days, and audit rows older than the audit retention,"
        " in chunks."
    ),
    timeout_seconds=3600,
    max_attempts=2,
    params=PurgeParams,
    permissions=("tasks.delete_task",),
)
def purge(ctx):
    now = timezone.now()
    cutoff = now - timedelta(days=int(ctx.params["days"]))
    audit_cutoff = now - timedelta(days=settings.TASKCENTER_AUDIT_RETENTION_DAYS)
    chunk = int(ctx.params.get("chunk_size", 500))
    old = Task.objects.filter(status__in=FINISHED_STATUSES, completed_at__lt=cutoff)
    # Unordered: read through the created_at index (the model's newest-first order would scan
    # every newer row first).
    old_audit = AuditLog.objects.filter(created_at__lt=audit_cutoff).order_by()
    total = old.count() + old_audit.count()
    ctx.stage("purge")
    deleted_tasks = int(ctx.checkpoint.get("deleted_tasks", 0))
    deleted_logs = int(ctx.checkpoint.get("deleted_logs", 0))
    deleted_audit = int(ctx.checkpoint.get("deleted_audit_rows", 0))
    done = 0

    def save_progress():
        ctx.save_checkpoint(
            {"deleted_tasks": deleted_tasks, "deleted_logs": deleted_logs, "deleted_audit_rows": deleted_audit}
        )
        ctx.progress(done, total)

    while True:
        ids = list(old.values_list("pk", flat=True)[:chunk])
        if not ids:
            break
        deleted_logs += store.delete_dependents(ids)
        tasks, logs = store.delete_finished(ids)  # only those still finished
        deleted_logs += logs
        deleted_tasks += tasks
        done += len(ids)
        save_progress()
    while ids := list(old_audit.values_list("pk", flat=True)[:chunk]):
        with transaction.atomic():
            deleted_audit += AuditLog.objects.filter(pk__in=ids).delete()[0]
        done += len(ids)
        save_progress()
    # Deleting a task removes its files on the machine that deleted it; these are the rest.
    swept = sweep_task_files(paused_before=cutoff)
    ctx.log(
        "info",
        f"purged {deleted_tasks} tasks and {deleted_logs} log lines finished before {cutoff.isoformat()}"
        f" and {deleted_audit} audit rows written before {audit_cutoff.isoformat()}",
    )
    return {
        "cutoff": cutoff.isoformat(),
        "audit_cutoff": audit_cutoff.isoformat(),
        "deleted_tasks": deleted_tasks,
        "deleted_logs": deleted_logs,
        "deleted_audit_rows": deleted_audit,
        "swept_file_dirs": swept,
    }
