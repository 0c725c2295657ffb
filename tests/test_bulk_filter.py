"""Bulk actions by filter: ``POST /api/v1/tasks/bulk`` and the admin's "apply to all N matching".

A dry run changes nothing and counts what the real run then does; more matches than the limit
change nothing; every audit row of one action carries its ``bulk_id``; a large action holds the
SQLite write lock only briefly at a time."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.services import batch_create
from tasks.actors import SYSTEM
from tasks.api.serializers import NOT_BLANK
from tasks.models import AuditLog, Task
from tasks.services import BULK_OPERATIONS, MAX_BULK_LIMIT, tasks_bulk_apply
from tasks.states import TaskStatus
from tests.api_helpers import client_for, envelope_of
from tests.conftest import actor_for

BULK = "/api/v1/tasks/bulk"
TASKS = "/admin/tasks/task/"
CONFIG = {"include_dimensions": ["academic"], "calculation_types": ["descriptive"]}
#: The statuses each action applies to (the API's contract: docs/api.md, the steering endpoints).
APPLIES_TO = {
    "cancel": {"pending", "processing", "paused"},
    "pause": {"processing"},
    "resume": {"paused"},
    "retry": {"failed", "cancelled"},
    "delete": {"completed", "failed", "cancelled"},
}


@pytest.fixture
def api(manager):
    return client_for(manager)


def snapshot() -> tuple[list, int]:
    """Every task's row and how many audit rows there are: what a refused request must leave."""
    return list(Task.objects.order_by("pk").values()), AuditLog.objects.count()


def one_of_each_status(make_task, **fields) -> dict[str, Task]:
    return {status: make_task(status, **fields) for status in TaskStatus.values}


def bulk(api, body: dict, status: int = 200) -> dict:
    return envelope_of(api.post(BULK, body, format="json"), status)


# --- the API ----------------------------------------------------------------------------------


def test_a_dry_run_changes_nothing_and_its_counts_match_the_real_run(api, make_task):
    tasks = one_of_each_status(make_task) | {"another pending": make_task("pending")}
    make_task("pending", task_type="maintenance.purge")  # another type: not matched
    body = {"action": "cancel", "filter": {"task_type": "canary", "status": "pending,processing,completed"}}
    before = snapshot()

    dry = bulk(api, {**body, "dry_run": True})
    assert snapshot() == before, "a dry run writes nothing, not even an audit row"
    assert dry["data"] == {
        "matched": 4,
        "would_succeed": 3,
        "would_fail": 1,
        "sample": [str(tasks[key].pk) for key in ("pending", "processing", "completed", "another pending")],
    }
    assert "nothing changed" in dry["message"]

    done = bulk(api, body)["data"]
    assert (done["total_count"], done["success_count"], done["failed_count"]) == (4, 3, 1)
    assert done["results"][str(tasks["completed"].pk)] == {
        "success": False,
        "status": None,
        "error": f"task {tasks['completed'].pk} cannot go from completed to cancelled",
    }
    assert done["results"][str(tasks["processing"].pk)] == {"success": True, "status": "cancelled", "error": None}
    assert Task.objects.filter(task_type="canary", status="cancelled").count() == 4  # 3 now, 1 was already
    assert Task.objects.get(task_type="maintenance.purge").status == "pending"


@pytest.mark.parametrize("action", list(BULK_OPERATIONS))
def test_the_dry_run_says_of_every_task_what_the_action_then_does(db, roles, make_task, action):
    """Every status, a type the actor may not start (import_assessments needs
    add_assessmentrecord) and a type no longer registered: the dry run's verdict on each task is
    the real run's outcome, and each action applies to exactly the statuses of the contract."""
    user = get_user_model().objects.create_user("steerer", is_staff=True)
    codenames = ["view_task", "cancel_task", "pause_task", "retry_task", "delete_task"]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tasks", codename__in=codenames))
    actor = actor_for(user)
    canary = one_of_each_status(make_task)
    imports = one_of_each_status(make_task, task_type="import_assessments", params={"path": "june.csv"})
    gone = one_of_each_status(make_task, task_type="uninstalled.job")
    everything = [*canary.values(), *imports.values(), *gone.values()]

    def dry(task) -> bool:
        counts = tasks_bulk_apply(
            actor=actor, operation=action, tasks=Task.objects.filter(pk=task.pk), selection={}, dry_run=True
        )
        assert counts["matched"] == 1 and counts["would_succeed"] + counts["would_fail"] == 1
        return counts["would_succeed"] == 1

    predicted = {str(task.pk): dry(task) for task in everything}
    result = tasks_bulk_apply(actor=actor, operation=action, tasks=Task.objects.all(), selection={"all": True})
    assert {task_id: outcome["success"] for task_id, outcome in result["results"].items()} == predicted
    accepted = {status for status, task in canary.items() if result["results"][str(task.pk)]["success"]}
    assert accepted == APPLIES_TO[action]
    if action in ("resume", "retry"):  # they set the job running again: its type's permissions too
        assert not any(result["results"][str(task.pk)]["success"] for task in [*imports.values(), *gone.values()])
    else:
        accepted_imports = {s for s, task in imports.items() if result["results"][str(task.pk)]["success"]}
        assert accepted_imports == APPLIES_TO[action]


