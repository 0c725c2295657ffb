"""The checker the black-box tests run on every answer (``tests/api_contract.py``) finds what it
should, with the JSON path of each finding: a small document of its own, no server."""

from __future__ import annotations

import json

import pytest

from tests.api_contract import ApiContract, ContractViolation, parse_event_stream

ERROR = {"success": False, "code": 404, "message": "no", "data": None}


def _json(status: int, ref: str) -> dict:
    return {str(status): {"description": "", "content": {"application/json": {"schema": {"$ref": ref}}}}}


DOCUMENT = {
    "openapi": "3.1.0",
    "paths": {
        "/api/v1/things/{thing_id}": {
            "get": {"operationId": "getThing", "responses": _json(200, "#/components/schemas/Thing")}
        },
        "/api/v1/things/count": {
            "get": {"operationId": "countThings", "responses": _json(200, "#/components/schemas/Count")}
        },
        "/api/v1/things/{thing_id}/events": {
            "get": {
                "operationId": "streamThing",
                "responses": {
                    "200": {
                        "description": "",
                        "content": {
                            "text/event-stream": {
                                "schema": {"type": "string"},
                                "x-itemSchema": {"$ref": "#/components/schemas/TaskEvent"},
                            }
                        },
                    }
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Base": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
            "Thing": {
                "allOf": [{"$ref": "#/components/schemas/Base"}],
                "type": "object",
                "properties": {
                    "when": {"type": "string", "format": "date-time"},
                    "parts": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Part"}},
                    "owner": {"oneOf": [{"$ref": "#/components/schemas/Person"}, {"type": "null"}]},
                    "anything": {"type": "object", "additionalProperties": {}},
                    "list": {"type": "array", "items": {"$ref": "#/components/schemas/Part"}},
                },
            },
            "Part": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "Person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "Count": {"type": "object", "properties": {"count": {"type": "integer"}}},
            "ErrorEnvelope": {
                "type": "object",
                "properties": {
                    "success": {"const": False},
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "data": {"type": "null"},
                },
            },
            "TaskEvent": {
                "type": "object",
                "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
                "required": ["event", "data"],
            },
            "TaskStatus": {"enum": ["processing", "completed"]},
            "Stage": {"type": "object", "properties": {"stage": {"type": "string"}}},
            "TaskLog": {"type": "object", "properties": {"id": {"type": "integer"}}},
        }
    },
}


def _check(contract, path, body, status=200, content_type="application/json"):
    payload = body if isinstance(body, str) else json.dumps(body)
    return contract.check("get", path, status, content_type, payload)


def _violation(contract, path, body, **kwargs) -> str:
    with pytest.raises(ContractViolation) as raised:
        _check(contract, path, body, **kwargs)
    return str(raised.value)


def test_a_matching_answer_passes_and_counts_for_its_operation():
    contract = ApiContract(DOCUMENT)
    thing = {
        "id": "a",
        "when": "2025-09-04T10:00:00Z",
        "parts": {"x": {"size": 1}},
        "owner": {"name": "n"},
        "anything": {"free": {"form": [1]}},
        "list": [{"size": 2}],
    }
    assert _check(contract, "/api/v1/things/1", thing) == "getThing"
    # A concrete path before a templated one.
    assert _check(contract, "/api/v1/things/count?x=1", {"count": 1}) == "countThings"
    assert contract.answered == {"getThing": {200}, "countThings": {200}}
    assert contract.unanswered() == ["streamThing (GET /api/v1/things/{thing_id}/events)"]


def test_undeclared_keys_are_found_wherever_they_are():
    contract = ApiContract(DOCUMENT)
    thing = {
        "id": "a",
        "extra": 1,
        "parts": {"x": {"size": 1, "colour": "red"}},
        "owner": {"name": "n", "age": 3},
        "list": [{"size": 2}, {"weight": 3}],
    }
    message = _violation(contract, "/api/v1/things/1", thing)
    assert "(getThing)" in message
    for path in ("$.extra", "$.parts.x.colour", "$.owner.age", "$.list[1].weight"):
        assert f"{path}: key" in message


def test_invalid_values_are_reported_with_their_paths():
    contract = ApiContract(DOCUMENT)
    message = _violation(contract, "/api/v1/things/1", {"when": "2025-09-04 10:00", "parts": {"x": {"size": "1"}}})
    assert "$: 'id' is a required property" in message
    assert "$.when: '2025-09-04 10:00' is not a 'date-time'" in message
    assert "$.parts.x.size: '1' is not of type 'integer'" in message


def test_an_undocumented_status_or_content_type_fails():
    contract = ApiContract(DOCUMENT)
    assert "status 500 is not documented" in _violation(contract, "/api/v1/things/1", {}, status=500)
    assert "content type 'text/html'" in _violation(contract, "/api/v1/things/1", "<p>", content_type="text/html")
    assert contract.answered == {}


def test_outside_the_operations_an_api_answer_is_an_error_envelope():
    contract = ApiContract(DOCUMENT)
    assert _check(contract, "/api/v1/nothing", ERROR, status=404) is None
    assert "expected 404" in _violation(contract, "/api/v1/nothing", ERROR, status=400)
    assert "$.extra: key" in _violation(contract, "/api/v1/nothing", {**ERROR, "extra": 1}, status=404)
    with pytest.raises(ContractViolation, match="no operation"):
        contract.check("get", "/elsewhere", 200, "text/html", "")


def test_event_streams_are_checked_event_by_event():
    contract = ApiContract(DOCUMENT)
    good = (
        'event: status\ndata: {"status": "processing", "progress": 5, "stage_details": [{"stage": "run"}]}\n\n'
        ": keep-alive\n\n"
        'id: 7\nevent: log\ndata: {"id": 7}\n\n'
        'event: end\ndata: {"status": "completed"}\n\n'
    )
    assert [event["event"] for event in parse_event_stream(good)] == ["status", "log", "end"]
    assert _check(contract, "/api/v1/things/1/events", good, content_type="text/event-stream") == "streamThing"
    bad = 'retry: 5\nevent: end\ndata: {"status": "processing", "why": 1}\n\n'
    message = _violation(contract, "/api/v1/things/1/events", bad, content_type="text/event-stream")
    assert "event[0].retry: key" in message
    assert "event[0].data: {'status': 'processing', 'why': 1} is not valid under any of the given schemas" in message
