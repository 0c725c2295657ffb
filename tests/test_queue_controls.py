"""Queue controls of a task type: pause / resume and a concurrency limit, over every cluster."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import close_old_connections, connection

from tasks import store
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task, TaskType
from tasks.runtime import registry
from tasks.runtime.broker import TaskTableBroker
from tasks.services import task_cancel, task_create, task_type_pause, task_type_resume, task_type_set_limit
from tests.api_helpers import EXAMPLE_BATCH, client_for, envelope_of
from tests.cluster import wait_for

QUICK = {"seconds": 0, "steps": 1}
OTHER = "test.other"


@pytest.fixture
def other_type():
    """A second job type beside ``canary`` (registered in this process only)."""

    @registry.register(OTHER, stages=[("run", 1.0)])
    def other(ctx):
        return {}

    yield OTHER
    registry._REGISTRY.pop(OTHER, None)


def create(task_type="canary", **options) -> Task:
    return task_create(actor=SYSTEM, task_type=task_type, params=QUICK if task_type == "canary" else {}, **options)


def claim(task, swap_types=("canary", OTHER)):
    return store.claim(task.pk, uuid.uuid4(), "test:1", swap_types=swap_types)


def held(task_type="canary") -> int:
    return Task.objects.filter(task_type=task_type, execution_id__isnull=False).count()


# --- the claim --------------------------------------------------------------------------------


def test_no_task_of_a_paused_type_is_claimed_while_other_types_run(db, other_type):
    canary, other = create(), create(other_type)
    task_type_pause(actor=SYSTEM, name="canary")
    assert claim(canary, swap_types=["canary"]) is None
    assert [row[2] for row in store.due_tasks(limit=10)] == [other_type], "the pusher does not hand it out"
    assert claim(other).pk == other.pk
    assert Task.objects.get(pk=canary.pk).status == "pending"
    task_type_resume(actor=SYSTEM, name="canary")
    assert claim(canary).pk == canary.pk


def test_a_limited_type_never_holds_more_executions_than_its_limit(db, other_type):
    task_type_set_limit(actor=SYSTEM, name="canary", max_concurrency=2)
    canaries = [create() for _ in range(4)]
    other = create(other_type)
    assert claim(canaries[0]).pk == canaries[0].pk
    assert claim(canaries[1]).pk == canaries[1].pk
    assert claim(canaries[2], swap_types=["canary"]) is None, "at its limit"
    assert claim(other).pk == other.pk, "other types' tasks behind the limited ones still run"
    assert [row[2:] for row in store.due_tasks(limit=10)] == [], "none of the limited type is handed out"
    task_cancel(actor=SYSTEM, task_id=canaries[0].pk)
    assert [row[2:] for row in store.due_tasks(limit=10)] == [], "cancelled, its execution still holds a slot"
    store.release(canaries[0].pk, Task.objects.get(pk=canaries[0].pk).execution_id, reason="stopped")
    assert [row[2:] for row in store.due_tasks(limit=10)] == [("canary", 1)] * 2, "one free slot"
    assert claim(canaries[2]).pk == canaries[2].pk
    assert held() == 2


def test_a_message_swaps_only_to_a_type_without_controls_and_keeps_its_limited_task(db, other_type):
    task_type_set_limit(actor=SYSTEM, name="canary", max_concurrency=5)
    urgent_canary = create(priority=50)
    plain = create(other_type)
    assert claim(plain).pk == plain.pk, "not swapped to the limited type's more urgent task"
    named_canary = create()
    urgent_other = create(other_type, priority=50)
    assert claim(named_canary).pk == named_canary.pk, "a limited type's named task is claimed, not swapped away"
    assert claim(urgent_canary).pk == urgent_canary.pk
    assert Task.objects.get(pk=urgent_other.pk).status == "pending"


def test_many_claimers_at_once_never_exceed_the_limit(transactional_db):
    """Claims racing on SQLite and PostgreSQL: the limit holds (on PostgreSQL each statement would
    count the same free slot; the claim counts under the type's row lock)."""
    task_type_set_limit(actor=SYSTEM, name="canary", max_concurrency=2)
    tasks = [create() for _ in range(12)]
    start = threading.Barrier(len(tasks))
    claimed, errors = [], []

    def claimer(task):
        try:
            start.wait()
            if store.claim(task.pk, uuid.uuid4(), "test:race", swap_types=["canary"]) is not None:
                claimed.append(task.pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=claimer, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(claimed) == 2
    assert held() == 2


def test_the_pusher_hands_out_no_more_of_a_limited_type_than_its_free_slots(db, other_type):
    task_type_set_limit(actor=SYSTEM, name="canary", max_concurrency=1)
    canaries = [create() for _ in range(6)]
    other = create(other_type)
    broker = TaskTableBroker(list_key="test")
    handed = []
    for _ in range(4):
        handed += [ack for ack, _ in broker._dequeue_task() or []]
    canary_ids = {f"taskcenter-task:{task.pk}" for task in canaries}
    assert len([ack for ack in handed if ack in canary_ids]) == 1, "one slot, one message, until it is claimed"
    assert f"taskcenter-task:{other.pk}" in handed, "the limited type's waiting tasks block no other type"


# --- the services and the API -------------------------------------------------------------------


def test_pause_resume_and_limit_over_the_api_are_audited(manager):
    api = client_for(manager)
    types = {t["name"]: t for t in envelope_of(api.get("/api/v1/task-types"), 200)["data"]}
    assert {key: types["canary"][key] for key in ("paused", "max_concurrency", "pending", "running")} == {
        "paused": False,
        "max_concurrency": None,
        "pending": 0,
        "running": 0,
    }
    pending = create()
    paused = envelope_of(api.post("/api/v1/task-types/canary/pause"), 200)["data"]
    assert (paused["paused"], paused["pending"]) == (True, 1)
    assert envelope_of(api.post("/api/v1/task-types/canary/pause"), 409)
    detail = envelope_of(api.get(f"/api/v1/tasks/{pending.pk}"), 200)["data"]
    assert (detail["status"], detail["type_paused"]) == ("pending", True)
    listed = envelope_of(api.get("/api/v1/tasks"), 200)["data"]["results"]
    assert [item["type_paused"] for item in listed] == [True]
    assert envelope_of(api.post("/api/v1/task-types/canary/resume"), 200)["data"]["paused"] is False
    assert envelope_of(api.post("/api/v1/task-types/canary/resume"), 409)
    assert envelope_of(api.get(f"/api/v1/tasks/{pending.pk}"), 200)["data"]["type_paused"] is False
    limited = envelope_of(api.patch("/api/v1/task-types/canary", {"max_concurrency": 3}, format="json"), 200)
    assert limited["data"]["max_concurrency"] == 3
    unlimited = envelope_of(api.patch("/api/v1/task-types/canary", {"max_concurrency": None}, format="json"), 200)
    assert unlimited["data"]["max_concurrency"] is None
    rows = AuditLog.objects.filter(target_type="task_type", target_id="canary").order_by("id")
    assert [(row.action, row.actor_name, row.from_status, row.to_status) for row in rows] == [
        ("task_type.pause", "manager", "active", "paused"),
        ("task_type.resume", "manager", "paused", "active"),
        ("task_type.limit", "manager", "", ""),
        ("task_type.limit", "manager", "", ""),
    ]
    assert rows.last().details == {"max_concurrency": {"from": 3, "to": None}}


@pytest.mark.parametrize(
    "body",
    [{"max_concurrency": 0}, {"max_concurrency": 1001}, {"max_concurrency": "2"}, {"max_concurrency": 1.5}, {}],
)
def test_a_bad_limit_is_a_400_and_changes_nothing(manager, body):
    response = client_for(manager).patch("/api/v1/task-types/canary", body, format="json")
    assert "max_concurrency" in envelope_of(response, 400)["errors"]
    assert not TaskType.objects.filter(name="canary", max_concurrency__isnull=False).exists()
    assert not AuditLog.objects.filter(target_type="task_type").exists()


def test_unknown_fields_and_unknown_types_are_refused(manager):
    api = client_for(manager)
    assert envelope_of(api.patch("/api/v1/task-types/canary", {"paused": True}, format="json"), 400)
    for path in ("/api/v1/task-types/nope", "/api/v1/task-types/nope/pause"):
        method = api.get if path.endswith("nope") else api.post
        envelope_of(method(path), 404)
    assert not TaskType.objects.filter(name="nope").exists()


# --- the admin ----------------------------------------------------------------------------------


def test_the_admin_task_types_page_pauses_and_limits_for_managers_only(client, manager, viewer, make_task):
    TaskType.objects.bulk_create([TaskType(name=job.name) for job in registry.job_types()], ignore_conflicts=True)
    make_task(status="pending")
    make_task(status="processing")
    client.force_login(viewer)
    page = client.get("/admin/tasks/tasktype/")
    assert page.status_code == 200
    assert b"canary" in page.content and b"pause_types" not in page.content
    refused = client.post("/admin/tasks/tasktype/", {"action": "pause_types", "_selected_action": ["canary"]})
    assert refused.status_code in (200, 302, 403)
    assert not TaskType.objects.get(name="canary").paused
    assert client.post("/admin/tasks/tasktype/canary/change/", {"max_concurrency": "2"}).status_code == 403

    client.force_login(manager)
    page = client.get("/admin/tasks/tasktype/")
    assert b"pause_types" in page.content
    assert b"?status=pending&amp;task_type=canary" in page.content or b"task_type=canary&amp;status=pending" in (
        page.content
    )
    client.post("/admin/tasks/tasktype/", {"action": "pause_types", "_selected_action": ["canary"]})
    assert TaskType.objects.get(name="canary").paused
    changed = client.post("/admin/tasks/tasktype/canary/change/", {"max_concurrency": "2"})
    assert changed.status_code == 302, changed.content[:500]
    assert TaskType.objects.get(name="canary").max_concurrency == 2
    assert list(
        AuditLog.objects.filter(target_type="task_type").order_by("id").values_list("action", "actor_name")
    ) == [
        ("task_type.pause", "manager"),
        ("task_type.limit", "manager"),
    ]
    tasks_page = client.get("/admin/tasks/task/")
    assert b"tc-type-paused" in tasks_page.content and "类型已暂停" in tasks_page.content.decode()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", "login"),
        ("nobody", 403),
        ("viewer", set()),
        ("operator", set()),
        ("manager", {"pause_types", "resume_types"}),
    ],
)
def test_the_task_type_actions_appear_only_with_manage_queue(request, db, client, role, expected):
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    page = client.get("/admin/tasks/tasktype/")
    if expected == "login":
        assert page.status_code == 302 and "/login/" in page["Location"]
    elif expected == 403:
        assert page.status_code == 403
    else:
        form = page.context["action_form"]
        assert ({name for name, _ in form.fields["action"].choices if name} if form else set()) == expected


