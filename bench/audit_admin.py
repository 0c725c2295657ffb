#!/usr/bin/env python
"""The admin's audit log at 1,000,000 rows: the changelist's time with each of its filters.

Fills a fresh SQLite database (or ``--database``) with ``--rows`` audit rows as an installation
writes them — two thirds the workers' routine ``worker.claim`` / ``worker.complete`` rows by
``system``, the rest operators' actions by 20 users — spread over the last year, oldest first.
Then requests the changelist in-process (Django's test client, a superuser, the whole admin
stack) unfiltered and filtered by actor, action and date (the filters' own links), ``--repeat``
times each, and prints the median per filter; the last line is one JSON object.

    .venv/bin/python bench/audit_admin.py [--rows 1000000] [--repeat 5] [--database URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django, superuser_client

USERS = [f"operator{i:02d}" for i in range(20)]
OPERATOR_ACTIONS = ["task.create", "task.cancel", "task.pause", "task.resume", "task.retry", "batch.create"]


def fill(rows: int) -> float:
    """Insert ``rows`` audit rows, a transaction per 50,000; return the seconds it took."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tasks.models import AuditLog

    rng = random.Random(18)
    now = timezone.now()
    start = now - timedelta(days=365)
    step = timedelta(days=365) / rows
    table = AuditLog._meta.db_table
    columns = "id, actor_name, action, target_type, target_id, from_status, to_status, details, created_at"
    field = AuditLog._meta.get_field("created_at")
    began = time.perf_counter()
    for first in range(0, rows, 50_000):
        batch = []
        for i in range(first, min(rows, first + 50_000)):
            kind = i % 3
            if kind == 0:
                actor, action, to = "system", "worker.claim", "processing"
            elif kind == 1:
                actor, action, to = "system", "worker.complete", "completed"
            else:
                actor, action, to = rng.choice(USERS), rng.choice(OPERATOR_ACTIONS), "pending"
            when = field.get_db_prep_value(start + step * i, connection)
            batch.append((i + 1, actor, action, "task", f"{i // 3:032x}", "", to, "{}", when))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * 9)})",
                batch,
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else f"ANALYZE {table}")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    setup_django(args.database)
    from django.utils import timezone

    from tasks.models import AuditLog

    AuditLog.objects.all().delete()
    fill_seconds = fill(args.rows)
    print(f"filled {args.rows} audit rows in {fill_seconds:.1f} s", flush=True)
    client = superuser_client()
    # The date filter's own links (past 7 days, this year): aware datetimes, as it writes them.
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = midnight + timedelta(days=1)
    week = urlencode({"created_at__gte": midnight - timedelta(days=7), "created_at__lt": tomorrow})
    year = urlencode(
        {
            "created_at__gte": midnight.replace(month=1, day=1),
            "created_at__lt": midnight.replace(year=midnight.year + 1, month=1, day=1),
        }
    )
    queries = {
        "none": "",
        "actor (operator)": "actor_name=operator07",
        "actor (system)": "actor_name=system",
        "action (operator's)": "action=task.cancel",
        "action (routine)": "action=worker.claim",
        "date (past 7 days)": week,
        "date (this year)": year,
        "actor + action": "actor_name=operator07&action=task.cancel",
        "actor + date": f"actor_name=operator07&{week}",
    }
    figures = {}
    for name, query in queries.items():
        url = f"/admin/tasks/auditlog/?{query}"
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - began)
        figures[name] = round(1000 * statistics.median(times), 1)
        print(f"{name:<24} {figures[name]:>9.1f} ms", flush=True)
    print(json.dumps({"rows": args.rows, "fill_seconds": round(fill_seconds, 1), "changelist_median_ms": figures}))


if __name__ == "__main__":
    main()
