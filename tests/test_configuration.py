"""Start-up configuration: bad settings stop with one clear line; production settings pass --deploy;
the first-run set-up of ``dev.py run`` (``bootstrap``, ``demo_data``)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskcenter.config import ConfigError, parse_database_url

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG"}}
    base.update(env)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


def test_unknown_database_scheme_stops_with_one_clear_line():
    done = manage("check", DEBUG="1", DATABASE_URL="mysql://root@localhost/db")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "taskcenter: configuration error: DATABASE_URL scheme 'mysql' is not supported: "
        "use sqlite:///path or postgres://user@host/name"
    )
    assert "Traceback" not in done.stderr


def test_production_without_secret_key_refuses_to_start():
    done = manage("check", DEBUG="0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "taskcenter: configuration error: SECRET_KEY is not set; set it (or DEBUG=1 for a development key)"
    ]


def test_malformed_boolean_is_named():
    done = manage("check", DEBUG="maybe")
    assert done.returncode == 2
    assert "DEBUG='maybe' is not a boolean" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["TRUSTED_PROXIES", "METRICS_ALLOWED_NETWORKS"])
def test_malformed_network_list_stops_with_one_clear_line(name):
    done = manage("check", DEBUG="1", **{name: "127.0.0.1/32,10.0.0.0/33"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"taskcenter: configuration error: {name}: '10.0.0.0/33' is not an IP network (use CIDRs such as 10.0.0.0/8)"
    ]


@pytest.mark.parametrize(
    "value, error",
    [
        ("two minutes", "TASKCENTER_SQLITE_LOCK_TIMEOUT='two minutes' is not a number"),
        ("0", "TASKCENTER_SQLITE_LOCK_TIMEOUT=0.0 must be at least 1.0"),
    ],
)
def test_malformed_sqlite_lock_timeout_stops_with_one_clear_line(tmp_path, value, error):
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    done = manage("check", DEBUG="1", DATABASE_URL=database, TASKCENTER_SQLITE_LOCK_TIMEOUT=value)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"taskcenter: configuration error: {error}"]


def test_deploy_check_passes_with_production_like_environment(tmp_path):
    done = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x9#Lq2!vR7@kP4$wZ8^nB3&mT6*yH1(cJ5)dF0-gS2+eA7=uK9~iO4",
        ALLOWED_HOSTS="taskcenter.example.com",
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_PRELOAD="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_no_missing_migrations(tmp_path):
    done = manage(
        "makemigrations", "--check", "--dry-run", DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'mig.sqlite3'}"
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("url", "engine", "name"),
    [
        ("sqlite:///var/x.sqlite3", "taskcenter.db.sqlite3", str(ROOT / "var/x.sqlite3")),
        ("sqlite:////tmp/abs.sqlite3", "taskcenter.db.sqlite3", "/tmp/abs.sqlite3"),
        ("postgres://u:p%40ss@db.example:6543/tc?sslmode=require", "django.db.backends.postgresql", "tc"),
    ],
)
def test_database_url_parsing(url, engine, name):
    parsed = parse_database_url(url, base_dir=ROOT)
    assert (parsed["ENGINE"], parsed["NAME"]) == (engine, name)
    if engine.endswith("postgresql"):
        assert (parsed["USER"], parsed["PASSWORD"], parsed["HOST"], parsed["PORT"]) == (
            "u",
            "p@ss",
            "db.example",
            "6543",
        )
        assert parsed["OPTIONS"] == {"sslmode": "require"}
    else:
        assert parsed["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize("url", ["postgres://host", "sqlite://", "redis://x/0", "postgres://h:notaport/db"])
def test_bad_database_urls_raise_config_error(url):
    with pytest.raises(ConfigError):
        parse_database_url(url, base_dir=ROOT)


@contextlib.contextmanager
def permission_bits_seen(path: Path):
    """The permission bits of ``path`` at every audited event (file opens, chmods, …) while the
    block runs: a file written first and restricted afterwards shows its wider bits at the chmod."""
    seen: list[int] = []
    state = {"active": True, "inside": False}

    def hook(event, args):
        if not state["active"] or state["inside"]:
            return
        state["inside"] = True
        try:
            seen.append(path.stat().st_mode & 0o777)
        except OSError:
            pass
        finally:
            state["inside"] = False

    sys.addaudithook(hook)  # hooks cannot be removed: this one goes quiet when the block ends
    try:
        yield seen
    finally:
        state["active"] = False
    seen.append(path.stat().st_mode & 0o777)


@pytest.fixture
def usual_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_generated_secret_key_and_var_are_owner_only_from_the_first_byte(tmp_path, monkeypatch, usual_umask):
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    monkeypatch.setattr(dev, "VAR", tmp_path / "var")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    key_file = tmp_path / "var" / "secret_key"
    with permission_bits_seen(key_file) as seen:
        env = dev.local_env()
    assert set(seen) == {0o600}, f"the secret key file was readable by others at some point: {seen}"
    assert env["SECRET_KEY"] == key_file.read_text() and len(env["SECRET_KEY"]) >= 50
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
    assert dev.local_env()["SECRET_KEY"] == env["SECRET_KEY"], "the key is generated once"


def test_dev_closes_a_var_directory_an_older_version_left_world_readable(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    (tmp_path / "var").mkdir(mode=0o755)
    (tmp_path / "var").chmod(0o755)
    monkeypatch.setattr(dev, "VAR", tmp_path / "var")
    dev.local_env()
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700


def test_admin_password_file_is_owner_only_from_the_first_byte(tmp_path, settings, db, usual_umask):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path / "var"
    password_file = settings.VAR_DIR / "admin-password"
    out = io.StringIO()
    with permission_bits_seen(password_file) as seen:
        call_command("bootstrap", stdout=out)
    assert set(seen) == {0o600}, f"the admin password file was readable by others at some point: {seen}"
    assert f"admin / {password_file.read_text()}" in out.getvalue()
    assert settings.VAR_DIR.stat().st_mode & 0o777 == 0o700


def test_bootstrap_makes_roles_and_the_admin_only_and_demo_data_makes_the_demo_once(tmp_path, settings, db):
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from batches.models import AssessmentRecord, Batch

    settings.VAR_DIR = tmp_path / "var"
    call_command("bootstrap", stdout=io.StringIO())
    assert set(Group.objects.values_list("name", flat=True)) == {"viewer", "operator", "manager"}
    assert not Batch.objects.exists() and not AssessmentRecord.objects.exists()

    call_command("demo_data", students=0, stdout=io.StringIO())
    assert not Batch.objects.exists() and not AssessmentRecord.objects.exists()

    out = io.StringIO()
    call_command("demo_data", students=30, stdout=out)
    assert AssessmentRecord.objects.count() == 300
    assert list(Batch.objects.order_by("batch_code").values_list("batch_code", flat=True)) == [
        "BATCH_2025_001",
        "BATCH_2025_002",
        "BATCH_2025_003",
    ]
    assert "300 assessment records of 30 students" in out.getvalue()

    out = io.StringIO()
    call_command("demo_data", students=50, stdout=out)
    assert out.getvalue() == "", "existing data is kept as it is"
    assert AssessmentRecord.objects.count() == 300 and Batch.objects.count() == 3


def test_var_directory_is_created_owner_only_by_every_process(tmp_path):
    # With Redis no file cache creates var/ (Django's makes its directories 0700); the process
    # must not leave it to whichever directory happens to be made first.
    var = tmp_path / "var"
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DEBUG": "0",
            "SECRET_KEY": "k" * 50,
            "TASKCENTER_VAR_DIR": str(var),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
        },
        capture_output=True,
        text=True,
        timeout=60,
        umask=0o022,
    )
    assert done.returncode == 0, done.stderr
    assert var.stat().st_mode & 0o777 == 0o700
