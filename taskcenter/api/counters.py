"""Request counters for the API's throttles on one machine without Redis.

Django's file cache, which used to hold them, pickles the value, writes a temporary file and
renames it, and lists the cache directory to cull it — on every request, a large part of a
task detail's time (docs/performance.md) — and two processes incrementing at once could lose a
count. Here a counter is an 8-byte integer in a small file of its own, incremented under
``flock``: exact across processes, and a few system calls. A file is named after the end of its
window and deleted once that has passed (each process sweeps the directory at most once a
minute).

With Redis (``REDIS_URL``) the throttles count in the shared cache instead (atomic ``INCR``),
which several machines share.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Seconds between two sweeps of expired counter files by one process.
SWEEP_INTERVAL = 60.0


class FileCounters:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self._swept = 0.0
        self._ready = False

    def incr(self, key: str, expires_at: float) -> int:
        """Add one to ``key``'s counter, which lives until ``expires_at`` (epoch seconds); return
        the new count."""
        if not self._ready:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._ready = True
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        path = self.directory / f"{int(expires_at)}-{digest}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 8, 0)
            count = (int.from_bytes(raw, "little") if len(raw) == 8 else 0) + 1
            os.pwrite(fd, count.to_bytes(8, "little"), 0)
        finally:
            os.close(fd)  # releases the lock
        self._sweep_when_due()
        return count

    def _sweep_when_due(self) -> None:
        now = time.time()
        if now - self._swept < SWEEP_INTERVAL:
            return
        self._swept = now
        try:
            for entry in os.scandir(self.directory):
                expires, _, _ = entry.name.partition("-")
                if expires.isdigit() and int(expires) < now:
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:  # another process swept it
                        pass
        except OSError as exc:  # counting matters, tidying does not
            logger.warning("could not sweep throttle counters in %s: %s", self.directory, exc)
