"""The task store: every write to a task's row and to what hangs on it — its stages, its log
lines, the audit rows of its status changes — one function each.

``tasks.services`` (users' actions: permissions, rules, audit of the actor) and the runtime (the
worker, the job context, the watchdog, the queue) call these functions; nothing else writes a
task. A status change is a compare-and-set (:func:`transition`); every write of a running
execution is fenced by its ``execution_id``.

The writes every task makes — creation, claim, completion — and a run's log lines are the named
statements of ``queries.sql``, run by :func:`_write`; the rest go through the ORM.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.utils import timezone

from taskcenter import metrics
from taskcenter.db import rows_or_changes
from taskcenter.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from tasks.actors import SYSTEM, Actor
from tasks.audit import audit, audit_entry, change_line
from tasks.models import AuditLog, Task, TaskLog, TaskStage, TaskType
from tasks.runtime.queue import send, tasks_table_is_the_queue
from tasks.runtime.registry import JobType, dependents_cleanups, get_job_type
from tasks.states import (
    FINISHED_STATUSES,
    PRIORITY_DEFAULT,
    RETRYABLE_CATEGORIES,
    LogLevel,
    TaskStatus,
    Trigger,
    is_legal,
)

# The transitions queries.sql writes by hand.
assert is_legal(TaskStatus.PENDING, TaskStatus.PROCESSING)
assert is_legal(TaskStatus.PROCESSING, TaskStatus.COMPLETED)

#: How often a compare-and-set is retried when another writer changed the status in between.
_CAS_ROUNDS = 8

#: Leave a value as it is (the ``checkpoint`` of :func:`flush`, :func:`fail` and :func:`release`).
KEEP = object()


class StaleExecution(Conflict):
    """The execution_id fencing token no longer matches: another execution owns the task."""


# --- the named statements ---------------------------------------------------------------------


def _load_queries(path: Path) -> dict[tuple[str, str | None], list[str]]:
    """``queries.sql`` as ``{(name, vendor or None): [statement, …]}``; comments dropped."""
    queries: dict[tuple[str, str | None], list[str]] = {}
    key = None
    for line in path.read_text().splitlines():
        if line.startswith("-- name: "):
            name, _, vendor = line.removeprefix("-- name: ").partition(" ")
            key = (name, vendor.strip("()") or None)
            queries[key] = [""]
        elif key is not None and not line.startswith("--"):
            queries[key][-1] += line + "\n"
            if line.rstrip().endswith(";"):
                queries[key][-1] = queries[key][-1].strip().removesuffix(";")
                queries[key].append("")
    return {key: [text for text in texts if text.strip()] for key, texts in queries.items()}


QUERIES = _load_queries(Path(__file__).with_name("queries.sql"))


def _statements(name: str, vendor: str) -> list[str]:
    return QUERIES.get((name, vendor)) or QUERIES[(name, None)]


def _write(name: str, params: dict, *, inside=()) -> list[tuple]:
    """Run the named write ``name`` with ``params`` in one transaction and return its first
    statement's rows (one empty row per row it changed, when it returns none); when there are
    none, nothing is written and ``inside`` (ORM code to run in the same transaction) is not
    called. Inside an ``atomic`` block it joins that transaction."""
    db = connections[DEFAULT_DB_ALIAS]
    statements = _statements(name, db.vendor)
    if not inside and not db.in_atomic_block:
        if db.vendor == "sqlite":
            return db.write_directly(statements, params)
        if len(statements) == 1:  # commits by itself: no BEGIN and COMMIT round trips
            with db.cursor() as cursor:
                cursor.execute(statements[0], params)
                return rows_or_changes(cursor)
    with transaction.atomic(using=db.alias), db.cursor() as cursor:
        cursor.execute(statements[0], params)
        rows = rows_or_changes(cursor)
        if rows:
            for statement in statements[1:]:
                cursor.execute(statement, params)
            for hook in inside:
                hook()
    return rows


def _values(instance, prefix: str = "") -> dict:
    """The database values of a new model instance's columns, as the ORM prepares them for an
    INSERT (defaults, ``auto_now_add``, JSON, UUIDs), by ``prefix`` + attribute name."""
    db = connections[DEFAULT_DB_ALIAS]
    return {
        prefix + field.attname: field.get_db_prep_save(field.pre_save(instance, True), db)
        for field in instance._meta.concrete_fields
        if not field.db_returning  # ids the database gives
    }


def _db_time(value, db) -> str:
    """A datetime as text the database reads as the time a column holds (inside JSON)."""
    adapted = db.ops.adapt_datetimefield_value(value)
    return adapted if isinstance(adapted, str) else adapted.isoformat()


def _logs_json(logs: list[TaskLog], db) -> str:
    return json.dumps(
        [
            {
                "timestamp": _db_time(line.timestamp, db),
                "level": int(line.level),
                "message": line.message,
                "data": None if line.data is None else json.dumps(line.data),
            }
            for line in logs
        ]
    )


def _insert_logs(task_id, logs: list[TaskLog]) -> None:
    """Write ``logs`` of one task in the current transaction."""
    if logs:
        db = connections[DEFAULT_DB_ALIAS]
        with db.cursor() as cursor:
            [statement] = _statements("insert_logs", db.vendor)
            cursor.execute(statement, {"task_id": _pk(task_id, db), "logs": _logs_json(logs, db)})


def _pk(task_id, db):
    return Task._meta.pk.get_db_prep_value(task_id, db)


# --- reading task ids -------------------------------------------------------------------------


def parse_task_id(task_id) -> uuid.UUID:
    """A task id as a UUID; anything that is not one names no task (:class:`NotFound`)."""
    if isinstance(task_id, uuid.UUID):
        return task_id
    try:
        return uuid.UUID(str(task_id))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"task {task_id} not found") from None


# --- status changes ---------------------------------------------------------------------------


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
    sources: frozenset[str] | None = None,
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
    processing task): the first compare-and-set is tried without reading the row first; the row
    is read only when that guess fails.

    ``sources`` narrows the statuses the change applies from (resume: paused only, where the
    table also allows failed → pending); from any other it is an :class:`IllegalTransition`.
    """
    task_id = parse_task_id(task_id)
    updates = dict(fields or {})
    updates["status"] = target
    updates["updated_at"] = timezone.now()
    guess = assume if assume is not None and is_legal(assume, target) else None
    if sources is not None and guess not in sources:
        guess = None  # refused only for the status read, not for a guess
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
        if sources is not None and current not in sources:
            raise IllegalTransition(
                f"task {task_id} is {current}; {action} applies to {' or '.join(sorted(sources))} tasks only",
                current=current,
                target=target,
            )
        guarded = Task.objects.filter(pk=task_id, status=current)
        if execution_id is not None:
            guarded = guarded.filter(execution_id=execution_id)
        if guard is not None:
            guarded = guarded.filter(guard)
        # No savepoint when nested: nothing here is caught and retried inside the caller's
        # transaction.
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


