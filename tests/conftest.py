"""Shared fixtures: users per role, task factories."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tasks.actors import Actor
from tasks.models import Task
from tasks.roles import setup_roles


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


@pytest.fixture
def roles(db):
    setup_roles()


def _user(username: str, group: str | None = None, **extra):
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def viewer(roles):
    return _user("viewer", "viewer", is_staff=True)


@pytest.fixture
def operator(roles):
    return _user("operator", "operator", is_staff=True)


@pytest.fixture
def manager(roles):
    return _user("manager", "manager", is_staff=True)


@pytest.fixture
def nobody(db):
    return _user("nobody", is_staff=True)


@pytest.fixture
def make_task(db):
    def make(status: str = "pending", task_type: str = "canary", **fields) -> Task:
        fields.setdefault("params", {})
        return Task.objects.create(status=status, task_type=task_type, **fields)

    return make


def actor_for(user) -> Actor:
    return Actor(user=user, address="127.0.0.1")
