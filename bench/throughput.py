#!/usr/bin/env python
"""taskcenter's bookkeeping cost and cancel latency, against bare django-q2 on the same cluster.

1. ``--tasks`` bare ``async_task`` calls of an empty function → all executed (baseline);
2. the same number of ``canary`` tasks of 0 seconds, created through the service → completed;
   1 and 2 are repeated ``--rounds`` times (5), alternately, and the medians reported: this
   machine's speed swings by up to 2× within a minute, so one pair says little, and three
   medians of the same code ranged from 0.58 to 0.72;
3. cancel latency over ``--cancels`` running canaries: cancel → the worker has let go.

Same cluster settings for both (the defaults: ORM broker on a fresh SQLite database unless
``DATABASE_URL`` is given; ``REDIS_URL`` switches the broker). The last line is one JSON object.

    .venv/bin/python bench/throughput.py [--tasks 1000] [--rounds 5] [--cancels 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import percentile, setup_django, start_process, stop_process, wait_until


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cancels", type=int, default=50)
    args = parser.parse_args()
    setup_django(os.environ.get("DATABASE_URL"))

    from django_q.tasks import async_task

    from tasks.actors import SYSTEM
    from tasks.models import Task
    from tasks.services import task_cancel, task_create

    workdir = Path(tempfile.mkdtemp(prefix="taskcenter-throughput-"))
    cluster = start_process("qcluster", log=workdir / "qcluster.log")
    try:
        # Warm up: the cluster is up and its workers have imported everything.
        warm = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
        wait_until(lambda: Task.objects.filter(pk=warm.pk, status="completed").exists(), 60)

        completed = Task.objects.filter(task_type="canary", status="completed")
        rounds = []
        for number in range(1, args.rounds + 1):
            counter = workdir / f"noop-{number}.count"
            start = time.perf_counter()
            for _ in range(args.tasks):
                async_task("bench.noop.noop", str(counter))
            wait_until(lambda c=counter: c.exists() and c.stat().st_size >= args.tasks, 600)
            bare_s = time.perf_counter() - start

            baseline = completed.count()
            start = time.perf_counter()
            for _ in range(args.tasks):
                task_create(actor=SYSTEM, task_type="canary", params={"seconds": 0, "steps": 1})
            created_s = time.perf_counter() - start
            wait_until(lambda b=baseline: completed.count() - b >= args.tasks, 600, 0.02)
            ours_s = time.perf_counter() - start
            rounds.append(
                {
                    "bare_q2_per_s": round(args.tasks / bare_s, 1),
                    "taskcenter_per_s": round(args.tasks / ours_s, 1),
                    "ratio": round(bare_s / ours_s, 3),
                }
            )
            print(
                f"round {number}: bare django-q2 {args.tasks / bare_s:.1f}/s; taskcenter {args.tasks / ours_s:.1f}/s"
                f" (created in {created_s:.2f} s); ratio {bare_s / ours_s:.3f}",
                flush=True,
            )

        latencies = []
        for _ in range(args.cancels):
            task = task_create(actor=SYSTEM, task_type="canary", params={"seconds": 120, "steps": 1200})
            wait_until(lambda t=task: Task.objects.filter(pk=t.pk, progress__gt=0).exists(), 60)
            started = time.perf_counter()
            task_cancel(actor=SYSTEM, task_id=task.pk)
            wait_until(lambda t=task: Task.objects.filter(pk=t.pk, execution_id__isnull=True).exists(), 30, 0.002)
            latencies.append(time.perf_counter() - started)
        print(f"cancel latency over {args.cancels}: p50 {percentile(latencies, 0.5):.3f} s", flush=True)
    finally:
        stop_process(cluster)

    result = {
        "tasks": args.tasks,
        "taskcenter_per_s": median(r["taskcenter_per_s"] for r in rounds),
        "bare_q2_per_s": median(r["bare_q2_per_s"] for r in rounds),
        "ratio": median(r["ratio"] for r in rounds),
        "cancel_p50_s": round(percentile(latencies, 0.5), 3),
        "cancel_p95_s": round(percentile(latencies, 0.95), 3),
        "rounds": rounds,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
