"""Ingest: receiver calls persisted per second by the collector's writer, against a bare floor.

Measured with both writers (``SIGNAL_MONITOR["WRITER"]``): "process", the one recommended for
production, is held to the budgets; "thread" (the default) is reported.

One process, as in an application: the main thread sends the workload's signals (bench._data)
through the real ``Signal.send()`` with the collector installed and only the DatabaseSink on;
the collector's writer thread stores them. The sender runs flat out for the whole period but
pauses while the collector's queue holds more than five batches (the writer always has full
batches, far below QUEUE_SIZE), so the figure is the writer's sustained rate with nothing
dropped (sent and stored receiver calls are counted; drops are the collector's own counters).

On PostgreSQL the writer inserts with COPY (collector.bulk), so the same rows are also timed
with a bare COPY, a second floor that the writer cannot beat.

Calls are stored on their event rows (``calls_json``); only failed calls also get a ReceiverCall
row, so "receiver calls stored" counts the calls those event rows carry.

The floor is a bare ``executemany`` of the same Event and ReceiverCall rows (read back from
what the collector stored, ids renumbered) into fresh tables with the same schema and indexes,
on the same database, one transaction per BATCH_SIZE events; it stores no rollups, which the
collector also writes. The writer's CPU share is measured separately at a steady 5,000 events/s
with the writer thread's own CPU clock.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from bench import _data
from bench._data import row

BUDGET_RATE = 50_000
BUDGET_FLOOR = 0.35
STEADY_RATE = 5_000
WRITER = "signal-monitor-writer"
WRITERS = ("process", "thread")  # SIGNAL_MONITOR["WRITER"] values measured, budget rows first
JUDGED = "process"  # the writer recommended for production (README) is held to the budgets


def _settings(sqlite_path: str, pg_url: str | None) -> dict[str, Any]:
    """Return settings overrides: the project's SQLite options, and PostgreSQL as "pg"."""
    from config.env import database_from_url, sqlite_database

    databases = {"default": sqlite_database(sqlite_path)}
    if pg_url:
        databases["pg"] = database_from_url(pg_url)
    return {
        "DATABASES": databases,
        # No pruning: at 100k+ calls/s, 30 s pass MAX_EVENTS (1,000,000 events), and the oldest
        # events the prune deleted would be counted as lost.
        "SIGNAL_MONITOR": {"SINKS": ["collector.sinks.DatabaseSink"], "AUTO_INSTALL": False,
                           "PRUNE_INTERVAL": 0},
    }


def _count_calls(alias: str) -> int:
    """Return the number of stored receiver calls (kept in their events' calls_json)."""
    from django.db.models import Sum

    from collector.models import Event

    return int(Event.objects.using(alias).aggregate(n=Sum("receiver_count"))["n"] or 0)


def _use_alias(alias: str, writer: str) -> Any:
    """Return an override_settings pointing the DatabaseSink at ``alias``, with ``writer``."""
    from django.conf import settings
    from django.test.utils import override_settings

    config = {**settings.SIGNAL_MONITOR, "DATABASE_ALIAS": alias, "WRITER": writer}
    return override_settings(SIGNAL_MONITOR=config)


def _writer_clock() -> Any:
    """Return a clock of the writer's CPU seconds: the writer process's, else the thread's."""
    from collector import pipeline

    current = pipeline._current
    if current is not None and current.link is not None and current.link.process is not None:
        path = f"/proc/{current.link.process.pid}/schedstat"

        def clock() -> float:
            """Read the writer process's CPU seconds."""
            with open(path) as stat:
                return int(stat.read().split()[0]) / 1e9

        return clock
    return _data.thread_cpu(WRITER)