def test_the_admin_task_types_page_runs_a_fixed_number_of_queries(
    client, manager, make_task, django_assert_max_num_queries
):
    client.force_login(manager)
    TaskType.objects.bulk_create([TaskType(name=f"type.{n}") for n in range(3)])
    with django_assert_max_num_queries(12) as few:
        client.get("/admin/tasks/tasktype/")
    TaskType.objects.bulk_create([TaskType(name=f"type.{n}") for n in range(3, 60)])
    for n in range(60):
        make_task(task_type=f"type.{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/admin/tasks/tasktype/").status_code == 200


# --- on a running service -----------------------------------------------------------------------


def _canaries(http, count: int, params: dict) -> list[str]:
    return [
        http("post", "/api/v1/tasks", {"task_type": "canary", "params": params})[1]["data"]["task_id"]
        for _ in range(count)
    ]


@pytest.mark.worker
def test_a_paused_type_waits_while_other_types_run_and_runs_when_resumed(http, cluster):
    assert http("post", "/api/v1/task-types/canary/pause")[0] == 200
    canaries = _canaries(http, 2, QUICK)
    assert http("post", "/api/v1/statistics/batches", EXAMPLE_BATCH)[0] == 201
    started = http("post", f"/api/v1/statistics/tasks/{EXAMPLE_BATCH['batch_code']}/start")[1]["data"]["task_id"]
    wait_for(
        lambda: http("get", f"/api/v1/tasks/{started}")[1]["data"]["status"] == "completed",
        timeout=60,
        message="the statistics task to complete while canaries are paused",
    )
    for task_id in canaries:
        detail = http("get", f"/api/v1/tasks/{task_id}")[1]["data"]
        assert (detail["status"], detail["type_paused"], detail["started_at"]) == ("pending", True, None)
    assert http("get", "/api/v1/task-types/canary")[1]["data"]["pending"] == 2
    assert http("post", "/api/v1/task-types/canary/resume")[0] == 200
    wait_for(
        lambda: all(
            http("get", f"/api/v1/tasks/{task_id}")[1]["data"]["status"] == "completed" for task_id in canaries
        ),
        timeout=30,
        message="the canaries to run once resumed",
    )


