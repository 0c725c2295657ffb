"""Every write to a task goes through here: the state machine and the task services.

Views, admin actions, management commands and the worker all call these functions; none
re-implements a check. Each public service checks the actor's permission itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from batches.models import Batch
from taskcenter.errors import Conflict, IllegalTransition, InvalidInput, NotFound, PermissionDenied
from tasks.actors import SYSTEM, Actor
from tasks.audit import audit, audit_entry, change_line
from tasks.fastinsert import insert_statements, write
from tasks.models import Task, TaskLog, TaskStage
from tasks.runtime.queue import enqueue_on_commit, sender
from tasks.runtime.registry import get_job_type, job_types
from tasks.states import ACTIVE_STATUSES, FINISHED_STATUSES, USER_TRIGGERS, TaskStatus, Trigger, is_legal

#: How often a compare-and-set is retried when another writer changed the status in between.
_CAS_ROUNDS = 8


class StaleExecution(Conflict):
    """The execution_id fencing token no longer matches: another execution owns the task."""


def transition(
    task_id,
    target: str,
    *,
    action: str,
    actor: Actor = SYSTEM,
    execution_id: uuid.UUID | None = None,
    guard: Q | None = None,
    fields: dict | None = None,
    details: dict | None = None,
    assume: str | None = None,
) -> str:
    """Move task ``task_id`` to ``target`` atomically and audit it; return the previous status.

    The change is a compare-and-set ``UPDATE … WHERE status = <observed>`` (plus
    ``execution_id = …`` when a worker writes), never a read-modify-write, so concurrent writers
    on SQLite or PostgreSQL cannot produce an illegal sequence. The AuditLog row is written in
    the same transaction.

    Raises :class:`NotFound`, :class:`IllegalTransition` (the table forbids it; nothing changed)
    or :class:`StaleExecution` (``execution_id`` given and no longer the task's, or ``guard`` — an
    extra condition on the row — does not hold).

    ``assume`` is the status the caller believes the task has (a worker knows it holds a
    processing task): the first compare-and-set is tried without reading the row first, which
    saves a query on the hot path; the row is read only when that guess fails.
    """
    task_id = parse_task_id(task_id)
    now = timezone.now()
    updates = dict(fields or {})
    updates["status"] = target
    updates["updated_at"] = now
    guess = assume if assume is not None and is_legal(assume, target) else None
    for _ in range(_CAS_ROUNDS):
        if guess is not None:
            current, guess, guessed = guess, None, True
        else:
            guessed = False
            row = Task.objects.filter(pk=task_id).values_list("status", "execution_id").first()
            if row is None:
                raise NotFound(f"task {task_id} not found")
            current, current_execution = row
            if execution_id is not None and current_execution != execution_id:
                raise StaleExecution(f"task {task_id} is no longer held by execution {execution_id}")
        if not is_legal(current, target):
            raise IllegalTransition(
                f"task {task_id} cannot go from {current} to {target}", current=current, target=target
            )
        guarded = Task.objects.filter(pk=task_id, status=current)
        if execution_id is not None:
            guarded = guarded.filter(execution_id=execution_id)
        if guard is not None:
            guarded = guarded.filter(guard)
        # No savepoint when nested (the worker's completion): nothing here is caught and retried
        # inside the caller's transaction, and a savepoint costs two statements on the hot path.
        with transaction.atomic(savepoint=False):
            if guarded.update(**updates):
                audit(
                    actor=actor,
                    action=action,
                    target_type="task",
                    target_id=task_id,
                    from_status=current,
                    to_status=target,
                    details=details,
                )
                return current
        if guessed:
            continue  # the guess was wrong or the row moved: read it and decide
        if guard is not None and not Task.objects.filter(guard, pk=task_id, status=current).exists():
            raise StaleExecution(f"task {task_id} does not meet the condition for {action}")
        # Somebody else changed the row between our read and our update: look again.
    raise Conflict(f"task {task_id} is changing too fast; try again")


def parse_task_id(task_id) -> uuid.UUID:
    """A task id as a UUID; anything that is not one names no task (:class:`NotFound`)."""
    if isinstance(task_id, uuid.UUID):
        return task_id
    try:
        return uuid.UUID(str(task_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"task {task_id} not found") from None


def _get(task_id) -> Task:
    try:
        return Task.objects.select_related("batch").get(pk=parse_task_id(task_id))
    except Task.DoesNotExist:
        raise NotFound(f"task {task_id} not found") from None


# --- creating ---------------------------------------------------------------------------------


def task_create(
    *,
    actor: Actor,
    task_type: str,
    params: dict | None = None,
    batch=None,
    trigger: str = Trigger.API,
    check_permission: bool = True,
) -> Task:
    """Create a pending task of ``task_type`` with its stages and enqueue it after commit.

    ``params`` are validated against the type's schema (:class:`InvalidInput` names bad fields).
    A type registered with ``user_startable=False`` is refused (:class:`InvalidInput` naming
    ``task_type``) when a user asks for it (``trigger`` API or admin); schedules and code start it.
    """
    if check_permission:
        actor.require("tasks.add_task")
    job = get_job_type(task_type)
    if trigger in USER_TRIGGERS and not job.user_startable:
        raise InvalidInput(
            f"task type {job.name!r} is started by its schedule, not by users",
            errors={"task_type": [f"Task type {job.name!r} cannot be started by users."]},
        )
    if check_permission:
        actor.require(*job.permissions)
    clean_params = job.validate_params(params)
    return _create_task(actor=actor, job=job, params=clean_params, batch=batch, trigger=trigger)


def _create_task(*, actor: Actor, job, params: dict, batch, trigger: str) -> Task:
    task = Task(
        task_type=job.name,
        params=params,
        batch=batch,
        trigger=trigger,
        max_attempts=job.max_attempts,
        created_by=actor.user,
        enqueued_at=timezone.now(),  # handed over with this transaction (its message right after it)
    )
    stages = [
        TaskStage(task=task, name=name, position=index, weight=weight)
        for index, (name, weight) in enumerate(job.stage_weights())
    ]
    entry = audit_entry(
        actor=actor,
        action="task.create",
        target_type="task",
        target_id=task.pk,
        to_status=TaskStatus.PENDING,
        details={"task_type": job.name, "batch_code": batch.batch_code if batch else None, "trigger": trigger},
    )
    # Everything is prepared before the transaction: on SQLite it holds the database's only
    # write lock, so it should last as long as the statements and no longer.
    rows = insert_statements([task]) + insert_statements(stages) + insert_statements([entry])
    after_commit = [change_line(entry), sender(task.pk, timeout_seconds=job.timeout_seconds)]
    write(rows[0], rows[1:], after_commit=after_commit)
    return task


def task_update_params(*, actor: Actor, task_id, params: dict) -> Task:
    """Replace a pending task's params (seed 003: only while pending; else :class:`Conflict`).

    A pending task that already ran part of its work (resumed or retried, with a checkpoint) keeps
    its params too: it continues from that checkpoint, which was made with them.
    """
    actor.require("tasks.change_task")
    task = _get(task_id)
    job = _job_for(actor, task)
    if job.params_from_batch and task.batch_id is not None:
        raise Conflict(
            f"task {task.pk} runs its batch's config; change the batch instead (cancel the task, update the"
            " batch, start it again)"
        )
    clean = job.validate_params(params)
    with transaction.atomic():
        changed = Task.objects.filter(pk=task.pk, status=TaskStatus.PENDING, checkpoint__isnull=True).update(
            params=clean, updated_at=timezone.now()
        )
        if not changed:
            current = Task.objects.filter(pk=task.pk).values_list("status", "checkpoint").first()
            if current is not None and current[0] == TaskStatus.PENDING:
                raise Conflict(
                    f"task {task.pk} continues from a checkpoint made with its params, so they cannot change;"
                    " cancel it and create a new task instead"
                )
            raise Conflict(f"task {task.pk} is {current and current[0]}; only pending tasks can be changed")
        audit(actor=actor, action="task.update", target_type="task", target_id=task.pk, details={"params": clean})
    task.refresh_from_db()
    return task


def _job_for(actor: Actor, task: Task):
    """The task's job type, after checking the actor holds what starting that type needs: whoever
    may resume, retry or re-parameterise a task sets that job running again."""
    job = get_job_type(task.task_type)
    actor.require(*job.permissions)
    return job


# --- steering ---------------------------------------------------------------------------------


def task_cancel(*, actor: Actor, task_id) -> str:
    """pending / processing / paused → cancelled. A running worker stops at its next check.

    Returns the previous status; :class:`IllegalTransition` for a finished task.
    """
    actor.require("tasks.cancel_task")
    return transition(
        task_id,
        TaskStatus.CANCELLED,
        action="task.cancel",
        actor=actor,
        fields={"completed_at": timezone.now(), "next_attempt_at": None},
    )


def task_pause(*, actor: Actor, task_id) -> str:
    """processing → paused. The worker saves its checkpoint at its next check and frees its slot."""
    actor.require("tasks.pause_task")
    return transition(task_id, TaskStatus.PAUSED, action="task.pause", actor=actor)


def task_resume(*, actor: Actor, task_id) -> str:
    """paused → pending, re-queued; the job continues from its checkpoint."""
    actor.require("tasks.pause_task")
    task = _get(task_id)
    job = _job_for(actor, task)
    with transaction.atomic():
        previous = transition(
            task.pk,
            TaskStatus.PENDING,
            action="task.resume",
            actor=actor,
            # execution_id stays: the paused execution clears it when it has saved its checkpoint,
            # and only then can the next execution claim the task (no step runs twice).
            fields={"next_attempt_at": None, "enqueued_at": timezone.now()},
        )
        enqueue_on_commit(task.pk, timeout_seconds=job.timeout_seconds)
    return previous


def task_retry(*, actor: Actor, task_id) -> str:
    """failed / cancelled → pending with ``attempt`` + 1; continues from its checkpoint."""
    actor.require("tasks.retry_task")
    task = _get(task_id)
    job = _job_for(actor, task)
    with transaction.atomic():
        if task.batch_id is not None:
            # The batch's row lock, as starting a batch takes it: the two cannot both succeed.
            refuse_a_second_active_task(Batch.objects.select_for_update().get(pk=task.batch_id), excluding=task.pk)
        previous = transition(
            task.pk,
            TaskStatus.PENDING,
            action="task.retry",
            actor=actor,
            fields={
                "attempt": F("attempt") + 1,
                # A user's retry is one more attempt even past the automatic budget.
                "max_attempts": Greatest(F("max_attempts"), F("attempt") + 1),
                "trigger": Trigger.RETRY,
                "error_message": "",
                "error_category": None,
                "result": None,
                "completed_at": None,
                "next_attempt_at": None,
                "enqueued_at": timezone.now(),
                # If this run fails for good too, that is a new failure: alert again.
                "alerted_at": None,
            },
        )
        enqueue_on_commit(task.pk, timeout_seconds=job.timeout_seconds)
    return previous


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


#: ``cleanup(task_ids)`` functions that delete, a batch per transaction, what tasks own in bulk
#: (an import's staged rows); run before those tasks are deleted, whose cascade would otherwise
#: delete it all inside the deletion's transaction — on SQLite, holding the write lock as long.
BULK_DEPENDENTS: list[Callable[[list], object]] = []

#: Log lines deleted per statement before their task is: a task's own cascade deletes all of its
#: lines in one statement, and on SQLite that holds the only write lock as long (docs/api.md,
#: "Bulk limits").
LOG_ROWS_PER_TRANSACTION = 10_000


def delete_bulk_dependents(task_ids: list) -> int:
    """Delete what the tasks ``task_ids`` own in bulk — their log lines and the
    :data:`BULK_DEPENDENTS` — in transactions of bounded size, before the tasks are deleted.
    Returns the number of log lines deleted.

    Called for tasks that looked finished; a log line goes only while its task is finished (the
    check is part of each statement). Fewer lines than one transaction's worth are left to the
    tasks' own deletion."""
    logs = TaskLog.objects.filter(task_id__in=task_ids, task__status__in=FINISHED_STATUSES).order_by()
    deleted = 0
    while logs[LOG_ROWS_PER_TRANSACTION - 1 :].exists():
        # Its own transaction: the callers hold none, and delete() commits it alone.
        deleted += TaskLog.objects.filter(pk__in=logs.values("pk")[:LOG_ROWS_PER_TRANSACTION]).delete()[0]
    for cleanup in BULK_DEPENDENTS:
        cleanup(task_ids)
    return deleted


