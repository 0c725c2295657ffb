"""A real django-q2 cluster (and watchdog loop) in subprocesses, against the test database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


#: The Redis database the tests that run a cluster on the Redis broker use (flushed by each).
REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_answers() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def database_url() -> str:
    """The URL of the database the tests use (the test database, not the configured one)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{auth}{settings.get('HOST') or '127.0.0.1'}{port}/{settings['NAME']}"


class WebhookRecorder:
    """A local HTTP server that records the JSON bodies posted to it."""

    def __init__(self):
        self.posts: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.posts.append(json.loads(body or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class Cluster:
    """``manage.py qcluster`` plus ``manage.py watchdog --loop`` with short test timings."""

    LEASE_SECONDS = 2

    def __init__(self, workdir: Path, *, workers: int = 2, extra_env: dict | None = None):
        self.workdir = workdir
        self.trace_dir = workdir / "trace"
        self.mail_dir = workdir / "mail"
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.webhook = WebhookRecorder()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
            "DATABASE_URL": database_url(),
            "Q_WORKERS": str(workers),
            "Q_LOG_LEVEL": "WARNING",
            "TASKCENTER_LEASE_SECONDS": str(self.LEASE_SECONDS),
            "TASKCENTER_FLUSH_INTERVAL": "0.1",
            "TASKCENTER_RETRY_BACKOFF_SCALE": "0.05",
            "TASKCENTER_REQUEUE_AFTER_SECONDS": "20",
            "TASKCENTER_CANARY_TRACE_DIR": str(self.trace_dir),
            "TASKCENTER_RESOURCE_INTERVAL": "0.5",
            "TASKCENTER_STATS_CHUNK_ROWS": "2000",
            "TASKCENTER_CHECKPOINT_DIR": str(workdir / "checkpoints"),
            "TASKCENTER_IMPORT_DIR": str(workdir / "imports"),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "ADMINS": "ops@example.com",
            "TASKCENTER_ALERT_WEBHOOK": self.webhook.url,
            **(extra_env or {}),
        }
        self.processes: list[subprocess.Popen] = []

    def _spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{args[0]}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start(self) -> Cluster:
        self.qcluster = self._spawn("qcluster")
        self.watchdog = self._spawn("watchdog", "--loop", "--interval", "0.3")
        return self

    def worker_pids(self) -> list[int]:
        """The cluster's child processes (workers, monitor, pusher)."""
        out = subprocess.run(["pgrep", "-P", str(self.qcluster.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def steps(self, task_id) -> list[int]:
        path = self.trace_dir / f"{task_id}.steps"
        if not path.exists():
            return []
        return [int(line.split()[0]) for line in path.read_text().splitlines() if line.strip()]

    def mails(self) -> list[str]:
        return [p.read_text() for p in sorted(self.mail_dir.glob("*.log"))]

    def log_tail(self) -> str:
        parts = []
        for name in ("qcluster", "watchdog"):
            path = self.workdir / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}.log\n" + path.read_text()[-4000:])
        return "\n".join(parts)

    def stop(self) -> None:
        self.halt()
        self.webhook.close()

    def halt(self) -> None:
        """Stop the processes (``start`` runs them again)."""
        # SIGTERM to the main process only: qcluster stops its own workers (a signal to the whole
        # group makes its guard wait for workers that are already gone).
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group, if any
            except ProcessLookupError:
                pass
            process.wait()
        self.processes = []


class WebServer:
    """``gunicorn taskcenter.wsgi`` on a free loopback port, against the test database."""

    def __init__(self, workdir: Path, *, extra_env: dict | None = None):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
            "DATABASE_URL": database_url(),
            # Its own request counters: another server's (same user ids) must not count here.
            "TASKCENTER_THROTTLE_DIR": str(workdir / "throttle"),
            **(extra_env or {}),
        }

    def start(self) -> WebServer:
        import urllib.request

        log = open(self.workdir / "gunicorn.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "taskcenter.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--limit-request-line",
                "8190",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def healthy():
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        try:
            wait_for(healthy, timeout=30, interval=0.1, message="gunicorn to answer /healthz")
        except AssertionError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