def test_more_matches_than_the_limit_is_a_409_naming_the_count_and_changes_nothing(api, make_task):
    for _ in range(5):
        make_task("pending")
    before = snapshot()
    for dry_run in (True, False):
        refused = bulk(
            api, {"action": "cancel", "filter": {"status": ["pending"]}, "limit": 4, "dry_run": dry_run}, 409
        )
        assert "5 tasks match" in refused["message"] and "limit of 4" in refused["message"]
    assert snapshot() == before
    assert bulk(api, {"action": "cancel", "filter": {"status": ["pending"]}, "limit": 5})["data"]["success_count"] == 5


def test_every_audit_row_of_one_action_carries_its_bulk_id(api, make_task, manager):
    retried = [make_task("failed"), make_task("cancelled")]
    refused = make_task("completed")
    first_row = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
    body = {"action": "retry", "filter": {"status": ["failed", "cancelled", "completed"]}}
    data = bulk(api, body)["data"]
    bulk_id = data["bulk_id"]
    assert uuid.UUID(bulk_id) and data["success_count"] == 2

    rows = list(AuditLog.objects.filter(id__gt=first_row).order_by("id"))
    assert [row.details.get("bulk_id") for row in rows] == [bulk_id] * 3
    assert [(row.action, row.target_id) for row in rows[:2]] == [("task.retry", str(t.pk)) for t in retried]
    summary = rows[-1]
    assert (summary.action, summary.target_type, summary.target_id, summary.actor_name) == (
        "task.bulk",
        "bulk",
        bulk_id,
        manager.username,
    )
    assert summary.details == {
        "action": "retry",
        "filter": body["filter"],
        "limit": 1000,
        "matched": 3,
        "success_count": 2,
        "failed_count": 1,
        "bulk_id": bulk_id,
    }
    found = api.get(f"/api/v1/audit-logs?target=bulk:{bulk_id}").json()["data"]["results"]
    assert [entry["action"] for entry in found] == ["task.bulk"]
    assert not AuditLog.objects.filter(target_id=str(refused.pk)).exists()

    # Another action gets another id; a deletion's rows carry it too.
    deleted = bulk(api, {"action": "delete", "filter": {"status": "completed"}})["data"]
    assert deleted["bulk_id"] != bulk_id and deleted["results"][str(refused.pk)]["status"] == "deleted"
    assert AuditLog.objects.get(action="task.delete").details["bulk_id"] == deleted["bulk_id"]


