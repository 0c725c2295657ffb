"""One place that turns every error raised under the API into its enveloped response."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from taskcenter.api.renderers import envelope
from taskcenter.errors import ServiceError

logger = logging.getLogger("taskcenter.api")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field.sub": ["message", …]}."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" and not prefix else str(key)
            flat.update(flatten_errors(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            flat[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def _first_message(errors: dict[str, list[str]]) -> str:
    for field, messages in errors.items():
        if messages:
            return messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return "Invalid input."


def _respond(code: int, *, message: str, errors: dict | None = None, headers: dict | None = None) -> Response:
    response = Response(envelope(code, message=message, errors=errors), status=code, headers=headers)
    response.enveloped = True
    return response


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        set_rollback()
        return _respond(exc.status, message=exc.message, errors=exc.errors or None)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, exceptions.ValidationError):
            errors = flatten_errors(exc.detail)
            return _respond(400, message=_first_message(errors), errors=errors)
        detail = exc.detail if isinstance(exc.detail, str) else _first_message(flatten_errors(exc.detail))
        return _respond(exc.status_code, message=str(detail), headers=headers)
    # Anything else is a bug: log it with its traceback and answer an enveloped 500.
    set_rollback()
    logger.exception("unhandled error in %s", context.get("view").__class__.__name__ if context else "?")
    return _respond(500, message="Internal server error.")
