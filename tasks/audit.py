"""The audit log: written by the service that changes state, in the same transaction."""

from __future__ import annotations

import logging

from django.db import transaction

from tasks.actors import Actor
from tasks.fastinsert import insert_rows
from tasks.models import AuditLog

logger = logging.getLogger("taskcenter.audit")


def audit(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id,
    from_status: str = "",
    to_status: str = "",
    details: dict | None = None,
) -> None:
    insert_rows(
        [
            AuditLog(
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
        ]
    )
    if to_status and logger.isEnabledFor(logging.INFO):
        # One structured line per state change, once it is committed.
        fields = {
            "action": action,
            "target": f"{target_type}:{target_id}",
            "from_status": from_status or None,
            "to_status": to_status,
            "actor": actor.name,
        }
        transaction.on_commit(
            lambda: logger.info("%s %s %s → %s", action, fields["target"], from_status or "-", to_status, extra=fields)
        )
