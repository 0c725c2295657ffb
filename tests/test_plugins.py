"""Plug-in apps (``TASKCENTER_PLUGINS``) and the public job API (``taskcenter.jobs``).

A small plug-in package is written to a temporary directory, outside taskcenter, and put on the
``PYTHONPATH`` of a real gunicorn and a real qcluster: its model's migration runs, its job type is
listed, runs, pauses and resumes from its checkpoint, and is cancelled. Without it, its tasks fail
as a configuration error and nothing else breaks. The testing helper runs in-process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from taskcenter.config import ConfigError, env_packages
from taskcenter.errors import InvalidInput
from taskcenter.jobs import ConfigurationError, DataError, RetryableError, job
from taskcenter.jobs.testing import run_job
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.runtime import registry
from tasks.services import task_create
from tests.cluster import ROOT, Cluster, WebServer, database_url, wait_for
from tests.conftest import stop_all_tasks

PLUGIN = "shop_steps"
TYPE = "shop.count"

#: A plug-in app as a shop would write one: an app config, a model with its migration (one row per
#: step done: a repeated step breaks its unique constraint) and a job type.
PLUGIN_FILES = {
    "__init__.py": "",
    "apps.py": """
        from django.apps import AppConfig


        class ShopStepsConfig(AppConfig):
            name = "shop_steps"
            default_auto_field = "django.db.models.BigAutoField"
        """,
    "models.py": """
        from django.db import models


        class Step(models.Model):
            task_id = models.CharField(max_length=36)
            number = models.IntegerField()

            class Meta:
                constraints = [models.UniqueConstraint(fields=["task_id", "number"], name="shop_step_once")]
        """,
    "migrations/__init__.py": "",
    "migrations/0001_initial.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [
                migrations.CreateModel(
                    name="Step",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                        ("task_id", models.CharField(max_length=36)),
                        ("number", models.IntegerField()),
                    ],
                    options={
                        "constraints": [models.UniqueConstraint(fields=["task_id", "number"], name="shop_step_once")]
                    },
                ),
            ]
        """,
    "jobs.py": """
        import time

        from rest_framework import serializers

        from shop_steps.models import Step
        from taskcenter.jobs import job


        class CountParams(serializers.Serializer):
            steps = serializers.IntegerField(min_value=1, max_value=1000, help_text="Steps to count.")
            seconds_per_step = serializers.FloatField(min_value=0, max_value=5, default=0.1)


        @job("shop.count", stages=[("count", 3), ("report", 1)], params=CountParams, timeout_seconds=300)
        def count(ctx):
            \"\"\"Counts steps, one row each.\"\"\"
            steps = ctx.params["steps"]
            start = ctx.checkpoint.get("next", 0)
            ctx.stage("count")
            if start:
                ctx.log("info", f"continuing from step {start}", resumed_from=start)
            for n in range(start, steps):
                time.sleep(ctx.params["seconds_per_step"])
                Step.objects.create(task_id=str(ctx.task_id), number=n + 1)
                ctx.save_checkpoint({"next": n + 1})
                ctx.progress(n + 1, steps)
            ctx.stage("report")
            return {"counted": steps, "resumed_from": start}

        try:
            from django.tasks import task
        except ImportError:  # Django 5.2: the django-tasks backport
            from django_tasks import task

        @task
        def add(a, b):
            \"\"\"Adds two numbers.\"\"\"
            return a + b
        """,
}

#: A plug-in whose jobs module raises when it is imported.
BROKEN_FILES = {
    "__init__.py": "",
    "jobs.py": "from taskcenter.jobs import job\n\nSTEPS = 1 / 0\n",
}


