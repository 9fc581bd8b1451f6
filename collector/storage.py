"""Batch writes of events, failed calls and rollups with plain inserts (no model objects).

Each event row carries all its calls as compact JSON (``collector.calls``); only failed calls get a
``ReceiverCall`` row. Inserts go through ``collector.bulk`` (COPY on PostgreSQL).

Model instances would send pre_init/post_init for every row and cost several times more; the
tables are the collector's own models, so the SQL stays portable across SQLite and PostgreSQL.
Rollup rows are only ever incremented (``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``),
so any number of writer processes can share them; the per-minute rows are also folded into the
10-minute, hour and day slots of ``collector.rollups`` in the same transaction.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from collector import bulk, rollups
from collector.calls import MESSAGE_CHARS
from collector.events import EventDict

_EVENT_COLS = (
    "id", "signal", "sender", "method", "timestamp", "duration_ns", "receiver_count",
    "failure_count", "parent_id", "parent_call", "kwargs", "host", "pid", "request_path",
    "calls_json",
)
_CALL_COLS = (
    "event_id", "index", "receiver", "is_async", "duration_ns", "outcome", "exc_type",
    "exc_message", "traceback", "location", "signal", "sender", "timestamp",
)
_STAT_KEY = ("minute", "signal", "sender", "receiver", "bucket")
_STAT_SUMS = ("calls", "failures", "total_ns")
_COUNT_KEY = ("minute", "signal")
_COUNT_SUMS = ("events", "unheard")


def _table(model_name: str) -> str:
    """Return the db_table of one of the collector's models."""
    from django.apps import apps

    return str(apps.get_model("signals_collector", model_name)._meta.db_table)


def _insert_sql(conn: Any, table: str, cols: tuple[str, ...]) -> str:
    """Return an INSERT statement for ``cols``."""
    qn = conn.ops.quote_name
    names = ", ".join(qn(c) for c in cols)
    marks = ", ".join(["%s"] * len(cols))
    return f"INSERT INTO {qn(table)} ({names}) VALUES ({marks})"


def _upsert_sql(
    conn: Any, table: str, key: tuple[str, ...], sums: tuple[str, ...], max_col: str | None
) -> str:
    """Return an additive upsert: sums are added, max_col keeps the larger value."""
    qn = conn.ops.quote_name
    cols = key + sums + ((max_col,) if max_col else ())
    sets = [f"{qn(c)} = {qn(table)}.{qn(c)} + excluded.{qn(c)}" for c in sums]
    if max_col:
        m = qn(max_col)
        sets.append(
            f"{m} = CASE WHEN excluded.{m} > {qn(table)}.{m} THEN excluded.{m} "
            f"ELSE {qn(table)}.{m} END"
        )
    conflict = ", ".join(qn(c) for c in key)
    return f"{_insert_sql(conn, table, cols)} ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(sets)}"


def _minute(ts: float) -> datetime:
    """Return the UTC minute a unix timestamp falls in."""
    return datetime.fromtimestamp(ts - ts % 60, tz=UTC)


def _timestamp_adapter(conn: Any) -> Any:
    """Return a fast unix-time -> database value function for this connection's backend."""
    if conn.vendor in ("sqlite", "postgresql"):
        # SQLite: what Django's backend stores for an aware datetime with USE_TZ (naive UTC text).
        # PostgreSQL: the same instant as text with its offset, which COPY and the rollups'
        # ``::timestamptz[]`` casts parse, instead of a datetime psycopg adapts one at a time.
        # The seconds part is formatted once per second, the microseconds appended.
        suffix = "" if conn.vendor == "sqlite" else "+00:00"
        last: list[Any] = [None, ""]

        def to_text(ts: float) -> str:
            second = int(ts)
            if second != last[0]:
                last[0] = second
                last[1] = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
            return f"{last[1]}.{int((ts - second) * 1_000_000):06d}{suffix}"

        return to_text
    ops = conn.ops

    def to_backend(ts: float) -> Any:
        return ops.adapt_datetimefield_value(datetime.fromtimestamp(ts, tz=UTC))

    return to_backend


