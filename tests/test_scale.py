"""Scale-out: two clusters (as on two machines) against PostgreSQL, with Redis or the ORM broker
(the tasks table as the queue); one is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from django.db import connection

from tasks.models import AuditLog, Task
from tests.cluster import REDIS_URL, ROOT, Cluster, redis_answers, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.postgres]

TASKS = 500


@pytest.fixture(params=["redis", "orm"])
def two_clusters(request, transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("scale-out runs on PostgreSQL (run the suite with DATABASE_URL=postgres://…)")
    trace = tmp_path / "trace"
    trace.mkdir()
    env = {"TASKCENTER_CANARY_TRACE_DIR": str(trace)}
    if request.param == "redis":
        if not redis_answers():
            pytest.skip("Redis does not answer on 127.0.0.1:6379")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
        # A message the killed cluster had taken is gone with it (Redis): hand it over again soon.
        env["TASKCENTER_REQUEUE_AFTER_SECONDS"] = "3"

    # Only the two clusters under test may work on this database: the suite's own cluster (ORM
    # broker, its own trace directory) would otherwise take tasks from the queue.
    request.getfixturevalue("no_cluster")
    clusters = [Cluster(tmp_path / name, extra_env=env).start() for name in ("machine-a", "machine-b")]
    yield clusters, trace
    for cluster in clusters:
        cluster.stop()


def test_two_clusters_run_every_task_exactly_once_when_one_is_killed(two_clusters):
    (machine_a, machine_b), trace = two_clusters
    # The tasks come from a client process configured like the web servers (the same broker), all at
    # once (one transaction, handed to the broker on commit): the run is then bound by the work,
    # so machine A is surely busy when it dies.
    create = (
        "from django.db import transaction\n"
        "from tasks.actors import SYSTEM; from tasks.services import task_create\n"
        "with transaction.atomic():\n"
        f"    for _ in range({TASKS}):\n"
        "        task_create(actor=SYSTEM, task_type='canary', params={'seconds': 0.05, 'steps': 2})"
    )
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", create], env=machine_a.env, check=True)
    canaries = Task.objects.filter(task_type="canary")
    assert canaries.count() == TASKS

    wait_for(lambda: canaries.filter(status="completed").count() >= 100, timeout=120, message="100 completions")
    pids = {
        name: {child.pid for child in psutil.Process(cluster.qcluster.pid).children(recursive=True)}
        for name, cluster in (("a", machine_a), ("b", machine_b))
    }
    ran_on = {int(w.rsplit(":", 1)[1]) for w in canaries.exclude(worker="").values_list("worker", flat=True)}
    assert ran_on & pids["a"] and ran_on & pids["b"], "both clusters took tasks"

    def running_on_a():
        workers = canaries.filter(status="processing").values_list("worker", flat=True)
        return any(int(worker.rsplit(":", 1)[1]) in pids["a"] for worker in workers if worker)

    # Killed while one of its workers runs a task (between two tasks there would be nothing to recover).
    wait_for(running_on_a, timeout=30, interval=0.01, message="a task running on machine A")
    os.killpg(machine_a.qcluster.pid, signal.SIGKILL)  # machine A's cluster dies, mid-run
    killed_at = canaries.filter(status="completed").count()
    assert killed_at < TASKS, "the kill happened while work remained"

    wait_for(
        lambda: canaries.filter(status="completed").count() == TASKS,
        timeout=180,
        interval=0.2,
        message=f"all {TASKS} tasks to complete on the surviving cluster",
    )
    time.sleep(1)  # duplicates, if any, would still be running now
    completions = AuditLog.objects.filter(
        action="worker.complete", target_id__in=[str(pk) for pk in canaries.values_list("pk", flat=True)]
    )
    assert completions.count() == TASKS, "each task completed exactly once"
    ids = [str(pk) for pk in canaries.values_list("pk", flat=True)]
    recovered = AuditLog.objects.filter(action="watchdog.worker_lost", target_id__in=ids).count()
    assert recovered >= 1, "the killed cluster's running tasks were recovered by the watchdog"
    for task in canaries:
        steps = (trace / f"{task.pk}.steps").read_text().split("\n")
        assert {int(line.split()[0]) for line in steps if line} == {1, 2}, "every step ran"
        assert task.result["steps_done"] == 2
