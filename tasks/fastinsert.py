"""Plain multi-row INSERTs of unsaved model instances, and short write transactions of such
prepared statements (:func:`write`), for the hot paths.

``Model.objects.create`` and ``bulk_create`` spend most of their time compiling the statement
(measured: ~0.35 ms for one task row of which SQLite needs ~0.05 ms). Task creation writes a
task, its stages and an audit row for every task, so the statement text is built once per
(model, row count) and only the values are prepared per call — with each field's own
``pre_save`` and ``get_db_prep_save``, exactly as the ORM would (defaults, ``auto_now_add``,
UUID and JSON adaptation), so a new model field needs no change here.

Auto-incremented primary keys are left to the database and not read back.

Most values a hot path writes are the same few constants (a field's default, ``None``, a status):
their prepared form is remembered per field, so only the values that differ from row to row
(ids, times, JSON) go through the field's preparation each time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import AutoField, BigAutoField, Model, SmallAutoField

_AUTO = (AutoField, BigAutoField, SmallAutoField)


@cache
def _fields(model: type[Model]) -> tuple:
    return tuple(f for f in model._meta.concrete_fields if not isinstance(f, _AUTO))


#: Python types whose values are immutable and equal only when they are the same value (not
#: float: -0.0 == 0.0): a field prepares such a value the same way every time (on one
#: connection), so the result can be remembered.
_CONSTANT_TYPES = (type(None), str, int, bool)
#: At most this many remembered values per field (beyond it, values are prepared every time).
_MEMO_LIMIT = 64
_MISSING = object()


@cache
def _preparers(model: type[Model], alias: str) -> tuple:
    """(field, memo) for each inserted field of ``model`` on the connection ``alias``."""
    return tuple((f, {}) for f in _fields(model))


def _prepare(field, memo: dict, obj: Model, db):
    value = field.pre_save(obj, True)
    kind = type(value)
    if kind not in _CONSTANT_TYPES:
        return field.get_db_prep_save(value, db)
    key = (kind, value)
    prepared = memo.get(key, _MISSING)
    if prepared is _MISSING:
        prepared = field.get_db_prep_save(value, db)
        if len(memo) < _MEMO_LIMIT:
            memo[key] = prepared
    return prepared


def _into(model: type[Model]) -> str:
    """``INSERT INTO <table> (<the inserted columns>)``."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _fields(model))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns})"


@cache
def _statement(model: type[Model], rows: int, vendor: str) -> str:
    row = "(" + ", ".join(["%s"] * len(_fields(model))) + ")"
    sql = f"{_into(model)} VALUES " + ", ".join([row] * rows)
    _BUILT[sql] = (model, rows)
    return sql


#: The model and row count of each INSERT text built by :func:`_statement`.
_BUILT: dict[str, tuple[type[Model], int]] = {}

#: PostgreSQL: the name under which :func:`write`'s one statement refers to its first part.
_FIRST = "changed"


@cache
def _insert_if_changed(model: type[Model], rows: int) -> str:
    """PostgreSQL: :func:`_statement`'s INSERT as a part of :func:`write`'s one statement, which
    inserts its rows only when the first part changed a row. The rows become a ``SELECT``, where
    PostgreSQL types a parameter by itself rather than by the column it goes to, so each one
    says its column's type (without a length: a cast would cut a long text instead of refusing
    it)."""
    types = [re.sub(r"\(.*\)", "", f.db_type(connection)) for f in _fields(model)]
    row = "(" + ", ".join(f"CAST(%s AS {kind})" for kind in types) + ")"
    return (
        f"{_into(model)} SELECT * FROM (VALUES "
        + ", ".join([row] * rows)
        + f") AS rows WHERE EXISTS (SELECT 1 FROM {_FIRST})"
    )


def _if_changed(sql: str) -> str | None:
    """A statement of ``write``'s ``rest`` as a part of its one statement (PostgreSQL), or None
    when it cannot be written so: an INSERT built here, or an UPDATE with one WHERE clause (the
    condition is extended) and nothing returned."""
    if sql in _BUILT:
        return _insert_if_changed(*_BUILT[sql])
    head, where, condition = sql.partition(" WHERE ")
    if sql.startswith("UPDATE ") and where and " WHERE " not in condition and "RETURNING" not in condition.upper():
        return f"{head} WHERE ({condition}) AND EXISTS (SELECT 1 FROM {_FIRST})"
    return None


