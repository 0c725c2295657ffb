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
