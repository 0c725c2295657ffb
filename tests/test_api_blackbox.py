"""Black-box: real HTTP to gunicorn, a real qcluster, the endpoints' flows and every error code.

Every answer is checked against the OpenAPI document the server serves, exactly
(``tests/api_contract.py``), and the last test checks that every operation of the document
answered a 2xx here."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest
from rest_framework.authtoken.models import Token

from tests.api_contract import Http
from tests.api_helpers import EXAMPLE_BATCH
from tests.cluster import WebServer, wait_for

pytestmark = pytest.mark.worker


def busy_workers(http, cluster) -> list[str]:
    """Long canaries on every worker of the cluster: a task created meanwhile stays pending."""
    count = int(cluster.env["Q_WORKERS"])
    ids = [
        http("post", "/api/v1/tasks", {"task_type": "canary", "params": {"seconds": 30, "steps": 300}})[1]["data"][
            "task_id"
        ]
        for _ in range(count)
    ]
    wait_for(
        lambda: all(http("get", f"/api/v1/tasks/{task_id}")[1]["data"]["status"] == "processing" for task_id in ids),
        message="the canaries to occupy every worker",
    )
    return ids


def test_a_batch_lifecycle_through_the_running_service(http, cluster):
    batch = EXAMPLE_BATCH
    sources = http("get", "/api/v1/data-sources")[1]["data"]
    assert "student_assessments" in [source["name"] for source in sources]
    assert http("post", "/api/v1/statistics/batches", batch)[0] == 201
    patched = http("patch", "/api/v1/statistics/batches/BATCH_2025_001", {"description": batch["description"]})
    assert patched[1]["data"]["description"] == batch["description"]
    assert http("get", "/api/v1/statistics/batches?search=" + urllib.parse.quote("第一批"))[1]["data"]["total"] == 1
    status, started = http("post", "/api/v1/statistics/tasks/BATCH_2025_001/start")
    assert status == 202
    task_id = started["data"]["task_id"]
    wait_for(
        lambda: http("get", f"/api/v1/statistics/tasks/{task_id}/status")[1]["data"]["status"] == "completed",
        timeout=60,
        message="the statistics task to complete",
    )
    progress = http("get", f"/api/v1/statistics/tasks/{task_id}/progress")[1]["data"]
    assert progress["overall_progress"] == 100.0
    assert [(s["stage"], s["status"], s["progress"]) for s in progress["stage_details"]] == [
        ("data_loading", "completed", 100.0),
        ("statistical_calculation", "completed", 100.0),
        ("result_aggregation", "completed", 100.0),
    ]
    results = http("get", "/api/v1/statistics/batches/BATCH_2025_001/results")[1]["data"]
    assert results["task_id"] == task_id and results["result"]["records"] == 3000
    assert len(results["result"]["correlation"]["matrix"]) == 10

    # With every worker busy the batch's next task stays pending: cancelled by its batch, then deleted.
    canaries = busy_workers(http, cluster)
    started = http("post", "/api/v1/statistics/tasks/batch-start", {"batch_codes": ["BATCH_2025_001", "NO_SUCH"]})
    assert (started[0], started[1]["data"]["success_count"], started[1]["data"]["failed_count"]) == (200, 1, 1)
    second = started[1]["data"]["results"]["BATCH_2025_001"]["task_id"]
    cancelled = http("post", "/api/v1/statistics/tasks/BATCH_2025_001/cancel")[1]["data"]
    assert (cancelled["task_id"], cancelled["status"]) == (second, "cancelled")
    freed = http("post", "/api/v1/statistics/tasks/batch-cancel", {"task_ids": canaries})[1]["data"]
    assert freed["success_count"] == 2
    deleted = http("post", "/api/v1/statistics/tasks/batch-delete", {"task_ids": [second]})[1]["data"]
    assert deleted["results"][second] == {"success": True, "status": "deleted", "error": None}
    assert http("put", "/api/v1/statistics/batches/BATCH_2025_001", {**batch, "description": "x"})[0] == 400
    edited = {"description": "改", "data_source": "student_assessments", "config": batch["config"]}
    assert http("put", "/api/v1/statistics/batches/BATCH_2025_001", edited)[1]["data"]["description"] == "改"
    detail = http("get", "/api/v1/statistics/batches/BATCH_2025_001")[1]["data"]
    assert detail["task_count"] == 1 and detail["latest_task"]["status"] == "completed"
    assert http("delete", "/api/v1/statistics/batches/BATCH_2025_001")[0] == 200
    assert http("get", f"/api/v1/tasks/{task_id}")[0] == 404
    audit = http("get", "/api/v1/audit-logs?target=batch:BATCH_2025_001")[1]["data"]["results"]
    assert [entry["action"] for entry in audit] == ["batch.delete", "batch.update", "batch.update", "batch.create"]


def test_steering_running_tasks_through_the_running_service(http, cluster):
    assert "canary" in [task_type["name"] for task_type in http("get", "/api/v1/task-types")[1]["data"]]
    task_id, other = busy_workers(http, cluster)
    # A task that waits for a worker, edited while pending, cancelled and deleted.
    waiting = http("post", "/api/v1/tasks", {"task_type": "canary", "params": {"seconds": 0, "steps": 1}})[1]["data"]
    edited = http("patch", f"/api/v1/tasks/{waiting['task_id']}", {"params": {"seconds": 0, "steps": 2}})[1]
    assert edited["data"]["status"] == "pending" and edited["data"]["params"]["steps"] == 2
    assert http("post", f"/api/v1/tasks/{waiting['task_id']}/cancel")[1]["data"]["status"] == "cancelled"
    assert http("delete", f"/api/v1/tasks/{waiting['task_id']}")[0] == 200
    assert http("get", f"/api/v1/tasks/{waiting['task_id']}")[0] == 404
    assert http("post", f"/api/v1/tasks/{other}/cancel")[1]["data"]["status"] == "cancelled"

    wait_for(lambda: http("get", f"/api/v1/tasks/{task_id}")[1]["data"]["progress"] > 5, message="progress")
    assert http("post", f"/api/v1/tasks/{task_id}/pause")[1]["data"]["status"] == "paused"
    assert http("post", f"/api/v1/tasks/{task_id}/pause")[0] == 409
    assert http("post", f"/api/v1/tasks/{task_id}/resume")[1]["data"]["status"] == "pending"
    wait_for(lambda: http("get", f"/api/v1/tasks/{task_id}")[1]["data"]["status"] == "processing", message="resumed")
    page = http("get", "/api/v1/tasks?status=processing&task_type=canary&page=1&page_size=10")[1]["data"]
    assert [t["task_id"] for t in page["results"]] == [task_id]
    assert http("post", "/api/v1/tasks/batch-cancel", {"task_types": ["canary"]})[1]["data"]["success_count"] == 1
    detail = http("get", f"/api/v1/tasks/{task_id}")[1]["data"]
    assert detail["status"] == "cancelled" and detail["result"] is None
    refused = http("post", f"/api/v1/tasks/{task_id}/cancel")
    assert refused[0] == 409
    logs = http("get", f"/api/v1/tasks/{task_id}/logs?level=info")[1]["data"]["results"]
    assert any("execution stopped" in entry["message"] for entry in logs)
    assert http("post", f"/api/v1/tasks/{task_id}/retry")[1]["data"]["attempt"] == 2
    wait_for(lambda: http("get", f"/api/v1/tasks/{task_id}")[1]["data"]["status"] == "processing", message="retry")
    assert http("post", "/api/v1/tasks/batch-cancel", {"all": True})[1]["data"]["success_count"] == 1
    wait_for(lambda: http("get", f"/api/v1/tasks/{task_id}")[1]["data"]["status"] == "cancelled", message="cancel")

    def delete():
        # Refused per item (409 text) until the cancelled execution has let go of the task.
        status, body = http("post", "/api/v1/tasks/batch-delete", {"task_ids": [task_id, "missing"]})
        assert status == 200, body
        return body["data"] if body["data"]["results"][task_id]["success"] else None

    deleted = wait_for(delete, timeout=10, interval=0.2, message="the cancelled task to become deletable")
    assert (deleted["success_count"], deleted["failed_count"]) == (1, 1)
    assert deleted["results"]["missing"] == {"success": False, "status": None, "error": "task missing not found"}
    stats = http("get", "/api/v1/tasks/statistics")[1]["data"]
    assert stats["clusters"], "the running qcluster reports itself"
    assert http("get", "/healthz")[1] == {"status": "ok"}
    assert http("get", "/readyz")[1]["status"] == "ready"
    status, metrics = http("get", "/metrics")
    assert status == 200 and b"taskcenter_" in metrics


def test_schedules_through_the_running_service(http):
    body = {"name": "nightly canary", "task_type": "canary", "params": {"seconds": 0}, "cron": "0 3 * * *"}
    status, created = http("post", "/api/v1/schedules", body)
    assert status == 201 and created["data"]["cron"] == "0 3 * * *" and created["data"]["next_run_at"]
    url = f"/api/v1/schedules/{created['data']['id']}"
    assert http("post", "/api/v1/schedules", {**body, "name": "bad", "cron": "0 0 31 2 *"})[1]["errors"].keys() == {
        "cron"
    }
    listed = http("get", "/api/v1/schedules?task_type=canary&enabled=true")[1]["data"]
    assert [item["name"] for item in listed["results"]] == ["nightly canary"]
    assert http("get", url)[1]["data"]["created_by"] == "manager"
    changed = http("patch", url, {"cron": None, "interval_seconds": 3600, "enabled": False})[1]["data"]
    assert (changed["interval_seconds"], changed["enabled"], changed["next_run_at"]) == (3600, False, None)
    assert http("delete", url)[0] == 200
    assert http("get", url)[0] == 404


def test_bulk_actions_by_filter_through_the_running_service(http):
    """A dry run changes nothing and counts what the real run then does; more matches than the
    limit are a 409 that changes nothing; the action's audit rows carry its bulk_id."""
    from datetime import UTC, datetime, timedelta

    def create(**fields) -> str:
        body = {"task_type": "canary", "params": {"seconds": 0, "steps": 1}, **fields}
        return http("post", "/api/v1/tasks", body)[1]["data"]["task_id"]

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    waiting = [create(run_after=later) for _ in range(3)]  # pending: no worker claims them yet
    done = create()
    wait_for(lambda: http("get", f"/api/v1/tasks/{done}")[1]["data"]["status"] == "completed", message="a canary")

    def state() -> tuple:
        tasks = http("get", "/api/v1/tasks?task_type=canary&page_size=100")[1]["data"]["results"]
        return sorted((t["task_id"], t["status"]) for t in tasks), http("get", "/api/v1/audit-logs")[1]["data"]["total"]

    cancel = {"action": "cancel", "filter": {"task_type": "canary", "status": ["pending", "completed"]}}
    before = state()
    status, dry = http("post", "/api/v1/tasks/bulk", {**cancel, "dry_run": True})
    assert status == 200 and state() == before
    assert (dry["data"]["matched"], dry["data"]["would_succeed"], dry["data"]["would_fail"]) == (4, 3, 1)
    assert dry["data"]["sample"] == [*waiting, done]

    status, refused = http("post", "/api/v1/tasks/bulk", {**cancel, "limit": 3})
    assert status == 409 and "4 tasks match" in refused["message"] and state() == before

    status, ran = http("post", "/api/v1/tasks/bulk", {**cancel, "limit": 4})
    assert status == 200
    assert (ran["data"]["total_count"], ran["data"]["success_count"], ran["data"]["failed_count"]) == (4, 3, 1)
    assert {ran["data"]["results"][task_id]["status"] for task_id in waiting} == {"cancelled"}
    assert ran["data"]["results"][done]["success"] is False
    summary = http("get", f"/api/v1/audit-logs?target=bulk:{ran['data']['bulk_id']}")[1]["data"]["results"]
    assert [(entry["action"], entry["details"]["success_count"]) for entry in summary] == [("task.bulk", 3)]
    for task_id in waiting:
        rows = http("get", f"/api/v1/audit-logs?target=task:{task_id}&action=task.cancel")[1]["data"]["results"]
        assert [entry["details"]["bulk_id"] for entry in rows] == [ran["data"]["bulk_id"]]

    delete = {"action": "delete", "filter": {"task_type": "canary", "status": "cancelled,completed"}}
    counted = http("post", "/api/v1/tasks/bulk", {**delete, "dry_run": True})[1]["data"]
    deleted = http("post", "/api/v1/tasks/bulk", delete)[1]["data"]
    assert (
        (counted["matched"], counted["would_succeed"]) == (deleted["total_count"], deleted["success_count"]) == (4, 4)
    )
    assert http("get", "/api/v1/tasks?task_type=canary")[1]["data"]["total"] == 0
    status, bad = http("post", "/api/v1/tasks/bulk", {"action": "retry", "filter": {"status": "lost"}})
    assert status == 400 and list(bad["errors"]) == ["filter.status"]


