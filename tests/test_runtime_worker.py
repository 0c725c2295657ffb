"""Tasks really running on a django-q2 cluster: cancel, pause/resume, kills, duplicates, retries, alerts."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task
from tasks.runtime.queue import send
from tasks.services import task_cancel, task_create, task_pause, task_resume
from tests.cluster import wait_for

pytestmark = pytest.mark.worker


def canary(**params) -> Task:
    return task_create(actor=SYSTEM, task_type="canary", params=params)


def status_of(task: Task) -> str:
    return Task.objects.values_list("status", flat=True).get(pk=task.pk)


def fresh(task: Task) -> Task:
    return Task.objects.get(pk=task.pk)


def actions(task: Task) -> list[str]:
    return list(AuditLog.objects.filter(target_id=str(task.pk)).order_by("id").values_list("action", flat=True))


def test_canary_runs_to_completion_with_progress_and_stages(cluster):
    task = canary(seconds=0.5, steps=5)
    wait_for(lambda: status_of(task) == "completed", message="the canary to complete")
    task = fresh(task)
    assert task.result == {"steps": 5, "steps_done": 5, "resumed_from": 0, "attempt": 1}
    assert task.progress == 100.0
    assert list(task.stages.values_list("name", "status", "progress")) == [("burn", "completed", 100.0)]
    assert cluster.steps(task.pk) == [1, 2, 3, 4, 5]
    assert actions(task) == ["task.create", "worker.claim", "worker.complete"]


def test_cancel_running_canary_stops_the_worker_within_one_second_and_frees_its_slot(cluster):
    target = canary(seconds=60, steps=600)
    other = canary(seconds=60, steps=600)
    wait_for(lambda: fresh(target).progress > 0 and fresh(other).progress > 0, message="both canaries to run")

    task_cancel(actor=SYSTEM, task_id=target.pk)
    cancelled_at = time.monotonic()
    assert status_of(target) == "cancelled"  # at once, before the worker notices
    frozen = fresh(target).progress
    wait_for(lambda: fresh(target).execution_id is None, timeout=5, interval=0.01, message="the worker to stop")
    stopped_after = time.monotonic() - cancelled_at
    assert stopped_after <= 1.0, f"worker stopped {stopped_after:.2f} s after the cancel"

    steps_at_stop = len(cluster.steps(target.pk))
    follower = canary(seconds=0, steps=3)  # only the freed slot can take it: `other` holds the second
    wait_for(lambda: status_of(follower) == "completed", timeout=10, message="the freed slot to serve the next task")
    assert status_of(other) == "processing"
    target = fresh(target)
    assert target.status == "cancelled"
    assert target.result is None
    assert target.progress == frozen
    assert len(cluster.steps(target.pk)) == steps_at_stop
    assert target.checkpoint["next_step"] == steps_at_stop


def test_pause_at_thirty_percent_then_resume_never_repeats_a_step(cluster):
    task = canary(seconds=4, steps=40)
    wait_for(lambda: fresh(task).progress >= 30, message="30 % progress")
    task_pause(actor=SYSTEM, task_id=task.pk)
    wait_for(lambda: fresh(task).execution_id is None, timeout=5, message="the worker to save and let go")
    paused = fresh(task)
    assert paused.status == "paused"
    saved = paused.checkpoint["next_step"]
    assert saved >= 12
    assert paused.progress == pytest.approx(100 * saved / 40, abs=0.01), "it shows what its checkpoint holds"
    assert cluster.steps(task.pk) == list(range(1, saved + 1))

    task_resume(actor=SYSTEM, task_id=task.pk)
    wait_for(lambda: status_of(task) == "completed", message="the resumed canary to complete")
    done = fresh(task)
    assert done.result["resumed_from"] == saved > 0
    assert cluster.steps(task.pk) == list(range(1, 41)), "every step exactly once, in order"
    assert actions(task).count("worker.claim") == 2


def test_resume_immediately_after_pause_still_continues_from_the_saved_checkpoint(cluster):
    task = canary(seconds=3, steps=300)
    wait_for(lambda: fresh(task).progress >= 20, message="20 % progress")
    task_pause(actor=SYSTEM, task_id=task.pk)
    task_resume(actor=SYSTEM, task_id=task.pk)  # before the worker has even noticed the pause
    wait_for(lambda: status_of(task) == "completed", message="the canary to complete")
    assert sorted(cluster.steps(task.pk)) == list(range(1, 301))
    assert fresh(task).result["resumed_from"] > 0


def test_the_same_task_delivered_twice_runs_once(cluster):
    task = canary(seconds=1, steps=10)
    send(task.pk, "canary")
    send(task.pk, "canary")
    wait_for(lambda: status_of(task) == "completed", message="the canary to complete")
    # Give the duplicates time to be delivered and refused.
    wait_for(lambda: not _queued_messages(), timeout=10, message="the duplicate messages to be consumed")
    assert cluster.steps(task.pk) == list(range(1, 11))
    assert actions(task).count("worker.claim") == 1
    assert actions(task).count("worker.complete") == 1


def _queued_messages() -> int:
    from django_q.models import OrmQ

    return OrmQ.objects.count()


def test_a_transient_failure_is_retried_and_completes_on_attempt_two(cluster):
    task = canary(seconds=0.4, steps=4, fail_at_step=3, fail_times=1)
    wait_for(lambda: status_of(task) == "completed", message="the retried canary to complete")
    done = fresh(task)
    assert done.attempt == 2
    assert done.trigger == "retry"
    assert done.result["resumed_from"] == 2  # steps 1 and 2 were checkpointed by attempt 1
    assert cluster.steps(task.pk) == [1, 2, 3, 4]
    assert done.logs.filter(level=40, message__contains="injected failure").count() == 1
    assert "Traceback" in done.logs.get(level=40).data["traceback"]


def test_failing_every_attempt_ends_failed_as_system_and_alerts_once(cluster):
    mails_before = len(cluster.mails())
    posts_before = len(cluster.webhook.posts)
    task = canary(seconds=0, steps=3, fail_at_step=2, fail_times=3)
    wait_for(lambda: status_of(task) == "failed" and fresh(task).attempt == 3, message="the final failure")
    done = fresh(task)
    assert (done.error_category, done.attempt, done.max_attempts) == ("system", 3, 3)
    wait_for(lambda: len(cluster.webhook.posts) > posts_before, timeout=10, message="the webhook alert")
    wait_for(lambda: len(cluster.mails()) > mails_before, timeout=10, message="the alert mail")
    # Nothing more arrives: the alert is sent once.
    time.sleep(1.0)
    new_posts = cluster.webhook.posts[posts_before:]
    new_mails = cluster.mails()[mails_before:]
    assert len(new_posts) == 1 and new_posts[0]["task_id"] == str(task.pk)
    assert new_posts[0]["error_category"] == "system"
    assert len(new_mails) == 1 and str(task.pk) in new_mails[0] and "ops@example.com" in new_mails[0]
    assert actions(task).count("task.auto_retry") == 2


def test_kill_minus_nine_of_busy_workers_loses_no_task_and_finishes_none_twice(cluster):
    tasks = [canary(seconds=1.5, steps=15) for _ in range(14)]
    kills = 0
    killed_executions = set()
    deadline = time.monotonic() + 150
    while kills < 20 and time.monotonic() < deadline:
        victims = [
            t
            for t in Task.objects.filter(pk__in=[t.pk for t in tasks], status="processing", progress__gt=10)
            if t.execution_id not in killed_executions and t.attempt < t.max_attempts and t.worker
        ]
        if not victims:
            time.sleep(0.05)
            continue
        victim = victims[0]
        pid = int(victim.worker.rsplit(":", 1)[1])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed_executions.add(victim.execution_id)
        kills += 1
    assert kills == 20, f"only {kills} kills happened"

    wait_for(lambda: all(status_of(t) == "completed" for t in tasks), timeout=180, message="every task to complete")
    for task in tasks:
        done = fresh(task)
        assert actions(done).count("worker.complete") == 1
        assert done.result["steps_done"] == 15
        steps = cluster.steps(done.pk)
        assert set(steps) == set(range(1, 16)), "no step is missing"
    lost = AuditLog.objects.filter(action="watchdog.worker_lost", target_id__in=[str(t.pk) for t in tasks]).count()
    assert lost == 20


def test_a_long_import_shows_progress_and_heartbeats_and_pauses_then_resumes_without_a_duplicate(cluster, settings):
    """The import's writes are short transactions: progress and heartbeat reach other connections
    while it runs (the watchdog sees it alive), a pause takes effect between two batches, and the
    resumed run imports every row exactly once; nothing is data before it completes."""
    from batches.models import AssessmentRecord
    from tests.test_import import big_file

    settings.TASKCENTER_IMPORT_DIR = cluster.workdir / "imports"
    settings.TASKCENTER_IMPORT_DIR.mkdir(exist_ok=True)
    rows = 120_000
    big_file(settings.TASKCENTER_IMPORT_DIR / "big.csv", rows)
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "big.csv"})
    wait_for(lambda: fresh(task).progress > 0, message="the import to show progress")
    first_beat = fresh(task).heartbeat_at
    wait_for(lambda: fresh(task).heartbeat_at != first_beat, timeout=5, message="a newer heartbeat")
    assert status_of(task) == "processing" and AssessmentRecord.objects.count() == 0

    task_pause(actor=SYSTEM, task_id=task.pk)
    wait_for(lambda: fresh(task).execution_id is None, timeout=5, message="the import to stop")
    paused = fresh(task)
    assert paused.status == "paused"
    staged = AssessmentRecord.with_staged.filter(import_task=task).count()
    assert 0 < staged == paused.checkpoint["imported"] < rows
    assert AssessmentRecord.objects.count() == 0

    task_resume(actor=SYSTEM, task_id=task.pk)
    wait_for(lambda: status_of(task) == "completed", timeout=120, message="the resumed import to complete")
    assert fresh(task).result["imported"] == rows
    assert AssessmentRecord.objects.count() == rows
    assert AssessmentRecord.objects.values("student_id").distinct().count() == rows
    assert actions(task).count("worker.claim") == 2
