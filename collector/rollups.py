"""Slot rollups (10 minutes, an hour, 6 hours, a day) of timings, counts, failures, processes.

The writer folds each batch's per-minute rows into every slot in the same transaction, with
the same additive upserts as the per-minute tables (``n = n + excluded.n``, larger maximum,
later "latest"), so any number of writer processes can share them. The dashboard reads the
coarsest slots that fit a window exactly, so a 7-day page sums a few thousand rows instead of
the millions the per-minute table holds. ``rebuild()`` recomputes them from the per-minute
tables and the stored failures (after the migration that adds them, and in tests).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import connections, transaction

from collector import bulk

__all__ = [
    "BUCKETS_PER_ROW",
    "GRAINS",
    "MESSAGE_CHARS",
    "SLOT_MODELS",
    "FailureFold",
    "ProcessFold",
    "fold_counts",
    "fold_stats",
    "group_key",
    "rebuild",
    "write",
]

GRAINS = (600, 3600, 21600, 86400)  # seconds; must match collector.models.Grain
SLOT_MODELS = ("ReceiverRollup", "SignalRollup", "FailureRollup", "ProcessRollup")
BUCKETS_PER_ROW = 16
MESSAGE_CHARS = 200

_BUCKET_COLS = tuple(f"b{i}" for i in range(BUCKETS_PER_ROW))
_ZEROS = (0,) * BUCKETS_PER_ROW
_ROLLUP_KEY = ("grain", "start", "signal", "sender", "receiver", "octave")
_ROLLUP_SUMS = ("calls", "failures", "total_ns", *_BUCKET_COLS)
_ROLLUP_COLS = (*_ROLLUP_KEY, "calls", "failures", "total_ns", "max_ns", "last_failure",
                *_BUCKET_COLS)  # fmt: skip
_PROCESS_COLS = ("grain", "start", "host", "pid", "events", "failed", "first_seen", "last_seen")
_SIGNAL_KEY = ("grain", "start", "signal")
_SIGNAL_SUMS = ("events", "unheard")
_FAILURE_COLS = (
    "grain", "start", "group_key", "signal", "sender", "receiver", "exc_type", "location",
    "failures", "first_seen", "last_seen", "latest_event", "latest_index", "latest_message",
)  # fmt: skip

StatRows = Mapping[tuple[Any, ...], list[int]]  # (minute unix, signal, sender, receiver, bucket)
CountRows = Mapping[tuple[Any, ...], list[int]]  # (minute unix, signal) -> [events, unheard]


def fold_stats(stats: StatRows) -> dict[tuple[Any, ...], list[Any]]:
    """Fold per-minute timing rows into slot rows keyed (grain, slot, signal, sender, receiver,
    octave) -> [calls, failures, total_ns, max_ns, last failed minute or None, b0..b15]."""
    packed: dict[tuple[Any, ...], list[Any]] = {}  # the same rows per minute, 16 buckets a row
    for (minute, signal, sender, receiver, bucket), (calls, failures, total, most) in stats.items():
        octave, slot_bucket = divmod(int(bucket), BUCKETS_PER_ROW)
        key = (minute, signal, sender, receiver, octave)
        row = packed.get(key)
        if row is None:
            packed[key] = row = [0, 0, 0, 0, None, *_ZEROS]
        row[0] += calls
        row[1] += failures
        row[2] += total
        if most > row[3]:
            row[3] = most
        if failures:
            row[4] = minute
        row[5 + slot_bucket] += calls
    out: dict[tuple[Any, ...], list[Any]] = {}
    for grain in GRAINS:
        for (minute, *rest), row in packed.items():
            slot_key = (grain, minute - minute % grain, *rest)
            acc = out.get(slot_key)
            if acc is None:
                out[slot_key] = row.copy()
            else:
                _merge_rows(acc, row)
    return out


def _merge_rows(acc: list[Any], row: list[Any]) -> None:
    """Add one packed timing row into another (a batch spanning minutes of one slot)."""
    acc[0] += row[0]
    acc[1] += row[1]
    acc[2] += row[2]
    acc[3] = max(acc[3], row[3])
    if row[4] is not None and (acc[4] is None or row[4] > acc[4]):
        acc[4] = row[4]
    for i in range(5, len(row)):
        acc[i] += row[i]


def fold_counts(counts: CountRows) -> dict[tuple[Any, ...], list[int]]:
    """Fold per-minute signal counts into slot rows keyed (grain, slot, signal)."""
    out: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for (minute, signal), (events, unheard) in counts.items():
        for grain in GRAINS:
            row = out[(grain, minute - minute % grain, signal)]
            row[0] += events
            row[1] += unheard
    return dict(out)


def group_key(signal: str, sender: str, receiver: str, exc_type: str, location: str) -> str:
    """Return the 40-character digest naming one failure group."""
    text = "\x1f".join((signal, sender, receiver, exc_type, location))
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class FailureFold:
    """Collects failed calls into slot rows: count, first and last seen, the newest failure."""

    def __init__(self) -> None:
        """Start empty."""
        self.rows: dict[tuple[Any, ...], list[Any]] = {}
        self._keys: dict[tuple[str, ...], str] = {}

    def add(
        self, ts: float, db_ts: Any, group: tuple[str, str, str, str, str],
        event_id: int, index: int, message: str,
    ) -> None:  # fmt: skip
        """Count one failed call of ``group`` (signal, sender, receiver, exc_type, location)."""
        key = self._keys.get(group)
        if key is None:
            key = self._keys[group] = group_key(*group)
        for grain in GRAINS:
            slot = (grain, ts - ts % grain, key)
            row = self.rows.get(slot)
            if row is None:
                self.rows[slot] = [group, 1, ts, db_ts, ts, db_ts, event_id, index, message]
                continue
            row[1] += 1
            if ts < row[2]:
                row[2], row[3] = ts, db_ts
            if ts >= row[4]:
                row[4:9] = [ts, db_ts, event_id, index, message]

    def values(self, slot_value: Callable[[float], Any]) -> list[tuple[Any, ...]]:
        """Return the rows to upsert, in key order, with slots converted by ``slot_value``."""
        out = []
        for (grain, slot, key), row in sorted(self.rows.items(), key=lambda kv: kv[0]):
            group, n, _first, first_db, _last, last_db, event_id, index, message = row
            out.append((
                grain, slot_value(slot), key, *group, n, first_db, last_db, event_id, index,
                message[:MESSAGE_CHARS],
            ))
        return out


class ProcessFold:
    """Collects events into per-process slot rows: events, events with a failure, first, last.

    Events are counted per minute as they come (one dict update each) and folded into the
    slots when the rows are written.
    """

    def __init__(self) -> None:
        """Start empty."""
        self.minutes: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, ts: float, db_ts: Any, host: str, pid: int, failed: bool) -> None:
        """Count one event stored by ``host``/``pid``."""
        key = (ts - ts % 60, host, pid)
        row = self.minutes.get(key)
        if row is None:
            self.minutes[key] = [1, int(failed), ts, db_ts, ts, db_ts]
            return
        row[0] += 1
        row[1] += failed
        if ts < row[2]:
            row[2], row[3] = ts, db_ts
        if ts >= row[4]:
            row[4], row[5] = ts, db_ts

    @property
    def rows(self) -> dict[tuple[Any, ...], list[Any]]:
        """Return the slot rows keyed (grain, slot, host, pid)."""
        out: dict[tuple[Any, ...], list[Any]] = {}
        for grain in GRAINS:
            for (minute, host, pid), row in self.minutes.items():
                key = (grain, minute - minute % grain, host, pid)
                acc = out.get(key)
                if acc is None:
                    out[key] = row.copy()
                    continue
                acc[0] += row[0]
                acc[1] += row[1]
                if row[2] < acc[2]:
                    acc[2], acc[3] = row[2], row[3]
                if row[4] >= acc[4]:
                    acc[4], acc[5] = row[4], row[5]
        return out

    def values(self, slot_value: Callable[[float], Any]) -> list[tuple[Any, ...]]:
        """Return the rows to upsert, in key order, with slots converted by ``slot_value``."""
        return [
            (grain, slot_value(slot), host, pid, row[0], row[1], row[3], row[5])
            for (grain, slot, host, pid), row in sorted(self.rows.items(), key=lambda kv: kv[0])
        ]


def _table(model_name: str) -> str:
    """Return the db_table of one of the collector's models."""
    from django.apps import apps

    return str(apps.get_model("signals_collector", model_name)._meta.db_table)


