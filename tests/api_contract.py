"""Real answers against the OpenAPI document, exactly.

``ApiContract(document).check(method, path, status, content_type, payload)`` finds the operation
whose path template matches ``path`` (a concrete path before a templated one, as OpenAPI says),
the documented response for the status and media type (an undocumented one fails), and then:

- validates the JSON body with Draft 2020-12 (OpenAPI 3.1's dialect; ``$ref`` resolved by
  ``referencing`` against the whole document; formats asserted, ``date-time`` as RFC 3339);
- walks it: every key of every object must be declared by a schema that applies there.
  Applicable are the schema itself, what its ``$ref`` and ``allOf`` lead to, and the ``oneOf`` /
  ``anyOf`` branches the value validates against (all of them when none does: the validation
  already failed). A key is declared by ``properties`` or ``patternProperties``, or by
  ``additionalProperties`` with a schema (a map: its values are walked against that schema).
  A schema with nothing but annotations (``{}``: any JSON) is not walked into.

``text/event-stream`` answers are parsed into events, each checked as an object
``{event, data, id}`` against the documented schema, and each event's ``data`` JSON against
``EVENT_DATA`` below (what streamTaskEvents' description says of each event).

Every violation is reported with its JSON path. Operations answered with a 2xx are recorded in
``answered`` (operationId → statuses seen).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "https://taskcenter.invalid/openapi.json"
EVENTS_URI = "https://taskcenter.invalid/events.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: Keywords that say nothing about the value: a schema of only these is "any JSON".
ANNOTATIONS = frozenset(
    {
        "description",
        "title",
        "readOnly",
        "writeOnly",
        "default",
        "examples",
        "example",
        "deprecated",
        "$comment",
        "discriminator",
        "externalDocs",
        "xml",
    }
)


def _component(name: str) -> dict:
    return {"$ref": f"{DOCUMENT_URI}#/components/schemas/{name}"}


#: The ``data`` of each event of ``GET /api/v1/tasks/{task_id}/events``, as the operation's
#: description puts it: ``status`` ({status, progress, stage_details}) on every change, ``log``
#: a TaskLog, ``end`` a final state ({status}, or {status: null, reason: deleted}). ``reconnect``'s
#: data is not described: it is only required to be JSON.
EVENT_DATA = {
    "status": {
        "type": "object",
        "required": ["status", "progress", "stage_details"],
        "properties": {
            "status": _component("TaskStatus"),
            "progress": {"type": "number", "minimum": 0, "maximum": 100},
            "stage_details": {"type": "array", "items": _component("Stage")},
        },
    },
    "log": _component("TaskLog"),
    "end": {
        "oneOf": [
            {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"enum": ["completed", "failed", "cancelled"]}},
            },
            {
                "type": "object",
                "required": ["status", "reason"],
                "properties": {"status": {"type": "null"}, "reason": {"const": "deleted"}},
            },
        ]
    },
    "reconnect": {},
}

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)
#: Draft 2020-12's format checks, and ``date-time`` (which jsonschema checks only with an extra
#: package installed).
FORMATS = FormatChecker(Draft202012Validator.FORMAT_CHECKER.checkers)


@FORMATS.checks("date-time")
def _is_date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _pointer(*segments: str) -> str:
    return "".join("/" + quote(str(s).replace("~", "~0").replace("/", "~1"), safe="~") for s in segments)


def json_path(segments, root: str = "$") -> str:
    """``$.data.results[0]['task-id']`` for the segments of a place in a JSON value."""
    text = root
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", segment):
            text += f".{segment}"
        else:
            text += f"[{segment!r}]"
    return text


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    responses: dict

    def __str__(self) -> str:
        return f"{self.operation_id} ({self.method.upper()} {self.template})"


class ContractViolation(AssertionError):
    pass


class ApiContract:
    def __init__(self, document: dict):
        self.document = document
        self.registry = Registry().with_resources(
            [
                (DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)),
                (EVENTS_URI, Resource.from_contents(EVENT_DATA, default_specification=DRAFT202012)),
            ]
        )
        self.resolver = self.registry.resolver()
        self._validators: dict[str, Draft202012Validator] = {}
        self._templates = self._path_templates()
        #: operationId → the 2xx statuses it answered.
        self.answered: dict[str, set[int]] = {}

    @classmethod
    def fetch(cls, base_url: str, token: str | None = None) -> ApiContract:
        """The document a live server serves at ``/api/schema/``."""
        import urllib.request

        request = urllib.request.Request(f"{base_url}/api/schema/", headers={"Accept": "application/json"})
        if token:
            request.add_header("Authorization", f"Token {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return cls(json.loads(response.read()))

    # -- operations ---------------------------------------------------------------------------

    def operations(self) -> list[Operation]:
        return [
            Operation(item[method]["operationId"], method, template, item[method].get("responses", {}))
            for template, item in self.document["paths"].items()
            for method in METHODS
            if method in item
        ]

    def unanswered(self) -> list[str]:
        """The schema's operations no check saw answering with a 2xx."""
        return [str(op) for op in self.operations() if op.operation_id not in self.answered]

    def _path_templates(self) -> list[tuple[re.Pattern, str]]:
        templates = []
        for template in self.document["paths"]:
            regex = "".join(
                "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}/]+\})", template)
            )
            # Concrete paths before templated ones (OpenAPI's rule); more literal text first.
            literal = len(re.sub(r"\{[^}/]+\}", "", template))
            templates.append((template.count("{"), -literal, re.compile(f"^{regex}$"), template))
        templates.sort(key=lambda t: t[:2])
        return [(pattern, template) for _, _, pattern, template in templates]

    def template_of(self, path: str) -> str | None:
        path = path.split("?", 1)[0]
        for pattern, template in self._templates:
            if pattern.match(path):
                return template
        return None

    def operation(self, method: str, path: str) -> Operation | None:
        template = self.template_of(path)
        if template is None:
            return None
        item = self.document["paths"][template]
        method = method.lower()
        if method not in item:
            return None
        return Operation(item[method]["operationId"], method, template, item[method].get("responses", {}))

    # -- the check ----------------------------------------------------------------------------

    def check(self, method: str, path: str, status: int, content_type: str | None, payload: bytes | str) -> str | None:
        """Raise ``ContractViolation`` unless the answer is exactly what the document says;
        return the operationId (None for a request outside the document's operations:
        ``_check_outside``)."""
        operation = self.operation(method, path)
        where = f"{method.upper()} {path} → {status}"
        text = payload.decode() if isinstance(payload, bytes) else payload
        if operation is None:
            self._check_outside(where, path, status, content_type, text)
            return None
        where = f"{where} ({operation.operation_id})"
        key = str(status)
        response_key = next((k for k in (key, f"{key[0]}XX", "default") if k in operation.responses), None)
        if response_key is None:
            documented = ", ".join(operation.responses)
            raise ContractViolation(f"{where}: status {status} is not documented (documented: {documented})")
        response = operation.responses[response_key]
        content = response.get("content")
        if not content:
            if text:
                raise ContractViolation(f"{where}: documented without a body, answered {text[:200]!r}")
            self._answered(operation, status)
            return operation.operation_id
        media = (content_type or "").split(";", 1)[0].strip().lower()
        documented_media = next((m for m in content if m.lower() == media), None)
        if documented_media is None:
            raise ContractViolation(f"{where}: content type {content_type!r} is not documented ({', '.join(content)})")
        if "schema" not in content[documented_media]:
            self._answered(operation, status)
            return operation.operation_id
        pointer = _pointer("paths", operation.template, operation.method, "responses", response_key)
        location = f"{DOCUMENT_URI}#{pointer}{_pointer('content', documented_media, 'schema')}"
        if media == "text/event-stream":
            # Each event's schema: the x-itemSchema extension (OpenAPI 3.2's itemSchema).
            if "x-itemSchema" in content[documented_media]:
                location = f"{DOCUMENT_URI}#{pointer}{_pointer('content', documented_media, 'x-itemSchema')}"
            problems = self._event_stream_problems(text, location)
        elif media == "application/json" or media.endswith("+json"):
            try:
                body = json.loads(text)
            except ValueError as error:
                raise ContractViolation(f"{where}: the body is not JSON ({error}): {text[:200]!r}") from None
            problems = self.problems(body, location)
        else:
            problems = self.problems(text, location)
        if problems:
            listed = "\n  ".join(problems[:25])
            more = f"\n  … and {len(problems) - 25} more" if len(problems) > 25 else ""
            raise ContractViolation(f"{where}: the answer does not match its documented schema:\n  {listed}{more}")
        self._answered(operation, status)
        return operation.operation_id

    def _check_outside(self, where: str, path: str, status: int, content_type: str | None, text: str) -> None:
        """A request outside the document's operations: under ``/api/v1/`` an unknown path is a
        404 and a method its path does not have a 405, each an ErrorEnvelope (the API's contract:
        every answer under ``/api/v1/`` is an envelope); elsewhere nothing is documented."""
        template = self.template_of(path)
        if not path.startswith("/api/v1/"):
            raise ContractViolation(f"{where}: no operation of the schema answers {path.split('?')[0]}")
        expected = 404 if template is None else 405
        if status != expected:
            raise ContractViolation(f"{where}: outside the schema's operations, expected {expected}")
        if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
            raise ContractViolation(f"{where}: content type {content_type!r}, expected application/json")
        problems = self.problems(json.loads(text), DOCUMENT_URI + "#/components/schemas/ErrorEnvelope")
        if problems:
            listed = "\n  ".join(problems[:25])
            raise ContractViolation(f"{where}: the answer is not an ErrorEnvelope:\n  {listed}")

    def _answered(self, operation: Operation, status: int) -> None:
        if 200 <= status < 300:
            self.answered.setdefault(operation.operation_id, set()).add(status)

    def problems(self, value, location: str, root: str = "$") -> list[str]:
        """What is wrong with ``value`` against the schema at ``location`` (a URI with a JSON
        pointer fragment): validation errors, then undeclared keys, each with its JSON path
        (``root`` names the value)."""
        errors = sorted(self._validator(location).iter_errors(value), key=lambda e: [str(s) for s in e.absolute_path])
        undeclared: list[str] = []
        self._walk(value, [location], [], undeclared, root)
        return [self._describe(error, root) for error in errors] + undeclared

    # -- event streams ------------------------------------------------------------------------

    def _event_stream_problems(self, text: str, location: str) -> list[str]:
        problems = []
        for index, event in enumerate(parse_event_stream(text)):
            root = f"event[{index}]"
            problems += self.problems(event, location, root)
            name, data = event.get("event"), event.get("data")
            if name not in EVENT_DATA or not isinstance(data, str):
                continue  # the event's own schema already said what is wrong
            try:
                parsed = json.loads(data)
            except ValueError:
                problems.append(f"{root}.data: not JSON: {data[:200]!r}")
                continue
            problems += self.problems(parsed, EVENTS_URI + "#" + _pointer(name), f"{root}.data")
        return problems

    # -- validation ---------------------------------------------------------------------------

    def _validator(self, location: str) -> Draft202012Validator:
        validator = self._validators.get(location)
        if validator is None:
            validator = Draft202012Validator({"$ref": location}, registry=self.registry, format_checker=FORMATS)
            self._validators[location] = validator
        return validator

    @staticmethod
    def _describe(error, root: str) -> str:
        message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        path = json_path(error.absolute_path, root)
        if error.validator == "required":
            return f"{path}: {message}"
        if error.validator in ("oneOf", "anyOf") and error.context:
            causes = "; ".join(sorted({e.message[:200] for e in error.context}))
            return f"{path}: {message} ({error.validator}: {causes})"
        return f"{path}: {message} ({error.validator}: {json.dumps(error.validator_value, ensure_ascii=False)[:200]})"

    # -- the walk -----------------------------------------------------------------------------

    def _schema(self, location: str):
        return self.resolver.lookup(location).contents

    @staticmethod
    def _join(location: str, ref: str) -> str:
        return location.split("#", 1)[0] + ref if ref.startswith("#") else ref

    def _applicable(self, value, location: str, seen: set | None = None) -> list[str]:
        """``location`` and every schema that applies to ``value`` through ``$ref``, ``allOf``
        and the ``oneOf``/``anyOf`` branches it validates against."""
        seen = set() if seen is None else seen
        if location in seen:
            return []
        seen.add(location)
        schema = self._schema(location)
        found = [location]
        if not isinstance(schema, dict):
            return found
        if "$ref" in schema:
            found += self._applicable(value, self._join(location, schema["$ref"]), seen)
        for index, _ in enumerate(schema.get("allOf", ())):
            found += self._applicable(value, location + _pointer("allOf", str(index)), seen)
        for keyword in ("oneOf", "anyOf"):
            branches = [location + _pointer(keyword, str(i)) for i in range(len(schema.get(keyword, ())))]
            matching = [branch for branch in branches if self._validator(branch).is_valid(value)]
            for branch in matching or branches:
                found += self._applicable(value, branch, seen)
        return found

    def _is_any(self, location: str) -> bool:
        schema = self._schema(location)
        return schema is True or (isinstance(schema, dict) and not (set(schema) - ANNOTATIONS))

    def _walk(self, value, locations: list[str], path: list, undeclared: list[str], root: str) -> None:
        if not isinstance(value, dict | list):
            return
        applicable = []
        for location in locations:
            for found in self._applicable(value, location):
                if found not in applicable:
                    applicable.append(found)
        if all(self._is_any(location) for location in applicable):
            return  # any JSON: nothing declares its keys
        schemas = [(location, self._schema(location)) for location in applicable]
        schemas = [(location, schema) for location, schema in schemas if isinstance(schema, dict)]
        if isinstance(value, dict):
            for key, item in value.items():
                children = []
                for location, schema in schemas:
                    properties = schema.get("properties", {})
                    patterns = [p for p in schema.get("patternProperties", {}) if re.search(p, key)]
                    if key in properties:
                        children.append(location + _pointer("properties", key))
                    children += [location + _pointer("patternProperties", p) for p in patterns]
                    extra = schema.get("additionalProperties")
                    if key not in properties and not patterns and extra not in (None, False):
                        children.append(location + _pointer("additionalProperties"))
                if not children:
                    declared = sorted({k for _, s in schemas for k in s.get("properties", {})})
                    undeclared.append(
                        f"{json_path([*path, key], root)}: key {key!r} is not declared (declared here: {declared})"
                    )
                    continue
                self._walk(item, children, [*path, key], undeclared, root)
        else:
            for index, item in enumerate(value):
                children = []
                for location, schema in schemas:
                    prefix_items = schema.get("prefixItems", [])
                    if index < len(prefix_items):
                        children.append(location + _pointer("prefixItems", str(index)))
                    elif schema.get("items") not in (None, False):
                        children.append(location + _pointer("items"))
                if children:
                    self._walk(item, children, [*path, index], undeclared, root)


