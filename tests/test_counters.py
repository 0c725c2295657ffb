"""The API throttles' request counters on one machine (taskcenter/api/counters.py)."""

from __future__ import annotations

import os
import time

from taskcenter.api import counters
from taskcenter.api.counters import FileCounters


def test_counts_are_exact_across_processes(tmp_path):
    store = FileCounters(tmp_path)
    expires = time.time() + 60
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                mine = FileCounters(tmp_path)
                for _ in range(250):
                    mine.incr("user:1:42", expires)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    assert store.incr("user:1:42", expires) == 1001
    assert store.incr("user:2:42", expires) == 1, "another key counts on its own"


def test_expired_counters_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(counters, "SWEEP_INTERVAL", 0.0)
    store = FileCounters(tmp_path)
    store.incr("old", time.time() - 5)
    store.incr("current", time.time() + 60)
    assert len(list(tmp_path.iterdir())) == 1
    assert store.incr("current", time.time() + 60) == 2


def test_with_the_shared_cache_down_the_api_still_answers_unthrottled(manager, settings, caplog):
    """Redis down: the throttles cannot count, and fail open rather than turning every request
    into a 500 (the database, which serves the request, is fine)."""
    from tests.api_helpers import client_for, envelope_of

    settings.TASKCENTER_THROTTLE_DIR = None
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    api = client_for(manager)
    envelope_of(api.get("/api/v1/tasks"), 200)
    envelope_of(api.post("/api/v1/tasks", {"task_type": "canary", "params": {}}, format="json"), 201)
    assert "request throttling is off" in caplog.text
