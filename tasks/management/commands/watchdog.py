import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from tasks.runtime.watchdog import sweep


class Command(BaseCommand):
    help = "Find lost workers, orphaned executions and due or lost pending tasks (one sweep, or --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="sweep again and again until stopped")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between sweeps with --loop")

    def handle(self, *args, loop, interval, **options):
        while True:
            counts = sweep()
            if not loop:
                self.stdout.write(" ".join(f"{key}={value}" for key, value in counts.items()))
                return
            close_old_connections()
            time.sleep(interval)
