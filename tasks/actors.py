"""Who is asking: every service takes an :class:`Actor` and checks its permission itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskcenter.errors import PermissionDenied
from taskcenter.proxies import client_address


@dataclass(frozen=True)
class Actor:
    """A user acting through the API, the admin or a command, or the system (``user=None``)."""

    user: Any = None
    address: str | None = None

    @property
    def name(self) -> str:
        return self.user.get_username() if self.user is not None else "system"

    @property
    def user_id(self):
        return self.user.pk if self.user is not None else None

    def require(self, *perms: str) -> None:
        """Raise :class:`PermissionDenied` unless the user holds every one of ``perms``.

        The system actor (workers, the watchdog, schedules) holds every permission.
        """
        if self.user is None:
            return
        missing = [perm for perm in perms if not self.user.has_perm(perm)]
        if missing:
            raise PermissionDenied(f"permission required: {', '.join(missing)}")

    @classmethod
    def from_request(cls, request) -> Actor:
        user = request.user if getattr(request.user, "is_authenticated", False) else None
        return cls(user=user, address=client_address(request))


SYSTEM = Actor()