# --- creating ---------------------------------------------------------------------------------


def create(
    *,
    job: JobType,
    params: dict,
    actor: Actor,
    trigger: str,
    batch=None,
    priority: int = PRIORITY_DEFAULT,
    run_after=None,
) -> Task:
    """A new pending task of ``job`` with its stages and the audit row of its creation, handed
    over to the workers once the transaction commits (not claimed before ``run_after``, when it
    is later). Returns the task."""
    now = timezone.now()
    task = Task(
        task_type=job.name,
        params=params,
        batch=batch,
        trigger=trigger,
        priority=priority,
        run_after=run_after,
        next_attempt_at=run_after if run_after is not None and run_after > now else None,
        max_attempts=job.max_attempts,
        created_by=actor.user,
        enqueued_at=now,  # handed over with this transaction
    )
    entry = audit_entry(
        actor=actor,
        action="task.create",
        target_type="task",
        target_id=task.pk,
        to_status=TaskStatus.PENDING,
        details={
            "task_type": job.name,
            "batch_code": batch.batch_code if batch else None,
            "trigger": trigger,
            "priority": priority,
            "run_after": run_after.isoformat() if run_after else None,
        },
    )
    stages = [
        {"name": name, "position": position, "weight": weight}
        for position, (name, weight) in enumerate(job.stage_weights())
    ]
    # Prepared before the transaction: on SQLite it holds the database's only write lock.
    _write("create_task", {**_values(task), **_values(entry, "audit_"), "stages": json.dumps(stages)})
    task._state.adding = False
    task._state.db = DEFAULT_DB_ALIAS
    _after_commit(change_line(entry))
    if task.next_attempt_at is None:  # a deferred one is sent when due (the pusher or the watchdog)
        _send_after_commit(task.pk, job.name)
    return task


