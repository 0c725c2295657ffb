"""Schedules: interval and cron runs (cron in TIME_ZONE), skips while the last task is active,
one run however many runners race for it, the owner's permissions at run time, the purge as a
schedule; the API, the admin and a real cluster (either broker) over HTTP."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone

from batches.services import batch_create, batch_start
from taskcenter.errors import Conflict, InvalidInput, PermissionDenied
from tasks import store
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Schedule, Task
from tasks.runtime.schedules import next_run, run_due_schedules, run_schedule
from tasks.runtime.worker import run_task
from tasks.services import schedule_create, schedule_set_enabled, schedule_update
from tests.api_helpers import client_for, envelope_of
from tests.cluster import REDIS_URL, Cluster, redis_answers, wait_for
from tests.conftest import actor_for

QUICK = {"seconds": 0, "steps": 1}
CONFIG = {"include_dimensions": ["academic"], "calculation_types": ["descriptive"]}
SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


def every(seconds: int, *, owner=None, name="every", **fields) -> Schedule:
    fields.setdefault("params", QUICK)
    actor = actor_for(owner) if owner is not None else SYSTEM
    return schedule_create(actor=actor, name=name, task_type="canary", interval_seconds=seconds, **fields)


def due(schedule: Schedule, *, ago: float = 0.0) -> datetime:
    """Make the schedule's next run due ``ago`` seconds ago; returns that time."""
    when = timezone.now() - timedelta(seconds=ago)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=when)
    return when


def skips(schedule: Schedule) -> list[dict]:
    rows = AuditLog.objects.filter(action="schedule.skip", target_type="schedule", target_id=str(schedule.pk))
    return list(rows.order_by("id").values_list("details", flat=True))


# --- timing -----------------------------------------------------------------------------------


def test_an_interval_schedule_runs_every_interval_from_its_previous_run_not_from_when_it_ran():
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert next_run(cron=None, interval_seconds=5, after=start) == start + timedelta(seconds=5)
    # Taken 0.8 s late: the next run is still on the 5 s grid.
    late = start + timedelta(seconds=5.8)
    assert next_run(cron=None, interval_seconds=5, after=late, previous=start + timedelta(seconds=5)) == (
        start + timedelta(seconds=10)
    )
    # A cluster down for a minute: the missed runs are skipped, the next is the first still ahead.
    after_outage = start + timedelta(seconds=65.3)
    assert next_run(cron=None, interval_seconds=5, after=after_outage, previous=start) == start + timedelta(seconds=70)


