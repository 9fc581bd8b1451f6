"""Bulk inserts: COPY on PostgreSQL stores exactly what executemany would, errors included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import DataError, connections, transaction

from collector.bulk import insert_rows

ROWS = [
    (1, "plain", datetime(2026, 11, 24, 3, 0, 0, 123456, tzinfo=UTC), '{"a": 1}', True, None),
    (2, "tab\\there\nnew line \\N é ✓", datetime(2026, 11, 24, tzinfo=UTC), '{"b": "x\\ny"}', False, 7),
    (3, "", datetime(2026, 1, 1, tzinfo=UTC), "[]", False, -1),
]
COLS = ("id", "s", "ts", "j", "b", "n")


@pytest.fixture
def pg(postgres_database: str, django_db_blocker: Any) -> Iterator[Any]:
    """Return a Django connection to a fresh PostgreSQL database with one test table."""
    from config.env import database_from_url

    alias = "bulk_pg"
    configured = connections.configure_settings(
        {"default": dict(connections.settings["default"]), alias: database_from_url(postgres_database)}
    )
    connections.settings[alias] = configured[alias]
    conn = connections[alias]
    with django_db_blocker.unblock():  # a database of this test's own, outside pytest-django's
        with conn.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE t (id bigint PRIMARY KEY, s varchar(100), ts timestamptz, j jsonb,"
                " b boolean, n integer)"
            )
        yield conn
        conn.close()
    del connections[alias]
    del connections.settings[alias]


def test_copy_round_trips_awkward_values(pg: Any) -> None:
    """Tabs, newlines, backslashes, \\N, non-ASCII, NULL, JSON and timestamps come back intact."""
    with transaction.atomic(using=pg.alias), pg.cursor() as cursor:
        insert_rows(pg, cursor, "t", COLS, ROWS)
    with pg.cursor() as cursor:
        cursor.execute("SELECT id, s, ts, j::text, b, n FROM t ORDER BY id")
        got = cursor.fetchall()
    assert [(r[0], r[1], r[2], r[4], r[5]) for r in got] == [
        (r[0], r[1], r[2], r[4], r[5]) for r in ROWS
    ]
    assert [r[3] for r in got] == ['{"a": 1}', '{"b": "x\\ny"}', "[]"]


def test_a_rejected_value_rolls_the_batch_back_as_a_django_data_error(pg: Any) -> None:
    """A NUL character (PostgreSQL refuses it) raises django.db.DataError; nothing is stored."""
    bad = (4, "nul \x00 inside", datetime(2026, 1, 1, tzinfo=UTC), "{}", False, 0)
    with pytest.raises(DataError), transaction.atomic(using=pg.alias), pg.cursor() as cursor:
        insert_rows(pg, cursor, "t", COLS, [*ROWS, bad])
    with pg.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t")
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db
def test_other_backends_use_executemany() -> None:
    """On SQLite the same call is a plain executemany."""
    conn = connections["default"]
    with conn.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bulk_t (id integer, s text)")
        insert_rows(conn, cursor, "bulk_t", ("id", "s"), [(1, "a"), (2, "b\tc")])
        insert_rows(conn, cursor, "bulk_t", ("id", "s"), [])
        cursor.execute("SELECT id, s FROM bulk_t ORDER BY id")
        assert cursor.fetchall() == [(1, "a"), (2, "b\tc")]


UPSERT = (
    'INSERT INTO "u" ("k", "s", "ts", "n", "m") VALUES (%s, %s, %s, %s, %s) '
    'ON CONFLICT ("k", "s") DO UPDATE SET "n" = "u"."n" + excluded."n", '
    '"ts" = CASE WHEN excluded."ts" > "u"."ts" THEN excluded."ts" ELSE "u"."ts" END'
)
T0, T1 = datetime(2026, 11, 24, 3, tzinfo=UTC), datetime(2026, 11, 24, 4, tzinfo=UTC)


def _upsert_table(cursor: Any) -> None:
    """Create the table the upsert tests write: a two-column key, a sum, a later-of, a nullable."""
    cursor.execute(
        'CREATE TABLE "u" (k integer, s varchar(300), ts timestamptz, n bigint, m bigint,'
        " UNIQUE (k, s))"
    )


def test_upsert_adds_to_existing_rows_like_executemany(pg: Any) -> None:
    """One unnest statement on PostgreSQL: new keys inserted, existing ones added to; NULL columns,
    awkward text and a column that is NULL in every row come through."""
    from collector.bulk import upsert_rows

    with transaction.atomic(using=pg.alias), pg.cursor() as cursor:
        _upsert_table(cursor)
        upsert_rows(pg, cursor, UPSERT, [(1, "a", T0, 2, None), (2, "tab\t\\N é", T1, 5, None)])
        upsert_rows(pg, cursor, UPSERT, [(1, "a", T1, 3, None), (3, "", T0, 1, 9)])
        upsert_rows(pg, cursor, UPSERT, [])
    with pg.cursor() as cursor:
        cursor.execute('SELECT k, s, ts, n, m FROM "u" ORDER BY k')
        assert cursor.fetchall() == [
            (1, "a", T1, 5, None), (2, "tab\t\\N é", T1, 5, None), (3, "", T0, 1, 9),
        ]  # fmt: skip


def test_upsert_rejected_value_is_a_django_data_error(pg: Any) -> None:
    """A value PostgreSQL refuses raises django.db.DataError, as the writer's isolation expects."""
    from collector.bulk import upsert_rows

    with pg.cursor() as cursor:
        _upsert_table(cursor)
    with pytest.raises(DataError), transaction.atomic(using=pg.alias), pg.cursor() as cursor:
        upsert_rows(pg, cursor, UPSERT, [(1, "nul \x00", T0, 1, None)])


@pytest.mark.django_db
def test_upsert_on_sqlite_is_executemany() -> None:
    """SQLite runs the one-row statement per row."""
    from collector.bulk import upsert_rows

    conn = connections["default"]
    with conn.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE u (k integer, s text, ts text, n integer, m integer,"
                       " UNIQUE (k, s))")  # fmt: skip
        upsert_rows(conn, cursor, UPSERT.replace('"u".', "u."), [(1, "a", "t0", 2, None)])
        upsert_rows(conn, cursor, UPSERT.replace('"u".', "u."), [(1, "a", "t1", 3, None)])
        cursor.execute("SELECT k, s, ts, n FROM u")
        assert cursor.fetchall() == [(1, "a", "t1", 5)]
