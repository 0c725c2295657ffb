"""The OpenAPI document, shaped for client generators.

- Every JSON answer of /api/v1/ wears the envelope {success, code, message, data}: each 2xx
  answer is a named ``<Data>Envelope`` component, every error the one ``ErrorEnvelope``.
- Request bodies are tight: no NUL in strings, no undeclared field (both are a 400).
- ``POST /api/v1/tasks`` takes one named body per registered task type, discriminated by
  ``task_type``; the bulk cancel one named body per selector.
- Query parameters whose values are a named enum's refer to it; links lead from the operations
  that create tasks and batches to those that take their ids.
- The document is written in English whatever the site's language.
"""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema

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
NO_NUL = "^[^\\u0000]*$"
REF = "#/components/schemas/"
#: Request bodies that must name at least one field (a 400 otherwise): an empty bulk filter would
#: select every task.
NON_EMPTY_BODIES = {"BulkTaskFilterRequest"}


def _envelope_schema(*, success: bool, codes: tuple[int, int], data: dict, description: str = "", **extra) -> dict:
    """The envelope {success, code, message, data} (and ``extra`` optional properties)."""
    schema = {
        "type": "object",
        "required": ["success", "code", "message", "data"],
        "properties": {
            "success": {"type": "boolean", "const": success},
            "code": {"type": "integer", "minimum": codes[0], "maximum": codes[1], "description": "The HTTP status."},
            "message": {"type": "string"},
            "data": data,
            **extra,
        },
    }
    if description:
        schema["description"] = description
    return schema


ERROR_ENVELOPE = _envelope_schema(
    success=False,
    codes=(400, 599),
    data={"type": "null"},
    description="Every 4xx answer. `errors` (400 only) names each bad field with its messages.",
    errors={
        "type": "object",
        "description": "400 only: field (dotted for nested fields) → messages.",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    },
)

#: The operations whose answer carries a new object's id, and the operations that take that id.
LINKS = {
    ("createTask", "201"): (
        "task_id",
        [
            "getTask",
            "updateTask",
            "deleteTask",
            "cancelTask",
            "pauseTask",
            "resumeTask",
            "retryTask",
            "listTaskLogs",
            "streamTaskEvents",
            "getTaskStatus",
            "getTaskProgress",
        ],
    ),
    ("startBatchTask", "202"): (
        "task_id",
        ["getTaskStatus", "getTaskProgress", "getTask", "listTaskLogs", "pauseTask", "cancelTask"],
    ),
    ("createSchedule", "201"): ("id", ["getSchedule", "updateSchedule", "deleteSchedule"]),
    ("createBatch", "201"): (
        "batch_code",
        [
            "getBatch",
            "replaceBatch",
            "updateBatch",
            "getBatchResults",
            "startBatchTask",
            "cancelBatchTask",
            "deleteBatch",
        ],
    ),
}


class TaskcenterAutoSchema(AutoSchema):
    """Paginated answers are named ``<Item>Page``; an operation without an explicit id gets
    drf-spectacular's in camelCase; an operation's description is only what its
    ``extend_schema`` says (never a view's or a DRF mixin's docstring)."""

    def get_description(self) -> str:
        return ""

    def get_paginated_name(self, serializer_name: str) -> str:
        return f"{serializer_name}Page"

    def get_operation_id(self) -> str:
        first, *rest = super().get_operation_id().split("_")
        return first + "".join(part.capitalize() for part in rest)


def doc_excludes() -> list:
    """drf-spectacular's classes whose docstrings never describe a component, and the API's
    serializer bases: a component's description is its own class's docstring or none."""
    from drf_spectacular.plumbing import get_lib_doc_excludes

    from taskcenter.api import serializers

    return [
        *get_lib_doc_excludes(),
        serializers.StrictSerializer,
        serializers.StrictModelSerializer,
        serializers.AnswerFieldsMixin,
        serializers.Answer,
        serializers.ModelAnswer,
    ]