def _json_encoder() -> Any:
    """Return a function encoding captured kwargs to JSON text, reusing one C encoder."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False).encode
    # No circular-reference markers: captured values are depth-capped trees.
    encoder = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


_encode = _json_encoder()


def write_batch(alias: str, events: list[EventDict], unheard: dict[str, int]) -> None:
    """Store events, their receiver calls and the rollups in one transaction."""
    conn = connections[alias]
    adapt = _timestamp_adapter(conn)
    event_rows, call_rows = [], []
    stat_rows: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    count_rows: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    failures, processes = rollups.FailureFold(), rollups.ProcessFold()
    log2 = math.log2
    message_chars = MESSAGE_CHARS
    names_json: dict[str, str] = {}  # receiver name -> its JSON string
    for ev in events:
        ts = ev["timestamp"]
        db_ts = adapt(ts)
        minute = ts - ts % 60
        signal, sender = ev["signal"][:200], ev["sender"][:300]
        kwargs = ev["kwargs"]
        stored_calls: list[str] = []  # the calls_json rows, as JSON (format: collector.calls)
        count_rows[(minute, signal)][0] += 1
        processes.add(ts, db_ts, ev["host"][:100], ev["pid"], bool(ev["failure_count"]))
        for call in ev["calls"]:
            took = call["duration_ns"]
            receiver = call["receiver"][:300]
            if call["outcome"] == "ok":
                failed = 0
                name = names_json.get(receiver)
                if name is None:
                    name = names_json[receiver] = _encode(receiver)
                index, is_async = call["index"], call["is_async"]
                if type(index) is int and type(took) is int:  # as built: their str() is JSON
                    flag = "true" if is_async else "false"
                    stored_calls.append(f"[{index},{name},{took},{flag}]")
                else:  # a processor put something else there
                    stored_calls.append(_encode([index, receiver, took, bool(is_async)]))
            else:  # only failed calls get a row of their own (traceback, location)
                failed = 1
                exc_type = call["exc_type"][:200] or "Exception"
                stored_calls.append(_encode([
                    call["index"], receiver, took, bool(call["is_async"]), exc_type,
                    call["exc_message"][:message_chars],
                ]))  # fmt: skip
                call_rows.append((
                    ev["id"], call["index"], receiver, call["is_async"], took, call["outcome"],
                    call["exc_type"][:200], call["exc_message"], call["traceback"],
                    call["location"][:300], signal, sender, db_ts,
                ))
                failures.add(
                    ts, db_ts,
                    (signal, sender, receiver, call["exc_type"][:200], call["location"][:300]),
                    ev["id"], call["index"], call["exc_message"][: rollups.MESSAGE_CHARS],
                )  # fmt: skip
            bucket = int(log2(took) * 4) if took > 1 else 0  # stats.bucket_of, inlined
            agg = stat_rows[(minute, signal, sender, receiver, bucket)]
            agg[0] += 1
            agg[1] += failed
            agg[2] += took
            if took > agg[3]:
                agg[3] = took
        event_rows.append((
            ev["id"], signal, sender, ev["method"], db_ts, ev["duration_ns"],
            ev["receiver_count"], ev["failure_count"], ev["parent_id"], ev["parent_call"],
            _encode(kwargs) if kwargs else "{}", ev["host"], ev["pid"], ev["request_path"][:300],
            f"[{','.join(stored_calls)}]",
        ))
    now = _now()
    for name, n in unheard.items():
        count_rows[(now - now % 60, name[:200])][1] += n
    minute_value = {m: adapt(m) for m in {k[0] for k in stat_rows} | {k[0] for k in count_rows}}
    with transaction.atomic(using=alias), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(_NO_WAIT_SQL)
        if event_rows:
            bulk.insert_rows(conn, cursor, _table("Event"), _EVENT_COLS, event_rows)
        if call_rows:
            bulk.insert_rows(conn, cursor, _table("ReceiverCall"), _CALL_COLS, call_rows)
        if stat_rows:
            bulk.upsert_rows(
                conn, cursor,
                _upsert_sql(conn, _table("ReceiverStat"), _STAT_KEY, _STAT_SUMS, "max_ns"),
                sorted((minute_value[k[0]], *k[1:], *v) for k, v in stat_rows.items()),
            )
        if count_rows:
            bulk.upsert_rows(
                conn, cursor,
                _upsert_sql(conn, _table("SignalCount"), _COUNT_KEY, _COUNT_SUMS, None),
                sorted((minute_value[k[0]], k[1], *v) for k, v in count_rows.items()),
            )
        rollups.write(
            conn, cursor, stats=stat_rows, counts=count_rows, failures=failures,
            processes=processes,
        )  # fmt: skip
    if conn.vendor == "sqlite" and _checkpoint_due(alias, len(events)):
        _checkpoint(conn)


def sqlite_file(entry: dict[str, Any]) -> str:
    """Return the real path of a SQLite database entry's file ("" for another engine or an
    in-memory database; a ``file:`` URI as it is)."""
    name = str(entry.get("NAME", ""))
    if not str(entry.get("ENGINE", "")).endswith("sqlite3") or name in ("", ":memory:"):
        return ""
    if name.startswith("file:"):
        return "" if "mode=memory" in name else name
    return os.path.realpath(name)


def shares_sqlite_file(alias: str) -> bool:
    """Return True when ``alias`` is the default database, an in-memory one, or opens the same
    SQLite file as another alias: the monitor's writes then share one file (and its one write
    lock) with the application's."""
    databases = settings.DATABASES
    own = sqlite_file(databases.get(alias, {}))
    if alias == DEFAULT_DB_ALIAS or not own:
        return True
    return any(other != alias and sqlite_file(entry) == own for other, entry in databases.items())