def test_a_cron_schedule_runs_next_at_its_time_in_time_zone_across_a_day_boundary(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    # 23:50 on 1 January in Shanghai (15:50 UTC): 00:30 comes next on 2 January, still 1 January in UTC.
    now = datetime(2025, 1, 1, 23, 50, tzinfo=SHANGHAI)
    following = next_run(cron="30 0 * * *", interval_seconds=None, after=now)
    assert following == datetime(2025, 1, 2, 0, 30, tzinfo=SHANGHAI)
    assert following.tzinfo == UTC and following == datetime(2025, 1, 1, 16, 30, tzinfo=UTC)
    # 08:10 Shanghai is 00:10 UTC: 07:00 Shanghai comes next the following local day.
    morning = datetime(2025, 3, 31, 8, 10, tzinfo=SHANGHAI)
    assert next_run(cron="0 7 * * *", interval_seconds=None, after=morning) == datetime(2025, 3, 31, 23, 0, tzinfo=UTC)
    # Month's end, year's end: @monthly on 31 December at 23:59 is 1 January 00:00 local.
    eve = datetime(2025, 12, 31, 23, 59, tzinfo=SHANGHAI)
    assert next_run(cron="@monthly", interval_seconds=None, after=eve) == datetime(2026, 1, 1, tzinfo=SHANGHAI)


def test_a_cron_schedule_keeps_its_wall_clock_time_across_a_daylight_saving_change(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = ZoneInfo("Europe/Berlin")
    before = datetime(2025, 3, 29, 12, 0, tzinfo=berlin)  # the clocks go forward on the 30th
    first = next_run(cron="0 9 * * *", interval_seconds=None, after=before)
    second = next_run(cron="0 9 * * *", interval_seconds=None, after=first)
    assert first == datetime(2025, 3, 30, 9, 0, tzinfo=berlin) == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
    assert second == datetime(2025, 3, 31, 9, 0, tzinfo=berlin)


# --- runs -------------------------------------------------------------------------------------


def test_a_due_run_starts_a_task_as_the_owner_and_moves_the_next_run_on(manager):
    schedule = every(60, owner=manager, priority=7)
    was_due = due(schedule, ago=0.5)
    task = run_schedule(schedule.pk)
    assert isinstance(task, Task)
    task.refresh_from_db()
    assert (task.task_type, task.params, task.trigger, task.priority) == (
        "canary",
        {**QUICK, "fail_at_step": None, "fail_times": 0},
        "schedule",
        7,
    )
    assert task.created_by == manager
    schedule.refresh_from_db()
    assert schedule.last_task_id == task.pk
    assert schedule.next_run_at == was_due + timedelta(seconds=60)
    assert run_schedule(schedule.pk) is None, "not due again before its next time"
    created = AuditLog.objects.get(action="task.create", target_id=str(task.pk))
    assert (created.actor_name, created.details["trigger"]) == ("manager", "schedule")


def test_a_run_is_skipped_and_audited_while_the_task_it_started_last_is_active():
    schedule = every(5)
    due(schedule)
    first = run_schedule(schedule.pk)
    due(schedule)
    assert run_schedule(schedule.pk) == "skipped"
    [skip] = skips(schedule)
    assert skip["reason"] == f"the task it started last ({first.pk}) is still pending"
    assert skip["name"] == "every" and skip["due_at"]
    assert Task.objects.count() == 1, "no pile-up"
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now(), "the skipped run's time is past: the next one is ahead"
    run_task(str(first.pk))  # it finishes: the next run starts a task again
    due(schedule)
    assert isinstance(run_schedule(schedule.pk), Task)
    assert Task.objects.count() == 2


def test_runs_a_stopped_cluster_missed_are_one_run_then_the_next_time_after_now():
    schedule = every(5)
    due(schedule, ago=3600)
    assert run_due_schedules() == 1
    assert Task.objects.count() == 1
    schedule.refresh_from_db()
    assert timezone.now() < schedule.next_run_at <= timezone.now() + timedelta(seconds=5)
    assert run_due_schedules() == 0


def test_a_disabled_schedule_has_no_next_run_and_starts_nothing(manager):
    schedule = every(5, owner=manager)
    due(schedule)
    schedule_set_enabled(actor=actor_for(manager), schedule_id=schedule.pk, enabled=False)
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.next_run_at) == (False, None)
    assert run_due_schedules() == 0 and not Task.objects.exists()
    with pytest.raises(Conflict):
        schedule_set_enabled(actor=actor_for(manager), schedule_id=schedule.pk, enabled=False)
    schedule_set_enabled(actor=actor_for(manager), schedule_id=schedule.pk, enabled=True)
    schedule.refresh_from_db()
    assert timezone.now() < schedule.next_run_at <= timezone.now() + timedelta(seconds=5)
    actions = AuditLog.objects.filter(target_type="schedule").order_by("id").values_list("action", flat=True)
    assert list(actions) == ["schedule.create", "schedule.disable", "schedule.enable"]


def test_an_owner_who_lost_a_permission_or_was_deactivated_gets_runs_skipped(manager):
    schedule = every(5, owner=manager)
    manager.groups.clear()
    due(schedule)
    assert run_schedule(schedule.pk) == "skipped"
    assert skips(schedule)[-1]["reason"] == "permission required: tasks.add_task"
    manager.is_active = False
    manager.save()
    due(schedule)
    assert run_schedule(schedule.pk) == "skipped"
    assert skips(schedule)[-1]["reason"] == "its owner manager is no longer active"
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_runners_racing_for_one_due_run_start_one_task():
    """Four processes' runners (threads with a connection each) take the same run at once."""
    schedule = every(3600, params=QUICK)
    # Due an hour ahead: a cluster left running by an earlier test (whose runner looks at the
    # real time) leaves it alone; the racers look at that hour.
    when = timezone.now() + timedelta(hours=1)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=when)
    barrier = threading.Barrier(4)
    outcomes = []

    def racer():
        try:
            barrier.wait()
            outcomes.append(run_schedule(schedule.pk, now=when + timedelta(seconds=1)))
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [outcome for outcome in outcomes if isinstance(outcome, Task)]
    assert len(started) == 1 and outcomes.count(None) == 3, outcomes
    assert list(Task.objects.filter(trigger="schedule").values_list("pk", flat=True)) == [started[0].pk]
    schedule.refresh_from_db()
    assert schedule.last_task_id == started[0].pk and schedule.next_run_at == when + timedelta(hours=1)
    assert not skips(schedule)


