"""The SQLite backend: writers queue on a kernel lock; checkpoints run outside it."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from django.db import connections, transaction

from taskcenter.db.sqlite3 import base as backend
from tests.cluster import wait_for


@pytest.fixture
def sqlite_db(tmp_path, django_db_blocker):
    """A file database of its own under the alias ``writer_lock_test`` (whatever the suite runs on);
    ``make(timeout)`` configures it with SQLite's busy timeout."""
    path = tmp_path / "db.sqlite3"

    def make(busy_timeout: float) -> str:
        config = {
            "ENGINE": "taskcenter.db.sqlite3",
            "NAME": str(path),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": busy_timeout,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
        connections.settings[ALIAS] = connections.configure_settings({"default": config})["default"]
        return ALIAS

    with django_db_blocker.unblock():
        yield path, make
        if hasattr(connections._connections, ALIAS):
            connections[ALIAS].close()
            del connections[ALIAS]
    connections.settings.pop(ALIAS, None)


ALIAS = "writer_lock_test"


def _in_thread(target) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run():
        try:
            outcome.append(target())
        except Exception as exc:  # reported to the test through ``outcome``
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_writer_waits_for_the_one_holding_the_lock_instead_of_failing(sqlite_db):
    # SQLite's own busy timeout is 0.1 s here and the first writer holds its transaction far
    # longer: without the kernel lock the second writer would fail with "database is locked".
    path, make = sqlite_db
    alias = make(busy_timeout=0.1)
    holding, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first_writer():
        connections[alias].cursor().execute("CREATE TABLE t (who TEXT)")
        with transaction.atomic(using=alias):
            connections[alias].cursor().execute("INSERT INTO t VALUES ('first')")
            holding.set()
            release.wait(10)
            order.append("first commits")
        connections[alias].close()
        return "ok"

    def second_writer():
        holding.wait(10)
        # Autocommit: a write statement outside any transaction takes the lock too.
        connections[alias].cursor().execute("INSERT INTO t VALUES ('second')")
        order.append("second wrote")
        rows = connections[alias].cursor().execute("SELECT who FROM t ORDER BY rowid").fetchall()
        connections[alias].close()
        return rows

    first, first_outcome = _in_thread(first_writer)
    second, second_outcome = _in_thread(second_writer)
    assert holding.wait(10)
    time.sleep(0.4)  # the second writer is blocked all this while, well past SQLite's timeout
    assert order == []
    release.set()
    first.join(10)
    second.join(10)
    assert first_outcome == ["ok"]
    assert second_outcome == [[("first",), ("second",)]]
    assert order == ["first commits", "second wrote"]


def _wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize("interval, bounded", [(0.0, True), (3600.0, False)])
def test_checkpoints_asked_for_by_committing_connections_keep_the_wal_small(sqlite_db, monkeypatch, interval, bounded):
    monkeypatch.setattr(backend, "CHECKPOINT_INTERVAL", interval)
    path, make = sqlite_db
    alias = make(busy_timeout=5)
    connections[alias].cursor().execute("CREATE TABLE t (payload TEXT)")
    for _ in range(30):
        for _ in range(10):
            with transaction.atomic(using=alias):
                connections[alias].cursor().execute("INSERT INTO t VALUES (%s)", ["x" * 3000])
        # The checkpoint runs in the background: let it finish (the next write then reuses the WAL).
        checkpointer = backend._checkpointers.get(str(path))
        deadline = time.monotonic() + 10
        while checkpointer is not None and not checkpointer.idle() and time.monotonic() < deadline:
            time.sleep(0.005)
    size = _wal_size(path)
    # 300 commits of about a page each: over a megabyte of WAL when nothing checkpoints.
    if bounded:
        assert size < 200_000
        assert Path(f"{path}-checkpoint.stamp").exists()
    else:
        assert size > 1_000_000


@pytest.mark.parametrize("restart_frames, bounded", [(200, True), (10**9, False)])
def test_the_wal_starts_over_while_writers_never_pause(sqlite_db, monkeypatch, restart_frames, bounded):
    """Several connections writing without a pause (a busy cluster) never leave SQLite the quiet
    moment in which a passive checkpoint lets the WAL start over: it grows without end unless the
    checkpoint thread restarts it under the write lock."""
    monkeypatch.setattr(backend, "CHECKPOINT_INTERVAL", 0.02)
    monkeypatch.setattr(backend, "RESTART_FRAMES", restart_frames)
    # A restart that a read in progress made give up is tried again at the next round.
    monkeypatch.setattr(backend, "RESTART_BACKOFF_FIRST", 0.02)
    monkeypatch.setattr(backend, "RESTART_BACKOFF_MAX", 0.02)
    monkeypatch.setattr(backend, "WAL_SIZE_LIMIT", 1_000_000)
    path, make = sqlite_db
    alias = make(busy_timeout=5)
    connections[alias].cursor().execute("CREATE TABLE t (who INTEGER, payload TEXT)")
    writing = threading.Event()
    writing.set()

    def writer(number):
        for _ in range(2000):
            with transaction.atomic(using=alias):
                connections[alias].cursor().execute("INSERT INTO t VALUES (%s, %s)", [number, "x" * 3000])
        connections[alias].close()
        return "ok"

    def reader():
        reads = 0
        while writing.is_set():
            connections[alias].cursor().execute("SELECT count(*) FROM t").fetchone()
            reads += 1
        connections[alias].close()
        return reads

    watcher, watched = _in_thread(reader)
    writers = [_in_thread(lambda n=n: writer(n)) for n in range(3)]
    for thread, _ in writers:
        thread.join(120)
    writing.clear()
    watcher.join(10)
    assert [outcome for _, outcome in writers] == [["ok"]] * 3
    assert watched[0] > 0
    assert connections[alias].cursor().execute("SELECT count(*) FROM t").fetchone() == (6000,)
    # 6,000 commits of about three pages each: some 75 MB of WAL when it never starts over; with
    # restarts it holds only what was written between two of them: about half of that at most on
    # a loaded machine (32 MB seen in a CI run; 30 MB was too tight a bound).
    size = _wal_size(path)
    if bounded:
        assert size < 40_000_000
        assert backend._checkpointers[str(path)].restarts >= 1
    else:
        assert size > 50_000_000


def test_a_long_reader_makes_writers_wait_for_one_restart_per_backoff_not_one_per_round(sqlite_db, monkeypatch):
    monkeypatch.setattr(backend, "CHECKPOINT_INTERVAL", 0.0)
    monkeypatch.setattr(backend, "RESTART_FRAMES", 20)
    monkeypatch.setattr(backend, "RESTART_BACKOFF_FIRST", 3600.0)
    path, make = sqlite_db
    alias = make(busy_timeout=5)
    cursor = connections[alias].cursor()
    cursor.execute("CREATE TABLE t (payload TEXT)")
    reader = sqlite3.connect(str(path), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # its snapshot stays on the WAL

    def write(commits):
        for _ in range(commits):
            with transaction.atomic(using=alias):
                cursor.execute("INSERT INTO t VALUES (%s)", ["x" * 3000])
            checkpointer = backend._checkpointers[str(path)]
            deadline = time.monotonic() + 10
            while not checkpointer.idle() and time.monotonic() < deadline:
                time.sleep(0.005)
        return backend._checkpointers[str(path)]

    checkpointer = write(60)
    assert (checkpointer.restart_attempts, checkpointer.restarts) == (1, 0)
    reader.execute("COMMIT")
    reader.close()
    checkpointer.next_restart = 0.0  # the backoff is over
    write(60)
    assert checkpointer.restarts >= 1
    assert cursor.execute("SELECT count(*) FROM t").fetchone() == (120,)


def test_a_checkpoint_that_cannot_run_never_fails_the_write_it_follows(sqlite_db, monkeypatch):
    monkeypatch.setattr(backend, "CHECKPOINT_INTERVAL", 0.0)
    path, make = sqlite_db
    Path(f"{path}-checkpoint.stamp").mkdir()  # the stamp cannot be written
    alias = make(busy_timeout=5)
    cursor = connections[alias].cursor()
    cursor.execute("CREATE TABLE t (n INTEGER)")
    with transaction.atomic(using=alias):
        cursor.execute("INSERT INTO t VALUES (1)")
    cursor.execute("INSERT INTO t VALUES (2)")  # autocommit
    assert cursor.execute("SELECT n FROM t ORDER BY n").fetchall() == [(1,), (2,)]


def test_a_fork_waits_for_a_running_checkpoint_and_the_child_starts_its_own(sqlite_db, monkeypatch):
    """A child forked while the checkpoint thread is inside SQLite would inherit SQLite's locks
    held (django-q2 forks its workers from a process that writes): forks wait for it instead."""
    monkeypatch.setattr(backend, "CHECKPOINT_INTERVAL", 0.0)
    path, make = sqlite_db
    alias = make(busy_timeout=5)
    cursor = connections[alias].cursor()
    cursor.execute("CREATE TABLE t (n INTEGER)")
    cursor.execute("INSERT INTO t VALUES (1)")
    checkpointer = backend._checkpointers[str(path)]
    checkpoint_running = threading.Event()

    def long_checkpoint():
        with checkpointer.busy:  # as the thread holds it while SQLite checkpoints
            checkpoint_running.set()
            time.sleep(0.4)

    threading.Thread(target=long_checkpoint).start()
    checkpoint_running.wait()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: its own checkpoint thread, and writes that work
        code = 1
        try:
            if not backend._checkpointers:
                connection = sqlite3.connect(str(path), timeout=5)
                connection.execute("INSERT INTO t VALUES (2)")
                connection.commit()
                lock = backend.WriterLock(f"{path}-writer.lock")
                lock.last_checkpoint = 0.0
                Path(f"{path}-checkpoint.stamp").unlink(missing_ok=True)
                lock.checkpoint_when_due()
                code = 0 if backend._checkpointers[str(path)] is not checkpointer else 2
        finally:
            os._exit(code)
    waited = time.monotonic() - started
    _, status = os.waitpid(pid, 0)
    assert waited >= 0.3, "the fork waited for the running checkpoint"
    assert os.waitstatus_to_exitcode(status) == 0
    assert cursor.execute("SELECT n FROM t ORDER BY n").fetchall() == [(1,), (2,)]


def test_a_writer_gives_up_with_a_clear_error_when_the_lock_is_held_past_its_deadline(sqlite_db, settings):
    from django.db import OperationalError

    path, make = sqlite_db
    settings.TASKCENTER_SQLITE_LOCK_TIMEOUT = 0.5
    alias = make(busy_timeout=0.1)
    connections[alias].cursor().execute("CREATE TABLE t (who TEXT)")
    connections[alias].close()
    holder = backend.WriterLock(f"{path}-writer.lock", timeout=5)
    holder.acquire()  # another holder that never lets go in time (its own open file: like a process)

    def writer():
        try:
            connections[alias].cursor().execute("INSERT INTO t VALUES ('late')")
        finally:
            connections[alias].close()

    thread, outcome = _in_thread(writer)
    thread.join(10)
    assert not thread.is_alive(), "the writer waited past its deadline"
    assert isinstance(outcome[0], OperationalError) and "SQLite write lock" in str(outcome[0])
    holder.release()

    def writer_after():
        with transaction.atomic(using=alias):
            connections[alias].cursor().execute("INSERT INTO t VALUES ('after')")
        rows = connections[alias].cursor().execute("SELECT who FROM t").fetchall()
        connections[alias].close()
        return rows

    thread, outcome = _in_thread(writer_after)
    thread.join(10)
    assert outcome == [[("after",)]], "once the lock is free, writing works again; the late write never happened"
    holder.close()


class _Clock:
    """``time.time()`` and ``time.monotonic()`` of the backend, moved on by the test."""

    def __init__(self):
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    found = _Clock()
    monkeypatch.setattr(backend, "time", found)
    return found


def _hold(lock, clock, seconds: float, *, after: float = 0.0) -> None:
    clock.now += after
    lock.acquire()
    clock.now += seconds
    lock.release()


def _unwritable(lock) -> tuple[float, float]:
    lock.acquire()
    try:
        return lock.unwritable()
    finally:
        lock.release()


def test_long_holds_back_to_back_are_one_period_the_database_could_not_be_written(tmp_path, clock):
    """An import holds the write lock for minutes and another long transaction follows at once: a
    writer queued behind both could not write for the whole time, not only during the last one."""
    lock = backend.WriterLock(str(tmp_path / "db.sqlite3-writer.lock"), timeout=5)
    began = clock.now
    _hold(lock, clock, 190.0)
    _hold(lock, clock, 0.6, after=0.01)
    _hold(lock, clock, 0.01, after=0.01)  # short holds between long ones record nothing
    _hold(lock, clock, 0.7, after=0.1)
    assert _unwritable(lock) == pytest.approx((began, clock.now), abs=1e-3)


def test_long_holds_apart_are_separate_periods_and_the_latest_is_known(tmp_path, clock):
    lock = backend.WriterLock(str(tmp_path / "db.sqlite3-writer.lock"), timeout=5)
    _hold(lock, clock, 190.0)
    _hold(lock, clock, 0.6, after=5.0)
    assert _unwritable(lock) == pytest.approx((clock.now - 0.6, clock.now), abs=1e-3)


def test_a_long_wait_for_a_hold_nobody_recorded_has_no_known_start(tmp_path, clock):
    """Another program (or a process that died) held the lock without recording it: the waiter
    knows when the period ended, not when it began."""
    import fcntl

    path = str(tmp_path / "db.sqlite3-writer.lock")
    lock = backend.WriterLock(path, timeout=600)
    _hold(lock, clock, 3.0)  # an earlier, recorded period
    clock.now += 1.0
    other = os.open(path, os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    thread, outcome = _in_thread(lambda: (lock.acquire(), lock.unwritable())[1])
    wait_for(lambda: any(t.name == "sqlite-writer-lock" for t in threading.enumerate()), message="the wait")
    clock.now += 200.0
    fcntl.flock(other, fcntl.LOCK_UN)
    os.close(other)
    thread.join(10)
    assert outcome == [(0.0, clock.now)]
    lock.close()


@pytest.fixture
def no_other_watchdog(request, transactional_db):
    """The suite's cluster halted during the test (``no_cluster``): its watchdog loop, which
    did not wait long for the lock, would rightly count the test's task lost at any moment."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the write lock is SQLite's")
    request.getfixturevalue("no_cluster")


def test_the_watchdog_decides_later_after_a_long_wait_for_a_hold_nobody_recorded(no_other_watchdog, clock):
    """A task's heartbeat looks stale, but the watchdog itself just waited long for the write lock
    and nobody recorded since when it was held: it cannot tell how long heartbeats could not be
    written, so the task counts as lost at a later sweep, not at this one."""
    import fcntl
    import uuid
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from tasks.models import Task
    from tasks.runtime.watchdog import sweep

    clock.now = time.time()
    task = Task.objects.create(
        task_type="canary",
        status="processing",
        execution_id=uuid.uuid4(),
        heartbeat_at=timezone.now() - timedelta(minutes=5),
        worker="elsewhere:1",
    )
    other = os.open(f"{connection.settings_dict['NAME']}-writer.lock", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)

    def sweep_and_close():
        try:
            return sweep()
        finally:
            connection.close()

    thread, outcome = _in_thread(sweep_and_close)
    try:
        wait_for(lambda: any(t.name == "sqlite-writer-lock" for t in threading.enumerate()), message="the wait")
        clock.now += 200.0
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    thread.join(30)
    assert outcome == [{"worker_lost": 0, "released": 0, "enqueued": 0}]
    task.refresh_from_db()
    assert (task.status, task.error_category) == ("processing", None)
