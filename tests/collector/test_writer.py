"""The background writer: batches into the database, exactly once, off the hot path."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from django.dispatch import Signal
from django.test import override_settings

import collector
from collector import hook, runtime
from collector.models import Event, ReceiverCall, ReceiverStat, SignalCount
from tests.conftest import stored_calls

load_signal = Signal()
THREADS, PER_THREAD = 8, 500


def worker_receiver(sender: Any, **kw: Any) -> int:
    """Echo the sequence number."""
    return int(kw["n"])


@pytest.mark.django_db(transaction=True)
def test_eight_threads_every_event_stored_exactly_once(recorded: Any) -> None:
    load_signal.connect(worker_receiver)
    barrier = threading.Barrier(THREADS)

    def run(t: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            load_signal.send(sender=f"thread-{t}", n=i)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load_signal.disconnect(worker_receiver)
    assert collector.flush(30)
    name = "tests.collector.test_writer.load_signal"
    events = Event.objects.filter(signal=name)
    assert events.count() == THREADS * PER_THREAD
    assert events.values("id").distinct().count() == THREADS * PER_THREAD
    for t in range(THREADS):
        ns = sorted(e["kwargs"]["n"] for e in events.filter(sender=f"thread-{t}").values("kwargs"))
        assert ns == list(range(PER_THREAD))
    assert len(stored_calls(events)) == THREADS * PER_THREAD
    assert not ReceiverCall.objects.filter(signal=name).exists(), "only failed calls get rows"
    assert ReceiverStat.objects.filter(signal=name).aggregate(n=Sum("calls"))["n"] == THREADS * PER_THREAD
    assert SignalCount.objects.filter(signal=name).aggregate(n=Sum("events"))["n"] == THREADS * PER_THREAD
    assert runtime.snapshot()["dropped"] == {}


@pytest.mark.django_db(transaction=True)
def test_hundred_coroutines_every_event_stored_once(recorded: Any) -> None:
    async def areceiver(sender: Any, **kw: Any) -> None:
        await asyncio.sleep(0)

    load_signal.connect(areceiver)

    async def main() -> None:
        await asyncio.gather(*(load_signal.asend(sender=f"co-{i}") for i in range(100)))

    asyncio.run(main())
    load_signal.disconnect(areceiver)
    assert collector.flush(30)
    stored = Event.objects.filter(signal="tests.collector.test_writer.load_signal")
    assert sorted(stored.values_list("sender", flat=True)) == sorted(f"co-{i}" for i in range(100))


@pytest.mark.django_db(transaction=True)
def test_events_survive_the_senders_rollback(recorded: Any) -> None:
    load_signal.connect(worker_receiver)
    try:
        with transaction.atomic():
            load_signal.send(sender="rolled-back", n=1)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    load_signal.disconnect(worker_receiver)
    assert collector.flush(10)
    assert Event.objects.filter(sender="rolled-back").count() == 1


class ProbeSink:
    """A sink that, on the writer thread, opens a database connection and saves model signals."""

    seen: list[bool] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def write(self, events: Any, unheard: Any) -> None:
        from django.db import connections

        from collector import hook

        ProbeSink.seen.append(hook.muted.get())
        conn = connections.create_connection("default")
        try:
            conn.ensure_connection()  # sends connection_created on the writer thread
        finally:
            conn.close()
        Event(id=1, signal="probe", sender="probe", method="send", timestamp=__import__(
            "django.utils.timezone").utils.timezone.now(), duration_ns=0, receiver_count=0)

    def close(self) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_writer_activity_is_never_collected(recorded: Any) -> None:
    from django.db.backends.signals import connection_created
    from django.db.models.signals import post_init, pre_init
    from django.test import override_settings

    def listener(sender: Any, **kw: Any) -> None:
        pass

    connection_created.connect(listener)
    pre_init.connect(listener, sender=Event)
    post_init.connect(listener, sender=Event)
    load_signal.connect(worker_receiver)
    ProbeSink.seen.clear()
    try:
        with override_settings(SIGNAL_MONITOR={
            "SINKS": ["collector.sinks.MemorySink", f"{__name__}.ProbeSink"]
        }):
            recorded()
            load_signal.send(sender="x", n=1)
            events = recorded()
    finally:
        connection_created.disconnect(listener)
        pre_init.disconnect(listener, sender=Event)
        post_init.disconnect(listener, sender=Event)
        load_signal.disconnect(worker_receiver)
    assert ProbeSink.seen and all(ProbeSink.seen), "the writer thread runs muted"
    names = {e["signal"] for e in events}
    assert "tests.collector.test_writer.load_signal" in names
    assert "django.db.backends.signals.connection_created" not in names
    assert not [e for e in events if e["sender"] == "signals_collector.Event"]


def test_queue_full_drops_and_counts(recorded: Any) -> None:
    load_signal.connect(worker_receiver)
    before = runtime.snapshot()["dropped"].get("queue_full", 0)
    old = hook.capacity
    hook.capacity = 0
    try:
        assert load_signal.send(sender="dropped", n=1)[0][1] == 1
    finally:
        hook.capacity = old
        load_signal.disconnect(worker_receiver)
    assert runtime.snapshot()["dropped"]["queue_full"] == before + 1
    assert recorded(sender="dropped") == []


def test_works_without_the_app_installed(tmp_path: Any) -> None:
    """install() in a process whose settings lack the collector app: memory sink only."""
    script = tmp_path / "standalone.py"
    script.write_text(
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes'],"
        " DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}})\n"
        "django.setup()\n"
        "import collector\n"
        "from django.dispatch import Signal\n"
        "from collector.sinks import memory_events\n"
        "custom = Signal()\n"
        "custom.connect(lambda sender, **kw: 42, weak=False)\n"
        "assert collector.install() is True\n"
        "assert custom.send(sender=None)[0][1] == 42\n"
        "assert collector.flush(10)\n"
        "events = memory_events()\n"
        "assert [e['signal'] for e in events] == ['__main__.custom'], events\n"
        "collector.uninstall()\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                            cwd=str(tmp_path), env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def failing_receiver(sender: Any, **kw: Any) -> None:
    """Fail on odd sequence numbers."""
    if kw["n"] % 2:
        raise ValueError(f"odd {kw['n']}")


@pytest.mark.django_db(transaction=True)
def test_writer_folds_every_batch_into_each_slot_rollup(recorded: Any) -> None:
    from collector import rollups
    from collector.models import FailureRollup, ReceiverRollup, SignalRollup

    load_signal.connect(worker_receiver)
    load_signal.connect(failing_receiver)
    try:
        for i in range(20):
            load_signal.send_robust(sender="slots", n=i)
    finally:
        load_signal.disconnect(worker_receiver)
        load_signal.disconnect(failing_receiver)
    assert collector.flush(30)
    name = "tests.collector.test_writer.load_signal"
    bins = [f"b{i}" for i in range(rollups.BUCKETS_PER_ROW)]
    newest = ReceiverCall.objects.filter(signal=name, sender="slots", outcome="error").latest(
        "timestamp"
    )
    for grain in rollups.GRAINS:
        rows = ReceiverRollup.objects.filter(grain=grain, signal=name, sender="slots")
        sums = rows.aggregate(calls=Sum("calls"), failures=Sum("failures"),
                              **{b: Sum(b) for b in bins})  # fmt: skip
        assert (sums["calls"], sums["failures"]) == (40, 10)
        assert sum(sums[b] for b in bins) == 40  # every call in exactly one bucket column
        events = SignalRollup.objects.filter(grain=grain, signal=name).aggregate(n=Sum("events"))
        assert events["n"] == 20
        failures = FailureRollup.objects.filter(grain=grain, signal=name, sender="slots")
        assert failures.aggregate(n=Sum("failures"))["n"] == 10
        latest = failures.order_by("-last_seen").first()
        assert latest is not None and latest.exc_type.endswith("ValueError")
        assert (latest.latest_event, latest.latest_index) == (newest.event_id, newest.index)
        assert latest.latest_message == newest.exc_message == "odd 19"


@pytest.mark.django_db(transaction=True)
def test_the_database_sink_gathers_for_store_interval_and_flush_stores_at_once() -> None:
    """Events wait up to STORE_INTERVAL for one transaction; a full batch or flush() stores them."""
    from collector import pipeline
    from collector.sinks import DatabaseSink

    signal = Signal()

    def on(sender: Any, **kwargs: Any) -> None:
        """A receiver."""

    signal.connect(on)
    config = {"SINKS": ["collector.sinks.DatabaseSink"], "STORE_INTERVAL": 3600, "BATCH_SIZE": 50}
    with override_settings(SIGNAL_MONITOR=config):
        collector.flush(10)
        sink = next(s for s in pipeline.current().sinks if isinstance(s, DatabaseSink))
        for i in range(10):
            signal.send(sender="gather", n=i)
        deadline = time.monotonic() + 10
        while runtime.snapshot()["queue"] and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # a few writer rounds: the events are gathered, not stored
        assert sink.pending() == 10 and runtime.backlog() == 10
        assert not Event.objects.filter(sender="gather").exists()
        assert collector.flush(10)
        assert Event.objects.filter(sender="gather").count() == 10
        for i in range(50):  # a full batch is stored without waiting
            signal.send(sender="full", n=i)
        deadline = time.monotonic() + 10
        while Event.objects.filter(sender="full").count() < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Event.objects.filter(sender="full").count() == 50
    soon = {"SINKS": ["collector.sinks.DatabaseSink"], "STORE_INTERVAL": 0.2}
    with override_settings(SIGNAL_MONITOR=soon):
        signal.send(sender="due", n=0)
        deadline = time.monotonic() + 10
        while not Event.objects.filter(sender="due").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Event.objects.filter(sender="due").exists(), "stored once STORE_INTERVAL passed"
    signal.disconnect(on)


def test_an_idle_writer_waits_for_the_first_record_and_wakes_for_it(
    recorded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After IDLE_AFTER rounds without a record the writer waits up to IDLE_WAIT (here a minute)
    instead of FLUSH_INTERVAL, so an application at rest costs no wake-ups; the first record
    queued, by the general path (a signal not named yet) or the fast path, rings it awake."""
    from collector.sinks import memory_events

    monkeypatch.setattr(runtime, "IDLE_WAIT", 60.0)
    signal = Signal()

    def on(sender: Any, **kwargs: Any) -> None:
        """A receiver."""

    signal.connect(on)
    try:
        for sender in ("general", "learning", "fast"):
            deadline = time.monotonic() + 10
            while not runtime._sleeping and time.monotonic() < deadline:
                time.sleep(0.02)
            assert runtime._sleeping, "the writer did not go idle"
            sent = time.monotonic()
            signal.send(sender=sender)
            while time.monotonic() - sent < 10 and not any(
                e["sender"] == sender for e in memory_events()
            ):
                time.sleep(0.01)
            assert time.monotonic() - sent < 5, f"the {sender} record waited for the idle timeout"
            # The writer names the signal after the first send, the second learns its
            # receivers' names, and the third takes the fast path.
            assert (hook._known.get(signal) is not None) == (sender != "general")
    finally:
        signal.disconnect(on)
    assert [e["sender"] for e in recorded()] == ["general", "learning", "fast"]
