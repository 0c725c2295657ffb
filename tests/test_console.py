"""The operators' console: a branded admin, django-q2's internals kept from operators, one clock."""

from __future__ import annotations

from datetime import UTC, datetime

from tasks.models import TaskLog


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
    return {action["operation"] for action in page.context["task_actions"]}


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