def component_name(name: str) -> str:
    """``maintenance.purge`` → ``MaintenancePurge``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def _types(schema: dict) -> set:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind}


def _tighten(schema: dict) -> None:
    """Request bodies: strings carry no NUL, objects take no undeclared field (both are a 400)."""
    if not isinstance(schema, dict):
        return
    if "string" in _types(schema) and not ({"enum", "const", "format", "pattern"} & set(schema)):
        schema["pattern"] = NO_NUL
    if "object" in _types(schema) and "properties" in schema:
        schema.setdefault("additionalProperties", False)
    for child in (schema.get("properties") or {}).values():
        _tighten(child)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _tighten(schema[key])
    for key in ("oneOf", "anyOf", "allOf"):
        for child in schema.get(key) or []:
            _tighten(child)


def _task_create_variants(schemas: dict) -> dict:
    """POST /api/v1/tasks: a ``<Type>TaskCreate`` body per user-startable task type, with its
    ``<Type>Params``, discriminated by ``task_type``."""
    from tasks.api.views import params_json_schema
    from tasks.runtime.registry import job_types

    # priority and run_after as the generic create body declares them.
    scheduling = schemas["TaskCreateRequest"]["properties"]
    mapping = {}
    for job in job_types():
        if not job.user_startable:
            continue
        name = component_name(job.name)
        params = params_json_schema(job.params_serializer)
        for field, prop in params["properties"].items():
            if field == "config":
                prop.clear()
                prop["$ref"] = REF + "BatchConfigRequest"
            elif field == "data_source":
                prop.clear()
                prop["$ref"] = REF + "DataSourceName"
        if not params["required"]:
            del params["required"]
        schemas[f"{name}Params"] = params
        required = ["task_type"]
        alternatives = {}
        if params.get("required"):
            if job.params_from_batch:
                # A batch's statistics task takes the batch's config: params, or a batch_code.
                # (if/else, not an anyOf of bare `required`s, which generators read as "any value".)
                alternatives["if"] = {"required": ["batch_code"], "properties": {"batch_code": {"type": "string"}}}
                alternatives["else"] = {"required": ["params"]}
            else:
                required.append("params")
        schemas[f"{name}TaskCreate"] = {
            "type": "object",
            "description": f"A `{job.name}` task: {job.description}",
            **alternatives,
            "required": required,
            "additionalProperties": False,
            "properties": {
                "task_type": {"type": "string", "const": job.name},
                "params": {"$ref": REF + f"{name}Params"},
                "batch_code": {
                    "type": ["string", "null"],
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": NO_NUL,
                    "description": "The batch the task belongs to (409 while the batch has an active task).",
                },
                "priority": scheduling["priority"],
                "run_after": scheduling["run_after"],
            },
        }
        mapping[job.name] = REF + f"{name}TaskCreate"
    return {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "task_type", "mapping": mapping},
    }


def _schedule_bodies(schemas: dict) -> None:
    """A new schedule is one named body per task type users may start and timing —
    ``CanaryIntervalScheduleCreate``, ``CanaryCronScheduleCreate``, … — with that type's params, the
    other timing field null if sent, and a ``batch_code`` only for a type a batch starts. A change
    takes any of those fields (its params: those of one of the types)."""
    from tasks.runtime.registry import job_types

    create = schemas.pop("ScheduleCreateRequest")
    timings = {
        "Interval": ("interval_seconds", "cron", "every interval_seconds"),
        "Cron": ("cron", "interval_seconds", "at the times of cron"),
    }
    variants = []
    for job in job_types():
        if not job.user_startable:
            continue
        name = component_name(job.name)
        for timing_name, (timing, other, when) in timings.items():
            properties = dict(create["properties"])
            properties["task_type"] = {"type": "string", "const": job.name}
            properties["params"] = {"$ref": REF + f"{name}Params"}
            properties[timing] = {**properties[timing], "type": properties[timing]["type"][0]}
            properties[other] = {"type": "null", "description": f"Null, if sent: this schedule runs {when}."}
            if not job.params_from_batch:
                properties["batch_code"] = {"type": "null", "description": "Only a batch's own task type has one."}
            variant = f"{name}{timing_name}ScheduleCreate"
            schemas[variant] = {
                "type": "object",
                "description": f"A schedule of `{job.name}` tasks that runs {when}.",
                "required": [*create["required"], timing],
                "additionalProperties": False,
                "properties": properties,
            }
            variants.append({"$ref": REF + variant})
    schemas["ScheduleCreateRequest"] = {"oneOf": variants}
    change = schemas["PatchedScheduleUpdateRequest"]["properties"]
    change["task_type"] = {
        "type": "string",
        "enum": [job.name for job in job_types() if job.user_startable],
        "description": "A task type users may start (GET /api/v1/task-types).",
    }
    description = change["params"].get("description", "")
    change["params"] = {
        "anyOf": list(schemas["PatchedTaskUpdateRequest"]["properties"]["params"]["anyOf"]),
        "description": description,
    }


def _batch_cancel_variants(schemas: dict) -> dict:
    """Exactly one selector: by ids, by task types, or all."""
    from tasks.runtime.registry import job_types

    properties = schemas["BatchCancelRequest"]["properties"]
    task_types = dict(properties["task_types"])
    task_types["items"] = {"type": "string", "enum": [job.name for job in job_types()]}
    selectors = {
        "CancelByIdsRequest": ("task_ids", properties["task_ids"]),
        "CancelByTypesRequest": ("task_types", task_types),
        "CancelAllRequest": ("all", {"type": "boolean", "const": True}),
    }
    for name, (field, schema) in selectors.items():
        schemas[name] = {
            "type": "object",
            "required": [field],
            "additionalProperties": False,
            "properties": {field: schema},
        }
    return {"oneOf": [{"$ref": REF + name} for name in selectors]}


def _stage_names(schemas: dict) -> None:
    """Stage names are a ``StageName`` enum: the registered task types' stages."""
    from tasks.runtime.registry import job_types

    names = sorted({stage.name for job in job_types() for stage in job.stages})
    schemas["StageName"] = {"type": "string", "enum": names}
    for component, field in (("Stage", "stage"), ("TaskTypeStage", "name")):
        prop = schemas[component]["properties"][field]
        description = prop.get("description")
        prop.clear()
        prop["allOf"] = [{"$ref": REF + "StageName"}]
        if description:
            prop["description"] = description


