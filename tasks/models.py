"""Tasks (one execution of a job), their stages, logs, and the audit log of every state change."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

from tasks.fields import AppendOnlyIdField
from tasks.states import (
    INTERVAL_SECONDS_MAX,
    INTERVAL_SECONDS_MIN,
    MAX_CONCURRENCY_MAX,
    MAX_CONCURRENCY_MIN,
    PRIORITY_DEFAULT,
    ErrorCategory,
    LogLevel,
    StageStatus,
    TaskStatus,
    Trigger,
)


class Task(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("task id"))
    batch = models.ForeignKey(
        "batches.Batch",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tasks",
        verbose_name=_("batch"),
        db_index=False,  # task_batch_created_idx serves lookups by batch
    )
    task_type = models.CharField(_("task type"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    #: Overall progress 0–100, weighted over the stages.
    progress = models.FloatField(_("progress"), default=0.0)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    error_message = models.TextField(_("error message"), blank=True, default="")
    # null, not "", means "no error": the API shows it as JSON null.
    error_category = models.CharField(  # noqa: DJ001
        _("error category"), max_length=16, choices=ErrorCategory.choices, null=True, blank=True
    )
    #: 1 for the first run; each retry (automatic or by a user) adds one.
    attempt = models.PositiveIntegerField(_("attempt"), default=1)
    max_attempts = models.PositiveIntegerField(_("max attempts"), default=3)
    trigger = models.CharField(_("trigger"), max_length=16, choices=Trigger.choices, default=Trigger.API)
    #: Workers claim the highest priority first, then the oldest (PRIORITY_MIN…PRIORITY_MAX).
    priority = models.SmallIntegerField(_("priority"), default=PRIORITY_DEFAULT)
    #: Not claimed before this time, as asked when the task was created.
    run_after = models.DateTimeField(_("run after"), null=True, blank=True)
    #: Fencing token of the live execution: every worker write is conditional on it.
    execution_id = models.UUIDField(_("execution id"), null=True, blank=True)
    #: Job-defined state saved by the worker so that resume/retry continue instead of restarting.
    checkpoint = models.JSONField(_("checkpoint"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("heartbeat"), null=True, blank=True)
    #: "host:pid" of the worker process holding the execution (for operators and diagnostics).
    worker = models.CharField(_("worker"), max_length=128, blank=True, default="")
    #: For a pending task: not to be run before this time (retry backoff).
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    #: When the task was last handed to the broker (the watchdog re-enqueues stale pending tasks).
    enqueued_at = models.DateTimeField(_("enqueued at"), null=True, blank=True)
    #: Set once when the failure alert for this task is sent (alerts are sent at most once).
    alerted_at = models.DateTimeField(_("alerted at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
        # Only deleting a user looks tasks up by creator: not worth a write on every task.
        db_index=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["-created_at"]
        permissions = [
            ("start_task", _("Can start tasks")),
            ("cancel_task", _("Can cancel tasks")),
            ("pause_task", _("Can pause and resume tasks")),
            ("retry_task", _("Can retry tasks")),
        ]
        # Every index costs each write of a task (on SQLite, a page written per index touched), so
        # the ones that serve only some rows are partial: a pending task enters four of them.
        indexes = [
            # The list endpoint: newest first, optionally by status / type / batch / trigger. The
            # indexes are ascending and read backwards: a new task is then added at the end of its
            # range, where SQLite's B-tree appends cheaply; in a descending one it goes in front,
            # and the page it fills is split and rebalanced with its neighbours (more pages
            # written per index and task: docs/performance.md).
            models.Index(fields=["created_at"], name="task_created_idx"),
            models.Index(fields=["status", "created_at"], name="task_status_created_idx"),
            models.Index(fields=["task_type", "created_at"], name="task_type_created_idx"),
            models.Index(fields=["batch", "created_at"], name="task_batch_tasks_idx", condition=Q(batch__isnull=False)),
            models.Index(fields=["trigger", "created_at"], name="task_trigger_created_idx"),
            # The queue: pending tasks, highest priority first, then the oldest (the pusher's read
            # and the claim's choice).
            models.Index(
                fields=["-priority", "created_at"], name="task_queue_idx", condition=Q(status=TaskStatus.PENDING)
            ),
            # Watchdog: the executions held now — a handful of rows however many tasks there are.
            models.Index(
                fields=["status", "heartbeat_at"], name="task_held_idx", condition=Q(execution_id__isnull=False)
            ),
            # Statistics, dashboard and retention: finished tasks by completion time. The type and
            # start time ride along (written once, at completion) so that the dashboard's charts
            # and the durations per type read the index alone, not every finished task's row.
            models.Index(
                fields=["status", "completed_at", "task_type", "started_at"],
                name="task_finished_idx",
                condition=Q(completed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_type} {self.id}"


class TaskType(models.Model):
    """Operators' controls over the queue of one task type. A type without a row is neither
    paused nor limited; the claim reads these rows (tasks/queries.sql), so a change holds for
    every cluster at its next claim and survives restarts."""

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    #: No worker claims a new task of a paused type; running ones go on.
    paused = models.BooleanField(_("paused"), default=False)
    #: At most this many tasks of the type held by an execution at once, over every cluster
    #: (None: no limit).
    max_concurrency = models.PositiveIntegerField(
        _("max concurrency"),
        null=True,
        blank=True,
        validators=[MinValueValidator(MAX_CONCURRENCY_MIN), MaxValueValidator(MAX_CONCURRENCY_MAX)],
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("task type")
        verbose_name_plural = _("task types")
        ordering = ["name"]
        default_permissions = ()
        permissions = [("manage_queue", _("Can pause task types and limit their concurrency"))]

    def __str__(self) -> str:
        return self.name


class Schedule(models.Model):
    """Starts a task of ``task_type`` (or its batch's, with ``batch``) every ``interval_seconds``
    or at the times of ``cron`` in ``TIME_ZONE`` — exactly one of the two. Its tasks are created
    by ``created_by`` (none: the system), with that user's permissions at the time of each run.
    The runner (:mod:`tasks.runtime.schedules`) takes each run with a compare-and-set on
    ``next_run_at``; every other write goes through :mod:`tasks.services`."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    task_type = models.CharField(_("task type"), max_length=64)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    #: A batch schedule starts the batch, as its start button does; deleting the batch deletes it.
    batch = models.ForeignKey(
        "batches.Batch",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="schedules",
        verbose_name=_("batch"),
    )
    priority = models.SmallIntegerField(_("priority"), default=PRIORITY_DEFAULT)
    #: Five fields (minute hour day month weekday) evaluated in TIME_ZONE; null for an interval.
    cron = models.CharField(  # noqa: DJ001 - null: none
        _("cron"),
        max_length=100,
        null=True,
        blank=True,
        help_text=_(
            "Five fields: minute hour day-of-month month day-of-week, in the site's time zone (0 2 * * *: at"
            " 02:00 every day); or @hourly, @daily, @weekly, @monthly, @yearly. Empty for an interval."
        ),
    )
    interval_seconds = models.PositiveIntegerField(
        _("interval (seconds)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(INTERVAL_SECONDS_MIN), MaxValueValidator(INTERVAL_SECONDS_MAX)],
        help_text=_("Seconds between runs, at least 5. Empty for a cron schedule."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    #: When the next run is due (UTC); null while disabled.
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    #: The task the latest run started (a run is skipped while it is active).
    last_task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("last task")
    )
    #: The owner: the schedule's tasks are created by this user. A deleted user's schedules go
    #: with them (never left to run as the system).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("owner"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cron__isnull=True, interval_seconds__isnull=False)
                | Q(cron__isnull=False, interval_seconds__isnull=True),
                name="schedule_cron_or_interval",
            ),
            models.CheckConstraint(
                condition=Q(interval_seconds__isnull=True)
                | Q(interval_seconds__gte=INTERVAL_SECONDS_MIN, interval_seconds__lte=INTERVAL_SECONDS_MAX),
                name="schedule_interval_range",
            ),
            models.CheckConstraint(
                condition=Q(enabled=False) | Q(next_run_at__isnull=False), name="schedule_enabled_has_next_run"
            ),
        ]
        # The runner's question every second: which enabled schedules are due.
        indexes = [
            models.Index(fields=["next_run_at"], name="schedule_due_idx", condition=Q(next_run_at__isnull=False))
        ]

    def __str__(self) -> str:
        return self.name


class TaskStage(models.Model):
    id = AppendOnlyIdField(primary_key=True, serialize=False, verbose_name="ID")
    # stage_unique_name (task, name) serves lookups by task.
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="stages", verbose_name=_("task"), db_index=False
    )
    name = models.CharField(_("stage"), max_length=64)
    position = models.PositiveSmallIntegerField(_("position"))
    #: Share of the task's overall progress this stage carries (weights of a task sum to 1).
    weight = models.FloatField(_("weight"), default=1.0)
    status = models.CharField(_("status"), max_length=16, choices=StageStatus.choices, default=StageStatus.PENDING)
    progress = models.FloatField(_("progress"), default=0.0)

    class Meta:
        verbose_name = _("task stage")
        verbose_name_plural = _("task stages")
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "name"], name="stage_unique_name"),
            models.UniqueConstraint(fields=["task", "position"], name="stage_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.progress:.1f}%)"


class TaskLog(models.Model):
    id = AppendOnlyIdField(primary_key=True, serialize=False, verbose_name="ID")
    # tasklog_task_id_idx (task, id) serves lookups by task.
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="logs", verbose_name=_("task"), db_index=False
    )
    timestamp = models.DateTimeField(_("time"))
    level = models.PositiveSmallIntegerField(_("level"), choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField(_("message"))
    data = models.JSONField(_("data"), null=True, blank=True)

    class Meta:
        verbose_name = _("task log")
        verbose_name_plural = _("task logs")
        ordering = ["task", "id"]
        indexes = [
            models.Index(fields=["task", "id"], name="tasklog_task_id_idx"),
            models.Index(fields=["task", "level", "id"], name="tasklog_task_level_idx"),
        ]

    def __str__(self) -> str:
        return f"[{self.get_level_display()}] {self.message[:80]}"


#: The two audit actions every task run writes (by the system, one each per execution): two thirds
#: of the audit log. The indexes for lookups by actor and by action leave them out (a page written
#: per index per row, on the worker's hot path); a lookup of these actions reads the log newest
#: first, where they are everywhere.
ROUTINE_WORKER_ACTIONS = ("worker.claim", "worker.complete")


class AuditLog(models.Model):
    """One row per state change or operator action, written in the same transaction as the change."""

    id = AppendOnlyIdField(primary_key=True, serialize=False, verbose_name="ID")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
        # Only deleting a user looks entries up by actor id; filters go by actor_name.
        db_index=False,
    )
    #: The actor's username at the time (kept when the user is deleted); "system" for workers.
    actor_name = models.CharField(_("actor name"), max_length=150, default="system")
    action = models.CharField(_("action"), max_length=64)
    target_type = models.CharField(_("target type"), max_length=32)
    target_id = models.CharField(_("target id"), max_length=64)
    from_status = models.CharField(_("from status"), max_length=16, blank=True, default="")
    to_status = models.CharField(_("to status"), max_length=16, blank=True, default="")
    details = models.JSONField(_("details"), default=dict, blank=True)
    client_address = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id", "id"], name="audit_target_idx"),
            # Partial: a query uses them when it says ``action NOT IN ROUTINE_WORKER_ACTIONS``
            # (tasks.api.filters.AuditLogFilter does, wherever that changes no answer). Ascending,
            # read backwards, as the tasks' (new rows are appended at the end of their range).
            models.Index(
                fields=["actor_name", "id"],
                name="audit_actor_name_idx",
                condition=~Q(action__in=ROUTINE_WORKER_ACTIONS),
            ),
            models.Index(
                fields=["action", "id"], name="audit_action_idx", condition=~Q(action__in=ROUTINE_WORKER_ACTIONS)
            ),
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]

    def __str__(self) -> str:
        change = f" {self.from_status}→{self.to_status}" if self.to_status else ""
        return f"{self.actor_name} {self.action} {self.target_type}:{self.target_id}{change}"


