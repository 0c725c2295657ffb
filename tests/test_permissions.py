"""Every endpoint × {anonymous, no permission, viewer, operator, manager}: exactly the role's rights."""

from __future__ import annotations

import uuid

import pytest

from batches.services import batch_create
from tasks.actors import SYSTEM
from tasks.models import Schedule, Task
from tasks.roles import ROLES
from tasks.services import schedule_create, task_create
from tests.api_helpers import client_for

CONFIG = {"include_dimensions": ["academic"], "calculation_types": ["descriptive"]}
T = "{task}"
S = "{schedule}"
#: The bulk actions by filter (the API's and the admin's) and the permission each needs.
BULK_PERMISSIONS = {
    "cancel": "tasks.cancel_task",
    "pause": "tasks.pause_task",
    "resume": "tasks.pause_task",
    "retry": "tasks.retry_task",
    "delete": "tasks.delete_task",
}

#: (method, url, body, the permissions the endpoint needs)
ENDPOINTS = [
    ("get", "/api/v1/statistics/batches", None, ["batches.view_batch"]),
    (
        "post",
        "/api/v1/statistics/batches",
        {"batch_code": "NEW", "data_source": "student_assessments", "config": CONFIG},
        ["batches.add_batch"],
    ),
    ("get", "/api/v1/statistics/batches/B1", None, ["batches.view_batch"]),
    ("patch", "/api/v1/statistics/batches/B1", {"description": "x"}, ["batches.change_batch"]),
    (
        "put",
        "/api/v1/statistics/batches/B1",
        {"data_source": "student_assessments", "config": CONFIG},
        ["batches.change_batch"],
    ),
    ("delete", "/api/v1/statistics/batches/B1", None, ["batches.delete_batch"]),
    ("get", "/api/v1/statistics/batches/B1/results", None, ["batches.view_batch"]),
    ("post", "/api/v1/statistics/tasks/B1/start", None, ["tasks.start_task"]),
    ("post", "/api/v1/statistics/tasks/B1/cancel", None, ["tasks.cancel_task"]),
    ("get", f"/api/v1/statistics/tasks/{T}/status", None, ["tasks.view_task"]),
    ("get", f"/api/v1/statistics/tasks/{T}/progress", None, ["tasks.view_task"]),
    ("post", "/api/v1/statistics/tasks/batch-start", {"batch_codes": ["B1"]}, ["tasks.start_task"]),
    ("post", "/api/v1/statistics/tasks/batch-cancel", {"task_ids": [T]}, ["tasks.cancel_task"]),
    ("post", "/api/v1/statistics/tasks/batch-delete", {"task_ids": [T]}, ["tasks.delete_task"]),
    ("get", "/api/v1/tasks", None, ["tasks.view_task"]),
    ("post", "/api/v1/tasks", {"task_type": "canary", "params": {"seconds": 0}}, ["tasks.add_task"]),
    ("get", f"/api/v1/tasks/{T}", None, ["tasks.view_task"]),
    ("patch", f"/api/v1/tasks/{T}", {"params": {"steps": 2}}, ["tasks.change_task"]),
    ("delete", f"/api/v1/tasks/{T}", None, ["tasks.delete_task"]),
    ("post", f"/api/v1/tasks/{T}/cancel", None, ["tasks.cancel_task"]),
    ("post", f"/api/v1/tasks/{T}/pause", None, ["tasks.pause_task"]),
    ("post", f"/api/v1/tasks/{T}/resume", None, ["tasks.pause_task"]),
    ("post", f"/api/v1/tasks/{T}/retry", None, ["tasks.retry_task"]),
    ("get", f"/api/v1/tasks/{T}/logs", None, ["tasks.view_task"]),
    ("post", "/api/v1/tasks/batch-cancel", {"task_ids": [T]}, ["tasks.cancel_task"]),
    ("post", "/api/v1/tasks/batch-delete", {"task_ids": [T]}, ["tasks.delete_task"]),
    ("get", "/api/v1/tasks/statistics", None, ["tasks.view_task"]),
    ("get", "/api/v1/task-types", None, ["tasks.view_task"]),
    ("get", "/api/v1/task-types/canary", None, ["tasks.view_task"]),
    ("patch", "/api/v1/task-types/canary", {"max_concurrency": 2}, ["tasks.manage_queue"]),
    ("post", "/api/v1/task-types/canary/pause", None, ["tasks.manage_queue"]),
    ("post", "/api/v1/task-types/canary/resume", None, ["tasks.manage_queue"]),
    ("get", "/api/v1/data-sources", None, ["batches.view_batch"]),
    ("get", "/api/v1/audit-logs", None, ["tasks.view_auditlog"]),
    ("get", "/api/v1/schedules", None, ["tasks.view_schedule"]),
    (
        "post",
        "/api/v1/schedules",
        {"name": "new", "task_type": "canary", "interval_seconds": 60},
        # and what starting its task needs
        ["tasks.add_schedule", "tasks.add_task"],
    ),
    ("get", f"/api/v1/schedules/{S}", None, ["tasks.view_schedule"]),
    ("patch", f"/api/v1/schedules/{S}", {"enabled": False}, ["tasks.change_schedule"]),
    ("delete", f"/api/v1/schedules/{S}", None, ["tasks.delete_schedule"]),
    *[
        (
            "post",
            "/api/v1/tasks/bulk",
            {"action": action, "filter": {"task_type": "canary"}, "dry_run": dry_run},
            [perm],
        )
        for action, perm in BULK_PERMISSIONS.items()
        for dry_run in (True, False)
    ],
]
ROLE_NAMES = ["anonymous", "nobody", "viewer", "operator", "manager"]