def task_delete(*, actor: Actor, task_id) -> str:
    """Delete a finished task with its stages and logs; :class:`Conflict` while it is active.

    A task cancelled a moment ago is deleted at once too, while its worker may still be winding
    down: every write of an execution is fenced on the task's row, so once the row is gone they
    all match nothing, and the worker, finding its task gone, removes the task's files.
    """
    actor.require("tasks.delete_task")
    task = _get(task_id)
    if task.status not in ACTIVE_STATUSES:
        # Deletable as far as one can tell now (checked again below, under the lock). Should a
        # retry slip in between, the job finds its staged rows gone and starts over.
        delete_bulk_dependents([task.pk])
    with transaction.atomic():
        # Row lock (PostgreSQL) / write lock (SQLite): nobody re-queues it between check and delete.
        status = Task.objects.select_for_update().filter(pk=task.pk).values_list("status", flat=True).first()
        if status is None:
            raise NotFound(f"task {task.pk} not found")
        if status in ACTIVE_STATUSES:
            raise Conflict(f"task {task.pk} is {status}; cancel it before deleting it")
        Task.objects.filter(pk=task.pk).delete()
        audit(
            actor=actor,
            action="task.delete",
            target_type="task",
            target_id=task.pk,
            from_status=status,
            details={"task_type": task.task_type, "batch_code": task.batch.batch_code if task.batch else None},
        )
    return status