def test_a_change_made_while_the_runner_reads_the_schedule_wins_and_the_run_is_taken_after_it(manager, monkeypatch):
    from tasks.runtime import schedules

    schedule = every(5, owner=manager)
    due(schedule)
    real_next_run = schedules.next_run

    def a_user_changes_it_meanwhile(**arguments):
        # Between the runner's read and its compare-and-set: the moment a change can slip in.
        monkeypatch.setattr(schedules, "next_run", real_next_run)
        schedule_update(actor=actor_for(manager), schedule_id=schedule.pk, changes={"params": {"steps": 2}})
        return real_next_run(**arguments)

    monkeypatch.setattr(schedules, "next_run", a_user_changes_it_meanwhile)
    assert run_schedule(schedule.pk) is None, "the run read before the change is not taken"
    assert not Task.objects.exists()
    task = run_schedule(schedule.pk)  # still due: taken with what the schedule says now
    assert task.params["steps"] == 2


# --- batches ----------------------------------------------------------------------------------


def test_a_batch_schedule_starts_its_batch_and_skips_while_the_batch_is_busy(operator, manager):
    batch_create(actor=SYSTEM, batch_code="NIGHTLY", data_source="student_assessments", config=CONFIG)
    schedule = schedule_create(
        actor=actor_for(manager), name="nightly", task_type="statistics", batch_code="NIGHTLY", cron="0 2 * * *"
    )
    by_hand = batch_start(actor=actor_for(operator), batch_code="NIGHTLY")
    due(schedule)
    assert run_schedule(schedule.pk) == "skipped"
    assert "already has an active task" in skips(schedule)[0]["reason"]
    store.transition(by_hand.pk, "cancelled", action="task.cancel", actor=SYSTEM, fields={"next_attempt_at": None})
    due(schedule)
    task = run_schedule(schedule.pk)
    task.refresh_from_db()
    assert (task.task_type, task.batch.batch_code, task.trigger, task.created_by) == (
        "statistics",
        "NIGHTLY",
        "schedule",
        manager,
    )
    assert task.params["config"]["include_dimensions"] == ["academic"], "the batch's config, as start takes it"


def test_a_batch_schedule_needs_what_starting_the_batch_needs(db):
    batch_create(actor=SYSTEM, batch_code="B1", data_source="student_assessments", config=CONFIG)
    user = get_user_model().objects.create_user("scheduler")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_schedule", "add_task"]))
    body = {"name": "b", "task_type": "statistics", "batch_code": "B1", "interval_seconds": 60}
    with pytest.raises(PermissionDenied, match="tasks.start_task"):
        schedule_create(actor=actor_for(user), **body)
    user.user_permissions.add(Permission.objects.get(codename="start_task"))
    user = get_user_model().objects.get(pk=user.pk)
    with pytest.raises(InvalidInput) as wrong_type:
        schedule_create(actor=actor_for(user), **{**body, "task_type": "canary"})
    assert list(wrong_type.value.errors) == ["task_type"]
    with pytest.raises(InvalidInput) as with_params:
        schedule_create(actor=actor_for(user), **body, params={"data_source": "student_assessments"})
    assert list(with_params.value.errors) == ["params"]
    assert schedule_create(actor=actor_for(user), **body).batch.batch_code == "B1"


# --- the purge --------------------------------------------------------------------------------


def test_the_purge_is_a_schedule_after_migrate_and_runs_the_purge_with_the_retention_days(db, settings):
    from django_q.models import Schedule as DjangoQSchedule

    purge = Schedule.objects.get(name="maintenance.purge")
    assert (purge.task_type, purge.params, purge.cron, purge.enabled, purge.created_by) == (
        "maintenance.purge",
        {},
        "30 3 * * *",
        True,
        None,
    )
    assert not DjangoQSchedule.objects.filter(name="taskcenter.purge").exists()
    assert DjangoQSchedule.objects.filter(name="taskcenter.watchdog").exists(), "the watchdog's stays"
    settings.TASKCENTER_RETENTION_DAYS = 12
    due(purge)
    task = run_schedule(purge.pk)
    assert (task.params["days"], task.trigger, task.created_by) == (12, "schedule", None)
    assert run_task(str(task.pk)) == "completed"
    schedule_update(actor=SYSTEM, schedule_id=purge.pk, changes={"params": {"days": 90}})
    due(purge)
    assert run_schedule(purge.pk).params["days"] == 90, "the schedule's params say otherwise"