def write_package(root: Path, name: str, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / name / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


@pytest.fixture(scope="module")
def plugins_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    write_package(root, PLUGIN, PLUGIN_FILES)
    write_package(root, "broken_jobs", BROKEN_FILES)
    return root


def plugin_env(plugins_dir: Path, plugins: str = PLUGIN) -> dict:
    path = os.pathsep.join(filter(None, [str(plugins_dir), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "TASKCENTER_PLUGINS": plugins}


def manage(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Clusters:
    """The plug-in's cluster and the suite's own, which has no plug-in: one runs at a time, since
    both take their tasks from the same table."""

    def __init__(self, session: Cluster, plugin: Cluster):
        self.session, self.plugin = session, plugin

    def run(self, which: Cluster) -> Cluster:
        other = self.plugin if which is self.session else self.session
        if other.processes:
            stop_all_tasks()
            other.halt()
        if not which.processes:
            which.start()
        return which


@contextlib.contextmanager
def serving(env: dict, qcluster_session, django_db_blocker, tmp_path_factory):
    """gunicorn with the plug-ins ``env`` names, their models migrated into the test database,
    and the clusters (the plug-ins' one and the suite's own, one at a time)."""
    with django_db_blocker.unblock():
        migrated = manage("migrate", "--noinput", env={"DATABASE_URL": database_url(), **env})
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        web = WebServer(tmp_path_factory.mktemp("plugin-web"), extra_env=env).start()
        clusters = Clusters(qcluster_session, Cluster(tmp_path_factory.mktemp("plugin-cluster"), extra_env=env))
    try:
        yield web, clusters
    finally:
        web.stop()
        with django_db_blocker.unblock():
            clusters.plugin.stop()
            clusters.run(clusters.session)


@pytest.fixture(scope="module")
def served(plugins_dir, qcluster_session, django_db_blocker, tmp_path_factory):
    with serving(plugin_env(plugins_dir), qcluster_session, django_db_blocker, tmp_path_factory) as service:
        yield service


class Http:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def __call__(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method.upper())
        request.add_header("Authorization", f"Token {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def task(self, task_id: str) -> dict:
        return self("get", f"/api/v1/tasks/{task_id}")[1]["data"]

    def create(self, **params) -> str:
        status, body = self("post", "/api/v1/tasks", {"task_type": TYPE, "params": params})
        assert status == 201, body
        return body["data"]["task_id"]

    def wait_status(self, task_id: str, *statuses: str, timeout: float = 30) -> dict:
        return wait_for(
            lambda: (task := self.task(task_id))["status"] in statuses and task,
            timeout=timeout,
            message=f"task {task_id} to be {' or '.join(statuses)}",
        )


@pytest.fixture
def plugin(served, transactional_db, manager) -> Http:
    """Requests to the gunicorn with the plug-in, with the plug-in's cluster running."""
    web, clusters = served
    clusters.run(clusters.plugin)
    yield Http(web.url, Token.objects.create(user=manager).key)
    stop_all_tasks()


def steps_done(task_id: str) -> list[int]:
    """The steps the plug-in's job recorded in its own table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT number FROM shop_steps_step WHERE task_id = %s ORDER BY number", [task_id])
        return [number for (number,) in cursor.fetchall()]


def released(task_id: str) -> bool:
    return Task.objects.filter(pk=task_id, execution_id__isnull=True).exists()


# --- a plug-in's job type in the running service ---------------------------------------------


@pytest.mark.worker
def test_a_plugins_django_task_enqueued_from_another_process_runs_on_the_cluster(plugin, served, plugins_dir):
    types = {item["name"] for item in plugin("get", "/api/v1/task-types")[1]["data"]}
    assert {TYPE, f"{PLUGIN}.jobs.add"} <= types
    env = {"DATABASE_URL": database_url(), **plugin_env(plugins_dir)}
    enqueued = manage("shell", "-c", f"from {PLUGIN}.jobs import add; print(add.enqueue(2, 3).id)", env=env)
    assert enqueued.returncode == 0, enqueued.stdout + enqueued.stderr
    result_id = enqueued.stdout.strip().splitlines()[-1]
    task = plugin.wait_status(result_id, "completed")
    assert (task["task_type"], task["trigger"], task["result"]) == (
        f"{PLUGIN}.jobs.add",
        "enqueue",
        {"return_value": 5},
    )
    code = f"from {PLUGIN}.jobs import add; r = add.get_result({result_id!r}); print(r.status, r.return_value)"
    read = manage("shell", "-c", code, env=env)
    assert read.stdout.strip().splitlines()[-1] == "SUCCESSFUL 5", read.stdout + read.stderr


@pytest.mark.worker
def test_a_plugins_job_type_is_listed_and_its_params_are_in_the_openapi_create_body(plugin):
    types = {item["name"]: item for item in plugin("get", "/api/v1/task-types")[1]["data"]}
    assert types[TYPE]["description"] == "Counts steps, one row each."
    assert [(stage["name"], stage["weight"]) for stage in types[TYPE]["stages"]] == [("count", 0.75), ("report", 0.25)]
    assert types[TYPE]["params_schema"]["properties"]["steps"]["type"] == "integer"
    assert "canary" in types, "taskcenter's own types are still there"

    request = urllib.request.Request(f"{plugin.base}/api/schema/", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        schemas = json.loads(response.read())["components"]["schemas"]
    mapping = schemas["TaskCreateRequest"]["discriminator"]["mapping"]
    assert mapping[TYPE] == "#/components/schemas/ShopCountTaskCreate"
    assert schemas["ShopCountTaskCreate"]["properties"]["params"] == {"$ref": "#/components/schemas/ShopCountParams"}
    assert schemas["ShopCountParams"]["required"] == ["steps"]

    status, refused = plugin("post", "/api/v1/tasks", {"task_type": TYPE, "params": {"steps": 0}})
    assert status == 400 and "params.steps" in refused["errors"]


@pytest.mark.worker
def test_a_plugins_task_runs_to_completion_with_progress(plugin):
    task_id = plugin.create(steps=5, seconds_per_step=0.05)
    task = plugin.wait_status(task_id, "completed")
    assert task["progress"] == 100
    assert task["result"] == {"counted": 5, "resumed_from": 0}
    assert [(stage["stage"], stage["status"]) for stage in task["stage_details"]] == [
        ("count", "completed"),
        ("report", "completed"),
    ]
    assert steps_done(task_id) == [1, 2, 3, 4, 5]


@pytest.mark.worker
def test_a_paused_plugin_task_resumes_from_its_checkpoint_without_repeating_a_step(plugin):
    task_id = plugin.create(steps=20, seconds_per_step=0.1)
    wait_for(lambda: plugin.task(task_id)["progress"] >= 15, message="a quarter of the steps")
    assert plugin("post", f"/api/v1/tasks/{task_id}/pause")[0] == 200
    wait_for(lambda: released(task_id), message="the worker to let go of the paused task")
    paused_at = len(steps_done(task_id))
    assert 0 < paused_at < 20

    assert plugin("post", f"/api/v1/tasks/{task_id}/resume")[0] == 200
    task = plugin.wait_status(task_id, "completed")
    assert task["result"] == {"counted": 20, "resumed_from": paused_at}
    assert steps_done(task_id) == list(range(1, 21)), "every step once"
    logs = plugin("get", f"/api/v1/tasks/{task_id}/logs?page_size=100")[1]["data"]["results"]
    assert f"continuing from step {paused_at}" in [line["message"] for line in logs]


@pytest.mark.worker
def test_a_cancelled_plugin_task_stops_mid_run(plugin):
    task_id = plugin.create(steps=50, seconds_per_step=0.1)
    wait_for(lambda: plugin.task(task_id)["progress"] > 0, message="the task to make progress")
    assert plugin("post", f"/api/v1/tasks/{task_id}/cancel")[0] == 200
    wait_for(lambda: released(task_id), message="the worker to let go of the cancelled task")
    task = plugin.task(task_id)
    assert task["status"] == "cancelled" and task["progress"] < 100
    assert 0 < len(steps_done(task_id)) < 50


# --- a plug-in removed while it has tasks ----------------------------------------------------


@pytest.mark.worker
def test_a_removed_plugins_pending_task_fails_as_a_configuration_error_and_nothing_breaks(plugin, served, admin_user):
    _, clusters = served
    clusters.plugin.halt()  # created while the plug-in is installed, taken by a worker without it
    task_id = plugin.create(steps=3)
    cluster = clusters.run(clusters.session)
    task = plugin.wait_status(task_id, "failed")
    assert task["error_category"] == "config"
    assert task["error_message"] == f"unknown task type {TYPE!r}"
    assert task["attempt"] == 1, "not retried"

    canary = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    wait_for(lambda: Task.objects.get(pk=canary.pk).status == "completed", message="another task to run")
    assert cluster.qcluster.poll() is None, "the cluster keeps running"

    # This process, like that cluster, has no plug-in: the task's pages still answer.
    admin = Client(HTTP_ACCEPT_LANGUAGE="en")
    admin.force_login(admin_user)
    for url in ("/admin/", "/admin/tasks/task/", f"/admin/tasks/task/?task_type={TYPE}"):
        assert admin.get(url).status_code == 200, url
    assert TYPE in admin.get(f"/admin/tasks/task/{task_id}/change/").content.decode()
    api = APIClient()
    api.force_authenticate(admin_user)
    for url in (
        "/api/v1/tasks",
        f"/api/v1/tasks/{task_id}",
        f"/api/v1/tasks/{task_id}/logs",
        "/api/v1/tasks/statistics",
        "/api/v1/task-types",
    ):
        assert api.get(url).status_code == 200, url
    assert TYPE not in [item["name"] for item in api.get("/api/v1/task-types").json()["data"]]
    # It cannot run again here, and says why; it can be deleted.
    retried = api.post(f"/api/v1/tasks/{task_id}/retry")
    assert retried.status_code == 400 and TYPE in retried.json()["message"]
    assert api.delete(f"/api/v1/tasks/{task_id}").status_code == 200


# --- a plug-in that cannot be loaded ---------------------------------------------------------


@pytest.mark.parametrize(
    ("plugins", "line"),
    [
        (
            "shop_missing",
            "taskcenter: configuration error: TASKCENTER_PLUGINS: plug-in 'shop_missing' cannot be imported: "
            "ModuleNotFoundError: No module named 'shop_missing'",
        ),
        (
            f"{PLUGIN},broken_jobs",
            "taskcenter: configuration error: TASKCENTER_PLUGINS: plug-in 'broken_jobs': its jobs module failed: "
            "ZeroDivisionError: division by zero ({dir}/broken_jobs/jobs.py, line 3)",
        ),
    ],
)
def test_a_plugin_that_cannot_be_loaded_stops_manage_py_with_one_line_naming_it(plugins_dir, plugins, line):
    done = manage("check", env={"DEBUG": "1", **plugin_env(plugins_dir, plugins)})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [line.format(dir=plugins_dir)]


@pytest.mark.worker
def test_a_plugin_that_cannot_be_loaded_stops_qcluster_and_gunicorn(plugins_dir):
    env = plugin_env(plugins_dir, "broken_jobs")
    line = (
        "taskcenter: configuration error: TASKCENTER_PLUGINS: plug-in 'broken_jobs': its jobs module failed: "
        f"ZeroDivisionError: division by zero ({plugins_dir}/broken_jobs/jobs.py, line 3)"
    )
    qcluster = manage("qcluster", env=env)
    assert (qcluster.returncode, qcluster.stderr.splitlines()) == (2, [line])

    gunicorn = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn")), "taskcenter.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # gunicorn's "App failed to load": it stops, rather than booting workers that fail again and again.
    assert gunicorn.returncode == 4, gunicorn.stderr
    assert line in gunicorn.stderr.splitlines()
    assert "Traceback" not in gunicorn.stderr


def test_plugin_names_must_be_package_names(monkeypatch):
    monkeypatch.setenv("TASKCENTER_PLUGINS", " shop_steps, acme.jobs ,")
    assert env_packages("TASKCENTER_PLUGINS") == ["shop_steps", "acme.jobs"]
    for value in ("shop-steps", "acme..jobs", "acme.jobs.apps.Config()"):
        monkeypatch.setenv("TASKCENTER_PLUGINS", value)
        with pytest.raises(ConfigError, match=re.escape(f"TASKCENTER_PLUGINS: {value!r} is not a Python package name")):
            env_packages("TASKCENTER_PLUGINS")


# --- the testing helper ----------------------------------------------------------------------


@pytest.fixture
def own_registry(monkeypatch):
    """Job types registered by a test are gone after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


class StepsParams(serializers.Serializer):
    steps = serializers.IntegerField(min_value=1, max_value=100)


@pytest.mark.django_db
def test_run_job_runs_a_job_through_the_worker_to_completion(own_registry):
    @job("test.count", stages=[("count", 3), ("report", 1)], params=StepsParams)
    def count(ctx):
        ctx.stage("count")
        for n in range(ctx.params["steps"]):
            ctx.progress(n + 1, ctx.params["steps"])
        ctx.stage("report")
        ctx.log("info", "counted", steps=ctx.params["steps"])
        return {"counted": ctx.params["steps"], "attempt": ctx.attempt}

    task = run_job("test.count", {"steps": 4})
    assert (task.status, task.result, task.progress) == ("completed", {"counted": 4, "attempt": 1}, 100)
    assert [(stage.name, stage.status) for stage in task.stages.order_by("position")] == [
        ("count", "completed"),
        ("report", "completed"),
    ]
    assert [(line.message, line.data) for line in task.logs.order_by("id")] == [("counted", {"steps": 4})]


@pytest.mark.django_db
def test_run_job_runs_automatic_retries_at_once_from_the_checkpoint(own_registry):
    @job("test.flaky", stages=[("work", 1)], max_attempts=3)
    def flaky(ctx):
        start = ctx.checkpoint.get("next", 0)
        for n in range(start, 4):
            ctx.save_checkpoint({"next": n + 1})
            if n == 1 and ctx.attempt == 1:
                raise RetryableError("the service is down")
        return {"resumed_from": start}

    task = run_job("test.flaky")
    assert (task.status, task.attempt, task.result) == ("completed", 2, {"resumed_from": 2})


@pytest.mark.django_db
@pytest.mark.parametrize(("error", "category"), [(DataError, "data"), (ConfigurationError, "config")])
def test_run_job_fails_data_and_configuration_errors_without_retrying(own_registry, error, category):
    @job("test.refuses", stages=[("work", 1)])
    def refuses(ctx):
        raise error("nothing to count")

    task = run_job("test.refuses")
    assert (task.status, task.error_category, task.error_message, task.attempt) == (
        "failed",
        category,
        "nothing to count",
        1,
    )


@pytest.mark.django_db
def test_run_job_refuses_bad_params_as_the_api_does(own_registry):
    job("test.count", stages=[("count", 1)], params=StepsParams)(lambda ctx: None)
    with pytest.raises(InvalidInput) as refused:
        run_job("test.count", {"steps": 0})
    assert list(refused.value.errors) == ["params.steps"]


def test_a_job_type_name_is_registered_once(own_registry):
    job("test.once", stages=[("work", 1)])(lambda ctx: None)
    with pytest.raises(ValueError, match="'test.once' is already registered"):
        job("test.once", stages=[("work", 1)])(lambda ctx: None)
