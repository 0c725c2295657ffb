"""Users' actions on tasks — create, change, cancel, pause, resume, retry, delete, in bulk too —
and on schedules (create, change, enable, disable, delete), and on the queue of a task type (pause,
resume, concurrency limit).

Views, admin actions and management commands call these functions; none re-implements a check.
Each checks the actor's permission and the rules of the action itself, and writes through the
task store (:mod:`tasks.store`), which audits every status change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from taskcenter.errors import Conflict, InvalidInput, NotFound, PermissionDenied, ServiceError
from tasks import store
from tasks.actors import Actor
from tasks.audit import audit, bulk_operation
from tasks.models import Schedule, Task, TaskType
from tasks.runtime.registry import get_job_type, job_types, owner_creator, owner_starter, requeue_rules
from tasks.runtime.schedules import check_cron, next_run
from tasks.runtime.watchdog import hand_over_waiting
from tasks.states import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    INTERVAL_SECONDS_MAX,
    INTERVAL_SECONDS_MIN,
    MAX_CONCURRENCY_MAX,
    MAX_CONCURRENCY_MIN,
    PRIORITY_DEFAULT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    RESUME_FROM,
    RETRY_FROM,
    USER_TRIGGERS,
    TaskStatus,
    Trigger,
    allowed_from,
)
from tasks.store import parse_task_id


def _get(task_id) -> Task:
    """The task ``task_id`` names (:class:`NotFound`), or ``task_id`` itself when it is a task
    the caller has just read (a bulk action reads its tasks a chunk at a time)."""
    if isinstance(task_id, Task):
        return task_id
    try:
        return Task.objects.select_related("batch").get(pk=parse_task_id(task_id))
    except Task.DoesNotExist:
        raise NotFound(f"task {task_id} not found") from None


def _seen(task_id) -> tuple:
    """``task_id`` as the store takes it, and the status of a task the caller has just read (the
    store's compare-and-set tries that status first, without reading the row again)."""
    if isinstance(task_id, Task):
        return task_id.pk, task_id.status
    return task_id, None


# --- creating ---------------------------------------------------------------------------------


def task_create(
    *,
    actor: Actor,
    task_type: str,
    params: dict | None = None,
    batch=None,
    trigger: str = Trigger.API,
    check_permission: bool = True,
    priority: int = PRIORITY_DEFAULT,
    run_after=None,
) -> Task:
    """Create a pending task of ``task_type`` with its stages, handed over to the workers after commit.

    ``params`` are validated against the type's schema (:class:`InvalidInput` names bad fields).
    ``priority`` (``PRIORITY_MIN``…``PRIORITY_MAX``, higher first) and ``run_after`` (an aware
    datetime: not claimed before) are checked too.
    A type registered with ``user_startable=False`` is refused (:class:`InvalidInput` naming
    ``task_type``) when a user asks for it (``trigger`` API or admin); schedules and code start it.
    """
    job, clean_params = _startable(actor, task_type, params, trigger=trigger, check_permission=check_permission)
    _check_scheduling(priority, run_after)
    return store.create(
        job=job, params=clean_params, actor=actor, trigger=trigger, batch=batch, priority=priority, run_after=run_after
    )


def _startable(actor: Actor, task_type: str, params, *, trigger: str, check_permission: bool = True):
    """The job type and validated params of a task ``actor`` may create with ``trigger``
    (:func:`task_create`'s checks: permissions, a type users may start, params)."""
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
    return job, job.validate_params(params)


def _check_scheduling(priority, run_after) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidInput(
            f"priority must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}",
            errors={"priority": [f"A whole number from {PRIORITY_MIN} to {PRIORITY_MAX} is required."]},
        )
    if run_after is not None and (not isinstance(run_after, datetime) or timezone.is_naive(run_after)):
        raise InvalidInput(
            "run_after must be a date and time with a time zone",
            errors={"run_after": ["A date and time with a time zone is required."]},
        )


def task_create_owned(
    *,
    actor: Actor,
    owner_field: str,
    owner,
    task_type: str,
    params: dict | None,
    priority: int = PRIORITY_DEFAULT,
    run_after=None,
) -> Task:
    """A task that belongs to a row of a domain app — ``owner_field`` ``batch_code``: a batch —
    created by that app's rules (its ``register_owner`` function, which takes the arguments of
    :func:`task_create`); :class:`InvalidInput` when no installed app owns tasks by ``owner_field``."""
    create = owner_creator(owner_field)
    if create is None:
        raise InvalidInput(f"{owner_field} names nothing here", errors={owner_field: ["Not supported."]})
    return create(
        actor=actor, **{owner_field: owner}, task_type=task_type, params=params, priority=priority, run_after=run_after
    )


def task_start_owned(
    *, actor: Actor, owner_field: str, owner, trigger: str = Trigger.API, priority: int = PRIORITY_DEFAULT
) -> Task:
    """Start the job of the row ``owner`` names — ``owner_field`` ``batch_code``: the batch's
    statistics, as its start endpoint does — by that app's rules (its ``register_owner_start``
    function); :class:`InvalidInput` when no installed app starts rows by ``owner_field``."""
    starter = owner_starter(owner_field)
    if starter is None:
        raise InvalidInput(f"{owner_field} names nothing here", errors={owner_field: ["Not supported."]})
    start, _ = starter
    return start(actor=actor, **{owner_field: owner}, trigger=trigger, priority=priority)


def task_update_params(*, actor: Actor, task_id, params: dict) -> Task:
    """Replace a pending task's params (only while pending; else :class:`Conflict`).

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
    store.set_params(task.pk, job.validate_params(params), actor=actor)
    task.refresh_from_db()
    return task


def _job_for(actor: Actor, task: Task):
    """The task's job type, after checking the actor holds what starting that type needs: whoever
    may resume, retry or re-parameterise a task sets that job running again."""
    return _job_of_type(actor, task.task_type)


def _job_of_type(actor: Actor, task_type: str):
    """:func:`_job_for` by the type's name: :class:`InvalidInput` for a type no longer
    registered, :class:`PermissionDenied` when the actor lacks what starting it needs."""
    job = get_job_type(task_type)
    actor.require(*job.permissions)
    return job


# --- steering ---------------------------------------------------------------------------------


def task_cancel(*, actor: Actor, task_id) -> str:
    """pending / processing / paused → cancelled. A running worker stops at its next check.

    Returns the previous status; :class:`IllegalTransition` for a finished task.
    """
    actor.require("tasks.cancel_task")
    task_id, seen = _seen(task_id)
    return store.transition(
        task_id,
        TaskStatus.CANCELLED,
        action="task.cancel",
        actor=actor,
        fields={"completed_at": timezone.now(), "next_attempt_at": None},
        assume=seen,
    )


def task_pause(*, actor: Actor, task_id) -> str:
    """processing → paused. The worker saves its checkpoint at its next check and frees its slot."""
    actor.require("tasks.pause_task")
    task_id, seen = _seen(task_id)
    return store.transition(task_id, TaskStatus.PAUSED, action="task.pause", actor=actor, assume=seen)


def task_resume(*, actor: Actor, task_id) -> str:
    """paused → pending, re-queued; the job continues from its checkpoint."""
    actor.require("tasks.pause_task")
    task = _get(task_id)
    _job_for(actor, task)
    # The execution_id stays: the paused execution clears it when it has saved its checkpoint,
    # and only then can the next execution claim the task (no step runs twice).
    return store.requeue(
        task.pk, action="task.resume", actor=actor, sources=RESUME_FROM, assume=task.status, task_type=task.task_type
    )


def task_retry(*, actor: Actor, task_id) -> str:
    """failed / cancelled → pending with ``attempt`` + 1; continues from its checkpoint."""
    actor.require("tasks.retry_task")
    task = _get(task_id)
    _job_for(actor, task)
    with transaction.atomic():
        for rule in requeue_rules():
            rule(task)  # a batch's: it has at most one active task
        return store.requeue(
            task.pk,
            action="task.retry",
            actor=actor,
            sources=RETRY_FROM,
            assume=task.status,
            task_type=task.task_type,
            fields={
                "attempt": F("attempt") + 1,
                # A user's retry is one more attempt even past the automatic budget.
                "max_attempts": Greatest(F("max_attempts"), F("attempt") + 1),
                "trigger": Trigger.RETRY,
                "error_message": "",
                "error_category": None,
                "result": None,
                "completed_at": None,
                # If this run fails for good too, that is a new failure: alert again.
                "alerted_at": None,
            },
        )


def task_delete(*, actor: Actor, task_id) -> str:
    """Delete a finished task with its stages and logs; :class:`Conflict` while it is active.

    A task cancelled a moment ago is deleted at once too, while its worker may still be winding
    down: every write of an execution is fenced on the task's row, so once the row is gone they
    all match nothing, and the worker, finding its task gone, removes the task's files.
    """
    actor.require("tasks.delete_task")
    task = _get(task_id)
    outcome = _delete_tasks(actor, [task])[task.pk]
    if isinstance(outcome, ServiceError):
        raise outcome
    return outcome


def _delete_tasks(actor: Actor, tasks: list[Task]) -> dict:
    """Delete those of ``tasks`` (read with their batch) that are finished, in one transaction,
    each with its audit row: per task id the status it had, or why it was not deleted
    (:class:`NotFound`, :class:`Conflict` while active)."""
    looked_finished = [task.pk for task in tasks if task.status not in ACTIVE_STATUSES]
    if looked_finished:
        # Deletable as far as one can tell now (checked again below, under the lock). Should a
        # retry slip in between, the job finds its staged rows gone and starts over.
        store.delete_dependents(looked_finished)
    outcomes: dict = {}
    with transaction.atomic():
        # Row locks (PostgreSQL) / write lock (SQLite): nobody re-queues them between check and delete.
        statuses = dict(
            Task.objects.select_for_update().filter(pk__in=[task.pk for task in tasks]).values_list("pk", "status")
        )
        for task in tasks:
            status = statuses.get(task.pk)
            if status is None:
                outcomes[task.pk] = NotFound(f"task {task.pk} not found")
            elif status in ACTIVE_STATUSES:
                outcomes[task.pk] = Conflict(f"task {task.pk} is {status}; cancel it before deleting it")
            else:
                outcomes[task.pk] = status
        deleted = [task for task in tasks if not isinstance(outcomes[task.pk], ServiceError)]
        store.delete_finished([task.pk for task in deleted])
        for task in deleted:
            audit(
                actor=actor,
                action="task.delete",
                target_type="task",
                target_id=task.pk,
                from_status=outcomes[task.pk],
                details={"task_type": task.task_type, "batch_code": task.batch.batch_code if task.batch else None},
            )
    return outcomes


# --- bulk -------------------------------------------------------------------------------------

MAX_BULK_IDS = 1000


def bulk_apply(ids: Iterable, operation, *, limit: int | None = MAX_BULK_IDS) -> dict:
    """Apply ``operation(id) -> status`` to each id; one bad item never stops the others.

    Returns the bulk result: counts and a result per id (duplicated ids count once). ``operation`` may return
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
            results[item] = _bulk_item(operation(item))
        except (NotFound, Conflict, InvalidInput, PermissionDenied) as exc:
            # PermissionDenied here: the task's type needs more than the operation's permission.
            results[item] = _bulk_item(exc)
    return _bulk_result(results)


def _bulk_item(outcome) -> dict:
    """One item's result: what it became (a status, or a dict with more), or why it was refused."""
    if isinstance(outcome, ServiceError):
        return {"success": False, "status": None, "error": outcome.message}
    if isinstance(outcome, dict):
        return {"success": True, "error": None, **outcome}
    return {"success": True, "status": outcome, "error": None}


def _bulk_result(results: dict[str, dict]) -> dict:
    success = sum(1 for r in results.values() if r["success"])
    return {
        "total_count": len(results),
        "success_count": success,
        "failed_count": len(results) - success,
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


# --- schedules --------------------------------------------------------------------------------

#: What a user sets on a schedule (besides ``enabled``), as the API names them.
SCHEDULE_FIELDS = ("name", "task_type", "params", "batch_code", "priority", "cron", "interval_seconds")
SCHEDULE_NAME_MAX = 100


def _schedule_pk(schedule_id) -> int:
    try:
        pk = int(str(schedule_id))
    except ValueError:
        raise NotFound(f"schedule {schedule_id} not found") from None
    if not 0 < pk < 2**63:
        raise NotFound(f"schedule {schedule_id} not found")
    return pk


def schedule_values(schedule: Schedule) -> dict:
    """The schedule's :data:`SCHEDULE_FIELDS` as the API and the audit log name them."""
    return {
        "name": schedule.name,
        "task_type": schedule.task_type,
        "params": schedule.params,
        "batch_code": schedule.batch.batch_code if schedule.batch_id else None,
        "priority": schedule.priority,
        "cron": schedule.cron,
        "interval_seconds": schedule.interval_seconds,
    }


def schedule_check(*, actor: Actor, values: dict) -> dict:
    """The model fields of a schedule with ``values`` (:data:`SCHEDULE_FIELDS`), after the checks
    of starting its task by hand, by ``actor``: a task type users may start, with params that fit
    it, and the permissions that needs (``tasks.add_task`` and the type's own); a batch schedule
    starts its batch (the batch's job type, no params of its own; what starting a batch needs).
    :class:`InvalidInput` names each bad field, :class:`PermissionDenied` the missing permission."""
    name = values["name"]
    if not isinstance(name, str) or not 0 < len(name) <= SCHEDULE_NAME_MAX:
        message = f"1 to {SCHEDULE_NAME_MAX} characters."
        raise InvalidInput(f"name: {message}", errors={"name": [message]})
    _check_scheduling(values["priority"], None)
    _check_timing(values["cron"], values["interval_seconds"])
    batch = None
    if values["batch_code"] is None:
        _startable(actor, values["task_type"], values["params"], trigger=Trigger.API)
    else:
        batch = _batch_to_start(actor, values)
    return {
        "name": name,
        "task_type": values["task_type"],
        "params": values["params"] or {},  # as given: defaults are the type's at each run
        "batch": batch,
        "priority": values["priority"],
        "cron": values["cron"],
        "interval_seconds": values["interval_seconds"],
    }


def _batch_to_start(actor: Actor, values: dict):
    job = get_job_type(values["task_type"])
    own_types = [other.name for other in job_types() if other.params_from_batch]
    if not job.params_from_batch:
        message = f"A batch schedule starts the batch's own task type ({', '.join(own_types)})."
        raise InvalidInput(f"task_type: {message}", errors={"task_type": [message]})
    if values["params"]:
        message = "A batch schedule runs the batch's configuration: leave params out."
        raise InvalidInput(f"params: {message}", errors={"params": [message]})
    starter = owner_starter("batch_code")
    if starter is None:
        raise InvalidInput("batch_code names nothing here", errors={"batch_code": ["Not supported."]})
    actor.require(*starter[1])
    batches = Schedule._meta.get_field("batch").related_model.objects
    batch = batches.filter(batch_code=values["batch_code"]).first()
    if batch is None:
        message = f"Unknown batch {values['batch_code']!r}."
        raise InvalidInput(f"batch_code: {message}", errors={"batch_code": [message]})
    return batch


def _check_timing(cron, interval_seconds) -> None:
    if (cron is None) == (interval_seconds is None):
        message = "Give exactly one of cron and interval_seconds (the other null)."
        raise InvalidInput(message, errors={"cron": [message], "interval_seconds": [message]})
    if cron is not None:
        check_cron(cron)
    elif (
        isinstance(interval_seconds, bool)
        or not isinstance(interval_seconds, int)
        or not INTERVAL_SECONDS_MIN <= interval_seconds <= INTERVAL_SECONDS_MAX
    ):
        message = f"A whole number of seconds from {INTERVAL_SECONDS_MIN} to {INTERVAL_SECONDS_MAX}."
        raise InvalidInput(f"interval_seconds: {message}", errors={"interval_seconds": [message]})


def _check_enabled(enabled) -> None:
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false", errors={"enabled": ["Must be true or false."]})


def _first_run(fields: dict, now):
    return next_run(cron=fields["cron"], interval_seconds=fields["interval_seconds"], after=now)


def _name_taken(name: str) -> Conflict:
    message = f"A schedule named {name!r} exists."
    return Conflict(f"schedule {name!r} already exists", errors={"name": [message]})


def schedule_create(
    *,
    actor: Actor,
    name: str,
    task_type: str,
    params: dict | None = None,
    batch_code: str | None = None,
    priority: int = PRIORITY_DEFAULT,
    cron: str | None = None,
    interval_seconds: int | None = None,
    enabled: bool = True,
) -> Schedule:
    """A schedule owned by ``actor``: it starts a task of ``task_type`` with ``params`` (or, with
    ``batch_code``, starts that batch) every ``interval_seconds`` or at the times of ``cron`` in
    ``TIME_ZONE`` — exactly one of the two. Needs ``tasks.add_schedule`` and what starting that
    task needs (:func:`schedule_check`); its first run is one interval, or the cron's next time,
    from now. :class:`Conflict` naming ``name`` when the name is taken. Audited ``schedule.create``.
    """
    actor.require("tasks.add_schedule")
    values = {
        "name": name,
        "task_type": task_type,
        "params": params,
        "batch_code": batch_code,
        "priority": priority,
        "cron": cron,
        "interval_seconds": interval_seconds,
    }
    fields = schedule_check(actor=actor, values=values)
    _check_enabled(enabled)
    schedule = Schedule(
        **fields,
        enabled=enabled,
        next_run_at=_first_run(fields, timezone.now()) if enabled else None,
        created_by=actor.user,
    )
    try:
        with transaction.atomic():
            schedule.save(force_insert=True)
            audit(
                actor=actor,
                action="schedule.create",
                target_type="schedule",
                target_id=schedule.pk,
                details={**schedule_values(schedule), "enabled": enabled},
            )
    except IntegrityError:
        raise _name_taken(name) from None
    return schedule


def schedule_update(*, actor: Actor, schedule_id, changes: dict) -> Schedule:
    """Change some of :data:`SCHEDULE_FIELDS` and ``enabled``; needs ``tasks.change_schedule`` and,
    when more than ``enabled`` changes, the checks of :func:`schedule_create` on the result (the
    owner stays). A new timing starts over from now. Audited ``schedule.change`` (``changes``:
    each field's old and new value), and ``schedule.enable`` / ``schedule.disable``."""
    actor.require("tasks.change_schedule")
    unknown = sorted(set(changes) - {*SCHEDULE_FIELDS, "enabled"})
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(unknown)}", errors={k: ["Unknown field."] for k in unknown})
    if "enabled" in changes:
        _check_enabled(changes["enabled"])
    try:
        with transaction.atomic():
            schedule = _locked_schedule(schedule_id)
            before = schedule_values(schedule)
            after = {**before, **{key: value for key, value in changes.items() if key != "enabled"}}
            changed = {key: [before[key], after[key]] for key in SCHEDULE_FIELDS if before[key] != after[key]}
            if changed:
                fields = schedule_check(actor=actor, values=after)
                for field, value in fields.items():
                    setattr(schedule, field, value)
                if schedule.enabled and {"cron", "interval_seconds"} & set(changed):
                    schedule.next_run_at = _first_run(fields, timezone.now())
                schedule.save()
                audit(
                    actor=actor,
                    action="schedule.change",
                    target_type="schedule",
                    target_id=schedule.pk,
                    details={"name": schedule.name, "changes": changed},
                )
            if changes.get("enabled", schedule.enabled) != schedule.enabled:
                _set_enabled(actor, schedule, changes["enabled"])
    except IntegrityError:
        raise _name_taken(changes["name"]) from None
    return schedule


def schedule_set_enabled(*, actor: Actor, schedule_id, enabled: bool) -> Schedule:
    """Enable (the next run is one interval, or the cron's next time, from now) or disable (no run
    until enabled again; ``next_run_at`` null) a schedule; needs ``tasks.change_schedule``.
    :class:`Conflict` when it is so already. Audited ``schedule.enable`` / ``schedule.disable``."""
    actor.require("tasks.change_schedule")
    _check_enabled(enabled)
    with transaction.atomic():
        schedule = _locked_schedule(schedule_id)
        if schedule.enabled == enabled:
            raise Conflict(f"schedule {schedule.name!r} is already {'enabled' if enabled else 'disabled'}")
        _set_enabled(actor, schedule, enabled)
    return schedule


def _set_enabled(actor: Actor, schedule: Schedule, enabled: bool) -> None:
    schedule.enabled = enabled
    schedule.next_run_at = _first_run(schedule_values(schedule), timezone.now()) if enabled else None
    schedule.save(update_fields=["enabled", "next_run_at", "updated_at"])
    audit(
        actor=actor,
        action="schedule.enable" if enabled else "schedule.disable",
        target_type="schedule",
        target_id=schedule.pk,
        details={"name": schedule.name},
    )


def schedule_delete(*, actor: Actor, schedule_id) -> None:
    """Delete a schedule (the tasks it started stay); needs ``tasks.delete_schedule``. Audited
    ``schedule.delete``."""
    actor.require("tasks.delete_schedule")
    with transaction.atomic():
        schedule = _locked_schedule(schedule_id)
        details = {**schedule_values(schedule), "enabled": schedule.enabled}
        pk = schedule.pk
        schedule.delete()
        audit(actor=actor, action="schedule.delete", target_type="schedule", target_id=pk, details=details)


def _locked_schedule(schedule_id) -> Schedule:
    """The schedule, locked for the rest of the transaction (PostgreSQL; SQLite's transaction
    holds the write lock): changes and the runner's compare-and-set do not interleave."""
    try:
        locked = Schedule.objects.select_for_update(of=("self",)).select_related("batch")
        return locked.get(pk=_schedule_pk(schedule_id))
    except Schedule.DoesNotExist:
        raise NotFound(f"schedule {schedule_id} not found") from None


# --- queue controls ---------------------------------------------------------------------------


#: A task type's pause and resume as the audit log shows them (a type is active or paused).
_PAUSE = {"from_status": "active", "to_status": "paused"}
_RESUME = {"from_status": "paused", "to_status": "active"}


def _control_row(name: str) -> TaskType:
    """The control row of the registered type ``name``, locked for a change (created on first
    use); :class:`NotFound` for a type that is not registered."""
    try:
        get_job_type(name)
    except InvalidInput:
        raise NotFound(f"task type {name!r} not found") from None
    TaskType.objects.bulk_create([TaskType(name=name)], ignore_conflicts=True)
    return TaskType.objects.select_for_update().get(name=name)


def task_type_pause(*, actor: Actor, name: str) -> TaskType:
    """Stop every cluster's workers claiming new tasks of the type ``name``: running ones go on,
    pending ones wait. :class:`Conflict` when it is paused already."""
    actor.require("tasks.manage_queue")
    with transaction.atomic():
        control = _control_row(name)
        if control.paused:
            raise Conflict(f"task type {name!r} is already paused")
        control.paused = True
        control.save(update_fields=["paused", "updated_at"])
        audit(actor=actor, action="task_type.pause", target_type="task_type", target_id=name, **_PAUSE)
    return control


def task_type_resume(*, actor: Actor, name: str) -> TaskType:
    """Let the workers claim the type's tasks again. :class:`Conflict` when it is not paused."""
    actor.require("tasks.manage_queue")
    with transaction.atomic():
        control = _control_row(name)
        if not control.paused:
            raise Conflict(f"task type {name!r} is not paused")
        control.paused = False
        control.save(update_fields=["paused", "updated_at"])
        audit(actor=actor, action="task_type.resume", target_type="task_type", target_id=name, **_RESUME)
        transaction.on_commit(lambda: hand_over_waiting(name))
    return control


def task_type_set_limit(*, actor: Actor, name: str, max_concurrency: int | None) -> TaskType:
    """At most ``max_concurrency`` tasks of the type ``name`` held by an execution at once, over
    every cluster (``None``: no limit). Tasks running beyond a lowered limit go on; no new one
    starts until the type is under it. Audited when the value changes."""
    actor.require("tasks.manage_queue")
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or not MAX_CONCURRENCY_MIN <= max_concurrency <= MAX_CONCURRENCY_MAX
    ):
        message = f"A whole number from {MAX_CONCURRENCY_MIN} to {MAX_CONCURRENCY_MAX}, or null for no limit."
        raise InvalidInput(f"max_concurrency: {message}", errors={"max_concurrency": [message]})
    with transaction.atomic():
        control = _control_row(name)
        before = control.max_concurrency
        if before != max_concurrency:
            control.max_concurrency = max_concurrency
            control.save(update_fields=["max_concurrency", "updated_at"])
            audit(
                actor=actor,
                action="task_type.limit",
                target_type="task_type",
                target_id=name,
                details={"max_concurrency": {"from": before, "to": max_concurrency}},
            )
            transaction.on_commit(lambda: hand_over_waiting(name))
    return control


