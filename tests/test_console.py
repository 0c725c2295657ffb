"""The operators' console: a branded admin, django-q2's internals kept from operators, one clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.models import Task, TaskLog, TaskStage, TaskType


def test_the_admin_is_taskcenter_in_both_languages(client, manager):
    client.force_login(manager)
    chinese = client.get("/admin/").content.decode()
    assert "任务中心" in chinese and "Django" not in chinese.split("<body")[1].split("</header>")[0]
    english = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<title>" in english and "taskcenter" in english.split("</title>")[0]


def test_django_q2_tables_are_internals_for_superusers_only(client, manager, admin_client):
    client.force_login(manager)
    assert "/admin/django_q/" not in client.get("/admin/").content.decode()
    for path in ("/admin/django_q/", "/admin/django_q/schedule/", "/admin/django_q/success/"):
        assert client.get(path).status_code in (403, 404), path
    index = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Internals (django-q2)" in index and "/admin/django_q/schedule/" in index
    assert admin_client.get("/admin/django_q/schedule/").status_code == 200


def test_log_lines_on_a_task_page_are_in_the_display_time_zone(admin_client, make_task, settings):
    assert settings.TIME_ZONE == "Asia/Shanghai"
    task = make_task(status="completed")
    TaskLog.objects.create(task=task, timestamp=datetime(2026, 1, 2, 4, 1, 3, tzinfo=UTC), message="loaded")
    page = admin_client.get(f"/admin/tasks/task/{task.pk}/change/").content.decode()
    assert "12:01:03 [" in page and "04:01:03" not in page
    assert "Asia/Shanghai" in page


def _buttons(client, task) -> set[str]:
    page = client.get(f"/admin/tasks/task/{task.pk}/change/")
    assert page.status_code == 200
    return {action["operation"] for action in page.context["task_actions"] if action["shown"]}


def test_a_task_page_offers_the_actions_its_status_and_the_user_allow(client, viewer, operator, manager, make_task):
    processing, failed = make_task(status="processing"), make_task(status="failed")
    client.force_login(viewer)
    assert _buttons(client, processing) == set() and _buttons(client, failed) == set()
    client.force_login(operator)
    assert _buttons(client, processing) == {"cancel", "pause"}
    assert _buttons(client, failed) == {"retry"}
    client.force_login(manager)
    assert _buttons(client, failed) == {"retry", "delete"}


def test_a_task_page_button_goes_through_the_service_and_says_what_happened(client, operator, make_task):
    from tasks.models import AuditLog, Task

    task = make_task(status="pending")
    client.force_login(operator)
    done = client.post(f"/admin/tasks/task/{task.pk}/steer/cancel/", follow=True)
    assert Task.objects.get(pk=task.pk).status == "cancelled"
    assert any("已取消" in str(message) or "cancelled" in str(message) for message in done.context["messages"])
    assert AuditLog.objects.filter(action="task.cancel", actor_name="operator", target_id=str(task.pk)).exists()
    again = client.post(f"/admin/tasks/task/{task.pk}/steer/pause/", follow=True)
    assert Task.objects.get(pk=task.pk).status == "cancelled", "refused: not processing"
    assert [message.level_tag for message in again.context["messages"]] == ["error"]
    assert client.get(f"/admin/tasks/task/{task.pk}/steer/retry/").status_code == 405


def test_a_viewer_posting_to_an_action_url_is_refused_and_nothing_changes(client, viewer, make_task):
    from tasks.models import AuditLog, Task

    task = make_task(status="processing")
    client.force_login(viewer)
    for operation in ("cancel", "pause", "delete"):
        assert client.post(f"/admin/tasks/task/{task.pk}/steer/{operation}/").status_code == 403
    assert client.post(f"/admin/tasks/task/{task.pk}/steer/explode/").status_code == 404
    assert Task.objects.get(pk=task.pk).status == "processing"
    assert not AuditLog.objects.exists()


def test_the_log_level_filter_is_a_form_of_its_own_not_one_inside_the_change_form(admin_client, make_task):
    from html.parser import HTMLParser

    class Forms(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth, self.deepest = 0, 0

        def handle_starttag(self, tag, attrs):
            if tag == "form":
                self.depth += 1
                self.deepest = max(self.deepest, self.depth)

        def handle_endtag(self, tag):
            if tag == "form":
                self.depth -= 1

    task = make_task(status="failed")
    TaskLog.objects.create(task=task, timestamp=datetime(2026, 1, 2, 4, 1, 3, tzinfo=UTC), message="loaded")
    page = admin_client.get(f"/admin/tasks/task/{task.pk}/change/").content.decode()
    forms = Forms()
    forms.feed(page)
    assert 'name="log_level"' in page and "loaded" in page
    assert forms.deepest == 1, "a form inside another: the browser drops the inner one"


# --- the dashboard ----------------------------------------------------------------------------


def _busy_day(make_task):
    """A paused, limited canary queue with a task waiting 5 minutes, one running (its stage and
    estimated end known), one failed and one completed statistics task in the last hour."""
    now = timezone.now()
    TaskType.objects.update_or_create(name="canary", defaults={"paused": True, "max_concurrency": 2})
    waiting = make_task(status="pending")
    Task.objects.filter(pk=waiting.pk).update(created_at=now - timedelta(minutes=5, seconds=3))
    running = make_task(status="processing", progress=40.0, started_at=now - timedelta(seconds=60))
    TaskStage.objects.create(task=running, name="burn", position=0, status="processing", progress=40.0)
    make_task(status="failed", error_category="data", error_message="bad rows", completed_at=now)
    make_task(
        status="completed",
        task_type="statistics",
        started_at=now - timedelta(seconds=30),
        completed_at=now - timedelta(seconds=18),
    )
    return running


def test_the_index_summarises_tasks_by_status_and_leads_to_the_dashboard(admin_client, make_task):
    make_task(status="failed")
    index = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="taskcenter-summary"' in index and 'href="/admin/dashboard/"' in index
    assert 'href="/admin/tasks/task/?status=failed"' in index


def test_the_dashboard_shows_queues_running_tasks_failures_and_charts(admin_client, make_task):
    running = _busy_day(make_task)
    response = admin_client.get("/admin/dashboard/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    canary = re.search(r'<tr>\s*<td><a href="/admin/tasks/task/\?task_type=canary">canary</a>.*?</tr>', page, re.S)[0]
    assert "Paused" in canary and "<td>2</td>" in canary, "paused, at most 2 at once"
    assert 'href="/admin/tasks/task/?task_type=canary&amp;status=pending">1<' in canary
    assert "5 min 3 s" in canary, "the oldest waiting task's age"
    assert 'href="/admin/tasks/task/?task_type=canary&amp;status=failed">1<' in canary
    assert f'href="/admin/tasks/task/{running.pk}/change/"' in page and ">burn<" in page
    assert "(in 1 min 30 s)" in page, "started 60 s ago at 40 %: 90 s to go"
    assert "bad rows" in page
    # The chart of all types: 24 hourly bars, the last one holding the two finished tasks.
    chart = page.split('id="tc-chart-all"')[1].split("</svg>")[0]
    titles = re.findall(r"<title>(.*?)</title>", chart)
    assert len(titles) == 24 and titles[-1].endswith("1 completed, 1 failed")
    assert re.findall(r'class="tc-tick">(\d+)</text>', chart) == ["0", "1", "2"], "y axis: 0, half, top"
    assert len(re.findall(r'class="tc-tick">\d\d:00</text>', chart)) == 8, "the time axis every 3 hours"
    assert page.count("tc-chart-type") == 2, "one chart per type that finished something"
    week = admin_client.get("/admin/dashboard/?window=7d", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert len(re.findall(r"<title>", week.split('id="tc-chart-all"')[1].split("</svg>")[0])) == 28


def test_the_dashboard_refreshes_its_body_from_a_fragment(admin_client, make_task):
    _busy_day(make_task)
    page = admin_client.get("/admin/dashboard/?window=7d").content.decode()
    assert 'data-fragment="?window=7d&amp;fragment=1"' in page and "taskcenter/dashboard.js" in page
    fragment = admin_client.get("/admin/dashboard/?window=7d&fragment=1").content.decode()
    assert "<html" not in fragment and 'id="tc-queues"' in fragment and "bad rows" in fragment


def test_the_dashboard_is_for_those_who_may_view_tasks(client, viewer, django_user_model):
    assert client.get("/admin/dashboard/").status_code == 302, "to the login page"
    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    assert client.get("/admin/dashboard/").status_code == 403
    assert "/admin/dashboard/" not in client.get("/admin/").content.decode()
    client.force_login(viewer)
    assert client.get("/admin/dashboard/").status_code == 200


def test_the_dashboard_queries_do_not_grow_with_the_tasks(admin_client, make_task):
    counts = []
    for n in (1, 30):
        for _ in range(n):
            _busy_day(make_task)
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/dashboard/").status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1], counts


def test_every_admin_page_names_the_time_zone_of_its_times(admin_client, make_task):
    task = make_task(status="completed")
    for path in ("/admin/", "/admin/tasks/task/", f"/admin/tasks/task/{task.pk}/change/", "/admin/tasks/auditlog/"):
        page = admin_client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert "Times in Asia/Shanghai (UTC+0800)" in page, path


# --- a task's page ----------------------------------------------------------------------------


def test_a_task_page_holds_every_permitted_button_and_hides_those_its_status_does_not_allow(
    client, operator, make_task
):
    task = make_task(status="processing")
    client.force_login(operator)
    page = client.get(f"/admin/tasks/task/{task.pk}/change/").content.decode()
    assert 'data-statuses="pending processing paused"' in page or 'data-statuses="' in page
    shown = {
        action["operation"]: action["shown"]
        for action in client.get(f"/admin/tasks/task/{task.pk}/change/").context["task_actions"]
    }
    assert shown == {"cancel": True, "pause": True, "resume": False, "retry": False}, "no delete for an operator"
    assert page.count("hidden>") >= 2 and 'id="tc-task-page"' in page


def test_the_whole_log_is_text_in_the_display_time_zone(client, viewer, django_user_model, make_task):
    task = make_task(status="completed")
    TaskLog.objects.create(task=task, timestamp=datetime(2026, 1, 2, 4, 1, 3, tzinfo=UTC), message="loaded")
    TaskLog.objects.create(task=task, timestamp=datetime(2026, 1, 2, 4, 1, 4, tzinfo=UTC), level=40, message="boom")
    client.force_login(viewer)
    page = client.get(f"/admin/tasks/task/{task.pk}/change/").content.decode()
    assert f'href="/admin/tasks/task/{task.pk}/log/?log_level=debug"' in page
    text = b"".join(client.get(f"/admin/tasks/task/{task.pk}/log/").streaming_content).decode()
    assert text.splitlines()[1:] == ["2026-01-02 12:01:03 [info] loaded", "2026-01-02 12:01:04 [error] boom"]
    assert "Asia/Shanghai" in text.splitlines()[0]
    errors = b"".join(client.get(f"/admin/tasks/task/{task.pk}/log/?log_level=error").streaming_content).decode()
    assert errors.splitlines()[1:] == ["2026-01-02 12:01:04 [error] boom"]
    assert client.get("/admin/tasks/task/00000000-0000-0000-0000-000000000000/log/").status_code == 404
    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    assert client.get(f"/admin/tasks/task/{task.pk}/log/").status_code == 403


def test_a_batch_page_lists_its_tasks_in_the_display_time_zone(admin_client, make_task):
    from batches.services import batch_create
    from tasks.actors import SYSTEM

    batch = batch_create(
        actor=SYSTEM,
        batch_code="CLOCK",
        data_source="student_assessments",
        config={"include_dimensions": ["academic"], "calculation_types": ["descriptive"]},
    )
    task = make_task(status="completed", task_type="statistics", batch=batch)
    Task.objects.filter(pk=task.pk).update(created_at=datetime(2026, 1, 2, 20, 30, tzinfo=UTC))
    page = admin_client.get(f"/admin/batches/batch/{batch.pk}/change/").content.decode()
    assert "2026-01-03 04:30" in page and "2026-01-02 20:30" not in page
