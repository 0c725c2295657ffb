"""The envelope every /api/v1/ response wears: {"success", "code", "message", "data"}."""

from __future__ import annotations

from http import HTTPStatus

from rest_framework.renderers import JSONRenderer


def envelope(code: int, data=None, *, message: str | None = None, errors: dict | None = None) -> dict:
    body = {
        "success": 200 <= code < 400,
        "code": code,
        "message": message or _phrase(code),
        "data": data if 200 <= code < 400 else None,
    }
    if errors:
        body["errors"] = errors
    return body


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "OK" if code < 400 else "Error"


class EnvelopeRenderer(JSONRenderer):
    """Wraps the view's data; the exception handler's bodies are enveloped already."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and not getattr(response, "enveloped", False):
            data = envelope(response.status_code, data, message=getattr(response, "message", None))
        return super().render(data, accepted_media_type, renderer_context)