# --- bulk by filter ---------------------------------------------------------------------------

#: The most tasks one bulk action by filter may change, and how many it may by default: more
#: matches than the caller's limit refuse the whole action, so none happens by surprise.
MAX_BULK_LIMIT = 10_000
DEFAULT_BULK_LIMIT = 1000
#: Task ids a dry run shows.
BULK_SAMPLE_SIZE = 20
#: Tasks a bulk action changes per transaction: few enough that one holds SQLite's only write lock
#: briefly (a steering action a few milliseconds per task, a deletion less), many enough that
#: 10,000 tasks are not 10,000 commits.
BULK_STEER_CHUNK = 50
BULK_DELETE_CHUNK = 200

#: What each operation's service accepts of a task, as its dry run reads it from the task's
#: status and type: the statuses it applies to (the transition table's sources of its target;
#: resume and retry narrow them), and whether it also needs what starting the task's type needs.
OPERATION_RULES = {
    "cancel": (allowed_from(TaskStatus.CANCELLED), False),
    "pause": (allowed_from(TaskStatus.PAUSED), False),
    "resume": (RESUME_FROM, True),
    "retry": (RETRY_FROM, True),
    "delete": (FINISHED_STATUSES, False),
}
assert set(OPERATION_RULES) == set(BULK_OPERATIONS)


