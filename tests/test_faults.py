"""Faults and steering on a real cluster: a task deleted right after its cancel, the watchdog
while another process holds the SQLite write lock, bulk steering in bounded transactions."""

from __future__ import annotations

import pytest

from batches.models import AssessmentRecord
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task, TaskLog, TaskStage
from tasks.services import task_create
from tests.api_helpers import client_for, envelope_of
from tests.cluster import wait_for


def canary(**params) -> Task:
    return task_create(actor=SYSTEM, task_type="canary", params=params)


def fresh(task: Task) -> Task | None:
    return Task.objects.filter(pk=task.pk).first()


def status_of(task: Task) -> str | None:
    return Task.objects.filter(pk=task.pk).values_list("status", flat=True).first()


def wait_until_the_worker_let_go(cluster, other: Task) -> None:
    """The cancelled task's worker is free again: with ``other`` holding the second worker, only
    that one can run a follower."""
    follower = canary(seconds=0, steps=2)
    wait_for(lambda: status_of(follower) == "completed", timeout=15, message="the freed worker to serve the next task")
    assert status_of(other) == "processing"


def assert_gone_for_good(task_id) -> None:
    assert not Task.objects.filter(pk=task_id).exists()
    assert not TaskLog.objects.filter(task_id=task_id).exists()
    assert not TaskStage.objects.filter(task_id=task_id).exists()
    # Nothing the worker did after the cancel counted (a batch's deletion is audited on the batch).
    actions = list(AuditLog.objects.filter(target_id=str(task_id)).order_by("id").values_list("action", flat=True))
    assert actions[actions.index("task.cancel") + 1 :] in ([], ["task.delete"]), actions


@pytest.mark.worker
def test_a_running_canary_cancelled_then_bulk_deleted_at_once_is_gone_and_stays_gone(cluster, manager):
    target = canary(seconds=60, steps=600)
    other = canary(seconds=60, steps=600)
    wait_for(lambda: fresh(target).progress > 0 and fresh(other).progress > 0, message="both canaries to run")
    api = client_for(manager)
    envelope_of(api.post(f"/api/v1/tasks/{target.pk}/cancel"), 200)
    body = envelope_of(api.post("/api/v1/tasks/batch-delete", {"task_ids": [str(target.pk)]}, format="json"), 200)
    assert body["data"]["results"][str(target.pk)] == {"success": True, "status": "deleted", "error": None}
    assert status_of(target) is None
    steps = len(cluster.steps(target.pk))

    wait_until_the_worker_let_go(cluster, other)
    assert_gone_for_good(target.pk)
    assert len(cluster.steps(target.pk)) <= steps + 1, "the worker stopped at its next check"


@pytest.mark.worker
def test_a_statistics_task_cancelled_while_loading_then_its_batch_deleted_leaves_no_files(cluster, manager, settings):
    from batches.assessments import generate

    settings.TASKCENTER_CHECKPOINT_DIR = cluster.workdir / "checkpoints"  # the web and the workers share it
    generate(10_000, seed=3)
    other = canary(seconds=60, steps=600)
    api = client_for(manager)
    config = {"include_dimensions": ["academic", "non_academic"], "calculation_types": ["descriptive"]}
    body = {"batch_code": "GONE", "data_source": "student_assessments", "config": config}
    envelope_of(api.post("/api/v1/statistics/batches", body, format="json"), 201)
    task_id = envelope_of(api.post("/api/v1/statistics/tasks/GONE/start"), 202)["data"]["task_id"]
    files = cluster.workdir / "checkpoints" / task_id
    wait_for(lambda: files.is_dir() and any(files.iterdir()), message="the loading to write its checkpoint files")

    envelope_of(api.post("/api/v1/statistics/tasks/GONE/cancel"), 200)
    envelope_of(api.delete("/api/v1/statistics/batches/GONE"), 200)
    assert not Task.objects.filter(pk=task_id).exists()

    wait_until_the_worker_let_go(cluster, other)
    assert_gone_for_good(task_id)
    assert not files.exists(), "the loaded chunks went with the task"


@pytest.mark.worker
def test_an_import_cancelled_then_deleted_at_once_leaves_no_staged_rows(cluster, manager, settings):
    from tests.test_import import big_file

    settings.TASKCENTER_IMPORT_DIR = cluster.workdir / "imports"
    settings.TASKCENTER_IMPORT_DIR.mkdir(exist_ok=True)
    big_file(settings.TASKCENTER_IMPORT_DIR / "deleted.csv", 120_000)
    other = canary(seconds=60, steps=600)
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "deleted.csv"})
    wait_for(lambda: AssessmentRecord.with_staged.filter(import_task=task).exists(), message="rows to be staged")

    api = client_for(manager)
    envelope_of(api.post(f"/api/v1/tasks/{task.pk}/cancel"), 200)
    envelope_of(api.delete(f"/api/v1/tasks/{task.pk}"), 200)

    wait_until_the_worker_let_go(cluster, other)
    assert_gone_for_good(task.pk)
    assert not AssessmentRecord.with_staged.filter(import_task_id=task.pk).exists()
    assert AssessmentRecord.objects.count() == 0, "nothing was published"


HOLDER = """
import fcntl, os, sys, time
path, hold, kind = sys.argv[1], float(sys.argv[2]), sys.argv[3]
if kind == "backend":
    from taskcenter.db.sqlite3.base import WriterLock
    lock = WriterLock(path)
    lock.acquire()
else:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(hold)
if kind == "backend":
    lock.release()
"""


@pytest.mark.worker
@pytest.mark.parametrize("holder", ["backend", "flock"])
def test_a_canary_outlives_a_write_lock_held_past_the_lease_and_completes_not_worker_lost(cluster, holder):
    """Another process holds SQLite's write lock for more than twice the lease while a canary
    runs (and the watchdog sweeps every 0.3 s): nobody can write, the worker's heartbeats
    included. Once it lets go, the canary goes on and completes in its first attempt."""
    import subprocess
    import sys

    from django.db import connection

    from tests.cluster import ROOT

    if connection.vendor != "sqlite":
        pytest.skip("the write lock is SQLite's")
    task = canary(seconds=8, steps=80)
    wait_for(lambda: fresh(task).progress > 0, message="the canary to run")
    lock_file = f"{connection.settings_dict['NAME']}-writer.lock"
    hold = 2.5 * cluster.LEASE_SECONDS
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, lock_file, str(hold), holder],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "held"
        assert process.wait(timeout=hold + 10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    wait_for(lambda: status_of(task) == "completed", timeout=30, message="the canary to complete")
    done = fresh(task)
    lost = AuditLog.objects.filter(action="watchdog.worker_lost", target_id=str(task.pk)).count()
    assert (lost, done.attempt, done.error_category) == (0, 1, None)
    assert cluster.steps(task.pk) == list(range(1, 81))