def not_routine_worker_row() -> RawSQL:
    """``action NOT IN ROUTINE_WORKER_ACTIONS`` written out with literals, for a query that means
    to use the audit log's partial indexes: SQLite uses one only when the query contains its
    condition itself, and a bound parameter is not the literal it stands for. Add it only where
    it changes no answer (rows no routine worker row can match). The values are the code's own."""
    values = ", ".join(f"'{action}'" for action in ROUTINE_WORKER_ACTIONS)
    return RawSQL(f'NOT ("{AuditLog._meta.db_table}"."action" IN ({values}))', (), output_field=models.BooleanField())


class WorkerSample(models.Model):
    """The latest resource reading of one django-q2 worker process, written by the process itself
    every ``TASKCENTER_RESOURCE_INTERVAL`` seconds (resource monitoring across machines)."""

    host = models.CharField(_("host"), max_length=128)
    pid = models.PositiveIntegerField(_("process id"))
    cpu_percent = models.FloatField(_("CPU %"), default=0.0)
    memory_bytes = models.BigIntegerField(_("resident memory"), default=0)
    tasks_total = models.BigIntegerField(_("tasks run"), default=0)
    tasks_per_minute = models.FloatField(_("tasks per minute"), default=0.0)
    updated_at = models.DateTimeField(_("updated at"), db_index=True)

    class Meta:
        verbose_name = _("worker sample")
        verbose_name_plural = _("worker samples")
        constraints = [models.UniqueConstraint(fields=["host", "pid"], name="workersample_host_pid")]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"
