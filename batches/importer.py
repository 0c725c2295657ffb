"""Streaming CSV import of assessment records, all-or-nothing unless invalid rows may be skipped.

Columns (header row required, any order): ``student_id, school, grade, class, dimension,
indicator, score, assessed_at``. ``score`` may be empty (a missing score); ``assessed_at`` is
``YYYY-MM-DD``; the indicator must belong to the dimension in the ``student_assessments`` source.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from batches.assessments import INDICATORS
from batches.models import AssessmentRecord

COLUMNS = ("student_id", "school", "grade", "class", "dimension", "indicator", "score", "assessed_at")
BATCH_ROWS = 5_000


class ImportFailed(Exception):
    """A row (or the header) is invalid and invalid rows may not be skipped: nothing was imported."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass
class ImportReport:
    imported: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "imported": self.imported,
            "skipped": len(self.skipped),
            "skipped_lines": [{"line": line, "error": error} for line, error in self.skipped[:100]],
        }


def _parse(row: dict) -> tuple:
    for column in COLUMNS:
        if column not in ("class", "score") and not (row.get(column) or "").strip():
            raise ValueError(f"{column} is empty")
    dimension = row["dimension"].strip()
    if dimension not in INDICATORS:
        raise ValueError(f"unknown dimension {dimension!r} (expected one of {', '.join(INDICATORS)})")
    indicator = row["indicator"].strip()
    if indicator not in INDICATORS[dimension]:
        raise ValueError(f"unknown indicator {indicator!r} for dimension {dimension}")
    raw_score = (row.get("score") or "").strip()
    score = None
    if raw_score:
        try:
            score = float(raw_score)
        except ValueError:
            raise ValueError(f"score {raw_score!r} is not a number") from None
        if not math.isfinite(score) or not 0 <= score <= 100:
            raise ValueError(f"score {raw_score} is outside 0–100")
    try:
        assessed = dt.date.fromisoformat(row["assessed_at"].strip())
    except ValueError:
        raise ValueError(f"assessed_at {row['assessed_at']!r} is not a date (YYYY-MM-DD)") from None
    fields = [row["student_id"].strip(), row["school"].strip(), row["grade"].strip(), (row.get("class") or "").strip()]
    limits = (32, 64, 16, 32)
    for name, value, limit in zip(("student_id", "school", "grade", "class"), fields, limits, strict=True):
        if len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    return (*fields, dimension, indicator, score, assessed)


def import_csv(
    path: Path,
    *,
    skip_invalid: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import ``path``; :class:`ImportFailed` (with the line number) leaves the table unchanged.

    ``on_progress(bytes_read, bytes_total)`` is called after each batch (and may raise to stop:
    the transaction is rolled back).
    """
    report = ImportReport()
    total_bytes = max(1, os.path.getsize(path))
    table = AssessmentRecord._meta.db_table
    sql = (
        f"INSERT INTO {table} (student_id, school, grade, class_name, dimension, indicator, score, assessed_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
    )
    with open(path, newline="", encoding="utf-8-sig") as handle, transaction.atomic():
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [column for column in COLUMNS if column not in header]
        if missing:
            raise ImportFailed(f"missing column(s): {', '.join(missing)}", line=1)
        reader.fieldnames = header
        batch: list[tuple] = []
        with connection.cursor() as cursor:
            for row in reader:
                line = reader.line_num
                if None in row:  # more fields than the header has
                    error = "more fields than the header"
                else:
                    try:
                        batch.append(_parse(row))
                        error = None
                    except (ValueError, AttributeError) as exc:
                        error = str(exc)
                if error is not None:
                    if not skip_invalid:
                        raise ImportFailed(error, line=line)
                    report.skipped.append((line, error))
                if len(batch) >= BATCH_ROWS:
                    cursor.executemany(sql, batch)
                    report.imported += len(batch)
                    batch = []
                    if on_progress:
                        on_progress(handle.buffer.tell(), total_bytes)
            if batch:
                cursor.executemany(sql, batch)
                report.imported += len(batch)
        if on_progress:
            on_progress(total_bytes, total_bytes)
    return report


class ImportFileMissing(ValueError):
    """The path is acceptable but no such file is in the import directory."""


#: What an import path may look like (relative, no "..", no NUL): also the OpenAPI pattern.
IMPORT_PATH_PATTERN = r"^(?!/)(?!.*\.\.)[^\x00]{1,255}$"


def resolve_import_path(relative: str) -> Path:
    """A path inside ``TASKCENTER_IMPORT_DIR``; anything outside (``..``, absolute, symlinks out) is refused."""
    base = Path(settings.TASKCENTER_IMPORT_DIR).resolve()
    if not relative or Path(relative).is_absolute():
        raise ValueError("give a path relative to the import directory")
    candidate = (base / relative).resolve()
    if base != candidate and base not in candidate.parents:
        raise ValueError("the path leaves the import directory")
    if not candidate.is_file():
        raise ImportFileMissing(f"no file {relative!r} in the import directory")
    return candidate
