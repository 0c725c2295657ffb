"""Permissions per action: each view maps its actions to the Django permissions they need."""

from __future__ import annotations

from rest_framework.permissions import BasePermission


class ActionPermissions(BasePermission):
    """The user must be authenticated and hold every permission ``view.action_permissions``
    lists for the current action (``view.action``; ``"*"`` is the fallback). A view that lists
    nothing for an action refuses it, so a forgotten entry fails closed."""

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        table = getattr(view, "action_permissions", None)
        if table is None:
            return False
        action = getattr(view, "action", None)
        if action is None:
            # The method is not routed here: let the view answer 405 (the user is authenticated).
            return True
        if action == "metadata":  # OPTIONS: as much as reading
            action = "list"
        perms = table.get(action, table.get("*"))
        if perms is None:
            return False
        return request.user.has_perms(perms)
