"""Page-number pagination, answered as {results, total, page, page_size, total_pages}."""

from __future__ import annotations

import math

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination

from taskcenter.api.responses import ok

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def _positive_int(request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"A whole number is required, not {raw!r}."]}) from None
    if value < 1:
        raise ValidationError({name: ["Must be at least 1."]})
    if maximum is not None and value > maximum:
        # Rejected rather than clamped: a client asking for 500 rows should know it got fewer.
        raise ValidationError({name: [f"Must be at most {maximum}."]})
    return value


class PagePagination(BasePagination):
    """``?page=1&page_size=20``; ``page_size`` above 100 or a non-number is a 400; a page past
    the last one is a 404 (an empty result set has one empty page)."""

    def paginate_queryset(self, queryset, request, view=None):
        self.page_size = _positive_int(request, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        self.page = _positive_int(request, "page", 1)
        self.total = queryset.count()
        self.total_pages = max(1, math.ceil(self.total / self.page_size))
        if self.page > self.total_pages:
            raise NotFound(f"Page {self.page} does not exist; there are {self.total_pages} page(s).")
        start = (self.page - 1) * self.page_size
        # The sliced queryset, not yet run: a serializer iterates it (one query, prefetches
        # included) and a view may narrow it first (the task list reads values_list tuples).
        return queryset[start : start + self.page_size]

    def get_paginated_response(self, data):
        return ok(
            {
                "results": data,
                "total": self.total,
                "page": self.page,
                "page_size": self.page_size,
                "total_pages": self.total_pages,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "total", "page", "page_size", "total_pages"],
            "properties": {
                "results": schema,
                "total": {"type": "integer", "minimum": 0},
                "page": {"type": "integer", "minimum": 1},
                "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                "total_pages": {"type": "integer", "minimum": 1},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "page",
                "in": "query",
                "required": False,
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1, "default": 1},
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "description": f"Items per page, at most {MAX_PAGE_SIZE} (more is a 400).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
            },
        ]