# SQLite in WAL mode, the monitor in the application's file: after each store the writer copies
# the WAL back into the database file (a passive checkpoint, which waits for nobody). Otherwise
# the commit that finds the WAL over 1,000 pages does it, and that is most often one of the
# application's own (20 commits a request in the benchmark, against the writer's 2 a second): the
# application paid for checkpointing the monitor's rows. In a file of the monitor's own only the
# writer commits there, so it checkpoints once CHECKPOINT_EVENTS events were stored since the
# last one: at full speed (tens of thousands of events a second) after every store, which kept
# ingest at its rate (without: 95-146k calls/s, with: 145-153k); at a request's pace every few
# seconds, as SQLite's own checkpoint would, instead of copying and syncing the same hot pages
# twice a second (the realistic request: ~1% less CPU, docs/performance.md).
CHECKPOINT_EVENTS = 20_000
_since_checkpoint: dict[str, int] = {}


def _checkpoint_due(alias: str, stored: int) -> bool:
    """Return True when the writer should checkpoint ``alias`` after storing ``stored`` events."""
    if shares_sqlite_file(alias):
        return True
    count = _since_checkpoint.get(alias, 0) + stored
    _since_checkpoint[alias] = 0 if count >= CHECKPOINT_EVENTS else count
    return count >= CHECKPOINT_EVENTS


def _checkpoint(conn: Any) -> None:
    """Run a passive WAL checkpoint on ``conn`` (never raises: a failed one waits for the next)."""
    try:
        with conn.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception:  # noqa: BLE001 - SQLITE_BUSY and the like: the next store tries again
        pass


# The collector's own transactions do not wait for the WAL flush: a crash of the database server
# may lose its last fraction of a second of events (never the application's data, never a torn
# row); the writer stops waiting on every commit's fsync.
_NO_WAIT_SQL = "SET LOCAL synchronous_commit TO OFF"


def _now() -> float:
    """Return the current unix time."""
    import time

    return time.time()


def tables_exist(alias: str) -> bool:
    """Return True when the collector's tables exist in ``alias``."""
    conn = connections[alias]
    with conn.cursor() as cursor:
        names = set(conn.introspection.table_names(cursor))
    return {_table("Event"), _table("ReceiverCall"), _table("ReceiverStat")} <= names
