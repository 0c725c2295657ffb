"""Clients generated from the OpenAPI document work: the document the running service serves is
turned into a Python client (openapi-python-client) and into TypeScript types (openapi-typescript,
used through openapi-fetch), each without a generator warning, and each runs the statistics flow
(create a batch, start it, poll, results) against gunicorn and a real qcluster. How to generate
them: docs/api.md#generating-a-client."""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import typing
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from batches.assessments import generate
from tests.api_helpers import EXAMPLE_BATCH
from tests.cluster import wait_for

pytestmark = pytest.mark.worker

#: The TypeScript side: package.json, package-lock.json, flow.ts, run.mjs (node_modules: git-ignored).
CLIENTS = Path(__file__).resolve().parent / "clients"
#: The generated Python client's package name.
PACKAGE = "taskcenter_client"
BIN = Path(sys.executable).parent

STAGES_COMPLETED = [
    ("data_loading", "completed", 100.0),
    ("statistical_calculation", "completed", 100.0),
    ("result_aggregation", "completed", 100.0),
]

#: openapi-typescript's options: with the default (true) a property that has a default becomes
#: required even in request bodies (a canary's seconds, steps, fail_at_step, fail_times), which the
#: API does not require; the answers' fields are required by the schema itself.
OPENAPI_TYPESCRIPT_OPTIONS = ["--default-non-nullable", "false"]
#: How tests/clients/flow.ts is type-checked (as a bundler-built ES module for browsers and Node).
TSC = "--strict --noEmit --isolatedModules --target es2022 --module esnext --moduleResolution bundler --lib es2022,dom"


@dataclass
class Generated:
    """What is fetched and generated once per session (the schema does not change within one)."""

    root: Path
    schema: Path | None = None
    python: subprocess.CompletedProcess | None = None
    typescript: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Generated:
    return Generated(tmp_path_factory.mktemp("clients"))


@pytest.fixture
def schema(generated, request) -> Path:
    """The document as the running service serves it (a server is started only for the first fetch)."""
    if generated.schema is None:
        server = request.getfixturevalue("web_server")
        fetch = urllib.request.Request(f"{server.url}/api/schema/", headers={"Accept": "application/json"})
        with urllib.request.urlopen(fetch, timeout=30) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
            document = response.read()
        assert json.loads(document)["openapi"] == "3.1.0"
        path = generated.root / "schema.json"
        path.write_bytes(document)
        generated.schema = path
    return generated.schema


@pytest.fixture
def service(cluster, web_server, manager) -> tuple[str, str]:
    """The running service with seed data (3,000 assessment records) and the manager's token."""
    generate(300, seed=3)
    return web_server.url, Token.objects.create(user=manager).key


def run(command: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300, **kwargs)


# --- Python: openapi-python-client -------------------------------------------------------------


@pytest.fixture
def python_client(generated, schema) -> subprocess.CompletedProcess:
    """``openapi-python-client generate`` once per session; its package importable as ``PACKAGE``."""
    package = generated.root / "python" / PACKAGE
    if generated.python is None:
        # The venv's bin first on PATH: the generator's post-hooks run its ruff.
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        command = [BIN / "openapi-python-client", "generate", "--path", schema, "--output-path", package]
        generated.python = run([*command, "--meta", "none"], env=env)
        sys.path.insert(0, str(package.parent))
    assert (package / "__init__.py").exists(), generated.python.stdout + generated.python.stderr
    return generated.python


