"""The three roles — viewer, operator, manager — as Django groups with exactly their permissions."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

VIEW = [
    "batches.view_batch",
    "tasks.view_task",
    "tasks.view_taskstage",
    "tasks.view_tasklog",
    "tasks.view_schedule",
]
OPERATE = [
    "tasks.start_task",
    "tasks.cancel_task",
    "tasks.pause_task",
    "tasks.retry_task",
    "tasks.view_auditlog",
]
MANAGE = [
    "batches.add_batch",
    "batches.change_batch",
    "batches.delete_batch",
    "tasks.add_task",
    "tasks.change_task",
    "tasks.delete_task",
    # Pausing a task type or capping it holds every user's tasks of that type: a queue-wide
    # decision, unlike steering one task.
    "tasks.manage_queue",
    # Starting an import_assessments task (its data becomes what batches compute on).
    "batches.add_assessmentrecord",
    "tasks.add_schedule",
    "tasks.change_schedule",
    "tasks.delete_schedule",
]

ROLES: dict[str, list[str]] = {
    "viewer": VIEW,
    "operator": VIEW + OPERATE,
    "manager": VIEW + OPERATE + MANAGE,
}


def _permission(dotted: str) -> Permission:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@transaction.atomic
def setup_roles() -> dict[str, int]:
    """Create or reset the groups so each holds exactly its role's permissions (idempotent)."""
    counts = {}
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([_permission(p) for p in perms])
        counts[name] = len(perms)
    return counts
