"""Runtime pieces exercised in-process: timeouts, the watchdog's rules, backoff, purge, registry."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.exceptions import TimeoutException
from django_q.timeout import TimeoutHandler

from taskcenter.errors import InvalidInput
from tasks import store
from tasks.actors import SYSTEM
from tasks.models import AuditLog, Task, TaskLog
from tasks.runtime import registry
from tasks.runtime.registry import get_job_type, register
from tasks.runtime.watchdog import sweep
from tasks.runtime.worker import run_task
from tasks.services import task_create


@pytest.fixture
def temporary_job():
    """Register job types for one test and remove them afterwards."""
    names = []

    def make(name, func, **options):
        options.setdefault("stages", [("work", 1.0)])
        register(name, **options)(func)
        names.append(name)
        return name

    yield make
    for name in names:
        registry._REGISTRY.pop(name, None)


def test_cooperative_timeout_fails_with_timeout_category_and_is_retried(db, temporary_job, settings):
    def forever(ctx):
        while True:
            ctx.progress(0, 1)

    name = temporary_job("test.forever", forever, timeout_seconds=1, max_attempts=2)
    task = task_create(actor=SYSTEM, task_type=name)
    started = time.monotonic()
    assert run_task(str(task.pk)) == "failed"
    assert 1.0 <= time.monotonic() - started < 3.0
    task.refresh_from_db()
    assert (task.status, task.attempt, task.error_category) == ("pending", 2, "timeout")
    assert task.next_attempt_at is not None


def test_hard_timeout_backstop_fails_a_job_that_never_checks(db, temporary_job):
    def stubborn(ctx):
        end = time.monotonic() + 30
        while time.monotonic() < end:  # never calls ctx.check()
            sum(range(1000))

    name = temporary_job("test.stubborn", stubborn, timeout_seconds=60, max_attempts=1)
    task = task_create(actor=SYSTEM, task_type=name)
    started = time.monotonic()
    with TimeoutHandler(1):  # what django-q2 wraps around every message
        assert run_task(str(task.pk)) == "failed"
    assert time.monotonic() - started < 5
    task.refresh_from_db()
    assert (task.status, task.error_category) == ("failed", "timeout")
    assert "maximum timeout" in task.error_message


def test_data_errors_fail_at_once_without_retry(db, temporary_job):
    from tasks.runtime.errors import DataError

    def bad_data(ctx):
        raise DataError("no records match the selection")

    name = temporary_job("test.bad_data", bad_data, max_attempts=5)
    task = task_create(actor=SYSTEM, task_type=name)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert (task.status, task.attempt, task.error_category) == ("failed", 1, "data")
    assert task.error_message == "no records match the selection"


def test_unexpected_exception_keeps_its_traceback_in_the_logs(db, temporary_job):
    def broken(ctx):
        return {}["missing"]

    name = temporary_job("test.broken", broken, max_attempts=1)
    task = task_create(actor=SYSTEM, task_type=name)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert (task.status, task.error_category) == ("failed", "system")
    assert task.error_message == "KeyError: 'missing'"
    log = TaskLog.objects.get(task=task, level=40)
    assert "Traceback" in log.data["traceback"] and "broken" in log.data["traceback"]


def test_run_task_ignores_unknown_malformed_and_already_claimed_ids(db):
    assert run_task("nope") == "ignored"
    assert run_task(str(uuid.uuid4())) == "gone"
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    assert run_task(str(task.pk)) == "completed"
    assert run_task(str(task.pk)) == "not claimable"
    assert AuditLog.objects.filter(target_id=str(task.pk), action="worker.claim").count() == 1


def test_a_delayed_retry_is_not_claimed_before_it_is_due(db):
    task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    Task.objects.filter(pk=task.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert run_task(str(task.pk)) == "not claimable"
    Task.objects.filter(pk=task.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert run_task(str(task.pk)) == "completed"


def test_watchdog_marks_a_silent_worker_lost_and_schedules_a_retry(db, settings):
    settings.TASKCENTER_LEASE_SECONDS = 5
    task = Task.objects.create(
        task_type="canary",
        status="processing",
        execution_id=uuid.uuid4(),
        heartbeat_at=timezone.now() - timedelta(seconds=30),
        worker="gone-host:123",
        checkpoint={"next_step": 4},
    )
    alive = Task.objects.create(
        task_type="canary", status="processing", execution_id=uuid.uuid4(), heartbeat_at=timezone.now()
    )
    counts = sweep()
    assert counts["worker_lost"] == 1
    task.refresh_from_db()
    assert (task.status, task.attempt, task.error_category, task.execution_id) == ("pending", 2, "worker_lost", None)
    assert task.checkpoint == {"next_step": 4}
    assert "gone-host:123" in task.error_message
    alive.refresh_from_db()
    assert alive.status == "processing"


def _queued() -> list[uuid.UUID]:
    """The ids of the tasks the pusher would hand out (the tasks table as the queue)."""
    return [uuid.UUID(str(row[0])) for row in store.due_tasks(limit=10)]


def test_watchdog_hands_over_what_was_never_handed_over_and_releases_orphaned_executions(db, settings):
    settings.TASKCENTER_LEASE_SECONDS = 5
    # Written by other means than the services: pending, but never handed over.
    stray = Task.objects.create(task_type="canary", status="pending")
    # A delayed retry whose backoff ran out: the tasks table is the queue, the broker sees it.
    due = Task.objects.create(
        task_type="canary",
        status="pending",
        next_attempt_at=timezone.now() - timedelta(seconds=1),
        enqueued_at=timezone.now() - timedelta(seconds=10),
    )
    orphan = Task.objects.create(
        task_type="canary",
        status="paused",
        execution_id=uuid.uuid4(),
        heartbeat_at=timezone.now() - timedelta(minutes=1),
    )
    assert _queued() == [due.pk]
    counts = sweep()
    assert counts == {"worker_lost": 0, "released": 1, "enqueued": 1}
    stray.refresh_from_db()
    orphan.refresh_from_db()
    assert stray.enqueued_at is not None
    assert orphan.execution_id is None
    assert sorted(_queued()) == sorted([stray.pk, due.pk])
    assert sweep() == {"worker_lost": 0, "released": 0, "enqueued": 0}, "a second sweep finds nothing to do"


def test_with_a_message_broker_the_watchdog_sends_due_retries_and_long_unclaimed_tasks_again(
    db, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    from tasks.runtime import queue

    monkeypatch.delitem(queue.Q_CLUSTER, "broker_class")  # messages, as with Redis
    settings.TASKCENTER_REQUEUE_AFTER_SECONDS = 60
    due = Task.objects.create(
        task_type="canary",
        status="pending",
        next_attempt_at=timezone.now() - timedelta(seconds=1),
        enqueued_at=timezone.now() - timedelta(seconds=10),
    )
    not_yet = Task.objects.create(
        task_type="canary", status="pending", next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    forgotten = Task.objects.create(
        task_type="canary", status="pending", enqueued_at=timezone.now() - timedelta(minutes=5)
    )
    waiting = Task.objects.create(task_type="canary", status="pending", enqueued_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):  # messages go once the hand-over commits
        assert sweep() == {"worker_lost": 0, "released": 0, "enqueued": 2}
    for task in (due, not_yet, forgotten, waiting):
        task.refresh_from_db()
    assert due.enqueued_at > due.next_attempt_at
    assert not_yet.enqueued_at is None
    assert forgotten.enqueued_at > timezone.now() - timedelta(seconds=5)
    assert OrmQ.objects.count() == 2
    assert sweep() == {"worker_lost": 0, "released": 0, "enqueued": 0}, "a second sweep finds nothing to do"


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.TASKCENTER_RETRY_BACKOFF_SCALE = 1.0
    job = get_job_type("canary")  # base 2 s, cap 60 s
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (10, 60)]:
        delays = [job.retry_delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10, "jitter spreads retries"


def test_purge_deletes_only_finished_tasks_older_than_the_retention(db):
    old = timezone.now() - timedelta(days=40)
    stale = [Task.objects.create(task_type="canary", status=s, completed_at=old) for s in ("completed", "failed")]
    for task in stale:
        TaskLog.objects.create(task=task, timestamp=old, message="old")
    recent = Task.objects.create(task_type="canary", status="completed", completed_at=timezone.now())
    active = Task.objects.create(task_type="canary", status="paused", completed_at=old)
    purge = task_create(actor=SYSTEM, task_type="maintenance.purge", params={"days": 30, "chunk_size": 1})
    assert run_task(str(purge.pk)) == "completed"
    purge.refresh_from_db()
    assert purge.result["deleted_tasks"] == 2 and purge.result["deleted_logs"] == 2
    assert set(Task.objects.values_list("pk", flat=True)) == {recent.pk, active.pk, purge.pk}


def test_registry_validates_params_and_refuses_unknown_types(db):
    with pytest.raises(InvalidInput) as bad:
        task_create(actor=SYSTEM, task_type="canary", params={"steps": 0, "colour": "red"})
    assert set(bad.value.errors) == {"params", "params.steps"}
    with pytest.raises(InvalidInput) as unknown:
        task_create(actor=SYSTEM, task_type="no.such.type")
    assert "task_type" in unknown.value.errors
    assert not Task.objects.exists()
    with pytest.raises(ValueError):
        register("canary", stages=[("x", 1)])(lambda ctx: None)


def test_claim_and_completion_record_what_the_general_path_records(db, temporary_job):
    """The worker's SQL fast path (claim, completion) writes the task, its stages, its logs and
    one audit row per change exactly as the state machine's general path does."""

    def two_stages(ctx):
        ctx.stage("load")
        ctx.log("info", "loaded", rows=3)
        ctx.stage("sum")
        ctx.save_checkpoint({"rows": 3})
        return {"total": 6}

    name = temporary_job("test.two_stages", two_stages, stages=[("load", 1.0), ("sum", 3.0)])
    task = task_create(actor=SYSTEM, task_type=name)
    assert run_task(str(task.pk)) == "completed"
    task.refresh_from_db()
    assert (task.status, task.progress, task.result, task.checkpoint) == ("completed", 100.0, {"total": 6}, {"rows": 3})
    assert task.started_at is not None and task.completed_at >= task.started_at
    assert task.execution_id is None and task.heartbeat_at is None and task.worker
    assert [(s.name, s.status, s.progress) for s in task.stages.order_by("position")] == [
        ("load", "completed", 100.0),
        ("sum", "completed", 100.0),
    ]
    assert list(TaskLog.objects.filter(task=task).values_list("message", "data")) == [("loaded", {"rows": 3})]
    rows = AuditLog.objects.filter(target_type="task", target_id=str(task.pk)).order_by("id")
    assert [(a.action, a.from_status, a.to_status, a.actor_name) for a in rows] == [
        ("task.create", "", "pending", "system"),
        ("worker.claim", "pending", "processing", "system"),
        ("worker.complete", "processing", "completed", "system"),
    ]
    assert rows[1].details["worker"] == task.worker and rows[1].details["execution_id"]


