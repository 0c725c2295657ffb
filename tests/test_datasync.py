"""The example plug-in ``examples/datasync`` on a real gunicorn and qcluster.

A source table of a few thousand rows in a SQLite file is copied into a table of the test database
(SQLite or PostgreSQL) through the HTTP API: to completion, across a pause and resume, across a
SIGKILL of its worker, and cancelled mid-batch; each time the target holds every row it copied
exactly once. The plug-in's Django ``@task`` is enqueued from this process.
"""

from __future__ import annotations

import importlib
import os
import signal
import sqlite3
import time

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from rest_framework.authtoken.models import Token

from taskcenter.jobs.testing import run_job
from tasks.models import Task
from tasks.runtime import registry
from tests.cluster import ROOT, wait_for
from tests.conftest import _user, stop_all_tasks
from tests.test_plugins import Http, released, serving

EXAMPLES = ROOT / "examples"
TYPE = "datasync.full_sync"
ROWS = 3000
TARGET = "synced_customers"
COLUMNS = "id, name, balance, joined"


def customer(n: int) -> tuple:
    # Keys with gaps: the sync pages by key, not by position.
    return (3 * n + 7, f"customer {n}", n * 1.25, f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}")


SOURCE_ROWS = [customer(n) for n in range(ROWS)]


@pytest.fixture(scope="module")
def source_url(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("datasync") / "crm.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance REAL, joined TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", SOURCE_ROWS)
    db.close()
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def served(qcluster_session, django_db_blocker, tmp_path_factory):
    """gunicorn and a cluster with the plug-in (the suite's own cluster halted meanwhile)."""
    path = os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "TASKCENTER_PLUGINS": "datasync"}
    with serving(env, qcluster_session, django_db_blocker, tmp_path_factory) as service:
        yield service
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TARGET}")


def run_sync_permission() -> Permission:
    # The test database is flushed after each test, the plug-in's permission with it (this
    # process has no plug-in to create it again).
    content_type, _ = ContentType.objects.get_or_create(app_label="datasync", model="datasync")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="run_sync", defaults={"name": "Can run data syncs"}
    )
    return permission


@pytest.fixture
def api(served, transactional_db, manager) -> Http:
    """The API of the gunicorn with the plug-in, as a manager who may run syncs; an empty target
    table; the plug-in's cluster running."""
    web, clusters = served
    manager.user_permissions.add(run_sync_permission())
    create_table(TARGET)
    clusters.run(clusters.plugin)
    yield Http(web.url, Token.objects.create(user=manager).key)
    stop_all_tasks()


def start_sync(api: Http, source_url: str, **params) -> str:
    params = {"source": source_url, "table": "customers", "target_table": TARGET, **params}
    status, body = api("post", "/api/v1/tasks", {"task_type": TYPE, "params": params})
    assert status == 201, body
    return body["data"]["task_id"]


