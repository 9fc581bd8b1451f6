"""Sinks: where processed events go. Selected by dotted path in SIGNAL_MONITOR["SINKS"]."""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from typing import Any

from collector.backlog import Backlog
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

    def tick(self, force: bool) -> None:
        """Called after every writer round; ``force`` asks to store anything held (a flush)."""

    def close(self) -> None:
        """Release resources (called when the configuration changes)."""


class DatabaseSink(Sink):
    """Stores events in the collector's tables; holds a bounded backlog while the DB is away.

    Each batch is one transaction, so a batch that fails part-way is rolled back and its retry
    cannot store anything twice. Errors of a database that is away (unreachable, locked,
    read-only, tables not migrated yet) keep the unwritten events in a compressed backlog
    (``collector.backlog``, bounded by ``BACKLOG_BYTES``) retried a second later, oldest first, one
    batch per try; an error that retrying cannot fix (a row the database rejects) is isolated by
    splitting the batch, and only the rejected events are dropped (counted as ``db_rejected``),
    so one bad event never blocks the others.

    Events are gathered for up to ``STORE_INTERVAL`` seconds (or ``BATCH_SIZE`` events) before
    they are stored: each transaction has a fixed cost (the rollup upserts, the commit) that
    small batches would pay many times a second. ``collector.flush()`` stores them at once.
    """

    RETRY_SECONDS = 1.0
    # Longest time one wake spends writing a recovered backlog before the queue gets its turn.
    CATCH_UP_SECONDS = 0.5
    # Backlogs of sinks replaced by a settings change, adopted by the next sink of the same alias.
    _handover: dict[str, tuple[Backlog, dict[str, int]]] = {}

    def __init__(self, config: dict[str, Any]) -> None:
        """Set up the backlog used while the database cannot be written."""
        super().__init__(config)
        self.alias: str = config["DATABASE_ALIAS"]
        self.batch_size = max(1, int(config["BATCH_SIZE"]))
        self.store_interval = float(config["STORE_INTERVAL"])
        self.backlog = Backlog(max_bytes=int(config["BACKLOG_BYTES"]))
        # Events gathered for the next transaction, their unheard counts, when the first came.
        self._buffer: list[EventDict] = []
        self._buffer_unheard: dict[str, int] = {}
        self._buffer_since = 0.0
        self.backlog_unheard: dict[str, int] = {}
        self.retry_at = 0.0
        self.enabled = self._app_installed()
        self._database_name: Any = None
        # Progress through the batch in hand: events that left it (written or rejected), events
        # written, and whether its unheard counts were stored.
        self._begin()
        handed = self._handover.pop(self.alias, None)
        if handed is not None:
            self.backlog, self.backlog_unheard = handed
            self.backlog.max_bytes = int(config["BACKLOG_BYTES"])

    @staticmethod
    def _app_installed() -> bool:
        """Return True when the collector app (and so its tables' models) is installed."""
        from django.apps import apps

        return apps.is_installed("collector")

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Write this batch (after any backlog); on failure hold what was not written.

        The writer also calls this with an empty batch on every wake while a backlog is held, and
        ``retry_now`` once more at exit.
        """
        if not self.enabled:
            return
        if self.backlog or self.backlog_unheard:
            self._hold(events, unheard)
            if time.monotonic() >= self.retry_at:
                self._write_backlog()
            return
        if not (events or unheard):
            return
        if not (self._buffer or self._buffer_unheard):
            self._buffer_since = time.monotonic()
        self._buffer.extend(events)
        for name, n in unheard.items():
            self._buffer_unheard[name] = self._buffer_unheard.get(name, 0) + n
        if len(self._buffer) >= self.batch_size:
            self._store_buffer()

    def tick(self, force: bool) -> None:
        """Store the gathered events when STORE_INTERVAL has passed, or now if asked to."""
        if not self.enabled or not (self._buffer or self._buffer_unheard):
            return
        if force or time.monotonic() - self._buffer_since >= self.store_interval:
            self._store_buffer()

    def _store_buffer(self) -> None:
        """Store the gathered events a batch at a time; hold what a database that is away refused."""
        events, unheard = self._buffer, self._buffer_unheard
        self._buffer, self._buffer_unheard = [], {}
        for start in range(0, max(1, len(events)), self.batch_size):
            chunk, counts = events[start : start + self.batch_size], unheard if not start else {}
            if self.backlog or self.backlog_unheard:  # an earlier chunk failed: keep the order
                self._hold(chunk, counts)
            else:
                self._write_direct(chunk, counts)

    def retry_now(self) -> None:
        """Store what is gathered and try the backlog at once (the exit handler calls this)."""
        if not self.enabled:
            return
        if self._buffer or self._buffer_unheard:
            self._store_buffer()
        if self.backlog or self.backlog_unheard:
            self._write_backlog(deadline=float("inf"))

    def pending(self) -> int:
        """Return the number of events not stored yet (gathered, or held in the backlog)."""
        return len(self.backlog) + len(self._buffer)

    def discard(self) -> None:
        """Forget everything gathered or held, unstored (test isolation; a reset)."""
        self._buffer, self._buffer_unheard = [], {}
        self.backlog.clear()
        self.backlog_unheard.clear()

    def close(self) -> None:
        """Hand what is gathered and held to the sink that replaces this one (a settings change).

        Nothing is written here: close runs while settings change, possibly while the host holds
        the database's write lock; the next sink of the alias stores it on its first round.
        """
        if self._buffer or self._buffer_unheard:
            self._hold(self._buffer, self._buffer_unheard)
            self._buffer, self._buffer_unheard = [], {}
        if self.backlog or self.backlog_unheard:
            self._handover[self.alias] = (self.backlog, self.backlog_unheard)
            self.backlog, self.backlog_unheard = Backlog(self.backlog.max_bytes), {}

    def follow_settings(self) -> None:
        """Reconnect when the database's NAME changed since the writer connected.

        Test runners switch to a test database, and ``override_settings`` may too; an open
        connection would otherwise keep writing to (and pruning) the database it was opened on.
        """
        from django.db import connections

        name = connections[self.alias].settings_dict.get("NAME")
        if name != self._database_name:
            if self._database_name is not None:
                _reset_connection(self.alias)
            self._database_name = name

    def _write_direct(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Write a batch while nothing is held; hold whatever a database that is away refused."""
        from collector import runtime

        self.follow_settings()
        self._begin()
        try:
            self._store(events, unheard)
        except Exception as exc:
            self._failed(exc)
            self._hold(events[self._settled :], {} if self._unheard_settled else unheard)
        if self._written:
            runtime.count("written", self._written)

    def _write_backlog(self, deadline: float | None = None) -> None:
        """Write the backlog oldest first, a batch at a time, until it is empty, fails or time is up."""
        from collector import runtime

        self.follow_settings()
        stop = time.monotonic() + self.CATCH_UP_SECONDS if deadline is None else deadline
        written = 0
        while self.backlog or self.backlog_unheard:
            head = self.backlog.head(self.batch_size)
            unheard = dict(self.backlog_unheard)
            self._begin()
            try:
                self._store(head, unheard)
            except Exception as exc:
                self._failed(exc)
                break
            finally:
                self.backlog.drop_head(self._settled)
                if self._unheard_settled:
                    _subtract(self.backlog_unheard, unheard)
                written += self._written
            self.retry_at = 0.0
            if time.monotonic() >= stop:
                break
        if written:
            runtime.count("written", written)

    def _begin(self) -> None:
        """Reset the progress counters of the batch about to be stored."""
        self._settled, self._written, self._unheard_settled = 0, 0, False

    def _failed(self, exc: Exception) -> None:
        """Count a database that is away and schedule the next try."""
        from collector import runtime

        self.retry_at = time.monotonic() + self.RETRY_SECONDS
        runtime.count("db_errors", error=f"database write failed: {exc!r}")
        _reset_connection(self.alias)

    def _store(self, events: list[EventDict], unheard: dict[str, int]) -> int:
        """Store ``events`` in order; return how many were written.

        ``_settled`` grows by each run of events that leaves the batch (written, or rejected and
        dropped) as soon as its transaction ends, so after an error of a database that is away,
        raised here, ``events[_settled:]`` is exactly the unwritten rest.
        """
        from collector import storage

        try:
            storage.write_batch(self.alias, events, unheard)
        except Exception as exc:
            if _is_transient(exc):
                raise
            return self._isolate(events, unheard)
        self._settled += len(events)
        self._written += len(events)
        self._unheard_settled = self._unheard_settled or bool(unheard)
        return len(events)

    def _isolate(self, events: list[EventDict], unheard: dict[str, int]) -> int:
        """Write halves separately until the events the database rejects are found and dropped."""
        from collector import runtime, storage

        if unheard:
            try:
                storage.write_batch(self.alias, [], unheard)
            except Exception as exc:
                if _is_transient(exc):
                    raise
                runtime.count("db_rejected_counts", error=f"database rejected counts: {exc!r}")
            self._unheard_settled = True
        if len(events) > 1:
            middle = len(events) // 2
            return self._store(events[:middle], {}) + self._store(events[middle:], {})
        if events:
            try:
                storage.write_batch(self.alias, events, {})
            except Exception as exc:
                if _is_transient(exc):
                    raise
                self._settled += 1
                runtime.count_drop("db_rejected")
                runtime.count("db_rejected", error=f"database rejected event: {exc!r}")
                return 0
            self._settled += 1
            self._written += 1
            return 1
        return 0

    def _hold(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Append to the backlog, dropping (and counting) what exceeds its bound."""
        from collector import runtime

        held = self.backlog.extend(events)
        if held < len(events):
            runtime.count_drop("db_backlog_full", len(events) - held)
        for name, n in unheard.items():
            self.backlog_unheard[name] = self.backlog_unheard.get(name, 0) + n


def _subtract(counts: dict[str, int], taken: dict[str, int]) -> None:
    """Subtract ``taken`` from ``counts``, removing names that reach zero."""
    for name, n in taken.items():
        left = counts.get(name, 0) - n
        if left > 0:
            counts[name] = left
        else:
            counts.pop(name, None)


# Errors that retrying the same rows cannot fix: the database rejected a row (a duplicate id, a
# value PostgreSQL refuses such as a NUL character), or an event is malformed (a processor
# returned something that is not an event dict).
_REJECTED: tuple[type[Exception], ...] = (
    TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
)  # fmt: skip


def _is_transient(exc: Exception) -> bool:
    """Return True unless the error is about the rows themselves (then retrying cannot help).

    Transient: unreachable, locked, read-only, disk full, tables not migrated yet
    (OperationalError on SQLite, ProgrammingError on PostgreSQL), a broken connection, and
    anything unexpected (kept and retried; the backlog is bounded).
    """
    from django.db import DataError, IntegrityError

    if isinstance(exc, (IntegrityError, DataError)):
        return False
    return not isinstance(exc, _REJECTED)


def _reset_connection(alias: str) -> None:
    """Drop the writer's connection after an error so the next try starts clean.

    The wrapper itself is discarded too: an error inside a transaction's exit can leave it with
    autocommit off, and every later "committed" batch would then sit in a transaction that never
    commits. The next use in this thread gets a fresh wrapper.
    """
    from django.db import connections

    with contextlib.suppress(Exception):  # a broken connection may fail to close
        connections[alias].close()
    with contextlib.suppress(Exception):  # (AttributeError: no wrapper in this thread yet)
        del connections[alias]


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
    """Broadcasts each batch to the dashboard's channel layer group (newest events, capped).

    While the layer is offline (``collector.live`` pauses after a failure) batches are skipped
    and counted as ``live_skipped``; the database sink still stores them.
    """

    MAX_EVENTS = 200
    MAX_TRACEBACK = 4000
    MAX_KWARGS = 4000  # characters of JSON per event; the live feed shows far less

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
            live.publish(live.numbered(message, len(events)))
        except live.LayerOffline:
            self.online = False
            runtime.count("live_skipped", len(events))
        except Exception as exc:
            self.online = False
            runtime.count("live_errors", error=f"channel layer publish failed: {exc!r}")
        else:
            self.online = True

    def _slim(self, event: EventDict) -> EventDict:
        """Cap tracebacks and arguments so a batch stays well under daphne's 1 MiB message limit."""
        calls = [
            {**c, "traceback": c["traceback"][-self.MAX_TRACEBACK :]} if c["traceback"] else c
            for c in event["calls"]
        ]
        kwargs = event["kwargs"]
        if kwargs:
            text = _encode(kwargs)
            if len(text) > self.MAX_KWARGS:
                kwargs = {"…": f"{text[: self.MAX_KWARGS]}… [{len(text) - self.MAX_KWARGS} more]"}
        return {**event, "calls": calls, "kwargs": kwargs}


_encode = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False).encode
