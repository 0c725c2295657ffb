"""The admin dashboard (on the admin index): tasks now, running, failures, throughput, clusters."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from tasks.admin_helpers import progress_bar, status_badge
from tasks.models import Task
from tasks.selectors import live_clusters, queue_depth, worker_resources
from tasks.states import ClusterStatus, TaskStatus

register = template.Library()

CHART_WIDTH, CHART_HEIGHT = 480, 120


def completed_per_hour(now) -> list[tuple]:
    """(hour, count) for the last 24 hours, oldest first, zero-filled."""
    start = (now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    rows = (
        Task.objects.filter(status=TaskStatus.COMPLETED, completed_at__gte=start)
        .annotate(hour=TruncHour("completed_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {row["hour"]: row["n"] for row in rows}
    hours = [start + timedelta(hours=i) for i in range(24)]
    return [(hour, counts.get(hour, 0)) for hour in hours]


def bars(series: list[tuple]) -> list[dict]:
    peak = max((n for _, n in series), default=0) or 1
    width = CHART_WIDTH / len(series)
    return [
        {
            "x": round(i * width + 1, 1),
            "w": round(width - 2, 1),
            "h": round(CHART_HEIGHT * n / peak, 1),
            "y": round(CHART_HEIGHT - CHART_HEIGHT * n / peak, 1),
            "n": n,
            "hour": timezone.localtime(hour).strftime("%H:00"),
        }
        for i, (hour, n) in enumerate(series)
    ]


@register.inclusion_tag("taskcenter/dashboard.html")
def taskcenter_dashboard():
    now = timezone.now()
    by_status = dict(Task.objects.values_list("status").annotate(n=Count("id")).order_by())
    running = list(
        Task.objects.filter(status=TaskStatus.PROCESSING).select_related("batch").order_by("started_at")[:20]
    )
    failures = list(
        Task.objects.filter(status=TaskStatus.FAILED, completed_at__gte=now - timedelta(hours=24))
        .select_related("batch")
        .order_by("-completed_at")[:20]
    )
    return {
        "statuses": [(status_badge(value), by_status.get(value, 0)) for value in TaskStatus.values],
        "running": [(task, progress_bar(task.progress, task_id=task.pk, status=task.status)) for task in running],
        "failures": failures,
        "bars": bars(completed_per_hour(now)),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "clusters": [{**cluster, "status": ClusterStatus(cluster["status"]).label} for cluster in live_clusters()],
        "resources": worker_resources(),
        "queue_depth": queue_depth(),
    }
