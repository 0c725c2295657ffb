"""Demo data for ``python3 dev.py run``: assessment records and three batches over them."""

from django.core.management.base import BaseCommand, CommandError

from batches.assessments import generate
from batches.models import AssessmentRecord, Batch
from batches.services import batch_create
from tasks.actors import SYSTEM

#: (batch code, description, dimensions, calculations) of the demo batches.
DEMO_BATCHES = [
    ("BATCH_2025_001", "2025年第一批统计任务", ["academic", "non_academic"], ["descriptive", "correlation"]),
    ("BATCH_2025_002", "2025年学业指标分布与学校对比", ["academic"], ["distribution", "group_comparison"]),
    (
        "BATCH_2025_003",
        "2025年综合素质全部统计",
        ["academic", "non_academic"],
        ["descriptive", "correlation", "distribution", "group_comparison"],
    ),
]


class Command(BaseCommand):
    help = (
        "Create demo data unless some exists: the assessment records of N students (none are made "
        "when any record exists) and the batches BATCH_2025_001–003 (none when any batch exists)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--students", type=int, default=10_000, help="0: no demo data")

    def handle(self, *args, students, **options):
        if students < 0:
            raise CommandError("--students must be 0 or more")
        if not students:
            return
        if not AssessmentRecord.objects.exists():
            rows = generate(students)
            self.stdout.write(f"demo data: {rows} assessment records of {students} students")
        if not Batch.objects.exists():
            for code, description, dimensions, calculations in DEMO_BATCHES:
                batch_create(
                    actor=SYSTEM,
                    batch_code=code,
                    description=description,
                    data_source="student_assessments",
                    config={"include_dimensions": dimensions, "calculation_types": calculations},
                )
            self.stdout.write(f"demo batches: {', '.join(code for code, *_ in DEMO_BATCHES)}")
