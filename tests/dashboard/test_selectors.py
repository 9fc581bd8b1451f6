"""Selectors: timings from rollups, failure locations and groups, trees, backfill."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from collector.models import ReceiverStat
from dashboard import selectors
from dashboard.feed import FeedFilters
from tests.dashboard.conftest import make_counts, make_event, make_stats, traceback_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_store")]


def test_receiver_percentiles_come_from_buckets() -> None:
    make_stats("r.fast", [100_000] * 90 + [10_000_000] * 10)
    (row,) = selectors.receiver_timings(stats=ReceiverStat.objects.all())
    assert row["calls"] == 100
    assert 90_000 < row["p50_ns"] < 110_000
    assert 9_000_000 < row["p95_ns"] < 11_000_000
    assert row["max_ns"] == 10_000_000
    assert row["mean_ns"] == (90 * 100_000 + 10 * 10_000_000) // 100


def test_receiver_timings_never_read_calls() -> None:
    make_stats("r.fast", [1000] * 3)
    make_event()
    with CaptureQueriesContext(connection) as queries:
        selectors.receiver_timings(stats=ReceiverStat.objects.all())
    assert not any("receivercall" in q["sql"].lower() for q in queries.captured_queries)


def test_rollups_across_minutes_and_senders_add_up() -> None:
    now = timezone.now()
    make_stats("r.x", [1000] * 5, minute=now, failures=1)
    make_stats("r.x", [1000] * 5, minute=now - timedelta(minutes=3), sender="other", failures=1)
    (row,) = selectors.receiver_timings(stats=ReceiverStat.objects.all())
    assert row["calls"] == 10 and row["failures"] == 2 and row["error_rate"] == 0.2
    assert row["last_failure"] == now.replace(second=0, microsecond=0)


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
