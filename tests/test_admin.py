"""The operators' admin: actions through the services, per-item messages, permissions, queries."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from batches.models import Batch
from batches.services import batch_create
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task
from tasks.runtime.worker import run_task
from tasks.services import task_create

CONFIG = {"include_dimensions": ["academic"], "calculation_types": ["descriptive"]}
pytestmark = pytest.mark.django_db

TASKS = "/admin/tasks/task/"
BATCHES = "/admin/batches/batch/"


def login(user, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def canaries(n: int, **params) -> list[Task]:
    return [
        task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1, **params}) for _ in range(n)
    ]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def available_actions(client, url) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["action_form"]  # None when the user may run no action at all
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", set()),
        ("operator", {"cancel_tasks", "pause_tasks", "resume_tasks", "retry_tasks"}),
        ("manager", {"cancel_tasks", "pause_tasks", "resume_tasks", "retry_tasks", "delete_tasks"}),
    ],
)
def test_task_actions_appear_only_with_their_permission(request, role, expected):
    canaries(1)
    assert available_actions(login(request.getfixturevalue(role)), TASKS) == expected


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", set()),
        ("operator", {"start_batches", "cancel_active_tasks"}),
        ("manager", {"start_batches", "cancel_active_tasks", "delete_batches"}),
    ],
)
def test_batch_actions_appear_only_with_their_permission(request, role, expected):
    batch_create(actor=SYSTEM, batch_code="B1", data_source="student_assessments", config=CONFIG)
    assert available_actions(login(request.getfixturevalue(role)), BATCHES) == expected


def test_cancel_reports_each_item(operator):
    pending = canaries(3)
    done = canaries(2)
    for task in done:
        run_task(str(task.pk))
    response = login(operator).post(
        TASKS, {"action": "cancel_tasks", "_selected_action": [str(t.pk) for t in pending + done]}, follow=True
    )
    [text] = messages_of(response)
    assert text.startswith("3 cancelled; 2 refused: ")
    assert all(str(t.pk) in text for t in done) and "completed" in text
    assert Task.objects.filter(status="cancelled").count() == 3
    assert AuditLog.objects.filter(action="task.cancel", actor_name="operator").count() == 3


@pytest.mark.parametrize(
    ("action", "setup_status", "after"),
    [
        ("pause_tasks", "processing", "paused"),
        ("resume_tasks", "paused", "pending"),
        ("retry_tasks", "failed", "pending"),
        ("cancel_tasks", "pending", "cancelled"),
    ],
)
def test_each_action_works_for_the_permitted_and_not_for_others(operator, viewer, action, setup_status, after):
    [task] = canaries(1)
    Task.objects.filter(pk=task.pk).update(
        status=setup_status, execution_id=uuid.uuid4() if setup_status == "processing" else None
    )
    refused = login(viewer).post(TASKS, {"action": action, "_selected_action": [str(task.pk)]}, follow=True)
    assert refused.status_code == 200
    assert Task.objects.get(pk=task.pk).status == setup_status, "a viewer changes nothing"
    done = login(operator).post(TASKS, {"action": action, "_selected_action": [str(task.pk)]}, follow=True)
    assert messages_of(done)[0].startswith("1 ")
    assert Task.objects.get(pk=task.pk).status == after


def test_delete_refuses_active_tasks_and_uses_the_service(manager, operator):
    active = canaries(1)[0]
    finished = canaries(1)[0]
    run_task(str(finished.pk))
    response = login(manager).post(
        TASKS, {"action": "delete_tasks", "_selected_action": [str(active.pk), str(finished.pk)]}, follow=True
    )
    assert messages_of(response)[0].startswith("1 deleted; 1 refused: ")
    assert list(Task.objects.values_list("pk", flat=True)) == [active.pk]
    assert AuditLog.objects.filter(action="task.delete").count() == 1
    denied = login(operator).post(TASKS, {"action": "delete_tasks", "_selected_action": [str(active.pk)]}, follow=True)
    assert denied.status_code == 200 and Task.objects.filter(pk=active.pk).exists()


def test_the_delete_page_of_an_active_task_or_batch_says_why_it_is_refused(manager):
    """The object's own Delete button: a message on its page, not a server error; nothing gone."""
    from django.contrib.admin.models import LogEntry

    from batches.services import batch_start

    batch_create(actor=SYSTEM, batch_code="ACTIVE", data_source="student_assessments", config=CONFIG)
    task = batch_start(actor=SYSTEM, batch_code="ACTIVE")
    client = login(manager)
    for url, change_url, why in (
        (f"{TASKS}{task.pk}/delete/", f"{TASKS}{task.pk}/change/", "is pending; cancel it before deleting"),
        (f"{BATCHES}{Batch.objects.get().pk}/delete/", f"{BATCHES}{Batch.objects.get().pk}/change/", "active task"),
    ):
        response = client.post(url, {"post": "yes"})
        assert (response.status_code, response.url) == (302, change_url)
        assert why in messages_of(response)[-1]
    assert Task.objects.filter(pk=task.pk).exists() and Batch.objects.filter(batch_code="ACTIVE").exists()
    assert not LogEntry.objects.exists()
    assert not AuditLog.objects.filter(action__in=["task.delete", "batch.delete"]).exists()