def create_table(name: str, rows: list[tuple] = ()) -> None:
    """Table ``name`` of the test database, the customers' columns, holding ``rows``."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(
            f"CREATE TABLE {name} (id integer PRIMARY KEY, name text NOT NULL, balance double precision, joined text)"
        )
        cursor.executemany(f"INSERT INTO {name} ({COLUMNS}) VALUES (%s, %s, %s, %s)", rows)


def target_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {COLUMNS} FROM {TARGET} ORDER BY id")
        return [tuple(row) for row in cursor.fetchall()]


def checkpoint(task_id: str) -> dict:
    return Task.objects.get(pk=task_id).checkpoint or {}


def log_lines(api: Http, task_id: str) -> list[str]:
    body = api("get", f"/api/v1/tasks/{task_id}/logs?page_size=100")[1]
    return [line["message"] for line in body["data"]["results"]]


@pytest.mark.worker
def test_a_sync_copies_every_row_once_in_batches_with_progress_to_100(api, source_url):
    task_id = start_sync(api, source_url, batch_size=700)
    task = api.wait_status(task_id, "completed")
    assert task["progress"] == 100
    assert task["result"] == {"table": "customers", "target_table": TARGET, "rows": ROWS, "last_key": 3 * ROWS + 4}
    assert target_rows() == SOURCE_ROWS
    assert f"copying {ROWS} rows of customers into {TARGET}, 700 a batch" in log_lines(api, task_id)


@pytest.mark.worker
def test_a_paused_sync_resumes_after_its_checkpoint_and_copies_every_row_once(api, source_url):
    task_id = start_sync(api, source_url, batch_size=100, max_rows_per_second=1000)
    wait_for(lambda: api.task(task_id)["progress"] >= 20, message="a fifth of the rows")
    assert api("post", f"/api/v1/tasks/{task_id}/pause")[0] == 200
    wait_for(lambda: released(task_id), message="the worker to let go of the paused sync")
    paused_at = checkpoint(task_id)
    assert 0 < paused_at["done"] < ROWS
    assert target_rows() == SOURCE_ROWS[: paused_at["done"]], "the target holds what the checkpoint says"

    assert api("post", f"/api/v1/tasks/{task_id}/resume")[0] == 200
    api.wait_status(task_id, "completed")
    assert target_rows() == SOURCE_ROWS
    resumed = f"continuing after key {paused_at['last_key']}: {paused_at['done']} of {ROWS} rows copied before"
    assert resumed in log_lines(api, task_id)


@pytest.mark.worker
def test_a_sync_whose_worker_is_killed_is_retried_and_copies_every_row_once(api, source_url):
    task_id = start_sync(api, source_url, batch_size=100, max_rows_per_second=1500)
    wait_for(lambda: api.task(task_id)["progress"] >= 20, message="a fifth of the rows")
    os.kill(int(Task.objects.get(pk=task_id).worker.rsplit(":", 1)[1]), signal.SIGKILL)

    task = api.wait_status(task_id, "completed")
    assert task["attempt"] == 2, "retried once, by the watchdog"
    assert target_rows() == SOURCE_ROWS
    assert any(line.startswith("continuing after key ") for line in log_lines(api, task_id)), "not from zero"


@pytest.mark.worker
def test_a_cancel_mid_batch_stops_the_sync_within_a_second_and_writes_no_part_of_that_batch(api, source_url):
    # A batch of 1,000 rows takes a second: the cancel comes while one is being read and paced.
    task_id = start_sync(api, source_url, batch_size=1000, max_rows_per_second=1000)
    wait_for(lambda: api.task(task_id)["progress"] > 0, message="the first batch")
    assert api("post", f"/api/v1/tasks/{task_id}/cancel")[0] == 200
    cancelled_at = time.monotonic()
    wait_for(lambda: released(task_id), timeout=5, interval=0.01, message="the worker to stop")
    stopped_after = time.monotonic() - cancelled_at
    assert stopped_after <= 1.0, f"the sync stopped {stopped_after:.2f} s after the cancel"

    task = api.task(task_id)
    assert task["status"] == "cancelled" and task["progress"] < 100
    done = checkpoint(task_id)["done"]
    assert done in (1000, 2000)
    assert target_rows() == SOURCE_ROWS[:done], "whole batches only"


@pytest.mark.worker
def test_a_sync_past_its_timeout_fails_as_a_configuration_error_without_a_retry(api, source_url):
    task_id = start_sync(api, source_url, batch_size=100, max_rows_per_second=1000, timeout=1)
    task = api.wait_status(task_id, "failed")
    assert (task["error_category"], task["attempt"]) == ("config", 1)
    done = checkpoint(task_id)["done"]
    assert task["error_message"] == (
        f"timed out: the run passed its timeout of 1 s with {done} of {ROWS} rows copied; a retry continues from there"
    )
    assert 0 < done < ROWS and target_rows() == SOURCE_ROWS[:done]


@pytest.mark.worker
def test_bad_params_are_a_400_naming_the_field_and_syncing_needs_its_permission(api, source_url):
    for params, field in (
        ({"batch_size": 0}, "params.batch_size"),
        ({"source": "warehouse"}, "params.source"),
        ({"source": "postgres://sync:secret@db.example.com/crm"}, "params.source"),
        ({"target_table": "auth_user"}, "params.target_table"),
        ({"table": 'customers"; DROP TABLE x; --'}, "params.table"),
    ):
        body = {"source": source_url, "table": "customers", "target_table": TARGET, **params}
        status, refused = api("post", "/api/v1/tasks", {"task_type": TYPE, "params": body})
        assert status == 400 and list(refused["errors"]) == [field], (params, refused)

    other = _user("manager2", "manager", is_staff=True)
    without = Http(api.base, Token.objects.create(user=other).key)
    status, _ = without("post", "/api/v1/tasks", {"task_type": TYPE, "params": {"source": source_url, "table": "x"}})
    assert status == 403


@pytest.mark.worker
def test_the_table_summary_task_enqueued_here_reports_rows_keys_and_a_checksum(api, source_url, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # its type is gone after the test
    from datasync.reports import table_summary

    create_table(TARGET, SOURCE_ROWS)

    def summary(database: str, table: str) -> dict:
        result = table_summary.enqueue(database, table)
        wait_for(lambda: result.refresh() or result.is_finished, message="the summary")
        assert result.status == "SUCCESSFUL", result.errors
        return result.return_value

    source, target = summary(source_url, "customers"), summary("default", TARGET)
    assert source == {**target, "table": "customers"}
    assert (target["rows"], target["min_key"], target["max_key"]) == (ROWS, 7, 3 * ROWS + 4)

    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TARGET} SET name = 'changed' WHERE id = 7")
    assert summary("default", TARGET)["checksum"] != target["checksum"]


@pytest.mark.django_db
def test_a_sync_writes_over_the_rows_the_target_holds_already_and_adds_none(source_url, monkeypatch):
    """As a batch written by a worker killed before its checkpoint was saved: written again, once.
    Run here (``run_job``, in the test's transaction), from a ``DATABASES`` alias and from a URL."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # its types are gone after the test
    importlib.import_module("datasync.jobs")
    create_table("crm_customers", SOURCE_ROWS)
    for source, table in (("default", "crm_customers"), (source_url, "customers")):
        create_table(TARGET, [(key, "stale", 0.0, None) for key, *_ in SOURCE_ROWS[:1000]])
        task = run_job(TYPE, {"source": source, "table": table, "target_table": TARGET, "batch_size": 700})
        assert (task.status, task.result["rows"]) == ("completed", ROWS), (source, task.error_message)
        assert target_rows() == SOURCE_ROWS, source