def _fill(value, task_id, schedule_id=""):
    if isinstance(value, str):
        return value.replace(T, task_id).replace(S, schedule_id)
    if isinstance(value, list):
        return [_fill(v, task_id, schedule_id) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, task_id, schedule_id) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize(
    ("method", "url", "body", "needs"),
    ENDPOINTS,
    ids=[
        f"{m} {u}" + (f" {b['action']}{' dry' if b['dry_run'] else ''}" if "bulk" in u else "")
        for m, u, b, _ in ENDPOINTS
    ],
)
def test_permission_matrix(request, role, method, url, body, needs):
    request.getfixturevalue("roles")
    user = None if role == "anonymous" else request.getfixturevalue(role)
    batch_create(actor=SYSTEM, batch_code="B1", data_source="student_assessments", config=CONFIG)
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    schedule = schedule_create(actor=SYSTEM, name="S1", task_type="canary", interval_seconds=60)
    ids = (str(task.pk), str(schedule.pk))
    before = list(Task.objects.values_list("pk", "status"))
    schedules_before = list(Schedule.objects.values_list("pk", "enabled"))
    response = getattr(client_for(user), method)(_fill(url, *ids), _fill(body, *ids), format="json")
    granted = set(ROLES.get(role, [])) if user is not None else set()
    if user is None:
        expected = {401}
    elif not set(needs) <= granted:
        expected = {403}
    else:
        expected = None
    if expected is not None:
        assert response.status_code in expected, (response.status_code, response.content[:300])
        assert response.json()["success"] is False
        assert list(Task.objects.values_list("pk", "status")) == before, "a refused request changes nothing"
        assert list(Schedule.objects.values_list("pk", "enabled")) == schedules_before
    else:
        assert response.status_code not in (401, 403), (response.status_code, response.content[:300])


def test_services_check_permissions_whatever_the_door(viewer):
    from taskcenter.errors import PermissionDenied
    from tasks.actors import Actor
    from tasks.services import task_cancel

    task = task_create(actor=SYSTEM, task_type="canary", params={})
    with pytest.raises(PermissionDenied):
        task_cancel(actor=Actor(user=viewer), task_id=task.pk)
    assert Task.objects.get(pk=task.pk).status == "pending"
    assert uuid.UUID(str(task.pk))


