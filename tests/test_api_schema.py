"""The OpenAPI document is exact: schemathesis finds no failure against a live server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from batches.services import batch_create
from tasks.actors import SYSTEM
from tasks.runtime.worker import run_task
from tasks.services import task_create

SEED = "20261123"
#: The worker name of the executions this test holds without a worker.
TEST_WORKER = "schemathesis:0"


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_failures_with_its_default_checks(no_cluster, manager, tmp_path):
    from tests.cluster import WebServer
    from tests.conftest import stop_all_tasks

    # No worker runs here (no_cluster): the tasks in each state that schemathesis is given stay so
    # (the session's cluster would run the pending ones and its watchdog release the processing ones).
    # Event streams of tasks that never finish here would otherwise stay open for minutes.
    live_server = WebServer(tmp_path, extra_env={"TASKCENTER_SSE_MAX_SECONDS": "1"}).start()
    try:
        _run_schemathesis(live_server, manager, tmp_path)
    finally:
        live_server.stop()
        _let_go_of_test_executions()
        stop_all_tasks()


#: What schemathesis is told beyond the schema: where its ids come from (a fuzz dictionary of
#: real tasks and batches, besides the ids the schema's links yield), and the two places where the
#: API's answer depends on what the schema cannot say or schemathesis read.
SCHEMATHESIS_CONFIG = """
[dictionaries.task_ids]
values = {task_ids}

[dictionaries.batch_codes]
values = ["BATCH_2025_001"]

[dictionaries.batches_with_results]
values = ["BATCH_2025_002"]

[dictionaries.schedule_ids]
values = {schedule_ids}

[parameters]
"path.task_id" = {{ dictionary = "task_ids", probability = 0.7 }}
"path.batch_code" = {{ dictionary = "batch_codes", probability = 0.5 }}
"path.id" = {{ dictionary = "schedule_ids", probability = 0.7 }}

# Another batch with a result, which the other operations do not get to delete first.
[[operations]]
include-operation-id = "getBatchResults"
parameters = {{ "path.batch_code" = {{ dictionary = "batches_with_results", probability = 0.7 }} }}

# A task's new params must fit its type, which the body cannot name: params that fit another
# type are a 400.
[[operations]]
include-operation-id = "updateTask"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# A schedule's cron text must name times that come (0 0 31 2 * never does), its params fit its type
# and exactly one of cron and interval_seconds be set: what the body alone cannot say is a 400.
[[operations]]
include-operation-id = "createSchedule"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
include-operation-id = "updateSchedule"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# Any HTTP request may carry headers nobody declared; the stream ignores them. Its events' schema
# is an extension schemathesis does not read (tests/api_contract.py checks each event against it).
[[operations]]
include-operation-id = "streamTaskEvents"
generation.allow-extra-parameters = false
checks.response_schema_conformance.enabled = false
"""

#: The steering operations that need an active task, run apart (the whole run cancels every
#: active task early on: bulk cancel, all), each on tasks of its own in the state it acts on.
STEERING = {
    "updateTask": ("task_id", "pending"),
    "cancelTask": ("task_id", "pending"),
    "pauseTask": ("task_id", "processing"),
    "resumeTask": ("task_id", "paused"),
    "cancelBatchTask": ("batch_code", "batch with an active task"),
}
#: Operations run last, on their own: they change whatever tasks a filter matches (delete every
#: completed one, …), which the other operations' objects must not meet first. No link leads to
#: them (they take no id): no stateful phase.
LAST = ["runBulkTaskAction"]
STEERING_CONFIG = """
[dictionaries.{operation}]
values = {values}