def parse_event_stream(text: str) -> list[dict]:
    """Server-Sent Events as objects of their fields (``event``, ``data``, ``id``, …); comment
    lines (``: keep-alive``) are skipped, several ``data`` lines joined with newlines."""
    events = []
    for block in re.split(r"\r\n\r\n|\n\n|\r\r", text):
        event: dict[str, str] = {}
        for line in re.split(r"\r\n|\n|\r", block):
            if not line or line.startswith(":"):
                continue
            name, _, field = line.partition(":")
            field = field.removeprefix(" ")
            event[name] = event[name] + "\n" + field if name == "data" and name in event else field
        if event:
            events.append(event)
    return events


class SessionContract:
    """The document, fetched from the first live server that asks (once a session: every server
    runs the same code), and with it what every operation answered. Fetched anonymously: a
    user's request would count against the throttling test's rate."""

    def __init__(self):
        self.contract: ApiContract | None = None

    def of(self, base: str) -> ApiContract:
        if self.contract is None:
            self.contract = ApiContract.fetch(base)
        return self.contract


class Http:
    """Requests to a live server; every answer is checked against the document as it arrives."""

    def __init__(self, base: str, token: str | None = None, *, contract: SessionContract):
        self.base, self.token = base, token
        self.contract = contract.of(base)

    def __call__(
        self,
        method: str,
        path: str,
        body=None,
        *,
        raw: bytes | None = None,
        content_type="application/json",
        headers: dict | None = None,
    ):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method.upper(), headers=headers or {})
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, payload, headers = error.code, error.read(), error.headers
        self.last_headers = headers
        return status, self.checked(method, path, status, headers, payload)

    def checked(self, method: str, path: str, status: int, headers, payload: bytes):
        """The answer's body (parsed when JSON), once it matched the document."""
        self.contract.check(method, path, status, headers.get("Content-Type"), payload)
        body = json.loads(payload) if headers.get("Content-Type", "").startswith("application/json") else payload
        if isinstance(body, dict) and "code" in body:
            assert body["code"] == status and body["success"] is (status < 400)
            if status >= 400:
                assert body["data"] is None
        return body
