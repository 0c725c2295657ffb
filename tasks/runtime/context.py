"""TaskContext: what a running job sees — params, stages, progress, logs, checkpoint, check().

Every write is fenced by the execution's ``execution_id`` and ``status = processing``: a worker
that lost its claim (cancelled, paused, timed out, taken over) finds its writes refused and is
stopped by the next :meth:`TaskContext.check`. Writes are batched: progress, logs and the
checkpoint reach the database at most every ``TASKCENTER_FLUSH_INTERVAL`` seconds (and at once on
stage changes), so a tight loop stays cheap while the API is never more than about half a second
behind.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

from tasks import store
from tasks.models import Task, TaskLog, TaskStage
from tasks.runtime.errors import Cancelled, ClaimLost, Paused, TimedOut
from tasks.runtime.registry import JobType
from tasks.states import LogLevel, StageStatus, TaskStatus

logger = logging.getLogger("taskcenter.jobs")

#: Logs kept in memory before a flush is forced, whatever the interval.
MAX_BUFFERED_LOGS = 500
LEVEL_NAMES = {member.label: member.value for member in LogLevel}
LEVEL_NAMES["warning"] = LogLevel.WARN


class TaskContext:
    """Passed to a job function as its only argument."""

    def __init__(self, *, task: Task, job: JobType, execution_id: uuid.UUID):
        self.task_id = task.pk
        self.task_type = job.name
        self.params: dict = dict(task.params or {})
        self.attempt: int = task.attempt
        self.execution_id = execution_id
        self.job = job
        self._checkpoint: dict | None = task.checkpoint
        self._checkpoint_dirty = False
        self._weights = dict(job.stage_weights())
        self._order = [name for name, _ in job.stage_weights()]
        self._stage: str | None = None
        self._stage_fraction = 0.0
        self._completed_stages: set[str] = set()
        self._stage_dirty: set[str] = set()
        self._logs: list[TaskLog] = []
        self.completion_hooks: list[Callable[[], None]] = []
        self._interval = float(settings.TASKCENTER_FLUSH_INTERVAL)
        self._last_flush = time.monotonic()
        self._deadline = time.monotonic() + job.timeout_seconds
        self.progress_value = float(task.progress or 0.0)
        # Stages finished by an earlier execution stay finished (a first run has none).
        if task.checkpoint is not None or task.attempt > 1:
            self._completed_stages.update(
                TaskStage.objects.filter(task_id=task.pk, status=StageStatus.COMPLETED).values_list("name", flat=True)
            )

    # --- checkpoint ---------------------------------------------------------------------------

    @property
    def checkpoint(self) -> dict:
        """The last saved checkpoint (from an earlier execution too), or ``{}``."""
        return dict(self._checkpoint or {})

    def save_checkpoint(self, data: dict, *, flush: bool = False) -> None:
        """Remember ``data`` as the point to continue from; written with the next flush.

        ``flush=True`` writes it now (use at stage boundaries). On pause or cancel the latest
        checkpoint is always written before the worker lets go of the task.
        """
        self._checkpoint = dict(data)
        self._checkpoint_dirty = True
        if flush:
            self.flush()

    def on_complete(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` in the transaction that records this execution's completion, after its
        compare-and-set succeeded: what it writes becomes visible with the result, or never (a
        cancel or pause that got there first, a failure). For work the job staged out of sight
        — an import's rows — that must appear only if the task completes. A hook that raises a
        :class:`~tasks.runtime.errors.JobError` refuses the completion: the run fails with it."""
        self.completion_hooks.append(hook)

    def clear_checkpoint(self) -> None:
        """Forget the checkpoint (the next run starts from the beginning); written with the next
        flush, and on pause or cancel."""
        self._checkpoint = None
        self._checkpoint_dirty = True

    # --- stages and progress ------------------------------------------------------------------

    def stage(self, name: str) -> None:
        """Enter stage ``name``: earlier stages are completed; written with the next flush."""
        if name not in self._weights:
            raise ValueError(f"job {self.task_type!r} has no stage {name!r}")
        index = self._order.index(name)
        for earlier in self._order[:index]:
            if earlier not in self._completed_stages:
                self._completed_stages.add(earlier)
                self._stage_dirty.add(earlier)
        self._stage = name
        self._stage_fraction = 0.0
        self._stage_dirty.add(name)
        self._recompute()
        self.check()

    def progress(self, done: float, total: float) -> None:
        """Progress inside the current stage (``done`` of ``total``); calls :meth:`check`."""
        if self._stage is None:
            self._stage = self._order[0]
            self._stage_dirty.add(self._stage)
        fraction = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        self._stage_fraction = fraction
        self._stage_dirty.add(self._stage)
        self._recompute()
        self.check()

    def _recompute(self) -> None:
        done = sum(self._weights[name] for name in self._completed_stages if name != self._stage)
        current = self._weights.get(self._stage, 0.0) * self._stage_fraction if self._stage else 0.0
        self.progress_value = round(min(100.0, 100.0 * (done + current)), 2)

    # --- logs ---------------------------------------------------------------------------------

    def log(self, level: str, message: str, **data: Any) -> None:
        """Add a log line (``debug``, ``info``, ``warn``, ``error``); calls :meth:`check`."""
        value = LEVEL_NAMES.get(level)
        if value is None:
            raise ValueError(f"unknown log level {level!r}")
        self._logs.append(
            TaskLog(task_id=self.task_id, timestamp=timezone.now(), level=value, message=message, data=data or None)
        )
        logger.log(value, "task %s: %s", self.task_id, message)
        if len(self._logs) >= MAX_BUFFERED_LOGS:
            self.flush()
        else:
            self.check()

    # --- stopping -----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`Cancelled`, :class:`Paused`, :class:`TimedOut` or :class:`ClaimLost`
        when the job must stop. Cheap: it only touches the database once per flush interval."""
        now = time.monotonic()
        if now >= self._deadline:
            raise TimedOut(f"timed out after {self.job.timeout_seconds} s")
        if now - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Write progress, heartbeat, stage changes, logs and the checkpoint — if still ours."""
        self._last_flush = time.monotonic()
        stages = {}
        for name in self._stage_dirty:
            if name in self._completed_stages and name != self._stage:
                stages[name] = (StageStatus.COMPLETED, 100.0)
            else:
                stages[name] = (StageStatus.PROCESSING, round(100.0 * self._stage_fraction, 2))
        held = store.flush(
            self.task_id,
            self.execution_id,
            progress=self.progress_value,
            stages=stages,
            logs=self._logs,
            checkpoint=self._checkpoint if self._checkpoint_dirty else store.KEEP,
        )
        if not held:
            self._raise_why_not_held()
        self._stage_dirty.clear()
        self._logs = []
        self._checkpoint_dirty = False

    def _raise_why_not_held(self) -> None:
        row = Task.objects.filter(pk=self.task_id).values_list("status", "execution_id").first()
        if row is None or row[1] != self.execution_id:
            raise ClaimLost("the task is no longer held by this execution")
        status = row[0]
        if status == TaskStatus.CANCELLED:
            raise Cancelled("cancelled by a user")
        if status in (TaskStatus.PAUSED, TaskStatus.PENDING):
            # PENDING: paused and already resumed before this worker noticed; it still pauses
            # here so that the next execution continues from this one's checkpoint.
            raise Paused("paused by a user")
        raise ClaimLost(f"the task is {status}")

    # --- used by the worker when the run ends -------------------------------------------------

    def pending_logs(self) -> list[TaskLog]:
        logs, self._logs = self._logs, []
        return logs

    def restore_logs(self, logs: list[TaskLog]) -> None:
        """Put back logs taken by :meth:`pending_logs` that could not be written."""
        self._logs = logs + self._logs

    @property
    def checkpoint_data(self) -> dict | None:
        return self._checkpoint
