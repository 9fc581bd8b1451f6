"""Bulk inserts of plain rows: COPY on PostgreSQL (psycopg 3), ``executemany`` elsewhere.

Django's PostgreSQL cursor binds parameters on the client and ``executemany`` sends one statement
per row, one round trip each; ``COPY ... FROM STDIN`` streams every row in one statement, about
five times faster for the writer's batches. Both run inside the caller's transaction, so a batch
that fails (a value the database rejects) is rolled back whole either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["insert_rows", "insert_sql", "upsert_rows"]


def insert_sql(conn: Any, table: str, cols: Sequence[str]) -> str:
    """Return a parameterised INSERT of ``cols`` into ``table``."""
    qn = conn.ops.quote_name
    names = ", ".join(qn(c) for c in cols)
    marks = ", ".join(["%s"] * len(cols))
    return f"INSERT INTO {qn(table)} ({names}) VALUES ({marks})"


def insert_rows(conn: Any, cursor: Any, table: str, cols: Sequence[str], rows: list[Any]) -> None:
    """Insert ``rows`` (tuples in ``cols`` order) with the fastest way the backend has."""
    if not rows:
        return
    raw = getattr(cursor, "cursor", cursor)
    if conn.vendor == "postgresql" and hasattr(raw, "copy"):
        qn = conn.ops.quote_name
        statement = f"COPY {qn(table)} ({', '.join(qn(c) for c in cols)}) FROM STDIN"
        # Django's error wrapper, so a rejected value raises django.db.DataError as executemany
        # would (the sink then isolates the rejected row instead of retrying the batch forever).
        with conn.wrap_database_errors, raw.copy(statement) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
        return
    cursor.executemany(insert_sql(conn, table, cols), rows)


def upsert_rows(conn: Any, cursor: Any, sql: str, rows: list[Any]) -> None:
    """Run a one-row ``INSERT INTO t (cols) VALUES (%s, ...) ON CONFLICT ...`` for every row.

    On PostgreSQL (psycopg 3) all rows go in one statement, one array a column bound on the
    server (``INSERT ... SELECT * FROM unnest(...)``): ``executemany`` there sends one statement a
    row, each parameter quoted in Python (Django binds on the client), which cost the writer more
    than its event rows. The rows' conflict keys must be distinct (PostgreSQL will not update one
    row twice in a statement); the writer's rows are aggregated per key, so they are.
    Elsewhere: ``executemany``.
    """
    if not rows:
        return
    if conn.vendor != "postgresql" or not hasattr(getattr(cursor, "cursor", cursor), "copy"):
        cursor.executemany(sql, rows)
        return
    import psycopg

    match = _ONE_ROW.match(sql)
    if match is None:
        raise ValueError(f"not a one-row INSERT: {sql[:80]!r}")
    table, names, tail = match.groups()
    with conn.wrap_database_errors, psycopg.Cursor(conn.connection) as server:
        types = _column_types(server, table, names)
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        columns = [list(column) for column in zip(*rows, strict=True)]
        server.execute(
            f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){tail}", columns
        )


_ONE_ROW = re.compile(r"INSERT INTO (\S+) \((.+?)\) VALUES \((?:%s, )*%s\)(.*)", re.S)
# (table, column names) -> their SQL types, e.g. "timestamp with time zone".
_types: dict[tuple[str, str], list[str]] = {}


def _column_types(cursor: Any, table: str, names: str) -> list[str]:
    """Return the SQL types of the (quoted, comma-separated) columns ``names`` of ``table``."""
    key = (table, names)
    found = _types.get(key)
    if found is None:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        )
        by_name = dict(cursor.fetchall())
        found = _types[key] = [by_name[n.strip().strip('"')] for n in names.split(",")]
    return found
