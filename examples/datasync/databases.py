"""The databases a sync reads: a ``DATABASES`` alias, or a URL (``sqlite:///path``, ``postgres://…``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings
from django.db import connections

from taskcenter.jobs import ConfigurationError

#: A table or column name the plug-in accepts. Names go into SQL text (quoted), so nothing else may.
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
POSTGRES_SCHEMES = {"postgres", "postgresql"}


def database_problem(spec: str) -> str | None:
    """Why ``spec`` names no database this plug-in can read, or ``None`` when it names one: a
    ``DATABASES`` alias, ``sqlite:///relative/path`` (to taskcenter's directory),
    ``sqlite:////absolute/path`` or ``postgres://user@host:port/name`` without a password."""
    if "://" not in spec:
        if spec in settings.DATABASES:
            return None
        return (
            f"Unknown database alias {spec!r}: use one of {', '.join(settings.DATABASES)}, "
            "or a URL (sqlite:///path, postgres://user@host/name)."
        )
    parts = urlsplit(spec)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc or parts.path in ("", "/"):
            return "A SQLite URL is sqlite:///relative/path or sqlite:////absolute/path."
        return None
    if scheme in POSTGRES_SCHEMES:
        if not parts.path.strip("/"):
            return "A PostgreSQL URL needs a database name: postgres://user@host:5432/name."
        if parts.password or "password" in dict(parse_qsl(parts.query)):
            # Params are shown to everyone who may view the task, and kept in its audit trail.
            return "A password in the URL would be shown with the task: use a .pgpass file on the workers."
        return None
    return f"Unsupported URL scheme {scheme!r}: use sqlite:///path or postgres://user@host/name."


def quoted(name: str) -> str:
    """``name`` (an :data:`IDENTIFIER`) as SQL quotes it, in SQLite and PostgreSQL alike."""
    return f'"{name}"'


class Database:
    """An open database. ``placeholder`` is its driver's parameter marker (``%s`` or ``?``)."""

    def __init__(self, connection, placeholder: str):
        self.connection, self.placeholder = connection, placeholder

    def rows(self, sql: str, params=()) -> list[tuple]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def columns(self, table: str) -> list[str]:
        """The columns of ``table`` in their order; raises the driver's error when there is no such table."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(f"SELECT * FROM {quoted(table)} WHERE 1 = 0")
            return [column[0] for column in cursor.description]
        finally:
            cursor.close()


@contextmanager
def connect(spec: str) -> Iterator[Database]:
    """Open the database ``spec`` names (see :func:`database_problem`) for reading.

    A URL's connection is closed on leaving; an alias's is Django's and stays open. Raises
    ``ConfigurationError`` when a SQLite file does not exist; a server that does not answer raises
    its driver's error (a job retries that).
    """
    if "://" not in spec:
        yield Database(connections[spec], "%s")
        return
    parts = urlsplit(spec)
    if parts.scheme.lower() == "sqlite":
        # As taskcenter's DATABASE_URL: sqlite:///var/x is relative, sqlite:////srv/x absolute.
        path = Path(unquote(parts.path)[1:])
        if not path.is_absolute():
            path = Path(settings.BASE_DIR) / path
        if not path.is_file():
            raise ConfigurationError(f"no SQLite database at {path}")
        # Read-only: a sync never writes its source.
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        placeholder = "?"
    else:
        import psycopg  # only PostgreSQL URLs need it; taskcenter installs it

        connection = psycopg.connect(spec, autocommit=True, connect_timeout=10)
        placeholder = "%s"
    try:
        yield Database(connection, placeholder)
    finally:
        connection.close()


def rows_after(db: Database, table: str, columns: list[str], key: str, after, limit: int) -> list[tuple]:
    """Up to ``limit`` rows of ``table`` (``columns``, in that order) with a ``key`` above ``after``
    (``None``: from the first), in key order. Keyset pagination: each batch is one index range,
    however far into the table, where an OFFSET would read and skip every row before it."""
    names = ", ".join(quoted(column) for column in columns)
    mark = db.placeholder
    if after is None:
        where, params = f"{quoted(key)} IS NOT NULL", [limit]
    else:
        where, params = f"{quoted(key)} > {mark}", [after, limit]
    return db.rows(f"SELECT {names} FROM {quoted(table)} WHERE {where} ORDER BY {quoted(key)} LIMIT {mark}", params)