def test_a_task_cancelled_before_completion_is_recorded_keeps_no_result(db, temporary_job):
    def cancelled_meanwhile(ctx):
        Task.objects.filter(pk=ctx.task_id).update(status="cancelled")
        return {"should": "not be stored"}

    name = temporary_job("test.cancelled_meanwhile", cancelled_meanwhile)
    task = task_create(actor=SYSTEM, task_type=name)
    assert run_task(str(task.pk)) == "completed"
    task.refresh_from_db()
    assert (task.status, task.result, task.execution_id) == ("cancelled", None, None)
    assert not AuditLog.objects.filter(target_id=str(task.pk), action="worker.complete").exists()


@pytest.mark.parametrize("stop", ["cancel", "pause"])
def test_a_job_that_fails_after_a_users_cancel_or_pause_lets_go_of_the_task(db, temporary_job, stop):
    """The job raises before its next check: the user's decision stands, the worker lets go at
    once (checkpoint kept), and the task can be retried or resumed right away."""
    from tasks.services import task_cancel, task_pause, task_resume, task_retry

    def stopped_then_broken(ctx):
        ctx.save_checkpoint({"next_step": 3})
        (task_cancel if stop == "cancel" else task_pause)(actor=SYSTEM, task_id=ctx.task_id)
        raise RuntimeError("disk full")

    name = temporary_job("test.stopped_then_broken", stopped_then_broken, max_attempts=3)
    task = task_create(actor=SYSTEM, task_type=name)
    run_task(str(task.pk))
    task.refresh_from_db()
    assert task.status == ("cancelled" if stop == "cancel" else "paused")
    assert (task.execution_id, task.error_category, task.checkpoint) == (None, None, {"next_step": 3})
    last = TaskLog.objects.filter(task=task).order_by("-id").first()
    assert "disk full" in last.message and "not a failure" in last.message
    assert not AuditLog.objects.filter(target_id=str(task.pk), action="worker.fail").exists()
    # Let go, so the next execution can claim it at once (not after the watchdog's lease).
    (task_retry if stop == "cancel" else task_resume)(actor=SYSTEM, task_id=task.pk)
    assert run_task(str(task.pk)) != "not claimable"
    assert AuditLog.objects.filter(target_id=str(task.pk), action="worker.claim").count() == 2


