"""Serve /metrics on a machine that runs only workers (the web processes serve their own)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Export this host's taskcenter metrics (workers' counters and the shared state) over HTTP."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9108)
        parser.add_argument("--address", default="0.0.0.0")

    def handle(self, *args, port, address, **options):
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        from taskcenter.metrics import StateCollector

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(StateCollector())
        start_http_server(port, addr=address, registry=registry)
        self.stdout.write(f"serving metrics on http://{address}:{port}/metrics")
        while True:
            time.sleep(3600)
