"""SQLite with writers queued on a kernel lock instead of SQLite's sleeping busy handler.

SQLite admits one writer at a time. A connection that finds the write lock taken calls its busy
handler, which *sleeps* 1, 2, 5, 10, 15, 20, 25 … ms between attempts and cannot be replaced
from Python. With several processes writing short transactions (web processes, the django-q2
pusher, monitor and workers) the lock is then often free while every waiter sleeps, and a
process that commits and begins again at once (a loop creating tasks) starves the others.

Here every write — an explicit transaction (Django's ``atomic``, ``BEGIN IMMEDIATE``) and a write
statement run in autocommit mode — first takes an exclusive ``flock`` on ``<database>-writer.lock``.
Waiters block in the kernel and the next one is woken the moment the holder commits; SQLite's
own lock is then always free when asked for, and its busy timeout stays as the backstop for
programs that do not take the file lock. Readers (WAL) take nothing. A process that dies
holding the lock releases it with its file descriptors. This queue is what ended the starvation
of the cluster's writers behind a process creating tasks (docs/operations.md).

Everything else here answers a problem met on real runs too: the WAL that never started over, the
lock's deadline and its record of long holds (for the watchdog), and the one shortcut of the
task hot path, ``write_directly`` (docs/performance.md, "Which bypasses of Django pay").

Checkpoints move out of the lock and off the writer's path. SQLite's automatic checkpoint runs
inside ``COMMIT`` — in the committing process, after SQLite's own lock is released but while
this file lock is still held — and with ``synchronous=NORMAL`` it is where the fsyncs happen,
so every writer queued behind would wait for the disk. Automatic checkpoints are off; instead, a
connection that has just written and let go of the lock asks its process's checkpoint thread
for a passive checkpoint when nobody has run one for ``CHECKPOINT_INTERVAL`` seconds (the mtime
of ``<database>-checkpoint.stamp`` says when).

A passive checkpoint alone never lets the WAL start over while writes keep coming: SQLite rewinds
the WAL only when a writer begins with every frame copied back and no reader on the WAL, which a
busy cluster never offers. The WAL then grows without bound, many times the database, and every
transaction gets slower as it grows (each write extends the file, each page read searches a longer
WAL index). So when the WAL holds more than ``RESTART_FRAMES``
frames after the passive checkpoint, the thread takes the write lock and runs a RESTART
checkpoint: only what was written since the passive one is left to copy, the readers still on the
WAL (milliseconds) are waited for at most ``RESTART_WAIT_MS`` (a restart that gave up is tried
again after a backoff that doubles while readers stay), and the next writer starts the WAL from
its beginning. ``journal_size_limit`` then trims a WAL that grew past ``WAL_SIZE_LIMIT``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sqlite3
import struct
import threading
import time

from django.conf import settings
from django.db import OperationalError
from django.db.backends.sqlite3 import base
from django.db.transaction import TransactionManagementError

from taskcenter.db import rows_or_changes

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
logger = logging.getLogger(__name__)

#: A wait for the write lock at least this long is logged.
SLOW_WAIT_SECONDS = 5.0
#: A hold of the write lock at least this long is recorded in the lock file (when it began and
#: ended, joined to the long holds right before it): for that long nobody could write, and the
#: watchdog does not count a heartbeat missed meanwhile against a worker.
LONG_HOLD_SECONDS = 0.5
_STAMP = struct.Struct("dd")
#: Seconds between two checkpoints (by any process); the WAL holds at most about that much work.
CHECKPOINT_INTERVAL = 0.5
#: A WAL holding more frames (pages) than this after a passive checkpoint is started over.
RESTART_FRAMES = 1000
#: How long a restart waits for readers still on the WAL before it gives up.
RESTART_WAIT_MS = 100
#: After a restart gave up, the next is tried this many seconds later, then twice as long after
#: each one that gives up again, up to ``RESTART_BACKOFF_MAX``: a reader that stays (a big
#: export, a statistics load) costs the writers one wait now and then, not one every round.
RESTART_BACKOFF_FIRST = 0.5
RESTART_BACKOFF_MAX = 8.0
#: A WAL file larger than this is trimmed back to it when it starts over (bytes).
WAL_SIZE_LIMIT = 32 * 1024 * 1024


class WriterLockTimeout(OperationalError):
    """The SQLite write lock could not be had within its timeout (``TASKCENTER_SQLITE_LOCK_TIMEOUT``)."""


class WriterLock:
    """An exclusive ``flock`` on one file; one holder per process at a time per instance. A wait
    for it fails after ``timeout`` seconds (by default ``settings.TASKCENTER_SQLITE_LOCK_TIMEOUT``)."""

    def __init__(self, path: str, timeout: float | None = None):
        self.path = path
        self.timeout = settings.TASKCENTER_SQLITE_LOCK_TIMEOUT if timeout is None else timeout
        self._fd: int | None = None
        self._pid: int | None = None
        self.held = False
        self.held_since = 0.0
        #: Seconds the last acquire waited for another holder.
        self.waited = 0.0
        self.database = path.removesuffix("-writer.lock")
        self.stamp = f"{self.database}-checkpoint.stamp"
        self.last_checkpoint = 0.0

    def acquire(self) -> None:
        if self._fd is None or self._pid != os.getpid():
            # A forked child must not share its parent's open file description (and its lock).
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
            self.held = False
        self.waited = 0.0
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Wait in the kernel: woken the moment the holder lets go. A long transaction makes
            # writers wait longer than SQLite's busy timeout would; only a hold past ``timeout``
            # fails them, and a long wait is reported.
            started = time.monotonic()
            self._wait()
            self.waited = time.monotonic() - started
            if self.waited >= SLOW_WAIT_SECONDS:
                logger.warning("waited %.1f s for the SQLite write lock (a long transaction held it)", self.waited)
        self.held = True
        self.held_since = time.time()

    def _wait(self) -> None:
        """Block until the lock is ours, at most ``timeout`` seconds (:class:`WriterLockTimeout`).

        A blocking ``flock`` cannot be given a time limit, so a helper thread makes the call on this
        file descriptor (the lock belongs to the open file, not the thread) while this one waits
        with one. A helper that gets the lock after its waiter gave up lets go of it at once and
        closes the descriptor, which is no longer this instance's.
        """
        fd, granted, guard, gave_up = self._fd, threading.Event(), threading.Lock(), []

        def take() -> None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with guard:
                if not gave_up:
                    granted.set()
                    return
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        threading.Thread(target=take, name="sqlite-writer-lock", daemon=True).start()
        if granted.wait(self.timeout):
            return
        with guard:
            if granted.is_set():
                return
            gave_up.append(True)
        self._fd = None  # the helper owns it now
        raise WriterLockTimeout(
            f"gave up after {self.timeout:.0f} s waiting for the SQLite write lock {self.path}"
            " (another process holds it; TASKCENTER_SQLITE_LOCK_TIMEOUT)"
        )

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            now = time.time()
            if now - self.held_since >= LONG_HOLD_SECONDS:
                try:
                    self._record_hold(now)
                except OSError:
                    logger.warning("could not record a long hold of the SQLite write lock", exc_info=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _record_hold(self, end: float) -> None:
        """Record the long hold ending now. One that began less than :data:`LONG_HOLD_SECONDS`
        after the recorded period ended extends that period: waiters are woken in no particular
        order, so a writer queued behind the first hold may have been passed over in the short gap
        and waited through both."""
        start = self.held_since
        previous_start, previous_end = self._recorded()
        if previous_end and start - previous_end < LONG_HOLD_SECONDS:
            start = previous_start
        os.pwrite(self._fd, _STAMP.pack(start, end), 0)

    def _recorded(self) -> tuple[float, float]:
        data = os.pread(self._fd, _STAMP.size, 0)
        return _STAMP.unpack(data) if len(data) == _STAMP.size else (0.0, 0.0)

    def unwritable(self) -> tuple[float, float]:
        """While held: the last period ``(start, end)`` (``time.time()``) the database could not be
        written for a while — long holds (:data:`LONG_HOLD_SECONDS` or more) one right after the
        other — or ``(0.0, 0.0)`` if none is known. When this acquire waited that long for a hold
        nobody recorded (its holder died, or is not this backend), its start is unknown: ``0.0``."""
        start, end = self._recorded()
        if self.waited >= LONG_HOLD_SECONDS and end < self.held_since - self.waited:
            return 0.0, self.held_since
        return start, end

    def checkpoint_when_due(self) -> None:
        """After a write, with the lock let go: ask this process's checkpoint thread for a passive
        checkpoint if nobody ran one for ``CHECKPOINT_INTERVAL`` seconds. Best effort — it never
        fails or delays the write it follows."""
        now = time.time()
        if now - self.last_checkpoint < CHECKPOINT_INTERVAL:
            return
        try:
            try:
                self.last_checkpoint = os.stat(self.stamp).st_mtime
            except FileNotFoundError:
                self.last_checkpoint = 0.0
            if now - self.last_checkpoint < CHECKPOINT_INTERVAL:
                return
            # Claim this round (two processes racing here both checkpoint: harmless).
            with open(self.stamp, "a"):
                os.utime(self.stamp)
            self.last_checkpoint = now
            _checkpointer(self.database).request()
        except OSError as exc:  # the next round tries again
            self.last_checkpoint = now
            logger.info("checkpoint skipped: %s", exc)

    def close(self) -> None:
        self.release()
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


class _Checkpointer:
    """A daemon thread per process and database that runs the passive checkpoints asked for.

    A checkpoint copies the WAL's pages into the database file and fsyncs both; the copying is
    cheap but the fsyncs are slow, and run inline they stall whichever process had just written
    (one creating tasks, django-q2's pusher, a worker). The thread waits for the disk instead,
    on its own connection; requests made while it works fold into one.

    Fork safety: a process must not fork while another of its threads is inside SQLite (the child
    would inherit SQLite's locks held). Before a fork the forking thread waits until no
    checkpoint runs; the child never touches the parent's checkpoint connection (it keeps it, as
    SQLite asks, without using or closing it) and starts a thread of its own when it writes.
    """

    def __init__(self, database: str):
        self.database = database
        self.wanted = threading.Event()
        self.busy = threading.Lock()
        self.connection: sqlite3.Connection | None = None
        # Its own file description: held, it keeps this process's other connections out too.
        self.writer_lock = WriterLock(f"{database}-writer.lock")
        self.restarts = 0
        self.restart_attempts = 0
        self.next_restart = 0.0
        self.backoff = 0.0
        threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True).start()

    def request(self) -> None:
        self.wanted.set()

    def idle(self) -> bool:
        """Nothing asked for and nothing running."""
        return not self.wanted.is_set() and not self.busy.locked()

    def _run(self) -> None:
        while True:
            self.wanted.wait()
            with self.busy:
                self.wanted.clear()
                try:
                    self._checkpoint()
                except (sqlite3.Error, OSError) as exc:  # the next round tries again
                    logger.info("checkpoint skipped: %s", exc)

    def _checkpoint(self) -> None:
        if self.connection is None:
            self.connection = sqlite3.connect(
                self.database, timeout=RESTART_WAIT_MS / 1000, check_same_thread=False, isolation_level=None
            )
            self.connection.execute("PRAGMA wal_autocheckpoint = 0")
        # The copying and the fsyncs, with writers going on.
        _, frames, _ = self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < RESTART_FRAMES or time.monotonic() < self.next_restart:
            return
        # Start the WAL over: under the write lock, so that no frame is added meanwhile; what is
        # left to copy is what was written during the passive checkpoint.
        self.restart_attempts += 1
        with self.writer_lock:
            busy, _, _ = self.connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        if busy:
            self.backoff = min(RESTART_BACKOFF_MAX, max(RESTART_BACKOFF_FIRST, 2 * self.backoff))
            self.next_restart = time.monotonic() + self.backoff
        else:
            self.restarts += 1
            self.backoff = 0.0


_checkpointers: dict[str, _Checkpointer] = {}
_checkpointers_lock = threading.Lock()
_inherited: list[_Checkpointer] = []  # a parent's, in a forked child: kept, never used


def _checkpointer(database: str) -> _Checkpointer:
    found = _checkpointers.get(database)
    if found is None:
        with _checkpointers_lock:
            found = _checkpointers.get(database)
            if found is None:
                found = _checkpointers[database] = _Checkpointer(database)
    return found


def _before_fork() -> None:
    _checkpointers_lock.acquire()
    for checkpointer in _checkpointers.values():
        checkpointer.busy.acquire()


def _after_fork_in_parent() -> None:
    for checkpointer in _checkpointers.values():
        checkpointer.busy.release()
    _checkpointers_lock.release()


def _after_fork_in_child() -> None:
    global _checkpointers_lock
    _inherited.extend(_checkpointers.values())
    _checkpointers.clear()
    _checkpointers_lock = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


class Connection(sqlite3.Connection):
    writer_lock: WriterLock | None = None


#: The store's statements as ``write_directly`` runs them: ``?`` placeholders and the names of
#: their values in order, per statement text.
_POSITIONAL: dict[str, tuple[str, list[str]]] = {}


def _positional(statement: str, params: dict) -> tuple[str, list]:
    """``statement`` with its ``%(name)s`` placeholders as ``?`` and its values in their order."""
    converted = _POSITIONAL.get(statement)
    if converted is None:
        names = re.findall(r"%\((\w+)\)s", statement)
        converted = _POSITIONAL[statement] = (re.sub(r"%\(\w+\)s", "?", statement).replace("%%", "%"), names)
    sql, names = converted
    return sql, [params[name] for name in names]


class CursorWrapper(base.SQLiteCursorWrapper):
    def execute(self, query, params=None):
        if not self._takes_lock(query):
            return super().execute(query, params)
        with self.connection.writer_lock:
            result = super().execute(query, params)
        self.connection.writer_lock.checkpoint_when_due()
        return result

    def executemany(self, query, param_list):
        if not self._takes_lock(query):
            return super().executemany(query, param_list)
        with self.connection.writer_lock:
            result = super().executemany(query, param_list)
        self.connection.writer_lock.checkpoint_when_due()
        return result

    def _takes_lock(self, query: str) -> bool:
        """A write statement in autocommit mode (a transaction took the lock at BEGIN)."""
        lock = self.connection.writer_lock
        return lock is not None and not lock.held and not self.connection.in_transaction and _is_write(query)


def _is_write(query: str) -> bool:
    return query.lstrip()[:7].upper().startswith(_WRITES)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        params["factory"] = Connection
        return params

    def unwritable(self) -> tuple[float, float]:
        """Inside a transaction: see :meth:`WriterLock.unwritable` (none known for an in-memory
        database, which has no write lock)."""
        lock = self.connection.writer_lock
        return lock.unwritable() if lock is not None else (0.0, 0.0)

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            connection.writer_lock = WriterLock(f"{self.settings_dict['NAME']}-writer.lock")
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        return connection

    def create_cursor(self, name=None):
        return self.connection.cursor(factory=CursorWrapper)

    def _start_transaction_under_autocommit(self):
        lock = self.connection.writer_lock
        if lock is None:
            return super()._start_transaction_under_autocommit()
        lock.acquire()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            lock.release()
            raise

    def _commit(self):
        try:
            super()._commit()
        finally:
            self._release_writer_lock()
        if self.connection is not None and self.connection.writer_lock is not None:
            self.connection.writer_lock.checkpoint_when_due()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self.connection is not None and self.connection.writer_lock is not None:
                self.connection.writer_lock.close()

    # --- a short write transaction outside atomic() -----------------------------------------

    def write_directly(self, statements: list[str], params: dict) -> list[tuple]:
        """Run ``statements`` (sharing the named ``params``) in one ``BEGIN IMMEDIATE`` … ``COMMIT``
        transaction under the writer lock and return the first one's rows (one empty row per row
        it changed, for a statement that returns none); when there are none, the rest are not run
        and nothing is written. In autocommit mode, outside ``atomic()``.

        The statements run on the driver's connection, with their values put in order before
        the lock is taken: through ``atomic()`` and Django's cursors the write lock — the one
        resource every writer of the database queues for — was held long enough to cost the
        task hot path a fifth of its throughput (docs/performance.md). They are recorded in
        ``queries`` when queries are logged, as a cursor would; execute wrappers do not see them.
        Errors are Django's database errors.
        """
        if self.in_atomic_block or not self.get_autocommit():
            raise TransactionManagementError("write_directly() runs outside any transaction")
        prepared = [_positional(statement, params) for statement in statements]
        self.close_if_health_check_failed()
        self.ensure_connection()
        self.validate_thread_sharing()
        raw = self.connection
        lock = raw.writer_lock
        started = time.monotonic()
        with self.wrap_database_errors:
            if lock is not None:
                lock.acquire()
            try:
                raw.execute("BEGIN IMMEDIATE")
                try:
                    rows = rows_or_changes(raw.execute(*prepared[0]))
                    if rows:
                        for statement in prepared[1:]:
                            raw.execute(*statement)
                    raw.execute("COMMIT" if rows else "ROLLBACK")
                except BaseException:
                    self._abandon_transaction(raw)
                    raise
            finally:
                if lock is not None:
                    lock.release()
        if self.queries_logged:
            took = f"{time.monotonic() - started:.3f}"
            ran = prepared if rows else prepared[:1]
            self.queries_log.extend({"sql": sql, "params": values, "time": took} for sql, values in ran)
        if lock is not None and rows:
            lock.checkpoint_when_due()
        return rows

    def _abandon_transaction(self, raw) -> None:
        """Roll back what :meth:`write_directly` began; a transaction that cannot be rolled back
        must not outlive the writer lock, so the connection is then closed (SQLite rolls back)."""
        try:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
        except sqlite3.Error:
            logger.warning("could not roll back a failed write; closing the connection", exc_info=True)
        if raw.in_transaction:
            self.close()

    def _release_writer_lock(self):
        if self.connection is not None and self.connection.writer_lock is not None:
            self.connection.writer_lock.release()
