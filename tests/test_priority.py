"""Priorities and deferred starts: workers claim the highest priority first, then the oldest; a
task with ``run_after`` is not claimed before then."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from tasks import store
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.services import task_create
from tests.api_helpers import client_for, envelope_of
from tests.cluster import wait_for

QUICK = {"seconds": 0, "steps": 1}


def canary(params=QUICK, **options) -> Task:
    return task_create(actor=SYSTEM, task_type="canary", params=params, **options)


def claim(task, *, swap_types=("canary",)):
    return store.claim(task.pk, uuid.uuid4(), "test:1", swap_types=swap_types)


def test_a_message_runs_the_highest_priority_due_task_then_the_oldest(db):
    older, newer = canary(), canary()
    urgent_old, urgent_new = canary(priority=10), canary(priority=10)
    low = canary(priority=-5)
    assert claim(low).pk == urgent_old.pk  # a higher priority waits: the oldest of the highest
    assert claim(low).pk == urgent_new.pk
    assert claim(newer).pk == newer.pk  # none higher waits: the task the message names
    assert claim(newer).pk == older.pk  # the named one is gone: the best due task instead
    assert claim(newer).pk == low.pk
    assert claim(newer) is None
    claimed = Task.objects.filter(status="processing").values_list("pk", flat=True)
    assert set(claimed) == {older.pk, newer.pk, urgent_old.pk, urgent_new.pk, low.pk}


def test_a_message_runs_another_task_only_of_a_type_its_time_limit_covers(db):
    named = canary()
    urgent = canary(priority=50)
    assert claim(named, swap_types=()).pk == named.pk  # a message of a type that covers none else
    assert claim(urgent, swap_types=()).pk == urgent.pk


def test_the_queue_is_read_highest_priority_first(db):
    tasks = [canary(priority=priority) for priority in (0, 5, -3, 5, 100)]
    order = [row[0] for row in store.due_tasks(limit=10)]
    expected = [tasks[4], tasks[1], tasks[3], tasks[0], tasks[2]]
    assert [Task._meta.pk.to_python(raw) for raw in order] == [task.pk for task in expected]


def test_a_deferred_task_is_not_claimed_before_its_time(db):
    later = timezone.now() + timedelta(seconds=60)
    deferred = canary(run_after=later)
    assert (deferred.run_after, deferred.next_attempt_at) == (later, later)
    assert claim(deferred) is None
    assert store.due_tasks(limit=10) == []
    Task.objects.filter(pk=deferred.pk).update(next_attempt_at=timezone.now())  # its time has come
    assert claim(deferred).pk == deferred.pk
    assert Task.objects.get(pk=deferred.pk).run_after == later  # as asked, for the record


def test_the_api_takes_priority_and_run_after_and_shows_them(manager):
    api = client_for(manager)
    when = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    body = {"task_type": "canary", "params": QUICK, "priority": 7, "run_after": when.isoformat()}
    created = envelope_of(api.post("/api/v1/tasks", body, format="json"), 201)["data"]
    assert (created["priority"], created["run_after"]) == (7, when.astimezone(UTC).isoformat().replace("+00:00", "Z"))
    listed = envelope_of(api.get("/api/v1/tasks"), 200)["data"]["results"][0]
    assert (listed["task_id"], listed["priority"], listed["run_after"]) == (
        created["task_id"],
        7,
        created["run_after"],
    )
    plain = envelope_of(api.post("/api/v1/tasks", {"task_type": "canary", "params": QUICK}, format="json"), 201)
    assert (plain["data"]["priority"], plain["data"]["run_after"]) == (0, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"priority": 101}, "priority"),
        ({"priority": -101}, "priority"),
        ({"priority": "1"}, "priority"),
        ({"run_after": "2030-01-01T10:00:00"}, "run_after"),  # no time zone
        ({"run_after": "soon"}, "run_after"),
    ],
)
def test_bad_priority_or_run_after_is_a_400_and_creates_nothing(manager, change, field):
    api = client_for(manager)
    body = {"task_type": "canary", "params": QUICK, **change}
    assert field in envelope_of(api.post("/api/v1/tasks", body, format="json"), 400)["errors"]
    assert not Task.objects.exists()


@pytest.mark.worker
def test_with_both_workers_busy_a_later_urgent_task_starts_before_ten_waiting_ones(cluster):
    # The busy tasks end two seconds apart, so one worker frees up at a time and claim order is start order.
    busy = [canary({"seconds": seconds, "steps": 20}) for seconds in (2, 4)]
    wait_for(lambda: Task.objects.filter(pk__in=[t.pk for t in busy], status="processing").count() == 2)
    waiting = [canary({"seconds": 0.05, "steps": 1}) for _ in range(10)]
    urgent = canary({"seconds": 0.05, "steps": 1}, priority=10)
    everything = [*busy, *waiting, urgent]
    wait_for(
        lambda: Task.objects.filter(pk__in=[t.pk for t in everything], status="completed").count() == 13,
        timeout=60,
        message="every task to complete",
    )
    started = dict(Task.objects.filter(pk__in=[t.pk for t in waiting + [urgent]]).values_list("pk", "started_at"))
    first_waiting = min(started[t.pk] for t in waiting)
    assert started[urgent.pk] < first_waiting


@pytest.mark.worker
def test_a_task_to_run_after_five_seconds_is_not_claimed_before_then(cluster):
    asked = timezone.now() + timedelta(seconds=5)
    deferred = canary(run_after=asked)
    at_once = canary()
    wait_for(lambda: Task.objects.get(pk=at_once.pk).status == "completed", message="the other task to complete")
    wait_for(lambda: Task.objects.get(pk=deferred.pk).status == "completed", timeout=30, message="the deferred task")
    assert Task.objects.get(pk=deferred.pk).started_at >= asked