def slot_adapter(conn: Any) -> Callable[[float], Any]:
    """Return unix time -> this backend's value for a slot start (what the ORM would store)."""
    adapt = conn.ops.adapt_datetimefield_value
    cache: dict[float, Any] = {}

    def to_backend(ts: float) -> Any:
        value = cache.get(ts)
        if value is None:
            value = cache[ts] = adapt(datetime.fromtimestamp(ts, tz=UTC))
        return value

    return to_backend


def _upsert(conn: Any, table: str, key: tuple[str, ...], sums: tuple[str, ...], extra: list[str],
            cols: tuple[str, ...]) -> str:  # fmt: skip
    """Return INSERT ... ON CONFLICT (key) DO UPDATE adding ``sums`` plus ``extra`` SET items."""
    qn = conn.ops.quote_name
    t = qn(table)
    names = ", ".join(qn(c) for c in cols)
    marks = ", ".join(["%s"] * len(cols))
    sets = [f"{qn(c)} = {t}.{qn(c)} + excluded.{qn(c)}" for c in sums] + extra
    conflict = ", ".join(qn(c) for c in key)
    return (
        f"INSERT INTO {t} ({names}) VALUES ({marks}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(sets)}"
    )


def _greater(conn: Any, table: str, col: str, by: str | None = None, less: bool = False) -> str:
    """Return a SET item keeping ``col`` of the row whose ``by`` column is larger (or smaller).

    Every SET expression reads the row as it was before the update (SQLite and PostgreSQL).
    """
    qn = conn.ops.quote_name
    t, c, b = qn(table), qn(col), qn(by or col)
    op = "<" if less else ">"
    return f"{c} = CASE WHEN excluded.{b} {op} {t}.{b} THEN excluded.{c} ELSE {t}.{c} END"


