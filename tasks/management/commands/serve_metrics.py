"""Serve /metrics on a machine that runs only workers (the web processes serve their own)."""

from __future__ import annotations

from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.core.handlers.wsgi import WSGIRequest
from django.core.management.base import BaseCommand


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # a scrape every few seconds is no news
        pass


def guarded(app):
    """``app`` (prometheus_client's WSGI exposition) for the callers the web processes' /metrics
    admits, 403 for the others: one access rule, :func:`taskcenter.views.metrics_allowed`."""
    from taskcenter.views import METRICS_FORBIDDEN, metrics_allowed

    def serve(environ, start_response):
        if not metrics_allowed(WSGIRequest(environ)):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [METRICS_FORBIDDEN.encode()]
        return app(environ, start_response)

    return serve


class Command(BaseCommand):
    help = (
        "Export this host's taskcenter metrics (workers' counters and the shared state) over HTTP, to the"
        " METRICS_TOKEN and METRICS_ALLOWED_NETWORKS like the web processes' /metrics."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9108)
        parser.add_argument("--address", default="0.0.0.0")

    def handle(self, *args, port, address, **options):
        from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess

        from taskcenter.metrics import StateCollector

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(StateCollector())
        server = make_server(address, port, guarded(make_wsgi_app(registry)), _Server, _QuietHandler)
        self.stdout.write(f"serving metrics on http://{address}:{port}/metrics", ending="\n")
        self.stdout.flush()
        server.serve_forever()
