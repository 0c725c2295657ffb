"""Process-level endpoints that live outside the versioned API: health, readiness, metrics; and
the admin login's lockout page."""

from __future__ import annotations

import logging
import math
import secrets

from django.conf import settings
from django.contrib import admin
from django.db import DatabaseError, connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from taskcenter.proxies import client_address, client_unknown, in_networks

logger = logging.getLogger(__name__)


# The health endpoints answer GET and HEAD, anything else 405 (as documented in the OpenAPI
# document); exempt from CSRF so that a POST gets that 405 rather than the CSRF page.
@csrf_exempt
@require_safe
def healthz(request):
    """Liveness: answers 200 while the process can serve requests (no dependency is checked)."""
    return JsonResponse({"status": "ok"})


class Failure(Exception):
    """A failing readiness check: ``reason`` is for everybody, ``detail`` (the underlying
    exception) only for staff and the log — it may name hosts, users or SQL."""

    def __init__(self, reason: str, cause: BaseException | None = None):
        super().__init__(reason)
        self.reason = reason
        self.detail = f"{cause.__class__.__name__}: {cause}" if cause is not None else None


def _check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        raise Failure("database unreachable", exc)


def _check_broker() -> None:
    from django_q.brokers import get_broker

    try:
        broker = get_broker()
        answers = broker.ping()
        broker.queue_size()
    except Exception as exc:
        raise Failure("broker unreachable", exc)
    if not answers:
        raise Failure("broker does not answer")


def _check_clusters() -> None:
    from django.core.cache import caches
    from django.core.cache.backends.db import BaseDatabaseCache
    from django_q.conf import Conf

    from tasks.selectors import live_clusters

    registry = caches[Conf.CACHE]
    try:
        registry.get(Conf.Q_STAT)
    except Exception as exc:
        if isinstance(registry, BaseDatabaseCache) and registry._table not in connection.introspection.table_names():
            missing = f"the cluster registry's table {registry._table} is missing (run 'python manage.py migrate')"
            raise Failure(missing, exc)
        raise Failure(f"the cluster registry (cache {Conf.CACHE!r}) cannot be read", exc)
    if not live_clusters():
        raise Failure("no live django-q2 cluster (start one with 'python manage.py qcluster')")


@csrf_exempt
@require_safe
def readyz(request):
    """Readiness: the database and the broker answer and at least one cluster is alive.

    200 ``{"status": "ready", "checks": {…: "ok"}}``, or 503 naming each failing part and why;
    staff users also get ``details`` (the underlying errors), which are always logged.
    """
    checks: dict[str, str] = {}
    failures: dict[str, Failure] = {}
    # Without the database neither the ORM broker nor the cluster registry can be asked.
    plan = [
        ("database", _check_database, ()),
        ("broker", _check_broker, () if settings.Q_CLUSTER.get("redis") else ("database",)),
        ("clusters", _check_clusters, ("broker",)),
    ]
    for name, check, needs in plan:
        if any(checks.get(need) != "ok" for need in needs):
            checks[name] = "skipped"
            continue
        try:
            check()
            checks[name] = "ok"
        except Failure as failure:
            checks[name] = failure.reason
            failures[name] = failure
    body = {"status": "unavailable" if failures else "ready", "checks": checks}
    if failures:
        body["failing"] = sorted(failures)
        details = {name: failure.detail for name, failure in failures.items() if failure.detail}
        logger.warning(
            "not ready: %s",
            "; ".join(f"{name}: {f.reason}" + (f" ({f.detail})" if f.detail else "") for name, f in failures.items()),
        )
        if details and _is_staff(request):
            body["details"] = details
    return JsonResponse(body, status=503 if failures else 200)


def _is_staff(request) -> bool:
    """Whether the caller is a staff user; not when that cannot be told (the session and the
    user live in the database, which may be the part that fails)."""
    try:
        return request.user.is_staff
    except DatabaseError:
        return False


METRICS_FORBIDDEN = "forbidden: /metrics needs METRICS_TOKEN or an allowed network\n"


def metrics_allowed(request) -> bool:
    """Whether ``request`` may read metrics: it bears ``METRICS_TOKEN``, or its client is in
    ``METRICS_ALLOWED_NETWORKS`` (the same rule for the web processes and ``serve_metrics``)."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and secrets.compare_digest(header[7:].strip(), token):
        return True
    if client_unknown(request):  # a proxy's address would stand in for the client's
        return False
    return in_networks(client_address(request), settings.METRICS_ALLOWED_NETWORKS)


@csrf_exempt
@require_safe
def metrics(request):
    """Prometheus text exposition; only for the token or the allowed networks (settings)."""
    if not metrics_allowed(request):
        return HttpResponse(METRICS_FORBIDDEN, status=403)
    from prometheus_client import CONTENT_TYPE_LATEST

    from taskcenter.metrics import render

    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a login attempt while its user name or client address is locked
    out: 429 and the admin's own page saying why and for how long."""
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    message = ngettext(
        "Too many failed logins for this user or from this address. Try again in %(minutes)d minute.",
        "Too many failed logins for this user or from this address. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    context = {**admin.site.each_context(request), "title": _("Log in"), "message": message}
    # Rendered now: AxesMiddleware hands this response out in place of the view's.
    return render(request, "admin/login_locked_out.html", context, status=429)
