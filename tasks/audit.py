"""The audit log: written by the service that changes state, in the same transaction."""

from __future__ import annotations

from tasks.actors import Actor
from tasks.models import AuditLog


def audit(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id,
    from_status: str = "",
    to_status: str = "",
    details: dict | None = None,
) -> AuditLog:
    return AuditLog.objects.create(
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
