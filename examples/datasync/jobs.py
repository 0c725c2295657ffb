"""``datasync.full_sync``: copy a table from another database into taskcenter's, in batches.

Rows are read in key order, a batch at a time (keyset pagination), and written with an upsert
keyed on the key column, one transaction a batch; the checkpoint after each batch is the last key
written. A run that stops — paused, cancelled, timed out, its worker killed — continues after the
last checkpoint; a batch written but not yet checkpointed is written again over the same keys, so
the target never holds a source row twice.
"""

from __future__ import annotations

import time

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from rest_framework import serializers

from datasync import reports  # noqa: F401 - its @task is then known to every process from the start
from datasync.databases import IDENTIFIER, connect, database_problem, quoted, rows_after
from taskcenter.jobs import ConfigurationError, JobContext, job

#: The longest ``timeout`` a task may ask for, in seconds.
TIMEOUT_MAX = 3600
#: How often a throttled sync looks for a cancel, a pause or its timeout while it waits.
WAIT_STEP = 0.1

NAME_ERRORS = {"invalid": "Letters, digits and _ only, not starting with a digit; at most 63."}


class FullSyncParams(serializers.Serializer):
    source = serializers.CharField(
        max_length=500,
        help_text="The database to copy from: a DATABASES alias, sqlite:///path/to/file.sqlite3 (relative to "
        "taskcenter's directory; sqlite:////path for an absolute one) or postgres://user@host:5432/name "
        "(no password: the workers' .pgpass has it).",
    )
    table = serializers.RegexField(IDENTIFIER, error_messages=NAME_ERRORS, help_text="The table to copy.")
    target_table = serializers.RegexField(
        IDENTIFIER,
        required=False,
        error_messages=NAME_ERRORS,
        help_text="The table of taskcenter's database to copy into (default: the name of the source table). "
        "It must exist, with the source's columns and a primary key or unique constraint on the key.",
    )
    key = serializers.RegexField(
        IDENTIFIER,
        default="id",
        error_messages=NAME_ERRORS,
        help_text="The column rows are ordered, checkpointed and written once by: unique, integer or text.",
    )
    batch_size = serializers.IntegerField(
        min_value=1, max_value=10_000, default=1000, help_text="Rows a batch: one transaction, one checkpoint."
    )
    timeout = serializers.IntegerField(
        min_value=1,
        max_value=TIMEOUT_MAX,
        default=TIMEOUT_MAX,
        help_text="Seconds one run may take. Past them it stops, failed with category config; a retry continues "
        "from its checkpoint.",
    )
    max_rows_per_second = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text="Copy no faster than this, to spare a busy source (default: as fast as it goes).",
    )

    def validate_source(self, value: str) -> str:
        problem = database_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict) -> dict:
        target = attrs.setdefault("target_table", attrs["table"])
        if target in protected_tables():
            raise serializers.ValidationError(
                {"target_table": [f"{target!r} belongs to an installed app: a sync would write over its rows."]}
            )
        if attrs["source"] == DEFAULT_DB_ALIAS and target == attrs["table"]:
            raise serializers.ValidationError({"target_table": ["The source table itself: name another table."]})
        return attrs


def protected_tables() -> set[str]:
    """Tables a sync may not write: those of installed apps' models (taskcenter's users, tokens and
    tasks among them), and Django's record of migrations."""
    return {model._meta.db_table for model in apps.get_models(include_auto_created=True)} | {"django_migrations"}


