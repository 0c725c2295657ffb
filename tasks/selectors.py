"""Reads that several doors share (API statistics, admin dashboard, health checks)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, F
from django.utils import timezone

from tasks.models import Task
from tasks.states import TaskStatus


def queue_depth() -> int:
    """Messages waiting in the django-q2 broker (not yet taken by a cluster)."""
    from django_q.brokers import get_broker

    try:
        return int(get_broker().queue_size() or 0)
    except Exception:
        return 0


def live_clusters() -> list[dict]:
    """The django-q2 clusters that reported in the last few seconds."""
    from django_q.status import Stat

    clusters = []
    try:
        stats = Stat.get_all()
    except Exception:
        return []
    for stat in stats:
        clusters.append(
            {
                "name": str(stat.cluster_id),
                "host": stat.host,
                "status": str(stat.status),
                "workers": len(stat.workers or []),
                "task_queue": int(stat.task_q_size or 0),
                "uptime_seconds": round(stat.uptime(), 1),
            }
        )
    return clusters


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def task_statistics() -> dict:
    """Counts by status and type, the last 24 h, durations per type, queue and clusters."""
    now = timezone.now()
    since = now - timedelta(hours=24)
    by_status = {status: 0 for status in TaskStatus.values}
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: {status: 0 for status in TaskStatus.values})
    for row in Task.objects.values("task_type", "status").annotate(n=Count("id")).order_by():
        by_status[row["status"]] += row["n"]
        by_type[row["task_type"]][row["status"]] += row["n"]
    created = Task.objects.filter(created_at__gte=since).count()
    finished = dict(
        Task.objects.filter(completed_at__gte=since, status__in=[TaskStatus.COMPLETED, TaskStatus.FAILED])
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    completed, failed = finished.get(TaskStatus.COMPLETED, 0), finished.get(TaskStatus.FAILED, 0)
    durations: dict[str, list[float]] = defaultdict(list)
    rows = (
        Task.objects.filter(status=TaskStatus.COMPLETED, completed_at__gte=since, started_at__isnull=False)
        .annotate(duration=F("completed_at") - F("started_at"))
        .values_list("task_type", "duration")
    )
    for task_type, duration in rows.iterator(chunk_size=5000):
        durations[task_type].append(duration.total_seconds())
    return {
        "by_status": by_status,
        "by_type": dict(by_type),
        "last_24h": {"created": created, "completed": completed, "failed": failed},
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else None,
        "duration_by_type": {
            task_type: {
                "count": len(values),
                "mean_seconds": round(sum(values) / len(values), 3),
                "p95_seconds": round(_percentile(values, 0.95), 3),
            }
            for task_type, values in durations.items()
        },
        "queue_depth": queue_depth(),
        "clusters": live_clusters(),
    }
