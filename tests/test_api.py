"""The REST API in-process: each endpoint's flow, the envelope, errors, filters, queries."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta

import pytest

from batches.models import Batch
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task, TaskLog
from tasks.runtime.worker import run_task
from tasks.services import task_cancel, task_create
from tests.api_helpers import EXAMPLE_BATCH, client_for, envelope_of


@pytest.fixture
def api(manager):
    return client_for(manager)


def test_creating_a_batch_answers_it_without_tasks_and_audits_it(api):
    body = envelope_of(api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json"), 201)
    assert body["data"]["batch_code"] == "BATCH_2025_001"
    assert body["data"]["config"] == EXAMPLE_BATCH["config"]
    assert body["data"]["task_count"] == 0 and body["data"]["latest_task"] is None
    assert AuditLog.objects.filter(action="batch.create", target_id="BATCH_2025_001").count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data_source": "nope"}, "data_source"),
        (
            {"config": {"include_dimensions": ["sports"], "calculation_types": ["descriptive"]}},
            "config.include_dimensions",
        ),
        ({"config": {"include_dimensions": ["academic"], "calculation_types": ["magic"]}}, "config.calculation_types"),
        ({"batch_code": "has space"}, "batch_code"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_batch_input_is_a_400_naming_the_field_and_changes_nothing(api, change, field):
    body = envelope_of(api.post("/api/v1/statistics/batches", {**EXAMPLE_BATCH, **change}, format="json"), 400)
    assert any(name == field or name.startswith(field + ".") for name in body["errors"]), body["errors"]
    bad_values = [v for v in ("nope", "sports", "magic") if v in str(change)]
    assert all(value in str(body["errors"]) for value in bad_values), "the bad value is named"
    assert not Batch.objects.exists()


def test_duplicate_batch_code_is_a_conflict(api):
    api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json")
    body = envelope_of(api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json"), 409)
    assert "batch_code" in body["errors"]


def test_start_status_progress_and_cancel_by_batch_code(api):
    api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json")
    started = envelope_of(api.post("/api/v1/statistics/tasks/BATCH_2025_001/start"), 202)["data"]
    assert set(started) == {
        "task_id",
        "batch_code",
        "status",
        "progress",
        "started_at",
        "estimated_completion",
        "error_message",
    }
    assert (started["status"], started["batch_code"], started["progress"]) == ("pending", "BATCH_2025_001", 0.0)
    again = envelope_of(api.post("/api/v1/statistics/tasks/BATCH_2025_001/start"), 409)
    assert "active task" in again["message"]
    progress = envelope_of(api.get(f"/api/v1/statistics/tasks/{started['task_id']}/progress"), 200)["data"]
    assert progress["task_id"] == started["task_id"] and progress["overall_progress"] == 0.0
    assert [s["stage"] for s in progress["stage_details"]] == [
        "data_loading",
        "statistical_calculation",
        "result_aggregation",
    ]
    assert all(s["status"] == "pending" for s in progress["stage_details"])
    cancelled = envelope_of(api.post("/api/v1/statistics/tasks/BATCH_2025_001/cancel"), 200)["data"]
    assert cancelled["status"] == "cancelled"
    envelope_of(api.post("/api/v1/statistics/tasks/BATCH_2025_001/cancel"), 409)
    status = envelope_of(api.get(f"/api/v1/statistics/tasks/{started['task_id']}/status"), 200)["data"]
    assert status["status"] == "cancelled"


def test_a_batch_has_one_active_task_whichever_door_the_task_comes_through(api):
    api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json")
    first = envelope_of(api.post("/api/v1/statistics/tasks/BATCH_2025_001/start"), 202)["data"]["task_id"]
    # POST /tasks with the batch's code: refused while the batch has an active task.
    body = {"task_type": "statistics", "batch_code": "BATCH_2025_001"}
    assert "active task" in envelope_of(api.post("/api/v1/tasks", body, format="json"), 409)["message"]
    envelope_of(api.post("/api/v1/tasks", {**body, "task_type": "canary"}, format="json"), 409)
    api.post("/api/v1/statistics/tasks/BATCH_2025_001/cancel")
    # A batch's statistics task runs the batch's config: other params are a 409, none are fine.
    other = {
        "data_source": "student_assessments",
        "config": {**EXAMPLE_BATCH["config"], "include_dimensions": ["academic"]},
    }
    refused = envelope_of(api.post("/api/v1/tasks", {**body, "params": other}, format="json"), 409)
    assert "differs from these params" in refused["message"]
    second = envelope_of(api.post("/api/v1/tasks", body, format="json"), 201)["data"]
    assert second["params"]["config"]["include_dimensions"] == ["academic", "non_academic"]
    # Nor can PATCH give it other params: the batch is what changes them.
    patched = api.patch(f"/api/v1/tasks/{second['task_id']}", {"params": other}, format="json")
    assert "change the batch" in envelope_of(patched, 409)["message"]
    # Retrying the cancelled first task while the second is active: refused, nothing changes.
    assert "active task" in envelope_of(api.post(f"/api/v1/tasks/{first}/retry"), 409)["message"]
    statuses = sorted(Task.objects.filter(batch__batch_code="BATCH_2025_001").values_list("status", flat=True))
    assert statuses == ["cancelled", "pending"]
    assert not AuditLog.objects.filter(action="task.retry").exists()
    api.post("/api/v1/statistics/tasks/BATCH_2025_001/cancel")
    assert envelope_of(api.post(f"/api/v1/tasks/{first}/retry"), 200)["data"]["status"] == "pending"


def test_batch_start_reports_each_batch_with_its_new_task(api):
    api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json")
    api.post("/api/v1/statistics/batches", {**EXAMPLE_BATCH, "batch_code": "B2"}, format="json")
    body = envelope_of(
        api.post(
            "/api/v1/statistics/tasks/batch-start",
            {"batch_codes": ["BATCH_2025_001", "B2", "NOPE", "B2"]},
            format="json",
        ),
        200,
    )["data"]
    assert (body["total_count"], body["success_count"], body["failed_count"]) == (3, 2, 1)
    assert body["results"]["NOPE"] == {
        "success": False,
        "status": None,
        "error": "batch NOPE not found",
        "task_id": None,
    }
    assert Task.objects.filter(pk=body["results"]["B2"]["task_id"], status="pending").exists()


def test_paginated_list_newest_first_pause_resume_and_bulk_delete(api):
    tasks = [task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1}) for _ in range(12)]
    page = envelope_of(api.get("/api/v1/tasks?page=2&page_size=5"), 200)["data"]
    assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (12, 2, 5, 3)
    assert len(page["results"]) == 5
    newest_first = [t["task_id"] for t in envelope_of(api.get("/api/v1/tasks?page_size=100"), 200)["data"]["results"]]
    assert newest_first == [str(t.pk) for t in sorted(tasks, key=lambda t: t.created_at, reverse=True)]

    running = tasks[0]
    Task.objects.filter(pk=running.pk).update(status="processing", execution_id=uuid.uuid4())
    assert envelope_of(api.post(f"/api/v1/tasks/{running.pk}/pause"), 200)["data"]["status"] == "paused"
    envelope_of(api.post(f"/api/v1/tasks/{running.pk}/pause"), 409)
    assert envelope_of(api.post(f"/api/v1/tasks/{running.pk}/resume"), 200)["data"]["status"] == "pending"
    envelope_of(api.post(f"/api/v1/tasks/{running.pk}/resume"), 409)

    done = tasks[1]
    run_task(str(done.pk))
    body = envelope_of(
        api.post("/api/v1/tasks/batch-delete", {"task_ids": [str(done.pk), str(tasks[2].pk), "nope"]}, format="json"),
        200,
    )["data"]
    assert (body["success_count"], body["failed_count"]) == (1, 2)
    assert body["results"][str(done.pk)] == {"success": True, "status": "deleted", "error": None}
    assert "cancel it before deleting" in body["results"][str(tasks[2].pk)]["error"]
    assert not Task.objects.filter(pk=done.pk).exists()


def test_resume_takes_only_a_paused_task_and_retry_only_a_failed_or_cancelled_one(api, make_task):
    """Both make a task pending again, which the transition table allows from all three: resume
    must not re-run a failed task without counting an attempt, nor retry a paused one."""
    failed, paused = make_task("failed"), make_task("paused")
    refused = envelope_of(api.post(f"/api/v1/tasks/{failed.pk}/resume"), 409)
    assert refused["message"] == f"task {failed.pk} is failed; task.resume applies to paused tasks only"
    envelope_of(api.post(f"/api/v1/tasks/{paused.pk}/retry"), 409)
    assert list(
        Task.objects.filter(pk__in=[failed.pk, paused.pk]).order_by("created_at").values_list("status", "attempt")
    ) == [
        ("failed", 1),
        ("paused", 1),
    ]
    assert envelope_of(api.post(f"/api/v1/tasks/{failed.pk}/retry"), 200)["data"]["attempt"] == 2
    assert envelope_of(api.post(f"/api/v1/tasks/{paused.pk}/resume"), 200)["data"]["status"] == "pending"


def test_logs_by_minimum_level_and_tailed_after_an_id(api):
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    for level, message in [(10, "debugging"), (20, "开始执行任务"), (30, "slow"), (40, "boom")]:
        TaskLog.objects.create(task=task, timestamp=task.created_at, level=level, message=message, data={"n": level})
    logs = envelope_of(api.get(f"/api/v1/tasks/{task.pk}/logs"), 200)["data"]["results"]
    assert [(e["level"], e["message"]) for e in logs] == [
        ("debug", "debugging"),
        ("info", "开始执行任务"),
        ("warn", "slow"),
        ("error", "boom"),
    ]
    assert set(logs[0]) == {"id", "timestamp", "level", "message", "data"}
    warn_up = envelope_of(api.get(f"/api/v1/tasks/{task.pk}/logs?level=warn"), 200)["data"]["results"]
    assert [e["level"] for e in warn_up] == ["warn", "error"]
    tail = envelope_of(api.get(f"/api/v1/tasks/{task.pk}/logs?after_id={logs[1]['id']}"), 200)["data"]["results"]
    assert [e["message"] for e in tail] == ["slow", "boom"]
    assert "level" in envelope_of(api.get(f"/api/v1/tasks/{task.pk}/logs?level=loud"), 400)["errors"]


def test_bulk_cancel_by_ids_by_task_types_and_all(api):
    canaries = [task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1}) for _ in range(3)]
    purge = task_create(actor=SYSTEM, task_type="maintenance.purge", params={"days": 30})
    by_ids = envelope_of(
        api.post("/api/v1/tasks/batch-cancel", {"task_ids": [str(canaries[0].pk)]}, format="json"), 200
    )
    assert by_ids["data"]["results"][str(canaries[0].pk)]["status"] == "cancelled"
    by_type = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"task_types": ["canary"]}, format="json"), 200)
    assert set(by_type["data"]["results"]) == {str(canaries[1].pk), str(canaries[2].pk)}
    assert Task.objects.get(pk=purge.pk).status == "pending"
    everything = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"all": True}, format="json"), 200)
    assert list(everything["data"]["results"]) == [str(purge.pk)]
    assert not Task.objects.exclude(status="cancelled").exists()
    both = envelope_of(api.post("/api/v1/tasks/batch-cancel", {"all": True, "task_ids": ["x"]}, format="json"), 400)
    assert "exactly one" in both["message"]
    envelope_of(api.post("/api/v1/tasks/batch-cancel", {"task_types": ["nope"]}, format="json"), 400)


def test_create_change_params_only_while_pending_retry_and_filters(api):
    created = envelope_of(
        api.post("/api/v1/tasks", {"task_type": "canary", "params": {"seconds": 0, "steps": 2}}, format="json"), 201
    )["data"]
    assert created["status"] == "pending" and created["trigger"] == "api" and created["created_by"] == "manager"
    task_id = created["task_id"]
    patched = envelope_of(api.patch(f"/api/v1/tasks/{task_id}", {"params": {"steps": 3}}, format="json"), 200)
    assert patched["data"]["params"] == {"seconds": 1.0, "steps": 3, "fail_at_step": None, "fail_times": 0}
    bad = envelope_of(api.patch(f"/api/v1/tasks/{task_id}", {"params": {"steps": -1}}, format="json"), 400)
    assert "params.steps" in bad["errors"]
    envelope_of(api.put(f"/api/v1/tasks/{task_id}", {"params": {}}, format="json"), 405)
    run_task(task_id)
    envelope_of(api.patch(f"/api/v1/tasks/{task_id}", {"params": {"steps": 4}}, format="json"), 409)
    envelope_of(api.post(f"/api/v1/tasks/{task_id}/retry"), 409)  # completed is final

    failed = task_create(
        actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 2, "fail_at_step": 2, "fail_times": 9}
    )
    Task.objects.filter(pk=failed.pk).update(max_attempts=1)
    run_task(str(failed.pk))
    retried = envelope_of(api.post(f"/api/v1/tasks/{failed.pk}/retry"), 200)["data"]
    assert (retried["status"], retried["attempt"], retried["trigger"]) == ("pending", 2, "retry")
    # Pending again, but it continues from the checkpoint its params made: they stay.
    assert Task.objects.get(pk=failed.pk).checkpoint is not None
    refused = envelope_of(api.patch(f"/api/v1/tasks/{failed.pk}", {"params": {"steps": 9}}, format="json"), 409)
    assert "checkpoint" in refused["message"]
    assert Task.objects.get(pk=failed.pk).params["steps"] == 2

    Batch.objects.create(batch_code="B3", data_source="student_assessments", config={})
    task_create(actor=SYSTEM, task_type="canary", params={}, batch=Batch.objects.get())
    only = envelope_of(api.get("/api/v1/tasks?data_source=student_assessments"), 200)["data"]
    assert only["total"] == 1 and only["results"][0]["batch_code"] == "B3"
    assert envelope_of(api.get("/api/v1/tasks?status=completed"), 200)["data"]["total"] == 1
    assert envelope_of(api.get("/api/v1/tasks?status=pending,completed"), 200)["data"]["total"] == 3
    assert envelope_of(api.get("/api/v1/tasks?task_type=maintenance.purge"), 200)["data"]["total"] == 0
    for bad_query, name in [
        ("status=running", "status"),
        ("created_after=yesterday", "created_after"),
        ("page=two", "page"),
        ("page_size=101", "page_size"),
        ("trigger=cron", "trigger"),
    ]:
        assert name in envelope_of(api.get(f"/api/v1/tasks?{bad_query}"), 400)["errors"]
    stats = envelope_of(api.get("/api/v1/tasks/statistics"), 200)["data"]
    assert stats["by_status"]["completed"] == 1 and stats["by_type"]["canary"]["pending"] == 2
    # The failed task was retried (pending again), so only the completed one counts as finished.
    assert stats["last_24h"] == {"created": 3, "completed": 1, "failed": 0} and stats["success_rate"] == 1.0
    assert stats["duration_by_type"]["canary"]["count"] == 1


def test_detail_fields_and_cancel_refused_in_final_states(api):
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    run_task(str(task.pk))
    detail = envelope_of(api.get(f"/api/v1/tasks/{task.pk}"), 200)["data"]
    assert set(detail) >= {
        "task_id",
        "task_type",
        "batch_code",
        "status",
        "progress",
        "stage_details",
        "params",
        "result",
        "error_message",
        "error_category",
        "attempt",
        "max_attempts",
        "trigger",
        "created_by",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
        "estimated_completion",
    }
    assert detail["result"]["steps_done"] == 1 and detail["stage_details"][0]["status"] == "completed"
    refused = envelope_of(api.post(f"/api/v1/tasks/{task.pk}/cancel"), 409)
    assert "completed" in refused["message"]
    envelope_of(api.get(f"/api/v1/tasks/{uuid.uuid4()}"), 404)
    envelope_of(api.get("/api/v1/tasks/not-a-uuid"), 404)
    envelope_of(api.get("/api/v1/nothing/here"), 404)


def test_error_envelopes_for_auth_method_media_and_size(api, settings):
    anonymous = client_for()
    response = anonymous.get("/api/v1/tasks")
    envelope_of(response, 401)
    assert response["WWW-Authenticate"].startswith("Token")
    envelope_of(api.delete("/api/v1/tasks/statistics"), 405)
    envelope_of(api.post("/api/v1/tasks", "task_type=canary", content_type="application/x-www-form-urlencoded"), 415)
    envelope_of(api.post("/api/v1/tasks", "{not json", content_type="application/json"), 400)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    huge = {"task_type": "canary", "params": {"x": "y" * 5000}}
    envelope_of(api.post("/api/v1/tasks", huge, format="json"), 413)
    assert not Task.objects.exists()


def test_steering_endpoints_take_no_body_and_refuse_fields_rather_than_ignore_them(api):
    task = task_create(actor=SYSTEM, task_type="canary", params={})
    api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json")
    for path in (f"/api/v1/tasks/{task.pk}/cancel", "/api/v1/statistics/tasks/BATCH_2025_001/start"):
        refused = envelope_of(api.post(path, {"force": True}, format="json"), 400)
        assert refused["errors"] == {"force": ["Unknown field."]}
        envelope_of(api.post(path, [1], format="json"), 400)
    assert Task.objects.get(pk=task.pk).status == "pending" and Task.objects.count() == 1
    assert not AuditLog.objects.filter(action="task.cancel").exists()
    envelope_of(api.post(f"/api/v1/tasks/{task.pk}/cancel", {}, format="json"), 200)
    envelope_of(api.post("/api/v1/statistics/tasks/BATCH_2025_001/start"), 202)


def test_task_types_data_sources_and_audit_log(api):
    types = {t["name"]: t for t in envelope_of(api.get("/api/v1/task-types"), 200)["data"]}
    assert {"canary", "statistics", "maintenance.purge", "import_assessments"} <= set(types)
    canary = types["canary"]
    assert canary["params_schema"]["properties"]["steps"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100000,
        "description": "Equal slices of work.",
        "default": 10,
    }
    assert [s["name"] for s in types["statistics"]["stages"]] == [
        "data_loading",
        "statistical_calculation",
        "result_aggregation",
    ]
    sources = envelope_of(api.get("/api/v1/data-sources"), 200)["data"]
    assert sources[0]["name"] == "student_assessments"
    assert sources[0]["dimensions"]["academic"][:2] == ["chinese", "math"]
    api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json")
    audit = envelope_of(api.get("/api/v1/audit-logs?action=batch.create"), 200)["data"]
    assert audit["total"] == 1 and audit["results"][0]["actor"] == "manager"


def test_list_endpoints_run_a_fixed_number_of_queries_whatever_the_page_size(manager, django_assert_max_num_queries):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()  # token auth: every request loads its user and permissions afresh, as in production
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    batch = Batch.objects.create(batch_code="Q", data_source="student_assessments", config={})
    tasks = []
    for i in range(100):
        Batch.objects.create(batch_code=f"Q{i}", data_source="student_assessments", config={}, created_by=manager)
        tasks.append(task_create(actor=SYSTEM, task_type="canary", params={}, batch=batch))
    TaskLog.objects.bulk_create(TaskLog(task=tasks[0], timestamp=tasks[0].created_at, message="x") for _ in range(100))
    for base in [
        "/api/v1/tasks",
        "/api/v1/statistics/batches",
        f"/api/v1/tasks/{tasks[0].pk}/logs",
        "/api/v1/audit-logs",
    ]:
        counts = []
        for page_size in (1, 20, 100):
            with django_assert_max_num_queries(7) as captured:
                body = envelope_of(api.get(f"{base}?page_size={page_size}"), 200)
            assert len(body["data"]["results"]) == page_size
            counts.append(len(captured))
        assert len(set(counts)) == 1, (base, counts)


def test_a_cancelled_task_whose_worker_is_still_stopping_is_deleted_at_once(api):
    task = task_create(actor=SYSTEM, task_type="canary", params={})
    execution_id = uuid.uuid4()
    Task.objects.filter(pk=task.pk).update(status="cancelled", execution_id=execution_id)
    envelope_of(api.delete(f"/api/v1/tasks/{task.pk}"), 200)
    assert not Task.objects.filter(pk=task.pk).exists()
    # The execution's fenced writes match nothing now: no row comes back.
    assert Task.objects.filter(pk=task.pk, execution_id=execution_id).update(progress=50) == 0


def test_list_filters_narrow_the_list_but_never_hide_one_task_or_batch(api):
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    listed = envelope_of(api.get("/api/v1/tasks?status=completed"), 200)
    assert listed["data"]["total"] == 0
    detail = envelope_of(api.get(f"/api/v1/tasks/{task.pk}?status=completed&task_type=nope"), 200)
    assert detail["data"]["task_id"] == str(task.pk) and detail["data"]["status"] == "pending"
    envelope_of(api.post("/api/v1/statistics/batches", EXAMPLE_BATCH, format="json"), 201)
    batch = envelope_of(api.get("/api/v1/statistics/batches/BATCH_2025_001?search=nothing-like-it"), 200)
    assert batch["data"]["batch_code"] == "BATCH_2025_001"


def test_audit_log_filters_by_actor_and_action_find_every_row_routine_worker_rows_included(api, manager):
    # The actor and action indexes leave the routine worker rows out; the filters' answers do not.
    from django.db import transaction

    from tasks.actors import Actor
    from tasks.audit import audit

    user = Actor(user=manager)
    with transaction.atomic():
        for number in range(3):
            audit(actor=SYSTEM, action="worker.claim", target_type="task", target_id=number)
            audit(actor=SYSTEM, action="worker.complete", target_type="task", target_id=number)
            audit(actor=SYSTEM, action="task.auto_retry", target_type="task", target_id=number)
        audit(actor=user, action="task.cancel", target_type="task", target_id=9)
        audit(actor=user, action="task.cancel", target_type="task", target_id=8)

    def total(query: str) -> int:
        return envelope_of(api.get(f"/api/v1/audit-logs?{query}"), 200)["data"]["total"]

    assert total("actor=system") == 9
    assert total("actor=system&action=worker.claim") == 3
    assert total("action=worker.complete") == 3
    assert total("action=task.auto_retry") == 3
    assert total(f"actor={manager.username}") == 2
    assert total(f"actor={manager.username}&action=task.cancel") == 2
    assert total(f"actor={manager.username}&action=worker.claim") == 0
    assert total("actor=nobody") == 0


def test_statistics_durations_match_a_python_computation(api, django_assert_max_num_queries):
    """Count, mean and p95 (linear between the closest ranks) of each type's durations over the
    last 24 h, as the database computes them, against the same figures computed here."""
    import random
    from datetime import timedelta

    from django.utils import timezone

    rng = random.Random(5)
    now = timezone.now()
    expected: dict[str, list[float]] = {}

    def add(task_type, seconds, *, status="completed", hours_ago=1.0, started=True):
        completed = now - timedelta(hours=hours_ago)
        task = Task.objects.create(task_type=task_type, status=status, params={})
        started_at = completed - timedelta(seconds=seconds) if started else None
        Task.objects.filter(pk=task.pk).update(started_at=started_at, completed_at=completed)
        if status == "completed" and started and hours_ago < 24:
            expected.setdefault(task_type, []).append(timedelta(seconds=seconds).total_seconds())

    for _ in range(137):
        add("canary", round(rng.uniform(0, 90), 6))
    for _ in range(20):
        add("statistics", rng.choice([1.5, 2.0, 2.0, 3.25]))  # ties
    add("import_assessments", 4.2)  # one task: p95 is its duration
    add("maintenance.purge", 1.0)
    add("maintenance.purge", 3.0)  # two: 1.0 + 2.0 × 0.95
    add("canary", 500, hours_ago=30)  # finished before the last 24 h
    add("canary", 700, status="failed")
    add("canary", 900, started=False)

    def p95(values):
        ordered = sorted(values)
        index = (len(ordered) - 1) * 0.95
        low = int(index)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (index - low)

    with django_assert_max_num_queries(20):  # one per type at most, however many tasks
        stats = envelope_of(api.get("/api/v1/tasks/statistics"), 200)["data"]
    assert stats["duration_by_type"] == {
        task_type: {
            "count": len(values),
            "mean_seconds": round(sum(values) / len(values), 3),
            "p95_seconds": round(p95(values), 3),
        }
        for task_type, values in expected.items()
    }
    assert stats["duration_by_type"]["maintenance.purge"]["p95_seconds"] == 2.9


def test_a_duration_that_starts_in_a_seconds_last_half_millisecond_is_not_a_second_longer(api):
    """SQLite's date functions round a fraction of a second to milliseconds: 10:00:00.9997 read
    whole is 10:00:01, and its fraction must not be added to that again."""
    from datetime import UTC, datetime, timedelta

    completed = datetime.now(UTC).replace(microsecond=500_000) - timedelta(hours=1)
    for started in (completed - timedelta(seconds=2.5003), completed - timedelta(seconds=4.0001)):
        task = Task.objects.create(task_type="canary", status="completed", params={})
        Task.objects.filter(pk=task.pk).update(started_at=started, completed_at=completed)
    stats = envelope_of(api.get("/api/v1/tasks/statistics"), 200)["data"]
    # The two start at .999700 and .499900 of a second: 2.5003 and 4.0001 s, mean 3.2502.
    assert stats["duration_by_type"]["canary"] == {"count": 2, "mean_seconds": 3.25, "p95_seconds": 3.925}


def test_the_api_answers_in_utc_whatever_the_display_time_zone(api, settings):
    """Every timestamp an answer carries is UTC with Z; a filter's naive timestamp is UTC too."""
    from batches.assessments import generate

    assert settings.TIME_ZONE == "Asia/Shanghai"
    generate(50, seed=1)
    api.post(
        "/api/v1/statistics/batches",
        {
            "batch_code": "UTC_1",
            "data_source": "student_assessments",
            "config": {"include_dimensions": ["academic"], "calculation_types": ["descriptive"]},
        },
        format="json",
    )
    status = envelope_of(api.post("/api/v1/statistics/tasks/UTC_1/start"), 202)["data"]
    task = Task.objects.get(pk=status["task_id"])
    run_task(str(task.pk))
    task.refresh_from_db()
    stamps = [
        envelope_of(api.get(f"/api/v1/tasks/{task.pk}"), 200)["data"]["created_at"],
        envelope_of(api.get(f"/api/v1/tasks/{task.pk}"), 200)["data"]["completed_at"],
        envelope_of(api.get(f"/api/v1/statistics/tasks/{task.pk}/status"), 200)["data"]["started_at"],
        envelope_of(api.get("/api/v1/statistics/batches/UTC_1"), 200)["data"]["updated_at"],
        envelope_of(api.get("/api/v1/statistics/batches/UTC_1/results"), 200)["data"]["completed_at"],
        envelope_of(api.get(f"/api/v1/tasks/{task.pk}/logs"), 200)["data"]["results"][0]["timestamp"],
        envelope_of(api.get("/api/v1/audit-logs"), 200)["data"]["results"][0]["created_at"],
    ]
    assert all(stamp.endswith("Z") for stamp in stamps), stamps
    assert stamps[1] == task.completed_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    # 2 s before creation, written without an offset: UTC, not Shanghai's 8 hours ahead.
    before = (task.created_at.astimezone(UTC) - timedelta(seconds=2)).replace(tzinfo=None).isoformat()
    listed = envelope_of(api.get("/api/v1/tasks", {"created_after": before}), 200)["data"]["results"]
    assert [item["task_id"] for item in listed] == [str(task.pk)]


