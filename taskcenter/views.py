"""Process-level endpoints that live outside the versioned API: health, readiness, metrics."""

from __future__ import annotations

import ipaddress
import logging
import secrets

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request):
    """Liveness: answers 200 while the process can serve requests (no dependency is checked)."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return f"database unreachable: {exc.__class__.__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    from django_q.brokers import get_broker

    try:
        broker = get_broker()
        if not broker.ping():
            return f"broker {broker.info()} does not answer"
        broker.queue_size()
    except Exception as exc:
        return f"broker unreachable: {exc.__class__.__name__}: {exc}"
    return None


def _check_clusters() -> str | None:
    from tasks.selectors import live_clusters

    if not live_clusters():
        return "no live django-q2 cluster (start one with 'python manage.py qcluster')"
    return None


def readyz(request):
    """Readiness: the database and the broker answer and at least one cluster is alive.

    200 ``{"status": "ready", "checks": {…: "ok"}}``, or 503 naming each failing part.
    """
    checks = {"database": _check_database()}
    # Without the database neither the ORM broker nor the cluster registry can be asked.
    checks["broker"] = _check_broker() if checks["database"] is None or settings.Q_CLUSTER.get("redis") else "skipped"
    checks["clusters"] = _check_clusters() if checks["broker"] is None else "skipped"
    failing = {name: problem for name, problem in checks.items() if problem not in (None, "skipped")}
    body = {
        "status": "unavailable" if failing else "ready",
        "checks": {name: problem or "ok" for name, problem in checks.items()},
    }
    if failing:
        body["failing"] = sorted(failing)
        logger.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in failing.items()))
    return JsonResponse(body, status=503 if failing else 200)


def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and secrets.compare_digest(header[7:].strip(), token):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_NETWORKS)


def metrics(request):
    """Prometheus text exposition; only for the token or the allowed networks (settings)."""
    if not _metrics_allowed(request):
        return HttpResponse("forbidden: /metrics needs METRICS_TOKEN or an allowed network\n", status=403)
    from prometheus_client import CONTENT_TYPE_LATEST

    from taskcenter.metrics import render

    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
