"""The watchdog: finds work that nobody is doing and makes sure somebody will.

One sweep (``sweep()``; a django-q2 schedule every minute and ``manage.py watchdog``):

1. a ``processing`` task whose heartbeat is older than the lease lost its worker (killed,
   machine gone): it becomes ``failed`` / ``worker_lost`` and, while attempts remain, is
   retried from its checkpoint with backoff. The change is conditional on the heartbeat being
   stale at the moment of the update, and time the database could not be written (SQLite's
   write lock held long) does not count: a worker that could not write could not send
   heartbeats either;
2. a task that is no longer processing but still carries the ``execution_id`` of an execution
   whose heartbeat stopped (paused or cancelled while its worker died) is released;
3. a ``pending`` task that was never handed over (``enqueued_at`` empty: written by other means
   than the services, or its message could not be sent) is handed over. With a broker that keeps
   its own messages (Redis) also a due task not handed over since it became due — a retry whose
   backoff ran out — or one no worker claimed for a long time (django-q2's Redis broker drops the
   task of a killed cluster) is sent again; fencing makes a duplicate message harmless. With the
   tasks table as the queue (the ORM broker, :mod:`tasks.runtime.broker`) a handed-over task
   cannot be lost and a due retry is seen without help. Only as many as their types can take
   are handed over: none of a paused type, at most a limited type's free slots.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from tasks import store
from tasks.models import Task
from tasks.runtime.queue import tasks_table_is_the_queue
from tasks.states import ErrorCategory, TaskStatus

logger = logging.getLogger("taskcenter.watchdog")

#: Upper bound of rows handled per kind in one sweep (the next sweep takes the rest).
SWEEP_LIMIT = 500


def sweep() -> dict[str, int]:
    """One pass; returns how many tasks each rule touched."""
    now = timezone.now()
    lease = timedelta(seconds=settings.TASKCENTER_LEASE_SECONDS)
    counts = {"worker_lost": 0, "released": 0, "enqueued": 0}

    # A processing task is always held by an execution: the condition lets the held-task index
    # (a handful of rows) answer instead of a scan of all tasks.
    stale = (
        Task.objects.filter(status=TaskStatus.PROCESSING, execution_id__isnull=False, heartbeat_at__lt=now - lease)
        .order_by()
        .values_list("pk", "execution_id", "heartbeat_at", "worker")[:SWEEP_LIMIT]
    )
    for task_id, execution_id, heartbeat_at, worker in stale:
        message = f"worker {worker or '?'} stopped sending heartbeats (last {heartbeat_at.isoformat()})"
        with transaction.atomic():
            cutoff = _stale_before(lease)
            if cutoff is not None and store.fail(
                task_id,
                execution_id,
                category=ErrorCategory.WORKER_LOST,
                message=message,
                stale_before=cutoff,
                action="watchdog.worker_lost",
            ):
                counts["worker_lost"] += 1
                logger.warning("task %s: %s", task_id, message)

    orphaned = (
        Task.objects.filter(execution_id__isnull=False)
        .exclude(status=TaskStatus.PROCESSING)
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - lease))
        .order_by()  # any order: the held-task index answers
        .values_list("pk", "execution_id")[:SWEEP_LIMIT]
    )
    for task_id, execution_id in orphaned:
        with transaction.atomic():
            cutoff = _stale_before(lease)
            if cutoff is not None and store.release(
                task_id, execution_id, reason="its worker stopped sending heartbeats", stale_before=cutoff
            ):
                counts["released"] += 1

    counts["enqueued"] = hand_over_waiting(now=now)
    if any(counts.values()):
        logger.info("watchdog sweep: %s", counts)
    return counts


def hand_over_waiting(task_type: str | None = None, *, now=None) -> int:
    """Hand over the due pending tasks (of ``task_type``, or of every type) that wait for it
    (rule 3 above), highest priority first, as many as their types can take now: none of a
    paused type, at most the free slots of a limited one. Returns how many were handed over."""
    now = now or timezone.now()
    not_handed_over = Q(enqueued_at__isnull=True)
    if not tasks_table_is_the_queue():
        requeue_after = timedelta(seconds=settings.TASKCENTER_REQUEUE_AFTER_SECONDS)
        not_handed_over |= (
            # a delayed retry that became due since it was last handed over
            Q(next_attempt_at__isnull=False, enqueued_at__lt=F("next_attempt_at"))
            # a message that no worker claimed for a long time: the broker may have lost it
            | Q(enqueued_at__lt=now - requeue_after)
        )
    slots = store.free_slots()
    due = (
        Task.objects.filter(status=TaskStatus.PENDING, execution_id__isnull=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(not_handed_over)
        .exclude(task_type__in=[name for name, free in slots.items() if free <= 0])
        .order_by("-priority", "created_at")
    )
    if task_type is not None:
        due = due.filter(task_type=task_type)
    handed = 0
    for task_id, its_type in due.values_list("pk", "task_type")[:SWEEP_LIMIT]:
        if its_type in slots:
            if slots[its_type] <= 0:
                continue
            slots[its_type] -= 1
        store.hand_over(task_id, its_type)
        handed += 1
    return handed


def _stale_before(lease: timedelta):
    """Inside the transaction that would act on it: the time before which a heartbeat is stale.

    A lease before now, read once this transaction may write; when the database could not be
    written for a while within that lease (SQLite's write lock held long), earlier by as long:
    nobody could send heartbeats meanwhile. None when that period's start is unknown (the lock
    was waited for long, its holder recorded nothing): decided at a later sweep.
    """
    now = timezone.now()
    cutoff = now - lease
    unwritable = getattr(connection, "unwritable", None)
    if unwritable is not None:
        connection.ensure_connection()
        start, end = unwritable()
        if end > cutoff.timestamp():
            if not start:
                logger.info("the database was not writable for a while: no worker counts as lost yet")
                return None
            cutoff -= timedelta(seconds=end - start)
    return cutoff