def _throughput(alias: str, seconds: float) -> dict[str, Any]:
    """Send flat out (with back-pressure) for ``seconds``; return sent, stored, rate, drops."""
    import collector
    from collector import hook, pipeline, runtime
    from collector.conf import get_config

    pipeline.current()  # applies QUEUE_SIZE now
    sender = _data.Sender()
    sender.send(600)  # warm-up: names cached, writer started, connection open
    collector.flush(30)
    before, drops_before = _count_calls(alias), sum(runtime.snapshot()["dropped"].values())
    sender = _data.Sender()
    start = time.perf_counter()
    high = min(hook.capacity // 2, 5 * int(get_config()["BATCH_SIZE"]))  # always full batches
    sender.flat_out(seconds, backlog=lambda: len(hook._queue), high=high)
    drained = collector.flush(120)
    elapsed = time.perf_counter() - start
    stored = _count_calls(alias) - before
    dropped = sum(runtime.snapshot()["dropped"].values()) - drops_before
    return {
        "events_sent": sender.events,
        "calls_sent": sender.calls,
        "calls_stored": stored,
        "dropped": dropped,
        "drained": drained,
        "seconds": round(elapsed, 2),
        "calls_per_s": round(stored / elapsed),
        "queue_size": hook.capacity,
    }


def _cpu_share(seconds: float) -> dict[str, Any]:
    """Send a steady STEADY_RATE events/s; return the writer thread's share of one core.

    Measured over the sending window only; ``kept_up`` says whether the writer drained what
    was sent (a queue still holding more than a flush interval's worth means it did not).
    """
    import collector
    from collector import hook

    sender = _data.Sender()
    sender.send(100)
    collector.flush(30)
    cpu = _writer_clock()
    cpu0, wall0 = cpu(), time.perf_counter()
    sender.paced(STEADY_RATE, seconds)
    used, wall = cpu() - cpu0, time.perf_counter() - wall0
    left = len(hook._queue)
    collector.flush(60)
    return {
        "share": round(used / wall, 4),
        "writer_cpu_s": round(used, 3),
        "rate": round(sender.events / wall),
        "us_per_event": round(used / max(1, sender.events - left) * 1e6, 1),
        "queue_at_end": left,
        "kept_up": left <= STEADY_RATE * 0.5,
    }


# ---- the floor ----------------------------------------------------------------------------------


def _clone_models(tag: str) -> tuple[Any, Any]:
    """Return unregistered copies of Event and ReceiverCall on fresh tables (same indexes)."""
    from django.apps.registry import Apps
    from django.db import models

    from collector.models import Event, ReceiverCall

    registry = Apps()
    clones = []
    for model in (Event, ReceiverCall):
        attrs: dict[str, Any] = {"__module__": __name__}
        for field in model._meta.local_fields:
            if isinstance(field, models.ForeignKey):  # an index, no constraint, as the original
                attrs[field.name] = models.BigIntegerField(db_column=field.column, db_index=True)
            else:
                attrs[field.name] = field.clone()
        indexes = []
        for index in model._meta.indexes:
            copy = index.clone()
            copy.name = f"bf{tag}_{index.name}"[:60]
            indexes.append(copy)
        meta = type(
            "Meta",
            (),
            {
                "apps": registry,
                "app_label": "bench_floor",
                "db_table": f"bench_floor_{tag}_{model._meta.db_table}",
                "indexes": indexes,
            },
        )
        attrs["Meta"] = meta
        clones.append(type(f"Floor{model.__name__}", (models.Model,), attrs))
    return clones[0], clones[1]


def _template(alias: str, events: int) -> tuple[list[list[Any]], list[list[Any]]]:
    """Read back the first ``events`` stored events and their calls (datetimes left as such)."""
    from django.db import connections

    from collector import storage
    from collector.models import Event, ReceiverCall

    conn = connections[alias]
    qn = conn.ops.quote_name
    ev_cols = ", ".join(qn(c) for c in storage._EVENT_COLS)
    call_cols = ", ".join(qn(c) for c in storage._CALL_COLS)
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT {ev_cols} FROM {qn(Event._meta.db_table)} ORDER BY {qn('id')} "
            f"LIMIT {int(events)}"
        )
        ev_rows = [list(r) for r in cursor.fetchall()]
        low, high = ev_rows[0][0], ev_rows[-1][0]
        cursor.execute(
            f"SELECT {call_cols} FROM {qn(ReceiverCall._meta.db_table)} "
            f"WHERE {qn('event_id')} BETWEEN %s AND %s",
            [low, high],
        )
        call_rows = [list(r) for r in cursor.fetchall()]
    for r in ev_rows:
        r[10] = r[10] if isinstance(r[10], str) else json.dumps(r[10])  # kwargs
    return ev_rows, call_rows


