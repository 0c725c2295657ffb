"""Streaming CSV import of assessment records, all-or-nothing unless invalid rows may be skipped.

The import task (``batches.jobs``) writes a batch of rows per short transaction, *staged* (marked
with the task's id, read by nobody), and its completion publishes them in the transaction that
records it; the management command imports in one transaction.

Columns (header row required, any order): ``student_id, school, grade, class, dimension,
indicator, score, assessed_at``. ``score`` may be empty (a missing score); ``assessed_at`` is
``YYYY-MM-DD``; the indicator must belong to the dimension in the ``student_assessments`` source.
The file is UTF-8 (a BOM is allowed); a line that is not, contains a NUL byte, or is longer than
:data:`MAX_LINE_CHARS` stops the import whatever ``skip_invalid`` says (the file as a whole is
not what it should be), as does a quoted field that never closes.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from batches.assessments import INDICATORS
from batches.models import AssessmentRecord

COLUMNS = ("student_id", "school", "grade", "class", "dimension", "indicator", "score", "assessed_at")
#: A line longer than this stops the import (a row has a few hundred characters; the bound keeps
#: a file without line breaks from being read into memory whole).
MAX_LINE_CHARS = 65_536
#: Characters of a bad value quoted in an error message.
SHOWN_CHARS = 40
BATCH_ROWS = 5_000


class ImportFailed(Exception):
    """A row (or the header) is invalid and invalid rows may not be skipped: nothing was imported."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


#: Invalid rows listed by line in a report (all are counted).
LISTED_SKIPS = 100


@dataclass
class ImportReport:
    imported: int = 0
    skipped_count: int = 0
    #: The first :data:`LISTED_SKIPS` invalid rows: (line, error).
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, line: int, error: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < LISTED_SKIPS:
            self.skipped.append((line, error))

    def as_dict(self) -> dict:
        return {
            "imported": self.imported,
            "skipped": self.skipped_count,
            "skipped_lines": [{"line": line, "error": error} for line, error in self.skipped],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ImportReport:
        """The report :meth:`as_dict` described (an import task's checkpoint keeps it)."""
        return cls(
            imported=int(data.get("imported", 0)),
            skipped_count=int(data.get("skipped", 0)),
            skipped=[(item["line"], item["error"]) for item in data.get("skipped_lines", [])],
        )


def _shown(value: str) -> str:
    """``value`` for an error message, cut to :data:`SHOWN_CHARS` characters."""
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"


def _parse(row: dict) -> tuple:
    for column in COLUMNS:
        if column not in ("class", "score") and not (row.get(column) or "").strip():
            raise ValueError(f"{column} is empty")
    dimension = row["dimension"].strip()
    if dimension not in INDICATORS:
        raise ValueError(f"unknown dimension {_shown(dimension)!r} (expected one of {', '.join(INDICATORS)})")
    indicator = row["indicator"].strip()
    if indicator not in INDICATORS[dimension]:
        raise ValueError(f"unknown indicator {_shown(indicator)!r} for dimension {dimension}")
    raw_score = (row.get("score") or "").strip()
    score = None
    if raw_score:
        try:
            score = float(raw_score)
        except ValueError:
            raise ValueError(f"score {_shown(raw_score)!r} is not a number") from None
        if not math.isfinite(score) or not 0 <= score <= 100:
            raise ValueError(f"score {_shown(raw_score)} is outside 0–100")
    try:
        assessed = dt.date.fromisoformat(row["assessed_at"].strip())
    except ValueError:
        raise ValueError(f"assessed_at {_shown(row['assessed_at'])!r} is not a date (YYYY-MM-DD)") from None
    fields = [row["student_id"].strip(), row["school"].strip(), row["grade"].strip(), (row.get("class") or "").strip()]
    limits = (32, 64, 16, 32)
    for name, value, limit in zip(("student_id", "school", "grade", "class"), fields, limits, strict=True):
        if len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
    return (*fields, dimension, indicator, score, assessed)


def open_csv(path: Path):
    """The file, opened for :func:`read_batches`."""
    return open(path, newline="", encoding="utf-8-sig")


def _lines(handle) -> Iterator[str]:
    """The lines of a file opened by :func:`open_csv`; :class:`ImportFailed` naming the first that
    is not UTF-8, contains a NUL byte or is longer than :data:`MAX_LINE_CHARS`."""
    number = 0
    try:
        while line := handle.readline(MAX_LINE_CHARS + 1):
            number += 1
            if len(line) > MAX_LINE_CHARS:
                raise ImportFailed(f"longer than {MAX_LINE_CHARS} characters", line=number)
            if "\x00" in line:
                raise ImportFailed("a NUL byte", line=number)
            yield line
    except UnicodeDecodeError:
        # Decoded ahead a block at a time: the bad byte is in this line or a later one.
        raise ImportFailed("not valid UTF-8", line=_undecodable_line(handle.buffer, after=number)) from None


def _undecodable_line(raw, *, after: int) -> int:
    """The number of the first line of the binary file ``raw`` past line ``after`` that is not
    UTF-8 (lines up to ``after`` decoded)."""
    raw.seek(0)
    for _ in range(after):
        raw.readline()
    number = after
    while line := raw.readline():
        number += 1
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return number


def read_batches(
    handle,
    *,
    skip_invalid: bool,
    report: ImportReport,
    skip_rows: int = 0,
    while_skipping: Callable[[], None] | None = None,
) -> Iterator[tuple]:
    """Parse a CSV file opened by :func:`open_csv`: yields ``(rows, rows_read)`` — up to
    :data:`BATCH_ROWS` parsed rows, and how many data rows of the file have been read so far
    (valid or not) — and a last batch, possibly empty, at the end of the file. The first
    ``skip_rows`` data rows are passed over (an earlier run imported them), calling
    ``while_skipping()`` every :data:`BATCH_ROWS` rows (a job's check: heartbeat, cancel, pause).
    An invalid row raises :class:`ImportFailed`, or is recorded in ``report`` when
    ``skip_invalid``; a malformed line (see the module) raises it in any case.
    """
    reader = csv.DictReader(_lines(handle))
    header = [name.strip() for name in (_next_row(reader, fieldnames=True) or [])]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise ImportFailed(f"missing column(s): {', '.join(missing)}", line=1)
    reader.fieldnames = header
    batch: list[tuple] = []
    rows_read = 0
    while (row := _next_row(reader)) is not None:
        rows_read += 1
        if rows_read <= skip_rows:
            if while_skipping is not None and rows_read % BATCH_ROWS == 0:
                while_skipping()
            continue
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
                raise ImportFailed(error, line=reader.line_num)
            report.skip(reader.line_num, error)
        if len(batch) >= BATCH_ROWS:
            yield batch, rows_read
            batch = []
    yield batch, rows_read


def _next_row(reader: csv.DictReader, *, fieldnames: bool = False):
    """The reader's next row (or its header), None at the end of the file; a field longer than
    the csv module's limit (a quote that never closes) is :class:`ImportFailed` naming the
    line where its row began."""
    first_line = reader.line_num + 1
    try:
        return reader.fieldnames if fieldnames else next(reader)
    except StopIteration:
        return None
    except csv.Error:
        limit = csv.field_size_limit()
        message = f"a field longer than {limit} characters (a quote never closed?)"
        raise ImportFailed(message, line=first_line) from None


def insert_rows(rows: list[tuple], *, import_task_id=None) -> None:
    """Insert parsed rows; with ``import_task_id``, staged by that import task (unread until
    :func:`publish_staged`)."""
    if not rows:
        return
    table = AssessmentRecord._meta.db_table
    columns = "student_id, school, grade, class_name, dimension, indicator, score, assessed_at, import_task_id"
    staged_by = AssessmentRecord._meta.get_field("import_task").get_db_prep_save(import_task_id, connection)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(*row, staged_by) for row in rows],
        )


