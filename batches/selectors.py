"""Reads about batches shared by the API and the admin."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Subquery

from batches.models import Batch
from tasks.models import Task


def batches_with_latest_task():
    """Batches annotated with their task count and latest task (a fixed number of queries)."""
    latest = Task.objects.filter(batch=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        Batch.objects.select_related("created_by")
        .annotate(
            task_count=Count("tasks"),
            latest_task_id=Subquery(latest.values("pk")[:1]),
            latest_task_status=Subquery(latest.values("status")[:1]),
            latest_task_progress=Subquery(latest.values("progress")[:1]),
            latest_task_created_at=Subquery(latest.values("created_at")[:1]),
            latest_task_completed_at=Subquery(latest.values("completed_at")[:1]),
        )
        .order_by("-created_at", "-pk")
    )