# --- the API ----------------------------------------------------------------------------------


def test_the_api_creates_lists_changes_and_deletes_schedules_each_audited(manager):
    api = client_for(manager)
    body = {"name": "canaries", "task_type": "canary", "params": QUICK, "interval_seconds": 300, "priority": 3}
    created = envelope_of(api.post("/api/v1/schedules", body, format="json"), 201)["data"]
    assert {k: created[k] for k in body} == body
    assert (created["cron"], created["enabled"], created["last_task_id"], created["created_by"]) == (
        None,
        True,
        None,
        "manager",
    )
    listed = envelope_of(api.get("/api/v1/schedules?task_type=canary&enabled=true"), 200)["data"]
    assert [item["name"] for item in listed["results"]] == ["canaries"]
    assert envelope_of(api.get("/api/v1/schedules?enabled=false"), 200)["data"]["total"] == 0
    url = f"/api/v1/schedules/{created['id']}"
    switched = envelope_of(api.patch(url, {"cron": "0 1 * * *", "interval_seconds": None}, format="json"), 200)
    assert (switched["data"]["cron"], switched["data"]["interval_seconds"]) == ("0 1 * * *", None)
    disabled = envelope_of(api.patch(url, {"enabled": False}, format="json"), 200)["data"]
    assert (disabled["enabled"], disabled["next_run_at"]) == (False, None)
    envelope_of(api.delete(url), 200)
    envelope_of(api.get(url), 404)
    audit = envelope_of(api.get(f"/api/v1/audit-logs?target=schedule:{created['id']}"), 200)["data"]["results"]
    assert [row["action"] for row in audit] == [
        "schedule.delete",
        "schedule.disable",
        "schedule.change",
        "schedule.create",
    ]
    assert audit[2]["details"]["changes"] == {"cron": [None, "0 1 * * *"], "interval_seconds": [300, None]}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"cron": "every day"}, ["cron"]),
        ({"cron": "0 0 31 2 *"}, ["cron"]),  # a date that never comes
        ({"cron": "61 * * * *"}, ["cron"]),
        ({"cron": "0 2 * * *", "interval_seconds": 60}, ["cron", "interval_seconds"]),
        ({}, ["cron", "interval_seconds"]),
        ({"interval_seconds": 4}, ["interval_seconds"]),
        ({"interval_seconds": "60"}, ["interval_seconds"]),
        ({"interval_seconds": 60, "params": {"steps": 0}}, ["params.steps"]),
        ({"interval_seconds": 60, "task_type": "nope"}, ["task_type"]),
        ({"interval_seconds": 60, "task_type": "test.schedule_only"}, ["task_type"]),
        ({"interval_seconds": 60, "batch_code": "NO_SUCH", "task_type": "statistics"}, ["batch_code"]),
        ({"interval_seconds": 60, "when": "now"}, ["when"]),
        ({"interval_seconds": 60, "name": ""}, ["name"]),
    ],
)
def test_bad_schedules_are_a_400_naming_the_field_and_create_nothing(manager, schedule_only_type, body, fields):
    response = client_for(manager).post(
        "/api/v1/schedules", {"name": "s", "task_type": "canary", **body}, format="json"
    )
    assert sorted(envelope_of(response, 400)["errors"]) == fields
    assert not Schedule.objects.filter(name="s").exists()
    assert not AuditLog.objects.filter(action="schedule.create").exists()


def test_a_taken_name_is_a_409_and_an_empty_change_a_400(manager):
    api = client_for(manager)
    body = {"name": "once", "task_type": "canary", "interval_seconds": 60}
    created = envelope_of(api.post("/api/v1/schedules", body, format="json"), 201)["data"]
    assert list(envelope_of(api.post("/api/v1/schedules", body, format="json"), 409)["errors"]) == ["name"]
    envelope_of(api.patch(f"/api/v1/schedules/{created['id']}", {}, format="json"), 400)
    envelope_of(api.patch(f"/api/v1/schedules/{created['id']}", {"interval_seconds": None}, format="json"), 400)
    envelope_of(api.get("/api/v1/schedules/99999999"), 404)
    envelope_of(api.get("/api/v1/schedules/abc"), 404)


