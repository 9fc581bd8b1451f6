"""The DatabaseSink's compressed backlog: order, bounds, serialisation fallbacks."""

from __future__ import annotations

from typing import Any

from collector.backlog import CHUNK_EVENTS, PLAIN_EVENT_BYTES, Backlog
from collector.capture import Snapshot


def _event(i: int) -> dict[str, Any]:
    """Return an event-shaped dict numbered ``i``."""
    return {
        "id": i, "signal": "app.signals.order_placed", "sender": "shop.Order", "method": "send",
        "timestamp": 1_795_480_505.924 + i / 1000, "kwargs": {"n": i, "total": 12.5},
        "calls": [{"index": 0, "receiver": "app.receivers.notify", "duration_ns": 900 + i}],
    }  # fmt: skip


def _drain(backlog: Backlog, step: int) -> list[dict[str, Any]]:
    """Take every event out of ``backlog``, ``step`` at a time, the way the sink does."""
    out: list[dict[str, Any]] = []
    while backlog:
        head = backlog.head(step)
        assert head, "a non-empty backlog returned an empty head"
        out += head
        backlog.drop_head(len(head))
    return out


def test_events_come_back_in_order_and_equal() -> None:
    """Events leave oldest first, unchanged, across compressed and plain chunks."""
    events = [_event(i) for i in range(int(CHUNK_EVENTS * 3.5))]
    backlog = Backlog(max_bytes=10**9)
    assert backlog.extend(events[:1500]) == 1500
    first = backlog.head(700)
    backlog.drop_head(len(first))
    assert backlog.extend(events[1500:]) == len(events) - 1500
    assert first + _drain(backlog, 333) == events
    assert len(backlog) == 0 and backlog.nbytes == 0


def test_full_chunks_are_compressed() -> None:
    """A full chunk of similar events is held in a small fraction of its plain size."""
    backlog = Backlog(max_bytes=10**9)
    backlog.extend([_event(i) for i in range(CHUNK_EVENTS * 10)])
    per_event = backlog.nbytes / len(backlog)
    assert per_event < PLAIN_EVENT_BYTES / 5, per_event


def test_the_byte_bound_refuses_the_rest() -> None:
    """Beyond max_bytes nothing more is held; the caller learns how many were taken."""
    backlog = Backlog(max_bytes=PLAIN_EVENT_BYTES * 10)
    taken = backlog.extend([_event(i) for i in range(25)])
    assert taken == 10 and len(backlog) == 10
    assert _drain(backlog, 4) == [_event(i) for i in range(10)]
    assert backlog.extend([_event(99)]) == 1


def test_snapshots_survive_through_pickle() -> None:
    """A chunk marshal cannot write (a Snapshot inside) is pickled and comes back the same."""
    events = [_event(i) for i in range(CHUNK_EVENTS)]
    events[7]["kwargs"] = {"instance": Snapshot(model="shop.Order", pk=7)}
    backlog = Backlog(max_bytes=10**9)
    backlog.extend(events)
    out = _drain(backlog, CHUNK_EVENTS)
    assert out == events and type(out[7]["kwargs"]["instance"]) is Snapshot


def test_unserialisable_chunks_stay_plain() -> None:
    """A chunk neither marshal nor pickle can write is kept as it is."""
    events = [_event(i) for i in range(CHUNK_EVENTS)]
    events[3]["kwargs"] = {"lock": __import__("threading").Lock()}
    backlog = Backlog(max_bytes=10**9)
    backlog.extend(events)
    assert _drain(backlog, 500) == events


def test_clear_and_events() -> None:
    """events() lists everything held; clear() forgets it."""
    backlog = Backlog(max_bytes=10**9)
    backlog.extend([_event(i) for i in range(1200)])
    assert [e["id"] for e in backlog.events()] == list(range(1200))
    backlog.clear()
    assert not backlog and backlog.events() == [] and backlog.nbytes == 0