def test_filters_select_what_the_task_list_shows(api, make_task):
    batch = batch_create(actor=SYSTEM, batch_code="B1", data_source="student_assessments", config=CONFIG)
    now = timezone.now()
    make_task("failed", error_category="timeout", error_message="took too long")
    make_task("failed", error_category="data", error_message="bad row 7", batch=batch)
    make_task("cancelled", trigger="schedule", batch=batch)
    make_task("pending", task_type="maintenance.purge")
    Task.objects.filter(task_type="maintenance.purge").update(created_at=now - timedelta(days=2))
    filters = [
        ({"status": ["failed", "cancelled"]}, "status=failed,cancelled"),
        ({"status": "failed,cancelled"}, "status=failed&status=cancelled"),
        ({"task_type": "maintenance.purge"}, "task_type=maintenance.purge"),
        ({"batch_code": "B1"}, "batch_code=B1"),
        ({"data_source": "student_assessments"}, "data_source=student_assessments"),
        ({"trigger": "schedule"}, "trigger=schedule"),
        ({"created_before": (now - timedelta(days=1)).isoformat()}, None),
        ({"created_after": "2000-01-01T00:00:00"}, "created_after=2000-01-01T00:00:00"),
        ({"search": "row 7"}, "search=row%207"),
    ]
    for body_filter, query in filters:
        dry = bulk(api, {"action": "delete", "filter": body_filter, "dry_run": True})["data"]
        if query is not None:
            listed = api.get(f"/api/v1/tasks?{query}").json()["data"]["total"]
            assert dry["matched"] == listed, (body_filter, query)
        assert dry["matched"] > 0, body_filter
    categorised = bulk(api, {"action": "retry", "filter": {"error_category": "timeout"}, "dry_run": True})["data"]
    assert categorised["matched"] == 1 and categorised["would_succeed"] == 1
    assert Task.objects.get(pk=categorised["sample"][0]).error_message == "took too long"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "cancel", "filter": {}}, "filter"),
        ({"action": "cancel"}, "filter"),
        ({"action": "cancel", "filter": {"colour": "red"}}, "filter.colour"),
        ({"action": "cancel", "filter": {"status": "nope"}}, "filter.status"),
        ({"action": "cancel", "filter": {"status": "pending, failed"}}, "filter.status"),
        ({"action": "cancel", "filter": {"status": []}}, "filter.status"),
        ({"action": "cancel", "filter": {"status": ["pending", 3]}}, "filter.status"),
        ({"action": "cancel", "filter": {"trigger": "whim"}}, "filter.trigger"),
        ({"action": "cancel", "filter": {"error_category": "bad luck"}}, "filter.error_category"),
        ({"action": "cancel", "filter": {"created_after": "yesterday"}}, "filter.created_after"),
        ({"action": "cancel", "filter": {"search": " \t "}}, "filter.search"),
        ({"action": "cancel", "filter": {"task_type": ""}}, "filter.task_type"),
        ({"action": "cancel", "filter": {"task_type": 7}}, "filter.task_type"),
        ({"action": "explode", "filter": {"status": "pending"}}, "action"),
        ({"action": "cancel", "filter": {"status": "pending"}, "limit": 0}, "limit"),
        ({"action": "cancel", "filter": {"status": "pending"}, "limit": MAX_BULK_LIMIT + 1}, "limit"),
        ({"action": "cancel", "filter": {"status": "pending"}, "limit": "10"}, "limit"),
        ({"action": "cancel", "filter": {"status": "pending"}, "dry_run": "yes"}, "dry_run"),
        ({"action": "cancel", "filter": {"status": "pending"}, "force": True}, "force"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, make_task, body, field):
    make_task("pending")
    before = snapshot()
    refused = bulk(api, body, 400)
    assert field in refused["errors"], refused["errors"]
    assert snapshot() == before


def test_blank_text_is_python_whitespace_exactly():
    """The schema's pattern refuses what the filter would strip to nothing, and nothing else."""
    blank = re.compile(NOT_BLANK)
    for code in range(1, 0x3100):
        char = chr(code)
        assert (blank.search(char) is None) == char.isspace(), hex(code)


@pytest.mark.parametrize("action", list(BULK_OPERATIONS))
def test_without_the_actions_permission_it_is_a_403_before_any_task_is_read(viewer, make_task, action):
    make_task("pending")
    before = snapshot()
    with CaptureQueriesContext(connection) as queries:
        refused = envelope_of(
            client_for(viewer).post(BULK, {"action": action, "filter": {"status": "pending"}}, format="json"), 403
        )
    assert "permission required" in refused["message"]
    assert not [query for query in queries.captured_queries if "tasks_task" in query["sql"]]
    assert snapshot() == before


def test_an_operator_may_cancel_by_filter_but_not_delete(operator, make_task):
    make_task("cancelled")
    client = client_for(operator)
    assert bulk(client, {"action": "retry", "filter": {"status": "cancelled"}, "dry_run": True})["data"]["matched"] == 1
    envelope_of(client.post(BULK, {"action": "delete", "filter": {"status": "cancelled"}}, format="json"), 403)


# --- bounded transactions ---------------------------------------------------------------------


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_ten_thousand_tasks_never_hold_the_sqlite_write_lock_half_a_second(transactional_db, manager, capsys):
    """On SQLite a transaction holds the database's only write lock. Each task is cancelled in
    its own transaction: the backend, which records every hold of 0.5 s or more, records none
    during the action."""
    from taskcenter.db.sqlite3.base import LONG_HOLD_SECONDS, WriterLock

    now = timezone.now()
    Task.objects.bulk_create(
        [Task(task_type="canary", params={}, created_at=now, updated_at=now) for _ in range(MAX_BULK_LIMIT)],
        batch_size=500,
    )
    connection.ensure_connection()
    started = time.time()
    body = {"action": "cancel", "filter": {"task_type": "canary"}, "limit": MAX_BULK_LIMIT}
    data = bulk(client_for(manager), body)["data"]
    seconds = time.time() - started
    assert data["success_count"] == MAX_BULK_LIMIT
    assert Task.objects.filter(status="cancelled").count() == MAX_BULK_LIMIT

    lock = WriterLock(connection.connection.writer_lock.path, timeout=30)
    with lock:
        _, last_long_hold_ended = lock.unwritable()
    assert last_long_hold_ended < started, f"a write lock hold of {LONG_HOLD_SECONDS} s or more during the action"
    with capsys.disabled():
        each = seconds / MAX_BULK_LIMIT * 1e3
        print(f"\n{MAX_BULK_LIMIT} tasks cancelled by filter in {seconds:.1f} s ({each:.2f} ms each)")


