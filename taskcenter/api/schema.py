"""drf-spectacular post-processing: the OpenAPI document describes the envelope exactly.

Every JSON response of /api/v1/ is wrapped as {success, code, message, data}, with ``code``
pinned to the response's status; every operation documents the error responses the envelope
handler can produce.
"""

from __future__ import annotations

ERROR_STATUSES = {
    "400": "Bad input: nothing changed. `errors` names each bad field.",
    "401": "Not authenticated.",
    "403": "Authenticated without the permission this action needs.",
    "404": "Unknown id, or a page past the last one.",
    "405": "Method not allowed.",
    "406": "Not acceptable (the API answers application/json).",
    "409": "The current state forbids it (illegal transition, active task, stale state).",
    "413": "Request body too large.",
    "415": "Unsupported media type (send application/json).",
    "429": "Throttled; see Retry-After.",
}
READ_ONLY_ERRORS = {"400", "401", "403", "404", "405", "406", "429"}


def _success_envelope(code: int, data_schema: dict | None) -> dict:
    return {
        "type": "object",
        "required": ["success", "code", "message", "data"],
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "code": {"type": "integer", "enum": [code]},
            "message": {"type": "string"},
            "data": data_schema if data_schema is not None else {"nullable": True},
        },
    }


def _error_envelope(code: int) -> dict:
    return {
        "type": "object",
        "required": ["success", "code", "message", "data"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "code": {"type": "integer", "enum": [code]},
            "message": {"type": "string"},
            "data": {"nullable": True, "enum": [None]},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
    }


def envelope_postprocessing_hook(result, generator, request, public):
    for path, methods in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in list(responses.items()):
                content = response.get("content") or {}
                if not content and code.startswith("2"):
                    response["content"] = {"application/json": {"schema": _success_envelope(int(code), None)}}
                    continue
                json_content = content.get("application/json")
                if json_content is None:
                    continue
                if code.startswith("2"):
                    json_content["schema"] = _success_envelope(int(code), json_content.get("schema"))
                else:
                    json_content["schema"] = _error_envelope(int(code))
            wanted = READ_ONLY_ERRORS if method == "get" else set(ERROR_STATUSES)
            for code in sorted(wanted):
                responses.setdefault(
                    code,
                    {
                        "description": ERROR_STATUSES[code],
                        "content": {"application/json": {"schema": _error_envelope(int(code))}},
                    },
                )
    return result