class TooManyTasks(Conflict):
    """More tasks match a bulk action than its limit: nothing was done."""

    def __init__(self, matched: int, limit: int):
        super().__init__(
            f"{matched} tasks match, more than the limit of {limit}: nothing was done. Narrow the filter, or raise"
            f" the limit (at most {MAX_BULK_LIMIT})."
        )
        self.matched = matched
        self.limit = limit


def tasks_bulk_apply(
    *, actor: Actor, operation: str, tasks, selection: dict, dry_run: bool = False, limit: int = DEFAULT_BULK_LIMIT
) -> dict:
    """Apply one of :data:`BULK_OPERATIONS` to every task of the queryset ``tasks`` (the tasks
    a filter matches; ``selection`` is that filter, as the caller describes it), oldest first, by
    the operation's own rules, in short transactions of a few dozen tasks each.

    Without the operation's permission nothing is read (:class:`PermissionDenied`). ``limit``
    must be 1…:data:`MAX_BULK_LIMIT` (else :class:`InvalidInput`); more matching tasks than
    ``limit`` is a :class:`TooManyTasks` (409) naming their number, and nothing changes.

    ``dry_run``: nothing is written; returns ``matched``, ``would_succeed`` and ``would_fail``
    (by the status and type rules the services apply) and a ``sample`` of the matched task ids.
    Otherwise returns the bulk result (per task: refused ones are failures, not errors) plus
    ``bulk_id``, which every audit row of the operation carries in its details — one per changed
    task, and the operation's own ``task.bulk`` row (who asked for what, and the counts).
    """
    service, permission, becomes = BULK_OPERATIONS[operation]
    actor.require(permission)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BULK_LIMIT:
        message = f"A whole number from 1 to {MAX_BULK_LIMIT} is required."
        raise InvalidInput(f"limit: {message}", errors={"limit": [message]})
    rows = list(tasks.order_by("created_at", "pk").values_list("pk", "status", "task_type")[: limit + 1])
    if len(rows) > limit:
        raise TooManyTasks(tasks.count(), limit)
    if dry_run:
        succeeding = sum(1 for _, status, task_type in rows if _bulk_accepts(actor, operation, status, task_type))
        return {
            "matched": len(rows),
            "would_succeed": succeeding,
            "would_fail": len(rows) - succeeding,
            "sample": [str(pk) for pk, _, _ in rows[:BULK_SAMPLE_SIZE]],
        }

    bulk_id = uuid.uuid4()
    ids = [pk for pk, _, _ in rows]
    with bulk_operation(bulk_id):
        if operation == "delete":
            outcomes = _delete_in_chunks(actor, ids)
        else:
            outcomes = _steer_in_chunks(actor, service, becomes, ids)
        result = _bulk_result({str(task_id): _bulk_item(outcome) for task_id, outcome in outcomes.items()})
        audit(
            actor=actor,
            action="task.bulk",
            target_type="bulk",
            target_id=bulk_id,
            details={
                "action": operation,
                "filter": selection,
                "limit": limit,
                "matched": len(rows),
                "success_count": result["success_count"],
                "failed_count": result["failed_count"],
            },
        )
    return {**result, "bulk_id": str(bulk_id)}