[[operations]]
include-operation-id = "{operation}"
parameters = {{ "path.{field}" = {{ dictionary = "{operation}", probability = 0.7 }} }}
"""


def _test_data() -> list[str]:
    """Real tasks in every state a task operation acts on, and a batch with a result."""
    from batches.assessments import generate
    from batches.services import batch_start
    from batches.sources import CALCULATION_TYPES
    from tasks.services import task_cancel, task_pause

    generate(200, seed=1)
    batch_create(
        actor=SYSTEM,
        batch_code="BATCH_2025_001",
        data_source="student_assessments",
        config={"include_dimensions": ["academic"], "calculation_types": ["descriptive"]},
    )
    batch_create(
        actor=SYSTEM,
        batch_code="BATCH_2025_002",
        data_source="student_assessments",
        config={"include_dimensions": ["academic", "non_academic"], "calculation_types": list(CALCULATION_TYPES)},
    )
    statistics = batch_start(actor=SYSTEM, batch_code="BATCH_2025_001")
    run_task(str(statistics.pk))
    run_task(str(batch_start(actor=SYSTEM, batch_code="BATCH_2025_002").pk))
    canary = {"seconds": 0, "steps": 1}
    completed = task_create(actor=SYSTEM, task_type="canary", params=canary)
    run_task(str(completed.pk))
    pending = task_create(actor=SYSTEM, task_type="canary", params=canary)
    cancelled = task_create(actor=SYSTEM, task_type="canary", params=canary)
    task_cancel(actor=SYSTEM, task_id=cancelled.pk)
    processing, paused = _processing_canaries(2)
    task_pause(actor=SYSTEM, task_id=paused)
    return [str(task.pk) for task in (statistics, completed, pending, cancelled)] + [processing, paused]


def _schedules() -> list[int]:
    """Schedules of every kind: interval, cron, disabled, a batch's (the purge's is there too)."""
    from tasks.services import schedule_create

    kinds = [
        {"task_type": "canary", "interval_seconds": 3600},
        {"task_type": "canary", "cron": "0 2 * * *", "enabled": False},
        {"task_type": "statistics", "batch_code": "BATCH_2025_002", "cron": "@daily"},
        {"task_type": "canary", "params": {"seconds": 0}, "cron": "*/30 * * * *"},
    ]
    return [schedule_create(actor=SYSTEM, name=f"schedule {index}", **kind).pk for index, kind in enumerate(kinds)]


def _canary():
    return task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})


def _processing_canaries(count: int) -> list[str]:
    """Canaries held by an execution no worker runs here: processing until a user acts."""
    import uuid

    from tasks import store
    from tasks.models import TaskType

    # Schemathesis may have paused the canary type or capped it: this claim is not about that.
    TaskType.objects.filter(name="canary").delete()
    tasks = [_canary() for _ in range(count)]
    for task in tasks:
        assert store.claim(task.pk, uuid.uuid4(), TEST_WORKER) is not None
    return [str(task.pk) for task in tasks]


def _let_go_of_test_executions() -> None:
    """What a worker does when its task is cancelled, for the executions no worker runs."""
    from tasks import store
    from tasks.models import Task
    from tasks.services import task_cancel
    from tasks.states import ACTIVE_STATUSES

    held = Task.objects.filter(worker=TEST_WORKER).values_list("pk", "execution_id", "status")
    for task_id, execution_id, status in held:
        if status in ACTIVE_STATUSES:
            task_cancel(actor=SYSTEM, task_id=task_id)
        store.release(task_id, execution_id, reason="test over")


def _run_schemathesis(live_server, manager, tmp_path):
    import json

    token = Token.objects.create(user=manager).key
    config = tmp_path / "schemathesis.toml"
    general = SCHEMATHESIS_CONFIG.format(task_ids=json.dumps(_test_data()), schedule_ids=json.dumps(_schedules()))
    config.write_text(general)
    _schemathesis(live_server, token, config, tmp_path, *_each("--exclude-operation-id", [*STEERING, *LAST]))
    steering = [
        STEERING_CONFIG.format(operation=operation, field=field, values=json.dumps(_objects_in(state)))
        for operation, (field, state) in STEERING.items()
    ]
    config.write_text(general + "".join(steering))
    _schemathesis(live_server, token, config, tmp_path, *_each("--include-operation-id", STEERING))
    phases = ["--phases", "examples,coverage,fuzzing"]
    _schemathesis(live_server, token, config, tmp_path, *_each("--include-operation-id", LAST), *phases)


def _objects_in(state: str) -> list[str]:
    """Three tasks in ``state`` (or three batches with an active task)."""
    from batches.services import batch_start
    from tasks.services import task_pause

    if state == "pending":
        return [str(_canary().pk) for _ in range(3)]
    if state == "processing":
        return _processing_canaries(3)
    if state == "paused":
        paused = _processing_canaries(3)
        for task_id in paused:
            task_pause(actor=SYSTEM, task_id=task_id)
        return paused
    codes = [f"ACTIVE_{index}" for index in range(3)]
    for code in codes:
        batch_create(
            actor=SYSTEM,
            batch_code=code,
            data_source="student_assessments",
            config={"include_dimensions": ["academic"], "calculation_types": ["descriptive"]},
        )
        batch_start(actor=SYSTEM, batch_code=code)
    return codes


def _each(option: str, values) -> list[str]:
    return [part for value in values for part in (option, value)]


def _schemathesis(live_server, token: str, config: Path, tmp_path: Path, *arguments: str) -> None:
    st = Path(sys.executable).with_name("st")
    completed = subprocess.run(
        [
            str(st),
            "--config-file",
            str(config),
            "run",
            f"{live_server.url}/api/schema/",
            "--url",
            live_server.url,
            "-H",
            f"Authorization: Token {token}",
            "--seed",
            SEED,
            "--max-examples",
            "15",
            "--workers",
            "1",
            # No cluster runs here, so /readyz answers its documented 503, which schemathesis counts
            # as a server error (test_the_health_endpoints_are_documented_… checks it instead).
            "--exclude-path",
            "/readyz",
            "--no-color",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    report = completed.stdout[-6000:] + completed.stderr[-2000:]
    assert completed.returncode == 0, report
    assert "No issues found" in completed.stdout or " passed" in completed.stdout, report
    # Every operation met real objects: none only ever answered 404, none lacked the data it needs.
    assert "WARNINGS" not in completed.stdout, report


def test_schema_documents_every_endpoint_with_the_envelope(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    schema = response.json()
    paths = schema["paths"]
    for path in [
        "/api/v1/statistics/batches",
        "/api/v1/statistics/batches/{batch_code}",
        "/api/v1/statistics/batches/{batch_code}/results",
        "/api/v1/statistics/tasks/{batch_code}/start",
        "/api/v1/statistics/tasks/{batch_code}/cancel",
        "/api/v1/statistics/tasks/{task_id}/status",
        "/api/v1/statistics/tasks/{task_id}/progress",
        "/api/v1/statistics/tasks/batch-start",
        "/api/v1/statistics/tasks/batch-cancel",
        "/api/v1/statistics/tasks/batch-delete",
        "/api/v1/tasks",
        "/api/v1/tasks/{task_id}",
        "/api/v1/tasks/{task_id}/cancel",
        "/api/v1/tasks/{task_id}/pause",
        "/api/v1/tasks/{task_id}/resume",
        "/api/v1/tasks/{task_id}/retry",
        "/api/v1/tasks/{task_id}/logs",
        "/api/v1/tasks/{task_id}/events",
        "/api/v1/tasks/batch-cancel",
        "/api/v1/tasks/batch-delete",
        "/api/v1/tasks/bulk",
        "/api/v1/tasks/statistics",
        "/api/v1/task-types",
        "/api/v1/data-sources",
        "/api/v1/audit-logs",
        "/api/v1/schedules",
        "/api/v1/schedules/{id}",
    ]:
        assert path in paths, path
    components = schema["components"]["schemas"]
    ok = paths["/api/v1/tasks/{task_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/TaskDetailEnvelope"}
    envelope = components["TaskDetailEnvelope"]
    assert envelope["required"] == ["success", "code", "message", "data"]
    assert envelope["properties"]["data"] == {"$ref": "#/components/schemas/TaskDetail"}
    assert set(paths["/api/v1/tasks/{task_id}/cancel"]["post"]["responses"]) >= {"200", "401", "403", "404", "409"}
    # Log ids a client sends are bounded integers; anything else is a documented 400.
    for path, where, name in [
        ("/api/v1/tasks/{task_id}/logs", "query", "after_id"),
        ("/api/v1/tasks/{task_id}/events", "header", "Last-Event-ID"),
    ]:
        operation = paths[path]["get"]
        (parameter,) = [p for p in operation["parameters"] if (p["in"], p["name"]) == (where, name)]
        assert parameter["schema"] == {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}
        assert "400" in operation["responses"]
    status_enum = components["TaskStatus"]["enum"]
    assert status_enum == ["pending", "processing", "paused", "completed", "failed", "cancelled"]


def test_every_operation_carries_one_resource_tag(client):
    from django.conf import settings

    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    declared = [tag["name"] for tag in settings.SPECTACULAR_SETTINGS["TAGS"]]
    assert declared == [
        "batches",
        "statistics tasks",
        "tasks",
        "task types",
        "schedules",
        "audit",
        "data sources",
        "health",
    ]
    assert [tag["name"] for tag in schema["tags"]] == declared
    used = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in declared, (method, path)
            used.add(operation["tags"][0])
    assert used == set(declared), "a declared tag that no operation carries"
    assert schema["paths"]["/api/v1/statistics/tasks/{task_id}/progress"]["get"]["tags"] == ["statistics tasks"]
    assert schema["paths"]["/api/v1/tasks/statistics"]["get"]["tags"] == ["tasks"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_health_endpoints_are_documented_and_answer_only_get_and_head(client, db, path):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert list(schema["paths"][path]) == ["get"]
    assert schema["paths"][path]["get"]["tags"] == ["health"]
    documented = schema["paths"][path]["get"]["responses"]
    assert str(client.get(path).status_code) in documented
    assert str(client.head(path).status_code) in documented
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)(path)
        assert response.status_code == 405, method
        assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_are_served_without_a_cdn(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower() and "https://" not in html.split("<body")[0]


def _schema(client, **headers) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/json", **headers).json()


def _operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


OPERATION_IDS = {
    ("get", "/api/v1/statistics/batches"): "listBatches",
    ("post", "/api/v1/statistics/batches"): "createBatch",
    ("get", "/api/v1/statistics/batches/{batch_code}"): "getBatch",
    ("put", "/api/v1/statistics/batches/{batch_code}"): "replaceBatch",
    ("patch", "/api/v1/statistics/batches/{batch_code}"): "updateBatch",
    ("delete", "/api/v1/statistics/batches/{batch_code}"): "deleteBatch",
    ("get", "/api/v1/statistics/batches/{batch_code}/results"): "getBatchResults",
    ("post", "/api/v1/statistics/tasks/{batch_code}/start"): "startBatchTask",
    ("post", "/api/v1/statistics/tasks/{batch_code}/cancel"): "cancelBatchTask",
    ("get", "/api/v1/statistics/tasks/{task_id}/status"): "getTaskStatus",
    ("get", "/api/v1/statistics/tasks/{task_id}/progress"): "getTaskProgress",
    ("post", "/api/v1/statistics/tasks/batch-start"): "bulkStartBatchTasks",
    ("post", "/api/v1/statistics/tasks/batch-cancel"): "bulkCancelStatisticsTasks",
    ("post", "/api/v1/statistics/tasks/batch-delete"): "bulkDeleteStatisticsTasks",
    ("get", "/api/v1/tasks"): "listTasks",
    ("post", "/api/v1/tasks"): "createTask",
    ("get", "/api/v1/tasks/{task_id}"): "getTask",
    ("patch", "/api/v1/tasks/{task_id}"): "updateTask",
    ("delete", "/api/v1/tasks/{task_id}"): "deleteTask",
    ("post", "/api/v1/tasks/{task_id}/cancel"): "cancelTask",
    ("post", "/api/v1/tasks/{task_id}/pause"): "pauseTask",
    ("post", "/api/v1/tasks/{task_id}/resume"): "resumeTask",
    ("post", "/api/v1/tasks/{task_id}/retry"): "retryTask",
    ("get", "/api/v1/tasks/{task_id}/logs"): "listTaskLogs",
    ("get", "/api/v1/tasks/{task_id}/events"): "streamTaskEvents",
    ("post", "/api/v1/tasks/batch-cancel"): "bulkCancelTasks",
    ("post", "/api/v1/tasks/batch-delete"): "bulkDeleteTasks",
    ("post", "/api/v1/tasks/bulk"): "runBulkTaskAction",
    ("get", "/api/v1/tasks/statistics"): "getTaskStatistics",
    ("get", "/api/v1/task-types"): "listTaskTypes",
    ("get", "/api/v1/task-types/{name}"): "getTaskType",
    ("patch", "/api/v1/task-types/{name}"): "updateTaskType",
    ("post", "/api/v1/task-types/{name}/pause"): "pauseTaskType",
    ("post", "/api/v1/task-types/{name}/resume"): "resumeTaskType",
    ("get", "/api/v1/audit-logs"): "listAuditLogs",
    ("get", "/api/v1/data-sources"): "listDataSources",
    ("get", "/api/v1/schedules"): "listSchedules",
    ("post", "/api/v1/schedules"): "createSchedule",
    ("get", "/api/v1/schedules/{id}"): "getSchedule",
    ("patch", "/api/v1/schedules/{id}"): "updateSchedule",
    ("delete", "/api/v1/schedules/{id}"): "deleteSchedule",
    ("get", "/healthz"): "getLiveness",
    ("get", "/readyz"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
}


def test_every_operation_is_named_for_a_client(client):
    """A generated client's functions are named by the operation ids."""
    schema = _schema(client)
    assert {(method, path): operation["operationId"] for path, method, operation in _operations(schema)} == (
        OPERATION_IDS
    )


