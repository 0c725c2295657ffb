"""The server install exactly as docs/operations.md ("A server install and several machines")
documents it: ``manage.py migrate``, gunicorn with ``DEBUG=0`` and a ``manage.py qcluster`` beside
it, on a fresh database and a fresh environment (production settings, no ``dev.py``, no test
settings)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tests.cluster import ROOT, wait_for

pytestmark = pytest.mark.worker


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


@pytest.fixture
def fresh_database_url(tmp_path):
    """A database nobody has migrated: a new SQLite file, or a new PostgreSQL database (dropped after)."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'taskcenter.sqlite3'}"
        return
    import psycopg

    params = connection.settings_dict
    name = f"{params['NAME']}_deploy"
    server = {
        "host": params.get("HOST") or "127.0.0.1",
        "port": params.get("PORT") or 5432,
        "user": params.get("USER") or "postgres",
        "password": params.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    password = f":{server['password']}" if server["password"] else ""
    yield f"postgres://{server['user']}{password}@{server['host']}:{server['port']}/{name}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_documented_server_install_serves_admin_docs_api_and_turns_ready(tmp_path, fresh_database_url):
    var = tmp_path / "var"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DEBUG": "0",
        "SECRET_KEY": "deploy-test-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ",
        "DATABASE_URL": fresh_database_url,
        "TASKCENTER_VAR_DIR": str(var),
    }
    python, gunicorn = sys.executable, str(Path(sys.executable).with_name("gunicorn"))
    migrate = subprocess.run(
        [python, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        umask=0o022,
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("gunicorn", "qcluster")}  # noqa: SIM115
    processes = [
        subprocess.Popen(
            [gunicorn, "taskcenter.wsgi", "--bind", f"127.0.0.1:{port}"]
            + ["--worker-class", "gthread", "--workers", "2", "--threads", "4"],
            cwd=ROOT,
            env=env,
            stdout=logs["gunicorn"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o022,  # a usual umask: private files must not depend on a strict one
        ),
        subprocess.Popen(
            [python, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=logs["qcluster"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o022,
        ),
    ]

    def log_tail() -> str:
        return "\n".join(f"--- {n}.log\n" + (tmp_path / f"{n}.log").read_text()[-3000:] for n in logs)

    try:

        def answering():
            try:
                return fetch(f"{base}/healthz")[0] == 200
            except OSError:
                return False

        wait_for(answering, timeout=60, interval=0.2, message="gunicorn to answer /healthz")
        for path in ("/admin/login/", "/docs", "/redoc", "/api/schema/"):
            status, body = fetch(base + path)
            assert status == 200, f"{path}: {status} {body[:300]}\n{log_tail()}"
            # The pages' own styles and scripts (the admin's CSS, Swagger UI, ReDoc) are served too.
            for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', body):
                assert fetch(base + asset)[0] == 200, f"{path} links {asset}, which is not served\n{log_tail()}"
        assert "openapi" in fetch(f"{base}/api/schema/")[1]

        def ready():
            status, body = fetch(f"{base}/readyz")
            return status == 200 and json.loads(body)

        body = wait_for(ready, timeout=60, interval=0.5, message=f"/readyz to answer 200\n{fetch(base + '/readyz')}")
        assert body["checks"] == {"database": "ok", "broker": "ok", "clusters": "ok"}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        for log in logs.values():
            log.close()
    # Nothing of the installation's private state (secret files, the SQLite file) is readable by others.
    assert var.stat().st_mode & 0o777 == 0o700