# --- the admin --------------------------------------------------------------------------------


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def select_all(action: str, *, page_ids=()) -> dict:
    """What the changelist posts after "Select all N": the action, select_across, the page's boxes."""
    return {"action": action, "select_across": "1", "index": "0", "_selected_action": [str(i) for i in page_ids]}


def confirmation(action: str, limit: int, page_ids=()) -> dict:
    """What the confirmation page posts back."""
    return {
        "action": action,
        "select_across": "1",
        "confirm": "yes",
        "limit": str(limit),
        "_selected_action": [str(i) for i in page_ids],
    }


def test_the_admin_applies_an_action_to_all_tasks_matching_the_filter_after_a_dry_run(operator, make_task):
    pending = [make_task("pending") for _ in range(3)]
    finished = make_task("completed")
    other = make_task("pending", task_type="maintenance.purge")
    client = login(operator)
    url = f"{TASKS}?task_type=canary"
    before = snapshot()

    page = client.post(url, select_all("cancel_tasks", page_ids=[pending[0].pk]))
    assert page.status_code == 200 and page.templates[0].name == "admin/tasks/task/bulk_by_filter.html"
    outcome = page.context["outcome"]
    assert (outcome["matched"], outcome["would_succeed"], outcome["would_fail"]) == (4, 3, 1)
    html = page.content.decode()
    assert "Yes, apply to all 4 tasks" in html and "task_type" in html and str(pending[0].pk) in html
    assert snapshot() == before, "the confirmation page changes nothing"

    done = client.post(url, confirmation("cancel_tasks", 4, page_ids=[pending[0].pk]), follow=True)
    assert messages_of(done) == [
        f"3 cancelled; 1 refused: {finished.pk}: task {finished.pk} cannot go from completed to cancelled"
    ]
    assert Task.objects.filter(status="cancelled").count() == 3
    assert Task.objects.get(pk=other.pk).status == "pending", "outside the filter"
    summary = AuditLog.objects.get(action="task.bulk")
    assert summary.details["filter"] == {"task_type": "canary"} and summary.actor_name == operator.username
    assert AuditLog.objects.filter(action="task.cancel", details__bulk_id=summary.target_id).count() == 3


def test_the_admin_refuses_when_more_tasks_match_than_confirmed(operator, make_task):
    tasks = [make_task("pending") for _ in range(3)]
    before = snapshot()
    refused = login(operator).post(TASKS, confirmation("cancel_tasks", 2, page_ids=[tasks[0].pk]), follow=True)
    assert messages_of(refused) == ["3 tasks match this filter now, more than the 2 confirmed: nothing was done."]
    assert snapshot() == before


def test_the_admin_refuses_more_tasks_than_one_action_may_change(operator, make_task, monkeypatch):
    from tasks import admin_helpers

    monkeypatch.setattr(admin_helpers, "MAX_BULK_LIMIT", 2)
    tasks = [make_task("pending") for _ in range(3)]
    refused = login(operator).post(TASKS, select_all("cancel_tasks", page_ids=[tasks[0].pk]), follow=True)
    assert messages_of(refused) == ["3 tasks match this filter, more than 2 at once: narrow the filter."]
    assert not Task.objects.exclude(status="pending").exists()


def test_a_viewer_can_neither_see_nor_run_the_action(viewer, make_task):
    task = make_task("pending")
    client = login(viewer)
    assert client.get(TASKS).context["action_form"] is None, "no action is offered"
    for body in (select_all("cancel_tasks", page_ids=[task.pk]), confirmation("cancel_tasks", 1, page_ids=[task.pk])):
        response = client.post(TASKS, body, follow=True)
        assert response.status_code == 200 and "admin/tasks/task/bulk_by_filter.html" not in [
            t.name for t in response.templates
        ]
    assert Task.objects.get(pk=task.pk).status == "pending" and not AuditLog.objects.exists()


def test_an_operator_cannot_delete_by_filter(operator, make_task):
    task = make_task("completed")
    response = login(operator).post(TASKS, confirmation("delete_tasks", 1, page_ids=[task.pk]), follow=True)
    assert "No action selected." in messages_of(response)
    assert Task.objects.filter(pk=task.pk).exists()


def test_the_confirmation_page_runs_a_fixed_number_of_queries(operator, make_task):
    counts = []
    for size in (5, 300):
        Task.objects.all().delete()
        for _ in range(size):
            make_task("pending")
        client = login(operator)
        with CaptureQueriesContext(connection) as queries:
            page = client.post(TASKS, select_all("retry_tasks", page_ids=[Task.objects.first().pk]))
        assert page.status_code == 200 and page.context["outcome"]["matched"] == size
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