def set_params(task_id, params: dict, *, actor: Actor) -> None:
    """Replace the params of a pending task that has not run yet, audited; :class:`Conflict`
    otherwise (one that ran part of its work continues from a checkpoint made with them)."""
    with transaction.atomic():
        changed = Task.objects.filter(pk=task_id, status=TaskStatus.PENDING, checkpoint__isnull=True).update(
            params=params, updated_at=timezone.now()
        )
        if not changed:
            current = Task.objects.filter(pk=task_id).values_list("status", "checkpoint").first()
            if current is not None and current[0] == TaskStatus.PENDING:
                raise Conflict(
                    f"task {task_id} continues from a checkpoint made with its params, so they cannot change;"
                    " cancel it and create a new task instead"
                )
            raise Conflict(f"task {task_id} is {current and current[0]}; only pending tasks can be changed")
        audit(actor=actor, action="task.update", target_type="task", target_id=task_id, details={"params": params})


# --- handing over -----------------------------------------------------------------------------


def hand_over(task_id, task_type: str) -> None:
    """Make a pending task available to the workers again (the watchdog, a worker letting go of
    a task resumed meanwhile): mark it handed over and, with a broker other than the tasks table,
    send its message once the current transaction commits."""
    Task.objects.filter(pk=task_id, status=TaskStatus.PENDING).update(enqueued_at=timezone.now())
    _send_after_commit(task_id, task_type)


def _send_after_commit(task_id, task_type: str) -> None:
    """With the tasks table as the queue a committed pending task needs nothing more. With
    another broker (Redis) its message goes after commit; a failed send marks the task not
    handed over, for the watchdog's next sweep."""
    if tasks_table_is_the_queue():
        return

    def send_or_withdraw():
        if not send(task_id, task_type):
            Task.objects.filter(pk=task_id, status=TaskStatus.PENDING).update(enqueued_at=None)

    transaction.on_commit(send_or_withdraw)


def requeue(
    task_id,
    *,
    action: str,
    actor: Actor = SYSTEM,
    fields: dict | None = None,
    details: dict | None = None,
    delay: float | None = None,
    sources: frozenset[str] | None = None,
    assume: str | None = None,
    task_type: str | None = None,
) -> str:
    """Make a paused, failed or cancelled task pending again (resume, retry, automatic retry) and
    hand it over; with ``delay`` (seconds) it is not claimed before then. Returns the previous
    status; errors, ``sources`` and ``assume`` as :func:`transition` (``task_type``: the task's,
    when the caller knows it)."""
    now = timezone.now()
    previous = transition(
        task_id,
        TaskStatus.PENDING,
        action=action,
        actor=actor,
        fields={
            **(fields or {}),
            "enqueued_at": now,
            "next_attempt_at": now + timedelta(seconds=delay) if delay is not None else None,
        },
        details=details,
        sources=sources,
        assume=assume,
    )
    if delay is None:  # a delayed one is sent when due (the pusher or the watchdog)
        if task_type is None:
            task_type = Task.objects.filter(pk=task_id).values_list("task_type", flat=True).first()
        _send_after_commit(task_id, task_type)
    return previous


