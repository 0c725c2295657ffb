"""First-run set-up for ``python3 dev.py run``: roles, an admin login, demo data."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from tasks.roles import setup_roles


class Command(BaseCommand):
    help = "Create the roles, an 'admin' superuser (password kept in var/admin-password) and demo data."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--demo-students", type=int, default=10_000, help="0: no demo data")

    def handle(self, *args, username, demo_students, **options):
        setup_roles()
        password_file = Path(settings.VAR_DIR) / "admin-password"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, email="", password=password)
            password_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # A new file, created owner-only: never readable by others, not even for a moment.
            password_file.unlink(missing_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password)
        if demo_students:
            self._demo(demo_students)
        known = password_file.read_text().strip() if password_file.exists() else None
        user = user_model.objects.get(username=username)
        if known and user.check_password(known):
            self.stdout.write(self.style.SUCCESS(f"admin login: {username} / {known}"))
        else:
            self.stdout.write(f"admin login: {username} (password changed since it was generated)")

    def _demo(self, students: int) -> None:
        from batches.assessments import generate
        from batches.models import AssessmentRecord, Batch
        from batches.services import batch_create
        from tasks.actors import SYSTEM

        if not AssessmentRecord.objects.exists():
            rows = generate(students)
            self.stdout.write(f"demo data: {rows} assessment records of {students} students")
        demo_batches = [
            ("BATCH_2025_001", "2025年第一批统计任务", ["academic", "non_academic"], ["descriptive", "correlation"]),
            ("BATCH_2025_002", "2025年学业指标分布与学校对比", ["academic"], ["distribution", "group_comparison"]),
            (
                "BATCH_2025_003",
                "2025年综合素质全部统计",
                ["academic", "non_academic"],
                ["descriptive", "correlation", "distribution", "group_comparison"],
            ),
        ]
        if not Batch.objects.exists():
            for code, description, dimensions, calculations in demo_batches:
                batch_create(
                    actor=SYSTEM,
                    batch_code=code,
                    description=description,
                    data_source="student_assessments",
                    config={"include_dimensions": dimensions, "calculation_types": calculations},
                )
            self.stdout.write(f"demo batches: {', '.join(code for code, *_ in demo_batches)}")
