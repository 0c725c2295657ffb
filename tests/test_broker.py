"""The ORM broker with the tasks table as the queue (tasks/runtime/broker.py), in-process."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from tasks import store
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.runtime.broker import TaskTableBroker
from tasks.runtime.queue import HARD_TIMEOUT_GRACE, WORKER_ENTRY, send
from tasks.runtime.registry import get_job_type
from tasks.runtime.worker import run_task
from tasks.services import task_create, task_pause, task_resume


@pytest.fixture
def broker():
    return TaskTableBroker()


def canary(**params):
    return task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1, **params})


def take(broker) -> list[tuple[object, dict]]:
    """One dequeue, with the packages as a worker receives them."""
    return [(ack, SignedPackage.loads(payload)) for ack, payload in broker.dequeue() or []]


def test_a_created_task_is_in_the_queue_without_any_message(db, broker):
    task = canary()
    assert OrmQ.objects.count() == 0
    [(ack, package)] = take(broker)
    assert package["func"] == WORKER_ENTRY
    assert package["args"] == (str(task.pk), "canary")
    assert package["timeout"] == get_job_type("canary").timeout_seconds + HARD_TIMEOUT_GRACE
    broker.acknowledge(ack)  # the monitor's acknowledgement: nothing to delete, nothing fails
    assert run_task(*package["args"]) == "completed"


def test_each_waiting_task_is_handed_out_once_and_then_the_queue_is_empty(db, broker):
    tasks = {str(canary().pk) for _ in range(5)}
    handed = [package["args"][0] for _ in range(5) for _, package in take(broker)]
    assert sorted(handed) == sorted(tasks)
    assert take(broker) == [], "handed-out tasks wait for their claim; they are not handed out again"


def test_one_dequeue_hands_out_up_to_bulk_tasks_oldest_first(db, broker, monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 3)
    created = [str(canary().pk) for _ in range(5)]
    first = [package["args"][0] for _, package in take(broker)]
    assert len(set(first)) == 3, "one query serves three workers"
    assert first == sorted(first, key=created.index), "in the order they were created"
    rest = [package["args"][0] for _, package in take(broker)]
    assert sorted(first + rest) == sorted(created), "the other two at the next call, none twice"
    assert take(broker) == []


def test_a_task_handed_out_but_never_claimed_is_handed_out_again_after_the_lease(db, broker, settings):
    settings.TASKCENTER_LEASE_SECONDS = 0.2
    task = canary()
    [(_, first)] = take(broker)
    assert take(broker) == []
    time.sleep(0.25)  # the worker that took it died before claiming it
    [(_, again)] = take(broker)
    assert again["args"] == first["args"] == (str(task.pk), "canary")


def test_a_task_that_is_pending_again_is_handed_out_again_at_once(db, broker, settings):
    settings.TASKCENTER_LEASE_SECONDS = 600
    task = canary()
    [(_, package)] = take(broker)
    claimed = store.claim(task.pk, uuid.uuid4(), "test:1")
    assert claimed is not None
    task_pause(actor=SYSTEM, task_id=task.pk)
    Task.objects.filter(pk=task.pk).update(execution_id=None)  # the worker let go
    task_resume(actor=SYSTEM, task_id=task.pk)
    [(_, again)] = take(broker)
    assert again["args"] == (str(task.pk), "canary")


def test_only_due_handed_over_unheld_pending_tasks_are_in_the_queue(db, broker):
    later = timezone.now() + timedelta(minutes=5)
    Task.objects.create(task_type="canary", status="pending", enqueued_at=timezone.now(), next_attempt_at=later)
    Task.objects.create(task_type="canary", status="pending")  # never handed over (the watchdog will)
    Task.objects.create(task_type="canary", status="paused", enqueued_at=timezone.now())
    Task.objects.create(task_type="canary", status="pending", enqueued_at=timezone.now(), execution_id=uuid.uuid4())
    assert take(broker) == []
    due = Task.objects.create(
        task_type="canary",
        status="pending",
        enqueued_at=timezone.now(),
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )
    [(_, package)] = take(broker)
    assert package["args"] == (str(due.pk), "canary")


def test_messages_are_served_while_tasks_wait_and_acknowledged_by_deleting_them(db, broker):
    for _ in range(6):
        canary()
    other = canary()
    send(other.pk, "canary")  # a message (as a schedule or a re-send would be)
    acks = [ack for _ in range(4) for ack, _ in take(broker)]
    messages = [ack for ack in acks if isinstance(ack, int)]
    assert len(messages) == 1, "the message was served among the tasks, not after all of them"
    assert OrmQ.objects.filter(pk=messages[0]).exists(), "locked, not deleted, until acknowledged"
    broker.acknowledge(messages[0])
    assert not OrmQ.objects.exists()
    assert broker.queue_size() == 7, "every task not claimed yet; the message is taken (locked)"
