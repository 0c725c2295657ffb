"""The API's hand-written statements (taskcenter/api/queries.py) answer what their ORM
equivalents answer, and the token authentication built on one keeps DRF's rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batches.models import Batch
from taskcenter.api.queries import TASK_DETAIL, TASK_PROGRESS, TASK_STAGES, TOKEN_USER, Select
from tasks.api.serializers import DETAIL_COLUMNS
from tasks.models import Task, TaskStage


@pytest.fixture
def tasks(db, make_task):
    """Tasks whose columns all differ: with and without a batch, a creator, a result, times."""
    user = get_user_model().objects.create_user("ann")
    batch = Batch.objects.create(batch_code="B1", data_source="student_assessments")
    started = timezone.now() - timedelta(minutes=3)
    return [
        make_task(
            status="completed",
            batch=batch,
            created_by=user,
            params={"seconds": 3, "nested": [1, "x", None]},
            result={"steps_done": 10, "ratio": 0.25},
            progress=100.0,
            attempt=2,
            max_attempts=5,
            trigger="schedule",
            error_message="",
            started_at=started,
            completed_at=started + timedelta(seconds=90, microseconds=123456),
        ),
        make_task(status="failed", error_message="boom", error_category="data", progress=42.5),
        make_task(),
    ]


def test_the_task_detail_statement_answers_what_values_list_answers(tasks):
    for task in tasks:
        expected = Task.objects.filter(pk=task.pk).values_list(*DETAIL_COLUMNS.values()).get()
        assert TASK_DETAIL.first(task.pk) == expected
        assert TASK_DETAIL.first(str(task.pk)) == expected, "an id given as text"
    assert TASK_DETAIL.first(Task().pk) is None


def test_the_progress_statement_answers_what_values_list_answers(tasks):
    for task in tasks:
        assert TASK_PROGRESS.first(task.pk) == Task.objects.filter(pk=task.pk).values_list("id", "progress").get()
    assert TASK_PROGRESS.first(Task().pk) is None


def test_the_stages_statement_answers_a_tasks_stages_in_order(tasks):
    task, other, _ = tasks
    for position, name in reversed(list(enumerate(["load", "compute", "write"]))):
        TaskStage.objects.create(task=task, name=name, position=position, progress=position * 10.0, status="processing")
    TaskStage.objects.create(task=other, name="load", position=0)
    for each in tasks:
        expected = TaskStage.objects.filter(task=each).order_by("position").values_list("name", "status", "progress")
        assert TASK_STAGES.rows(each.pk) == list(expected)
    assert [name for name, _, _ in TASK_STAGES.rows(task.pk)] == ["load", "compute", "write"]


def test_the_token_statement_reads_every_column_of_the_user_in_the_models_order(db):
    # User.from_db takes a whole row in the order of the model's concrete fields.
    assert list(TOKEN_USER.columns[2:]) == list(get_user_model()._meta.concrete_fields)
    user = get_user_model().objects.create_user("tok", email="t@example.org", last_login=timezone.now())
    token = Token.objects.create(user=user)
    names = [field.attname for field in get_user_model()._meta.concrete_fields]
    expected = Token.objects.filter(key=token.key).values_list("key", "created", *[f"user__{n}" for n in names]).get()
    assert TOKEN_USER.first(token.key) == expected
    assert TOKEN_USER.first("0" * 40) is None


def test_a_statement_whose_columns_need_no_conversion_answers_tuples(tasks):
    names = Select(
        'SELECT "tasks_task"."task_type" FROM "tasks_task" WHERE "tasks_task"."id" = %s',
        argument=Task._meta.pk,
        columns=[Task._meta.get_field("task_type")],
    )
    assert names.rows(tasks[0].pk) == [("canary",)]


@pytest.mark.parametrize(
    "case, status, detail",
    [
        ("valid", 200, None),
        ("unknown key", 401, "Invalid token."),
        ("inactive user", 401, "User inactive or deleted."),
    ],
)
def test_token_authentication_rules(db, roles, case, status, detail):
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("tok", is_staff=True, is_active=case != "inactive user")
    user.groups.add(Group.objects.get(name="viewer"))
    key = Token.objects.create(user=user).key if case != "unknown key" else "0" * 40
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="en")
    response = client.get("/api/v1/tasks")
    assert response.status_code == status
    if detail:
        assert response.json()["message"] == detail
    else:
        assert response.json()["data"]["results"] == []


def test_the_token_user_is_complete_and_its_permissions_apply(db, roles, make_task):
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("op", is_staff=True, last_login=timezone.now() - timedelta(days=1))
    user.groups.add(Group.objects.get(name="viewer"))
    task = make_task(status="processing")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get(f"/api/v1/tasks/{task.pk}").status_code == 200
    assert client.post(f"/api/v1/tasks/{task.pk}/cancel").status_code == 403, "a viewer cannot cancel"
    user.groups.add(Group.objects.get(name="operator"))
    assert client.post(f"/api/v1/tasks/{task.pk}/cancel").status_code == 200, "granted: takes effect at once"
