#!/usr/bin/env python
"""GET /api/v1/tasks/statistics over 1,000,000 tasks: latency and the web process's peak memory.

Fills a fresh SQLite database (or the empty one ``--database-url`` names) with ``--tasks``
tasks of four types (80 % completed within the last 24 h after 0–60 s, the rest failed or
pending), serves it with one gunicorn process (gthread, 4 threads), and sends ``--requests``
statistics requests one after another. The process's peak RSS (VmHWM) is read after a warm-up request to a trivial
endpoint and again after the statistics requests. The answer's count, mean and p95 per type are
checked against the same figures computed here from every duration. The last line is one JSON
object.

    .venv/bin/python bench/task_statistics.py [--tasks 1000000] [--requests 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import percentile, setup_django, start_gunicorn, wait_until

TYPES = ["canary", "statistics", "import_assessments", "maintenance.purge"]


def fill(n_tasks: int) -> None:
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from tasks.models import Task

    statuses = ["completed"] * 8 + ["failed", "pending"]
    now = timezone.now()
    for start in range(0, n_tasks, 10_000):
        tasks = []
        for n in range(start, min(n_tasks, start + 10_000)):
            status = statuses[(n // 4) % 10]
            # Finished ones took 0.000–59.999 s and ended within the last 24 h.
            completed = now - timedelta(seconds=n % 86_000) if status != "pending" else None
            started = completed - timedelta(milliseconds=(n * 7919) % 60_000) if completed else None
            tasks.append(
                Task(
                    id=uuid.uuid4(),
                    task_type=TYPES[n % len(TYPES)],
                    status=status,
                    params={},
                    started_at=started,
                    completed_at=completed,
                )
            )
        with transaction.atomic():
            Task.objects.bulk_create(tasks)


def expected_durations() -> dict:
    """Count, mean and p95 per type from every completed task's duration, computed here."""
    from tasks.models import Task

    durations = defaultdict(list)
    for task_type, started, completed in Task.objects.filter(status="completed").values_list(
        "task_type", "started_at", "completed_at"
    ):
        durations[task_type].append((completed - started).total_seconds())
    return {
        task_type: {
            "count": len(values),
            "mean_seconds": round(sum(values) / len(values), 3),
            "p95_seconds": round(percentile(values, 0.95), 3),
        }
        for task_type, values in durations.items()
    }


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--database-url", help="an empty database (default: a fresh SQLite file)")
    args = parser.parse_args()
    setup_django(args.database_url)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    started = time.perf_counter()
    fill(args.tasks)
    print(f"filled {args.tasks} tasks in {time.perf_counter() - started:.1f} s", flush=True)
    user = get_user_model().objects.create_user("bench", password="bench-password", is_staff=True, is_superuser=True)
    token = Token.objects.create(user=user).key

    port = 8798
    server = start_gunicorn(
        port, workers=1, threads=4, timeout=600, env={"SECURE_COOKIES": "0", "THROTTLE_USER": "10000000/min"}
    )
    try:

        def get(path: str) -> tuple[int, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            connection.request("GET", path, headers={"Authorization": f"Token {token}"})
            response = connection.getresponse()
            return response.status, response.read()

        def up():
            try:
                return get("/healthz")[0] == 200
            except OSError:
                return False

        wait_until(up, 30, 0.1)
        worker = int(subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()[0])
        assert get("/api/v1/task-types")[0] == 200  # warm up: settings, URL conf, auth
        rss_before = peak_rss_kb(worker)
        latencies = []
        for _ in range(args.requests):
            began = time.perf_counter()
            status, body = get("/api/v1/tasks/statistics")
            latencies.append((time.perf_counter() - began) * 1000)
            if status != 200:
                raise RuntimeError(f"statistics: {status} {body[:500]!r}")
        rss_after = peak_rss_kb(worker)
    finally:
        server.terminate()
        server.wait(timeout=20)

    answer = json.loads(body)["data"]
    expected = expected_durations()
    assert answer["duration_by_type"] == expected, (answer["duration_by_type"], expected)
    result = {
        "tasks": args.tasks,
        "completed_24h": answer["last_24h"]["completed"],
        "statistics_p50_ms": round(percentile(latencies, 0.5), 1),
        "statistics_max_ms": round(max(latencies), 1),
        "peak_rss_before_mb": round(rss_before / 1024, 1),
        "peak_rss_after_mb": round(rss_after / 1024, 1),
        "figures_match": True,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