def test_scheduling_a_type_needs_what_starting_it_needs(db):
    user = get_user_model().objects.create_user("scheduler")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_schedule", "add_task", "view_schedule"]))
    api = client_for(user)
    body = {"name": "purge", "task_type": "maintenance.purge", "params": {"days": 1}, "cron": "0 4 * * *"}
    refused = envelope_of(api.post("/api/v1/schedules", body, format="json"), 403)
    assert "tasks.delete_task" in refused["message"]
    assert envelope_of(api.post("/api/v1/schedules", {**body, "task_type": "canary", "params": {}}, format="json"), 201)


def test_the_list_runs_a_fixed_number_of_queries_whatever_the_page_size(manager, django_assert_max_num_queries):
    batch_create(actor=SYSTEM, batch_code="B1", data_source="student_assessments", config=CONFIG)
    for index in range(100):
        schedule = every(60, owner=manager, name=f"s{index:03}")
        task = Task.objects.create(task_type="canary", params={})
        Schedule.objects.filter(pk=schedule.pk).update(last_task=task)
    api = client_for(manager)
    with django_assert_max_num_queries(6):
        page = envelope_of(api.get("/api/v1/schedules?page_size=100"), 200)["data"]
    assert len(page["results"]) == 100


# --- the admin --------------------------------------------------------------------------------


def _admin(user):
    from django.test import Client

    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_the_admin_creates_and_changes_schedules_through_the_services(manager):
    client = _admin(manager)
    form = {
        "name": "admin-made",
        "task_type": "canary",
        "params": '{"seconds": 0}',
        "batch": "",
        "priority": "0",
        "cron": "",
        "interval_seconds": "30",
        "enabled": "on",
    }
    added = client.post("/admin/tasks/schedule/add/", form)
    assert added.status_code == 302, added.content.decode()[-2000:]
    schedule = Schedule.objects.get(name="admin-made")
    assert (schedule.interval_seconds, schedule.cron, schedule.created_by, schedule.enabled) == (
        30,
        None,
        manager,
        True,
    )
    refused = client.post(f"/admin/tasks/schedule/{schedule.pk}/change/", {**form, "cron": "0 1 * * *"})
    assert refused.status_code == 200 and "Give exactly one of cron and interval_seconds" in refused.content.decode()
    changed = client.post(
        f"/admin/tasks/schedule/{schedule.pk}/change/", {**form, "cron": "0 1 * * *", "interval_seconds": ""}
    )
    assert changed.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.interval_seconds) == ("0 1 * * *", None)
    actions = AuditLog.objects.filter(target_type="schedule").order_by("id").values_list("action", "actor_name")
    assert list(actions) == [("schedule.create", "manager"), ("schedule.change", "manager")]
    page = client.get("/admin/tasks/schedule/").content.decode()
    assert "admin-made" in page and "0 1 * * *" in page


