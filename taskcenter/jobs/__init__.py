"""The public job API: what a plug-in app's ``jobs`` module uses to add job types to taskcenter.

- :func:`job` registers a function ``func(ctx)`` as a job type;
- :class:`JobContext` is what ``ctx`` offers the function;
- :class:`DataError`, :class:`ConfigurationError` and :class:`RetryableError` end a run as failed;
- :func:`taskcenter.jobs.testing.run_job` runs a job in a test the way a worker does.

This module and ``taskcenter.jobs.testing`` are the whole interface between a plug-in and
taskcenter; everything else of taskcenter (models, services, the registry, the worker, the API) is
private to it and may change without notice. The guide is ``docs/jobs.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rest_framework import serializers

from tasks.runtime.errors import ConfigurationError, DataError, RetryableError
from tasks.runtime.registry import register

__all__ = ["ConfigurationError", "DataError", "JobContext", "RetryableError", "job"]


def job(
    name: str,
    *,
    stages: Sequence[tuple[str, float]],
    params: type[serializers.Serializer] | None = None,
    description: str = "",
    timeout_seconds: int = 3600,
    max_attempts: int = 3,
    permissions: tuple[str, ...] = (),
    retry_backoff_base: float = 5.0,
    retry_backoff_max: float = 300.0,
    user_startable: bool = True,
) -> Callable[[Callable[[JobContext], Any]], Callable[[JobContext], Any]]:
    """Register the decorated ``func(ctx)`` as job type ``name``; returns ``func`` unchanged.

    - ``stages``: ``[(stage name, weight), …]`` in the order the job enters them; a stage's weight
      is its share of the task's progress. At least one.
    - ``params``: a DRF ``Serializer`` class validating the task's ``params`` (the API's 400 names
      each bad field; the API's task types list and OpenAPI document show its fields). ``None``:
      the type takes no parameters.
    - ``description``: shown in the task types list (default: the function's first docstring line).
    - ``timeout_seconds``: one execution's deadline, enforced by ``ctx.check()``.
    - ``max_attempts``: attempts in all, automatic retries included; a retry waits
      ``retry_backoff_base * 2**(attempt - 1)`` seconds, at most ``retry_backoff_max``, with jitter.
    - ``permissions``: Django permissions (``"app_label.codename"``) a user needs to start a task of
      this type, besides ``tasks.add_task``; resuming and retrying it need them too.
    - ``user_startable``: ``False`` for a type only code or a schedule starts.

    Raises ``ValueError`` when ``name`` is already registered or ``stages`` is empty.
    """
    return register(
        name,
        stages=stages,
        params=params,
        description=description,
        timeout_seconds=timeout_seconds,
        max_attempts=max_attempts,
        permissions=permissions,
        retry_backoff_base=retry_backoff_base,
        retry_backoff_max=retry_backoff_max,
        user_startable=user_startable,
    )


class JobContext(Protocol):
    """What a job function's ``ctx`` offers (for type hints: ``def run(ctx: JobContext)``).

    Progress, stages, log lines and the checkpoint are written together at most every
    ``TASKCENTER_FLUSH_INTERVAL`` (0.25 s); that write is also the task's heartbeat and the moment a
    cancel or pause reaches the job, so a job calls :meth:`check` (or :meth:`progress`, :meth:`log`)
    at least every second or so. A job that goes quiet for ``TASKCENTER_LEASE_SECONDS`` (60 s) is
    taken for a lost worker and retried.
    """

    #: The task's parameters, validated by the type's ``params`` serializer (defaults filled in).
    params: dict
    #: The task's id (a UUID), as the API and the admin show it.
    task_id: Any
    #: 1 on the first execution, one more on each retry (automatic or a user's); a resume keeps it.
    attempt: int

    @property
    def checkpoint(self) -> dict:
        """The last saved checkpoint — of an earlier execution too, after a pause, a retry or a lost
        worker — or ``{}`` on a first run."""

    def save_checkpoint(self, data: dict, *, flush: bool = False) -> None:
        """Remember ``data`` (a JSON object) as where a later execution continues; written with
        the next flush, at once with ``flush=True``, and always when the task is paused or cancelled."""

    def clear_checkpoint(self) -> None:
        """Forget the checkpoint: a later execution starts from the beginning."""

    def stage(self, name: str) -> None:
        """Enter stage ``name`` (one of the type's stages); the stages before it are completed.
        Calls :meth:`check`."""

    def progress(self, done: float, total: float) -> None:
        """Progress within the current stage, ``done`` of ``total``; the task's progress follows from
        the stage weights. Calls :meth:`check`."""

    def log(self, level: str, message: str, **data: Any) -> None:
        """Add a line to the task's log: ``level`` is ``debug``, ``info``, ``warn`` or ``error``;
        ``data`` (JSON-serialisable) is kept with it. Calls :meth:`check`."""

    def check(self) -> None:
        """Stop the job when it must: raises when the task was cancelled or paused, when the
        execution passed ``timeout_seconds`` or when another execution took the task over. These
        derive from ``BaseException``, not ``Exception``: let them through (``finally`` is fine)."""
