"""Operations: /healthz, /readyz, /metrics (restricted, moving with real work), resource
monitoring, structured logs."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from taskcenter.logformat import JsonFormatter, PlainFormatter
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.services import task_cancel, task_create
from tests.cluster import wait_for


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:200]
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def canary(**params) -> Task:
    return task_create(actor=SYSTEM, task_type="canary", params=params)


def test_healthz_is_alive_and_readyz_names_the_missing_cluster(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failing"] == ["clusters"]
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert "qcluster" in body["checks"]["clusters"]


def test_readyz_names_a_broker_that_does_not_answer(client, db, monkeypatch, manager):
    class DeadBroker:
        def ping(self):
            raise ConnectionError("connection refused")

    monkeypatch.setattr("django_q.brokers.get_broker", lambda *a, **k: DeadBroker())
    body = client.get("/readyz").json()
    assert body["failing"] == ["broker"] and body["checks"]["broker"].startswith("broker unreachable")
    assert body["checks"]["clusters"] == "skipped"
    assert "connection refused" not in json.dumps(body), "an anonymous caller sees no exception text"
    client.force_login(manager)
    staff = client.get("/readyz").json()
    assert staff["details"] == {"broker": "ConnectionError: connection refused"}


@pytest.mark.django_db(transaction=True)
def test_readyz_names_a_missing_cluster_registry_table_not_a_missing_cluster(client, manager):
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE taskcenter_cluster_cache")
    try:
        response = client.get("/readyz")
        body = response.json()
        assert response.status_code == 503 and body["failing"] == ["clusters"]
        reason = body["checks"]["clusters"]
        assert "taskcenter_cluster_cache" in reason and "migrate" in reason and "no live" not in reason
        assert "table" not in json.dumps(body).replace(reason, ""), "no database error text for anonymous callers"
        client.force_login(manager)
        assert "taskcenter_cluster_cache" in client.get("/readyz").json()["details"]["clusters"]
    finally:
        call_command("createcachetable", verbosity=0)


def test_readyz_hides_database_errors_from_anonymous_callers(client, db, monkeypatch):
    from django.db import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    with monkeypatch.context() as patch:  # undone before the test database is rolled back
        patch.setattr("taskcenter.views.connection.cursor", refuse)
        response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503 and body["failing"] == ["database"]
    assert body["checks"]["database"].startswith("database unreachable")
    assert "db.internal" not in response.content.decode() and "details" not in body


def test_readyz_answers_503_to_a_logged_in_user_while_the_database_is_down(client, db, monkeypatch, django_user_model):
    """The session (kept in the database) cannot be read either: the caller counts as anonymous."""
    from django.db import OperationalError

    client.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))

    def refuse(*args, **kwargs):
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    with monkeypatch.context() as patch:
        patch.setattr("taskcenter.views.connection.cursor", refuse)
        response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failing"] == ["database"]
    assert "db.internal" not in response.content.decode()


def test_readyz_is_ready_with_a_live_cluster(client, cluster):
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=20, message="readyz to turn ready")
    assert client.get("/readyz").json()["checks"] == {"database": "ok", "broker": "ok", "clusters": "ok"}


def test_metrics_are_only_for_the_token_or_allowed_networks(client, db, settings):
    assert client.get("/metrics").status_code == 200, "loopback is allowed by default"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200 and b"taskcenter_tasks" in ok.content


def test_request_metrics_count_by_route_not_by_raw_path(client, db, manager):
    api = APIClient()
    api.force_authenticate(manager)
    before = scrape(client)
    task = canary(seconds=0, steps=1)
    for _ in range(3):
        assert api.get(f"/api/v1/tasks/{task.pk}").status_code == 200
    after = scrape(client)
    labels = {"method": "GET", "route": "/api/v1/tasks/{task_id}", "status": "200"}
    routes = {dict(k[1])["route"] for k in after if k[0] == "taskcenter_http_requests_total"}
    assert not any(str(task.pk) in route for route in routes), "ids never become labels"
    assert (
        value(after, "taskcenter_http_requests_total", **labels)
        - value(before, "taskcenter_http_requests_total", **labels)
        == 3
    )


def test_task_metrics_move_when_tasks_run_fail_retry_and_are_cancelled(client, cluster):
    before = scrape(client)
    done = canary(seconds=0.2, steps=2)
    failing = canary(seconds=0, steps=2, fail_at_step=1, fail_times=10)
    running = canary(seconds=30, steps=300)
    wait_for(lambda: Task.objects.filter(pk=running.pk, progress__gt=0).exists(), timeout=20, message="progress")
    task_cancel(actor=SYSTEM, task_id=running.pk)
    wait_for(
        lambda: Task.objects.filter(pk=running.pk, execution_id__isnull=True).exists(), timeout=10, message="release"
    )
    wait_for(
        lambda: (
            Task.objects.filter(pk=done.pk, status="completed").exists()
            and Task.objects.filter(pk=failing.pk, status="failed", attempt=3).exists()
        ),
        timeout=60,
        message="one completion and a final failure",
    )
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("taskcenter_task_duration_seconds_count", task_type="canary") >= 1
    assert delta("taskcenter_task_duration_seconds_sum", task_type="canary") >= 0.2
    assert delta("taskcenter_task_failures_total", task_type="canary", category="system") == 3
    assert delta("taskcenter_task_retries_total", task_type="canary", category="system") == 2
    assert delta("taskcenter_cancel_latency_seconds_count") == 1
    assert 0 < delta("taskcenter_cancel_latency_seconds_sum") < 1.0
    canaries = Task.objects.filter(task_type="canary")
    counts = {status: canaries.filter(status=status).count() for status in ("completed", "failed")}
    assert value(after, "taskcenter_tasks", status="completed", task_type="canary") == counts["completed"]
    assert value(after, "taskcenter_tasks", status="failed", task_type="canary") == counts["failed"]
    assert value(after, "taskcenter_clusters") >= 1 and value(after, "taskcenter_workers") >= 2


def test_worker_resources_reach_the_statistics_endpoint_and_metrics(client, cluster, manager):
    api = APIClient()
    api.force_authenticate(manager)
    for _ in range(4):
        canary(seconds=0.3, steps=3)

    def reported():
        resources = api.get("/api/v1/tasks/statistics").json()["data"]["resources"]
        return resources if resources and resources[0]["workers"] >= 2 else None

    resources = wait_for(reported, timeout=20, message="workers to report their resources")
    host = resources[0]
    assert host["memory_bytes"] > 10 * 1024 * 1024, "resident memory of real worker processes"
    assert host["cpu_percent"] >= 0 and host["tasks_per_minute"] >= 0
    wait_for(
        lambda: api.get("/api/v1/tasks/statistics").json()["data"]["resources"][0]["tasks_per_minute"] > 0,
        timeout=20,
        message="a task rate after tasks ran",
    )
    samples = scrape(client)
    assert value(samples, "taskcenter_worker_memory_bytes", host=host["host"]) > 0


def test_api_calls_and_state_changes_log_one_structured_line_each(
    db, manager, caplog, django_capture_on_commit_callbacks
):
    api = APIClient()
    api.force_authenticate(manager)
    # State changes are logged once committed.
    with caplog.at_level(logging.INFO, logger="taskcenter"), django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/tasks", {"task_type": "canary", "params": {"steps": 1}}, format="json")
    assert response.status_code == 201
    access = [r for r in caplog.records if r.name == "taskcenter.access"]
    assert len(access) == 1
    line = json.loads(JsonFormatter().format(access[0]))
    assert line["method"] == "POST" and line["status"] == 201 and line["user"] == "manager"
    assert line["route"] == "/api/v1/tasks" and line["duration_ms"] > 0
    changes = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "taskcenter.audit"]
    assert [(c["action"], c["to_status"], c["actor"]) for c in changes] == [("task.create", "pending", "manager")]


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_log_format_setting_is_applied(fmt, tmp_path):
    import os
    import subprocess
    import sys

    code = (
        "import logging, django; django.setup(); "
        "logging.getLogger('taskcenter.audit').info('hello', extra={'action': 'x.y'})"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings", "LOG_FORMAT": fmt}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stderr
    line = out.strip().splitlines()[-1]
    if fmt == "json":
        assert json.loads(line)["action"] == "x.y"
    else:
        assert line.endswith("hello action=x.y")


def test_plain_log_lines_show_the_time_of_each_line_and_its_structured_fields():
    pattern = "%(asctime)s %(levelname)s %(name)s %(message)s"
    ours, standard = PlainFormatter(pattern), logging.Formatter(pattern)
    first = logging.LogRecord("taskcenter.audit", logging.INFO, __file__, 1, "a → b", (), None)
    for shift in (0.0, 0.25, 1.0, 3600.5):  # the same second again, then later ones
        record = logging.LogRecord("taskcenter.audit", logging.INFO, __file__, 1, "a → b", (), None)
        record.created = first.created + shift
        record.msecs = (record.created - int(record.created)) * 1000
        record.action = "task.cancel"
        assert ours.format(record) == standard.format(record) + " action=task.cancel"
