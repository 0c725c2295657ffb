"""Messages to django-q2: the only place that calls ``async_task`` for a task.

With the ORM broker (the default) the tasks table is the queue (:mod:`tasks.runtime.broker`) and
a committed pending task needs no message; with another broker (Redis) the store sends one with
:func:`send` after the transaction that made the task pending commits.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django_q.conf import Conf
from django_q.tasks import async_task

from tasks.runtime.registry import timeout_of

logger = logging.getLogger(__name__)

#: Seconds added to a job's cooperative timeout for django-q2's hard backstop, so the job can
#: notice its own deadline, save a checkpoint and report ``timeout`` before it is killed.
HARD_TIMEOUT_GRACE = 30

WORKER_ENTRY = "tasks.runtime.worker.run_task"
Q_CLUSTER = settings.Q_CLUSTER


def _options(task_id, timeout_seconds: int) -> dict:
    return {"timeout": int(timeout_seconds) + HARD_TIMEOUT_GRACE, "task_name": f"task-{task_id}"}


def send(task_id: uuid.UUID | str, task_type: str) -> bool:
    """Send the message that runs a task to the broker. Returns False (and logs) when the broker
    refuses: the task stays pending, and the watchdog sends it again."""
    try:
        # Only the id and type travel: async_task reserves many keyword names (timeout, hook…).
        async_task(WORKER_ENTRY, str(task_id), task_type, q_options=_options(task_id, timeout_of(task_type)))
    except Exception:  # the broker is down: the watchdog will retry
        logger.exception("could not enqueue task %s; the watchdog will re-enqueue it", task_id)
        return False
    return True


TABLE_BROKER = "tasks.runtime.broker.TaskTableBroker"


def tasks_table_is_the_queue() -> bool:
    """True with :class:`tasks.runtime.broker.TaskTableBroker` (the ORM broker on our database):
    a pending task needs no message."""
    return Q_CLUSTER.get("broker_class") == TABLE_BROKER and Q_CLUSTER.get("orm") == DEFAULT_DB_ALIAS


def signed_message(task_id: str, task_type: str) -> str:
    """The signed django-q2 package that runs ``task_id``, exactly as ``async_task`` builds it."""
    keep = _KeepMessage()
    q_options = {**_options(task_id, timeout_of(task_type)), "broker": keep}
    async_task(WORKER_ENTRY, task_id, task_type, q_options=q_options)
    return keep.pack


class _KeepMessage:
    """Stands in for the broker in ``async_task``: keeps the signed message instead of sending it."""

    def __init__(self):
        self.list_key = Conf.CLUSTER_NAME
        self.pack = None

    def enqueue(self, pack):
        self.pack = pack