def test_a_retried_task_that_fails_for_good_again_is_alerted_again(db, temporary_job, mailoutbox, settings):
    from tasks.runtime.alerts import send_failure_alert
    from tasks.runtime.errors import DataError
    from tasks.services import task_retry

    settings.ADMINS = [("Ops", "ops@example.com")]

    def bad_data(ctx):
        raise DataError("no records match the selection")

    name = temporary_job("test.bad_data_twice", bad_data, max_attempts=1)
    task = task_create(actor=SYSTEM, task_type=name)
    run_task(str(task.pk))
    send_failure_alert(str(task.pk))
    send_failure_alert(str(task.pk))  # one failure, one alert
    assert len(mailoutbox) == 1
    task_retry(actor=SYSTEM, task_id=task.pk)
    run_task(str(task.pk))
    send_failure_alert(str(task.pk))
    assert len(mailoutbox) == 2
    assert Task.objects.get(pk=task.pk).status == "failed"


def test_a_tasks_files_go_with_it_and_the_purge_sweeps_what_deletions_elsewhere_left(
    db, settings, tmp_path, django_capture_on_commit_callbacks
):
    from tasks.services import task_delete

    settings.TASKCENTER_CHECKPOINT_DIR = tmp_path
    failed = Task.objects.create(task_type="canary", status="failed")  # a retry continues from its files
    cancelled = Task.objects.create(task_type="canary", status="cancelled")
    completed = Task.objects.create(task_type="canary", status="completed", completed_at=timezone.now())
    deleted_elsewhere = uuid.uuid4()
    for name in (failed.pk, cancelled.pk, completed.pk, deleted_elsewhere, "not-a-task"):
        (tmp_path / str(name)).mkdir()
        (tmp_path / str(name) / "chunk-00000.npz").write_bytes(b"x")
    with django_capture_on_commit_callbacks(execute=True):
        task_delete(actor=SYSTEM, task_id=cancelled.pk)
    assert not (tmp_path / str(cancelled.pk)).exists()
    purge = task_create(actor=SYSTEM, task_type="maintenance.purge", params={"days": 30})
    assert run_task(str(purge.pk)) == "completed"
    assert Task.objects.get(pk=purge.pk).result["swept_file_dirs"] == 2
    assert {path.name for path in tmp_path.iterdir()} == {str(failed.pk), "not-a-task"}