def _bulk_accepts(actor: Actor, operation: str, status: str, task_type: str) -> bool:
    """Whether the service of ``operation`` would accept a task in ``status`` of ``task_type``
    now (the dry run's answer per task)."""
    sources, needs_type = OPERATION_RULES[operation]
    if status not in sources:
        return False
    if needs_type:
        try:
            _job_of_type(actor, task_type)  # permissions are cached on the user: one lookup per run
        except (InvalidInput, PermissionDenied):
            return False
    return True


def _steer_in_chunks(actor: Actor, service, becomes: str, ids: list) -> dict:
    """``service`` (a steering service of :data:`BULK_OPERATIONS`) on each task, in order,
    :data:`BULK_STEER_CHUNK` per transaction, given each task as the chunk read it: per task id
    what it became, or why it was refused. A refusal leaves nothing to roll back: the services
    refuse before they write (each write is one compare-and-set with its audit row)."""
    outcomes: dict = {}
    for start in range(0, len(ids), BULK_STEER_CHUNK):
        chunk = ids[start : start + BULK_STEER_CHUNK]
        with transaction.atomic():
            tasks = Task.objects.filter(pk__in=chunk).only("status", "task_type", "batch_id").in_bulk()
            for task_id in chunk:
                try:
                    service(actor=actor, task_id=tasks.get(task_id, task_id))
                    outcomes[task_id] = becomes
                except ServiceError as exc:
                    outcomes[task_id] = exc
    return outcomes


def _delete_in_chunks(actor: Actor, ids: list) -> dict:
    """Delete the finished tasks of ``ids``, :data:`BULK_DELETE_CHUNK` per transaction (as
    :func:`task_delete` deletes one): per task id ``deleted``, or why it was not."""
    outcomes: dict = {}
    for start in range(0, len(ids), BULK_DELETE_CHUNK):
        chunk = ids[start : start + BULK_DELETE_CHUNK]
        tasks = (
            Task.objects.filter(pk__in=chunk).select_related("batch").only("status", "task_type", "batch__batch_code")
        )
        found = _delete_tasks(actor, list(tasks))
        for task_id in chunk:
            outcome = found.get(task_id, NotFound(f"task {task_id} not found"))
            outcomes[task_id] = outcome if isinstance(outcome, ServiceError) else "deleted"
    return outcomes
