"""Prepared read queries (taskcenter/db/prepared.py) and the token authentication built on one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from taskcenter.db.prepared import PreparedQuery
from tasks.models import Task, TaskStage

COLUMNS = ("id", "status", "params", "started_at", "created_by__username", "batch_id")


def test_a_prepared_query_returns_what_values_list_returns_for_each_argument(db, make_task):
    user = get_user_model().objects.create_user("ann")
    tasks = [
        make_task(status="processing", params={"seconds": 3, "nested": [1, "x"]}, started_at=timezone.now()),
        make_task(created_by=user),
    ]
    query = PreparedQuery(lambda pk: Task.objects.filter(pk=pk).values_list(*COLUMNS), Task._meta.pk)
    for task in [*tasks, *tasks]:
        expected = Task.objects.filter(pk=task.pk).values_list(*COLUMNS).first()
        assert query.first(task.pk) == expected
    assert query.first(Task().pk) is None


def test_a_prepared_query_with_constant_parameters_and_several_rows(db, make_task):
    task, other = make_task(), make_task()
    for position, name in enumerate(["load", "compute", "write"]):
        TaskStage.objects.create(task=task, name=name, position=position, progress=position * 10.0)
    TaskStage.objects.create(task=other, name="load", position=0)
    query = PreparedQuery(
        lambda task_id: (
            TaskStage.objects.filter(task_id=task_id, progress__gte=5.0)
            .order_by("-position")
            .values_list("name", "progress")
        ),
        TaskStage._meta.get_field("task"),
    )
    assert query.rows(task.pk) == [("write", 20.0), ("compute", 10.0)]
    assert query.rows(other.pk) == []


def test_a_query_that_does_not_use_its_argument_is_refused(db):
    query = PreparedQuery(lambda pk: Task.objects.filter(status="pending").values_list("id"), Task._meta.pk)
    with pytest.raises(ValueError, match="exactly once"):
        query.rows(Task().pk)


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