def test_a_task_type_can_need_more_than_add_task(db, tmp_path, settings):
    """The purge deletes tasks: creating one needs delete_task too; an import needs
    add_assessmentrecord. A custom group with add_task alone starts neither (nor by a batch)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    settings.TASKCENTER_IMPORT_DIR = tmp_path
    (tmp_path / "june.csv").write_text("student_id\n")
    user = get_user_model().objects.create_user("adder", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="tasks", codename__in=["add_task", "view_task"])
    )
    client = client_for(user)
    for body in (
        {"task_type": "maintenance.purge", "params": {"days": 1}},
        {"task_type": "import_assessments", "params": {"path": "june.csv"}},
    ):
        refused = client.post("/api/v1/tasks", body, format="json")
        assert refused.status_code == 403 and "permission required" in refused.json()["message"]
    assert client.post("/api/v1/tasks", {"task_type": "canary", "params": {}}, format="json").status_code == 201
    assert Task.objects.count() == 1
    types = {t["name"]: t for t in client.get("/api/v1/task-types").json()["data"]}
    assert types["maintenance.purge"]["start_permissions"] == ["tasks.add_task", "tasks.delete_task"]


@pytest.mark.parametrize("task_type", ["maintenance.purge", "import_assessments"])
def test_the_manager_role_starts_every_task_type(manager, tmp_path, settings, task_type):
    settings.TASKCENTER_IMPORT_DIR = tmp_path
    (tmp_path / "june.csv").write_text("student_id\n")
    params = {"days": 1} if task_type == "maintenance.purge" else {"path": "june.csv"}
    response = client_for(manager).post("/api/v1/tasks", {"task_type": task_type, "params": params}, format="json")
    assert response.status_code == 201


def test_resuming_retrying_or_changing_a_task_needs_what_starting_its_type_needs(operator, tmp_path, settings):
    """An operator may retry tasks, but not set an import running again (publishing its rows):
    starting one needs add_assessmentrecord, which operators lack. Nor may someone with only
    change_task re-point it."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    settings.TASKCENTER_IMPORT_DIR = tmp_path
    (tmp_path / "june.csv").write_text("student_id\n")
    imports = [task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "june.csv"}) for _ in range(3)]
    Task.objects.filter(pk=imports[0].pk).update(status="cancelled")
    Task.objects.filter(pk=imports[1].pk).update(status="paused")
    client = client_for(operator)
    assert client.post(f"/api/v1/tasks/{imports[0].pk}/retry").status_code == 403
    assert client.post(f"/api/v1/tasks/{imports[1].pk}/resume").status_code == 403
    bulk = client.post("/api/v1/statistics/tasks/batch-cancel", {"task_ids": [str(imports[2].pk)]}, format="json")
    assert bulk.json()["data"]["success_count"] == 1  # cancelling stops work: no more is needed
    editor = get_user_model().objects.create_user("editor", is_staff=True)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["change_task", "view_task"]))
    refused = client_for(editor).patch(
        f"/api/v1/tasks/{imports[2].pk}", {"params": {"path": "june.csv"}}, format="json"
    )
    assert refused.status_code == 403
    assert list(Task.objects.order_by("created_at").values_list("status", flat=True)) == [
        "cancelled",
        "paused",
        "cancelled",
    ]


def test_a_type_users_may_not_start_is_refused_by_the_api_and_created_by_nothing(manager, schedule_only_type):
    from batches.services import batch_create

    batch_create(actor=SYSTEM, batch_code="B1", data_source="student_assessments", config=CONFIG)
    client = client_for(manager)
    for body in ({"task_type": schedule_only_type}, {"task_type": schedule_only_type, "batch_code": "B1"}):
        refused = client.post("/api/v1/tasks", body, format="json")
        assert refused.status_code == 400, refused.content[:300]
        assert schedule_only_type in refused.json()["message"]
        assert list(refused.json()["errors"]) == ["task_type"]
    assert not Task.objects.exists()
    # Code (a schedule) still creates it.
    task_create(actor=SYSTEM, task_type=schedule_only_type, params={}, trigger="schedule")
    assert Task.objects.filter(task_type=schedule_only_type).count() == 1


def test_deleting_a_batch_with_tasks_needs_delete_task_too(db):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from batches.models import Batch

    batch = batch_create(actor=SYSTEM, batch_code="B1", data_source="student_assessments", config=CONFIG)
    batch_create(actor=SYSTEM, batch_code="EMPTY", data_source="student_assessments", config=CONFIG)
    task = task_create(actor=SYSTEM, task_type="canary", params={}, batch=batch)
    Task.objects.filter(pk=task.pk).update(status="completed")
    user = get_user_model().objects.create_user("batcher", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="batches", codename__in=["delete_batch", "view_batch"])
    )
    client = client_for(user)
    refused = client.delete("/api/v1/statistics/batches/B1")
    assert refused.status_code == 403 and "tasks.delete_task" in refused.json()["message"]
    assert Batch.objects.filter(batch_code="B1").exists() and Task.objects.filter(pk=task.pk).exists()
    assert client.delete("/api/v1/statistics/batches/EMPTY").status_code == 200, "a batch without tasks needs no more"
    user.user_permissions.add(Permission.objects.get(content_type__app_label="tasks", codename="delete_task"))
    user = get_user_model().objects.get(pk=user.pk)  # permissions are cached per instance
    assert client_for(user).delete("/api/v1/statistics/batches/B1").status_code == 200
    assert not Task.objects.filter(pk=task.pk).exists()