def test_start_and_cancel_batches_from_the_admin(operator, viewer):
    for code in ("B1", "B2"):
        batch_create(actor=SYSTEM, batch_code=code, data_source="student_assessments", config=CONFIG)
    login(viewer).post(BATCHES, {"action": "start_batches", "_selected_action": ["1", "2"]}, follow=True)
    assert not Task.objects.exists()
    ids = [str(pk) for pk in Batch.objects.values_list("pk", flat=True)]
    started = login(operator).post(BATCHES, {"action": "start_batches", "_selected_action": ids}, follow=True)
    assert messages_of(started)[0] == "2 started"
    assert set(Task.objects.values_list("trigger", flat=True)) == {"manual"}
    again = login(operator).post(BATCHES, {"action": "start_batches", "_selected_action": ids}, follow=True)
    assert messages_of(again)[0].startswith("0 started; 2 refused: ")
    cancelled = login(operator).post(BATCHES, {"action": "cancel_active_tasks", "_selected_action": ids}, follow=True)
    assert messages_of(cancelled)[0] == "2 cancelled"


def test_batch_form_validates_config_like_the_api(manager):
    client = login(manager)
    response = client.post(
        f"{BATCHES}add/",
        {
            "batch_code": "FORM_1",
            "description": "x",
            "data_source": "student_assessments",
            "config": '{"include_dimensions": ["sports"], "calculation_types": ["descriptive"]}',
        },
    )
    assert response.status_code == 200 and "sports" in response.content.decode()
    assert not Batch.objects.exists()
    created = client.post(
        f"{BATCHES}add/",
        {
            "batch_code": "FORM_1",
            "description": "x",
            "data_source": "student_assessments",
            "config": '{"include_dimensions": ["academic"], "calculation_types": ["descriptive"]}',
        },
    )
    assert created.status_code == 302
    assert AuditLog.objects.filter(action="batch.create", target_id="FORM_1", actor_name="manager").exists()


def test_audit_log_is_read_only_even_for_superusers(admin_client):
    task_create(actor=SYSTEM, task_type="canary", params={})
    entry = AuditLog.objects.first()
    assert admin_client.get("/admin/tasks/auditlog/").status_code == 200
    assert admin_client.get("/admin/tasks/auditlog/add/").status_code == 403
    assert admin_client.post(f"/admin/tasks/auditlog/{entry.pk}/change/", {}).status_code == 403
    assert admin_client.post(f"/admin/tasks/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_task_detail_shows_stages_params_result_and_logs(admin_client):
    [task] = canaries(1, steps=2)
    run_task(str(task.pk))
    page = admin_client.get(f"{TASKS}{task.pk}/change/").content.decode()
    assert "burn" in page and "steps_done" in page and "tc-progress" in page


@pytest.mark.parametrize("url", [TASKS, BATCHES])
def test_changelists_run_a_fixed_number_of_queries_at_100_rows(admin_client, django_assert_max_num_queries, url):
    counts = []
    for size in (10, 100):
        Task.objects.all().delete()
        Batch.objects.all().delete()
        for i in range(size):
            batch = batch_create(actor=SYSTEM, batch_code=f"B{i}", data_source="student_assessments", config=CONFIG)
            task_create(actor=SYSTEM, task_type="canary", params={}, batch=batch)
        with django_assert_max_num_queries(20) as captured:
            assert admin_client.get(url + "?all=").status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1], counts


def test_live_script_is_served_and_changelist_includes_it(admin_client):
    canaries(1)
    assert "taskcenter/live.js" in admin_client.get(TASKS).content.decode()


def test_per_item_messages_are_translated(operator):
    pending, done = canaries(2)
    run_task(str(done.pk))
    response = login(operator, "zh-hans").post(
        TASKS, {"action": "cancel_tasks", "_selected_action": [str(pending.pk), str(done.pk)]}, follow=True
    )
    assert messages_of(response)[0].startswith("1 个已取消；1 个被拒绝：")


