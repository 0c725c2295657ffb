"""Every write to a batch goes through here (create, update, delete, start, cancel)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from batches.models import Batch, batch_code_validator
from batches.sources import validate_batch_config
from taskcenter.errors import Conflict, InvalidInput, NotFound
from tasks import store
from tasks.actors import Actor
from tasks.audit import audit
from tasks.models import Task
from tasks.runtime.registry import get_job_type
from tasks.services import task_cancel, task_create
from tasks.states import ACTIVE_STATUSES, Trigger

#: The job type a batch runs.
STATISTICS_JOB = "statistics"
#: What starting a batch's statistics needs (the start endpoint, the admin, a batch schedule).
START_PERMISSIONS = ("tasks.start_task",)


def batch_get(batch_code: str) -> Batch:
    try:
        return Batch.objects.get(batch_code=batch_code)
    except Batch.DoesNotExist:
        raise NotFound(f"batch {batch_code} not found") from None


def _validate_code(batch_code) -> str:
    if not isinstance(batch_code, str):
        raise InvalidInput("batch_code must be a string", errors={"batch_code": ["Must be a string."]})
    try:
        batch_code_validator(batch_code)
    except Exception as exc:  # django ValidationError
        message = "; ".join(getattr(exc, "messages", [str(exc)]))
        raise InvalidInput(f"invalid batch_code: {message}", errors={"batch_code": [message]}) from None
    return batch_code


def active_task(batch: Batch) -> Task | None:
    return batch.tasks.filter(status__in=ACTIVE_STATUSES).order_by("-created_at").first()


def batch_create(*, actor: Actor, batch_code: str, data_source: str, config: dict, description: str = "") -> Batch:
    """Create a batch after validating its config against the data source.

    Raises :class:`InvalidInput` (bad code, unknown source/dimension/calculation) or
    :class:`Conflict` (the code exists).
    """
    actor.require("batches.add_batch")
    _validate_code(batch_code)
    clean_config = validate_batch_config(data_source, config)
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                batch_code=batch_code,
                description=description or "",
                data_source=data_source,
                config=clean_config,
                created_by=actor.user,
            )
            audit(
                actor=actor,
                action="batch.create",
                target_type="batch",
                target_id=batch_code,
                details={"data_source": data_source, "config": clean_config},
            )
    except IntegrityError:
        raise Conflict(
            f"batch {batch_code} already exists", errors={"batch_code": ["This batch code exists."]}
        ) from None
    return batch


def batch_update(*, actor: Actor, batch_code: str, changes: dict) -> Batch:
    """Change description / data_source / config; :class:`Conflict` while a task is active."""
    actor.require("batches.change_batch")
    if "batch_code" in changes and changes["batch_code"] != batch_code:
        raise InvalidInput("batch_code cannot be changed", errors={"batch_code": ["batch_code is immutable."]})
    with transaction.atomic():
        batch = _locked(batch_code)
        if active_task(batch) is not None:
            raise Conflict(f"batch {batch_code} has an active task; cancel it before editing")
        data_source = changes.get("data_source", batch.data_source)
        config = changes.get("config", batch.config)
        batch.config = validate_batch_config(data_source, config)
        batch.data_source = data_source
        if "description" in changes:
            batch.description = changes["description"] or ""
        batch.save()
        audit(
            actor=actor,
            action="batch.update",
            target_type="batch",
            target_id=batch_code,
            details={key: value for key, value in changes.items() if key != "batch_code"},
        )
    return batch


#: Tasks deleted per transaction when their batch is deleted, with their stages (their log lines
#: and staged rows go before, in chunks of their own): on SQLite a transaction holds the only
#: write lock, and a batch may have thousands of tasks.
TASKS_PER_TRANSACTION = 200


def batch_delete(*, actor: Actor, batch_code: str) -> None:
    """Delete a batch and its finished tasks (one cancelled a moment ago too, as
    :func:`tasks.services.task_delete`); :class:`Conflict` while a task is active. Deleting its
    tasks needs ``tasks.delete_task`` as well (a batch without tasks needs no more).

    The tasks go :data:`TASKS_PER_TRANSACTION` at a time, oldest first, each chunk in its own
    transaction with an audit row ``batch.delete_tasks`` (``deleted_tasks``); the last chunk goes
    with the batch and its ``batch.delete`` row, whose ``deleted_tasks`` counts them all (a batch
    of one chunk has only that row). A task started meanwhile stops the deletion with
    :class:`Conflict` (checked again under the lock before each chunk) and stays, as does the
    batch; the chunks deleted until then stay deleted, with their audit rows.
    """
    actor.require("batches.delete_batch")
    batch = batch_get(batch_code)
    deleted = 0
    while True:
        _refuse_to_delete_while_active(batch, deleted)
        chunk = list(batch.tasks.order_by("created_at", "pk").values_list("pk", flat=True)[:TASKS_PER_TRANSACTION])
        if chunk:
            actor.require("tasks.delete_task")
        store.delete_dependents(chunk)  # see tasks.services.task_delete
        with transaction.atomic():
            batch = _locked(batch_code)
            _refuse_to_delete_while_active(batch, deleted)
            count, _ = store.delete_finished(chunk)
            deleted += count
            last = not batch.tasks.exists()
            if last:
                batch.delete()
            audit(
                actor=actor,
                action="batch.delete" if last else "batch.delete_tasks",
                target_type="batch",
                target_id=batch_code,
                details={"deleted_tasks": deleted if last else count},
            )
        if last:
            return


def _refuse_to_delete_while_active(batch: Batch, deleted: int) -> None:
    if active_task(batch) is not None:
        already = f" ({deleted} of its finished tasks are deleted already)" if deleted else ""
        raise Conflict(f"batch {batch.batch_code} has an active task; cancel it before deleting{already}")


def batch_start(
    *, actor: Actor, batch_code: str, trigger: str = Trigger.API, priority: int = 0, run_after=None
) -> Task:
    """Create and enqueue a ``statistics`` task for the batch, with its config snapshotted (and
    ``priority``, ``run_after`` as :func:`tasks.services.task_create` takes them).

    :class:`Conflict` when the batch already has an active task.
    """
    actor.require(*START_PERMISSIONS)
    with transaction.atomic():
        batch = _locked_without_active_task(batch_code)
        return task_create(
            actor=actor,
            task_type=STATISTICS_JOB,
            params=_snapshot(batch),
            batch=batch,
            trigger=trigger,
            check_permission=False,  # start_task was checked above; add_task is not needed
            priority=priority,
            run_after=run_after,
        )


def batch_task_create(
    *, actor: Actor, batch_code: str, task_type: str, params: dict | None, priority: int = 0, run_after=None
) -> Task:
    """``POST /api/v1/tasks`` with a ``batch_code``: a task attached to the batch.

    As with :func:`batch_start`, a batch has at most one active task (:class:`Conflict`). A
    ``statistics`` task of a batch runs the batch's own config (what its results page shows):
    ``params`` may be left out, and params that differ from the batch's are refused
    (:class:`Conflict`) rather than silently computed under the batch's name.
    """
    actor.require("tasks.add_task")
    with transaction.atomic():
        batch = _locked_without_active_task(batch_code)
        job = get_job_type(task_type)
        if job.params_from_batch:
            snapshot = _snapshot(batch)
            if params and job.validate_params(params) != job.validate_params(snapshot):
                # Valid params, but not the batch's as it is now: a conflict with its state.
                raise Conflict(
                    f"batch {batch_code}'s statistics task runs the batch's config, which differs from these"
                    " params: leave params out, or change the batch first"
                )
            params = snapshot
        return task_create(
            actor=actor,
            task_type=task_type,
            params=params,
            batch=batch,
            trigger=Trigger.API,
            priority=priority,
            run_after=run_after,
        )


def batch_cancel(*, actor: Actor, batch_code: str) -> Task:
    """Cancel the batch's active task; :class:`Conflict` when it has none."""
    actor.require("tasks.cancel_task")
    batch = batch_get(batch_code)
    task = active_task(batch)
    if task is None:
        raise Conflict(f"batch {batch_code} has no active task")
    task_cancel(actor=actor, task_id=task.pk)
    task.refresh_from_db()
    return task


