"""The live feed's per-client state: filters, batching, bounded rows, skip counts, pause."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.feed import FeedFilters, FeedState, feed_row


def event(
    event_id: int,
    *,
    signal: str = "app.signals.ping",
    sender: str = "app.Thing",
    receivers: tuple[str, ...] = ("app.receivers.on_ping",),
    failed: bool = False,
) -> dict[str, Any]:
    """Return a live event dict like the collector's LiveSink sends."""
    return {
        "id": event_id,
        "signal": signal,
        "sender": sender,
        "method": "send",
        "timestamp": 1_700_000_000.0 + event_id,
        "duration_ns": 1000,
        "receiver_count": len(receivers),
        "failure_count": int(failed),
        "parent_id": None,
        "parent_call": None,
        "kwargs": {"n": event_id},
        "host": "h",
        "pid": 1,
        "request_path": "",
        "calls": [
            {
                "index": i,
                "receiver": r,
                "is_async": False,
                "duration_ns": 500,
                "outcome": "error" if failed else "ok",
                "exc_type": "E" if failed else "",
                "exc_message": "",
                "traceback": "",
            }
            for i, r in enumerate(receivers)
        ],
    }


def test_parse_keeps_valid_values_and_reports_bad_ones() -> None:
    filters, errors = FeedFilters.parse(
        {"signal": "a.b", "sender": ["x", "Order"], "receiver": 5, "outcome": "maybe"}
    )
    assert filters == FeedFilters(signal="a.b", sender="Order")
    assert len(errors) == 2
    assert any("receiver" in e for e in errors) and any("outcome" in e for e in errors)


@pytest.mark.parametrize("value", ["x" * 301, "a\x00b"])
def test_parse_rejects_oversized_and_nul_text(value: str) -> None:
    filters, errors = FeedFilters.parse({"sender": value})
    assert filters == FeedFilters() and len(errors) == 1


def test_matches_signal_exactly_and_sender_receiver_as_substrings() -> None:
    ev = event(1, sender="demo.Order", receivers=("demo.receivers.notify_stock",))
    assert FeedFilters(signal="app.signals.ping").matches(ev)
    assert not FeedFilters(signal="app.signals").matches(ev)
    assert FeedFilters(sender="order").matches(ev)
    assert FeedFilters(receiver="NOTIFY").matches(ev)
    assert not FeedFilters(receiver="profile").matches(ev)
    assert FeedFilters(outcome="ok").matches(ev)
    assert not FeedFilters(outcome="error").matches(ev)
    assert FeedFilters(outcome="error").matches(event(2, failed=True))


def test_matches_tolerates_malformed_events() -> None:
    assert not FeedFilters(receiver="x").matches({"calls": ["junk", None]})
    assert FeedFilters().matches({})


def test_querystring_holds_only_set_filters() -> None:
    assert FeedFilters(signal="a.b", outcome="error").querystring() == "signal=a.b&outcome=error"


def test_frames_batch_and_keep_newest_first() -> None:
    state = FeedState(FeedFilters(), per_frame=10)
    state.add_batch({"events": [event(i) for i in range(1, 4)], "skipped": 0})
    frame = state.take_frame()
    assert frame is not None and frame.reset
    assert [row["id"] for row in frame.rows] == [3, 2, 1]
    assert state.take_frame() is None  # nothing new: no frame


def test_filters_applied_before_buffering() -> None:
    state = FeedState(FeedFilters(signal="app.signals.pong"))
    state.add_batch({"events": [event(1), event(2, signal="app.signals.pong")]})
    frame = state.take_frame()
    assert frame is not None and [row["id"] for row in frame.rows] == [2]
    assert state.status()["matched"] == 1


def test_overflow_is_counted_as_skipped() -> None:
    state = FeedState(FeedFilters(), max_rows=50, per_frame=20, max_pending=100)
    state.add_batch({"events": [event(i) for i in range(1, 251)], "skipped": 7})
    frame = state.take_frame()
    assert frame is not None
    assert [row["id"] for row in frame.rows][:2] == [250, 249]
    assert len(frame.rows) == 20
    status = state.status()
    assert status["skipped"] == 230  # 150 beyond the pending bound + 80 beyond the frame
    assert status["skipped_upstream"] == 7
    assert status["matched"] == 250


