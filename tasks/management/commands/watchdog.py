import logging
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from tasks.runtime.watchdog import sweep


class Command(BaseCommand):
    help = "Find lost workers, orphaned executions and due or lost pending tasks (one sweep, or --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="sweep again and again until stopped")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between sweeps with --loop")

    def handle(self, *args, loop, interval, **options):
        while True:
            try:
                counts = sweep()
            except DatabaseError:
                if not loop:
                    raise
                # The database is unavailable for now (or its write lock held past its deadline):
                # the next sweep tries again.
                logging.getLogger("taskcenter.watchdog").exception("watchdog sweep failed")
                counts = {}
            if not loop:
                self.stdout.write(" ".join(f"{key}={value}" for key, value in counts.items()))
                return
            close_old_connections()
            time.sleep(interval)