def _sample_until_done(task_ids, *, timeout: float) -> int:
    """The most canaries seen processing at once, sampled until every task in ``task_ids`` is finished."""
    import time

    most, deadline = 0, time.monotonic() + timeout
    tasks = Task.objects.filter(pk__in=task_ids)
    while tasks.exclude(status="completed").exists():
        assert time.monotonic() < deadline, "the limited canaries did not all complete in time"
        most = max(most, Task.objects.filter(task_type="canary", status="processing").count())
        time.sleep(0.01)
    return most


def _one_at_a_time(task_ids) -> None:
    """No two runs overlap: each started after the one before it completed."""
    runs = sorted(Task.objects.filter(pk__in=task_ids).values_list("started_at", "completed_at"))
    assert all(later[0] >= earlier[1] for earlier, later in zip(runs, runs[1:], strict=False)), runs


@pytest.mark.worker
def test_a_limit_of_one_never_has_two_canaries_processing_at_once(http, cluster):
    assert http("patch", "/api/v1/task-types/canary", {"max_concurrency": 1})[1]["data"]["max_concurrency"] == 1
    canaries = _canaries(http, 5, {"seconds": 0.4, "steps": 4})
    assert _sample_until_done(canaries, timeout=60) == 1
    _one_at_a_time(canaries)