def _envelope(schemas: dict, data: dict | None) -> dict:
    """The named envelope component of a 2xx answer whose ``data`` is ``data``."""
    if data is None:
        name, data = "EmptyEnvelope", {"type": "null"}
    elif "$ref" in data:
        name = data["$ref"].removeprefix(REF) + "Envelope"
    elif data.get("type") == "array" and "$ref" in data.get("items", {}):
        name = data["items"]["$ref"].removeprefix(REF) + "ListEnvelope"
    else:
        raise ValueError(f"a 2xx answer's data must be a named component, not {data}")
    schemas.setdefault(name, _envelope_schema(success=True, codes=(200, 299), data=data))
    return {"$ref": REF + name}


def _event_stream(media_type: dict) -> None:
    """OpenAPI 3.1 has no place for the schema of each event of a stream (3.2's ``itemSchema``):
    to a client the stream is text, and its events' schema is the ``x-itemSchema`` extension."""
    media_type["x-itemSchema"] = media_type["schema"]
    media_type["schema"] = {"type": "string", "description": "Server-Sent Events, each an `x-itemSchema`."}


def _enum_refs(schemas: dict) -> dict:
    """Named enums by their values, for query parameters to refer to."""
    return {
        frozenset(schema["enum"]): {"$ref": REF + name}
        for name, schema in schemas.items()
        if "enum" in schema and "properties" not in schema
    }


def _parameter_enum(schema: dict, enums: dict) -> dict:
    if "enum" in schema and frozenset(schema["enum"]) in enums:
        return dict(enums[frozenset(schema["enum"])])
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        schema["items"] = _parameter_enum(schema["items"], enums)
    return schema


