import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from batches.importer import ImportFailed, import_csv


class Command(BaseCommand):
    help = "Import assessment records from a CSV file (all or nothing, unless --skip-invalid)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--skip-invalid", action="store_true", help="skip invalid rows and report them")

    def handle(self, *args, file, skip_invalid, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        interactive = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = int(width * done / total)
            end = "\r" if interactive and done < total else "\n"
            if interactive or done >= total:
                sys.stderr.write(f"[{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}%{end}")

        try:
            report = import_csv(file, skip_invalid=skip_invalid, on_progress=progress)
        except ImportFailed as exc:
            raise CommandError(f"{file}: {exc}; nothing was imported") from None
        for line, error in report.skipped:
            self.stderr.write(f"skipped line {line}: {error}")
        if report.skipped_count > len(report.skipped):
            self.stderr.write(f"… and {report.skipped_count - len(report.skipped)} more invalid rows")
        self.stdout.write(f"imported {report.imported} records; skipped {report.skipped_count} invalid rows")