@pytest.fixture
def two_clusters(request, transactional_db, tmp_path):
    """Two clusters as on two machines (PostgreSQL), the suite's own one halted meanwhile."""
    from tests.cluster import Cluster

    if connection.vendor != "postgresql":
        pytest.skip("scale-out runs on PostgreSQL (run the suite with DATABASE_URL=postgres://…)")
    request.getfixturevalue("no_cluster")
    clusters = [Cluster(tmp_path / name).start() for name in ("machine-a", "machine-b")]
    yield clusters
    for each in clusters:
        each.stop()


@pytest.mark.worker
@pytest.mark.postgres
def test_a_limit_holds_over_two_clusters(two_clusters):
    task_type_set_limit(actor=SYSTEM, name="canary", max_concurrency=1)
    canaries = [task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0.3, "steps": 3}).pk for _ in range(8)]
    assert _sample_until_done(canaries, timeout=120) == 1
    _one_at_a_time(canaries)


@pytest.fixture
def redis_cluster(request, transactional_db, tmp_path):
    """A cluster with the Redis broker (the suite's own, on the tasks table, halted meanwhile)."""
    import redis

    from tests.cluster import REDIS_URL, Cluster, redis_answers

    if not redis_answers():
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    redis.Redis.from_url(REDIS_URL).flushdb()
    request.getfixturevalue("no_cluster")
    cluster = Cluster(tmp_path / "redis", extra_env={"REDIS_URL": REDIS_URL}).start()
    yield cluster
    cluster.stop()


@pytest.mark.worker
def test_with_redis_a_held_back_type_runs_its_spent_messages_tasks_within_its_limit(redis_cluster):
    """A message refused because its type is paused is spent: the task is withheld, then sent
    again once the type can take it, no more at once than its free slots."""
    import subprocess
    import sys

    from tests.cluster import ROOT

    task_type_pause(actor=SYSTEM, name="canary")
    create = (
        "from tasks.actors import SYSTEM; from tasks.services import task_create\n"
        "for _ in range(3): task_create(actor=SYSTEM, task_type='canary', params={'seconds': 0.3, 'steps': 3})"
    )
    manage = [sys.executable, str(ROOT / "manage.py"), "shell", "-c", create]
    subprocess.run(manage, env=redis_cluster.env, check=True)
    canaries = list(Task.objects.filter(task_type="canary").values_list("pk", flat=True))
    wait_for(
        lambda: Task.objects.filter(pk__in=canaries, enqueued_at__isnull=True).count() == 3,
        message="the workers to withhold the paused type's tasks",
    )
    assert set(Task.objects.filter(pk__in=canaries).values_list("status", flat=True)) == {"pending"}
    task_type_set_limit(actor=SYSTEM, name="canary", max_concurrency=1)
    task_type_resume(actor=SYSTEM, name="canary")
    assert _sample_until_done(canaries, timeout=60) == 1
    _one_at_a_time(canaries)
