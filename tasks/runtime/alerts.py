"""Failure alerts: mail to ADMINS and an optional webhook when a task fails for good.

Sent from a separate django-q2 message after the failure commits, so a slow mail server or
webhook never blocks the worker and a failing alert never changes the task. Each task is
alerted at most once (a compare-and-set on ``alerted_at``).
"""

from __future__ import annotations

import json
import logging
import urllib.request

from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django_q.tasks import async_task

from tasks import store
from tasks.models import Task

logger = logging.getLogger("taskcenter.alerts")
WEBHOOK_TIMEOUT_SECONDS = 5


def alert_on_commit(task_id) -> None:
    def send_later():
        try:
            async_task("tasks.runtime.alerts.send_failure_alert", str(task_id), q_options={"timeout": 60})
        except Exception:  # the broker is down: the alert is lost, the task is not affected
            logger.exception("could not queue the failure alert for task %s", task_id)

    transaction.on_commit(send_later)


def send_failure_alert(task_id: str) -> str:
    """Send the alert for a finally-failed task once. Never raises."""
    try:
        if not store.mark_alerted(task_id):
            return "already alerted or not failed"
        task = Task.objects.select_related("batch").get(pk=task_id)
    except Exception:
        logger.exception("failure alert for task %s could not be prepared", task_id)
        return "error"
    payload = {
        "event": "task.failed",
        "task_id": str(task.pk),
        "task_type": task.task_type,
        "batch_code": task.batch.batch_code if task.batch else None,
        "error_category": task.error_category,
        "error_message": task.error_message,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "completed_at": task.completed_at.isoformat() if task.completed_at else None,
    }
    outcome = []
    try:
        mail_admins(
            f"task {task.task_type} {task.pk} failed ({task.error_category})",
            json.dumps(payload, ensure_ascii=False, indent=2),
            fail_silently=False,
        )
        outcome.append("mail")
    except Exception:
        logger.exception("failure alert mail for task %s failed", task_id)
    url = settings.TASKCENTER_ALERT_WEBHOOK
    if url:
        try:
            request = urllib.request.Request(
                url,
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                response.read()
            outcome.append("webhook")
        except Exception:
            logger.exception("failure alert webhook for task %s failed", task_id)
    return "+".join(outcome) or "nothing sent"