def test_a_time_filter_with_any_offset_reads_the_instant_and_one_utc_cannot_hold_is_a_400(api):
    """ISO 8601 allows offsets up to ±23:59; PostgreSQL takes at most ±15:59."""
    from datetime import timezone

    task = task_create(actor=SYSTEM, task_type="canary", params={})
    far_east = (task.created_at - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=20, minutes=12)))
    listed = envelope_of(api.get("/api/v1/tasks", {"created_after": far_east.isoformat()}), 200)["data"]["results"]
    assert [item["task_id"] for item in listed] == [str(task.pk)]
    assert envelope_of(api.get("/api/v1/tasks", {"created_before": far_east.isoformat()}), 200)["data"]["total"] == 0
    refused = envelope_of(api.get("/api/v1/tasks", {"created_after": "0001-01-01T00:00:00+01:00"}), 400)
    assert list(refused["errors"]) == ["created_after"]


def test_several_statuses_filter_the_list_repeated_or_comma_separated(api):
    canary = {"seconds": 0, "steps": 1}
    done = task_create(actor=SYSTEM, task_type="canary", params=canary)
    run_task(str(done.pk))
    waiting = task_create(actor=SYSTEM, task_type="canary", params=canary)
    task_cancel(actor=SYSTEM, task_id=task_create(actor=SYSTEM, task_type="canary", params=canary).pk)
    expected = {str(done.pk), str(waiting.pk)}
    for query in ("status=completed&status=pending", "status=completed,pending", "status=pending&status=completed,"):
        listed = envelope_of(api.get(f"/api/v1/tasks?{query}"), 200)["data"]["results"]
        assert {item["task_id"] for item in listed} == expected, query
    assert envelope_of(api.get("/api/v1/tasks?status=completed&status=done"), 400)["errors"]["status"]