def test_statistics_result_is_rendered_as_tables_heatmap_and_histograms(admin_client):
    from batches.assessments import generate
    from batches.services import batch_start

    generate(200, seed=5)
    batch_create(
        actor=SYSTEM,
        batch_code="VIS",
        data_source="student_assessments",
        config={
            "include_dimensions": ["academic", "non_academic"],
            "calculation_types": ["descriptive", "correlation", "distribution"],
        },
    )
    task = batch_start(actor=SYSTEM, batch_code="VIS")
    run_task(str(task.pk))
    page = admin_client.get(f"{TASKS}{task.pk}/change/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="tc-heatmap"' in page and page.count('class="tc-histogram"') == 10
    # 10 × 10 cells of 34 px right of 110 px of row labels; each label level with its row.
    assert '<svg id="tc-heatmap" width="454" height="344"' in page
    assert '<text x="106" y="20.0" font-size="10" text-anchor="end">chinese</text>' in page
    assert '<text x="106" y="326.0" font-size="10" text-anchor="end">mental_health</text>' in page
    assert "math × physics" in page and '<table class="tc-descriptive">' in page


def test_batch_page_has_a_start_button_for_operators_only(operator, viewer):
    batch = batch_create(actor=SYSTEM, batch_code="BTN", data_source="student_assessments", config=CONFIG)
    response = login(operator).get(f"{BATCHES}{batch.pk}/change/")
    assert response.status_code == 200 and 'id="tc-start-batch"' in response.content.decode()
    response = login(operator).post(f"{BATCHES}{batch.pk}/start/", follow=True)
    assert messages_of(response)[0].startswith("Started task ")
    assert Task.objects.filter(batch=batch, trigger="manual").count() == 1
    again = login(operator).post(f"{BATCHES}{batch.pk}/start/", follow=True)
    assert "already has an active task" in messages_of(again)[0]
    viewer_page = login(viewer).get(f"{BATCHES}{batch.pk}/change/")
    assert viewer_page.status_code == 200 and 'id="tc-start-batch"' not in viewer_page.content.decode()
    assert login(viewer).post(f"{BATCHES}{batch.pk}/start/").status_code == 403
    assert Task.objects.filter(batch=batch).count() == 1


def test_a_batch_started_from_its_page_takes_a_priority_and_a_start_time(operator, settings):
    from zoneinfo import ZoneInfo

    batch = batch_create(actor=SYSTEM, batch_code="LATER", data_source="student_assessments", config=CONFIG)
    refused = login(operator).post(f"{BATCHES}{batch.pk}/start/", {"priority": "500"}, follow=True)
    assert messages_of(refused)[0].startswith("priority: ")
    assert not Task.objects.filter(batch=batch).exists()
    started = login(operator).post(
        f"{BATCHES}{batch.pk}/start/", {"priority": "9", "run_after": "2030-01-02T03:04"}, follow=True
    )
    assert messages_of(started)[0].startswith("Started task ")
    task = Task.objects.get(batch=batch)
    # Typed in the admin's time zone, as every time the admin shows.
    assert (task.priority, task.run_after) == (9, datetime(2030, 1, 2, 3, 4, tzinfo=ZoneInfo(settings.TIME_ZONE)))
    page = login(operator).get(f"/admin/tasks/task/{task.pk}/change/").content.decode()
    assert "2030" in page


def test_task_page_pages_and_filters_logs_by_level(admin_client):
    from tasks.models import TaskLog

    [task] = canaries(1)
    TaskLog.objects.bulk_create(
        TaskLog(task=task, timestamp=task.created_at, level=40 if i % 10 == 0 else 20, message=f"line {i}")
        for i in range(250)
    )
    tail = admin_client.get(f"{TASKS}{task.pk}/change/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "line 249" in tail and "line 200" in tail and "line 199<" not in tail and "page 3 of 3" in tail
    assert "data-tail" in tail, "the newest lines: where the live tail appends"
    first = admin_client.get(f"{TASKS}{task.pk}/change/?log_page=1", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "line 0" in first and "line 99" in first and "line 100" not in first and "page 1 of 3" in first
    assert "data-tail" not in first
    errors = admin_client.get(f"{TASKS}{task.pk}/change/?log_level=error", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert errors.count('class="tc-log tc-log-error"') == 25 and "tc-log-info" not in errors


def test_batch_delete_and_cancel_actions_need_their_permissions(manager, operator, viewer):
    batch = batch_create(actor=SYSTEM, batch_code="DEL", data_source="student_assessments", config=CONFIG)
    from batches.services import batch_start

    batch_start(actor=SYSTEM, batch_code="DEL")
    ids = [str(batch.pk)]
    login(viewer).post(BATCHES, {"action": "cancel_active_tasks", "_selected_action": ids}, follow=True)
    assert Task.objects.get(batch=batch).status == "pending"
    refused = login(manager).post(BATCHES, {"action": "delete_batches", "_selected_action": ids}, follow=True)
    assert messages_of(refused)[0].startswith("0 deleted; 1 refused: ") and Batch.objects.filter(pk=batch.pk).exists()
    login(operator).post(BATCHES, {"action": "cancel_active_tasks", "_selected_action": ids}, follow=True)
    login(operator).post(BATCHES, {"action": "delete_batches", "_selected_action": ids}, follow=True)
    assert Batch.objects.filter(pk=batch.pk).exists(), "an operator may not delete batches"
    deleted = login(manager).post(BATCHES, {"action": "delete_batches", "_selected_action": ids}, follow=True)
    assert messages_of(deleted)[0] == "1 deleted" and not Batch.objects.filter(pk=batch.pk).exists()


def test_audit_log_filters_by_actor_action_and_date(admin_client, operator):
    from tests.conftest import actor_for

    task = task_create(actor=actor_for(operator), task_type="canary", params={}, check_permission=False)
    page = admin_client.get("/admin/tasks/auditlog/?actor_name=operator", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert str(task.pk) in page
    assert (
        "?actor_name=operator" in page
        and "?action=task.create" in admin_client.get("/admin/tasks/auditlog/").content.decode()
    )


def test_audit_log_filters_find_routine_worker_rows_and_operators_rows_alike(admin_client, operator):
    # The actor and action indexes leave the worker's routine rows out; the admin's filters do not.
    from tests.conftest import actor_for

    task = task_create(
        actor=actor_for(operator), task_type="canary", params={"seconds": 0, "steps": 1}, check_permission=False
    )
    assert run_task(str(task.pk)) == "completed"

    def count(query: str) -> int:
        return admin_client.get(f"/admin/tasks/auditlog/?{query}").context["cl"].result_count

    assert count(f"target_id={task.pk}") == 3
    assert count("action=worker.complete") == count("action=worker.claim") == 1
    assert count("actor_name=system&action=worker.claim") == 1
    assert count("actor_name=operator") == 1
    assert count("actor_name=operator&action=task.create") == 1
    assert count("actor_name=operator&action=worker.claim") == 0


@pytest.mark.parametrize(
    "url",
    [
        f"{TASKS}not-a-uuid/change/",
        f"{TASKS}not-a-uuid/delete/",
        f"{TASKS}not-a-uuid/history/",
        f"{BATCHES}abc/change/",
        "/admin/tasks/auditlog/abc/change/",
    ],
)
def test_an_object_url_whose_id_cannot_be_a_primary_key_is_a_404_without_querying_the_table(admin_client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    canaries(1)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url)
    assert response.status_code == 404
    # The session and the user are looked up (authentication); no model table is read.
    tables = ("tasks_", "batches_")
    assert [query["sql"] for query in captured if any(name in query["sql"] for name in tables)] == []


def test_starting_a_batch_whose_id_is_not_a_number_is_a_404(operator):
    assert login(operator).post(f"{BATCHES}abc/start/").status_code == 404


def test_audit_log_filters_list_every_actor_action_and_target_type_without_reading_the_whole_log(
    admin_client, operator
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import actor_for

    task = task_create(
        actor=actor_for(operator), task_type="canary", params={"seconds": 0, "steps": 1}, check_permission=False
    )
    assert run_task(str(task.pk)) == "completed"
    AuditLog.objects.create(actor_name="deleted-user", action="batch.delete", target_type="batch", target_id="B")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get("/admin/tasks/auditlog/?actor_name=operator", HTTP_ACCEPT_LANGUAGE="en")
    choices = {spec.field_path: set(spec.lookup_choices) for spec in response.context["cl"].filter_specs[:3]}
    assert choices == {
        "actor_name": {"system", "operator", "deleted-user"},
        "action": {"task.create", "worker.claim", "worker.complete", "batch.delete"},
        "target_type": {"task", "batch"},
    }
    # Neither a DISTINCT over a column nor every row's date truncated (the date hierarchy's
    # links): at a million rows, seconds each.
    sqls = [query["sql"] for query in captured]
    assert not [sql for sql in sqls if "DISTINCT" in sql]
    assert not [sql for sql in sqls if "trunc" in sql.lower()]
    page = response.content.decode()
    assert "total)" not in page or f"({AuditLog.objects.count()} total)" in page  # never a partial total