def _later_failure(conn: Any, table: str) -> str:
    """Return the SET item keeping the later non-null ``last_failure``."""
    qn = conn.ops.quote_name
    t, c = qn(table), qn("last_failure")
    return (
        f"{c} = CASE WHEN {t}.{c} IS NULL OR excluded.{c} > {t}.{c} "
        f"THEN excluded.{c} ELSE {t}.{c} END"
    )


def write(
    conn: Any,
    cursor: Any,
    *,
    stats: StatRows,
    counts: CountRows,
    failures: FailureFold | None,
    processes: ProcessFold | None = None,
) -> None:
    """Upsert the slot rollups of one batch (call inside the batch's transaction)."""
    slot_value = slot_adapter(conn)
    if processes is not None and processes.minutes:
        table = _table("ProcessRollup")
        extra = [_greater(conn, table, "first_seen", less=True), _greater(conn, table, "last_seen")]
        bulk.upsert_rows(
            conn, cursor,
            _upsert(conn, table, _PROCESS_COLS[:4], ("events", "failed"), extra, _PROCESS_COLS),
            processes.values(slot_value),
        )
    if stats:
        table = _table("ReceiverRollup")
        keep = [_greater(conn, table, "max_ns"), _later_failure(conn, table)]
        bulk.upsert_rows(
            conn, cursor,
            _upsert(conn, table, _ROLLUP_KEY, _ROLLUP_SUMS, keep, _ROLLUP_COLS),
            [
                (k[0], slot_value(k[1]), *k[2:], *v[:4],
                 None if v[4] is None else slot_value(v[4]), *v[5:])
                for k, v in sorted(fold_stats(stats).items())
            ],
        )  # fmt: skip
    if counts:
        table = _table("SignalRollup")
        rows = fold_counts(counts)
        bulk.upsert_rows(
            conn, cursor,
            _upsert(conn, table, _SIGNAL_KEY, _SIGNAL_SUMS, [], (*_SIGNAL_KEY, *_SIGNAL_SUMS)),
            [(k[0], slot_value(k[1]), k[2], *v) for k, v in sorted(rows.items())],
        )
    if failures is not None and failures.rows:
        table = _table("FailureRollup")
        keep_latest = [
            _greater(conn, table, col, "last_seen")
            for col in ("latest_event", "latest_index", "latest_message", "last_seen")
        ]
        extra = [_greater(conn, table, "first_seen", less=True), *keep_latest]
        sql = _upsert(
            conn, table, ("grain", "start", "group_key"), ("failures",), extra, _FAILURE_COLS
        )
        bulk.upsert_rows(conn, cursor, sql, failures.values(slot_value))


