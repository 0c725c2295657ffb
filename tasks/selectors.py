"""Reads that several doors share (API statistics, admin dashboard, health checks)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Exists, FloatField, Func, Max, OuterRef, Sum
from django.utils import timezone, translation

from tasks.models import Task, TaskType
from tasks.states import ACTIVE_STATUSES, TaskStatus


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
        # django-q2 reports its status as a translatable word; its English form names the code.
        with translation.override("en"):
            status = str(stat.status).lower()
        clusters.append(
            {
                "name": str(stat.cluster_id),
                "host": stat.host,
                "status": status,
                "workers": len(stat.workers or []),
                "task_queue": int(stat.task_q_size or 0),
                "uptime_seconds": round(stat.uptime(), 1),
            }
        )
    return clusters


def task_counts() -> dict[tuple[str, str], int]:
    """Number of tasks per (status, task type)."""
    rows = Task.objects.values_list("status", "task_type").annotate(n=Count("id")).order_by()
    return {(status, task_type): n for status, task_type, n in rows}


@dataclass(frozen=True)
class TaskTotals:
    """How many tasks there are per status, per task type, and per (status, task type) of the
    active statuses (pending, processing, paused)."""

    by_status: dict[str, int]
    by_type: dict[str, int]
    active: dict[tuple[str, str], int]


def tasks_by_status() -> dict[str, int]:
    """How many tasks there are per status (statuses without tasks left out)."""
    return dict(Task.objects.order_by().values_list("status").annotate(n=Count("*")))


def task_totals() -> TaskTotals:
    """The counts of :class:`TaskTotals`, in three queries."""
    # Not one query grouped by status and type: SQLite groups by sorting, and would look every
    # task up in its table to sort them all. Per status and per type, it reads the counts off an
    # index in its order; only the few active tasks' rows are read. PostgreSQL, which would hash
    # the one query, takes the same three: one way to count (docs/performance.md).
    tasks = Task.objects.order_by()
    return TaskTotals(
        by_status=tasks_by_status(),
        by_type=dict(tasks.values_list("task_type").annotate(n=Count("*"))),
        active={
            (status, task_type): n
            for status, task_type, n in tasks.filter(status__in=ACTIVE_STATUSES)
            .values_list("status", "task_type")
            .annotate(n=Count("*"))
        },
    )


def type_paused() -> Exists:
    """Whether a task's type is paused, for a query of tasks (a pending task of a paused type
    waits until the type is resumed)."""
    return Exists(TaskType.objects.filter(name=OuterRef("task_type"), paused=True))


def task_type_queues(names: list[str]) -> dict[str, dict]:
    """For each of the task types ``names``: ``paused``, ``max_concurrency`` (None: no limit),
    ``pending`` and ``running`` (processing) — in two queries."""
    queues = {name: {"paused": False, "max_concurrency": None, "pending": 0, "running": 0} for name in names}
    for name, paused, limit in TaskType.objects.filter(name__in=names).values_list("name", "paused", "max_concurrency"):
        queues[name].update(paused=paused, max_concurrency=limit)
    counts = (
        Task.objects.filter(status__in=[TaskStatus.PENDING, TaskStatus.PROCESSING], task_type__in=names)
        .order_by()
        .values_list("task_type", "status")
        .annotate(count=Count("pk"))
    )
    for task_type, status, count in counts:
        queues[task_type]["pending" if status == TaskStatus.PENDING else "running"] = count
    return queues


def worker_resources() -> list[dict]:
    """Per cluster host: worker processes reporting, their CPU (100 = one core), resident memory
    and tasks per minute, from the samples of the last few intervals."""
    from django.conf import settings

    from tasks.models import WorkerSample

    fresh = timezone.now() - timedelta(seconds=max(15.0, 3 * float(settings.TASKCENTER_RESOURCE_INTERVAL)))
    rows = (
        WorkerSample.objects.filter(updated_at__gte=fresh)
        .values("host")
        .annotate(
            workers=Count("id"),
            cpu_percent=Sum("cpu_percent"),
            memory_bytes=Sum("memory_bytes"),
            tasks_per_minute=Sum("tasks_per_minute"),
            updated_at=Max("updated_at"),
        )
        .order_by("host")
    )
    return [
        {
            "host": row["host"],
            "workers": row["workers"],
            "cpu_percent": round(row["cpu_percent"] or 0.0, 1),
            "memory_bytes": int(row["memory_bytes"] or 0),
            "tasks_per_minute": round(row["tasks_per_minute"] or 0.0, 2),
            "updated_at": row["updated_at"],
        }
        for row in rows
    ]


class SecondsBetween(Func):
    """``end - start`` in seconds, as a float, computed by the database itself: Django's own
    subtraction of two datetimes calls a Python function per row on SQLite, which dominated the
    statistics over a busy day (figures: docs/performance.md)."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    arg_joiner = " - "

    def __init__(self, start, end):
        super().__init__(end, start)

    def as_sqlite(self, compiler, connection, **extra):
        # Django keeps datetimes as UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]": whole seconds from
        # strftime of the first 19 characters, the fraction read from the text. (SQLite's date
        # functions round a fraction to milliseconds: given all of it, .9995 and more counts as
        # the next second, and the fraction would then be added twice.)
        end, start = (compiler.compile(expression) for expression in self.get_source_expressions())
        seconds = "(CAST(strftime('%%s', substr({0}, 1, 19)) AS REAL) + CAST('0' || substr({0}, 20) AS REAL))"
        sql = f"({seconds.format(end[0])} - {seconds.format(start[0])})"
        return sql, (*end[1], *end[1], *start[1], *start[1])


