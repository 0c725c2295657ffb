"""The built-in ``student_assessments`` data source: its indicators, its loader, demo data.

The loader streams the selected records in student order through a server-side cursor (a named
cursor on PostgreSQL; SQLite streams ``fetchmany``) and turns each chunk into NumPy arrays at
once: no Python object per row outlives its chunk. Chunks end on a student boundary, so a
loading checkpoint is just "the last student read" and the rest is a keyset query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from batches.models import AssessmentRecord
from batches.sources import DataSource, register_source

INDICATORS: dict[str, tuple[str, ...]] = {
    "academic": ("chinese", "math", "english", "physics", "chemistry"),
    "non_academic": ("physical_fitness", "arts", "moral_character", "social_practice", "mental_health"),
}

SOURCE = register_source(
    DataSource(
        name="student_assessments",
        description="Assessment records of students: academic and non-academic indicators, scores 0–100.",
        dimensions=INDICATORS,
    )
)


@dataclass
class Chunk:
    """The records of whole students, as arrays (one entry per record)."""

    students: np.ndarray  # object: student ids (only while the chunk is processed)
    indicators: np.ndarray  # int16: index into the selected indicators
    scores: np.ndarray  # float64: NaN when no score was recorded
    schools: np.ndarray | None  # object: only when group comparison needs them
    grades: np.ndarray | None

    @property
    def last_student(self) -> str:
        return str(self.students[-1])

    def __len__(self) -> int:
        return len(self.scores)


def _where(config: dict, after_student: str | None) -> tuple[str, list]:
    table = AssessmentRecord._meta.db_table
    dims = config["include_dimensions"]
    # Rows staged by an import that has not completed are not data yet.
    clauses = [f"{table}.import_task_id IS NULL", f"{table}.dimension IN ({', '.join(['%s'] * len(dims))})"]
    params: list = list(dims)
    filters = config.get("filters") or {}
    for column, key in (("school", "schools"), ("grade", "grades")):
        values = filters.get(key)
        if values:
            clauses.append(f"{table}.{column} IN ({', '.join(['%s'] * len(values))})")
            params.extend(values)
    if filters.get("assessed_from"):
        clauses.append(f"{table}.assessed_at >= %s")
        params.append(dt.date.fromisoformat(filters["assessed_from"]))
    if filters.get("assessed_to"):
        clauses.append(f"{table}.assessed_at <= %s")
        params.append(dt.date.fromisoformat(filters["assessed_to"]))
    if after_student is not None:
        clauses.append(f"{table}.student_id > %s")
        params.append(after_student)
    return " AND ".join(clauses), params


def count_records(config: dict) -> int:
    where, params = _where(config, None)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {AssessmentRecord._meta.db_table} WHERE {where}", params)
        return int(cursor.fetchone()[0])


def iter_chunks(
    config: dict, *, after_student: str | None = None, chunk_rows: int = 50_000, with_groups: bool = True
) -> Iterator[Chunk]:
    """Yield the selected records in student order, in chunks of whole students.

    The database maps indicator names to their column numbers (a CASE expression), so each row
    arrives as numbers but for the student id; school and grade are read only ``with_groups``.
    """
    indicators = SOURCE.indicators(config["include_dimensions"])
    where, params = _where(config, after_student)
    table = AssessmentRecord._meta.db_table
    case = " ".join(f"WHEN %s THEN {i}" for i in range(len(indicators)))
    columns = f"student_id, CASE indicator {case} ELSE -1 END, score"
    if with_groups:
        columns += ", school, grade"
    sql = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY student_id"
    if connection.vendor == "sqlite":
        yield from _keyset_chunks(sql, [*indicators, *params], after_student, chunk_rows, with_groups)
        return
    carry: list[tuple] = []
    with connection.chunked_cursor() as cursor:  # a named, server-side cursor on PostgreSQL
        cursor.execute(sql, [*indicators, *params])
        while True:
            rows = cursor.fetchmany(chunk_rows)
            if not rows:
                break
            rows = carry + rows if carry else rows
            cut = _whole_students(rows)
            if cut == 0:  # one student fills the whole chunk: keep reading
                carry = rows
                continue
            carry = rows[cut:]
            yield _to_arrays(rows[:cut], with_groups)
        if carry:
            yield _to_arrays(carry, with_groups)


def _whole_students(rows: list[tuple]) -> int:
    """How many leading rows belong to students whose rows are all in ``rows``."""
    last = rows[-1][0]
    cut = len(rows)
    while cut and rows[cut - 1][0] == last:
        cut -= 1
    return cut


def _keyset_chunks(sql: str, params: list, after_student, chunk_rows: int, with_groups: bool):
    """SQLite: one short query per chunk (``student_id > last``). A statement left open across the
    job's own progress writes would pin an old WAL snapshot, and two loading workers would then
    fail each other's writes with "database is locked"."""
    limit = chunk_rows
    while True:
        page_sql, page_params = sql, list(params)
        if after_student is not None:
            page_sql = sql.replace(" ORDER BY student_id", " AND student_id > %s ORDER BY student_id")
            page_params.append(after_student)
        with connection.cursor() as cursor:
            cursor.execute(f"{page_sql} LIMIT %s", [*page_params, limit])
            rows = cursor.fetchall()
        if not rows:
            return
        if len(rows) < limit:  # the last page: every student in it is complete
            yield _to_arrays(rows, with_groups)
            return
        cut = _whole_students(rows)
        if cut == 0:  # one student has more rows than a page: read a bigger page
            limit *= 2
            continue
        yield _to_arrays(rows[:cut], with_groups)
        after_student = rows[cut - 1][0]
        limit = chunk_rows


