"""Prometheus metrics: ``taskcenter_*`` events counted where they happen, state read at scrape.

Two kinds:

- **Events** (HTTP requests, task durations, failures, retries, cancel latency) are counted in
  the process where they happen — a gunicorn worker, a django-q2 worker, the watchdog — with
  prometheus_client's multi-process mode: every process of a host writes to
  ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them. A machine that runs only workers
  exports its own with ``manage.py serve_metrics``.
- **State** (tasks by status and type, queue depth, live clusters and workers, per-host CPU and
  memory of the workers) is read from the database and the broker when scraped, so it is the same
  whichever process or machine answers.
"""

from __future__ import annotations

import os

from django.conf import settings

# prometheus_client decides at import time whether values live in shared files.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.PROMETHEUS_MULTIPROC_DIR))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

HTTP_REQUESTS = Counter(
    "taskcenter_http_requests_total",
    "HTTP requests answered, by method, route and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "taskcenter_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TASK_DURATION = Histogram(
    "taskcenter_task_duration_seconds",
    "Run time of executions that completed, by task type.",
    ["task_type"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400),
)
TASK_FAILURES = Counter(
    "taskcenter_task_failures_total",
    "Executions that failed, by task type and error category.",
    ["task_type", "category"],
)
TASK_RETRIES = Counter(
    "taskcenter_task_retries_total",
    "Automatic retries scheduled, by task type and error category.",
    ["task_type", "category"],
)
CANCEL_LATENCY = Histogram(
    "taskcenter_cancel_latency_seconds",
    "From a cancel request to the worker letting go of the task.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)


class StateCollector:
    """Gauges read from the database and the broker at scrape time."""

    def collect(self):
        from tasks.selectors import live_clusters, queue_depth, task_counts, worker_resources

        tasks = GaugeMetricFamily("taskcenter_tasks", "Tasks by status and type.", labels=["status", "task_type"])
        for (status, task_type), count in task_counts().items():
            tasks.add_metric([status, task_type], count)
        yield tasks
        yield GaugeMetricFamily("taskcenter_queue_depth", "Messages waiting in the broker.", value=queue_depth())
        clusters = live_clusters()
        yield GaugeMetricFamily("taskcenter_clusters", "Live django-q2 clusters.", value=len(clusters))
        yield GaugeMetricFamily(
            "taskcenter_workers", "Worker processes of the live clusters.", value=sum(c["workers"] for c in clusters)
        )
        cpu = GaugeMetricFamily(
            "taskcenter_worker_cpu_percent", "CPU of a host's workers (100 = one core).", labels=["host"]
        )
        memory = GaugeMetricFamily(
            "taskcenter_worker_memory_bytes", "Resident memory of a host's workers.", labels=["host"]
        )
        rate = GaugeMetricFamily(
            "taskcenter_worker_tasks_per_minute", "Tasks run per minute on a host.", labels=["host"]
        )
        for host in worker_resources():
            cpu.add_metric([host["host"]], host["cpu_percent"])
            memory.add_metric([host["host"]], host["memory_bytes"])
            rate.add_metric([host["host"]], host["tasks_per_minute"])
        yield from (cpu, memory, rate)


def render() -> bytes:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(StateCollector())
    return generate_latest(registry)