def test_the_document_is_valid_openapi_3_1(client):
    from drf_spectacular.validation import validate_schema

    schema = _schema(client)
    assert schema["openapi"] == "3.1.0"
    validate_schema(schema)  # raises on any violation of the OpenAPI 3.1 meta-schema


def test_the_schema_is_english_whatever_the_site_language(client, settings):
    assert settings.LANGUAGE_CODE == "zh-hans"
    text = client.get("/api/schema/", HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE="zh-hans").content
    chinese = [char for char in text.decode() if "\u4e00" <= char <= "\u9fff"]
    assert not chinese, "".join(chinese[:40])


def test_every_answer_is_a_named_envelope_and_every_error_the_error_envelope(client):
    schema = _schema(client)
    components = schema["components"]["schemas"]
    for path, method, operation in _operations(schema):
        if not path.startswith("/api/v1/"):
            continue
        for code, response in operation["responses"].items():
            content = response["content"]
            if "text/event-stream" in content:
                assert content["text/event-stream"]["schema"]["type"] == "string"
                assert content["text/event-stream"]["x-itemSchema"] == {"$ref": "#/components/schemas/TaskEvent"}
                continue
            ref = content["application/json"]["schema"]["$ref"].removeprefix("#/components/schemas/")
            if code.startswith("2"):
                assert ref.endswith("Envelope") and ref != "ErrorEnvelope", (method, path, code)
                data = components[ref]["properties"]["data"]
                assert "$ref" in data or "$ref" in data.get("items", {}) or data == {"type": "null"}, ref
            else:
                assert ref == "ErrorEnvelope", (method, path, code)
    assert components["ErrorEnvelope"]["properties"]["data"] == {"type": "null"}
    assert "errors" not in components["ErrorEnvelope"]["required"]  # 400 only
    assert components["TaskLogPageEnvelope"]["properties"]["data"] == {"$ref": "#/components/schemas/TaskLogPage"}