def _as_one_statement(first: Statement, rest: Sequence[Statement], returning: bool) -> Statement | None:
    """PostgreSQL: ``write``'s statements as one — ``first`` and each of ``rest`` as
    data-modifying parts of a ``WITH``, the rest conditional on ``first`` having changed a row —
    so that they cost one round trip to the server instead of one each, and, outside a
    transaction, are atomic by themselves (no BEGIN and COMMIT round trips either). Foreign keys
    between the rows are checked at the end of the statement (Django creates them deferred).
    Returns first's row (``returning``) or the count of the rows it changed; None when a
    statement of ``rest`` cannot be made conditional."""
    sql, params = first
    parts = [f"{_FIRST} AS ({sql if returning else sql + ' RETURNING 1'})"]
    values = list(params)
    for number, (statement, statement_params) in enumerate(rest):
        conditional = _if_changed(statement)
        if conditional is None:
            return None
        parts.append(f"step_{number} AS ({conditional})")
        values.extend(statement_params)
    result = f"SELECT * FROM {_FIRST}" if returning else f"SELECT count(*) FROM {_FIRST}"
    return f"WITH {', '.join(parts)} {result}", values


#: Rows per statement (SQLite allows 32,766 parameters in one statement).
CHUNK = 200


#: A statement and its parameters, prepared before the transaction that runs it.
Statement = tuple[str, list]


def insert_statements(objs: list[Model]) -> list[Statement]:
    """The INSERT statements for ``objs`` (instances of one model, not yet saved), up to
    ``CHUNK`` rows a statement, with every value prepared now.

    Preparing costs far more than SQLite's work: do it before the transaction, so that the write
    lock is held only while the statements run. The instances are marked saved, as
    ``Model.objects.create`` would.
    """
    if not objs:
        return []
    model = type(objs[0])
    # The connection itself, not the thread-local proxy: fields ask it for several things each.
    db = connections[DEFAULT_DB_ALIAS]
    preparers = _preparers(model, db.alias)
    statements = []
    for start in range(0, len(objs), CHUNK):
        chunk = objs[start : start + CHUNK]
        params = [_prepare(f, memo, obj, db) for obj in chunk for f, memo in preparers]
        statements.append((_statement(model, len(chunk), db.vendor), params))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = db.alias
    return statements


def execute(statements: list[Statement]) -> None:
    """Run prepared statements on the default connection (in the caller's transaction)."""
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def write(
    first: Statement,
    rest: Sequence[Statement] = (),
    *,
    returning: bool = False,
    inside: Sequence[Callable[[], None]] = (),
    after_commit: Sequence[Callable[[], None] | None] = (),
):
    """One write transaction of prepared statements, for the hot paths: ``first`` (a
    compare-and-set ``UPDATE``, or an ``INSERT``) and, when it changed a row, ``rest`` and the
    ``inside`` callables (ORM code); once committed, each of ``after_commit`` (None entries are
    skipped). When ``first`` changes nothing, nothing is written and nothing is called. Returns
    ``first``'s row (``returning``: it ends in ``RETURNING``) or its row count.

    Inside an outer ``atomic`` block everything joins that transaction and ``after_commit`` waits
    for its commit (``transaction.on_commit``). Otherwise, with no ``inside`` callables: on SQLite
    the statements run on the driver's connection (:meth:`DatabaseWrapper.write_directly
    <taskcenter.db.sqlite3.base.DatabaseWrapper.write_directly>`: the same transaction, with the
    database's one write lock held half as long); on PostgreSQL they are sent as one statement
    (:func:`_as_one_statement`: one round trip instead of one per statement, BEGIN and COMMIT).
    """
    db = connections[DEFAULT_DB_ALIAS]
    alone = not db.in_atomic_block and not inside
    one = _as_one_statement(first, rest, returning) if alone and rest and db.vendor == "postgresql" else None
    if alone and getattr(db, "can_write_directly", None) and db.can_write_directly():
        result = db.write_directly(first, rest, returning=returning)
    elif alone and (one or not rest):
        # One statement outside a transaction commits by itself.
        with db.cursor() as cursor:
            if one:
                cursor.execute(*one)
                result = cursor.fetchone() if returning else cursor.fetchone()[0]
            else:
                result = _run(cursor, first, returning)
    else:
        with transaction.atomic(using=db.alias), db.cursor() as cursor:
            result = _run(cursor, first, returning)
            if result:
                for sql, params in rest:
                    cursor.execute(sql, params)
                for hook in inside:
                    hook()
    if result:
        for callback in after_commit:
            if callback is not None:
                # At once after a commit of our own; at the outer block's commit inside one.
                transaction.on_commit(callback, using=db.alias)
    return result


def _run(cursor, statement: Statement, returning: bool):
    cursor.execute(*statement)
    return cursor.fetchone() if returning else cursor.rowcount


def insert_rows(objs: list[Model]) -> None:
    """INSERT ``objs`` now (see :func:`insert_statements`)."""
    execute(insert_statements(objs))