def snake(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def test_python_client_generates_without_a_warning_and_every_module_imports(python_client, schema):
    output = python_client.stdout + python_client.stderr
    assert python_client.returncode == 0, output
    # A clean run prints only "Generating <path>"; warnings come as "Warning(s) encountered while
    # generating…" followed by "Unable to process schema …" / skipped endpoint blocks.
    extra = [line for line in output.splitlines() if line.strip() and not line.startswith("Generating ")]
    assert not extra, "openapi-python-client printed more than it generated:\n" + output
    assert not re.search(r"warning|unable|skipp|could not", output, re.IGNORECASE), output

    package = importlib.import_module(PACKAGE)
    failed = {}
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}."):
        try:
            importlib.import_module(module.name)
        except Exception as error:  # every module is tried; all failures are reported at once
            failed[module.name] = repr(error)
    assert not failed, failed

    document = json.loads(schema.read_text())
    # Every operation has its module (a skipped endpoint has none) ...
    api = importlib.import_module(f"{PACKAGE}.api")
    api_modules = {
        module.name.rsplit(".", 1)[-1]: module.name
        for module in pkgutil.walk_packages(api.__path__, prefix=f"{PACKAGE}.api.")
    }
    operations = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    assert {"createBatch", "startBatchTask", "getTaskStatus", "getTaskProgress", "listTasks"} <= set(operations)
    missing = [name for name in operations if snake(name) not in api_modules]
    assert not missing, f"operations without a generated module: {missing}"
    # ... whose arguments are all typed: an `Any` is a request schema the generator gave up on.
    untyped = {}
    for name in operations:
        parameters = inspect.signature(importlib.import_module(api_modules[snake(name)]).sync_detailed).parameters
        for parameter in parameters.values():
            if parameter.annotation is typing.Any or typing.Any in typing.get_args(parameter.annotation):
                untyped[f"{name}({parameter.name})"] = str(parameter.annotation)
    assert not untyped, f"arguments typed Any (their schema was not understood): {untyped}"
    # Every named object and enum of the document is a model class (a dropped one is not).
    models = set(importlib.import_module(f"{PACKAGE}.models").__all__)
    named = [name for name, value in document["components"]["schemas"].items() if {"properties", "enum"} & set(value)]
    dropped = [name for name in named if name not in models]
    assert not dropped, f"schemas the generator made no model of: {dropped}"