#: Answer fields that an answer may leave out (all others are always sent).
OPTIONAL = {
    "ErrorEnvelope": {"errors"},
    "StatisticsResult": {"descriptive", "correlation", "distribution", "group_comparison"},
    "BatchConfig": {"filters", "histogram_bins"},
    "BatchFilters": {"schools", "grades", "assessed_from", "assessed_to"},
    "TaskEvent": {"id"},
    "Readiness": {"failing", "details"},
}


def _walk(node):
    """Every object in ``node``, nested ones included."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _refs(node):
    """The components ``node`` refers to."""
    for found in _walk(node):
        if "$ref" in found:
            yield found["$ref"].removeprefix("#/components/schemas/")


def test_answers_mark_what_is_always_sent_as_required_and_type_every_value(client):
    schema = _schema(client)
    components = schema["components"]["schemas"]
    answers, todo = (
        set(),
        [
            ref
            for _, _, operation in _operations(schema)
            for code, response in operation["responses"].items()
            for ref in _refs(response)
        ],
    )
    while todo:
        name = todo.pop()
        if name not in answers:
            answers.add(name)
            todo.extend(_refs(components[name]))
    assert {"TaskDetail", "Task", "TaskStatusReport", "BatchConfig", "StatisticsResult", "AuditLog"} <= answers
    for name in sorted(answers):
        component = components[name]
        if "properties" in component:
            missing = set(component["properties"]) - set(component.get("required", []))
            assert missing == OPTIONAL.get(name, set()), name
    for node in _walk(schema):
        assert "nullable" not in node  # OpenAPI 3.1: null is a type
    for name in ("TaskDetail", "Task", "TaskStatusReport"):
        assert components[name]["properties"]["error_message"]["type"] == ["string", "null"]
    detail = components["TaskDetail"]["properties"]
    assert detail["params"]["type"] == "object" and detail["result"]["type"] == ["object", "null"]
    assert components["Batch"]["properties"]["config"]["allOf"] == [{"$ref": "#/components/schemas/BatchConfig"}]
    assert components["BatchResult"]["properties"]["result"]["allOf"] == [
        {"$ref": "#/components/schemas/StatisticsResult"}
    ]
    assert components["TaskLog"]["properties"]["data"]["type"] == ["object", "null"]
    assert components["Task"]["properties"]["attempt"] == {
        "type": "integer",
        "minimum": 1,
        "readOnly": True,
        "description": "1 for the first run; each retry adds one.",
    }


def test_filters_and_answers_share_the_named_enums(client):
    schema = _schema(client)
    components = schema["components"]["schemas"]
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/tasks"]["get"]["parameters"]}
    assert parameters["status"]["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/TaskStatus"}}
    assert (parameters["status"]["style"], parameters["status"]["explode"]) == ("form", True)
    assert parameters["trigger"]["schema"] == {"$ref": "#/components/schemas/Trigger"}
    logs = {p["name"]: p for p in schema["paths"]["/api/v1/tasks/{task_id}/logs"]["get"]["parameters"]}
    assert logs["level"]["schema"] == {"$ref": "#/components/schemas/LogLevel"}
    assert components["TaskLog"]["properties"]["level"]["allOf"] == [{"$ref": "#/components/schemas/LogLevel"}]
    assert components["Task"]["properties"]["status"]["allOf"] == [{"$ref": "#/components/schemas/TaskStatus"}]
    assert components["Cluster"]["properties"]["status"]["allOf"] == [{"$ref": "#/components/schemas/ClusterStatus"}]
    assert set(components["StageName"]["enum"]) >= {"data_loading", "statistical_calculation", "result_aggregation"}
    assert components["BulkItemStatus"]["enum"] == [*components["TaskStatus"]["enum"], "deleted"]


def test_creating_a_task_takes_one_named_body_per_task_type(client):
    from tasks.runtime.registry import job_types

    schema = _schema(client)
    components = schema["components"]["schemas"]
    create = components["TaskCreateRequest"]
    startable = {job.name for job in job_types() if job.user_startable}
    assert set(create["discriminator"]["mapping"]) == startable >= {"canary", "statistics", "import_assessments"}
    assert create["discriminator"]["mapping"]["canary"] == "#/components/schemas/CanaryTaskCreate"
    canary = components["CanaryTaskCreate"]
    assert canary["properties"]["task_type"] == {"type": "string", "const": "canary"}
    assert canary["properties"]["params"] == {"$ref": "#/components/schemas/CanaryParams"}
    assert components["CanaryParams"]["properties"]["steps"]["type"] == "integer"
    assert components["StatisticsParams"]["properties"]["config"] == {"$ref": "#/components/schemas/BatchConfigRequest"}
    update = components["PatchedTaskUpdateRequest"]["properties"]["params"]
    assert {"$ref": "#/components/schemas/CanaryParams"} in update["anyOf"]


def test_links_lead_from_new_objects_to_every_operation_that_takes_their_id(client):
    schema = _schema(client)
    ids = {op["operationId"]: path for path, _, op in _operations(schema)}
    by_id = {name: op for path, _, op in _operations(schema) for name in [op["operationId"]]}
    for source, code, field in [
        ("createTask", "201", "task_id"),
        ("createBatch", "201", "batch_code"),
        ("createSchedule", "201", "id"),
    ]:
        links = by_id[source]["responses"][code]["links"]
        targets = {link["operationId"] for link in links.values()}
        assert targets == {name for name, path in ids.items() if "{" + field + "}" in path}, source
        for link in links.values():
            assert link["parameters"] == {field: f"$response.body#/data/{field}"}