# --- a run ------------------------------------------------------------------------------------


def claim(task_id: uuid.UUID, execution_id: uuid.UUID, worker: str, *, swap_types: Iterable[str] = ()) -> Task | None:
    """``pending → processing`` with the fencing token ``execution_id``, audited, for a due task
    that no execution holds and whose type is neither paused nor at its concurrency limit (over
    every cluster): ``task_id`` — unless a due task of a higher priority and of one of
    ``swap_types`` waits (of a type without controls), or ``task_id`` cannot be claimed: then the
    best due task of those types (highest priority, then oldest). Returns the task claimed with
    what a run needs of it (``task_type``, ``params``, ``attempt``, ``max_attempts``,
    ``checkpoint``, ``progress``, ``batch_id``), or None when none was."""
    db = connections[DEFAULT_DB_ALIAS]
    now = timezone.now()
    arguments = {
        "task_id": _pk(task_id, db),
        "swap_types": json.dumps(sorted(swap_types)),
        "execution_id": Task._meta.get_field("execution_id").get_db_prep_save(execution_id, db),
        "worker": worker,
        "now": Task._meta.get_field("updated_at").get_db_prep_save(now, db),
        "details": json.dumps({"execution_id": str(execution_id), "worker": worker}),
    }
    if db.vendor == "sqlite":
        # One writer at a time: the statement's count of a limited type's executions is exact.
        rows = _write("claim_task", {**arguments, "limits": True})
    else:
        # Two statements running at once would count the same free slot (neither sees the other's
        # claim): a task of a limited type is claimed under its type's row lock, in a transaction,
        # where the statement counts what the claims before it committed. Other claims take one
        # statement, no lock.
        rows = _write("claim_task", {**arguments, "limits": False})
        if not rows:
            with transaction.atomic(using=db.alias):
                named_type = Task.objects.filter(pk=task_id).values("task_type")
                locked = TaskType.objects.select_for_update().filter(name__in=named_type, max_concurrency__isnull=False)
                if locked.values_list("name", flat=True).first() is not None:
                    rows = _write("claim_task", {**arguments, "limits": True})
    if not rows:
        return None
    raw_id, task_type, params, attempt, max_attempts, checkpoint, progress, batch_id = rows[0]
    task_id = Task._meta.pk.to_python(raw_id)
    json_field = Task._meta.get_field("params")
    _after_commit(_worker_line("worker.claim", task_id, TaskStatus.PENDING, TaskStatus.PROCESSING))
    values = {
        "id": task_id,
        "status": TaskStatus.PROCESSING,
        "execution_id": execution_id,
        "task_type": task_type,
        "params": json_field.from_db_value(params, None, db),
        "attempt": attempt,
        "max_attempts": max_attempts,
        "checkpoint": json_field.from_db_value(checkpoint, None, db),
        "progress": progress,
        "batch_id": batch_id,
    }
    # from_db() takes the values in the model's field order; the other fields are deferred.
    fields = [field.attname for field in Task._meta.concrete_fields if field.attname in values]
    return Task.from_db(db.alias, fields, [values[name] for name in fields])


def _worker_line(action: str, task_id, from_status: str, to_status: str):
    """The log line of a worker's status change (its audit row is part of the statement)."""
    entry = AuditLog(
        action=action, target_type="task", target_id=str(task_id), from_status=from_status, to_status=to_status
    )
    return change_line(entry)


