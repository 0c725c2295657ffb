"""A batch's config: the bounded list-valued filters, through the API."""

from __future__ import annotations

import pytest

from batches.models import Batch
from batches.sources import MAX_LIST_VALUES
from tests.api_helpers import client_for, envelope_of

pytestmark = pytest.mark.django_db


def batch_with_filters(code: str, **filters) -> dict:
    return {
        "batch_code": code,
        "data_source": "student_assessments",
        "config": {"include_dimensions": ["academic"], "calculation_types": ["descriptive"], "filters": filters},
    }


@pytest.mark.parametrize("field", ["schools", "grades"])
def test_a_filter_list_longer_than_the_maximum_is_a_400_naming_it_and_creates_nothing(manager, field):
    api = client_for(manager)
    url = "/api/v1/statistics/batches"
    at_most = [f"V{i}" for i in range(MAX_LIST_VALUES)]
    body = envelope_of(api.post(url, batch_with_filters("MAX", **{field: at_most}), format="json"), 201)
    assert len(body["data"]["config"]["filters"][field]) == MAX_LIST_VALUES
    too_many = [*at_most, "ONE_MORE"]
    body = envelope_of(api.post(url, batch_with_filters("OVER", **{field: too_many}), format="json"), 400)
    assert body["errors"] == {f"config.filters.{field}": [f"At most {MAX_LIST_VALUES} values."]}
    assert list(Batch.objects.values_list("batch_code", flat=True)) == ["MAX"]