def _percentile(durations, count: int, q: float) -> float | None:
    """The ``q`` quantile in seconds of the ``count`` durations of the queryset ``durations``
    (annotated ``duration``, seconds), interpolated linearly between the two closest ranks
    (numpy's default); the database sorts, and only those two rows are read."""
    index = (count - 1) * q
    low = int(index)
    high = min(low + 1, count - 1)
    # Ranked from the longest: the database's sorter then keeps only the rows before the offset.
    longest_first = durations.order_by("-duration").values_list("duration", flat=True)
    found = list(longest_first[count - 1 - high : count - low])
    if not found:  # tasks deleted since they were counted
        return None
    upper, lower = found[0], found[-1]
    return lower + (upper - lower) * (index - low)


def duration_by_type(since) -> dict[str, dict]:
    """Per task type, the tasks completed since ``since``: their number, mean and p95 duration
    (seconds, rounded to ms), computed by the database — one query, then one per type."""
    completed = Task.objects.filter(
        status=TaskStatus.COMPLETED, completed_at__gte=since, started_at__isnull=False
    ).annotate(duration=SecondsBetween("started_at", "completed_at"))
    totals = completed.values_list("task_type").annotate(n=Count("id"), total=Sum("duration")).order_by()
    figures = {}
    for task_type, count, total in totals:
        p95 = _percentile(completed.filter(task_type=task_type), count, 0.95)
        figures[task_type] = {
            "count": count,
            "mean_seconds": round(total / count, 3),
            "p95_seconds": None if p95 is None else round(p95, 3),
        }
    return figures


def task_statistics() -> dict:
    """Counts by status and type, the last 24 h, durations per type, queue and clusters."""
    now = timezone.now()
    since = now - timedelta(hours=24)
    by_status = {status: 0 for status in TaskStatus.values}
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: {status: 0 for status in TaskStatus.values})
    for (status, task_type), count in task_counts().items():
        by_status[status] += count
        by_type[task_type][status] += count
    created = Task.objects.filter(created_at__gte=since).count()
    finished = dict(
        Task.objects.filter(completed_at__gte=since, status__in=[TaskStatus.COMPLETED, TaskStatus.FAILED])
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    completed, failed = finished.get(TaskStatus.COMPLETED, 0), finished.get(TaskStatus.FAILED, 0)
    return {
        "by_status": by_status,
        "by_type": dict(by_type),
        "last_24h": {"created": created, "completed": completed, "failed": failed},
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else None,
        "duration_by_type": duration_by_type(since),
        "queue_depth": queue_depth(),
        "clusters": live_clusters(),
        "resources": worker_resources(),
    }
