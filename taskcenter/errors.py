"""Application errors raised by services; the API turns each into its HTTP status in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: a request that a service refuses. ``status`` is the HTTP status the API uses."""

    status = 400

    def __init__(self, message: str, *, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class InvalidInput(ServiceError):
    """Bad input: the request is refused and nothing changed."""

    status = 400


class PermissionDenied(ServiceError):
    """The actor lacks the permission the operation needs."""

    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    """The request is valid but the current state forbids it (active task, stale state…)."""

    status = 409


class IllegalTransition(Conflict):
    """A status change the transition table does not allow."""

    def __init__(self, message: str, *, current: str | None = None, target: str | None = None):
        super().__init__(message)
        self.current = current
        self.target = target