def test_python_client_runs_the_statistics_flow(python_client, service):
    from taskcenter_client import AuthenticatedClient
    from taskcenter_client.api.batches import create_batch, get_batch_results
    from taskcenter_client.api.statistics_tasks import get_task_progress, get_task_status, start_batch_task
    from taskcenter_client.api.tasks import cancel_task, create_task, list_tasks
    from taskcenter_client.models import (
        BatchConfigRequest,
        BatchCreateRequest,
        BatchEnvelope,
        BatchResultEnvelope,
        CalculationType,
        CanaryParams,
        CanaryTaskCreate,
        Correlation,
        DataSourceName,
        Dimension,
        ErrorEnvelope,
        ErrorEnvelopeErrors,
        StageStatus,
        TaskDetailEnvelope,
        TaskPageEnvelope,
        TaskProgressEnvelope,
        TaskStatus,
        TaskStatusReportEnvelope,
        Trigger,
    )
    from taskcenter_client.types import Unset

    url, token = service
    config = BatchConfigRequest(
        include_dimensions=[Dimension.ACADEMIC, Dimension.NON_ACADEMIC],
        calculation_types=[CalculationType.DESCRIPTIVE, CalculationType.CORRELATION],
    )
    body = BatchCreateRequest(
        batch_code="BATCH_2025_001",
        description="2025年第一批统计任务",
        data_source=DataSourceName.STUDENT_ASSESSMENTS,
        config=config,
    )
    assert body.to_dict() == EXAMPLE_BATCH

    with AuthenticatedClient(base_url=url, token=token, prefix="Token", raise_on_unexpected_status=True) as client:
        created = create_batch.sync(client=client, body=body)
        assert isinstance(created, BatchEnvelope), created
        assert (created.success, created.code) == (True, 201)
        batch = created.data
        assert (batch.batch_code, batch.data_source, batch.task_count, batch.latest_task) == (
            "BATCH_2025_001",
            DataSourceName.STUDENT_ASSESSMENTS,
            0,
            None,
        )
        assert batch.config.include_dimensions == [Dimension.ACADEMIC, Dimension.NON_ACADEMIC]

        started = start_batch_task.sync_detailed(client=client, batch_code="BATCH_2025_001")
        assert started.status_code == 202 and isinstance(started.parsed, TaskStatusReportEnvelope), started
        task_id = started.parsed.data.task_id
        assert started.parsed.data.batch_code == "BATCH_2025_001"

        def completed():
            report = get_task_status.sync(client=client, task_id=str(task_id))
            assert isinstance(report, TaskStatusReportEnvelope), report
            # The envelope and the report hold exactly the fields the schema names.
            assert not report.additional_properties and not report.data.additional_properties
            assert report.data.status in (TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.COMPLETED)
            return report.data if report.data.status is TaskStatus.COMPLETED else None

        status = wait_for(completed, timeout=60, interval=0.1, message="the statistics task to complete")
        assert (status.task_id, status.progress, status.error_message) == (task_id, 100.0, None)
        assert status.started_at is not None and status.started_at.tzinfo is not None

        progress = get_task_progress.sync(client=client, task_id=str(task_id))
        assert isinstance(progress, TaskProgressEnvelope), progress
        assert progress.data.overall_progress == 100.0
        assert [(s.stage, s.status, s.progress) for s in progress.data.stage_details] == STAGES_COMPLETED
        assert all(isinstance(s.status, StageStatus) for s in progress.data.stage_details)

        results = get_batch_results.sync(client=client, batch_code="BATCH_2025_001")
        assert isinstance(results, BatchResultEnvelope), results
        assert results.data.task_id == task_id and results.data.result.records == 3000
        assert isinstance(results.data.result.correlation, Correlation)
        assert len(results.data.result.correlation.matrix) == 10
        assert isinstance(results.data.result.distribution, Unset), "only the calculations asked for"

        canary = create_task.sync(
            client=client, body=CanaryTaskCreate(task_type="canary", params=CanaryParams(seconds=30, steps=30))
        )
        assert isinstance(canary, TaskDetailEnvelope) and canary.code == 201, canary
        assert (canary.data.task_type, canary.data.trigger, canary.data.attempt) == ("canary", Trigger.API, 1)
        canary_id = canary.data.task_id
        cancelled = cancel_task.sync(client=client, task_id=str(canary_id))
        assert isinstance(cancelled, TaskDetailEnvelope), cancelled
        assert cancelled.data.status is TaskStatus.CANCELLED

        # A 400: the typed body cannot name an unknown data source (DataSourceName is an enum);
        # a malformed batch code it can.
        bad = BatchCreateRequest(batch_code="BATCH 1/2", data_source=DataSourceName.STUDENT_ASSESSMENTS, config=config)
        refused = create_batch.sync_detailed(client=client, body=bad)
        assert refused.status_code == 400 and isinstance(refused.parsed, ErrorEnvelope), refused
        assert (refused.parsed.success, refused.parsed.code, refused.parsed.data) == (False, 400, None)
        assert isinstance(refused.parsed.errors, ErrorEnvelopeErrors)
        assert refused.parsed.errors.additional_keys == ["batch_code"]
        assert all(isinstance(message, str) for message in refused.parsed.errors["batch_code"])

        # A 409: a completed task cannot be cancelled.
        conflict = cancel_task.sync_detailed(client=client, task_id=str(task_id))
        assert conflict.status_code == 409 and isinstance(conflict.parsed, ErrorEnvelope), conflict
        assert (conflict.parsed.success, conflict.parsed.code, conflict.parsed.data) == (False, 409, None)
        assert isinstance(conflict.parsed.errors, Unset)

        # Two statuses: the completed statistics task and the cancelled canary.
        page = list_tasks.sync(client=client, status=[TaskStatus.COMPLETED, TaskStatus.CANCELLED], page_size=10)
        assert isinstance(page, TaskPageEnvelope), page
        found = {task.task_id: task.status for task in page.data.results}
        assert found == {task_id: TaskStatus.COMPLETED, canary_id: TaskStatus.CANCELLED}, (
            "listTasks(status=[completed, cancelled]) must find both tasks (sent status=completed&status=cancelled)"
        )
        assert (page.data.total, page.data.page, page.data.page_size, page.data.total_pages) == (2, 1, 10, 1)