# --- bulk -------------------------------------------------------------------------------------

MAX_BULK_IDS = 1000


def bulk_apply(ids: Iterable, operation, *, limit: int | None = MAX_BULK_IDS) -> dict:
    """Apply ``operation(id) -> status`` to each id; one bad item never stops the others.

    Returns the bulk-result shape of API.md (duplicated ids count once). ``operation`` may return
    a dict ``{"status": …, "task_id": …}`` to add the task it created.
    """
    unique = list(dict.fromkeys(str(item) for item in ids))
    if limit is not None and len(unique) > limit:
        raise InvalidInput(
            f"at most {MAX_BULK_IDS} ids per request", errors={"ids": [f"At most {MAX_BULK_IDS} ids per request."]}
        )
    results: dict[str, dict] = {}
    for item in unique:
        try:
            outcome = operation(item)
            if isinstance(outcome, dict):
                results[item] = {"success": True, "error": None, **outcome}
            else:
                results[item] = {"success": True, "status": outcome, "error": None}
        except (NotFound, Conflict, InvalidInput, PermissionDenied) as exc:
            # PermissionDenied here: the task's type needs more than the operation's permission.
            results[item] = {"success": False, "status": None, "error": exc.message}
    success = sum(1 for r in results.values() if r["success"])
    return {
        "total_count": len(unique),
        "success_count": success,
        "failed_count": len(unique) - success,
        "results": results,
    }


