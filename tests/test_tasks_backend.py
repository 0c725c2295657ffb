"""Django's Tasks API on taskcenter: ``@task`` functions are task types, ``enqueue`` creates a
task, ``get_result`` reads it back as Django's ``TaskResult``."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from taskcenter.tasks_backend import TaskcenterBackend, TaskResultDoesNotExist, TaskResultStatus
from tasks.actors import SYSTEM
from tasks.models import Task
from tasks.runtime.worker import run_task
from tasks.services import task_cancel
from tests import sample_tasks

try:
    from django.tasks import default_task_backend, task_backends
    from django.tasks.exceptions import InvalidTask
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import default_task_backend, task_backends
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.signals import task_enqueued, task_finished, task_started


def test_the_default_backend_is_taskcenters_and_supports_defer_priority_and_results():
    backend = task_backends["default"]
    assert isinstance(backend, TaskcenterBackend)
    assert (backend.supports_defer, backend.supports_priority, backend.supports_get_result) == (True, True, True)


def test_a_task_function_is_a_task_type_listed_by_the_api(manager):
    from tests.api_helpers import client_for, envelope_of

    listed = envelope_of(client_for(manager).get("/api/v1/task-types"), 200)["data"]
    types = {item["name"]: item for item in listed}
    add = types["tests.sample_tasks.add"]
    assert [stage["name"] for stage in add["stages"]] == ["run"]
    assert add["description"] == "Adds two numbers."
    assert add["user_startable"] is False


def test_enqueue_creates_a_task_and_get_result_follows_it_to_success(db):
    seen = []

    def remember(signal_name):
        return lambda sender, task_result, **kwargs: seen.append((signal_name, task_result.status))

    receivers = {name: remember(name) for name in ("enqueued", "started", "finished")}
    task_enqueued.connect(receivers["enqueued"])
    task_started.connect(receivers["started"])
    task_finished.connect(receivers["finished"])
    try:
        result = sample_tasks.add.enqueue(2, 3)
        task = Task.objects.get(pk=result.id)
        assert (task.task_type, task.trigger, task.params) == (
            "tests.sample_tasks.add",
            "enqueue",
            {"args": [2, 3], "kwargs": {}},
        )
        assert result.status == TaskResultStatus.READY and (result.args, result.kwargs) == ([2, 3], {})
        assert run_task(result.id) == "completed"
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 5
        assert result.is_finished and result.attempts == 1 and result.finished_at is not None
        again = sample_tasks.add.get_result(result.id)
        assert again.return_value == 5 and again.id == result.id
    finally:
        task_enqueued.disconnect(receivers["enqueued"])
        task_started.disconnect(receivers["started"])
        task_finished.disconnect(receivers["finished"])
    assert seen == [
        ("enqueued", TaskResultStatus.READY),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
    ]


def test_a_failing_task_is_failed_with_its_exception(db):
    result = sample_tasks.divide.enqueue(1, 0)
    assert run_task(result.id) == "failed"
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class is ZeroDivisionError
    assert "ZeroDivisionError" in error.traceback
    task = Task.objects.get(pk=result.id)
    assert (task.status, task.error_category, task.attempt) == ("failed", "system", 1)  # no retries
    with pytest.raises(ValueError):
        result.return_value  # noqa: B018 - raises: the task failed


def test_a_cancelled_task_is_failed_and_a_context_task_reports_progress(db):
    cancelled = sample_tasks.add.enqueue(1, 1)
    task_cancel(actor=SYSTEM, task_id=cancelled.id)
    assert sample_tasks.add.get_result(cancelled.id).status == TaskResultStatus.FAILED

    counting = sample_tasks.count.enqueue(up_to=50)
    assert run_task(counting.id) == "completed"
    counting.refresh()
    assert counting.return_value == {"counted": 50, "task_id": counting.id}
    task = Task.objects.get(pk=counting.id)
    assert task.progress == 100.0
    assert task.logs.filter(message="counted", data__up_to=50, data__attempt=1).exists()


def test_priority_and_run_after_are_the_tasks(db):
    later = timezone.now() + timedelta(minutes=5)
    result = sample_tasks.add.using(priority=20, run_after=later).enqueue(1, 2)
    task = Task.objects.get(pk=result.id)
    assert (task.priority, task.run_after, task.next_attempt_at) == (20, later, later)
    assert run_task(result.id) == "not claimable"  # not before run_after
    assert result.task.priority == 20 and result.task.run_after == later


def test_what_django_refuses_is_refused_at_enqueue(db, settings):
    with pytest.raises(TypeError):
        sample_tasks.add.enqueue(object(), 1)  # not JSON
    with pytest.raises(InvalidTask):
        sample_tasks.add.using(run_after=datetime(2030, 1, 1, 10, 0))  # naive, with USE_TZ
    with pytest.raises(InvalidTask):
        sample_tasks.add.using(priority=101)
    assert not Task.objects.exists()


def test_an_unknown_result_id_does_not_exist(db):
    for result_id in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result_id)
    from tasks.services import task_create

    canary = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
    with pytest.raises(TaskResultDoesNotExist):  # a task, but not of a @task function
        default_task_backend.get_result(str(canary.pk))


@pytest.mark.worker
def test_tasks_enqueued_here_run_on_the_cluster(cluster):
    from tests.cluster import wait_for

    def finished(result):
        result.refresh()
        return result.is_finished

    summed = sample_tasks.add.enqueue(2, 3)
    failing = sample_tasks.divide.enqueue(1, 0)
    asked = timezone.now() + timedelta(seconds=3)
    deferred = sample_tasks.count.using(priority=5, run_after=asked).enqueue(up_to=10)
    for result in (summed, failing, deferred):
        wait_for(lambda result=result: finished(result), timeout=30, message=f"{result.task.name} to finish")
    assert summed.status == TaskResultStatus.SUCCESSFUL and summed.return_value == 5
    assert failing.status == TaskResultStatus.FAILED and failing.errors[0].exception_class is ZeroDivisionError
    assert deferred.status == TaskResultStatus.SUCCESSFUL and deferred.started_at >= asked
    assert Task.objects.get(pk=deferred.id).priority == 5


def test_aenqueue_and_aget_result_work_from_async_code(no_cluster):
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    async def enqueue_and_read():
        result = await sample_tasks.add.aenqueue(4, 5)
        read = await sample_tasks.add.aget_result(result.id)
        await sync_to_async(connections.close_all)()  # the connection of the thread they ran in
        return result.id, read

    result_id, read = asyncio.run(enqueue_and_read())
    assert read.id == result_id and read.status == TaskResultStatus.READY
    assert run_task(result_id) == "completed"
    assert sample_tasks.add.get_result(result_id).return_value == 9