def test_event_stream_follows_a_task_to_its_end(http):
    task_id = http("post", "/api/v1/tasks", {"task_type": "canary", "params": {"seconds": 1, "steps": 5}})[1]["data"][
        "task_id"
    ]
    status, stream = http("get", f"/api/v1/tasks/{task_id}/events")
    assert status == 200 and http.last_headers["Content-Type"].startswith("text/event-stream")
    text = stream.decode()
    events = [block.split("\n")[0].removeprefix("event: ") for block in text.strip().split("\n\n")]
    assert events[0] == "status" and events[-1] == "end"
    assert '"status": "completed"' in text.split("event: end")[1]

    # A client that reconnects with the last log event's id gets only the lines after it.
    from django.utils import timezone

    from tasks.models import TaskLog

    first, second = (
        TaskLog.objects.create(task_id=task_id, timestamp=timezone.now(), message=f"line {n}") for n in (1, 2)
    )
    again = http("get", f"/api/v1/tasks/{task_id}/events", headers={"Last-Event-ID": str(first.id)})[1].decode()
    assert f"id: {second.id}\nevent: log" in again and "line 2" in again
    assert "line 1" not in again and f"id: {first.id}\n" not in again


def test_head_answers_headers_only_and_a_keep_alive_connection_stays_in_step(http):
    """HEAD: the GET's headers, no body — not even an event stream (which would also hold one of
    the server's stream slots); the next request on the same connection gets its own answer."""
    import http.client as client

    task_id = http("post", "/api/v1/tasks", {"task_type": "canary", "params": {"seconds": 0, "steps": 1}})[1]["data"][
        "task_id"
    ]
    host, port = urllib.parse.urlsplit(http.base).netloc.split(":")
    connection = client.HTTPConnection(host, int(port), timeout=10)
    auth = {"Authorization": f"Token {http.token}"}
    for path in ("/api/v1/task-types", f"/api/v1/tasks/{task_id}/events"):
        connection.request("HEAD", path, headers=auth)
        head = connection.getresponse()
        head.read()
        assert head.status == 200
        connection.request("GET", "/api/v1/task-types", headers=auth)
        after = connection.getresponse()
        assert after.status == 200
        assert http.checked("get", "/api/v1/task-types", after.status, after.headers, after.read())["code"] == 200
    connection.close()


