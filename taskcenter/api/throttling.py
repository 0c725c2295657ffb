"""Request throttling with one counter per client and time window.

DRF's ``SimpleRateThrottle`` keeps every request's timestamp of the last window in one cache
entry and rewrites the whole list on each request: at 6,000/min that is a list of up to 6,000
floats pickled (and, with the file cache, compressed and written to disk) per request. Here the
window is fixed and the entry is a counter: one ``incr`` per request — in the shared cache with
Redis (atomic), otherwise in a counter file of this machine (:mod:`taskcenter.api.counters`,
exact across processes). A fixed window lets a client send up to twice the rate across a window
boundary.
"""

from __future__ import annotations

import logging
import time
from functools import cache

from django.conf import settings
from rest_framework import throttling

from taskcenter.api.counters import FileCounters
from taskcenter.proxies import client_address

logger = logging.getLogger(__name__)


@cache
def _file_counters(directory: str) -> FileCounters:
    return FileCounters(directory)


_last_warning = 0.0


def _log_unavailable(exc: Exception) -> None:
    """At most one warning a minute per process while the counters cannot be reached."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 60:
        _last_warning = now
        logger.warning("request throttling is off: its counters cannot be reached (%s)", exc)


class WindowCounterMixin:
    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        key = f"{self.key}:{window}"
        window_end = (window + 1) * self.duration
        try:
            count = self._count(key, window_end)
        except Exception as exc:  # whatever the cache raises
            # Fail open: with the shared cache (Redis) down, refusing every request would stop
            # operators from seeing and steering their tasks, which the database still serves.
            _log_unavailable(exc)
            return True
        self.wait_seconds = window_end - now
        return count <= self.num_requests

    def _count(self, key: str, window_end: float) -> int:
        if settings.TASKCENTER_THROTTLE_DIR:
            return _file_counters(str(settings.TASKCENTER_THROTTLE_DIR)).incr(key, expires_at=window_end + 1)
        try:
            return self.cache.incr(key)
        except ValueError:  # first request of this window
            if self.cache.add(key, 1, self.duration + 1):
                return 1
            return self.cache.incr(key)  # another process started the window first

    def wait(self):
        return self.wait_seconds

    def get_ident(self, request):
        # DRF's own believes any X-Forwarded-For: a client could pick a new counter per request.
        return client_address(request) or ""


class AnonRateThrottle(WindowCounterMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(WindowCounterMixin, throttling.UserRateThrottle):
    pass