#: The steering operations that apply to many tasks at once (the admin's actions and the API's
#: bulk endpoints): the service, the permission it needs, and what a task becomes.
BULK_OPERATIONS = {
    "cancel": (task_cancel, "tasks.cancel_task", TaskStatus.CANCELLED),
    "pause": (task_pause, "tasks.pause_task", TaskStatus.PAUSED),
    "resume": (task_resume, "tasks.pause_task", TaskStatus.PENDING),
    "retry": (task_retry, "tasks.retry_task", TaskStatus.PENDING),
    "delete": (task_delete, "tasks.delete_task", "deleted"),
}


def tasks_apply_many(*, actor: Actor, operation: str, ids: Iterable, limit: int | None = MAX_BULK_IDS) -> dict:
    """Apply one of :data:`BULK_OPERATIONS` to each task; per-item results (a task the
    operation does not apply to — finished, unknown, still active for a delete — is refused,
    not fatal). Without the permission nothing is tried (:class:`PermissionDenied`)."""
    service, permission, becomes = BULK_OPERATIONS[operation]
    actor.require(permission)

    def apply(task_id):
        service(actor=actor, task_id=task_id)
        return becomes

    return bulk_apply(ids, apply, limit=limit)


#: Active tasks one cancel-by-type-or-all request cancels, oldest first: as many as a list of ids
#: may name. Each is a compare-and-set with its audit row in its own transaction; many more would
#: bring a request near a web worker's timeout and answer megabytes of per-item results.
MAX_CANCEL_PER_REQUEST = MAX_BULK_IDS


def tasks_cancel_many(*, actor: Actor, task_ids: Iterable | None = None, task_types: list | None = None) -> dict:
    """Cancel the tasks ``task_ids`` (at most :data:`MAX_BULK_IDS`) or, without ids, the oldest
    :data:`MAX_CANCEL_PER_REQUEST` active tasks of ``task_types`` (of every type when ``None``),
    each in its own transaction.

    Returns the bulk-result shape plus ``remaining``: how many active tasks of the selection are
    left (more than one request's worth, or started meanwhile); 0 for a list of ids. A caller
    cancelling by type or all calls again until it is 0. An unregistered type is
    :class:`InvalidInput` naming ``task_types`` (nothing cancelled).
    """
    if task_ids is not None:
        return {**tasks_apply_many(actor=actor, operation="cancel", ids=task_ids), "remaining": 0}
    actor.require("tasks.cancel_task")
    active = Task.objects.filter(status__in=ACTIVE_STATUSES)
    if task_types is not None:
        unknown = sorted(set(task_types) - {job.name for job in job_types()})
        if unknown:
            message = f"Unknown task type(s): {', '.join(unknown)}."
            raise InvalidInput(message, errors={"task_types": [message]})
        active = active.filter(task_type__in=task_types)
    oldest = list(active.order_by("created_at", "pk").values_list("pk", flat=True)[:MAX_CANCEL_PER_REQUEST])
    result = tasks_apply_many(actor=actor, operation="cancel", ids=oldest, limit=None)
    return {**result, "remaining": active.count()}