def flush(
    task_id,
    execution_id: uuid.UUID,
    *,
    progress: float,
    stages: dict[str, tuple[str, float]],
    logs: list[TaskLog],
    checkpoint=KEEP,
) -> bool:
    """A running execution's progress, heartbeat, stage changes (``{name: (status, progress)}``),
    log lines and (unless ``KEEP``) checkpoint, in one transaction — if the execution still
    holds the processing task; False (nothing written) when it does not."""
    updates = {"progress": progress}
    if checkpoint is not KEEP:
        updates["checkpoint"] = checkpoint
    with transaction.atomic():
        # Read once the transaction may write (SQLite: after any wait for the write lock): a
        # heartbeat says when the worker could last write.
        updates["heartbeat_at"] = timezone.now()
        held = Task.objects.filter(pk=task_id, execution_id=execution_id, status=TaskStatus.PROCESSING).update(
            **updates
        )
        if held:
            for name, (status, stage_progress) in stages.items():
                TaskStage.objects.filter(task_id=task_id, name=name).update(status=status, progress=stage_progress)
            _insert_logs(task_id, logs)
    return bool(held)


def complete(task_id, execution_id: uuid.UUID, *, result, checkpoint, logs: list[TaskLog], hooks=()) -> bool:
    """``processing → completed`` for the execution ``execution_id`` with its result: every stage
    completed, its last ``logs`` written and the completion ``hooks`` run, in one transaction.
    False (nothing written) when the execution no longer holds a processing task; a hook that
    raises rolls everything back and the error propagates."""
    db = connections[DEFAULT_DB_ALIAS]
    result_field = Task._meta.get_field("result")
    rows = _write(
        "complete_task",
        {
            "task_id": _pk(task_id, db),
            "execution_id": Task._meta.get_field("execution_id").get_db_prep_save(execution_id, db),
            "result": result_field.get_db_prep_save(result, db),
            "checkpoint": result_field.get_db_prep_save(checkpoint, db),
            "now": Task._meta.get_field("updated_at").get_db_prep_save(timezone.now(), db),
            "target_id": str(task_id),
            "logs": _logs_json(logs, db),
        },
        inside=hooks,
    )
    if rows:
        _after_commit(_worker_line("worker.complete", task_id, TaskStatus.PROCESSING, TaskStatus.COMPLETED))
    return bool(rows)


def fail(
    task_id,
    execution_id: uuid.UUID,
    *,
    category: str,
    message: str,
    action: str,
    trace: str = "",
    checkpoint=KEEP,
    logs: list[TaskLog] = (),
    stale_before=None,
) -> bool:
    """``processing → failed`` for the execution ``execution_id`` with the error and its log
    line, then — when ``category`` is retryable and attempts remain — pending again after the
    job type's backoff; otherwise the failure is final and its alert goes out after commit. With
    ``stale_before`` (the watchdog's) only while the heartbeat is older than that.

    False when the execution no longer held the task or its heartbeat is fresh (nothing changed).
    """
    now = timezone.now()
    fields = {
        "error_message": message[:10000],
        "error_category": category,
        "completed_at": now,
        "execution_id": None,
        "heartbeat_at": None,
        "worker": "",
    }
    if checkpoint is not KEEP:
        fields["checkpoint"] = checkpoint
    with transaction.atomic():
        try:
            transition(
                task_id,
                TaskStatus.FAILED,
                action=action,
                execution_id=execution_id,
                assume=TaskStatus.PROCESSING,
                guard=Q(heartbeat_at__lt=stale_before) if stale_before is not None else None,
                fields=fields,
                details={"error_category": category, "error_message": message[:500]},
            )
        except (IllegalTransition, StaleExecution, NotFound):
            return False
        data = {"error_category": category, "traceback": trace} if trace else {"error_category": category}
        error_line = TaskLog(task_id=task_id, timestamp=now, level=LogLevel.ERROR, message=message[:10000], data=data)
        _insert_logs(task_id, [*logs, error_line])
        task_type, attempt, max_attempts = (
            Task.objects.filter(pk=task_id).values_list("task_type", "attempt", "max_attempts").get()
        )
        _after_commit(lambda: metrics.TASK_FAILURES.labels(task_type, category).inc())
        try:
            job = get_job_type(task_type)
        except InvalidInput:
            job = None
        if job is not None and category in RETRYABLE_CATEGORIES and attempt < max_attempts:
            delay = job.retry_delay(attempt)
            requeue(
                task_id,
                action="task.auto_retry",
                fields={"attempt": F("attempt") + 1, "trigger": Trigger.RETRY, "completed_at": None},
                details={"delay_seconds": round(delay, 3), "after_attempt": attempt},
                delay=delay,
            )
            _after_commit(lambda: metrics.TASK_RETRIES.labels(task_type, category).inc())
            retry_line = TaskLog(
                task_id=task_id,
                timestamp=now,
                level=LogLevel.WARN,
                message=f"attempt {attempt} failed ({category}); retrying in {delay:.1f} s",
            )
            _insert_logs(task_id, [retry_line])
        else:
            from tasks.runtime.alerts import alert_on_commit

            alert_on_commit(task_id)
    return True


