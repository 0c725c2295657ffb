"""The operators' dashboard (``/admin/dashboard/``): what runs, waits and fails, per task type,
with throughput charts and the worker clusters — in a fixed number of queries, whatever the
number of tasks, types or workers. The page refreshes its body from ``?fragment=1``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, timedelta
from itertools import pairwise

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Sum
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tasks.admin_helpers import BADGE_COLOURS, progress_bar, status_badge
from tasks.models import Task, TaskStage, TaskType
from tasks.runtime.registry import job_types
from tasks.selectors import SecondsBetween, live_clusters, queue_depth, task_totals, worker_resources
from tasks.states import ClusterStatus, StageStatus, TaskStatus


@dataclass(frozen=True)
class Window:
    """A span of the charts: how far back, and the width of one bar."""

    label: str
    span: timedelta
    bucket: timedelta
    #: The time axis labels the bars starting on a multiple of this many local hours.
    label_hours: int
    label_format: str


WINDOWS = {
    "24h": Window(gettext_lazy("24 hours"), timedelta(hours=24), timedelta(hours=1), 3, "%H:00"),
    "7d": Window(gettext_lazy("7 days"), timedelta(days=7), timedelta(hours=6), 24, "%m-%d"),
}
#: How many running tasks and failures the page lists (the rest are a link away).
RUNNING_SHOWN = 20
FAILURES_SHOWN = 10
#: Seconds between two refreshes of an open dashboard.
REFRESH_SECONDS = 3


def changelist_url(**filters) -> str:
    """The tasks list filtered by ``filters`` (its own query parameters)."""
    return reverse("admin:tasks_task_changelist") + ("?" + urlencode(filters) if filters else "")


def window_start(now, window: Window):
    """The start of the first bar, so that the bars begin on the local clock's whole hours (a
    multiple of the bar's hours) and the last one holds ``now``."""
    hours = int(window.bucket.total_seconds() // 3600)
    local = timezone.localtime(now)
    bar_start = local.replace(hour=local.hour - local.hour % hours, minute=0, second=0, microsecond=0)
    return bar_start.astimezone(UTC) + window.bucket - window.span


def finished_by_bucket(start, window: Window) -> list[tuple[str, str, int, int, float]]:
    """(task type, status, bar index, tasks, seconds run) of the tasks completed or failed in
    each bar of ``window.bucket`` from ``start`` (those with tasks), in one query."""
    grouped = (
        Task.objects.filter(status__in=[TaskStatus.COMPLETED, TaskStatus.FAILED])
        .order_by()
        .values_list("task_type", "status")
        # COUNT(*), not of the id: the id is not in the index, and counting it reads each row.
        .annotate(n=Count("*"), seconds=Sum(RunSeconds("started_at", "completed_at")), first=Min("completed_at"))
    )
    edges = [start + n * window.bucket for n in range(round(window.span / window.bucket) + 1)]
    # A grouped SELECT per bar, each a range of task_finished_idx (which holds every column they
    # read): grouped by a bar number computed per task, SQLite would sort every task of the window.
    bars = [grouped.filter(completed_at__gte=begins, completed_at__lt=ends) for begins, ends in pairwise(edges)]
    rows = bars[0].union(*bars[1:], all=True).order_by()  # not the model's ordering (Django 6.1 applies it)
    return [
        (task_type, status, (first - start) // window.bucket, n, seconds or 0.0)
        for task_type, status, n, seconds, first in rows
    ]


class RunSeconds(SecondsBetween):
    """:class:`~tasks.selectors.SecondsBetween`, on SQLite to the millisecond only (the precision
    of its date functions), at under half the cost per row: enough for a mean shown to 0.1 s."""

    def as_sqlite(self, compiler, connection, **extra):
        (end, end_params), (start, start_params) = (compiler.compile(e) for e in self.get_source_expressions())
        return f"((julianday({end}) - julianday({start})) * 86400.0)", (*end_params, *start_params)


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k that is at least ``value`` (the y axis' top)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


#: Charts are drawn in these units and scaled to the page's width: the wide chart of all types,
#: and one per type (half as wide, so its text stays as large once two sit side by side).
WIDE, NARROW = (1000, 160), (500, 120)
AXIS_LEFT, AXIS_TOP, AXIS_BOTTOM = 44, 10, 20


def svg(coordinate: float) -> str:
    """A coordinate of the SVG, to a tenth, as text: a template localizes a number (about a quarter
    of the dashboard's rendering went to it, and a decimal comma is no SVG)."""
    return str(round(coordinate, 1))


def bar_chart(start, window: Window, completed: list[int], failed: list[int], size=WIDE) -> dict:
    """The SVG geometry of stacked bars (completed below, failed above), with a labelled y axis
    (0, half, top) and time labels in the display time zone."""
    bars = len(completed)
    top = nice_ceiling(max((c + f for c, f in zip(completed, failed, strict=True)), default=0))
    width, height = size
    plot_width, plot_height = width - AXIS_LEFT, height - AXIS_TOP - AXIS_BOTTOM
    base = AXIS_TOP + plot_height
    step = plot_width / bars
    scale = plot_height / top
    out = []
    for i, (done, lost) in enumerate(zip(completed, failed, strict=True)):
        begins = timezone.localtime(start + i * window.bucket)
        ends = timezone.localtime(start + (i + 1) * window.bucket)
        x = AXIS_LEFT + i * step
        out.append(
            {
                "x": svg(x + 1),
                "w": svg(step - 2),
                "done_y": svg(base - done * scale),
                "done_h": svg(done * scale),
                "lost_y": svg(base - (done + lost) * scale),
                "lost_h": svg(lost * scale),
                "title": _("%(start)s–%(end)s: %(completed)d completed, %(failed)d failed")
                % {
                    "start": begins.strftime("%m-%d %H:%M"),
                    "end": ends.strftime("%H:%M"),
                    "completed": done,
                    "failed": lost,
                },
                "label": begins.strftime(window.label_format) if begins.hour % window.label_hours == 0 else "",
                "label_x": svg(x),
            }
        )
    values = (0, top // 2, top) if top % 2 == 0 else (0, top)  # no half-way line at 2 of 5
    ticks = [{"value": value, "y": svg(base - value * scale)} for value in values]
    return {
        "bars": out,
        "ticks": ticks,
        "width": width,
        "height": height,
        "plot_top": AXIS_TOP,
        "plot_height": plot_height,
        "axis_left": AXIS_LEFT,
        "label_y": height - 4,
        "completed": sum(completed),
        "failed": sum(failed),
    }


def running_tasks() -> list[dict]:
    """The longest-running processing tasks, each with its current stage and estimated end."""
    from tasks.api.serializers import estimate_completion

    tasks = list(
        Task.objects.filter(status=TaskStatus.PROCESSING).select_related("batch").order_by("started_at")[:RUNNING_SHOWN]
    )
    stages: dict = {}
    for task_id, name in (
        TaskStage.objects.filter(task__in=tasks, status=StageStatus.PROCESSING)
        .order_by("position")
        .values_list("task", "name")
    ):
        stages.setdefault(task_id, name)
    return [
        {
            "task": task,
            "stage": stages.get(task.pk, ""),
            "bar": progress_bar(task.progress, status=task.status),
            "eta": estimate_completion(task.status, task.started_at, task.progress),
        }
        for task in tasks
    ]


def status_tiles(by_status: dict[str, int]) -> list[dict]:
    """Each status's badge and count, linking to the tasks list filtered by it."""
    return [
        {
            "badge": status_badge(status),
            "count": by_status.get(status, 0),
            "colour": BADGE_COLOURS[status],
            "url": changelist_url(status=status),
        }
        for status in TaskStatus.values
    ]


def dashboard_context(window_key: str) -> dict:
    """Everything the dashboard shows, for the chart span ``window_key`` (a key of WINDOWS)."""
    window = WINDOWS[window_key]
    now = timezone.now()
    totals = task_totals()
    names = sorted({job.name for job in job_types()} | set(totals.by_type))
    controls = {row.name: row for row in TaskType.objects.filter(name__in=names)}
    oldest = dict(
        Task.objects.filter(status=TaskStatus.PENDING)
        .values_list("task_type")
        .annotate(oldest=Min("created_at"))
        .order_by()
    )

    start = window_start(now, window)
    bars = round(window.span / window.bucket)
    series = {name: {"completed": [0] * bars, "failed": [0] * bars, "seconds": 0.0} for name in names}
    for task_type, status, bar, n, seconds in finished_by_bucket(start, window):
        if 0 <= bar < bars:
            series.setdefault(task_type, {"completed": [0] * bars, "failed": [0] * bars, "seconds": 0.0})
            series[task_type][status][bar] += n
            if status == TaskStatus.COMPLETED:
                series[task_type]["seconds"] += seconds
    every_type = {
        key: [sum(s[key][i] for s in series.values()) for i in range(bars)] for key in ("completed", "failed")
    }

    types = []
    for name in names:
        control = controls.get(name)
        done, lost = sum(series[name]["completed"]), sum(series[name]["failed"])
        types.append(
            {
                "name": name,
                "paused": bool(control and control.paused),
                "limit": control.max_concurrency if control else None,
                "pending": totals.active.get((TaskStatus.PENDING, name), 0),
                "running": totals.active.get((TaskStatus.PROCESSING, name), 0),
                "paused_tasks": totals.active.get((TaskStatus.PAUSED, name), 0),
                "total": totals.by_type.get(name, 0),
                "oldest": oldest.get(name),
                "completed": done,
                "failed": lost,
                "mean_seconds": series[name]["seconds"] / done if done else None,
                "urls": {
                    "all": changelist_url(task_type=name),
                    "pending": changelist_url(task_type=name, status=TaskStatus.PENDING),
                    "running": changelist_url(task_type=name, status=TaskStatus.PROCESSING),
                    "paused": changelist_url(task_type=name, status=TaskStatus.PAUSED),
                    "completed": changelist_url(task_type=name, status=TaskStatus.COMPLETED),
                    "failed": changelist_url(task_type=name, status=TaskStatus.FAILED),
                },
                "chart": bar_chart(start, window, series[name]["completed"], series[name]["failed"], NARROW),
            }
        )

    by_status = {status: totals.by_status.get(status, 0) for status in TaskStatus.values}
    failures = list(
        Task.objects.filter(status=TaskStatus.FAILED, completed_at__gte=start)
        .select_related("batch")
        .order_by("-completed_at")[:FAILURES_SHOWN]
    )
    return {
        "now": now,
        "time_zone": timezone.get_current_timezone_name(),
        "window_key": window_key,
        "window": window,
        "windows": [(key, option.label) for key, option in WINDOWS.items()],
        "statuses": status_tiles(by_status),
        "total": sum(by_status.values()),
        "types": types,
        "chart": bar_chart(start, window, every_type["completed"], every_type["failed"]),
        "running": running_tasks(),
        "running_total": by_status[TaskStatus.PROCESSING],
        "running_url": changelist_url(status=TaskStatus.PROCESSING),
        "failures": failures,
        "failures_url": changelist_url(status=TaskStatus.FAILED),
        "queue_depth": queue_depth(),
        "clusters": [{**cluster, "status": ClusterStatus(cluster["status"]).label} for cluster in live_clusters()],
        "resources": worker_resources(),
        "refresh_seconds": REFRESH_SECONDS,
    }


def dashboard_view(request):
    """The dashboard page, or with ``?fragment=1`` only its live body (what the page's script
    swaps in every few seconds). Needs ``tasks.view_task``; served through the admin site's
    ``admin_view`` (staff login, never cached)."""
    if not request.user.has_perm("tasks.view_task"):
        raise PermissionDenied
    window_key = request.GET.get("window", "24h")
    if window_key not in WINDOWS:
        window_key = "24h"
    context = dashboard_context(window_key)
    if request.GET.get("fragment") == "1":
        return TemplateResponse(request, "taskcenter/dashboard_body.html", context)
    from django.contrib import admin

    return TemplateResponse(
        request,
        "taskcenter/dashboard_page.html",
        # Full width: the dashboard's tables and charts need the room the app list would take.
        {**admin.site.each_context(request), **context, "title": _("Dashboard"), "is_nav_sidebar_enabled": False},
    )