def test_python_client_reads_a_finished_tasks_event_stream(python_client, service):
    from taskcenter_client import AuthenticatedClient
    from taskcenter_client.api.tasks import create_task, get_task, stream_task_events
    from taskcenter_client.models import CanaryParams, CanaryTaskCreate, TaskDetailEnvelope, TaskStatus

    url, token = service
    with AuthenticatedClient(base_url=url, token=token, prefix="Token", raise_on_unexpected_status=True) as client:
        created = create_task.sync(
            client=client, body=CanaryTaskCreate(task_type="canary", params=CanaryParams(seconds=0, steps=1))
        )
        assert isinstance(created, TaskDetailEnvelope), created
        task_id = str(created.data.task_id)

        def finished():
            detail = get_task.sync(client=client, task_id=task_id)
            assert isinstance(detail, TaskDetailEnvelope), detail
            return detail.data.status is TaskStatus.COMPLETED

        wait_for(finished, timeout=30, interval=0.1, message="the canary to complete")
        # The stream of a finished task: its status, then `end`.
        stream = stream_task_events.sync_detailed(client=client, task_id=task_id)
        assert stream.status_code == 200 and stream.content.decode().rstrip().split("\n\n")[-1].startswith("event: end")
        assert stream.parsed is not None


# --- TypeScript: openapi-typescript + openapi-fetch, type-checked by tsc ---------------------------


@pytest.fixture
def node_modules() -> Path:
    """tests/clients/node_modules as package-lock.json pins it (``npm ci`` only when the lock changed)."""
    if not (shutil.which("node") and shutil.which("npm")):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but node/npm are missing: the generated TypeScript client cannot be checked")
        pytest.skip("node and npm not installed: the TypeScript client is not checked (apt-get install nodejs npm)")
    modules = CLIENTS / "node_modules"
    stamp = modules / ".taskcenter-installed"
    digest = hashlib.sha256((CLIENTS / "package.json").read_bytes() + (CLIENTS / "package-lock.json").read_bytes())
    with open(CLIENTS / "package-lock.json", "rb") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # two sessions in one checkout do not install at once
        if not (stamp.exists() and stamp.read_text() == digest.hexdigest()):
            installed = run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=CLIENTS)
            assert installed.returncode == 0, installed.stdout + installed.stderr
            stamp.write_text(digest.hexdigest())
    return modules


@pytest.fixture
def typescript(generated, node_modules, schema) -> Path:
    """A folder with flow.ts, the api.d.ts generated from the schema and the pinned node_modules;
    generated and type-checked once per session (the outcomes in ``generated.typescript``)."""
    folder = generated.root / "typescript"
    if not generated.typescript:
        folder.mkdir(exist_ok=True)
        if not (folder / "node_modules").exists():
            (folder / "node_modules").symlink_to(node_modules, target_is_directory=True)
        shutil.copy(CLIENTS / "flow.ts", folder / "flow.ts")
        bin_dir = node_modules / ".bin"
        generated.typescript["openapi-typescript"] = run(
            [bin_dir / "openapi-typescript", schema, *OPENAPI_TYPESCRIPT_OPTIONS, "--output", folder / "api.d.ts"]
        )
        generated.typescript["tsc"] = run([bin_dir / "tsc", *TSC.split(), "flow.ts"], cwd=folder)
    return folder


def test_typescript_types_generate_without_a_warning_and_the_typed_flow_compiles(generated, typescript):
    types = generated.typescript["openapi-typescript"]
    output = types.stdout + types.stderr
    assert types.returncode == 0, output
    # A clean run prints its banner and one line for the file written; anything else is a warning.
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0].startswith("✨ openapi-typescript 7.13.0"), output
    assert len(lines) == 2 and lines[1].startswith("🚀 ") and "api.d.ts" in lines[1], output
    checked = generated.typescript["tsc"]
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), (
        "tsc --strict rejects tests/clients/flow.ts against the generated api.d.ts:\n" + checked.stdout
    )


def test_typescript_flow_runs_against_the_service(typescript, service):
    url, token = service
    env = {**os.environ, "TASKCENTER_URL": url, "TASKCENTER_TOKEN": token}
    ran = run(["node", CLIENTS / "run.mjs", typescript / "flow.ts"], env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    outcome = json.loads(ran.stdout.splitlines()[-1])
    assert outcome["stages"] == [f"{stage}:{status}:{progress:g}" for stage, status, progress in STAGES_COMPLETED]
    assert outcome["records"] == 3000
    assert set(outcome["listed"]) == {outcome["taskId"], outcome["canaryId"]}
    assert (outcome["badRequestFields"], outcome["conflict"]) == (["batch_code"], 409)
