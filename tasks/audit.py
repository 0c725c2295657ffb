"""The audit log: written by the service that changes state, in the same transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

from tasks.actors import SYSTEM, Actor
from tasks.models import ROUTINE_WORKER_ACTIONS, AuditLog, not_routine_worker_row

logger = logging.getLogger("taskcenter.audit")

#: The bulk operation the current code runs for, if any (:func:`bulk_operation`).
_BULK_ID: ContextVar[str | None] = ContextVar("taskcenter_bulk_id", default=None)


@contextmanager
def bulk_operation(bulk_id) -> Iterator[None]:
    """Every audit row built inside (:func:`audit_entry`) carries ``bulk_id`` in its details:
    the rows of one bulk operation are found together, and no service needs an argument for it."""
    token = _BULK_ID.set(str(bulk_id))
    try:
        yield
    finally:
        _BULK_ID.reset(token)


def audit_entry(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id,
    from_status: str = "",
    to_status: str = "",
    details: dict | None = None,
) -> AuditLog:
    """The (unsaved) audit row of a change by ``actor`` (inside :func:`bulk_operation`, its
    details carry the ``bulk_id``)."""
    bulk_id = _BULK_ID.get()
    if bulk_id is not None:
        details = {**(details or {}), "bulk_id": bulk_id}
    return AuditLog(
        actor_id=actor.user_id,
        actor_name=actor.name,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        from_status=from_status or "",
        to_status=to_status or "",
        details=details or {},
        client_address=actor.address,
    )


def using_indexes(queryset, *, actor: str | None = None, action: str | None = None):
    """``queryset`` of audit rows looked up by ``actor`` and/or ``action``, stating the partial
    indexes' condition (:func:`tasks.models.not_routine_worker_row`) where it changes no answer:
    for a user's rows (workers act as the system) or another action than the routine ones."""
    if (actor and actor != SYSTEM.name) or (action and action not in ROUTINE_WORKER_ACTIONS):
        return queryset.filter(not_routine_worker_row())
    return queryset


#: What the routine worker rows, which the partial indexes leave out, hold in the columns those
#: indexes lead with (workers act as the system).
ROUTINE_VALUES = {"actor_name": (SYSTEM.name,), "action": ROUTINE_WORKER_ACTIONS}


def distinct_values(column: str) -> list[str]:
    """The values of ``column`` (``actor_name``, ``action`` or ``target_type``) in the audit log,
    sorted: read from the index the column leads a value at a time (each the next one past the
    last), where a DISTINCT would read every row. The partial indexes of ``actor_name`` and
    ``action`` leave the routine worker rows out: their values are always among those."""
    rows = AuditLog.objects.order_by(column).values_list(column, flat=True)
    values = set(ROUTINE_VALUES.get(column, ()))
    if column in ROUTINE_VALUES:
        rows = rows.filter(not_routine_worker_row())
    value = rows.first()
    while value is not None:
        values.add(value)
        value = rows.filter(**{f"{column}__gt": value}).first()
    return sorted(values)


def audit(**change) -> None:
    """Write the audit row of a change (arguments of :func:`audit_entry`) in the current
    transaction, and its log line once that commits."""
    entry = audit_entry(**change)
    entry.save(force_insert=True)
    log_on_commit(entry)


def log_on_commit(entry: AuditLog) -> None:
    """One structured log line per state change, once the transaction commits."""
    line = change_line(entry)
    if line is not None:
        transaction.on_commit(line)


def change_line(entry: AuditLog) -> Callable[[], None] | None:
    """What writes the log line of the state change ``entry`` (for a caller that runs it after
    its commit itself); None when there is none (not a state change, or INFO is off)."""
    if not entry.to_status or not logger.isEnabledFor(logging.INFO):
        return None
    fields = {
        "action": entry.action,
        "target": f"{entry.target_type}:{entry.target_id}",
        "from_status": entry.from_status or None,
        "to_status": entry.to_status,
        "actor": entry.actor_name,
    }
    message = f"{entry.action} {fields['target']} {entry.from_status or '-'} → {entry.to_status}"
    return lambda: logger.info(message, extra=fields)
