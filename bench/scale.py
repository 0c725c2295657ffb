#!/usr/bin/env python
"""Scale-out: the same 500 canary tasks through one and through two django-q2 clusters.

PostgreSQL with Redis (``--broker redis``, the default) or with the ORM broker (``--broker orm``:
the tasks table as the queue), as on several machines (docs/operations.md, "A server install and several machines");
each cluster is a separate ``manage.py qcluster`` with the default worker count. Every task must end
``completed`` exactly once: ``lost`` counts tasks that did not, ``duplicated`` tasks completed
more than once (audit rows). The last line is one JSON object.

    .venv/bin/python bench/scale.py [--tasks 500] [--seconds 0.05] [--steps 5]
        [--database postgres://postgres@127.0.0.1:5432/taskcenter_bench_scale]
        [--broker redis|orm] [--redis redis://127.0.0.1:6379/14]

On a machine with 2 cores, two clusters compete for the same cores: the speedup is bounded by
the hardware, not by taskcenter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django, start_process, stop_process, wait_until


def ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def run(n_clusters: int, args, workdir: Path) -> dict:
    import redis

    from tasks.actors import SYSTEM
    from tasks.models import AuditLog, Task
    from tasks.services import task_create

    Task.objects.all().delete()
    AuditLog.objects.all().delete()
    if args.broker == "redis":
        redis.Redis.from_url(args.redis).flushdb()
    clusters = [start_process("qcluster", log=workdir / f"qcluster-{n_clusters}-{i}.log") for i in range(n_clusters)]
    try:
        warm = [task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1}) for _ in range(8)]
        wait_until(lambda: Task.objects.filter(pk__in=[t.pk for t in warm], status="completed").count() == 8, 60)
        baseline = Task.objects.filter(status="completed").count()
        started = time.perf_counter()
        ids = [
            task_create(actor=SYSTEM, task_type="canary", params={"seconds": args.seconds, "steps": args.steps}).pk
            for _ in range(args.tasks)
        ]
        done = Task.objects.filter(status="completed")
        wait_until(lambda: done.count() - baseline >= args.tasks, 900, 0.05)
        elapsed = time.perf_counter() - started
        time.sleep(1)  # a duplicate execution would show up now
    finally:
        for cluster in clusters:
            stop_process(cluster)
    completed = set(Task.objects.filter(pk__in=ids, status="completed").values_list("pk", flat=True))
    completions = AuditLog.objects.filter(action="worker.complete", target_id__in=[str(pk) for pk in ids])
    per_task: dict[str, int] = {}
    for target in completions.values_list("target_id", flat=True):
        per_task[target] = per_task.get(target, 0) + 1
    result = {
        "per_s": args.tasks / elapsed,
        "lost": len(ids) - len(completed),
        "duplicated": sum(1 for count in per_task.values() if count > 1),
    }
    print(f"{n_clusters} cluster(s): {args.tasks} tasks in {elapsed:.2f} s ({result['per_s']:.1f}/s)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=0.05, help="CPU seconds each canary burns")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/taskcenter_bench_scale")
    parser.add_argument("--broker", choices=["redis", "orm"], default="redis")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    ensure_database(args.database)
    if args.broker == "redis":
        os.environ["REDIS_URL"] = args.redis
    else:
        os.environ.pop("REDIS_URL", None)
    setup_django(args.database)
    workdir = Path(tempfile.mkdtemp(prefix="taskcenter-scale-"))
    one = run(1, args, workdir)
    two = run(2, args, workdir)
    print(
        json.dumps(
            {
                "tasks": args.tasks,
                "broker": args.broker,
                "one_cluster_per_s": round(one["per_s"], 1),
                "two_clusters_per_s": round(two["per_s"], 1),
                "speedup": round(two["per_s"] / one["per_s"], 3),
                "lost": one["lost"] + two["lost"],
                "duplicated": one["duplicated"] + two["duplicated"],
            }
        )
    )


if __name__ == "__main__":
    main()
