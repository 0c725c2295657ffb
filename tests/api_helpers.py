"""Helpers for API tests: the example batch, clients per role and envelope assertions."""

from __future__ import annotations

from rest_framework.test import APIClient

#: The statistics batch the API's first example creates, exactly.
EXAMPLE_BATCH = {
    "batch_code": "BATCH_2025_001",
    "description": "2025年第一批统计任务",
    "data_source": "student_assessments",
    "config": {
        "include_dimensions": ["academic", "non_academic"],
        "calculation_types": ["descriptive", "correlation"],
    },
}


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def envelope_of(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["success"] is (200 <= status < 400)
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    if status >= 400:
        assert body["data"] is None
    return body