def test_a_chunked_body_is_a_411_not_a_misleading_400(http):
    import http.client as client

    host, port = urllib.parse.urlsplit(http.base).netloc.split(":")
    connection = client.HTTPConnection(host, int(port), timeout=10)
    body = iter([b'{"task_type": "canary", ', b'"params": {}}'])
    connection.request(
        "POST",
        "/api/v1/tasks",
        body=body,
        headers={"Authorization": f"Token {http.token}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    payload = http.checked("post", "/api/v1/tasks", response.status, response.headers, response.read())
    assert (response.status, payload["code"], payload["success"]) == (411, 411, False)
    assert "Content-Length" in payload["message"]
    connection.close()


def test_error_codes_over_http(http, web_server, api_contract):
    anonymous = Http(web_server.url, contract=api_contract)
    assert anonymous("get", "/api/v1/tasks")[0] == 401
    assert http("get", "/api/v1/no/such/thing")[0] == 404
    assert http("delete", "/api/v1/task-types")[0] == 405
    assert http("post", "/api/v1/tasks", raw=b"task_type=canary", content_type="text/plain")[0] == 415
    assert http("post", "/api/v1/tasks", raw=b"{", content_type="application/json")[0] == 400
    assert _declared_too_large(http) == 413


def _declared_too_large(api: Http) -> int:
    """POST announcing a 2 MB body, none of it sent: the server answers from Content-Length alone,
    before reading any of it. (Sending the whole body races the server's close after its answer:
    the unread rest makes the kernel reset the connection, sometimes before the answer is read.)"""
    import http.client

    url = urllib.parse.urlsplit(api.base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/v1/tasks")
        for name, value in [
            ("Content-Type", "application/json"),
            ("Content-Length", "2000000"),
            ("Authorization", f"Token {api.token}"),
        ]:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = api.checked("post", "/api/v1/tasks", response.status, response.headers, response.read())
        assert body["code"] == 413 and body["data"] is None
        return response.status
    finally:
        connection.close()


def test_throttling_answers_429_with_retry_after(transactional_db, tmp_path, manager, api_contract):
    server = WebServer(tmp_path, extra_env={"THROTTLE_USER": "3/min"}).start()
    try:
        http = Http(server.url, Token.objects.create(user=manager).key, contract=api_contract)
        codes = []
        for _ in range(12):
            codes.append(http("get", "/api/v1/task-types")[0])
            if codes[-1] == 429:
                assert int(http.last_headers["Retry-After"]) > 0
                break
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429
    finally:
        server.stop()


def test_the_queue_controls_of_a_task_type(http, cluster):
    assert http("post", "/api/v1/task-types/canary/pause")[1]["data"]["paused"] is True
    assert http("post", "/api/v1/task-types/canary/pause")[0] == 409
    assert http("get", "/api/v1/task-types/canary")[1]["data"]["paused"] is True
    assert http("post", "/api/v1/task-types/canary/resume")[1]["data"]["paused"] is False
    assert http("patch", "/api/v1/task-types/canary", {"max_concurrency": 2})[1]["data"]["max_concurrency"] == 2
    assert http("patch", "/api/v1/task-types/canary", {"max_concurrency": 0})[0] == 400
    assert http("patch", "/api/v1/task-types/canary", {"max_concurrency": None})[1]["data"]["max_concurrency"] is None
    assert http("get", "/api/v1/task-types/nope")[0] == 404


def test_every_operation_of_the_document_answered_a_2xx_here(api_contract, request):
    """Runs last: the tests above reached every operation with a success, each answer checked."""
    module = request.module
    tests = {name for name in dir(module) if name.startswith("test_")} - {request.node.originalname}
    selected = {item.originalname for item in request.session.items if item.module is module}
    if not tests <= selected:
        pytest.skip("counts only when the whole file runs")
    assert api_contract.contract is not None, "no test fetched the document"
    unanswered = api_contract.contract.unanswered()
    assert not unanswered, f"operations no black-box test saw answering 2xx: {unanswered}"
