"""django-q2's ORM broker, with the tasks table itself as the queue of tasks.

With the ORM broker a task used to travel as a second row: a signed django-q2 message in
``django_q_ormq``, written with the task, locked by the pusher (a write), deleted by the monitor
(another write). The pending task row already says everything the message said — which task, and
that it is waiting — so here it *is* the message:

- a task is in the queue while it is ``pending``, handed over (``enqueued_at`` set), due
  (``next_attempt_at``) and held by no execution. Creating, resuming or retrying a task writes
  nothing else; the transaction that makes it pending makes it visible;
- :meth:`dequeue` (django-q2's pusher) reads a few of the oldest such tasks and hands one to the
  cluster's workers, as the same package ``async_task`` would have sent. The read writes nothing:
  the worker's claim — the compare-and-set ``pending → processing`` with its fencing token — is
  the only write that takes a task, exactly as it is for a message. Two clusters that pick the same
  task deliver it twice and one claim is refused; to make that rare, the pusher picks at random
  among the oldest few, and it remembers what it handed out (for one lease) so that it does not
  hand a task out again while it waits in the cluster's local queue;
- acknowledging is a no-op: the claim took the task out of the queue.

Every other message (django-q2's watchdog schedule and anything sent with
``async_task``) still travels through ``django_q_ormq`` as with the plain ORM broker, and is served
first. A worker that dies before its claim leaves the task pending: it is handed out again after
the lease, by this cluster or another. With Redis (``REDIS_URL``) none of this applies: messages
are sent to Redis after commit and the watchdog re-sends what a broker lost.

Either broker's pusher also runs the due schedules, every second on a thread of its own
(:func:`tasks.runtime.schedules.start_ticker`): every cluster starts scheduled runs, without a
process of its own.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import OrderedDict
from time import sleep

from django.conf import settings
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from tasks import store
from tasks.runtime import schedules
from tasks.runtime.queue import signed_message

#: The ``ack_id`` of a task handed out from the tasks table (the monitor acknowledges it: no-op).
TASK_ACK_PREFIX = "taskcenter-task:"


class TaskTableBroker(ORM):
    def __init__(self, list_key: str | None = None):
        super().__init__(list_key=list_key)
        self._reset()

    def __setstate__(self, state):
        super().__setstate__(state)
        self._reset()

    def _reset(self) -> None:
        self._handed_out: OrderedDict[tuple, float] = OrderedDict()
        self._last_source = 1
        self._empty_until = [0.0, 0.0]

    # --- taking work ---------------------------------------------------------------------------

    def dequeue(self):
        """Work for the pusher: a message or a task, alternately when both wait. A source found
        empty is not asked again for ``Conf.POLL`` seconds (so a stream of tasks costs one message
        query per poll interval, and a stream of messages one task query); when both are empty,
        sleep ``Conf.POLL`` as the ORM broker does. (And the schedules' thread runs in this process.)"""
        schedules.start_ticker()
        self.get_connection()  # django-q2's connection hygiene (closes stale connections)
        moment = time.monotonic()
        sources = [(0, self._dequeue_message), (1, self._dequeue_task)]
        if self._last_source == 0:
            sources.reverse()
        for index, source in sources:
            if self._empty_until[index] > moment:
                continue
            found = source()
            if found:
                self._last_source = index
                return found
            self._empty_until[index] = moment + Conf.POLL
        sleep(Conf.POLL)
        return None

    def _dequeue_message(self):
        """Messages from ``django_q_ormq``, locked for the lease: django-q2's ORM broker's own
        statements (bare ``async_task`` messages cost here what they cost with that broker)."""
        messages = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[0 : Conf.BULK]
        taken = []
        for message in messages:
            if self.get_connection().filter(id=message.id, lock=message.lock).update(lock=self.timeout(message)):
                taken.append((message.pk, message.payload))
            # else another cluster was faster
        return taken

    def _dequeue_task(self):
        """Due pending tasks from the tasks table, as the packages ``async_task`` would send: up to
        ``Conf.BULK`` (django-q2's ``bulk``, as for messages) from one query, picked at random
        among the oldest few so that clusters sharing the table seldom pick the same one."""
        hold = settings.TASKCENTER_LEASE_SECONDS
        moment = time.monotonic()
        handed = self._handed_out
        while handed:
            oldest, when = next(iter(handed.items()))
            if moment - when < hold:
                break
            del handed[oldest]
        # At most this many handed-out tasks can still be waiting for their claim: those in the
        # cluster's local queue, in the pusher's hand and being started by each worker.
        in_flight = (Conf.QUEUE_LIMIT or Conf.WORKERS) + Conf.WORKERS + max(1, Conf.BULK)
        # A task is remembered with the version of its row: once claimed it is no longer pending,
        # and when it is pending again (paused and resumed, retried) it is a new hand-out. Rows
        # are compared as the database returns them; only the picked ones are converted.
        due = store.due_tasks(limit=2 * in_flight + 8)
        # A limited type gets no more messages than it has free slots: those handed out and not
        # claimed yet count as taken (a message naming a limited type's task claims that task).
        slots = {row[2]: row[3] for row in due if row[3] is not None}
        for row in due:
            if row[2] in slots and row[:2] in handed:
                slots[row[2]] -= 1
        choices = [row for row in due if row[:2] not in handed and slots.get(row[2], 1) > 0]
        if not choices:
            return None
        candidates = choices[:in_flight]
        picked = sorted(random.sample(range(len(candidates)), min(max(1, Conf.BULK), len(candidates))))
        taken = []
        for index in picked:  # oldest first
            raw_id, version, task_type, _ = candidates[index]
            if task_type in slots:
                if slots[task_type] <= 0:
                    continue
                slots[task_type] -= 1
            handed[(raw_id, version)] = moment
            task_id = str(_as_uuid(raw_id))
            taken.append((f"{TASK_ACK_PREFIX}{task_id}", signed_message(task_id, task_type)))
        return taken

    # --- acknowledging -------------------------------------------------------------------------

    def acknowledge(self, task_id):
        if _is_task(task_id):
            return None  # the claim took the task out of the queue
        return super().acknowledge(task_id)

    def fail(self, task_id):
        if not _is_task(task_id):
            super().fail(task_id)

    def delete(self, task_id):
        if not _is_task(task_id):
            super().delete(task_id)

    # --- sizes ---------------------------------------------------------------------------------

    def queue_size(self) -> int:
        return super().queue_size() + store.count_due_tasks()


def _is_task(ack_id) -> bool:
    return isinstance(ack_id, str) and ack_id.startswith(TASK_ACK_PREFIX)


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


class RedisBroker(Redis):
    """django-q2's Redis broker (``REDIS_URL``), whose pusher also runs the due schedules."""

    def dequeue(self):
        schedules.start_ticker()
        return super().dequeue()
