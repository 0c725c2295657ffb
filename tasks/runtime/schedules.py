"""Schedules at run time: when a schedule runs next, and the runner that starts its due runs.

Every cluster's pusher calls :func:`start_ticker` on each pass of its loop
(:mod:`tasks.runtime.broker`, with the tasks table or Redis as the broker): once per process it
starts a thread that runs :func:`run_due_schedules` every second. A run is taken with a
compare-and-set on the schedule's ``next_run_at`` in the transaction that creates its task, so
two clusters never start the same run and a run whose transaction did not commit (a crash) is
taken again at the next tick.

Also the function django-q2's every-minute watchdog schedule calls (migration tasks/0003).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
import time
from datetime import UTC, datetime, timedelta

from croniter import croniter
from django.db import close_old_connections, transaction
from django.utils import timezone

from taskcenter.errors import InvalidInput, ServiceError
from tasks.actors import SYSTEM, Actor
from tasks.audit import audit
from tasks.runtime.watchdog import sweep
from tasks.states import ACTIVE_STATUSES, Trigger

logger = logging.getLogger("taskcenter.schedules")

#: How often a pusher looks for due schedules (seconds).
TICK_SECONDS = 1.0
#: Runs taken per tick at most (the rest at the next one).
RUNS_PER_TICK = 100

CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron_field(number: str) -> str:
    item = rf"(?:\*|(?:{number})(?:-(?:{number}))?)(?:/[1-9][0-9]?)?"
    return rf"{item}(?:,{item})*"


#: The cron syntax schedules take: five fields — minute (0-59), hour (0-23), day of month (1-31),
#: month (1-12), day of week (0-7, 0 and 7 Sunday) — of numbers, ``*``, ranges ``a-b``, steps
#: ``/n`` and lists ``a,b``, one space apart; or an alias.
CRON_PATTERN = "^(?:{}|{})$".format(
    " ".join(
        _cron_field(number)
        for number in ("[1-5]?[0-9]", "1?[0-9]|2[0-3]", "[1-9]|[12][0-9]|3[01]", "[1-9]|1[0-2]", "[0-7]")
    ),
    "|".join(CRON_ALIASES),
)
CRON_HELP = (
    "Five fields — minute (0-59) hour (0-23) day-of-month (1-31) month (1-12) day-of-week (0-7, 0 and 7 Sunday)"
    " — of numbers, *, ranges (1-5), steps (*/15) and lists (1,15), evaluated in TIME_ZONE; or @hourly,"
    " @daily, @weekly, @monthly, @yearly."
)


def run_watchdog() -> dict:
    return sweep()


# --- timing -----------------------------------------------------------------------------------


def check_cron(text) -> str:
    """``text`` when it is a cron expression of :data:`CRON_PATTERN` whose times exist (``0 0 31
    2 *`` never comes); :class:`InvalidInput` naming ``cron`` otherwise."""
    if not isinstance(text, str) or not re.fullmatch(CRON_PATTERN, text):
        raise InvalidInput("cron: not a cron expression", errors={"cron": [CRON_HELP]})
    try:
        croniter(text, timezone.now()).get_next(datetime)
    except Exception as exc:  # croniter's errors: a value out of range, a date that never comes
        raise InvalidInput(f"cron: {exc}", errors={"cron": [f"{exc}. {CRON_HELP}"]}) from None
    return text


def next_run(*, cron: str | None, interval_seconds: int | None, after: datetime, previous: datetime | None = None):
    """When a schedule runs next, seen at ``after`` (now), as an aware UTC datetime.

    Interval: ``previous`` (the run just due; none for a schedule just enabled: ``after``) plus
    whole intervals — not drifting with the moment each run was taken — the first of those later
    than ``after``: the runs a stopped cluster missed are skipped, not piled up. Cron: its first
    time after ``after`` in ``TIME_ZONE`` (a time of day that a change to daylight saving time
    skips runs at the first time after it).
    """
    if interval_seconds is not None:
        step = timedelta(seconds=interval_seconds)
        start = previous or after
        return start + (max(0, (after - start) // step) + 1) * step
    local = timezone.localtime(after, timezone.get_default_timezone())
    return croniter(cron, local).get_next(datetime).astimezone(UTC)


# --- the runner -------------------------------------------------------------------------------

_ticker_pid: int | None = None
_ticker_guard = threading.Lock()


def start_ticker() -> None:
    """Run :func:`run_due_schedules` every :data:`TICK_SECONDS` on a daemon thread of this
    process, started once per process (a cluster's pusher calls this on each pass of its loop).
    A thread of its own: the pusher waits, blocked, while its workers' queue is full, and a
    schedule's run must not wait for a worker to free up. Only in a cluster's child process: code
    that calls a broker in its own process (the broker's tests) starts no thread."""
    global _ticker_pid
    if _ticker_pid == os.getpid() or multiprocessing.parent_process() is None:
        return
    with _ticker_guard:
        if _ticker_pid != os.getpid():
            _ticker_pid = os.getpid()
            threading.Thread(target=_tick_forever, name="taskcenter-schedules", daemon=True).start()


#: A failure that lasts (the database away, a table not migrated yet) is logged once a minute.
FAILURE_LOG_SECONDS = 60.0


def _tick_forever() -> None:
    logged_failure = None
    while True:
        started = time.monotonic()
        try:
            close_old_connections()  # a connection the database dropped is replaced, not reused
            run_due_schedules()
            logged_failure = None
        except Exception:
            if logged_failure is None or started - logged_failure >= FAILURE_LOG_SECONDS:
                logged_failure = started
                logger.exception("running the due schedules failed; they are tried again every second")
        time.sleep(max(0.0, TICK_SECONDS - (time.monotonic() - started)))


def run_due_schedules(now: datetime | None = None) -> int:
    """Take the run of every enabled schedule due at ``now`` (the oldest first, at most
    :data:`RUNS_PER_TICK`); returns how many runs this process took (started or skipped)."""
    from tasks.models import Schedule

    now = now or timezone.now()
    due = Schedule.objects.filter(enabled=True, next_run_at__lte=now).order_by("next_run_at")
    return sum(run_schedule(pk, now=now) is not None for pk in due.values_list("pk", flat=True)[:RUNS_PER_TICK])


def run_schedule(schedule_id, *, now: datetime | None = None):
    """Take the schedule's due run: its ``next_run_at`` moves to the next time and, in the same
    transaction, its task is created (as its owner) and becomes its ``last_task``. The run is
    skipped — an audit row ``schedule.skip`` with the reason, and a log line — while the task
    it started last is still active, when its owner is no longer active, or when the services
    refuse the task (the owner lacks a permission, the batch has another active task, the
    params no longer fit the type).

    Returns the task, ``"skipped"``, or None when there was no run to take: not due, or taken
    by another process (or changed by a user) meanwhile.
    """
    from tasks.models import Schedule, Task

    now = now or timezone.now()
    schedule = (
        Schedule.objects.select_related("created_by", "batch")
        .filter(pk=schedule_id, enabled=True, next_run_at__lte=now)
        .first()
    )
    if schedule is None:
        return None
    due = schedule.next_run_at
    following = next_run(cron=schedule.cron, interval_seconds=schedule.interval_seconds, after=now, previous=due)
    with transaction.atomic():
        # The run is this transaction's if next_run_at is still the one read (and nobody
        # changed the schedule since): another process's update makes this one match nothing.
        taken = Schedule.objects.filter(
            pk=schedule.pk, enabled=True, next_run_at=due, updated_at=schedule.updated_at
        ).update(next_run_at=following)
        if not taken:
            return None
        previous = Task.objects.filter(pk=schedule.last_task_id).values_list("pk", "status").first()
        if previous is not None and previous[1] in ACTIVE_STATUSES:
            reason = f"the task it started last ({previous[0]}) is still {previous[1]}"
        elif schedule.created_by is not None and not schedule.created_by.is_active:
            reason = f"its owner {schedule.created_by.get_username()} is no longer active"
        else:
            try:
                with transaction.atomic():
                    task = _start(schedule)
            except ServiceError as exc:
                reason = exc.message
            else:
                Schedule.objects.filter(pk=schedule.pk).update(last_task=task)
                transaction.on_commit(
                    lambda: logger.info(
                        "schedule %s started task %s",
                        schedule.name,
                        task.pk,
                        extra={"schedule": schedule.name, "task": str(task.pk)},
                    )
                )
                return task
        audit(
            actor=SYSTEM,
            action="schedule.skip",
            target_type="schedule",
            target_id=schedule.pk,
            details={"name": schedule.name, "due_at": due.isoformat(), "reason": reason},
        )
        transaction.on_commit(
            lambda: logger.warning(
                "schedule %s skipped its run due at %s: %s",
                schedule.name,
                due.isoformat(),
                reason,
                extra={"schedule": schedule.name, "reason": reason},
            )
        )
    return "skipped"


def _start(schedule):
    """The schedule's task, created as its owner would by hand: a batch schedule starts its batch
    (the batch's rules: one active task, its config), any other creates a task of its type."""
    from tasks.services import task_create, task_start_owned  # services import this module

    actor = Actor(user=schedule.created_by)  # none: the system
    if schedule.batch is not None:
        return task_start_owned(
            actor=actor,
            owner_field="batch_code",
            owner=schedule.batch.batch_code,
            trigger=Trigger.SCHEDULE,
            priority=schedule.priority,
        )
    return task_create(
        actor=actor,
        task_type=schedule.task_type,
        params=schedule.params,
        trigger=Trigger.SCHEDULE,
        priority=schedule.priority,
    )
