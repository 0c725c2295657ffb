"""Trust boundaries: whose address a request comes from behind reverse proxies (audit rows, the
anonymous throttle, /metrics, the login lockout) and the admin login's lockout."""

from __future__ import annotations

import http.client
from datetime import timedelta

import pytest
from django.db.models import F
from rest_framework.test import APIClient

from tasks.models import AuditLog
from tests.cluster import WebServer


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.5", "198.51.100.7", "203.0.113.5"),  # an untrusted peer cannot name another client
        ("127.0.0.1", "", "127.0.0.1"),  # a trusted proxy that forwards nothing is the client
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
        # Read from the right: the client's own claims (left of the first untrusted hop) are ignored.
        ("127.0.0.1", "127.0.0.1, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        ("127.0.0.1", "10.1.1.1, 10.0.0.2", "10.1.1.1"),  # only proxies: the farthest one
        ("127.0.0.1", "198.51.100.7, not-an-address", "127.0.0.1"),  # garbage ends the walk
        ("::1", " 2001:db8::7 ", "2001:db8::7"),
    ],
)
def test_client_address_reads_forwarded_for_only_through_trusted_proxies(rf, settings, peer, forwarded_for, client):
    from taskcenter.proxies import client_address

    settings.TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]
    request = rf.get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded_for)
    assert client_address(request) == client


def test_audit_rows_record_the_real_client_behind_a_trusted_proxy(settings, manager):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    api = APIClient()
    api.force_authenticate(manager)
    body = {"task_type": "canary", "params": {}}

    def created_from(**meta) -> str:
        task_id = api.post("/api/v1/tasks", body, format="json", **meta).json()["data"]["task_id"]
        return AuditLog.objects.get(target_id=str(task_id), action="task.create").client_address

    assert created_from(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7") == "198.51.100.7"
    assert created_from(REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.7") == "192.0.2.1"


def test_metrics_are_not_opened_by_a_proxy_on_the_same_host(client, db, settings):
    # Default: no trusted proxy. A forwarded request from loopback came through a proxy nobody
    # declared: its peer address says nothing about the client, so loopback grants nothing.
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert client.get("/metrics", HTTP_FORWARDED="for=203.0.113.9").status_code == 403
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9, 127.0.0.1").status_code == 403
    # The trusted proxy forwarded, but named no client beyond itself: still nobody known.
    assert client.get("/metrics", HTTP_X_REAL_IP="203.0.113.9").status_code == 403
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    token = {"HTTP_AUTHORIZATION": "Bearer scrape-secret"}
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9", **token).status_code == 200


def test_over_http_the_anonymous_throttle_and_metrics_key_on_the_real_client(transactional_db, tmp_path):
    # Over loopback 127.0.0.1 plays the proxy on this host and 127.0.0.2 an untrusted peer.
    server = WebServer(tmp_path, extra_env={"THROTTLE_ANON": "3/min", "TRUSTED_PROXIES": "127.0.0.1/32"}).start()

    def get(path: str, *, source: str = "127.0.0.1", forwarded_for: str | None = None) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        try:
            connection.request("GET", path, headers=headers)
            return connection.getresponse().status
        finally:
            connection.close()

    try:
        # A client inventing a new X-Forwarded-For per request is still one client.
        spoofed = [get("/api/v1/nothing-here", source="127.0.0.2", forwarded_for=f"192.0.2.{i}") for i in range(5)]
        assert spoofed[:3] == [404, 404, 404] and spoofed[3:] == [429, 429]
        # Behind the trusted proxy each real client has its own count.
        first = [get("/api/v1/nothing-here", forwarded_for="198.51.100.1") for _ in range(4)]
        assert first == [404, 404, 404, 429]
        assert get("/api/v1/nothing-here", forwarded_for="198.51.100.2") == 404
        assert get("/metrics", forwarded_for="203.0.113.9") == 403
        assert get("/metrics", source="127.0.0.2", forwarded_for="127.0.0.1") == 403
        assert get("/metrics") == 200
    finally:
        server.stop()


def login(client, username: str, password: str, address: str = "192.0.2.10", **meta):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        HTTP_ACCEPT_LANGUAGE="en",
        **meta,
    )


def test_admin_login_locks_a_user_out_after_repeated_failures(client, operator, settings):
    limit = settings.AXES_FAILURE_LIMIT
    for attempt in range(limit - 1):
        response = login(client, "operator", f"wrong-{attempt}", address=f"192.0.2.{attempt + 1}")
        assert response.status_code == 200 and b"Please enter the correct" in response.content
    locked = login(client, "operator", "wrong-last", address="198.51.100.99")
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed logins" in text and f"{settings.AXES_COOLOFF_TIME.seconds // 60} minutes" in text
    # Locked for every address, even with the right password, until the cool-off has passed.
    assert login(client, "operator", "pw-operator", address="203.0.113.1").status_code == 429
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert login(client, "operator", "pw-operator", address="203.0.113.1").status_code == 302


def test_admin_login_locks_an_address_out_and_reads_it_through_trusted_proxies(client, operator, manager, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    behind_proxy = {"address": "127.0.0.1"}
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"nobody-{attempt}", "guess", HTTP_X_FORWARDED_FOR="198.51.100.66", **behind_proxy)
    locked = login(client, "operator", "pw-operator", HTTP_X_FORWARDED_FOR="198.51.100.66", **behind_proxy)
    assert locked.status_code == 429
    # The other clients of the same proxy are not locked out with it.
    ok = login(client, "manager", "pw-manager", HTTP_X_FORWARDED_FOR="198.51.100.67", **behind_proxy)
    assert ok.status_code == 302


def test_lockout_message_speaks_the_admins_language(client, operator, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "operator", "password": f"x{attempt}"}, REMOTE_ADDR="192.0.2.3")
    chinese = client.post("/admin/login/", {"username": "operator", "password": "y"}, REMOTE_ADDR="192.0.2.3")
    assert chinese.status_code == 429 and "登录失败次数过多，请在" in chinese.content.decode()
    assert "Too many" not in chinese.content.decode()


def test_a_login_of_ones_own_does_not_clear_the_failures_against_another_user(client, operator, manager, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "manager", f"guess-{attempt}")
    assert login(client, "operator", "pw-operator").status_code == 302
    client.logout()
    assert login(client, "manager", "guess-last").status_code == 429


def test_a_worker_hosts_serve_metrics_admits_only_the_token_or_allowed_networks(transactional_db, tmp_path):
    """``manage.py serve_metrics`` applies the web processes' /metrics rule, over real HTTP."""
    import os
    import socket
    import subprocess
    import sys

    from tests.cluster import ROOT, database_url, wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "DATABASE_URL": database_url(),
        "METRICS_TOKEN": "scrape-secret",
        "METRICS_ALLOWED_NETWORKS": "",  # loopback included: only the token opens it
    }
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "serve_metrics", "--address", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def get(headers):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/metrics", headers=headers)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def answers():
        try:
            return get({})
        except OSError:
            return None

    try:
        status, body = wait_for(answers, timeout=30, message="serve_metrics to listen")
        assert status == 403 and "METRICS_TOKEN" in body
        assert get({"Authorization": "Bearer wrong"})[0] == 403
        status, body = get({"Authorization": "Bearer scrape-secret"})
        assert status == 200 and "taskcenter_" in body
    finally:
        server.terminate()
        server.wait(timeout=10)
