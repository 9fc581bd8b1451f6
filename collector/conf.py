"""The one accessor for the ``SIGNAL_MONITOR`` settings dict, with documented defaults."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

# Every key users may set, with its default. README.md documents each one.
DEFAULTS: dict[str, Any] = {
    # Install the hook when the app loads (AppConfig); False leaves it to collector.install().
    "AUTO_INSTALL": True,
    # Master switch: False keeps the hook out entirely.
    "ENABLED": True,
    # Dotted paths of processors run on every event before the sinks, in order.
    "PROCESSORS": [
        "collector.processors.FilterProcessor",
        "collector.processors.RedactProcessor",
        "collector.processors.SampleProcessor",
    ],
    # Dotted paths of sinks that receive processed events.
    "SINKS": [
        "collector.sinks.DatabaseSink",
        "collector.sinks.MemorySink",
        "collector.sinks.LiveSink",
    ],
    # Where events are built, redacted and stored: "thread" (a daemon thread of each process) or
    # "process" (a writer process per application process, started with its settings: the
    # ~40 us an event costs then runs on another core, outside the application's GIL; see
    # docs/operations.md). Falls back to the thread if the process cannot start or dies.
    "WRITER": "thread",
    # Database alias the writer uses for the collector's tables.
    "DATABASE_ALIAS": "default",
    # Capacity of the in-memory queue between the hook and the writer thread (a queued record
    # holds about 0.8 KB, so the default bounds it near 8 MB; it only fills while the writer lags).
    "QUEUE_SIZE": 10_000,
    # Bytes of compressed events the DatabaseSink holds while its database is away (about 30-80
    # bytes an event, so 8 MiB rides out minutes of an outage at thousands of events a second).
    "BACKLOG_BYTES": 8 * 1024 * 1024,
    # Rows per writer batch and the longest wait (seconds) before a partial batch is written
    # (the live feed's latency starts with this wait; each wake-up also takes the application's
    # GIL once: 0.1 s measured 0.5-1% less CPU a request than 0.05 s, docs/performance.md).
    "BATCH_SIZE": 2_000,
    "FLUSH_INTERVAL": 0.1,
    # Longest time (seconds) the database sink gathers events before storing them in one
    # transaction: each transaction's fixed cost (rollup upserts, commit) is then paid a couple
    # of times a second, not twenty. The live feed does not wait for it; flush() stores at once.
    "STORE_INTERVAL": 0.5,
    # Seconds the exit handler waits for the queue to drain.
    "EXIT_TIMEOUT": 5.0,
    # Flush the queue on SIGTERM too (Python's default SIGTERM action skips atexit). Installed only
    # from the main thread and only when SIGTERM still has its default action, so a server's own
    # handler (daphne, gunicorn, uvicorn) always wins; the process then dies of SIGTERM as before.
    "FLUSH_ON_SIGTERM": True,
    # Seconds between two writes of this process's health figures (drops per reason, writer
    # restarts, errors) into the CollectorHealth table, which the dashboard shows; 0 turns it off.
    "HEALTH_INTERVAL": 10.0,
    # Events kept by the in-memory ring buffer sink.
    "MEMORY_SINK_SIZE": 5_000,
    # Store sends that had no receiver (they are always counted).
    "RECORD_UNHEARD": False,
    # Signals, senders and receivers to keep or drop (glob patterns on dotted names).
    "INCLUDE_SIGNALS": [],
    "EXCLUDE_SIGNALS": [],
    "INCLUDE_SENDERS": [],
    "EXCLUDE_SENDERS": [],
    "INCLUDE_RECEIVERS": [],
    "EXCLUDE_RECEIVERS": [],
    # Request paths whose signals are not recorded (the dashboard's own pages by default).
    "EXCLUDE_PATHS": ["/signals/", "/static/", "/favicon.ico"],
    # Fraction of events kept, per signal name ("*" is the default for the rest).
    "SAMPLE_RATES": {},
    # Extra key fragments treated as secrets, on top of the built-in list.
    "REDACT_KEYS": [],
    "REDACT_MARKER": "********",
    # Caps on captured text.
    "MAX_REPR": 300,
    "MAX_KWARGS": 20,
    "MAX_TRACEBACK": 20_000,
    # Dotted path of the callable(user) -> bool that guards every dashboard page and the websocket.
    "ACCESS_CHECK": "dashboard.access.is_staff_user",
    # Retention: events older than this many days, or beyond this many rows, are pruned
    # (None or 0 turns a limit off). `manage.py signals_prune` prunes on demand.
    "MAX_AGE_DAYS": 7,
    "MAX_EVENTS": 1_000_000,
    # Seconds between two automatic prunes by the writer thread (0 turns them off), the rows
    # deleted per short transaction, and the longest time one automatic prune may hold the writer.
    "PRUNE_INTERVAL": 600.0,
    "PRUNE_BATCH_SIZE": 2_000,
    "PRUNE_TIME_BUDGET": 0.5,
}


@lru_cache(maxsize=1)
def get_config() -> dict[str, Any]:
    """Return the effective SIGNAL_MONITOR settings: the defaults overlaid with the user's dict."""
    user = getattr(settings, "SIGNAL_MONITOR", None) or {}
    return {**DEFAULTS, **user}


def _reset(*, setting: str, **kwargs: Any) -> None:
    """Clear the cached config when SIGNAL_MONITOR changes (override_settings)."""
    if setting == "SIGNAL_MONITOR":
        get_config.cache_clear()


setting_changed.connect(_reset, dispatch_uid="signal_monitor_conf_reset")
