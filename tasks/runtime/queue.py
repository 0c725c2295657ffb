"""Handing task ids to django-q2. The only place that calls ``async_task``."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from tasks.fastinsert import Statement, execute, insert_statements
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


def _broker_shares_the_transaction() -> bool:
    """True when django-q2's broker is the ORM on our own database connection."""
    return Q_CLUSTER.get("orm") == DEFAULT_DB_ALIAS and not Q_CLUSTER.get("redis")


class _KeepMessage:
    """Stands in for the broker in ``async_task``: keeps the signed message instead of sending it."""

    def __init__(self):
        self.list_key = Conf.CLUSTER_NAME
        self.pack = None

    def enqueue(self, pack):
        self.pack = pack


def prepare_enqueue(task_id: uuid.UUID | str, *, timeout_seconds: int) -> list[Statement]:
    """With the ORM broker on our own database: the INSERT of ``task_id``'s django-q2 message,
    built now (signing it is most of the cost), to be run by :func:`enqueue_on_commit` inside the
    transaction that makes the task pending. With another broker: nothing to prepare."""
    if not _broker_shares_the_transaction():
        return []
    keep = _KeepMessage()
    # async_task builds and signs the message exactly as for a real send (and fires pre_enqueue).
    async_task(WORKER_ENTRY, str(task_id), q_options={**_options(task_id, timeout_seconds), "broker": keep})
    return insert_statements([OrmQ(key=keep.list_key, payload=keep.pack, lock=timezone.now())])


def enqueue_on_commit(
    task_id: uuid.UUID | str, *, timeout_seconds: int, prepared: list[Statement] | None = None
) -> None:
    """Make the message visible to workers when the surrounding transaction commits, not before
    (a worker must see the pending row).

    With the ORM broker on our own database the message row is written inside the transaction
    (``prepared`` by :func:`prepare_enqueue`, or now): it commits (or rolls back) with the task,
    and costs no write transaction of its own. With another broker (Redis) it is sent after
    commit; the caller sets ``enqueued_at`` in the same write that made the task pending, and if
    the send fails, ``enqueue_now`` clears it for the watchdog.
    """
    if _broker_shares_the_transaction() and transaction.get_connection().in_atomic_block:
        execute(prepared or prepare_enqueue(task_id, timeout_seconds=timeout_seconds))
        return
    transaction.on_commit(lambda: enqueue_now(task_id, timeout_seconds=timeout_seconds, record=False))