def release(
    task_id,
    execution_id: uuid.UUID,
    *,
    reason: str,
    checkpoint=KEEP,
    progress: float | None = None,
    logs: list[TaskLog] = (),
    stale_before=None,
) -> tuple[str, object] | None:
    """Let go of a task that is no longer processing (paused, cancelled — or resumed since) held
    by ``execution_id``: the fencing token, heartbeat and worker are cleared, the checkpoint
    saved (unless ``KEEP``), and a paused task shows ``progress`` (where its checkpoint stands;
    a cancelled one keeps what it showed), with a log line saying why. With ``stale_before``
    (the watchdog's, for an execution whose worker died) only while the heartbeat is older.

    Returns the task's status and the time of its last change, or None when the execution no
    longer held it. A task left pending — resumed or retried while the execution wound down, so
    its claim was refused — is handed over again.
    """
    updates = {"execution_id": None, "heartbeat_at": None, "worker": ""}
    if checkpoint is not KEEP:
        updates["checkpoint"] = checkpoint
    if progress is not None:
        updates["progress"] = Case(When(status=TaskStatus.PAUSED, then=Value(progress)), default=F("progress"))
    held = Task.objects.filter(pk=task_id, execution_id=execution_id).exclude(status=TaskStatus.PROCESSING)
    if stale_before is not None:
        held = held.filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before))
    with transaction.atomic():
        if not held.update(**updates):
            return None
        stopped = TaskLog(
            task_id=task_id,
            timestamp=timezone.now(),
            level=LogLevel.INFO,
            message=f"execution stopped: {reason}",
            data={"checkpoint": checkpoint} if checkpoint is not KEEP else None,
        )
        _insert_logs(task_id, [*logs, stopped])
        status, changed_at, task_type = (
            Task.objects.filter(pk=task_id).values_list("status", "updated_at", "task_type").get()
        )
        if status == TaskStatus.PENDING:
            hand_over(task_id, task_type)
    return status, changed_at


def mark_alerted(task_id) -> bool:
    """Record that a finally failed task's alert goes out; False when it did already (or the
    task is not failed): each task is alerted at most once."""
    return bool(
        Task.objects.filter(pk=task_id, status=TaskStatus.FAILED, alerted_at__isnull=True).update(
            alerted_at=timezone.now()
        )
    )


# --- the queue --------------------------------------------------------------------------------


def free_slots() -> dict[str, int]:
    """For each task type with a control: how many more of its tasks may start now — 0 for a
    paused type, the limit less the tasks held by an execution for a limited one. Types that are
    not in the answer have no limit."""
    controls = TaskType.objects.filter(Q(paused=True) | Q(max_concurrency__isnull=False))
    controls = list(controls.values_list("name", "paused", "max_concurrency"))
    limited = [name for name, paused, _ in controls if not paused]
    held = dict(
        Task.objects.filter(execution_id__isnull=False, task_type__in=limited)
        .order_by()
        .values_list("task_type")
        .annotate(count=Count("pk"))
    )
    return {name: 0 if paused else max(0, limit - held.get(name, 0)) for name, paused, limit in controls}


