"""Faults inside the host and inside the collector: receivers that raise or block, hostile
arguments, processors and sinks that raise, a writer thread that dies, a full queue. The host
sees exactly what it would see without the collector, never waits on it, and nothing is lost
below the queue's capacity."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import Sum
from django.dispatch import Signal
from django.test import Client

import collector
from collector import hook, runtime
from collector.models import CollectorHealth, Event, ReceiverCall
from tests.conftest import stored_calls
from tests.reliability.conftest import HostGuard, Tally, counter, drops, monitor, wait_for
from tests.reliability.faults import DyingSink, Faults, RaisingSink

RAISING_PROCESSOR = "tests.reliability.faults.RaisingProcessor"
ping = Signal()
SIGNAL = "tests.reliability.test_faults_host.ping"


class Boom(Exception):
    """A receiver's own failure."""


BOOM = Boom("the receiver's own error")
called: list[str] = []


def first(sender: Any, **kw: Any) -> str:
    """Runs before the failing receiver."""
    called.append("first")
    return "first"


def raising(sender: Any, **kw: Any) -> None:
    """Raises the same exception object every time."""
    called.append("raising")
    raise BOOM


def last(sender: Any, **kw: Any) -> str:
    """Runs after the failing receiver (send_robust only)."""
    called.append("last")
    return "last"


async def araising(sender: Any, **kw: Any) -> None:
    """An async receiver that raises."""
    called.append("araising")
    raise BOOM


def echo(sender: Any, **kw: Any) -> Any:
    """Returns its argument."""
    return kw.get("n")


def parse_health(html: str) -> str:
    """Return the text of the page's collector health strip ("" when there is none)."""
    from html.parser import HTMLParser

    class Strip(HTMLParser):
        depth = 0
        text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if self.depth or ("id", "collector-health") in attrs:
                self.depth += 1

        def handle_endtag(self, tag: str) -> None:
            if self.depth:
                self.depth -= 1

        def handle_data(self, data: str) -> None:
            if self.depth:
                self.text.append(data)

    parser = Strip()
    parser.text = []
    parser.feed(html)
    return " ".join(" ".join(parser.text).split())


def settle(queryset: Any, expected: int, timeout: float = 15.0) -> int:
    """Return the queryset's count once it reaches ``expected`` (a backlog may be retrying)."""
    with contextlib.suppress(AssertionError):
        wait_for(lambda: queryset.count() >= expected, timeout=timeout)
    return int(queryset.count())


@pytest.fixture
def clean_ping() -> Iterator[None]:
    """Leave ``ping`` without receivers after the test."""
    called.clear()
    yield
    for receiver in (first, raising, last, araising, echo):
        ping.disconnect(receiver)


def outcome(method: str, host: HostGuard) -> tuple[Any, list[str]]:
    """Send ``ping`` with ``method``; return (result or raised exception, receivers called)."""
    called.clear()
    try:
        if method.startswith("a"):
            result: Any = asyncio.run(getattr(ping, method)(sender="x"))
        else:
            result = host.call(getattr(ping, method), sender="x", expect=Boom)
    except Boom as exc:
        result = exc
    return result, list(called)


@pytest.mark.parametrize("method", ["send", "send_robust", "asend", "asend_robust"])
def test_a_raising_receiver_behaves_exactly_as_without_the_collector(
    method: str, clean_ping: None, host: HostGuard, tally: Tally
) -> None:
    for receiver in (first, raising, araising, last):
        ping.connect(receiver)
    with_hook = outcome(method, host)
    collector.uninstall()
    try:
        bare = outcome(method, host)
    finally:
        collector.install()
    tally.fault("receiver_raises", 2)
    if method == "asend" and hook._run_parallel is None:
        # Django 5.2 gathers the sync receivers' thread with the async receivers and returns at
        # the first failure: whether the sync ones got to run is a race in Django itself.
        assert "araising" in with_hook[1] and "araising" in bare[1]
    else:
        assert sorted(with_hook[1]) == sorted(bare[1])
    if method in ("send", "asend"):
        raised = with_hook[0]
        if hasattr(raised, "exceptions"):  # an exception group: Django 6.1's asend
            assert type(bare[0]) is type(raised)
            assert list(raised.exceptions) == list(bare[0].exceptions)
        else:
            assert raised is BOOM and bare[0] is BOOM  # the very same object propagates
    else:
        assert [r for r, _ in with_hook[0]] == [r for r, _ in bare[0]]  # original receivers
        assert [v for _, v in with_hook[0]] == [v for _, v in bare[0]]
        assert sum(v is BOOM for _, v in with_hook[0]) == 2