def publish_staged(import_task_id) -> int:
    """The rows staged by the import task become data (one statement: run it in the transaction
    that completes the task)."""
    return AssessmentRecord.with_staged.filter(import_task_id=import_task_id).update(import_task=None)


def discard_staged(import_task_id) -> int:
    """Delete the rows staged by the import task, a batch per transaction."""
    return discard_staged_by([import_task_id])


def discard_staged_by(import_task_ids: list) -> int:
    """Delete the rows staged by any of these tasks, a batch per transaction (before the tasks
    are deleted: ``tasks.services.BULK_DEPENDENTS``)."""
    staged = AssessmentRecord.with_staged.filter(import_task_id__in=import_task_ids)
    deleted = 0
    while ids := list(staged.values_list("pk", flat=True)[:BATCH_ROWS]):
        with transaction.atomic():
            # Still staged: a completion may have published them since they were selected.
            deleted += staged.filter(pk__in=ids).delete()[0]
    return deleted


def import_csv(
    path: Path,
    *,
    skip_invalid: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import ``path`` in one transaction (the management command; the import task stages its
    rows instead, see ``batches.jobs``); :class:`ImportFailed` (with the line number) leaves the
    table unchanged.

    ``on_progress(bytes_read, bytes_total)`` is called after each batch (and may raise to stop:
    the transaction is rolled back).
    """
    report = ImportReport()
    total_bytes = max(1, os.path.getsize(path))
    with open_csv(path) as handle, transaction.atomic():
        for rows, _ in read_batches(handle, skip_invalid=skip_invalid, report=report):
            insert_rows(rows)
            report.imported += len(rows)
            if on_progress:
                on_progress(handle.buffer.tell(), total_bytes)
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