def test_rows_are_bounded_and_evicted_oldest_first() -> None:
    state = FeedState(FeedFilters(), max_rows=5, per_frame=3)
    for start in (1, 4, 7):
        state.add_batch({"events": [event(i) for i in range(start, start + 3)]})
        frame = state.take_frame()
    assert frame is not None
    assert frame.evicted == [2, 3, 4]  # 1 went with the second frame
    assert list(state.shown) == [5, 6, 7, 8, 9]


def test_duplicates_are_not_shown_twice() -> None:
    state = FeedState(FeedFilters())
    state.add_backfill([event(1), event(2)])
    state.add_batch({"events": [event(2), event(3)]})
    frame = state.take_frame()
    assert frame is not None and [row["id"] for row in frame.rows] == [3, 2, 1]


def test_pause_counts_instead_of_queueing() -> None:
    state = FeedState(FeedFilters())
    state.take_frame()
    state.set_paused(True)
    state.add_batch({"events": [event(1), event(2)]})
    frame = state.take_frame()
    assert frame is not None and frame.rows == []
    assert state.status()["skipped_paused"] == 2 and state.status()["paused"]
    state.set_paused(False)
    state.add_batch({"events": [event(3)]})
    frame = state.take_frame()
    assert frame is not None and [row["id"] for row in frame.rows] == [3]


def test_new_filters_reset_the_page() -> None:
    state = FeedState(FeedFilters())
    state.add_batch({"events": [event(1)]})
    state.take_frame()
    state.set_filters(FeedFilters(sender="nothing"))
    frame = state.take_frame()
    assert frame is not None and frame.reset and frame.rows == []
    assert state.status()["rows"] == 0


def test_malformed_batches_are_ignored() -> None:
    state = FeedState(FeedFilters())
    state.take_frame()
    state.add_batch({"events": "nope", "skipped": "x"})
    state.add_batch({"events": [None, 3, {"id": "not-a-number"}]})
    frame = state.take_frame()
    assert frame is None or frame.rows == []


def test_feed_row_caps_text_and_marks_outcome() -> None:
    ev = event(1, failed=True)
    ev["calls"][0]["exc_message"] = "m" * 1000
    ev["kwargs"] = {"blob": "x" * 5000}
    row = feed_row(ev)
    assert row is not None
    assert row["outcome"] == "error"
    assert len(row["calls"][0]["exc_message"]) <= 301
    assert len(row["kwargs_text"]) <= 801
    assert feed_row({"id": 1, "receiver_count": 0})["outcome"] == "unheard"  # type: ignore[index]


def test_a_shared_event_builds_its_row_once() -> None:
    from dashboard.feed import SharedEvent

    shared = SharedEvent(event(1))
    row = feed_row(shared)
    assert row is not None and feed_row(shared) is row
    one, two = FeedState(FeedFilters()), FeedState(FeedFilters())
    for state in (one, two):
        state.add_batch({"events": [shared]})
    frames = [one.take_frame(), two.take_frame()]
    assert all(frame is not None and frame.rows[0] is row for frame in frames)
    assert feed_row(event(1)) == row and feed_row(event(1)) is not row  # plain dicts: fresh


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rows_per_second_cap_a_stream_but_not_a_burst() -> None:
    clock = Clock()
    state = FeedState(FeedFilters(), per_frame=50, rows_per_second=200, clock=clock)
    state.add_batch({"events": [event(i) for i in range(1, 41)]})
    frame = state.take_frame()
    assert frame is not None and len(frame.rows) == 40  # a burst after a quiet spell: whole
    shown = 40
    for step in range(20):  # one second of 1,000 events/s, a frame every 50 ms
        clock.now += 0.05
        state.add_batch({"events": [event(1000 + step * 50 + i) for i in range(50)]})
        frame = state.take_frame()
        assert frame is not None and len(frame.rows) <= 50
        shown += len(frame.rows)
    assert 200 <= shown - 40 <= 210  # the 10 left in the bucket after the burst, then 200/s
    assert state.status()["skipped"] == 1040 - shown
    state.set_filters(FeedFilters())  # a new page starts with a full bucket
    state.add_backfill([event(i) for i in range(5000, 5050)])
    frame = state.take_frame()
    assert frame is not None and len(frame.rows) == 50