def test_a_blocked_receiver_makes_no_other_thread_wait(
    clean_ping: None, host: HostGuard, tally: Tally, transactional_db: None
) -> None:
    """One thread's receiver blocks; eight other threads send freely and the writer writes."""
    gate, inside = threading.Event(), threading.Event()

    def blocking(sender: Any, **kw: Any) -> None:
        if sender == "blocked":
            inside.set()
            gate.wait(20)

    ping.connect(blocking)
    ping.connect(echo)
    blocked = threading.Thread(target=lambda: host.call(ping.send, sender="blocked", n=-1))
    blocked.start()
    assert inside.wait(5)
    tally.fault("receiver_blocks")
    durations: list[float] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        mine = []
        for i in range(250):
            began = time.perf_counter()
            host.call(ping.send, sender=f"free-{t}", n=i)
            mine.append(time.perf_counter() - began)
        with lock:
            durations.extend(mine)

    began = time.monotonic()
    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - began
    assert all(not thread.is_alive() for thread in threads)
    assert collector.flush(10)  # the writer is not waiting for the blocked receiver either
    free = Event.objects.filter(signal=SIGNAL, sender__startswith="free-")
    assert settle(free, 2000) == 2000
    assert blocked.is_alive()  # still blocked all along
    gate.set()
    blocked.join(5)
    ping.disconnect(blocking)
    assert collector.flush(10)
    assert settle(Event.objects.filter(signal=SIGNAL, sender="blocked"), 1) == 1
    tally.events(sent=2001, stored=free.count() + 1)
    durations.sort()
    assert elapsed < 5 and durations[int(len(durations) * 0.99)] < 0.05


class Unprintable:
    """repr() raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Recursive:
    """repr() recurses forever."""

    def __repr__(self) -> str:
        return repr(self)


class Huge:
    """repr() is 10 MB."""

    def __repr__(self) -> str:
        return "x" * 10_000_000


class Trap:
    """Every attribute lookup raises something other than AttributeError."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name} for you")

    def __repr__(self) -> str:
        return "<Trap>"


class BadEq:
    """Comparisons and hashing raise."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing")

    def __hash__(self) -> int:
        raise RuntimeError("no hashing")


class NastyError(Exception):
    """An exception whose str() raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


HOSTILE = {
    "bad_repr": Unprintable(),
    "recursive_repr": Recursive(),
    "huge_repr": Huge(),
    "non_utf8": b"\xff\xfe\x00\xc3\x28 bytes",
    "surrogate": "lone \udcff surrogate",
    "nul": "a\x00b",
    "bad_eq": BadEq(),
    "self_loop": None,  # filled below
    "deep": [[[[[[["deep"]]]]]]],
    "huge_list": list(range(200_000)),
    "huge_text": "y" * 10_000_000,
}
HOSTILE["self_loop"] = loop = []  # type: ignore[var-annotated]
loop.append(loop)


