#!/usr/bin/env python
"""The import task: rows per second through staged batches, and the publishing statement's time.

Writes a CSV of ``--rows`` valid rows into a temporary import directory and runs one
``import_assessments`` task to completion in this process (as a worker would: claim, batches of
staged rows with their checkpoints, completion), on a fresh SQLite database unless
``DATABASE_URL`` is given. The publishing statement — which holds the write lock on SQLite — is
timed on its own. The last line is one JSON object.

    .venv/bin/python bench/importer.py [--rows 1000000]
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
from bench.common import setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    imports = Path(tempfile.mkdtemp(prefix="taskcenter-import-"))
    os.environ["TASKCENTER_IMPORT_DIR"] = str(imports)
    setup_django(os.environ.get("DATABASE_URL"))

    from batches import importer, jobs
    from batches.models import AssessmentRecord
    from tasks.actors import SYSTEM
    from tasks.models import Task
    from tasks.runtime.worker import run_task
    from tasks.services import task_create

    with open(imports / "bench.csv", "w", encoding="utf-8") as handle:
        handle.write(",".join(importer.COLUMNS) + "\n")
        for i in range(args.rows):
            handle.write(f"S{i // 9:07d},SCH{i % 40:03d},7,7-1,academic,math,{i % 100},2025-06-01\n")

    published: list[float] = []
    original = importer.publish_staged

    def timed_publish(task_id):
        started = time.perf_counter()
        count = original(task_id)
        published.append(time.perf_counter() - started)
        return count

    jobs.publish_staged = timed_publish
    task = task_create(actor=SYSTEM, task_type="import_assessments", params={"path": "bench.csv"})
    started = time.perf_counter()
    outcome = run_task(str(task.pk))
    elapsed = time.perf_counter() - started
    assert outcome == "completed", Task.objects.get(pk=task.pk).error_message
    assert AssessmentRecord.objects.count() == args.rows
    print(
        json.dumps(
            {
                "rows": args.rows,
                "rows_per_s": round(args.rows / elapsed),
                "import_s": round(elapsed, 2),
                "publish_s": round(published[0], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
