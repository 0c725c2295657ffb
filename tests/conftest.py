"""Shared fixtures: users per role, task factories."""

from __future__ import annotations

import time
import warnings

import pytest
from django.contrib.auth import get_user_model

from tasks.actors import Actor
from tasks.models import Task
from tasks.roles import setup_roles


def is_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test databases; on PostgreSQL, before they are dropped, wait for other
    sessions on them to end (a stopped subprocess's session ends a moment after it) — PostgreSQL
    refuses to drop a database somebody is connected to. One still open after 15 s is a leak
    (a connection a test never closed): it is named in a warning and ended."""
    yield
    with django_db_blocker.unblock():
        if not is_postgres():
            return
        from django.db import connection

        others = (
            "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + 15
        with connection.cursor() as cursor:
            while True:
                cursor.execute(others)
                left = cursor.fetchall()
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            for pid, query in left:
                message = f"a database session outlived the tests (pid {pid}: {query[:80]!r}); ended"
                warnings.warn(message, stacklevel=2)
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


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


@pytest.fixture
def schedule_only_type():
    """A job type that only schedules and code start (``user_startable=False``)."""
    from tasks.runtime import registry

    @registry.register("test.schedule_only", stages=[("run", 1.0)], user_startable=False)
    def schedule_only(ctx):
        return {}

    yield "test.schedule_only"
    registry._REGISTRY.pop("test.schedule_only", None)


def actor_for(user) -> Actor:
    return Actor(user=user, address="127.0.0.1")


#: The suite's cluster, once a test has started it (it runs until the session ends).
_session_cluster: list = []


@pytest.fixture(scope="session")
def qcluster_session(django_db_setup, django_db_blocker, tmp_path_factory):
    from tests.cluster import Cluster

    with django_db_blocker.unblock():
        cluster = Cluster(tmp_path_factory.mktemp("cluster")).start()
    _session_cluster.append(cluster)
    yield cluster
    _session_cluster.remove(cluster)
    cluster.stop()


@pytest.fixture
def no_cluster(transactional_db):
    """No cluster runs during the test: the suite's, if an earlier test started it, halts until the
    test ends. A due task the test commits is then the test's own to run."""
    halted = list(_session_cluster)
    for each in halted:
        each.halt()
    yield
    for each in halted:
        each.start()


@pytest.fixture
def cluster(qcluster_session, transactional_db):
    """A running qcluster + watchdog against the (transactional) test database.

    At the end every task still active is cancelled and released, so the next test starts with
    free workers.
    """
    stop_all_tasks()  # whatever an earlier test left running must not hold the workers
    yield qcluster_session
    stop_all_tasks()


def stop_all_tasks() -> None:
    """Cancel every active task and wait until no worker holds one."""
    from tasks.services import task_cancel
    from tasks.states import ACTIVE_STATUSES
    from tests.cluster import wait_for

    for task_id in Task.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True):
        try:
            task_cancel(actor=Actor(), task_id=task_id)
        except Exception:
            pass
    wait_for(
        lambda: not Task.objects.filter(execution_id__isnull=False).exists(),
        timeout=15,
        message="workers to let go of cancelled tasks",
    )


@pytest.fixture
def web_server(transactional_db, tmp_path):
    """gunicorn, as docs/operations.md runs it, serving the test database on a free port."""
    from tests.cluster import WebServer

    server = WebServer(tmp_path).start()
    yield server
    server.stop()


# --- a running service over HTTP ---------------------------------------------------------------


@pytest.fixture(scope="session")
def api_contract():
    from tests.api_contract import SessionContract

    return SessionContract()


@pytest.fixture
def http(cluster, web_server, manager, api_contract):
    """Requests to the running service as the manager, every answer checked against the document."""
    from rest_framework.authtoken.models import Token

    from batches.assessments import generate
    from tests.api_contract import Http

    generate(300, seed=3)
    return Http(web_server.url, Token.objects.create(user=manager).key, contract=api_contract)
