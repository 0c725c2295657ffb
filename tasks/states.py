"""Task statuses and the one table of legal transitions between them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskStatus(models.TextChoices):
    #: Created or re-queued; waiting for a worker to claim it.
    PENDING = "pending", _("Pending")
    #: A worker holds the claim (execution_id) and is running it.
    PROCESSING = "processing", _("Processing")
    #: Stopped by a user at a checkpoint; resume re-queues it.
    PAUSED = "paused", _("Paused")
    #: Finished successfully; final.
    COMPLETED = "completed", _("Completed")
    #: Finished with an error (possibly to be retried automatically).
    FAILED = "failed", _("Failed")
    #: Stopped by a user; retry re-queues it.
    CANCELLED = "cancelled", _("Cancelled")


S = TaskStatus

#: from-status → the statuses it may move to. Everything else is illegal (409).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.PROCESSING, S.CANCELLED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.PAUSED}),
    S.PAUSED: frozenset({S.PENDING, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
}

#: A task in one of these holds its batch: the batch cannot be started again, edited or deleted.
ACTIVE_STATUSES: frozenset[str] = frozenset({S.PENDING, S.PROCESSING, S.PAUSED})
#: Statuses no worker will change any more without a user (or retry policy) acting.
FINISHED_STATUSES: frozenset[str] = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
#: Resume and retry both move a task to pending, each from its own statuses (the table allows
#: their union): resume continues a paused task, retry runs a failed or cancelled one again.
RESUME_FROM: frozenset[str] = frozenset({S.PAUSED})
RETRY_FROM: frozenset[str] = frozenset({S.FAILED, S.CANCELLED})


def allowed_from(target: str) -> frozenset[str]:
    """The statuses from which ``target`` can be reached."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


def is_legal(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


class ErrorCategory(models.TextChoices):
    #: Unexpected failure of the code or the machine; retried automatically.
    SYSTEM = "system", _("System error")
    #: The input data cannot be processed (empty selection, malformed rows); not retried.
    DATA = "data", _("Data error")
    #: The task's parameters or batch configuration are wrong; not retried.
    CONFIG = "config", _("Configuration error")
    #: The job ran past its timeout; retried automatically.
    TIMEOUT = "timeout", _("Timeout")
    #: The worker stopped sending heartbeats (killed, machine lost); retried automatically.
    WORKER_LOST = "worker_lost", _("Worker lost")


RETRYABLE_CATEGORIES: frozenset[str] = frozenset(
    {ErrorCategory.SYSTEM, ErrorCategory.TIMEOUT, ErrorCategory.WORKER_LOST}
)


class Trigger(models.TextChoices):
    #: Started by an operator in the Django admin.
    MANUAL = "manual", _("Manual (admin)")
    #: Started through the REST API.
    API = "api", _("API")
    #: Re-queued by a retry (automatic or by a user).
    RETRY = "retry", _("Retry")
    #: Started by a schedule.
    SCHEDULE = "schedule", _("Schedule")
    #: Enqueued from code through the Django Tasks backend.
    ENQUEUE = "enqueue", _("Enqueued (code)")


#: A user's request (the API, the admin): a job type registered with ``user_startable=False``
#: is refused for these.
USER_TRIGGERS: frozenset[str] = frozenset({Trigger.MANUAL, Trigger.API})


#: A task's priority: workers claim the highest first, then the oldest.
PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = -100, 100, 0

#: A schedule's interval: at least 5 seconds (the runner looks once a second), at most a year.
INTERVAL_SECONDS_MIN, INTERVAL_SECONDS_MAX = 5, 366 * 24 * 3600

#: A task type's concurrency limit, when it has one (operators set it at run time).
MAX_CONCURRENCY_MIN, MAX_CONCURRENCY_MAX = 1, 1000


class StageStatus(models.TextChoices):
    #: Not started yet.
    PENDING = "pending", _("Pending")
    #: The job is inside this stage.
    PROCESSING = "processing", _("Processing")
    #: The stage finished.
    COMPLETED = "completed", _("Completed")


class ClusterStatus(models.TextChoices):
    """A django-q2 cluster's state: django-q2's own words (and their translations), as codes."""

    STARTING = "starting", _("Starting")
    WORKING = "working", _("Working")
    IDLE = "idle", _("Idle")
    STOPPING = "stopping", _("Stopping")
    STOPPED = "stopped", _("Stopped")


class LogLevel(models.IntegerChoices):
    #: Detail for developers.
    DEBUG = 10, "debug"
    #: Normal progress messages.
    INFO = 20, "info"
    #: Something unexpected that did not stop the task.
    WARN = 30, "warn"
    #: An error; the message or data carries the traceback.
    ERROR = 40, "error"

    @classmethod
    def from_name(cls, name: str) -> "LogLevel":
        for member in cls:
            if member.label == name:
                return member
        raise ValueError(f"unknown log level {name!r}")


#: The log levels' names, as the API and log lines spell them.
LOG_LEVEL_NAMES = [member.label for member in LogLevel]