RECORD = np.dtype([("student", object), ("indicator", np.int16), ("score", np.float64)])
RECORD_WITH_GROUPS = np.dtype(
    [("student", object), ("indicator", np.int16), ("score", np.float64), ("school", object), ("grade", object)]
)


def _to_arrays(rows: list[tuple], with_groups: bool) -> Chunk:
    # One C-level conversion of the row tuples; NULL scores become NaN.
    table = np.array(rows, dtype=RECORD_WITH_GROUPS if with_groups else RECORD)
    return Chunk(
        students=table["student"],
        indicators=table["indicator"],
        scores=table["score"],
        schools=table["school"] if with_groups else None,
        grades=table["grade"] if with_groups else None,
    )


# --- demo data --------------------------------------------------------------------------------

#: Means and spreads per indicator, and how strongly each loads on the academic (g) and
#: non-academic (h) latent factors: gives realistic positive correlations within a dimension.
PROFILE = {
    "chinese": (78, 9, 0.75, 0.10),
    "math": (74, 13, 0.85, 0.00),
    "english": (76, 11, 0.78, 0.05),
    "physics": (71, 14, 0.80, 0.00),
    "chemistry": (73, 12, 0.76, 0.05),
    "physical_fitness": (80, 8, 0.05, 0.55),
    "arts": (82, 7, 0.15, 0.60),
    "moral_character": (88, 5, 0.20, 0.70),
    "social_practice": (84, 6, 0.10, 0.65),
    "mental_health": (83, 7, 0.15, 0.55),
}
GRADES = ("7", "8", "9")


def generate(students: int, *, seed: int = 2025, missing_rate: float = 0.01, batch_rows: int = 20_000) -> int:
    """Insert ``students`` × 10 deterministic records (same seed → same data); returns rows inserted."""
    rng = np.random.default_rng(seed)
    names = list(PROFILE)
    dimension_of = {name: dim for dim, inds in INDICATORS.items() for name in inds}
    n_schools = max(1, min(100, students // 500))
    latent = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 1.0]], size=students)
    school_of = rng.integers(0, n_schools, size=students)
    grade_of = rng.integers(0, len(GRADES), size=students)
    class_of = rng.integers(1, 11, size=students)
    school_effect = rng.normal(0, 3, size=n_schools)
    base_date = dt.date(2025, 6, 1)
    day_of = rng.integers(0, 30, size=students)
    scores = np.empty((students, len(names)))
    for j, name in enumerate(names):
        mean, sd, g, h = PROFILE[name]
        unique = np.sqrt(max(1e-6, 1 - g * g - h * h - 2 * 0.3 * g * h))
        z = g * latent[:, 0] + h * latent[:, 1] + unique * rng.standard_normal(students)
        scores[:, j] = np.clip(np.round(mean + sd * z + school_effect[school_of], 1), 0, 100)
    scores[rng.random(scores.shape) < missing_rate] = np.nan

    table = AssessmentRecord._meta.db_table
    columns = "student_id, school, grade, class_name, dimension, indicator, score, assessed_at"
    total = 0

    def rows_for(start: int, stop: int):
        for i in range(start, stop):
            student = f"S{i + 1:07d}"
            school = f"SCH{school_of[i] + 1:03d}"
            grade = GRADES[grade_of[i]]
            klass = f"{grade}-{class_of[i]}"
            day = base_date + dt.timedelta(days=int(day_of[i]))
            for j, name in enumerate(names):
                value = scores[i, j]
                score = None if np.isnan(value) else float(value)
                yield (student, school, grade, klass, dimension_of[name], name, score, day)

    per_batch = max(1, batch_rows // len(names))
    # One short transaction per batch: a single transaction over a million rows would hold
    # SQLite's write lock for seconds and starve the workers (and the cluster's own bookkeeping).
    with connection.cursor() as cursor:
        for start in range(0, students, per_batch):
            stop = min(students, start + per_batch)
            rows = list(rows_for(start, stop))
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
            total += len(rows)
    return total
