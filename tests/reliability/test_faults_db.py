"""Database faults while signals flow: locked, read-only, unreachable, tables missing, a batch that
fails half-way, rows the database rejects. The host never waits or sees an error; once the
database is back every event is stored exactly once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.dispatch import Signal

import collector
from collector.models import Event, ReceiverCall, ReceiverStat, SignalCount
from tests.conftest import stored_calls
from tests.reliability.conftest import HostGuard, Tally, counter, drops, monitor, wait_for
from tests.reliability.faults import DuplicateIdProcessor, Faults

pytestmark = pytest.mark.django_db(transaction=True)

flow = Signal()
SIGNAL = "tests.reliability.test_faults_db.flow"
SINKS = [
    "tests.reliability.faults.FaultSink",
    "collector.sinks.DatabaseSink",
    "collector.sinks.MemorySink",
]
THREADS, PER_THREAD = 8, 150


def echo(sender: Any, **kw: Any) -> Any:
    """A receiver that returns its argument."""
    return kw.get("n")


@pytest.fixture
def faulty() -> Iterator[None]:
    """Route the writer through FaultSink, with a short flush interval; heal everything after."""
    flow.connect(echo)
    with monitor(SINKS=SINKS, FLUSH_INTERVAL=0.05):
        try:
            yield
        finally:
            Faults.disarm()
            collector.flush(15)
    flow.disconnect(echo)


def send_in_threads(host: HostGuard, tag: str, per_thread: int = PER_THREAD) -> list[float]:
    """Send from THREADS threads at once; return every send's duration in seconds."""
    barrier = threading.Barrier(THREADS)
    durations: list[float] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        barrier.wait()
        mine = []
        for i in range(per_thread):
            began = time.perf_counter()
            assert host.call(flow.send, sender=f"{tag}-{t}", n=i) == [(echo, i)]
            mine.append(time.perf_counter() - began)
        with lock:
            durations.extend(mine)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return durations


def stored(tag: str) -> Any:
    """Return the stored events of senders starting with ``tag``."""
    return Event.objects.filter(signal=SIGNAL, sender__startswith=f"{tag}-")


def assert_exactly_once(tag: str, tally: Tally, per_thread: int = PER_THREAD) -> None:
    """Every event of every thread is stored once, with its receiver call and rollups."""
    total = THREADS * per_thread
    assert collector.flush(30)
    wait_for(lambda: stored(tag).count() >= total, timeout=20)
    events = stored(tag)
    tally.events(sent=total, stored=events.values("id").distinct().count())
    assert events.count() == total
    assert events.values("id").distinct().count() == total
    for t in range(THREADS):
        kwargs = events.filter(sender=f"{tag}-{t}").values_list("kwargs", flat=True)
        ns = sorted(k["n"] for k in kwargs)
        assert ns == list(range(per_thread))
    calls = stored_calls(events)
    assert len(calls) == total and len({event_id for event_id, _ in calls}) == total
    stats = ReceiverStat.objects.filter(signal=SIGNAL, sender__startswith=f"{tag}-")
    assert stats.aggregate(n=Sum("calls"))["n"] == total


def assert_host_never_waited(durations: list[float]) -> None:
    """Sends stay fast while the writer is stuck on the database."""
    durations.sort()
    p99 = durations[int(len(durations) * 0.99)]
    assert p99 < 0.05, f"p99 send took {p99 * 1000:.1f} ms while the database was faulty"
    assert durations[-1] < 0.5


def test_locked_database_then_recovery(faulty: None, host: HostGuard, tally: Tally) -> None:
    """Another connection holds an EXCLUSIVE lock on the SQLite file while signals flow."""
    errors = counter("db_errors")
    dropped = drops("db_backlog_full")
    locker = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    Faults.arm("locked")
    tally.fault("database_locked")
    try:
        durations = send_in_threads(host, "locked")
        wait_for(lambda: counter("db_errors") > errors)  # the writer met "database is locked"
        assert "database is locked" in str(collector_last_error())
        durations += send_in_threads(host, "locked2", per_thread=20)
        assert not stored("locked").exists()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        Faults.disarm()
    assert_host_never_waited(durations)
    assert_exactly_once("locked", tally)
    assert_exactly_once("locked2", tally, per_thread=20)
    assert drops("db_backlog_full") == dropped


def collector_last_error() -> str:
    """Return the runtime's last recorded error."""
    from collector import runtime

    return str(runtime.snapshot()["last_error"])


def test_read_only_database_then_recovery(faulty: None, host: HostGuard, tally: Tally) -> None:
    errors = counter("db_errors")
    Faults.arm("readonly")
    tally.fault("database_read_only")
    durations = send_in_threads(host, "readonly")
    wait_for(lambda: counter("db_errors") > errors)
    assert "readonly" in collector_last_error()
    assert not stored("readonly").exists()
    Faults.disarm()
    assert_host_never_waited(durations)
    assert_exactly_once("readonly", tally)


def test_unreachable_database_then_recovery(faulty: None, host: HostGuard, tally: Tally) -> None:
    errors = counter("db_errors")
    flow.send(sender="warmup-0", n=0)  # the writer has an open connection to take away
    assert collector.flush(10)
    Faults.arm("unavailable")
    tally.fault("database_unreachable")
    durations = send_in_threads(host, "away")
    wait_for(lambda: counter("db_errors") > errors)
    assert "unable to open database file" in collector_last_error()
    assert Faults.applied["unavailable"] >= 1
    assert not stored("away").exists()
    Faults.disarm()
    assert_host_never_waited(durations)
    assert_exactly_once("away", tally)