def test_a_task_that_joins_a_batch_while_it_is_deleted_still_needs_delete_task(db, monkeypatch):
    """The permission is asked for whenever tasks are about to go, not once before."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from batches.models import Batch
    from tasks import store
    from tasks.runtime.registry import dependents_cleanups

    batch = batch_create(actor=SYSTEM, batch_code="LATE", data_source="student_assessments", config=CONFIG)

    def a_task_finishes_in_it_meanwhile(task_ids):
        if not Task.objects.filter(batch=batch).exists():
            late = task_create(actor=SYSTEM, task_type="canary", params={}, batch=batch)
            Task.objects.filter(pk=late.pk).update(status="completed")

    # The deletion's cleanups run before each chunk's transaction: the moment a task may join.
    monkeypatch.setattr(store, "dependents_cleanups", lambda: [*dependents_cleanups(), a_task_finishes_in_it_meanwhile])
    user = get_user_model().objects.create_user("batcher", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="batches", codename__in=["delete_batch", "view_batch"])
    )
    refused = client_for(user).delete("/api/v1/statistics/batches/LATE")
    assert refused.status_code == 403 and "tasks.delete_task" in refused.json()["message"]
    assert Batch.objects.filter(batch_code="LATE").exists() and Task.objects.filter(batch__batch_code="LATE").exists()


#: The schedules' admin pages and actions: who may open, add and run each.
ADMIN_SCHEDULES = {
    "anonymous": (302, 302, set()),  # to the login page
    "nobody": (403, 403, set()),
    "viewer": (200, 403, set()),
    "operator": (200, 403, set()),
    "manager": (200, 200, {"enable_schedules", "disable_schedules", "delete_schedules"}),
}


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_the_schedule_admin_per_role(request, role):
    from django.test import Client

    request.getfixturevalue("roles")
    schedule = schedule_create(actor=SYSTEM, name="S1", task_type="canary", interval_seconds=60)
    client = Client()
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    listing, adding, actions = ADMIN_SCHEDULES[role]
    response = client.get("/admin/tasks/schedule/")
    assert response.status_code == listing
    assert client.get("/admin/tasks/schedule/add/").status_code == adding
    if listing == 200:
        form = response.context["action_form"]
        offered = {name for name, _ in form.fields["action"].choices if name} if form else set()
        assert offered == actions
    # An action posted without its permission changes nothing.
    client.post("/admin/tasks/schedule/", {"action": "disable_schedules", "_selected_action": [schedule.pk]})
    assert Schedule.objects.get(pk=schedule.pk).enabled is (role != "manager")


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize("action", list(BULK_PERMISSIONS))
def test_admin_bulk_by_filter_matrix(request, role, action):
    """The admin's "apply to all N matching this filter" (select all, an action, its confirmation
    page, the confirmation): only with the action's permission, as the API."""
    from django.test import Client

    from tasks.models import AuditLog

    request.getfixturevalue("roles")
    user = None if role == "anonymous" else request.getfixturevalue(role)
    tasks = [task_create(actor=SYSTEM, task_type="canary", params={}) for _ in range(2)]
    before = list(Task.objects.values_list("pk", "status"))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    if user is not None:
        client.force_login(user)
    selected = {"action": f"{action}_tasks", "select_across": "1", "_selected_action": [str(tasks[0].pk)]}
    page = client.post("/admin/tasks/task/?task_type=canary", {**selected, "index": "0"})
    confirmed = client.post("/admin/tasks/task/?task_type=canary", {**selected, "confirm": "yes", "limit": "2"})
    allowed = user is not None and BULK_PERMISSIONS[action] in ROLES.get(role, [])
    if allowed:
        assert page.status_code == 200 and page.templates[0].name == "admin/tasks/task/bulk_by_filter.html"
        assert confirmed.status_code == 302 and AuditLog.objects.filter(action="task.bulk").count() == 1
        return
    if user is None:
        assert (page.status_code, confirmed.status_code) == (302, 302)  # to the login page
        assert "/login/" in page["Location"]
    else:
        shown = [template.name for template in page.templates]
        assert "admin/tasks/task/bulk_by_filter.html" not in shown
    assert list(Task.objects.values_list("pk", "status")) == before, "a refused request changes nothing"
    assert not AuditLog.objects.filter(action="task.bulk").exists()