def _links(operation_id: str, code: str, response: dict) -> None:
    if (operation_id, code) not in LINKS:
        return
    field, targets = LINKS[(operation_id, code)]
    response["links"] = {
        target[:1].upper() + target[1:]: {
            "operationId": target,
            "parameters": {field: f"$response.body#/data/{field}"},
        }
        for target in targets
    }


def envelope_postprocessing_hook(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in schemas.items():
        if name.endswith("Request"):
            _tighten(component)
        if name.startswith("Patched"):
            component["minProperties"] = 1  # an empty PATCH changes nothing: a 400
        if name in NON_EMPTY_BODIES:
            component["minProperties"] = 1
    if "TaskCreateRequest" in schemas:
        schemas["TaskCreateRequest"] = _task_create_variants(schemas)
        # A pending task's new params: those of its type.
        params = schemas["PatchedTaskUpdateRequest"]["properties"]["params"]
        description = params.get("description", "")
        params.clear()
        params["anyOf"] = [
            {"$ref": variant["$ref"].replace("TaskCreate", "Params")}
            for variant in schemas["TaskCreateRequest"]["oneOf"]
        ]
        params["description"] = description
    if "ScheduleCreateRequest" in schemas:
        _schedule_bodies(schemas)
    if "BatchCancelRequest" in schemas:
        schemas["BatchCancelRequest"] = _batch_cancel_variants(schemas)
    _stage_names(schemas)
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE
    enums = _enum_refs(schemas)
    for path, methods in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "task_id":
                    # The id the answers give (the path also takes it without hyphens).
                    parameter["schema"] = {"type": "string", "format": "uuid"}
                if parameter["in"] == "path" and parameter["name"] == "id":
                    # A schedule's id: what the path takes (up to 18 digits).
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}
                if parameter.get("in") != "query":
                    continue
                # An empty value means "not given" for every filter here.
                parameter["allowEmptyValue"] = True
                parameter["schema"] = _parameter_enum(parameter.get("schema", {}), enums)
                _tighten(parameter["schema"])
            responses = operation.setdefault("responses", {})
            for code, response in list(responses.items()):
                content = response.setdefault("content", {})
                if "text/event-stream" in content:
                    _event_stream(content["text/event-stream"])
                if code.startswith("2"):
                    if not content:
                        content["application/json"] = {"schema": _envelope(schemas, None)}
                    elif "application/json" in content:
                        json_content = content["application/json"]
                        json_content["schema"] = _envelope(schemas, json_content.get("schema"))
                    _links(operation["operationId"], code, response)
                elif "application/json" in content:
                    content["application/json"]["schema"] = {"$ref": REF + "ErrorEnvelope"}
            wanted = READ_ONLY_ERRORS if method == "get" else set(ERROR_STATUSES)
            for code in sorted(wanted):
                responses.setdefault(
                    code,
                    {
                        "description": ERROR_STATUSES[code],
                        "content": {"application/json": {"schema": {"$ref": REF + "ErrorEnvelope"}}},
                    },
                )
    return result


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_LIVENESS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "const": "ok"}}}
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
        "failing": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The failing checks (when not ready).",
        },
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
        "getLiveness",
        "Liveness",
        "200 while the process serves requests; checks nothing else.",
        {"200": _json("Alive.", {"$ref": REF + "Liveness"})},
    ),
    "/readyz": _health_operation(
        "getReadiness",
        "Readiness",
        "The database answers, the django-q2 broker answers and at least one cluster has reported in.",
        {
            "200": _json("Ready.", {"$ref": REF + "Readiness"}),
            "503": _json("Not ready: `failing` names the checks.", {"$ref": REF + "Readiness"}),
        },
    ),
    "/metrics": _health_operation(
        "getMetrics",
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
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Liveness"] = _LIVENESS
    schemas["Readiness"] = _READINESS
    return result
