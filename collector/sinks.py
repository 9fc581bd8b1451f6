"""Sinks: where processed events go. Selected by dotted path in SIGNAL_MONITOR["SINKS"]."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from collector.events import EventDict

__all__ = ["Sink", "DatabaseSink", "MemorySink", "LiveSink", "memory_events"]


class Sink:
    """Base class: ``write`` receives each processed batch on the writer thread.

    A sink that raises is contained and counted; the others still get the batch.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        """Keep the settings the sink was built from."""
        self.config = config

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Take one batch of events and the counts of unheard sends since the last batch."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (called when the configuration changes)."""


class DatabaseSink(Sink):
    """Stores events in the collector's tables; holds a bounded backlog while the DB is away."""

    RETRY_SECONDS = 1.0

    def __init__(self, config: dict[str, Any]) -> None:
        """Set up the backlog used while the database cannot be written."""
        super().__init__(config)
        self.alias: str = config["DATABASE_ALIAS"]
        self.backlog: deque[EventDict] = deque()
        self.backlog_unheard: dict[str, int] = {}
        self.limit = int(config["QUEUE_SIZE"])
        self.retry_at = 0.0
        self.enabled = self._app_installed()

    @staticmethod
    def _app_installed() -> bool:
        """Return True when the collector app (and so its tables' models) is installed."""
        from django.apps import apps

        return apps.is_installed("collector")

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Write the backlog and this batch; on failure keep them (bounded) and retry later."""
        from collector import runtime, storage

        if not self.enabled:
            return
        self._hold(events, unheard)
        if time.monotonic() < self.retry_at and not runtime.exiting:
            return
        batch, counts = list(self.backlog), dict(self.backlog_unheard)
        try:
            storage.write_batch(self.alias, batch, counts)
        except Exception as exc:
            self.retry_at = time.monotonic() + self.RETRY_SECONDS
            runtime.count("db_errors", error=f"database write failed: {exc!r}")
            _reset_connection(self.alias)
            return
        self.backlog.clear()
        self.backlog_unheard.clear()
        runtime.count("written", len(batch))

    def _hold(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Append to the backlog, dropping (and counting) what exceeds the limit."""
        from collector import runtime

        room = self.limit - len(self.backlog)
        if room < len(events):
            runtime.count_drop("db_backlog_full", len(events) - max(room, 0))
            events = events[: max(room, 0)]
        self.backlog.extend(events)
        for name, n in unheard.items():
            self.backlog_unheard[name] = self.backlog_unheard.get(name, 0) + n


def _reset_connection(alias: str) -> None:
    """Drop the writer's connection after an error so the next try starts clean."""
    from django.db import connections

    try:
        connections[alias].close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close
        pass


_memory: deque[EventDict] = deque(maxlen=5000)


class MemorySink(Sink):
    """Keeps the newest events in a ring buffer (works with no database at all)."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Size the shared ring buffer."""
        global _memory
        super().__init__(config)
        size = int(config["MEMORY_SINK_SIZE"])
        if _memory.maxlen != size:
            _memory = deque(_memory, maxlen=size)

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Append the batch to the ring buffer."""
        _memory.extend(events)


def memory_events() -> list[EventDict]:
    """Return the events in the in-memory ring buffer, oldest first."""
    return list(_memory)


def clear_memory() -> None:
    """Empty the in-memory ring buffer."""
    _memory.clear()


class LiveSink(Sink):
    """Broadcasts each batch to the dashboard's channel layer group (newest events, capped)."""

    MAX_EVENTS = 200
    MAX_TRACEBACK = 4000

    def __init__(self, config: dict[str, Any]) -> None:
        """Start online; the flag flips when the channel layer fails."""
        super().__init__(config)
        self.online = True
        self.enabled = self._channels_configured()

    @staticmethod
    def _channels_configured() -> bool:
        """Return True when channels is importable and a channel layer is configured."""
        from django.conf import settings

        try:
            import channels.layers  # noqa: F401
        except ImportError:
            return False
        return bool(getattr(settings, "CHANNEL_LAYERS", None))

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Send the newest events as one group message, with the number skipped."""
        from collector import live, runtime

        if not events or not self.enabled:
            return
        newest = events[-self.MAX_EVENTS :]
        message = {
            "type": "events.batch",
            "events": [self._slim(e) for e in newest],
            "skipped": len(events) - len(newest),
        }
        try:
            live.publish(message)
        except Exception as exc:
            self.online = False
            runtime.count("live_errors", error=f"channel layer publish failed: {exc!r}")
        else:
            self.online = True

    def _slim(self, event: EventDict) -> EventDict:
        """Cap tracebacks so a batch stays well under daphne's 1 MiB message limit."""
        calls = [
            {**c, "traceback": c["traceback"][-self.MAX_TRACEBACK :]} if c["traceback"] else c
            for c in event["calls"]
        ]
        return {**event, "calls": calls}