class _FloorRows:
    """The template batch renumbered and moved forward in time for each repetition.

    Ids and timestamps keep growing as the collector's do, so index inserts land where they
    would in real use (re-inserting equal timestamps would scatter them and slow the floor).
    """

    def __init__(self, alias: str, events: int) -> None:
        """Read the template and index its event ids."""
        from django.db import connections

        self.adapt = connections[alias].ops.adapt_datetimefield_value
        self.events, self.calls = _template(alias, events)
        self.position = {r[0]: i for i, r in enumerate(self.events)}
        stamps = [r[4] for r in self.events]
        self.span = max(stamps) - min(stamps) + timedelta(milliseconds=1)

    def batch(self, rep: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Return (event rows, call rows) of repetition ``rep``."""
        adapt, base, shift, pos = (
            self.adapt,
            rep * len(self.events) + 1,
            self.span * rep,
            self.position,
        )
        events = []
        for i, r in enumerate(self.events):
            parent = r[8] if r[8] not in pos else base + pos[r[8]]
            events.append((base + i, *r[1:4], adapt(r[4] + shift), *r[5:8], parent, *r[9:]))
        calls = [(base + pos[r[0]], *r[1:12], adapt(r[12] + shift)) for r in self.calls]
        return events, calls


def _floor(
    alias: str, target_calls: int, batch: int, max_seconds: float, copy: bool = False
) -> dict[str, Any]:
    """Insert the same rows with bare executemany (or COPY) into fresh tables; return calls/s.

    Only the database work is timed (the inserts and commit); building each batch is not.
    """
    from django.db import connections, transaction

    from collector import bulk, storage

    conn = connections[alias]
    rows = _FloorRows(alias, batch)
    floor_event, floor_call = _clone_models(alias)
    with conn.schema_editor() as editor:
        editor.create_model(floor_event)
        editor.create_model(floor_call)
    ev_sql = storage._insert_sql(conn, floor_event._meta.db_table, storage._EVENT_COLS)
    call_sql = storage._insert_sql(conn, floor_call._meta.db_table, storage._CALL_COLS)
    inserted, elapsed, rep = 0, 0.0, 0
    try:
        while inserted < target_calls and elapsed < max_seconds:
            events, calls = rows.batch(rep)
            start = time.perf_counter()
            with transaction.atomic(using=alias), conn.cursor() as cursor:
                if copy:
                    table = floor_event._meta.db_table
                    bulk.insert_rows(conn, cursor, table, storage._EVENT_COLS, events)
                    table = floor_call._meta.db_table
                    bulk.insert_rows(conn, cursor, table, storage._CALL_COLS, calls)
                else:
                    cursor.executemany(ev_sql, events)
                    cursor.executemany(call_sql, calls)
            elapsed += time.perf_counter() - start
            inserted += sum(e[6] for e in events)  # receiver_count: the calls each row carries
            rep += 1
    finally:
        with conn.schema_editor() as editor:
            editor.delete_model(floor_call)
            editor.delete_model(floor_event)
    return {
        "calls": inserted,
        "seconds": round(elapsed, 2),
        "calls_per_s": round(inserted / elapsed),
        "events_per_batch": len(rows.events),
        "calls_per_batch": len(rows.calls),
    }


# ---- one database -------------------------------------------------------------------------------


def _database(
    label: str, alias: str, seconds: float, steady: float, writer: str
) -> list[dict[str, Any]]:
    """Measure one database with one writer: throughput, floor ratio, writer CPU share."""
    from django.core.management import call_command

    from collector.conf import get_config

    call_command("migrate", "signals_collector", database=alias, verbosity=0)
    label = f"{label}, WRITER='{writer}'"
    with _use_alias(alias, writer):
        got = _throughput(alias, seconds)
        batch = int(get_config()["BATCH_SIZE"])
        floor = _floor(alias, got["calls_stored"], batch, max_seconds=max(seconds, 2.0))
        copy_floor = (
            _floor(alias, got["calls_stored"], batch, max_seconds=max(seconds, 2.0), copy=True)
            if alias != "default"
            else None
        )
        cpu = _cpu_share(steady)
    lost = got["calls_sent"] - got["calls_stored"]
    ratio = got["calls_per_s"] / floor["calls_per_s"]
    judged = writer == JUDGED  # the other writer's rates are reported (nothing may be lost)

    def budget(text: str) -> str:
        """Return the budget text for this writer's rows."""
        return text if judged else "(reported)"

    return [
        row(
            "ingest",
            f"{label}: receiver calls stored/s",
            f"{got['calls_per_s']:,}/s, lost {lost}",
            budget(f">= {BUDGET_RATE:,}/s") + ", 0 lost",
            (got["calls_per_s"] >= BUDGET_RATE or not judged) and lost == 0,
            **got,
            lost=lost,
        ),
        row(
            "ingest",
            f"{label}: vs bare executemany floor",
            f"{ratio:.2f}x ({floor['calls_per_s']:,}/s)",
            budget(f">= {BUDGET_FLOOR:.2f}x"),
            ratio >= BUDGET_FLOOR or not judged,
            ratio=round(ratio, 3),
            floor=floor,
        ),
        *(
            [
                row(
                    "ingest",
                    f"{label}: vs bare COPY (the writer's own method there)",
                    f"{got['calls_per_s'] / copy_floor['calls_per_s']:.2f}x "
                    f"({copy_floor['calls_per_s']:,}/s)",
                    budget(f">= {BUDGET_FLOOR:.2f}x"),
                    got["calls_per_s"] / copy_floor["calls_per_s"] >= BUDGET_FLOOR or not judged,
                    floor=copy_floor,
                )
            ]
            if copy_floor
            else []
        ),
        row(
            "ingest",
            f"{label}: writer CPU at {STEADY_RATE:,} events/s",
            f"{cpu['share']:.0%} of a core, {cpu['us_per_event']:.0f} us/ev"
            + ("" if cpu["kept_up"] else ", behind"),
            "(reported)",
            cpu["share"] > 0,
            **cpu,
        ),
    ]


def run(quick: bool = False, tiny: bool = False) -> list[dict[str, Any]]:
    """Measure ingest into SQLite and PostgreSQL (skipped with a FAIL row if not running)."""
    from bench.setup import configure

    seconds, steady = (0.5, 0.5) if tiny else (4.0, 2.0) if quick else (30.0, 10.0)
    sqlite_path = _data.temp_sqlite("ingest")
    rows: list[dict[str, Any]] = []
    try:
        with _data.postgres_database("ingest") as pg_url:
            configure(**_settings(str(sqlite_path), pg_url))
            import collector
            from collector import runtime

            _data.connect_workload()
            collector.install()
            for writer in WRITERS:
                rows += _database("SQLite", "default", seconds, steady, writer)
                if pg_url:
                    rows += _database("PostgreSQL", "pg", seconds, steady, writer)
            if not pg_url:
                rows.append(
                    row(
                        "ingest",
                        "PostgreSQL: receiver calls stored/s",
                        "PostgreSQL not running (`make system` installs and starts it)",
                        f">= {BUDGET_RATE:,}/s",
                        False,
                    )
                )
            collector.uninstall()
            runtime.shutdown()
            from django.db import connections

            connections.close_all()
    finally:
        _data.remove_sqlite(sqlite_path)
    return rows


if __name__ == "__main__":
    import sys

    for r in run(quick="--quick" in sys.argv, tiny="--tiny" in sys.argv):
        print(json.dumps(r))