def withhold(task_id) -> bool:
    """Mark a pending task not handed over when its message found its type paused or at its
    limit (with a broker that keeps its own messages: the message is spent), so that it is sent
    again once its type can take it (:func:`tasks.runtime.watchdog.hand_over_waiting`)."""
    controlled = TaskType.objects.filter(Q(paused=True) | Q(max_concurrency__isnull=False)).values("name")
    return bool(
        Task.objects.filter(
            pk=task_id, status=TaskStatus.PENDING, execution_id__isnull=True, task_type__in=controlled
        ).update(enqueued_at=None)
    )


def due_tasks(*, limit: int) -> list[tuple]:
    """The first ``limit`` tasks in the queue — pending, handed over, due, held by no execution,
    of a type neither paused nor at its concurrency limit — highest priority first, then the
    oldest, as ``(id, row version, task_type, free slots of the type or None)`` the way the
    database returns them (on SQLite the id is 32 hex digits)."""
    return _read("due_tasks", limit=limit)


def count_due_tasks() -> int:
    """How many tasks are in the queue (see :func:`due_tasks`)."""
    return _read("count_due_tasks")[0][0]


def _read(name: str, **params) -> list[tuple]:
    db = connections[DEFAULT_DB_ALIAS]
    now = Task._meta.get_field("next_attempt_at").get_db_prep_value(timezone.now(), db)
    with db.cursor() as cursor:
        cursor.execute(_statements(name, db.vendor)[0], {"now": now, **params})
        return cursor.fetchall()


# --- deleting ---------------------------------------------------------------------------------

#: Log lines deleted per statement before their task is: a task's own cascade deletes all of its
#: lines in one statement, and on SQLite that holds the only write lock as long.
LOG_ROWS_PER_TRANSACTION = 10_000


def delete_dependents(task_ids: list) -> int:
    """Delete what the tasks ``task_ids`` own in bulk — their log lines, and the rows the job
    types' ``delete_dependents`` hooks remove — in transactions of bounded size, before the tasks
    are deleted. Returns the number of log lines deleted.

    Called for tasks that looked finished; a log line goes only while its task is finished (the
    check is part of each statement). Fewer lines than one transaction's worth are left to the
    tasks' own deletion."""
    logs = TaskLog.objects.filter(task_id__in=task_ids, task__status__in=FINISHED_STATUSES).order_by()
    deleted = 0
    while logs[LOG_ROWS_PER_TRANSACTION - 1 :].exists():
        # Its own transaction: the callers hold none, and delete() commits it alone.
        deleted += TaskLog.objects.filter(pk__in=logs.values("pk")[:LOG_ROWS_PER_TRANSACTION]).delete()[0]
    for cleanup in dependents_cleanups():
        cleanup(task_ids)
    return deleted


def delete_finished(task_ids: list) -> tuple[int, int]:
    """Delete those of the tasks ``task_ids`` that are finished, with their stages and log lines,
    in the caller's transaction (after :func:`delete_dependents`). Returns how many tasks and
    log lines went."""
    with transaction.atomic():
        # The rows are locked first: an execution winding down (cancelled a moment ago) writes
        # its last log lines only while its row holds, in one transaction with a write to that
        # row, so none can land between the deletion of the lines and of the task (PostgreSQL
        # would refuse the commit: a line whose task is gone).
        finished = Task.objects.select_for_update().filter(pk__in=task_ids, status__in=FINISHED_STATUSES)
        ids = list(finished.values_list("pk", flat=True))
        logs, _ = TaskLog.objects.filter(task_id__in=ids).delete()
        _, per_model = Task.objects.filter(pk__in=ids).delete()
    return per_model.get("tasks.Task", 0), logs


def _after_commit(callback) -> None:
    if callback is not None:
        transaction.on_commit(callback)