def test_admin_enable_and_disable_actions_report_each_schedule(manager):
    first, second = every(60, owner=manager, name="a"), every(60, owner=manager, name="b")
    schedule_set_enabled(actor=actor_for(manager), schedule_id=second.pk, enabled=False)
    client = _admin(manager)
    response = client.post(
        "/admin/tasks/schedule/",
        {"action": "disable_schedules", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("1 disabled; 1 refused: ") and "already disabled" in message
    assert not Schedule.objects.filter(enabled=True, name__in=["a", "b"]).exists()
    client.post("/admin/tasks/schedule/", {"action": "enable_schedules", "_selected_action": [first.pk]})
    assert Schedule.objects.get(pk=first.pk).enabled
    assert AuditLog.objects.filter(action="schedule.enable", actor_name="manager").count() == 1


def test_the_schedule_changelist_runs_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries):
    for index in range(100):
        schedule = every(60, name=f"s{index:03}")
        task = Task.objects.create(task_type="canary", params={})
        Schedule.objects.filter(pk=schedule.pk).update(last_task=task)
    with django_assert_max_num_queries(12):
        response = admin_client.get("/admin/tasks/schedule/?all=")
    assert response.status_code == 200


# --- a real cluster, over HTTP ----------------------------------------------------------------


def _created_at(http, task_id) -> datetime:
    return datetime.fromisoformat(http("get", f"/api/v1/tasks/{task_id}")[1]["data"]["created_at"])


@pytest.mark.worker
def test_a_five_second_schedule_starts_tasks_on_time_skips_while_one_runs_and_stops_when_disabled(http):
    # Each task runs about 6 s: the run 5 s after the first finds it active and is skipped; the one
    # after 10 s finds it completed.
    body = {"name": "five", "task_type": "canary", "params": {"seconds": 6, "steps": 60}, "interval_seconds": 5}
    status, created = http("post", "/api/v1/schedules", body)
    assert status == 201
    schedule = created["data"]
    first_due = datetime.fromisoformat(schedule["next_run_at"])
    url = f"/api/v1/schedules/{schedule['id']}"

    def started() -> list[str]:
        query = "/api/v1/tasks?trigger=schedule&task_type=canary&page_size=100"
        return [task["task_id"] for task in reversed(http("get", query)[1]["data"]["results"])]

    first = wait_for(started, timeout=15, message="the first scheduled task")[0]
    # On time: runs are looked for every second.
    assert first_due <= _created_at(http, first) <= first_due + timedelta(seconds=3)
    assert http("get", url)[1]["data"]["last_task_id"] == first
    tasks = wait_for(lambda: started() if len(started()) >= 2 else None, timeout=25, message="a second task")
    second = tasks[1]
    # The run at +5 s found the first task processing: skipped, audited; the next ran at +10 s.
    assert first_due + timedelta(seconds=10) <= _created_at(http, second) <= first_due + timedelta(seconds=13)
    audit = http("get", f"/api/v1/audit-logs?target=schedule:{schedule['id']}&action=schedule.skip")[1]["data"]
    skipped = [row["details"] for row in audit["results"]]
    assert skipped and skipped[-1]["reason"] in {
        f"the task it started last ({first}) is still {status}" for status in ("pending", "processing")
    }
    assert datetime.fromisoformat(skipped[-1]["due_at"]) == first_due + timedelta(seconds=5)

    disabled = http("patch", url, {"enabled": False})[1]["data"]
    assert (disabled["enabled"], disabled["next_run_at"]) == (False, None)
    count = len(started())
    quiet_until = timezone.now() + timedelta(seconds=7)
    wait_for(lambda: timezone.now() > quiet_until, timeout=10, message="two intervals to pass")
    assert len(started()) == count, "a disabled schedule starts nothing"
    assert [
        row["action"]
        for row in http("get", f"/api/v1/audit-logs?target=schedule:{schedule['id']}")[1]["data"]["results"]
        if row["action"] != "schedule.skip"
    ] == ["schedule.disable", "schedule.create"]


@pytest.mark.worker
def test_a_cron_schedule_next_run_over_http_is_its_time_in_shanghai_on_the_previous_utc_day(http, settings):
    assert settings.TIME_ZONE == "Asia/Shanghai"
    before = timezone.now()
    created = http("post", "/api/v1/schedules", {"name": "night", "task_type": "canary", "cron": "30 2 * * *"})[1]
    next_at = datetime.fromisoformat(created["data"]["next_run_at"])
    local = next_at.astimezone(SHANGHAI)
    assert (local.hour, local.minute, local.second) == (2, 30, 0)
    assert next_at.astimezone(UTC).date() == local.date() - timedelta(days=1), "02:30 in Shanghai is 18:30 UTC"
    assert before < next_at <= before + timedelta(days=1)


@pytest.mark.worker
def test_with_the_redis_broker_the_pusher_runs_the_schedules_too(no_cluster, tmp_path):
    if not redis_answers():
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    cluster = Cluster(tmp_path, extra_env={"REDIS_URL": REDIS_URL}).start()
    try:
        schedule = every(5, name=f"redis-{uuid.uuid4().hex[:6]}")
        first_due = schedule.next_run_at
        task = wait_for(
            lambda: Task.objects.filter(trigger="schedule", status="completed").first(),
            timeout=30,
            message=f"a scheduled task run by the Redis cluster\n{cluster.log_tail()}",
        )
        assert first_due <= task.created_at <= first_due + timedelta(seconds=3)
        assert Schedule.objects.get(pk=schedule.pk).last_task_id == task.pk
    finally:
        cluster.stop()
