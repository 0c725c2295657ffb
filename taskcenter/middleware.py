"""Per-request metrics and the access log line of every API call; HEAD and chunked bodies; the
API's time zone."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC
from functools import lru_cache

from django.http import JsonResponse
from django.utils import timezone

from taskcenter import metrics
from taskcenter.api.renderers import envelope

access_log = logging.getLogger("taskcenter.access")


_GROUP = re.compile(r"\(\?P<(\w+)>[^()]*\)")


@lru_cache(maxsize=512)
def readable_route(pattern: str) -> str:
    """``/api/v1/^tasks/(?P<task_id>[^/.]+)$`` → ``/api/v1/tasks/{task_id}``."""
    return _GROUP.sub(r"{\1}", pattern).replace("^", "").replace("$", "")


class RequestMetricsMiddleware:
    """Times every request; counts it by route (the URL pattern, never the raw path, so ids do
    not explode the label set) and writes one structured line per ``/api/`` call."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        route = readable_route("/" + match.route) if match is not None else "unmatched"
        metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        if request.path.startswith("/api/"):
            user = getattr(request, "user", None)
            access_log.info(
                "%s %s %s %.1f ms",
                request.method,
                route,
                response.status_code,
                elapsed * 1000,
                extra={
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "user": user.get_username() if user is not None and user.is_authenticated else None,
                },
            )
        return response


class HeadWithoutBodyMiddleware:
    """A HEAD request gets the GET's status and headers and no body: gunicorn sends whatever body
    the application returns (a client on a keep-alive connection then reads it as the next
    response). Outermost, so the headers — Content-Length included — are the GET's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method == "HEAD":
            if response.streaming:
                response.close()
                response.streaming_content = []
            else:
                response.content = b""
        return response


class ChunkedBodyMiddleware:
    """An API write whose body comes chunked (``Transfer-Encoding: chunked``, no Content-Length)
    gets 411 Length Required: Django reads a request body by its Content-Length and would see an
    empty one — a misleading "field is required" 400 for a body that was sent."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH") and request.path.startswith("/api/"):
            message = "Send the request body with a Content-Length; chunked bodies are not read."
            return JsonResponse(envelope(411, message=message), status=411)
        return self.get_response(request)


class ApiInUtcMiddleware:
    """The API speaks UTC: its timestamps are written with ``Z`` and a filter's timestamp without
    an offset is read as UTC, whatever the site's display time zone (the admin's)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        with timezone.override(UTC):
            return self.get_response(request)
