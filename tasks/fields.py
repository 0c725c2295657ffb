"""Model fields of taskcenter's own."""

from __future__ import annotations

from django.db import models


class AppendOnlyIdField(models.BigAutoField):
    """The primary key of a table that grows at its end — stages, log lines, audit rows — without
    SQLite's ``AUTOINCREMENT``.

    With ``AUTOINCREMENT`` SQLite records the largest id ever given in its ``sqlite_sequence``
    table, one more page written by every transaction that inserts into the table (a task's
    creation, claim and completion each write one). Without it a new row takes the largest id
    present plus one: the same id, unless the row holding the largest id was deleted, which rows
    of these tables only are with their task (a new stage or log line may then get an id a deleted
    task's had; ids still grow with time, which is all their readers rely on: order, and "newer
    than the last one seen" within a live task).

    Elsewhere (PostgreSQL) it is Django's ``BigAutoField`` unchanged (an identity column).
    """

    def db_type_suffix(self, connection):
        if connection.vendor == "sqlite":
            return None
        return super().db_type_suffix(connection)
