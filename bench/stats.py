#!/usr/bin/env python
"""The statistics job against the pandas script a user would write instead.

1. Generates ``--students`` × 10 indicators in a fresh SQLite database (1,000,000 records by
   default) with ``generate_assessments``' generator.
2. Starts a batch (descriptive + correlation, both dimensions) and times it end to end through a
   real qcluster worker, sampling its progress every 50 ms and the worker processes' peak RSS.
3. Runs the pandas baseline in a separate process: ``read_sql`` of the same rows, pivot,
   ``describe``, ``corr`` — and checks that both give the same figures.

The last line is one JSON object.

    .venv/bin/python bench/stats.py [--students 100000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django, start_process, stop_process

PANDAS_SCRIPT = r"""
import json, sqlite3, sys, time
import pandas as pd
start = time.perf_counter()
con = sqlite3.connect(sys.argv[1])
df = pd.read_sql("SELECT student_id, indicator, score FROM batches_assessmentrecord", con)
wide = df.pivot_table(index="student_id", columns="indicator", values="score", aggfunc="mean")
described = wide.describe()
corr = wide.corr()
elapsed = time.perf_counter() - start
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": elapsed, "peak_rss_kb": int(hwm),
                  "mean": {k: float(v) for k, v in described.loc["mean"].items()},
                  "corr_math_physics": float(corr.loc["math", "physics"])}))
"""


def peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=100_000)
    args = parser.parse_args()
    database_url = setup_django(None)
    db_path = database_url.removeprefix("sqlite:///")

    from batches.assessments import generate
    from batches.services import batch_create, batch_start
    from tasks.actors import SYSTEM
    from tasks.models import Task

    started = time.perf_counter()
    records = generate(args.students, seed=2025)
    print(f"generated {records} records in {time.perf_counter() - started:.1f} s", flush=True)

    batch_create(
        actor=SYSTEM,
        batch_code="BENCH",
        data_source="student_assessments",
        config={
            "include_dimensions": ["academic", "non_academic"],
            "calculation_types": ["descriptive", "correlation"],
        },
    )
    cluster = start_process("qcluster", env={"Q_WORKERS": "1"})
    try:
        time.sleep(2)  # let the cluster start its worker before the clock runs
        workers = children(cluster.pid)
        started = time.perf_counter()
        task = batch_start(actor=SYSTEM, batch_code="BENCH")
        last_progress, last_change, max_gap, peak = None, None, 0.0, 0
        while True:
            row = Task.objects.values_list("status", "progress").get(pk=task.pk)
            now = time.perf_counter()
            if row[0] == "processing" and row[1] != last_progress:
                if last_change is not None:
                    max_gap = max(max_gap, now - last_change)
                last_progress, last_change = row[1], now
            if row[0] in ("completed", "failed", "cancelled"):
                break
            peak = max([peak, *(peak_rss_kb(pid) for pid in workers)])
            time.sleep(0.05)
        ours_s = time.perf_counter() - started
        peak = max([peak, *(peak_rss_kb(pid) for pid in workers)])
    finally:
        stop_process(cluster)
    task.refresh_from_db()
    if task.status != "completed":
        sys.exit(f"statistics task ended {task.status}: {task.error_message}")
    print(f"taskcenter: {ours_s:.2f} s, worker peak RSS {peak / 1024:.0f} MB", flush=True)

    done = subprocess.run([sys.executable, "-c", PANDAS_SCRIPT, db_path], capture_output=True, text=True, check=True)
    baseline = json.loads(done.stdout)
    print(f"pandas: {baseline['seconds']:.2f} s, peak RSS {baseline['peak_rss_kb'] / 1024:.0f} MB", flush=True)
    ours = task.result["descriptive"]["indicators"]
    for name, mean in baseline["mean"].items():
        assert abs(ours[name]["mean"] - mean) <= 1e-9 * abs(mean), (name, ours[name]["mean"], mean)
    names = [i["name"] for i in task.result["indicators"]]
    r = task.result["correlation"]["matrix"][names.index("math")][names.index("physics")]
    assert abs(r - baseline["corr_math_physics"]) <= 1e-9, (r, baseline["corr_math_physics"])

    print(
        json.dumps(
            {
                "records": records,
                "taskcenter_s": round(ours_s, 3),
                "pandas_s": round(baseline["seconds"], 3),
                "ratio": round(ours_s / baseline["seconds"], 3),
                "peak_rss_mb": round(peak / 1024, 1),
                "pandas_peak_rss_mb": round(baseline["peak_rss_kb"] / 1024, 1),
                "max_progress_gap_s": round(max_gap, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