@pytest.mark.django_db(transaction=True)
def test_hostile_arguments_senders_and_exceptions_are_stored_and_shown(
    clean_ping: None, host: HostGuard, tally: Tally, staff_client: Client
) -> None:
    def fails_badly(sender: Any, **kw: Any) -> None:
        raise NastyError()

    def fails_hugely(sender: Any, **kw: Any) -> None:
        raise ValueError("z" * 10_000_000 + "\udcff\x00")

    ping.connect(echo)
    ping.connect(fails_hugely)
    ping.connect(fails_badly)
    senders = [Unprintable(), Recursive(), Huge(), "plain"]
    for sender in senders:
        # send(), not send_robust(): Django's own failure log would call str() on NastyError.
        with pytest.raises(ValueError):
            host.call(ping.send, sender=sender, expect=ValueError, **HOSTILE)
        ping.disconnect(fails_hugely)
        with pytest.raises(NastyError):
            host.call(ping.send, sender=sender, expect=NastyError, **HOSTILE)
        ping.connect(fails_hugely)
        ping.disconnect(fails_badly)
        ping.connect(fails_badly)
    tally.fault("hostile_argument", len(HOSTILE) * len(senders))
    tally.fault("hostile_sender", len(senders))
    tally.fault("hostile_exception", 2 * len(senders))
    assert collector.flush(20)
    settle(Event.objects.filter(signal=SIGNAL), 2 * len(senders))
    stored = list(Event.objects.filter(signal=SIGNAL))
    tally.events(sent=2 * len(senders), stored=len(stored))
    assert len(stored) == 2 * len(senders)
    for event in stored:
        assert len(event.sender) <= 400
        assert set(HOSTILE) <= set(event.kwargs)
        assert len(str(event.kwargs)) < 20_000  # capped, whatever the input
        response = staff_client.get(f"/signals/events/{event.pk}/")
        assert response.status_code == 200
    failures = ReceiverCall.objects.filter(signal=SIGNAL, outcome="error")
    assert failures.count() == 2 * len(senders)
    assert {f.exc_message for f in failures if "NastyError" in f.exc_type} == {
        "<unprintable NastyError>"
    }
    for failure in failures:
        assert len(failure.exc_message) < 5_000
        assert staff_client.get(f"/signals/failures/{failure.pk}/").status_code == 200
    for page in ("/signals/", "/signals/signals/", "/signals/receivers/", "/signals/failures/",
                 "/signals/failures/?view=list", "/signals/registry/"):  # fmt: skip
        assert staff_client.get(page).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_argument_whose_every_attribute_raises_is_stored_or_counted(
    clean_ping: None, host: HostGuard, tally: Tally
) -> None:
    """Never a silent loss: the event is stored, or dropped and counted as capture_error."""
    ping.connect(echo)
    before = drops("capture_error")
    for i in range(5):
        assert host.call(ping.send, sender="trap", n=i, trap=Trap()) == [(echo, i)]
    tally.fault("argument_attribute_trap", 5)
    assert collector.flush(10)
    stored = settle(Event.objects.filter(signal=SIGNAL, sender="trap"), 5, timeout=3)
    assert stored + (drops("capture_error") - before) == 5


@pytest.mark.django_db(transaction=True)
def test_a_raising_processor_and_sink_are_contained(
    clean_ping: None, host: HostGuard, tally: Tally
) -> None:
    ping.connect(echo)
    processors = [RAISING_PROCESSOR, "collector.processors.RedactProcessor"]
    sinks = ["tests.reliability.faults.RaisingSink", "collector.sinks.DatabaseSink"]
    proc_errors, sink_errors = counter("processor_errors"), counter("sink_errors")
    with monitor(PROCESSORS=processors, SINKS=sinks, FLUSH_INTERVAL=0.05):
        for i in range(50):
            assert host.call(ping.send, sender="contained", n=i) == [(echo, i)]
        assert collector.flush(10)
    tally.fault("processor_raises", 50)
    tally.fault("sink_raises", RaisingSink.calls)
    stored = Event.objects.filter(signal=SIGNAL, sender="contained")
    tally.events(sent=50, stored=settle(stored, 50))
    assert stored.count() == 50
    assert counter("processor_errors") >= proc_errors + 50  # other signals pass too
    assert counter("sink_errors") > sink_errors


@pytest.mark.django_db(transaction=True)
def test_the_writer_dying_is_restarted_and_shown_on_the_dashboard(
    clean_ping: None, host: HostGuard, tally: Tally, staff_client: Client
) -> None:
    ping.connect(echo)
    sinks = ["collector.sinks.DatabaseSink", "tests.reliability.faults.DyingSink"]
    restarts = counter("writer_restarts")
    with monitor(SINKS=sinks, FLUSH_INTERVAL=0.05, HEALTH_INTERVAL=0.1):
        DyingSink.armed = 1
        for i in range(30):
            host.call(ping.send, sender="before-death", n=i)
        wait_for(lambda: counter("writer_restarts") == restarts + 1)
        tally.fault("writer_dies")
        for i in range(30):
            host.call(ping.send, sender="after-death", n=i)
        assert collector.flush(10)
        assert runtime.snapshot()["alive"]
        row = wait_for(
            lambda: CollectorHealth.objects.filter(writer_restarts__gte=restarts + 1).first()
        )
    stored = Event.objects.filter(signal=SIGNAL, sender__in=["before-death", "after-death"])
    tally.events(sent=60, stored=settle(stored, 60))
    assert stored.count() == 60
    assert "writer died" in row.last_error
    for url in ("/signals/", "/signals/signals/", "/signals/failures/"):
        page = staff_client.get(url)
        assert page.status_code == 200
        strip = parse_health(page.content.decode())
        assert "writer restart" in strip and "writer died" in strip


