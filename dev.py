#!/usr/bin/env python3
"""The two set-up commands (README.md): ``python3 dev.py run`` and ``python3 dev.py test``; and
``python3 dev.py manage <command>`` for a management command against the local installation.

Needs only python3 (3.11+) with venv and pip. Creates ``.venv`` (a Python of another version than
the one that made it gets its own: ``.venv-3.12`` for ``python3.12 dev.py …``), installs the
requirements when they changed, then runs the service (web + django-q2 cluster) or the test suite.
The Django installed is the newest that the Python running dev.py admits (requirements.txt): 5.2
LTS on Python 3.11, 6.1 on 3.12 and newer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VAR = Path(os.environ.get("TASKCENTER_VAR_DIR") or ROOT / "var")


def venv_dir() -> Path:
    """``.venv``, unless a Python of another version made it: then ``.venv-<major>.<minor>``. Each
    interpreter version keeps its own virtualenv, as each installs its own Django
    (requirements.txt): CI runs the suite with ``python3`` and again with ``python3.12``."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    config = ROOT / ".venv" / "pyvenv.cfg"
    lines = config.read_text().splitlines() if config.exists() else []
    # "version = 3.11.7" (venv's), or "version_info = 3.11.7.final.0" (virtualenv's, uv's)
    made_by = [line.split("=", 1)[1].strip() for line in lines if line.startswith("version")]
    if made_by and not made_by[0].startswith(f"{version}."):
        return ROOT / f".venv-{version}"
    return ROOT / ".venv"


VENV = venv_dir()
PY = VENV / "bin" / "python"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def ensure_venv(*, dev: bool) -> None:
    """Create the virtualenv and install the requirements when their files changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"taskcenter needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating virtualenv in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
        subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    files = [ROOT / "requirements.txt"] + ([ROOT / "requirements-dev.txt"] if dev else [])
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    stamp = VENV / (".installed-dev" if dev else ".installed")
    if stamp.exists() and stamp.read_text() == digest:
        return
    say("installing " + " ".join(f.name for f in files))
    args = [str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for f in files:
        args += ["-r", str(f)]
    subprocess.run(args, check=True)
    stamp.write_text(digest)


def manage(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(PY), str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, check=check)


def service_env() -> dict:
    """Environment for the local service (:func:`local_env`), with its Prometheus directory emptied."""
    env = local_env()
    # The processes of this host keep their Prometheus counters here; /metrics sums them.
    metrics_dir = Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR / "prometheus")))
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    return env


def local_env() -> dict:
    """Environment of the local installation: a generated secret kept in var/, plain-HTTP cookies."""
    VAR.mkdir(mode=0o700, parents=True, exist_ok=True)
    VAR.chmod(0o700)  # a var/ of an older dev.py was world-readable (the SQLite file with it)
    env = dict(os.environ)
    key_file = VAR / "secret_key"
    if not env.get("SECRET_KEY"):
        # Created owner-only (never readable by others, not even between write and chmod);
        # O_EXCL: a second dev.py starting at the same moment reads the first one's key.
        with contextlib.suppress(FileExistsError):
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(50))
        env["SECRET_KEY"] = key_file.read_text().strip()
    # The local service is served over plain HTTP on 127.0.0.1: secure-only cookies would make the
    # admin login impossible. Behind TLS, set SECURE_COOKIES=1 (docs/configuration.md).
    env.setdefault("SECURE_COOKIES", "0")
    return env


def manage_command(args: list[str]) -> int:
    """``python3 dev.py manage <command> …``: a management command against the local installation
    (its secret key and database), e.g. ``create_token admin`` while ``run`` serves."""
    ensure_venv(dev=False)
    return manage(*args, env=local_env(), check=False).returncode


def run() -> int:
    ensure_venv(dev=False)
    env = service_env()
    host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
    say("migrating the database")
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("bootstrap", env=env)  # the roles and the admin login
    manage("demo_data", env=env)  # assessment records and three batches, unless there are some
    web_workers = env.get("WEB_WORKERS", "4")
    children = [
        subprocess.Popen(
            [
                str(VENV / "bin" / "gunicorn"),
                "taskcenter.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                web_workers,
                "--worker-class",
                "gthread",
                "--threads",
                env.get("WEB_THREADS", "8"),
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "5",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
        subprocess.Popen([str(PY), str(ROOT / "manage.py"), "qcluster"], cwd=ROOT, env=env, start_new_session=True),
        # The watchdog also runs every minute as a django-q2 schedule; this loop makes retries
        # and lost-worker recovery react within seconds on a single machine.
        subprocess.Popen(
            [str(PY), str(ROOT / "manage.py"), "watchdog", "--loop", "--interval", env.get("WATCHDOG_INTERVAL", "2")],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
    ]
    # Each child leads a process group of its own (gunicorn's workers; the cluster's sentinel,
    # pusher, monitor and workers): Ctrl-C reaches only this script, which asks each child to
    # stop, and what is still running at the deadline is killed group and all — a cluster's
    # workers are never left behind to go on taking tasks.
    say(f"serving http://{host}:{port}/admin/ with a django-q2 cluster and the watchdog; Ctrl-C stops all")

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        stop()
        deadline = time.monotonic() + 30
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"pid {child.pid} did not stop in time: killing it and its processes")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # stragglers of a child that did stop, too
            child.wait()
    codes = [child.returncode for child in children]
    return 0 if all(code in (0, -signal.SIGTERM, -signal.SIGINT) for code in codes) else 1


def test(extra: list[str]) -> int:
    ensure_venv(dev=True)
    env = dict(os.environ)
    say(f"ruff check (database for the tests: {env.get('DATABASE_URL', 'SQLite under var/')})")
    lint = subprocess.run([str(VENV / "bin" / "ruff"), "check", "."], cwd=ROOT)
    if lint.returncode:
        return lint.returncode
    # Prometheus counters of earlier runs' processes (taskcenter/test_settings.py).
    shutil.rmtree(Path(env.get("TASKCENTER_VAR_DIR", VAR)) / "prometheus-test", ignore_errors=True)
    say("pytest")
    return subprocess.run([str(PY), "-m", "pytest", *extra], cwd=ROOT, env=env).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test", "manage"}:
        print(__doc__)
        print("usage: python3 dev.py run | python3 dev.py test [pytest args] | python3 dev.py manage <command> [args]")
        return 2
    if sys.argv[1] == "run":
        return run()
    if sys.argv[1] == "manage":
        return manage_command(sys.argv[2:])
    return test(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
