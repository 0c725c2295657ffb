"""Bad input over real HTTP: a 4xx in the envelope, never a 500, and nothing changed or held."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.utils import timezone
from rest_framework.authtoken.models import Token

from taskcenter.logformat import PlainFormatter
from tasks.models import Task, TaskLog
from tests.api_helpers import client_for
from tests.cluster import WebServer

# Not plain ASCII decimal integers that fit a log line's id: '²' passes str.isdigit() and fails
# int(); 5,000 digits pass isdigit() and exceed int()'s digit limit; 2**63 overflows the column.
BAD_IDS = ["²", "1" * 5000, "-1", "1.5", "0x10", "7 8", str(2**63)]
LIMIT = 2


@pytest.fixture
def server(transactional_db, tmp_path):
    server = WebServer(tmp_path, extra_env={"TASKCENTER_SSE_MAX_STREAMS": str(LIMIT)}).start()
    yield server
    server.stop()


@pytest.fixture
def token(manager):
    return Token.objects.create(user=manager).key


def call(server, token, path, *, headers=None, body: bytes | None = None, method="GET"):
    request = urllib.request.Request(server.url + path, data=body, method=method)
    request.add_header("Authorization", f"Token {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def enveloped(status, headers, payload, code):
    assert status == code, payload[:300]
    assert headers["Content-Type"].startswith("application/json")
    body = json.loads(payload)
    assert (body["code"], body["success"], body["data"]) == (code, False, None)
    return body


def finished_task() -> Task:
    task = Task.objects.create(task_type="canary", status="completed", params={}, completed_at=timezone.now())
    TaskLog.objects.create(task=task, timestamp=timezone.now(), message="done")
    return task


def test_log_ids_that_are_not_plain_decimal_integers_are_400s(server, token):
    task = finished_task()
    for value in [*BAD_IDS, " 7", "١٢"]:
        answer = call(server, token, f"/api/v1/tasks/{task.pk}/logs?after_id={urllib.parse.quote(value)}")
        assert "after_id" in enveloped(*answer, 400)["errors"], value
    for value in BAD_IDS:
        answer = call(server, token, f"/api/v1/tasks/{task.pk}/events", headers={"Last-Event-ID": value})
        assert "Last-Event-ID" in enveloped(*answer, 400)["errors"], value
    # The largest id the column holds is fine, and so are leading zeros, however many.
    for value in (str(2**63 - 1), "007", "0" * 5000 + "1"):
        status, _, payload = call(server, token, f"/api/v1/tasks/{task.pk}/logs?after_id={value}")
        assert status == 200, payload[:300]
        status, _, payload = call(server, token, f"/api/v1/tasks/{task.pk}/events", headers={"Last-Event-ID": value})
        assert status == 200 and b"event: end" in payload


def test_bad_last_event_ids_hold_no_stream_slot(server, token):
    """More refused streams than the process has slots, on each of the server's processes: a good
    stream request is still served afterwards."""
    task = finished_task()
    for value in ["²", "1" * 5000] * (4 * LIMIT):
        answer = call(server, token, f"/api/v1/tasks/{task.pk}/events", headers={"Last-Event-ID": value})
        enveloped(*answer, 400)
    for _ in range(4 * LIMIT):
        status, _, payload = call(server, token, f"/api/v1/tasks/{task.pk}/events")
        assert status == 200, payload[:300]
        assert b"event: end" in payload


def test_a_stream_closed_before_its_first_event_gives_its_slot_back(manager, make_task, monkeypatch):
    """A client gone before the first byte: the server closes the response without reading the
    stream, and the slot is free again."""
    import threading

    from tasks.api import views

    monkeypatch.setattr(views, "_STREAMS", threading.BoundedSemaphore(LIMIT))
    api = client_for(manager)
    task = make_task("completed")
    # As Django's test client does while it serves a request: closing a response here must not
    # close the test's database connection.
    request_finished.disconnect(close_old_connections)
    try:
        for _ in range(LIMIT + 1):
            response = api.get(f"/api/v1/tasks/{task.pk}/events")
            assert response.status_code == 200
            response.close()
    finally:
        request_finished.connect(close_old_connections)
    response = api.get(f"/api/v1/tasks/{task.pk}/events")
    assert response.status_code == 200
    assert b"event: end" in b"".join(response.streaming_content)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000,
        b'{"task_type": "canary", "params": ' + b'{"a": ' * 50_000,
        b'{"task_type": "canary", "params": {"seconds": 0, "x": ' + b"[" * 200 + b"]" * 200 + b"}}",
    ],
    ids=["array-50000", "object-50000", "params-200"],
)
def test_deeply_nested_json_is_a_400_and_creates_nothing(server, token, body):
    answer = call(server, token, "/api/v1/tasks", body=body, method="POST")
    assert "nested" in enveloped(*answer, 400)["message"]
    assert not Task.objects.exists()


def test_a_request_path_cannot_forge_a_log_line(server, token):
    forged = "2026-01-01 00:00:00,000 ERROR taskcenter.audit forged"
    path = "/api/v1/tasks/x" + urllib.parse.quote("\n" + forged + "\r\n" + forged)
    enveloped(*call(server, token, path), 404)
    server.stop()  # the log is complete
    lines = (server.workdir / "gunicorn.log").read_text().splitlines()
    assert any("forged" in line for line in lines)
    assert not [line for line in lines if line.startswith((forged, "\r"))]


def record(message="done", *args, exc_info=None, **extra) -> logging.LogRecord:
    entry = logging.LogRecord("taskcenter.access", logging.INFO, __file__, 1, message, args, exc_info)
    entry.__dict__.update(extra)
    return entry


def test_plain_log_lines_quote_and_escape_user_text():
    formatter = PlainFormatter("%(levelname)s %(name)s %(message)s")
    line = formatter.format(
        record(
            "GET %s",
            "/a\nINFO forged",
            path='/a b"c\nINFO forged\u2028x',
            user="plain",
            empty="",
            status=404,
        )
    )
    assert "\n" not in line and "\u2028" not in line
    assert line == (
        "INFO taskcenter.access GET /a\\nINFO forged "
        'path="/a b\\"c\\nINFO forged\\u2028x" user=plain empty="" status=404'
    )


def test_a_traceback_in_a_plain_log_line_cannot_start_a_line_of_its_own():
    formatter = PlainFormatter("%(levelname)s %(name)s %(message)s")
    try:
        raise ValueError("bad\nINFO taskcenter.audit forged")
    except ValueError:
        import sys

        line = formatter.format(record("failed", exc_info=sys.exc_info(), route="/x"))
    first, *rest = line.split("\n")
    assert first == "INFO taskcenter.access failed route=/x"
    assert rest and all(part.startswith(" ") for part in rest)
    assert any("Traceback" in part for part in rest)
