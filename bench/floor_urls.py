"""The product's URLs plus ``/bench/floor``, for ``bench/api.py`` only (see bench/floor_settings.py).

The floor view answers with the rows of the task list's first page — the same columns, newest
first, 50 of them, ``?status=`` as the list's single-status filter — read by ``values_list`` and
written by ``json.dumps``: what serving the list costs in Django without authentication,
throttling, counting, filter sets or DRF, in the same server processes and under the same load.
"""

import json

from django.http import HttpResponse
from django.urls import include, path

from tasks.api.serializers import LIST_COLUMNS
from tasks.models import Task

PAGE_SIZE = 50


def floor_body(status: str | None = None) -> str:
    """The list's first page (``status``: only tasks in it) as ``json.dumps`` of its row tuples."""
    query = Task.objects.order_by("-created_at", "-pk")
    if status:
        query = query.filter(status=status)
    return json.dumps(list(query.values_list(*LIST_COLUMNS.values())[:PAGE_SIZE]), default=str)


def floor(request):
    return HttpResponse(floor_body(request.GET.get("status")), content_type="application/json")


urlpatterns = [
    path("bench/floor", floor),
    path("", include("taskcenter.urls")),
]