def test_a_task_retried_while_a_dead_execution_held_it_is_sent_again_once_released(
    db, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """With a message broker: the retry's message was spent on a claim the dead execution's hold
    refused; when the watchdog releases the task it sends it again at once, not after the
    requeue delay."""
    from django_q.models import OrmQ

    from tasks.runtime import queue

    monkeypatch.delitem(queue.Q_CLUSTER, "broker_class")  # messages, as with Redis
    settings.TASKCENTER_REQUEUE_AFTER_SECONDS = 600
    long_ago = timezone.now() - timedelta(minutes=5)
    task = Task.objects.create(
        task_type="canary",
        status="pending",
        execution_id=uuid.uuid4(),
        heartbeat_at=long_ago,
        enqueued_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        # The release hands it over itself: the sweep's hand-over rule finds nothing more.
        assert sweep() == {"worker_lost": 0, "released": 1, "enqueued": 0}
    task.refresh_from_db()
    assert task.execution_id is None and task.enqueued_at is not None
    assert OrmQ.objects.count() == 1


@pytest.mark.parametrize("ending", ["check", "return", "raise", "time out"])
def test_a_task_deleted_while_its_job_still_runs_stays_deleted_and_its_files_go(
    no_cluster, temporary_job, settings, tmp_path, ending
):
    """Cancelled and deleted at once while the job still writes: whether the job next checks,
    returns a result, fails or runs out of time (django-q2's alarm raising in the job), nothing
    comes back and what it wrote to its files is removed."""
    from tasks.runtime.files import task_files_dir
    from tasks.services import task_cancel, task_delete

    settings.TASKCENTER_CHECKPOINT_DIR = tmp_path

    def write_a_chunk(ctx, name):
        task_files_dir(ctx.task_id).mkdir(parents=True, exist_ok=True)
        (task_files_dir(ctx.task_id) / name).write_text("loaded")

    def deleted_midway(ctx):
        write_a_chunk(ctx, "chunk-0")
        ctx.log("info", "loading")
        task_cancel(actor=SYSTEM, task_id=ctx.task_id)
        task_delete(actor=SYSTEM, task_id=ctx.task_id)
        write_a_chunk(ctx, "chunk-1")  # in flight when the deletion removed the files
        ctx.save_checkpoint({"chunks": 2})
        if ending == "check":
            ctx.flush()
        elif ending == "raise":
            raise RuntimeError("the load failed after all")
        elif ending == "time out":
            raise TimeoutException("Task exceeded maximum timeout value (60 seconds)")
        return {"done": True}

    name = temporary_job("test.deleted_midway", deleted_midway)
    task = task_create(actor=SYSTEM, task_type=name)
    assert run_task(str(task.pk)) in ("claim lost", "interrupted", "completed", "failed")
    assert not Task.objects.filter(pk=task.pk).exists()
    assert not TaskLog.objects.filter(task_id=task.pk).exists()
    assert not task_files_dir(task.pk).exists()


def test_a_heartbeat_sent_while_the_watchdog_decides_keeps_the_task_processing(db, monkeypatch):
    """The watchdog found the heartbeat stale, and the worker's heartbeat lands before the watchdog
    writes: the task is not marked lost; it goes on."""
    from tasks.runtime import watchdog

    task = Task.objects.create(
        task_type="canary",
        status="processing",
        execution_id=uuid.uuid4(),
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        worker="slow:1",
    )
    decide = watchdog._stale_before

    def heartbeat_then_decide(lease):  # runs between the watchdog's select and its update
        Task.objects.filter(pk=task.pk).update(heartbeat_at=timezone.now())
        return decide(lease)

    monkeypatch.setattr(watchdog, "_stale_before", heartbeat_then_decide)
    assert sweep()["worker_lost"] == 0
    task.refresh_from_db()
    assert (task.status, task.error_category, task.worker) == ("processing", None, "slow:1")
    assert not AuditLog.objects.filter(action="watchdog.worker_lost").exists()


def test_a_completion_refused_by_its_hook_keeps_the_last_log_lines_of_the_run(db, temporary_job, settings):
    """The job logged, returned, and its completion hook refused the result (an import whose staged
    rows do not match its checkpoint): the run fails, and what it logged last is there to read."""
    from tasks.runtime.errors import DataError

    settings.TASKCENTER_FLUSH_INTERVAL = 3600  # nothing flushed before the completion

    def refused(ctx):
        ctx.log("info", "staged 3 rows")
        ctx.log("warn", "row 2 has no score")

        def publish():
            raise DataError("staged rows do not match the checkpoint")

        ctx.on_complete(publish)
        return {"rows": 3}

    name = temporary_job("test.refused_completion", refused, max_attempts=1)
    task = task_create(actor=SYSTEM, task_type=name)
    assert run_task(str(task.pk)) == "failed"
    task.refresh_from_db()
    assert (task.status, task.error_category, task.result) == ("failed", "data", None)
    logs = TaskLog.objects.filter(task_id=task.pk).order_by("timestamp", "pk")
    messages = list(logs.values_list("message", flat=True))
    assert messages == ["staged 3 rows", "row 2 has no score", "staged rows do not match the checkpoint"]
