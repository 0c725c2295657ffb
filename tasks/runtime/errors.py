"""What a job raises to end its run, and what TaskContext.check() raises to stop one."""

from __future__ import annotations

from tasks.states import ErrorCategory


class JobError(Exception):
    """A job failure with a category; ``system`` failures are retried automatically."""

    category = ErrorCategory.SYSTEM


class RetryableError(JobError):
    """A transient failure: retried with backoff while attempts remain."""

    category = ErrorCategory.SYSTEM


class DataError(JobError):
    """The input data cannot be processed (empty selection, malformed rows): not retried."""

    category = ErrorCategory.DATA


class ConfigurationError(JobError):
    """The task's parameters or configuration are wrong: not retried."""

    category = ErrorCategory.CONFIG


class Interrupt(BaseException):
    """Raised by ``ctx.check()``: the job must stop now. A BaseException so ``except Exception``
    blocks in job code do not swallow it."""


class Cancelled(Interrupt):
    """A user cancelled the task."""


class Paused(Interrupt):
    """A user paused the task; its checkpoint is saved and its worker freed."""


class TimedOut(Interrupt):
    """The execution passed its job type's ``timeout_seconds``."""


class ClaimLost(Interrupt):
    """Another execution (or the watchdog) owns the task now; this one must stop writing."""
