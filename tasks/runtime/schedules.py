"""Functions that django-q2 schedules call (created by migration tasks/0003_schedules)."""

from __future__ import annotations

from django.conf import settings

from tasks.actors import SYSTEM
from tasks.runtime.watchdog import sweep
from tasks.states import ACTIVE_STATUSES, Trigger


def run_watchdog() -> dict:
    return sweep()


def start_purge() -> str:
    """Create the daily ``maintenance.purge`` task (skipped while one is still active)."""
    from tasks.models import Task
    from tasks.services import task_create

    if Task.objects.filter(task_type="maintenance.purge", status__in=ACTIVE_STATUSES).exists():
        return "a purge is already active"
    task = task_create(
        actor=SYSTEM,
        task_type="maintenance.purge",
        params={"days": settings.TASKCENTER_RETENTION_DAYS},
        trigger=Trigger.SCHEDULE,
    )
    return str(task.pk)