def refuse_a_second_active_task(batch: Batch, *, excluding=None) -> None:
    """A batch has at most one active task: :class:`Conflict` if one (other than ``excluding``)
    is active. The caller holds the batch's row lock (PostgreSQL; on SQLite its transaction holds
    the write lock), so "none active, then make one active" is atomic."""
    existing = (
        Task.objects.filter(batch_id=batch.pk, status__in=ACTIVE_STATUSES)
        .exclude(pk=excluding)
        .order_by("-created_at")
        .values_list("pk", "status")
        .first()
    )
    if existing is not None:
        raise Conflict(f"batch {batch.batch_code} already has an active task {existing[0]} ({existing[1]})")


def refuse_retry_while_batch_busy(task: Task) -> None:
    """A retried task of a batch becomes its active task: :class:`Conflict` while the batch has
    another. Takes the batch's row lock in the caller's transaction, as starting a batch does,
    so the two cannot both succeed."""
    if task.batch_id is not None:
        refuse_a_second_active_task(Batch.objects.select_for_update().get(pk=task.batch_id), excluding=task.pk)


def _locked_without_active_task(batch_code: str) -> Batch:
    """The batch, locked for the rest of the transaction; :class:`Conflict` if it has an active
    task: two operators starting the same batch get one task."""
    batch = _locked(batch_code)
    refuse_a_second_active_task(batch)
    return batch


def _snapshot(batch: Batch) -> dict:
    """The params of the batch's statistics task: its data source and config as they are now."""
    return {"data_source": batch.data_source, "config": validate_batch_config(batch.data_source, batch.config)}


def _locked(batch_code: str) -> Batch:
    try:
        return Batch.objects.select_for_update().get(batch_code=batch_code)
    except Batch.DoesNotExist:
        raise NotFound(f"batch {batch_code} not found") from None
