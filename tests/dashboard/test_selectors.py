"""Selectors: timings from rollups, failure locations and groups, trees, backfill."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from collector.models import Event, ReceiverCall
from dashboard import selectors
from dashboard.feed import FeedFilters
from dashboard.windows import Span, window_plan, window_start
from tests.dashboard.conftest import make_counts, make_event, make_stats, traceback_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_store")]
_host_ids = itertools.count(7_000_000)


def test_receiver_percentiles_come_from_buckets() -> None:
    make_stats("r.fast", [100_000] * 90 + [10_000_000] * 10)
    (row,) = selectors.receiver_timings(where=selectors.RollupQuery())
    assert row["calls"] == 100
    assert 90_000 < row["p50_ns"] < 110_000
    assert 9_000_000 < row["p95_ns"] < 11_000_000
    assert row["max_ns"] == 10_000_000
    assert row["mean_ns"] == (90 * 100_000 + 10 * 10_000_000) // 100


def test_receiver_timings_never_read_calls() -> None:
    make_stats("r.fast", [1000] * 3)
    make_event()
    with CaptureQueriesContext(connection) as queries:
        selectors.receiver_timings(where=selectors.RollupQuery())
    assert not any("receivercall" in q["sql"].lower() for q in queries.captured_queries)


def test_rollups_across_minutes_and_senders_add_up() -> None:
    now = timezone.now()
    make_stats("r.x", [1000] * 5, minute=now, failures=1)
    make_stats("r.x", [1000] * 5, minute=now - timedelta(minutes=3), sender="other", failures=1)
    (row,) = selectors.receiver_timings(where=selectors.RollupQuery())
    assert row["calls"] == 10 and row["failures"] == 2 and row["error_rate"] == 0.2
    assert row["last_failure"] == now.replace(second=0, microsecond=0)


@pytest.mark.parametrize("since", ["15m", "1h", "6h", "24h", "7d", "30d", "all"])
def test_window_timings_equal_the_minutes_they_cover(since: str) -> None:
    """Slots at the middle, minutes at the edges: exactly the minutes at or after the start."""
    now = timezone.now()
    minutes = [0, 1, 9, 11, 14, 15, 16, 59, 61, 170, 359, 361, 23 * 60, 24 * 60 + 1, 3 * 1440 + 7,
               7 * 1440 - 3, 7 * 1440 + 5, 29 * 1440]  # fmt: skip
    for n, ago in enumerate(minutes):
        make_stats("r.x", [1000 * (n + 1)] * (n + 1), minute=now - timedelta(minutes=ago),
                   failures=n % 2)  # fmt: skip
    start = window_start(since, now=now)
    rows = selectors.receiver_timings(where=selectors.RollupQuery(start=start), now=now)
    floor = now.replace(second=0, microsecond=0)
    inside = [
        n for n, ago in enumerate(minutes)
        if start is None or floor - timedelta(minutes=ago) >= start
    ]  # fmt: skip
    assert [row["calls"] for row in rows] == [sum(n + 1 for n in inside)]
    assert rows[0]["failures"] == sum(n % 2 for n in inside)
    assert rows[0]["max_ns"] == 1000 * (max(inside) + 1)


def test_window_with_an_end_reads_only_whole_minutes_before_it() -> None:
    now = timezone.now().replace(second=30, microsecond=0)
    for ago in (5, 65, 125, 24 * 60 + 5):
        make_stats("r.x", [1000], minute=now - timedelta(minutes=ago))
    where = selectors.RollupQuery(start=now - timedelta(days=2), end=now - timedelta(minutes=65))
    (row,) = selectors.receiver_timings(where=where, now=now)
    assert row["calls"] == 3


def test_window_plan_is_few_slots_and_exact() -> None:
    now = datetime(2026, 11, 24, 2, 23, 17, tzinfo=dt_timezone.utc)
    spans = window_plan(now - timedelta(days=7), now=now)
    assert [s.grain for s in spans] == [60, 600, 3600, 21600, 86400]
    assert spans[0].first == datetime(2026, 11, 17, 2, 24, tzinfo=dt_timezone.utc)
    assert [s.stop for s in spans[:-1]] == [s.first for s in spans[1:]] and spans[-1].stop is None
    assert [s.grain for s in window_plan(now - timedelta(minutes=15), now=now)] == [60, 600]
    assert window_plan(None, now=now) == [Span(86400, None, None)]


def test_a_window_starting_in_the_last_minute_a_datetime_holds_is_empty() -> None:
    """A start after 9999-12-31 23:59:00 has no whole minute at or after it (found by the query
    fuzzer: ``start=9999-12-31 23:59:59`` raised "year 10000 is out of range")."""
    now = datetime(2026, 11, 24, 2, 23, 17, tzinfo=dt_timezone.utc)
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt_timezone.utc)
    assert window_plan(last, now=now) == []
    assert window_plan(last.replace(second=0), now=now)[0].first == last.replace(second=0)


def test_percentiles_survive_the_slot_rows() -> None:
    old = timezone.now() - timedelta(days=3)
    make_stats("r.fast", [100_000] * 90 + [10_000_000] * 10, minute=old)
    (row,) = selectors.receiver_timings(where=selectors.RollupQuery(start=old - timedelta(days=1)))
    assert 90_000 < row["p50_ns"] < 110_000 and 9_000_000 < row["p95_ns"] < 11_000_000


def test_failure_groups_in_window_match_the_stored_failures() -> None:
    now = timezone.now()
    for ago in (1, 8, 30, 61, 60 * 20, 60 * 24 * 3):
        make_event(calls=[("r.charge", 10, "E", f"m{ago}", traceback_text())],
                   when=now - timedelta(minutes=ago))  # fmt: skip
    make_event(calls=[("r.other", 10, "KeyError", "k", traceback_text(line=9))],
               when=now - timedelta(minutes=3))  # fmt: skip
    where = selectors.RollupQuery(start=now - timedelta(hours=24))
    groups = selectors.failure_groups_in_window(where=where, now=now)
    assert [(g["receiver"], g["count"]) for g in groups] == [("r.charge", 5), ("r.other", 1)]
    charge = groups[0]
    newest = ReceiverCall.objects.get(exc_message="m1")
    assert charge["latest_id"] == newest.pk and charge["message"] == "m1"
    assert charge["first_seen"] == ReceiverCall.objects.get(exc_message="m1200").timestamp
    narrowed = selectors.RollupQuery(start=where.start, receiver="CHAR", exc_type="e")
    assert [g["count"] for g in selectors.failure_groups_in_window(where=narrowed)] == [5]


def test_known_hosts_without_scanning_events() -> None:
    for host in ("web-2", "web-1", "web-2", "worker"):
        Event.objects.create(id=next(_host_ids), signal="s", sender="x", method="send",
                             timestamp=timezone.now(), duration_ns=1, receiver_count=0,
                             host=host)  # fmt: skip
    assert selectors.known_hosts() == ["web-1", "web-2", "worker"]
    assert selectors.known_hosts(start=timezone.now() + timedelta(minutes=1)) == []


def test_signal_overview_sparkline_covers_the_last_hour() -> None:
    make_counts("app.signals.tick", [5, 0, 7])
    rows = {row["signal"]: row for row in selectors.signal_overview(start=None)}
    tick = rows["app.signals.tick"]
    assert tick["events"] == 12 and len(tick["rate"]) == selectors.SPARK_MINUTES
    assert tick["rate"][-3:] == [5, 0, 7]
    assert tick["receivers"] is None  # not loaded in this process


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            traceback_text(path="/srv/app/shop/receivers.py", line=7, function="f"),
            "app/shop/receivers.py:7 in f",
        ),
        ("", ""),
        ("ValueError: no frames", ""),
    ],
)
def test_failure_location(text: str, expected: str) -> None:
    assert selectors.failure_location(text) == expected


def test_failure_groups_count_first_and_last_seen() -> None:
    now = timezone.now()
    call = ("r.charge", 10, "E", "m", traceback_text())
    for minutes in (5, 3, 1):
        make_event(calls=[call], when=now - timedelta(minutes=minutes))
    from collector.models import ReceiverCall

    groups, truncated = selectors.failure_groups(calls=ReceiverCall.objects.filter(outcome="error"))
    (group,) = groups
    assert not truncated and group["count"] == 3
    assert group["first_seen"] < group["last_seen"]
    groups, truncated = selectors.failure_groups(
        calls=ReceiverCall.objects.filter(outcome="error"), limit=2
    )
    assert truncated and groups[0]["count"] == 2


def test_event_tree_is_bounded() -> None:
    root = make_event()
    parent = root
    for _ in range(12):
        parent = make_event(parent=(parent, 0))
    tree = selectors.event_tree(event_id=root.pk, max_depth=4)
    assert tree is not None
    depth, node = 0, tree
    while node.children:
        node = node.children[0][0]
        depth += 1
    assert depth == 4


def test_parse_event_id() -> None:
    assert selectors.parse_event_id("12") == 12
    assert selectors.parse_event_id(2**63) is None
    assert selectors.parse_event_id("x") is None
    assert selectors.parse_event_id(-1) is None


def test_recent_events_match_filters_oldest_first() -> None:
    now = timezone.now()
    a = make_event(when=now - timedelta(seconds=3), calls=[("r.audit", 5)])
    make_event(when=now - timedelta(seconds=2), calls=[("r.other", 5)])
    c = make_event(when=now - timedelta(seconds=1), calls=[("r.audit", 5)])
    found = selectors.recent_events(filters=FeedFilters(receiver="audit"), limit=10)
    assert [e["id"] for e in found] == [a.pk, c.pk]
    assert found[0]["calls"][0]["receiver"] == "r.audit"


def test_process_overview_from_the_process_rollups() -> None:
    now = timezone.now()
    ages = [1, 9, 12, 70, 60 * 7, 60 * 23, 60 * 30]  # minutes; the last is outside 24h
    stored = [
        make_event(when=now - timedelta(minutes=ago),
                   calls=[("r.x", 5, "E", "m", traceback_text())] if ago == 70 else [("r.x", 5)])
        for ago in ages
    ]  # fmt: skip
    (row,) = selectors.process_overview(start=now - timedelta(hours=24), now=now)
    assert (row["host"], row["pid"]) == ("test-host", 1)
    assert (row["events"], row["failed"]) == (6, 1)
    assert row["last_seen"] == stored[0].timestamp and row["first_seen"] == stored[5].timestamp
    (everything,) = selectors.process_overview(start=None, now=now)
    assert everything["events"] == 7 and everything["first_seen"] == stored[6].timestamp


def test_a_start_in_the_first_second_of_a_minute_leaves_that_minute_out() -> None:
    """The window holds the minutes at or after its start, to the microsecond."""
    utc = dt_timezone.utc
    start = datetime(2026, 11, 24, 2, 8, 0, 500_000, tzinfo=utc)
    spans = window_plan(start, now=datetime(2026, 11, 24, 2, 23, 0, 500_000, tzinfo=utc))
    assert spans[0].first == datetime(2026, 11, 24, 2, 9, tzinfo=utc)
    exact = window_plan(datetime(2026, 11, 24, 2, 8, tzinfo=utc), now=start + timedelta(hours=1))
    assert exact[0].first == datetime(2026, 11, 24, 2, 8, tzinfo=utc)
