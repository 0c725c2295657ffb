"""Handing tasks to django-q2. The only place that calls ``async_task``.

Two ways, by broker: with the ORM broker (the default) the tasks table is the queue
(:mod:`tasks.runtime.broker`) and a committed pending task needs no message; with another broker
(Redis) a message carrying the task id is sent after the transaction commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task

from tasks.models import Task

logger = logging.getLogger(__name__)

#: Seconds added to a job's cooperative timeout for django-q2's hard backstop, so the job can
#: notice its own deadline, save a checkpoint and report ``timeout`` before it is killed.
HARD_TIMEOUT_GRACE = 30

WORKER_ENTRY = "tasks.runtime.worker.run_task"
Q_CLUSTER = settings.Q_CLUSTER


def _options(task_id, timeout_seconds: int) -> dict:
    return {"timeout": int(timeout_seconds) + HARD_TIMEOUT_GRACE, "task_name": f"task-{task_id}"}


def enqueue_now(task_id: uuid.UUID | str, *, timeout_seconds: int, record: bool = True) -> bool:
    """Push one task id to the broker. Returns False (and logs) when the broker refuses.

    A task left pending because the broker was unreachable is re-enqueued by the watchdog, so a
    failure here never loses a task.
    """
    try:
        # Only the id travels: async_task reserves many keyword names (timeout, hook, group…).
        async_task(
            WORKER_ENTRY,
            str(task_id),
            q_options=_options(task_id, timeout_seconds),
        )
    except Exception:  # the broker is down: the watchdog will retry
        logger.exception("could not enqueue task %s; the watchdog will re-enqueue it", task_id)
        # Not handed over after all: the watchdog's next sweep picks it up.
        Task.objects.filter(pk=task_id, status="pending").update(enqueued_at=None)
        return False
    if record:
        Task.objects.filter(pk=task_id, status="pending").update(enqueued_at=timezone.now())
    return True


TABLE_BROKER = "tasks.runtime.broker.TaskTableBroker"


def tasks_table_is_the_queue() -> bool:
    """True with :class:`tasks.runtime.broker.TaskTableBroker` (the ORM broker on our database):
    a pending task needs no message."""
    return Q_CLUSTER.get("broker_class") == TABLE_BROKER and Q_CLUSTER.get("orm") == DEFAULT_DB_ALIAS


def hand_over(task_id: uuid.UUID | str, *, timeout_seconds: int) -> bool:
    """Make a pending task available to the workers again (the watchdog, a worker letting go of a
    task resumed meanwhile): with the tasks table as the queue, mark it handed over; otherwise
    send its message."""
    if tasks_table_is_the_queue():
        Task.objects.filter(pk=task_id, status="pending").update(enqueued_at=timezone.now())
        return True
    return enqueue_now(task_id, timeout_seconds=timeout_seconds)


def signed_message(task_id: str, task_type: str) -> str:
    """The signed django-q2 package that runs ``task_id``, exactly as ``async_task`` builds it."""
    from tasks.runtime.registry import get_job_type

    try:
        timeout = get_job_type(task_type).timeout_seconds
    except Exception:  # an unregistered type: the worker fails it with a config error
        timeout = 60
    keep = _KeepMessage()
    async_task(WORKER_ENTRY, task_id, q_options={**_options(task_id, timeout), "broker": keep})
    return keep.pack


class _KeepMessage:
    """Stands in for the broker in ``async_task``: keeps the signed message instead of sending it."""

    def __init__(self):
        self.list_key = Conf.CLUSTER_NAME
        self.pack = None

    def enqueue(self, pack):
        self.pack = pack


def enqueue_on_commit(task_id: uuid.UUID | str, *, timeout_seconds: int) -> None:
    """Make a task that the surrounding transaction makes pending (and hands over: the caller
    sets ``enqueued_at`` in the same write) available to the workers, never before it commits.

    With the tasks table as the queue there is nothing more to do: the committed row is the
    message. With another broker (Redis) the message is sent after commit; if the send fails,
    ``enqueue_now`` clears ``enqueued_at`` for the watchdog.
    """
    send = sender(task_id, timeout_seconds=timeout_seconds)
    if send is not None:
        transaction.on_commit(send)


def sender(task_id: uuid.UUID | str, *, timeout_seconds: int) -> Callable[[], bool] | None:
    """What sends the message of a task just made pending, for a caller that runs it after its
    commit itself (see :func:`enqueue_on_commit`); None with the tasks table as the queue."""
    if tasks_table_is_the_queue():
        return None
    return lambda: enqueue_now(task_id, timeout_seconds=timeout_seconds, record=False)
