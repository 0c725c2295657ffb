"""A Django ``@task``: a table's summary, to compare a sync's target with its source."""

from __future__ import annotations

import hashlib
import json
import re

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task

from datasync.databases import IDENTIFIER, connect, database_problem, quoted, rows_after

#: Rows read at a time.
CHUNK = 5000


@task(takes_context=True)
def table_summary(context, database: str, table: str, key: str = "id") -> dict:
    """Summarises a table: its rows, lowest and highest key, and a checksum of its rows.

    ``database`` is what a sync's ``source`` is (a ``DATABASES`` alias or a URL). The checksum is a
    SHA-256 over the rows in key order, their columns in name order, each row as JSON: two tables
    holding the same rows have the same checksum, whatever the order of their columns and whichever
    database holds them, as long as their values read back alike (integers, floats and text do).
    """
    problem = database_problem(database)
    if problem:
        raise ValueError(problem)
    for name in (table, key):
        if not re.fullmatch(IDENTIFIER, name):
            raise ValueError(f"{name!r} is not a table or column name")
    digest = hashlib.sha256()
    with connect(database) as db:
        columns = sorted(db.columns(table))
        if key not in columns:
            raise ValueError(f"table {table!r} has no column {key!r}")
        position = columns.index(key)
        [(rows, lowest, highest)] = db.rows(
            f"SELECT COUNT({quoted(key)}), MIN({quoted(key)}), MAX({quoted(key)}) FROM {quoted(table)}"
        )
        done, last_key = 0, None
        while chunk := rows_after(db, table, columns, key, last_key, CHUNK):
            for row in chunk:
                digest.update(json.dumps(list(row), default=str).encode() + b"\n")
            done, last_key = done + len(chunk), chunk[-1][position]
            context.progress(done, rows)  # also where a cancel or a pause stops it
    return {"table": table, "rows": rows, "min_key": lowest, "max_key": highest, "checksum": digest.hexdigest()}
