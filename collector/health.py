"""This process's collector health (drops per reason, writer restarts, errors) in CollectorHealth.

The writer thread calls ``maybe_persist()`` after each round; every HEALTH_INTERVAL seconds (and
soon after a writer restart) it upserts one row keyed by host, pid and start time, so the
dashboard can show, per process, what the collector dropped and why. Never raises.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from collector import runtime
from collector.conf import get_config
from collector.events import HOST

__all__ = ["maybe_persist", "persist", "request_persist", "row_values", "summary"]

_next_at = 0.0
_started: tuple[float, datetime] | None = None
_last_written: dict[str, Any] | None = None  # the figures of the last row written


def request_persist() -> None:
    """Write the row at the writer's next round (a restart must be visible quickly)."""
    global _next_at
    _next_at = 0.0


def after_fork() -> None:
    """A forked child reports as a new process."""
    global _next_at, _started, _last_written
    _next_at = 0.0
    _started = None
    _last_written = None


def maybe_persist() -> bool:
    """Write the row if HEALTH_INTERVAL has passed and a figure changed; return True if written."""
    global _next_at
    interval = float(get_config()["HEALTH_INTERVAL"] or 0)
    now = time.monotonic()
    if interval <= 0 or now < _next_at or not _database_writable():
        return False
    _next_at = now + interval
    if _figures(runtime.snapshot()) == _last_written:
        return False  # an idle process does not write every few seconds
    return persist()


def _figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Return the row's values without the update time."""
    values = row_values(snapshot)
    values.pop("updated")
    return values


def _database_sink() -> Any:
    """Return the current pipeline's DatabaseSink (connected to the configured database), if the
    database is one of the sinks."""
    from collector.sinks import DatabaseSink

    for sink in runtime._sinks():
        if isinstance(sink, DatabaseSink) and sink.enabled:
            sink.follow_settings()
            return sink
    return None


def _database_writable() -> bool:
    """Return True when a DatabaseSink is configured and not waiting out a database error."""
    sink = _database_sink()
    return sink is not None and time.monotonic() >= sink.retry_at


def _started_at() -> datetime:
    """Return this process's start as a datetime (the same value every time: it is a key)."""
    global _started
    if _started is None or _started[0] != runtime.started_at:
        _started = (runtime.started_at, datetime.fromtimestamp(runtime.started_at, tz=UTC))
    return _started[1]


def row_values(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Return the CollectorHealth fields for a runtime snapshot."""
    errors = sum(int(snapshot.get(k, 0)) for k in ("sink_errors", "db_errors", "live_errors"))
    return {
        "updated": datetime.now(tz=UTC),
        "events_written": int(snapshot.get("written", 0)),
        "dropped": dict(snapshot.get("dropped", {})),
        "writer_restarts": int(snapshot.get("writer_restarts", 0)),
        "processor_errors": int(snapshot.get("processor_errors", 0)),
        "sink_errors": errors,
        "last_error": str(snapshot.get("last_error", ""))[:2000],
    }


def persist() -> bool:
    """Upsert this process's row now; return False (and count it) when the database refused."""
    from collector.models import CollectorHealth

    global _last_written
    sink = _database_sink()
    if sink is None:
        return False
    values = row_values(runtime.snapshot())
    try:
        CollectorHealth.objects.using(sink.alias).update_or_create(
            host=HOST, pid=runtime.pid, started=_started_at(), defaults=values
        )
    except Exception as exc:  # noqa: BLE001 - tables missing, database away: try again later
        runtime.count("health_errors", error=f"health write failed: {exc!r}")
        _reset(sink.alias)
        return False
    values.pop("updated")
    _last_written = values
    return True


def _reset(alias: str) -> None:
    """Close the writer's connection after an error (a failed transaction must not linger)."""
    from collector.sinks import _reset_connection

    _reset_connection(alias)


def summary(*, within: float = 3600.0, alias: str | None = None) -> dict[str, Any]:
    """Return the collector's health over the processes that reported in the last ``within`` s.

    Totals (drops per reason, writer restarts, processor and sink errors) and one entry per
    process that had a problem, newest report first.
    """
    from collector.models import CollectorHealth

    since = datetime.now(tz=UTC) - timedelta(seconds=within)
    rows = CollectorHealth.objects.using(alias or get_config()["DATABASE_ALIAS"])
    dropped: Counter[str] = Counter()
    totals = Counter[str]()
    problems = []
    reported = list(rows.filter(updated__gte=since).order_by("-updated")[:500])
    for row in reported:
        mine = {str(k): int(v) for k, v in (row.dropped or {}).items() if isinstance(v, int) and v}
        dropped.update(mine)
        figures = {
            "writer_restarts": row.writer_restarts,
            "processor_errors": row.processor_errors,
            "sink_errors": row.sink_errors,
        }
        totals.update(figures)
        if mine or any(figures.values()):
            problems.append({
                "process": f"{row.host}:{row.pid}", "dropped": dict(sorted(mine.items())),
                **figures, "last_error": row.last_error[:300], "updated": row.updated,
            })  # fmt: skip
    return {
        "processes": len(reported),
        "dropped": dict(sorted(dropped.items())),
        "dropped_total": sum(dropped.values()),
        **{k: totals[k] for k in ("writer_restarts", "processor_errors", "sink_errors")},
        "problems": problems,
        "within_minutes": round(within / 60),
    }
