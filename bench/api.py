#!/usr/bin/env python
"""API latency with 100,000 tasks, against the floor of a bare ORM query + json.dumps.

Fills a fresh SQLite database with ``--tasks`` tasks (each with its stages and two log lines),
serves it with gunicorn as ``dev.py run`` does
(4 processes × 8 threads), and sends ``--requests`` requests of each kind —
the task list (page_size=50, unfiltered and filtered by status), task detail, task progress — from
4 concurrent keep-alive clients on loopback (4 processes). The same list rows fetched by a bare
Django ORM query and ``json.dumps`` are timed in-process as the floor. The list requests are also
sent by one client alone (``list_p50_one_client_ms``): the request's own cost, without the queueing
of four clients on this machine's cores. The last line is one JSON object.

    .venv/bin/python bench/api.py [--tasks 100000] [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, percentile, setup_django, wait_until

CLIENTS = 4


def fill(n_tasks: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from tasks.models import Task, TaskLog, TaskStage

    statuses = ["pending", "processing", "paused", "completed", "failed", "cancelled"]
    rng = random.Random(7)
    now = timezone.now()
    ids = []
    user = get_user_model().objects.create_user("bench", password="bench-password", is_staff=True, is_superuser=True)
    for start in range(0, n_tasks, 5000):
        tasks, stages, logs = [], [], []
        for _ in range(start, min(n_tasks, start + 5000)):
            status = rng.choice(statuses)
            task = Task(
                id=uuid.uuid4(),
                task_type="canary",
                status=status,
                progress=100.0 if status == "completed" else rng.uniform(0, 99),
                params={"seconds": 1, "steps": 10},
                result={"steps": 10, "steps_done": 10, "resumed_from": 0} if status == "completed" else None,
                created_by=user,
                started_at=now - timedelta(minutes=5),
            )
            tasks.append(task)
            ids.append(str(task.id))
            stages.append(TaskStage(task=task, name="burn", position=0, weight=1.0, progress=task.progress))
            logs += [TaskLog(task=task, timestamp=now, level=20, message=f"step {k}") for k in range(2)]
        with transaction.atomic():
            Task.objects.bulk_create(tasks)
            TaskStage.objects.bulk_create(stages)
            TaskLog.objects.bulk_create(logs)
    # Spread creation times like a real history (the list is ordered by it).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE tasks_task SET created_at = datetime('now', '-' || (rowid % 100000) || ' seconds')")
    return ids


def floor_list_ms(repeats: int) -> list[float]:
    from tasks.models import Task

    fields = [
        "id",
        "task_type",
        "batch__batch_code",
        "status",
        "progress",
        "error_message",
        "error_category",
        "attempt",
        "max_attempts",
        "trigger",
        "created_by__username",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
    ]
    timings = []
    for i in range(repeats):
        started = time.perf_counter()
        query = Task.objects.order_by("-created_at")
        if i % 2:
            query = query.filter(status="processing")
        rows = list(query.values(*fields)[:50])
        json.dumps(rows, default=str)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _client(port: int, token: str, paths: list[str], ready, go, results) -> None:
    """One client: its own process (as real clients are: no interpreter lock shared with the
    others, so a response is timed the moment it arrives) and one keep-alive connection. Puts its
    latencies (ms) on ``results``, or the error that stopped it."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        ready.wait(timeout=30)
        go.wait(timeout=30)
        mine = []
        for path in paths:
            started = time.perf_counter()
            connection.request("GET", path, headers={"Authorization": f"Token {token}"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
            mine.append((time.perf_counter() - started) * 1000)
        results.put(mine)
    except Exception as exc:  # reported to the parent, which fails the run
        results.put(RuntimeError(f"client failed: {exc!r}"))


def run_clients(port: int, token: str, paths: list[str], clients: int = CLIENTS) -> tuple[list[float], float]:
    """``paths`` shared round-robin among ``clients`` client processes, started together;
    returns every latency (ms) and the wall time of the whole run."""
    context = multiprocessing.get_context("fork")
    ready, go, results = context.Barrier(clients + 1), context.Event(), context.Queue()
    processes = [
        context.Process(target=_client, args=(port, token, paths[number::clients], ready, go, results), daemon=True)
        for number in range(clients)
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=30)  # every client connected (a client that failed breaks the barrier)
    started = time.perf_counter()
    go.set()
    latencies: list[float] = []
    for _ in processes:
        found = results.get(timeout=600)
        if isinstance(found, Exception):
            raise found
        latencies.extend(found)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return latencies, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    os.environ.setdefault("THROTTLE_USER", "10000000/min")
    setup_django(None)
    from rest_framework.authtoken.models import Token

    started = time.perf_counter()
    ids = fill(args.tasks)
    print(f"filled {len(ids)} tasks in {time.perf_counter() - started:.1f} s", flush=True)
    token = Token.objects.create(user_id=1).key

    port = 8799
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "taskcenter.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "4",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
        ],
        cwd=ROOT,
        env={**os.environ, "SECURE_COOKIES": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def up():
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/healthz")
                return connection.getresponse().status == 200
            except OSError:
                return False

        wait_until(up, 30, 0.1)
        rng = random.Random(1)
        list_paths = [
            "/api/v1/tasks?page_size=50" if i % 2 else "/api/v1/tasks?page_size=50&status=processing"
            for i in range(args.requests)
        ]
        detail_paths = [f"/api/v1/tasks/{rng.choice(ids)}" for _ in range(args.requests)]
        progress_paths = [f"/api/v1/statistics/tasks/{rng.choice(ids)}/progress" for _ in range(args.requests)]
        run_clients(port, token, list_paths[:40] + detail_paths[:40])  # warm up
        # One client alone first: the request's own cost, without the queueing that four clients
        # on this machine's cores add.
        alone_ms, _ = run_clients(port, token, list_paths, clients=1)
        list_ms, list_s = run_clients(port, token, list_paths)
        detail_ms, detail_s = run_clients(port, token, detail_paths)
        progress_ms, progress_s = run_clients(port, token, progress_paths)
    finally:
        server.terminate()
        server.wait(timeout=20)

    floor = floor_list_ms(args.requests)
    total = len(list_ms) + len(detail_ms) + len(progress_ms)
    result = {
        "tasks": len(ids),
        "list_p50_ms": round(percentile(list_ms, 0.5), 2),
        "list_p95_ms": round(percentile(list_ms, 0.95), 2),
        "detail_p95_ms": round(percentile(detail_ms, 0.95), 2),
        "progress_p95_ms": round(percentile(progress_ms, 0.95), 2),
        "rps": round(total / (list_s + detail_s + progress_s), 1),
        "floor_list_p50_ms": round(percentile(floor, 0.5), 2),
        "ratio_to_floor": round(percentile(list_ms, 0.5) / percentile(floor, 0.5), 2),
        # The same list requests from one client alone, and that latency against the floor.
        "list_p50_one_client_ms": round(percentile(alone_ms, 0.5), 2),
        "ratio_one_client": round(percentile(alone_ms, 0.5) / percentile(floor, 0.5), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
