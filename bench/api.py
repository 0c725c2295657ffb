#!/usr/bin/env python
"""API latency with 100,000 tasks, against a bare Django view serving the same rows under the same load.

Fills a fresh SQLite database with ``--tasks`` tasks (each with its stages and two log lines) and
serves it with gunicorn as ``dev.py run`` does (4 processes × 8 threads), with the benchmark's
settings (bench/floor_settings.py): the product's URLs plus ``/bench/floor``, a bare view that
answers with the rows of the list's first page (the same 50 rows and columns, ``values_list`` +
``json.dumps``; no authentication, no DRF) in the same server processes.

From 4 concurrent keep-alive clients on loopback (4 processes) it sends ``--requests`` task-list
requests (page_size=50, unfiltered and filtered by status), each client alternating them with
floor requests for the same rows (floor, list, floor, filtered list, …): ``floor_list_p50_ms`` is
the floor's p50 under the same load as the list's, and ``ratio_to_floor`` the list's p50 over it.
Then ``--requests`` task details and task progresses (API only; p50 and p95 of each). ``rps`` counts every request
those three four-client runs answered (the floor's included) over their wall time. The list and
its floor are also sent by one client alone (``list_p50_one_client_ms``,
``floor_one_client_p50_ms``): the request's own cost, without the queueing of four clients on this
machine's cores. ``floor_inprocess_p50_ms`` is the floor's query and ``json.dumps`` timed in this
process, without HTTP or Django's request handling. The last line is one JSON object.

    .venv/bin/python bench/api.py [--tasks 100000] [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import percentile, setup_django, start_gunicorn, wait_until

CLIENTS = 4
FLOOR = "/bench/floor"
LIST = "/api/v1/tasks?"


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


def floor_inprocess_ms(repeats: int) -> list[float]:
    from bench.floor_urls import floor_body

    timings = []
    for i in range(repeats):
        started = time.perf_counter()
        floor_body("processing" if i % 2 == 0 else None)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _client(port: int, token: str, paths: list[str], ready, go, results) -> None:
    """One client: its own process (as real clients are: no interpreter lock shared with the
    others, so a response is timed the moment it arrives) and one keep-alive connection. Sends
    ``paths`` in order and puts their ``(path, latency in ms)`` on ``results``, or the error that
    stopped it."""
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
            mine.append((path, (time.perf_counter() - started) * 1000))
        results.put(mine)
    except Exception as exc:  # reported to the parent, which fails the run
        results.put(RuntimeError(f"client failed: {exc!r}"))


def run_clients(
    port: int, token: str, rounds: list[tuple[str, ...]], clients: int = CLIENTS
) -> tuple[list[tuple[str, float]], float]:
    """``rounds`` shared round-robin among ``clients`` client processes, started together; a client
    sends each of its rounds' paths one after the other. Returns every ``(path, latency in ms)``
    and the wall time of the whole run."""
    context = multiprocessing.get_context("fork")
    ready, go, results = context.Barrier(clients + 1), context.Event(), context.Queue()
    shares = [[path for round_ in rounds[number::clients] for path in round_] for number in range(clients)]
    processes = [
        context.Process(target=_client, args=(port, token, share, ready, go, results), daemon=True) for share in shares
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=30)  # every client connected (a client that failed breaks the barrier)
    started = time.perf_counter()
    go.set()
    latencies: list[tuple[str, float]] = []
    for _ in processes:
        found = results.get(timeout=600)
        if isinstance(found, Exception):
            raise found
        latencies.extend(found)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return latencies, elapsed


def list_rounds(requests: int) -> list[tuple[str, str]]:
    """``requests`` list requests, unfiltered and filtered by status in turn, each preceded by the
    floor request for the same rows."""
    rounds = []
    for i in range(requests):
        query = "" if i % 2 else "status=processing"
        rounds.append((f"{FLOOR}?{query}".rstrip("?"), f"{LIST}page_size=50&{query}".rstrip("&")))
    return rounds


def check_same_rows(port: int, token: str) -> None:
    """The floor answers with the list's first page: the same tasks in the same order."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for floor_path, list_path in list_rounds(2):
        connection.request("GET", floor_path)
        floor_ids = [row[0] for row in json.loads(connection.getresponse().read())]
        connection.request("GET", list_path, headers={"Authorization": f"Token {token}"})
        page = json.loads(connection.getresponse().read())["data"]["results"]
        if floor_ids != [item["task_id"] for item in page] or len(floor_ids) != 50:
            raise RuntimeError(f"{floor_path} and {list_path} answer with different rows")
    connection.close()


def only(paths: list[str]) -> list[tuple[str]]:
    """Rounds of one request each."""
    return [(path,) for path in paths]


def ms(timed: list[tuple[str, float]], prefix: str) -> list[float]:
    return [latency for path, latency in timed if path.startswith(prefix)]


def p50(values: list[float]) -> float:
    return percentile(values, 0.5)


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
    server = start_gunicorn(
        port, workers=4, threads=8, env={"SECURE_COOKIES": "0", "DJANGO_SETTINGS_MODULE": "bench.floor_settings"}
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
        check_same_rows(port, token)
        rounds = list_rounds(args.requests)
        detail_paths = [f"/api/v1/tasks/{rng.choice(ids)}" for _ in range(args.requests)]
        progress_paths = [f"/api/v1/statistics/tasks/{rng.choice(ids)}/progress" for _ in range(args.requests)]
        run_clients(port, token, rounds[:40] + only(detail_paths[:40]))  # warm up
        # One client alone first: the request's own cost, without the queueing that four clients
        # on this machine's cores add.
        alone, _ = run_clients(port, token, rounds, clients=1)
        listed, list_s = run_clients(port, token, rounds)
        detail, detail_s = run_clients(port, token, only(detail_paths))
        progress, progress_s = run_clients(port, token, only(progress_paths))
    finally:
        server.terminate()
        server.wait(timeout=20)

    list_ms, floor_ms = ms(listed, LIST), ms(listed, FLOOR)
    alone_ms, alone_floor_ms = ms(alone, LIST), ms(alone, FLOOR)
    inprocess = floor_inprocess_ms(args.requests)
    total = len(listed) + len(detail) + len(progress)
    result = {
        "tasks": len(ids),
        "list_p50_ms": round(p50(list_ms), 2),
        "list_p95_ms": round(percentile(list_ms, 0.95), 2),
        "detail_p50_ms": round(p50(ms(detail, "/")), 2),
        "detail_p95_ms": round(percentile(ms(detail, "/"), 0.95), 2),
        "progress_p50_ms": round(p50(ms(progress, "/")), 2),
        "progress_p95_ms": round(percentile(ms(progress, "/"), 0.95), 2),
        "rps": round(total / (list_s + detail_s + progress_s), 1),
        # The bare view, over HTTP in the same server processes, alternating with the list requests.
        "floor_list_p50_ms": round(p50(floor_ms), 2),
        "ratio_to_floor": round(p50(list_ms) / p50(floor_ms), 2),
        # The same list and floor requests from one client alone.
        "list_p50_one_client_ms": round(p50(alone_ms), 2),
        "floor_one_client_p50_ms": round(p50(alone_floor_ms), 2),
        "ratio_one_client": round(p50(alone_ms) / p50(alone_floor_ms), 2),
        # The floor's query and json.dumps alone, in this process (no HTTP, no request handling).
        "floor_inprocess_p50_ms": round(p50(inprocess), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
