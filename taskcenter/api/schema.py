"""drf-spectacular post-processing: the OpenAPI document describes the envelope exactly.

Every JSON response of /api/v1/ is wrapped as {success, code, message, data}, with ``code``
pinned to the response's status; every operation documents the error responses the envelope
handler can produce. The process-level endpoints (health, readiness, metrics) are added as the
``health`` operations.
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
    "411": "A chunked request body: send it with a Content-Length.",
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


def _error_ref(result: dict, code: int) -> dict:
    name = f"Error{code}Envelope"
    result.setdefault("components", {}).setdefault("schemas", {})[name] = _error_envelope(code)
    return {"$ref": f"#/components/schemas/{name}"}


NO_NUL = "^[^\\u0000]*$"


def _tighten(schema: dict) -> None:
    """Request bodies: strings carry no NUL, objects take no undeclared field (both are a 400)."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not ({"enum", "format", "pattern"} & set(schema)):
        schema["pattern"] = NO_NUL
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
    for key in ("properties",):
        for child in (schema.get(key) or {}).values():
            _tighten(child)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _tighten(schema[key])
    for key in ("oneOf", "anyOf", "allOf"):
        for child in schema.get(key) or []:
            _tighten(child)


def _task_create_variants() -> list[dict]:
    """POST /api/v1/tasks: one body shape per registered task type, with its params schema."""
    from batches.sources import sources
    from tasks.api.views import params_json_schema
    from tasks.runtime.registry import job_types

    variants = []
    for job in job_types():
        if not job.user_startable:
            continue
        params = params_json_schema(job.params_serializer)
        for name, prop in params["properties"].items():
            if name == "config":
                prop.clear()
                prop["$ref"] = "#/components/schemas/BatchConfigRequest"
            elif name == "data_source":
                prop["enum"] = [source.name for source in sources()]
        if not params.get("required"):
            params.pop("required", None)
        required = ["task_type"]
        alternatives = {}
        if params.get("required"):
            if job.params_from_batch:
                # A batch's statistics task takes the batch's config: params, or a batch_code.
                alternatives["anyOf"] = [
                    {"required": ["params"]},
                    {"required": ["batch_code"], "properties": {"batch_code": {"type": "string", "minLength": 1}}},
                ]
            else:
                required.append("params")
        variants.append(
            {
                "type": "object",
                **alternatives,
                "required": required,
                "additionalProperties": False,
                "properties": {
                    "task_type": {"type": "string", "enum": [job.name]},
                    "params": params,
                    "batch_code": {
                        "type": "string",
                        "nullable": True,
                        "minLength": 1,
                        "maxLength": 64,
                        "pattern": NO_NUL,
                    },
                },
            }
        )
    return variants


def _batch_cancel_variants(component: dict) -> list[dict]:
    """Exactly one selector: by ids, by task types, or all."""
    from tasks.runtime.registry import job_types

    properties = component.get("properties", {})
    task_types = dict(properties.get("task_types", {"type": "array"}))
    task_types["items"] = {"type": "string", "enum": [job.name for job in job_types()]}
    selectors = {
        "task_ids": properties.get("task_ids"),
        "task_types": task_types,
        "all": {"type": "boolean", "enum": [True]},
    }
    return [
        {"type": "object", "required": [name], "additionalProperties": False, "properties": {name: schema}}
        for name, schema in selectors.items()
    ]


def envelope_postprocessing_hook(result, generator, request, public):
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _tighten(component)
    schemas = result.get("components", {}).get("schemas", {})
    for name, component in schemas.items():
        if name.startswith("Patched"):
            component["minProperties"] = 1  # an empty PATCH changes nothing: a 400
    if "TaskCreateRequest" in schemas:
        schemas["TaskCreateRequest"] = {"oneOf": _task_create_variants()}
    if "BatchCancelRequest" in schemas:
        schemas["BatchCancelRequest"] = {"oneOf": _batch_cancel_variants(schemas["BatchCancelRequest"])}
    for path, methods in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query":
                    continue
                # An empty value means "not given" for every filter here.
                parameter["allowEmptyValue"] = True
                _tighten(parameter.get("schema", {}))
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
                    json_content["schema"] = _error_ref(result, int(code))
            wanted = READ_ONLY_ERRORS if method == "get" else set(ERROR_STATUSES)
            for code in sorted(wanted):
                responses.setdefault(
                    code,
                    {
                        "description": ERROR_STATUSES[code],
                        "content": {"application/json": {"schema": _error_ref(result, int(code))}},
                    },
                )
    return result


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_LIVENESS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}}
_READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "unavailable"]},
        "checks": {
            "type": "object",
            "description": "database, broker, clusters: `ok`, `skipped` (a part it needs failed) or why it fails.",
            "additionalProperties": {"type": "string"},
        },
        "failing": {"type": "array", "items": {"type": "string"}, "description": "The failing checks."},
        "details": {
            "type": "object",
            "description": "Staff users only: the underlying error of each failing check.",
            "additionalProperties": {"type": "string"},
        },
    },
}


def _health_operation(operation_id: str, summary: str, description: str, responses: dict) -> dict:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["health"],
            "security": [],
            "responses": responses,
        }
    }


HEALTH_PATHS = {
    "/healthz": _health_operation(
        "healthz",
        "Liveness",
        "200 while the process serves requests; checks nothing else.",
        {"200": _json("Alive.", _LIVENESS)},
    ),
    "/readyz": _health_operation(
        "readyz",
        "Readiness",
        "The database answers, the django-q2 broker answers and at least one cluster has reported in.",
        {"200": _json("Ready.", _READINESS), "503": _json("Not ready: `failing` names the checks.", _READINESS)},
    ),
    "/metrics": _health_operation(
        "metrics",
        "Prometheus metrics",
        "Prometheus text, summed over this host's processes. Only for a client in METRICS_ALLOWED_NETWORKS "
        "(loopback by default) or a request bearing METRICS_TOKEN (`Authorization: Bearer …`).",
        {"200": _text("The metrics."), "403": _text("Neither the token nor an allowed network.")},
    ),
}


def health_paths_hook(result, generator, request, public):
    """The process-level endpoints (taskcenter/views.py: plain Django views, which the generator
    does not see)."""
    result.setdefault("paths", {}).update(HEALTH_PATHS)
    return result
