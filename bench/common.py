"""Shared helpers for the benchmarks: a fresh database, a cluster in a subprocess, timing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(database_url: str | None = None) -> str:
    """Point Django at ``database_url`` (default: a fresh SQLite file), set it up and migrate."""
    if not database_url:
        workdir = Path(tempfile.mkdtemp(prefix="taskcenter-bench-"))
        database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return database_url


def superuser_client():
    """Django's test client logged in as a new superuser, static files named as in development
    (no collectstatic manifest): the admin's pages otherwise as served."""
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    user = get_user_model().objects.create_superuser("bench-admin", password="bench-password")
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()
    client = Client()
    client.force_login(user)
    return client


def start_process(*args: str, env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_gunicorn(port: int, *, workers: int, threads: int, env: dict, timeout: int | None = None) -> subprocess.Popen:
    """``gunicorn taskcenter.wsgi`` (gthread) on 127.0.0.1:``port`` with ``env`` added."""
    args = [str(Path(sys.executable).with_name("gunicorn")), "taskcenter.wsgi", "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads)]
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    return subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def wait_until(predicate, timeout: float, interval: float = 0.01) -> float:
    """Poll until ``predicate()``; return the time it took. Raises TimeoutError."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(interval)
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)
