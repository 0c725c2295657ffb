"""Resource monitoring: every worker process reports its CPU, memory and task rate.

A daemon thread started when django-q2 spawns a worker (its ``post_spawn`` signal) writes one
:class:`~tasks.models.WorkerSample` row for its process every ``TASKCENTER_RESOURCE_INTERVAL``
seconds. Readers (dashboard, ``/api/v1/tasks/statistics``, ``/metrics``) sum the fresh rows per
host, so the figures cover every machine that runs a cluster.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from datetime import timedelta

import psutil
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

#: Tasks this process has run (any outcome); read by the sampler.
tasks_run = 0


def count_task() -> None:
    global tasks_run
    tasks_run += 1


def start_sampler(**_signal_kwargs) -> threading.Thread:
    thread = threading.Thread(target=_sample_forever, name="taskcenter-resources", daemon=True)
    thread.start()
    return thread


def _sample_forever() -> None:
    interval = float(settings.TASKCENTER_RESOURCE_INTERVAL)
    process = psutil.Process()
    process.cpu_percent(None)  # the first reading only starts the measurement
    history: deque[tuple[float, int]] = deque()
    while True:
        time.sleep(interval)
        try:
            sample_once(process, history)
        except Exception:  # never let monitoring disturb a worker
            logger.warning("could not record worker resources", exc_info=True)
        finally:
            close_old_connections()


def sample_once(process: psutil.Process, history: deque) -> None:
    from tasks.models import WorkerSample

    now_mono = time.monotonic()
    history.append((now_mono, tasks_run))
    while len(history) > 1 and now_mono - history[0][0] > 60:
        history.popleft()
    first_time, first_count = history[0]
    elapsed = now_mono - first_time
    rate = (tasks_run - first_count) * 60.0 / elapsed if elapsed > 0 else 0.0
    now = timezone.now()
    host = socket.gethostname()
    WorkerSample.objects.update_or_create(
        host=host,
        pid=os.getpid(),
        defaults={
            "cpu_percent": round(process.cpu_percent(None), 1),
            "memory_bytes": process.memory_info().rss,
            "tasks_total": tasks_run,
            "tasks_per_minute": round(rate, 2),
            "updated_at": now,
        },
    )
    # Processes that are gone (recycled, killed) stop reporting; forget them after a while.
    WorkerSample.objects.filter(updated_at__lt=now - timedelta(minutes=10)).delete()
