"""Fault injectors used by the reliability tests, loaded by dotted path like real plugins.

Database faults act on the writer thread's own SQLite connection, so the collector's real
DatabaseSink meets real SQLite errors: a short busy timeout while another connection holds an
EXCLUSIVE lock ("database is locked"), ``PRAGMA query_only`` ("attempt to write a readonly
database"), a path that cannot be opened ("unable to open database file"), and a temporary
trigger that fails the receiver-call inserts after the event rows of the same transaction were
inserted (a failure in the middle of a batch). "Unreachable" changes the database NAME in the
settings the connections share: the writer follows it to a file that cannot be opened, while the
test's own connection, already open, keeps reading the real one.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, ClassVar

from django.db import connections
from django.db.backends.signals import connection_created

from collector.events import EventDict
from collector.processors import Processor
from collector.sinks import Sink

WRITER = "signal-monitor-writer"
UNREACHABLE = "/nonexistent-signal-monitor-dir/db.sqlite3"


class MidBatchFailure(Exception):
    """Raised inside SQLite by the trigger's function."""


class Faults:
    """The fault the writer's database connection suffers now (one at a time)."""

    mode: ClassVar[str] = ""  # "", "locked", "readonly", "unavailable", "midtx"
    applied: ClassVar[Counter[str]] = Counter()
    trigger_fired: ClassVar[int] = 0
    original_name: ClassVar[str | None] = None

    @classmethod
    def arm(cls, mode: str) -> None:
        """Start a fault (takes effect at the writer's next batch or connection)."""
        cls.mode = mode
        if mode == "unavailable":
            shared = connections["default"].settings_dict  # the dict every wrapper shares
            cls.original_name = shared["NAME"]
            shared["NAME"] = UNREACHABLE
            cls.applied[mode] += 1

    @classmethod
    def disarm(cls) -> None:
        """End the fault; the database NAME is restored (the writer follows it back)."""
        cls.mode = ""
        if cls.original_name is not None:
            connections["default"].settings_dict["NAME"] = cls.original_name
            cls.original_name = None

    @classmethod
    def apply(cls, wrapper: Any) -> None:
        """Apply the armed fault to the writer's connection ``wrapper``."""
        mode = cls.mode
        if mode == "unavailable" or wrapper.connection is None:
            return
        raw = wrapper.connection
        if mode == "locked":
            raw.execute("PRAGMA busy_timeout = 50")
        elif mode == "readonly":
            raw.execute("PRAGMA query_only = 1")
        elif mode == "midtx":
            raw.create_function("sigmon_fault", 0, cls._fire)
            raw.execute(
                "CREATE TEMP TRIGGER IF NOT EXISTS sigmon_fault BEFORE INSERT ON "
                "main.signals_collector_receiverstat BEGIN SELECT sigmon_fault(); END"
            )
        else:
            return
        cls.applied[mode] += 1

    @classmethod
    def _fire(cls) -> int:
        """The trigger's function: fail while the mid-batch fault is armed."""
        if cls.mode == "midtx":
            cls.trigger_fired += 1
            raise MidBatchFailure("injected failure in the middle of a batch")
        return 0


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Apply the armed fault to every new connection of the writer thread."""
    if Faults.mode and threading.current_thread().name == WRITER:
        Faults.apply(connection)


connection_created.connect(_on_connection_created, dispatch_uid="reliability-faults")


class FaultSink(Sink):
    """Placed before DatabaseSink: applies the armed fault to the writer's open connection."""

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Apply the fault, if any (the database sink then writes this batch)."""
        if Faults.mode:
            Faults.apply(connections[self.config["DATABASE_ALIAS"]])


class RaisingProcessor(Processor):
    """A processor that always raises."""

    calls = 0

    def process(self, event: EventDict) -> EventDict | None:
        """Raise."""
        type(self).calls += 1
        raise RuntimeError("processor failed on purpose")


class GarbageProcessor(Processor):
    """A processor that turns events of senders starting with "garbage" into a string."""

    def process(self, event: EventDict) -> Any:
        """Return garbage for the marked events."""
        if str(event.get("sender", "")).startswith("garbage"):
            return "this is not an event"
        return event


class DuplicateIdProcessor(Processor):
    """Gives events of sender "dup" a fixed id, so the database rejects all but the first."""

    ID = 4_242_424_242

    def process(self, event: EventDict) -> EventDict | None:
        """Reuse one id for the marked events."""
        if event["sender"] == "dup":
            event["id"] = self.ID
        return event


class RaisingSink(Sink):
    """A sink that always raises."""

    calls = 0

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Raise."""
        type(self).calls += 1
        raise ConnectionError("sink failed on purpose")


class DyingSink(Sink):
    """A sink that kills the writer thread (a BaseException, not an Exception) when armed."""

    armed = 0

    def write(self, events: list[EventDict], unheard: dict[str, int]) -> None:
        """Raise SystemExit while armed."""
        if type(self).armed > 0 and events:
            type(self).armed -= 1
            raise SystemExit("writer killed on purpose")