@job(
    "datasync.full_sync",
    stages=[("copy", 1)],
    params=FullSyncParams,
    description="Copies a table from another database into taskcenter's, in batches in key order.",
    # Behind the task's own timeout (checked after every step): stops a batch that hangs past it.
    timeout_seconds=TIMEOUT_MAX + 60,
    permissions=("datasync.run_sync",),
)
def full_sync(ctx: JobContext) -> dict:
    params = ctx.params
    table, target, key = params["table"], params["target_table"], params["key"]
    batch_size, rate = params["batch_size"], params["max_rows_per_second"]
    # Each run has the whole timeout: a resumed or retried sync gets it again for what is left.
    deadline = time.monotonic() + params["timeout"]
    state = ctx.checkpoint or {"last_key": None, "done": 0}
    total = 0

    def check() -> None:
        """Stop on a cancel or pause (``ctx.check()``), and when the run passed its timeout."""
        ctx.check()
        if time.monotonic() > deadline:
            raise ConfigurationError(
                f"timed out: the run passed its timeout of {params['timeout']} s with {state['done']} of {total} "
                "rows copied; a retry continues from there"
            )

    with connect(params["source"]) as source:
        try:
            columns = source.columns(table)
            [(total,)] = source.rows(f"SELECT COUNT({quoted(key)}) FROM {quoted(table)}")
        except Exception as exc:
            raise ConfigurationError(f"cannot read table {table!r} of the source: {exc}") from exc
        if key not in columns:
            raise ConfigurationError(f"table {table!r} of the source has no column {key!r}")
        problem = target_problem(target, columns, key)
        if problem:
            raise ConfigurationError(problem)
        upsert = upsert_sql(target, columns, key)
        position = columns.index(key)

        ctx.stage("copy")
        if state["done"]:
            ctx.log(
                "info",
                f"continuing after key {state['last_key']}: {state['done']} of {total} rows copied before",
                last_key=state["last_key"],
                done=state["done"],
            )
        else:
            ctx.log("info", f"copying {total} rows of {table} into {target}, {batch_size} a batch", total=total)
        while True:
            started = time.monotonic()
            rows = rows_after(source, table, columns, key, state["last_key"], batch_size)
            if not rows:
                break
            last_key = rows[-1][position]
            if not isinstance(last_key, int | str):
                raise ConfigurationError(f"key {key!r} is a {type(last_key).__name__}: use an integer or text column")
            # A cancel or pause that came while the batch was read (or paced) stops it before it is written.
            wait_until(started + len(rows) / rate if rate else started, check)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(upsert, rows)
            state = {"last_key": last_key, "done": state["done"] + len(rows)}
            ctx.save_checkpoint(state)
            # Rows added to the source meanwhile are copied too (their keys come later): done may pass total.
            ctx.progress(state["done"], max(total, state["done"]))

    ctx.log("info", f"copied {state['done']} rows of {table} into {target}", rows=state["done"])
    return {"table": table, "target_table": target, "rows": state["done"], "last_key": state["last_key"]}


def target_problem(target: str, columns: list[str], key: str) -> str | None:
    """Why table ``target`` of taskcenter's database cannot take the source's ``columns`` keyed by
    ``key``, or ``None`` when it can."""
    introspection = connection.introspection
    with connection.cursor() as cursor:
        if target not in introspection.table_names(cursor):
            return (
                f"no table {target!r} in taskcenter's database: create it with the source's columns "
                f"({', '.join(columns)}) and a primary key on {key!r}"
            )
        present = {column.name for column in introspection.get_table_description(cursor, target)}
        constraints = introspection.get_constraints(cursor, target).values()
    missing = [column for column in columns if column not in present]
    if missing:
        return f"table {target!r} lacks the source's column(s) {', '.join(missing)}"
    if not any((c["primary_key"] or c["unique"]) and c["columns"] == [key] for c in constraints):
        return f"table {target!r} has no primary key or unique constraint on {key!r} alone"
    return None


def upsert_sql(target: str, columns: list[str], key: str) -> str:
    """An INSERT of one row into ``target`` that updates the row of the same key instead of adding
    one (SQLite and PostgreSQL alike): writing a batch again changes nothing but its rows' values."""
    names = ", ".join(quoted(column) for column in columns)
    marks = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f"{quoted(column)} = excluded.{quoted(column)}" for column in columns if column != key)
    on_conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return f"INSERT INTO {quoted(target)} ({names}) VALUES ({marks}) ON CONFLICT ({quoted(key)}) {on_conflict}"


def wait_until(moment: float, check) -> None:
    """Call ``check()``, and keep calling it while waiting until ``moment`` (``time.monotonic()``)."""
    check()
    while (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, WAIT_STEP))
        check()
