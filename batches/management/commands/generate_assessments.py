import time

from django.core.management.base import BaseCommand, CommandError

from batches.assessments import generate
from batches.models import AssessmentRecord


class Command(BaseCommand):
    help = "Insert deterministic demo assessment records: N students × 10 indicators, ~1 % missing scores."

    def add_arguments(self, parser):
        parser.add_argument("--students", type=int, required=True)
        parser.add_argument("--seed", type=int, default=2025)
        parser.add_argument("--replace", action="store_true", help="delete the existing records first")

    def handle(self, *args, students, seed, replace, **options):
        if students < 1:
            raise CommandError("--students must be at least 1")
        if replace:
            AssessmentRecord.objects.all().delete()
        elif AssessmentRecord.objects.exists():
            raise CommandError("assessment records exist already: use --replace to start again")
        started = time.perf_counter()
        rows = generate(students, seed=seed)
        self.stdout.write(f"inserted {rows} records for {students} students in {time.perf_counter() - started:.1f} s")