def test_a_batch_failing_half_way_is_rolled_back_and_stored_once(
    faulty: None, host: HostGuard, tally: Tally
) -> None:
    """The rollup upserts fail after the event rows of the same transaction went in."""
    errors = counter("db_errors")
    fired = Faults.trigger_fired
    Faults.arm("midtx")
    tally.fault("batch_fails_half_way")
    send_in_threads(host, "midtx", per_thread=25)
    wait_for(lambda: Faults.trigger_fired > fired and counter("db_errors") > errors)
    # Event rows were inserted before the failing rollup upsert: all rolled back.
    assert not stored("midtx").exists()
    assert not SignalCount.objects.filter(signal=SIGNAL, events__gt=0).exists() or (
        SignalCount.objects.filter(signal=SIGNAL).aggregate(n=Sum("events"))["n"]
        == Event.objects.filter(signal=SIGNAL).count()
    )
    Faults.disarm()
    assert_exactly_once("midtx", tally, per_thread=25)
    counts = SignalCount.objects.filter(signal=SIGNAL).aggregate(n=Sum("events"))["n"]
    assert counts == Event.objects.filter(signal=SIGNAL).count()  # rollups counted once too


def test_collector_tables_missing_then_created(faulty: None, host: HostGuard, tally: Tally) -> None:
    """The tables vanish (a project that has not migrated) and come back."""
    errors = counter("db_errors")
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_away"')
    tally.fault("tables_missing")
    try:
        durations = send_in_threads(host, "notable", per_thread=40)
        wait_for(lambda: counter("db_errors") > errors)
        assert "no such table" in collector_last_error()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{table}_away" RENAME TO "{table}"')
    assert_host_never_waited(durations)
    assert_exactly_once("notable", tally, per_thread=40)


def test_rows_the_database_rejects_are_dropped_alone(host: HostGuard, tally: Tally) -> None:
    """A duplicate id or a malformed event costs only itself; the rest of the batch is stored."""
    flow.connect(echo)
    processors = [
        "tests.reliability.faults.GarbageProcessor",
        "tests.reliability.faults.DuplicateIdProcessor",
        "collector.processors.RedactProcessor",
    ]
    rejected = drops("db_rejected")
    try:
        with monitor(PROCESSORS=processors, FLUSH_INTERVAL=0.05, BATCH_SIZE=5000):
            Event.objects.filter(pk=DuplicateIdProcessor.ID).delete()
            for i in range(30):
                host.call(flow.send, sender="good-0", n=i)
                if i % 10 == 0:
                    host.call(flow.send, sender="dup", n=i)
                    host.call(flow.send, sender="garbage-0", n=i)
            tally.fault("rejected_rows", 3 + 2)
            assert collector.flush(15)
            assert stored("good").count() == 30
            assert Event.objects.filter(pk=DuplicateIdProcessor.ID).count() == 1
            assert drops("db_rejected") == rejected + 2 + 3
            for i in range(5):  # the writer goes on as if nothing happened
                host.call(flow.send, sender="after-0", n=i)
            assert collector.flush(15)
            assert stored("after").count() == 5
    finally:
        flow.disconnect(echo)
    tally.events(sent=35, stored=stored("good").count() + stored("after").count())


def test_a_settings_change_while_the_database_is_away_loses_nothing(
    faulty: None, host: HostGuard, tally: Tally
) -> None:
    """The backlog of the replaced DatabaseSink is handed to the new one."""
    errors = counter("db_errors")
    flow.send(sender="warmup-0", n=0)
    assert collector.flush(10)
    Faults.arm("unavailable")
    tally.fault("settings_change_during_outage")
    send_in_threads(host, "handover", per_thread=20)
    wait_for(lambda: counter("db_errors") > errors)
    with monitor(SINKS=SINKS, FLUSH_INTERVAL=0.06):  # a new pipeline: new sinks
        send_in_threads(host, "handover2", per_thread=5)
        assert collector.flush(10)
        Faults.disarm()
        assert_exactly_once("handover", tally, per_thread=20)
        assert_exactly_once("handover2", tally, per_thread=5)


def test_a_long_outage_is_held_within_backlog_bytes_and_the_rest_counted(
    faulty: None, host: HostGuard, tally: Tally
) -> None:
    """With the database away, the backlog stops at BACKLOG_BYTES; overflow is counted exactly,
    and once the database is back what was held is stored exactly once, oldest first."""
    from collector import pipeline, runtime
    from collector.backlog import PLAIN_EVENT_BYTES
    from collector.sinks import DatabaseSink

    flow.send(sender="warmup-0", n=0)
    assert collector.flush(10)
    limit = PLAIN_EVENT_BYTES * 300  # a few hundred plain events
    with monitor(SINKS=SINKS, FLUSH_INTERVAL=0.05, BACKLOG_BYTES=limit):
        collector.flush(10)
        sink = next(s for s in pipeline.current().sinks if isinstance(s, DatabaseSink))
        dropped = drops("db_backlog_full")
        errors = counter("db_errors")
        Faults.arm("unavailable")
        tally.fault("outage_beyond_backlog_bytes")
        total = 2_000
        for i in range(total):
            assert host.call(flow.send, sender="outage-0", n=i) == [(echo, i)]
        wait_for(lambda: runtime.snapshot()["queue"] == 0 and counter("db_errors") > errors)
        held = len(sink.backlog)
        overflow = drops("db_backlog_full") - dropped
        assert 0 < held and sink.backlog.nbytes <= limit
        assert held + overflow == total, (held, overflow)
        Faults.disarm()
        assert collector.flush(30)
        wait_for(lambda: stored("outage").count() == held, timeout=20)
    ns = sorted(stored("outage").values_list("kwargs", flat=True), key=lambda k: k["n"])
    assert [k["n"] for k in ns] == list(range(held)), "the oldest events are the ones kept"
    tally.events(sent=held, stored=stored("outage").values("id").distinct().count())
