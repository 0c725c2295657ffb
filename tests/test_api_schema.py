"""The OpenAPI document is exact: schemathesis finds no failure against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from batches.services import batch_create
from tasks.actors import SYSTEM
from tasks.runtime.worker import run_task
from tasks.services import task_create

SEED = "20261123"


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_failures_with_its_default_checks(transactional_db, manager, tmp_path):
    from tests.cluster import WebServer

    # Event streams of tasks that never finish here would otherwise stay open for minutes.
    live_server = WebServer(tmp_path, extra_env={"TASKCENTER_SSE_MAX_SECONDS": "1"}).start()
    try:
        _run_schemathesis(live_server, manager, tmp_path)
    finally:
        live_server.stop()
        # The tasks schemathesis created may be running on a qcluster of other tests: stop them.
        from tests.conftest import stop_all_tasks

        stop_all_tasks()


def _run_schemathesis(live_server, manager, tmp_path):
    token = Token.objects.create(user=manager).key
    batch = batch_create(
        actor=SYSTEM,
        batch_code="BATCH_2025_001",
        data_source="student_assessments",
        config={"include_dimensions": ["academic"], "calculation_types": ["descriptive"]},
    )
    done = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1}, batch=batch)
    run_task(str(done.pk))
    task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    st = Path(sys.executable).with_name("st")
    completed = subprocess.run(
        [
            str(st),
            "run",
            f"{live_server.url}/api/schema/",
            "--url",
            live_server.url,
            "-H",
            f"Authorization: Token {token}",
            "--seed",
            SEED,
            "--max-examples",
            "15",
            "--workers",
            "1",
            # No cluster runs here, so /readyz answers its documented 503, which schemathesis counts
            # as a server error (test_the_health_endpoints_are_documented_… checks it instead).
            "--exclude-path",
            "/readyz",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    report = completed.stdout[-6000:] + completed.stderr[-2000:]
    assert completed.returncode == 0, report
    assert "No issues found" in completed.stdout or " passed" in completed.stdout, report


def test_schema_documents_every_endpoint_with_the_envelope(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    schema = response.json()
    paths = schema["paths"]
    for path in [
        "/api/v1/statistics/batches",
        "/api/v1/statistics/batches/{batch_code}",
        "/api/v1/statistics/batches/{batch_code}/results",
        "/api/v1/statistics/tasks/{batch_code}/start",
        "/api/v1/statistics/tasks/{batch_code}/cancel",
        "/api/v1/statistics/tasks/{task_id}/status",
        "/api/v1/statistics/tasks/{task_id}/progress",
        "/api/v1/statistics/tasks/batch-start",
        "/api/v1/statistics/tasks/batch-cancel",
        "/api/v1/statistics/tasks/batch-delete",
        "/api/v1/tasks",
        "/api/v1/tasks/{task_id}",
        "/api/v1/tasks/{task_id}/cancel",
        "/api/v1/tasks/{task_id}/pause",
        "/api/v1/tasks/{task_id}/resume",
        "/api/v1/tasks/{task_id}/retry",
        "/api/v1/tasks/{task_id}/logs",
        "/api/v1/tasks/{task_id}/events",
        "/api/v1/tasks/batch-cancel",
        "/api/v1/tasks/batch-delete",
        "/api/v1/tasks/statistics",
        "/api/v1/task-types",
        "/api/v1/data-sources",
        "/api/v1/audit-logs",
    ]:
        assert path in paths, path
    ok = paths["/api/v1/tasks/{task_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["required"] == ["success", "code", "message", "data"]
    assert ok["properties"]["code"]["enum"] == [200]
    assert set(paths["/api/v1/tasks/{task_id}/cancel"]["post"]["responses"]) >= {"200", "401", "403", "404", "409"}
    # Log ids a client sends are bounded integers; anything else is a documented 400.
    for path, where, name in [
        ("/api/v1/tasks/{task_id}/logs", "query", "after_id"),
        ("/api/v1/tasks/{task_id}/events", "header", "Last-Event-ID"),
    ]:
        operation = paths[path]["get"]
        (parameter,) = [p for p in operation["parameters"] if (p["in"], p["name"]) == (where, name)]
        assert parameter["schema"] == {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}
        assert "400" in operation["responses"]
    status_enum = schema["components"]["schemas"]["TaskStatusEnum"]["enum"]
    assert status_enum == ["pending", "processing", "paused", "completed", "failed", "cancelled"]


def test_every_operation_carries_one_resource_tag(client):
    from django.conf import settings

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    declared = [tag["name"] for tag in settings.SPECTACULAR_SETTINGS["TAGS"]]
    assert declared == ["batches", "statistics tasks", "tasks", "task types", "audit", "data sources", "health"]
    assert [tag["name"] for tag in schema["tags"]] == declared
    used = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in declared, (method, path)
            used.add(operation["tags"][0])
    assert used == set(declared), "a declared tag that no operation carries"
    assert schema["paths"]["/api/v1/statistics/tasks/{task_id}/progress"]["get"]["tags"] == ["statistics tasks"]
    assert schema["paths"]["/api/v1/tasks/statistics"]["get"]["tags"] == ["tasks"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_health_endpoints_are_documented_and_answer_only_get_and_head(client, db, path):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert list(schema["paths"][path]) == ["get"]
    assert schema["paths"][path]["get"]["tags"] == ["health"]
    documented = schema["paths"][path]["get"]["responses"]
    assert str(client.get(path).status_code) in documented
    assert str(client.head(path).status_code) in documented
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)(path)
        assert response.status_code == 405, method
        assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_are_served_without_a_cdn(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower() and "https://" not in html.split("<body")[0]