# ---- rebuilding from the per-minute tables and the stored failures -----------------------------


def _unix(value: datetime) -> float:
    """Return an aware (or naive UTC) datetime as unix time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def rebuild(alias: str = "default", *, models: Any = None, chunk: int = 50_000) -> None:
    """Recompute every slot rollup from ReceiverStat, SignalCount, the events and the failures.

    ``models`` is an app registry (a migration's historical apps); the current one by default.
    Reads ``chunk`` rows at a time and upserts each chunk's slots (the upserts add up), so
    memory stays flat however much is stored. Deletes the slot rollups first; run it while no
    writer is storing (a migration, a test).
    """
    if models is None:
        from django.apps import apps as models
    get = models.get_model
    stat, count, call = (
        get("signals_collector", n) for n in ("ReceiverStat", "SignalCount", "ReceiverCall")
    )
    conn = connections[alias]
    with transaction.atomic(using=alias), conn.cursor() as cursor:
        for name in SLOT_MODELS:
            get("signals_collector", name).objects.using(alias).all().delete()
        fields = ("minute", "signal", "sender", "receiver", "bucket", "calls", "failures",
                  "total_ns", "max_ns")  # fmt: skip
        rows = stat.objects.using(alias).order_by().values_list(*fields)
        for part in _parts(rows.iterator(chunk), chunk):
            stats: dict[tuple[Any, ...], list[int]] = {}
            for minute, sig, snd, rcv, bucket, calls, failures, total, most in part:
                row = stats.setdefault((_unix(minute), sig, snd, rcv, bucket), [0, 0, 0, 0])
                row[0], row[1], row[2] = row[0] + calls, row[1] + failures, row[2] + total
                row[3] = max(row[3], most)
            write(conn, cursor, stats=stats, counts={}, failures=None)
        rows = count.objects.using(alias).order_by().values_list(
            "minute", "signal", "events", "unheard"
        )
        for part in _parts(rows.iterator(chunk), chunk):
            counts: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
            for minute, sig, events, unheard in part:
                counts[(_unix(minute), sig)][0] += events
                counts[(_unix(minute), sig)][1] += unheard
            write(conn, cursor, stats={}, counts=counts, failures=None)
        adapt = conn.ops.adapt_datetimefield_value
        rows = get("signals_collector", "Event").objects.using(alias).order_by().values_list(
            "timestamp", "host", "pid", "failure_count"
        )
        for part in _parts(rows.iterator(chunk), chunk):
            procs = ProcessFold()
            for when, host, pid, failed in part:
                procs.add(_unix(when), adapt(when), host, pid, bool(failed))
            write(conn, cursor, stats={}, counts={}, failures=None, processes=procs)
        rows = (
            call.objects.using(alias).filter(outcome="error").order_by()
            .values_list("timestamp", "signal", "sender", "receiver", "exc_type", "location",
                         "event_id", "index", "exc_message")
        )  # fmt: skip
        for part in _parts(rows.iterator(chunk), chunk):
            fold = FailureFold()
            for when, sig, snd, rcv, exc, loc, event_id, index, message in part:
                fold.add(_unix(when), adapt(when), (sig, snd, rcv, exc, loc), event_id, index,
                         message[:MESSAGE_CHARS])  # fmt: skip
            write(conn, cursor, stats={}, counts={}, failures=fold)


def _parts(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of at most ``size`` rows."""
    part: list[Any] = []
    for row in rows:
        part.append(row)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part