def test_a_writer_that_keeps_dying_backs_off_and_recovers(
    clean_ping: None, host: HostGuard, tally: Tally, transactional_db: None
) -> None:
    """A sink that cannot be imported kills every writer: restarts slow down, nothing is lost."""
    ping.connect(echo)
    restarts = counter("writer_restarts")
    with monitor(SINKS=["tests.reliability.faults.NoSuchSink"], FLUSH_INTERVAL=0.05):
        for i in range(40):
            assert host.call(ping.send, sender="misconfigured", n=i) == [(echo, i)]
        time.sleep(1.5)
        died = counter("writer_restarts") - restarts
    tally.fault("writer_keeps_dying", died)
    assert 2 <= died <= 12  # restarted, but not in a tight loop
    assert collector.flush(15)
    stored = Event.objects.filter(signal=SIGNAL, sender="misconfigured")
    tally.events(sent=40, stored=settle(stored, 40))
    assert stored.count() == 40


def test_a_full_queue_drops_counts_per_reason_and_logs_at_a_bounded_rate(
    clean_ping: None, host: HostGuard, tally: Tally, caplog: pytest.LogCaptureFixture
) -> None:
    ping.connect(echo)
    before = drops("queue_full")
    old = hook.capacity
    runtime._last_drop_log = 0.0
    hook.capacity = 0
    try:
        with caplog.at_level(logging.WARNING, logger="collector"):

            def run() -> None:
                for i in range(1000):
                    host.call(ping.send, sender="dropped", n=i)

            threads = [threading.Thread(target=run) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        hook.capacity = old
    tally.fault("queue_full")
    assert drops("queue_full") == before + 8000  # exact, with eight threads at once
    logged = [r for r in caplog.records if "dropped events" in r.getMessage()]
    assert len(logged) == 1


def test_eight_threads_and_a_hundred_coroutines_under_faults(
    clean_ping: None, host: HostGuard, tally: Tally, transactional_db: None
) -> None:
    """Everything at once: the database locked for a while, the writer killed once, a raising
    processor and sink; every event is still stored exactly once."""
    ping.connect(echo)

    async def aecho(sender: Any, **kw: Any) -> Any:
        await asyncio.sleep(0)
        return kw.get("n")

    ping.connect(aecho)
    processors = [RAISING_PROCESSOR, "collector.processors.RedactProcessor"]
    sinks = [
        "tests.reliability.faults.FaultSink",
        "tests.reliability.faults.RaisingSink",
        "collector.sinks.DatabaseSink",
        "tests.reliability.faults.DyingSink",
    ]
    per_thread, coroutines, per_coroutine = 300, 100, 5
    restarts = counter("writer_restarts")
    with monitor(PROCESSORS=processors, SINKS=sinks, FLUSH_INTERVAL=0.02):
        DyingSink.armed = 1
        Faults.arm("readonly")
        barrier = threading.Barrier(9)

        def thread_sender(t: int) -> None:
            barrier.wait()
            for i in range(per_thread):
                host.call(ping.send, sender=f"mix-t{t}", n=i)

        async def coroutine_sender(c: int) -> None:
            for i in range(per_coroutine):
                await ping.asend(sender=f"mix-c{c}", n=i)

        async def all_coroutines() -> None:
            await asyncio.gather(*(coroutine_sender(c) for c in range(coroutines)))

        def loop_sender() -> None:
            barrier.wait()
            host.call(asyncio.run, all_coroutines())

        threads = [threading.Thread(target=thread_sender, args=(t,)) for t in range(8)]
        threads.append(threading.Thread(target=loop_sender))
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        Faults.disarm()  # the database comes back while the senders still run
        for thread in threads:
            thread.join(30)
        assert collector.flush(30)
        wait_for(lambda: counter("writer_restarts") > restarts)
        assert collector.flush(30)
    tally.fault("mixed_faults", 3)
    total = 8 * per_thread + coroutines * per_coroutine
    events = Event.objects.filter(signal=SIGNAL, sender__startswith="mix-")
    settle(events, total)
    tally.events(sent=total, stored=events.values("id").distinct().count())
    assert events.count() == total
    assert events.values("id").distinct().count() == total
    calls = stored_calls(events)
    assert len(calls) == 2 * total
    assert len({event_id for event_id, _ in calls}) == total
    assert (
        Event.objects.filter(signal=SIGNAL, sender__startswith="mix-").aggregate(
            n=Sum("receiver_count")
        )["n"]
        == 2 * total
    )
