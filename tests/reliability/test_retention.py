"""Retention: ``manage.py signals_prune`` and the writer's automatic pruning, in short batches."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

import collector
from collector import hook, retention, runtime
from collector.models import CollectorHealth, Event, ReceiverCall, ReceiverStat, SignalCount
from tests.reliability.conftest import monitor, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime.now(tz=UTC).replace(microsecond=0)
_ids = itertools.count(9_000_000_000)


def ours() -> Any:
    """Return the events these tests stored."""
    return Event.objects.filter(signal="app.sig")


def store(n: int, *, age: timedelta, calls: int = 2) -> list[int]:
    """Store ``n`` events of the given age, each with receiver calls, and their rollups."""
    when = NOW - age
    minute = when.replace(second=0)
    ids = [next(_ids) for _ in range(n)]
    Event.objects.bulk_create(
        Event(id=i, signal="app.sig", sender="app.S", method="send", timestamp=when,
              duration_ns=1, receiver_count=calls)
        for i in ids
    )  # fmt: skip
    ReceiverCall.objects.bulk_create(
        ReceiverCall(event_id=i, index=c, receiver="app.r", duration_ns=1, signal="app.sig",
                     sender="app.S", timestamp=when)
        for i in ids for c in range(calls)
    )  # fmt: skip
    ReceiverStat.objects.update_or_create(
        minute=minute, signal="app.sig", sender="app.S", receiver="app.r", bucket=1,
        defaults={"calls": n * calls},
    )  # fmt: skip
    SignalCount.objects.update_or_create(minute=minute, signal="app.sig", defaults={"events": n})
    return ids


@pytest.fixture(autouse=True)
def quiet() -> Any:
    """Empty store and no recording of the tests' own writes."""
    collector.flush(10)
    wait_for(lambda: runtime.backlog() == 0, timeout=15)  # nothing of earlier tests still coming
    token = hook.muted.set(True)
    for model in (ReceiverCall, Event, ReceiverStat, SignalCount, CollectorHealth):
        model.objects.all().delete()
    for name in ("ReceiverRollup", "SignalRollup", "FailureRollup"):
        retention._model(name).objects.all().delete()
    yield
    hook.muted.reset(token)


def test_prune_by_age_deletes_events_calls_and_rollups_in_batches() -> None:
    old = store(45, age=timedelta(days=10))
    young = store(5, age=timedelta(days=1))
    with CaptureQueriesContext(connection) as queries:
        result = retention.prune(max_age_days=7, batch_size=10, now=NOW)
    assert result.complete
    assert result.deleted == {"Event": 45, "ReceiverStat": 1, "SignalCount": 1}
    assert set(ours().values_list("id", flat=True)) == set(young)
    assert ReceiverCall.objects.filter(event_id__in=old).count() == 0
    assert ReceiverCall.objects.count() == 10
    assert ReceiverStat.objects.count() == SignalCount.objects.count() == 1
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    event_deletes = [sql for sql in deletes if '"signals_collector_event"' in sql]
    assert len(event_deletes) == 5  # 45 events in batches of at most 10
    assert [sql.split(" IN (")[1].count(",") + 1 for sql in event_deletes] == [10, 10, 10, 10, 5]


def test_prune_by_count_keeps_the_newest() -> None:
    store(30, age=timedelta(hours=3))
    newest = store(20, age=timedelta(hours=1))
    result = retention.prune(max_events=20, batch_size=7, now=NOW)
    assert result.deleted == {"Event": 30}
    assert set(ours().values_list("id", flat=True)) == set(newest)
    assert ReceiverCall.objects.count() == 40


def test_a_time_budget_stops_early_and_the_next_round_finishes() -> None:
    store(40, age=timedelta(days=30))
    first = retention.prune(max_age_days=7, batch_size=5, time_budget=0.0, now=NOW)
    assert not first.complete
    rest = retention.prune(max_age_days=7, batch_size=5, now=NOW)
    assert rest.complete
    assert first.total + rest.deleted.get("Event", 0) >= 40 and ours().count() == 0


def test_the_command_prints_progress_and_a_summary() -> None:
    store(25, age=timedelta(days=9))
    store(3, age=timedelta(hours=1))
    out = io.StringIO()
    call_command(
        "signals_prune", "--max-age-days", "7", "--batch-size", "10", "-v", "2", stdout=out
    )
    text = out.getvalue()
    assert "Pruning events before" in text
    assert "Event: deleted 10 (total 10)" in text and "Event: deleted 5 (total 25)" in text
    assert "Pruned 27 rows: Event 25, ReceiverStat 1, SignalCount 1." in text
    assert ours().count() == 3


def test_the_command_dry_run_deletes_nothing_and_bad_options_fail() -> None:
    store(5, age=timedelta(days=9))
    out = io.StringIO()
    call_command("signals_prune", "--dry-run", stdout=out)
    assert "Dry run" in out.getvalue() and ours().count() == 5
    with pytest.raises(CommandError):
        call_command("signals_prune", "--batch-size", "0")
    with pytest.raises(CommandError):
        call_command("signals_prune", "--max-events", "-1")


def test_the_writer_prunes_automatically() -> None:
    store(12, age=timedelta(days=60))
    kept = store(4, age=timedelta(minutes=5))
    with monitor(PRUNE_INTERVAL=600, MAX_AGE_DAYS=30, FLUSH_INTERVAL=0.05):
        retention._next_at = 0.0  # due now
        wait_for(lambda: ours().count() == 4, timeout=10, what=lambda: str(runtime.snapshot()))
    assert set(ours().values_list("id", flat=True)) == set(kept)
    assert retention._next_at is not None and retention._next_at > 0


def test_automatic_pruning_can_be_turned_off() -> None:
    store(3, age=timedelta(days=60))
    with monitor(PRUNE_INTERVAL=0, MAX_AGE_DAYS=30, FLUSH_INTERVAL=0.05):
        # Due at once, set only while pruning is off: the writer thread must not prune under
        # the default settings in between (it did, now and then).
        retention._next_at = 0.0
        try:
            assert retention.maybe_prune() is None
            collector.flush(2)
            assert ours().count() == 3
        finally:
            retention._next_at = None


def test_an_unfinished_prune_goes_on_with_its_cutoffs() -> None:
    store(30, age=timedelta(days=9))
    first = retention.prune(max_age_days=7, max_events=10, batch_size=5, time_budget=0, now=NOW)
    assert not first.complete and first.limits[0] is not None and first.limits[1] is not None
    with CaptureQueriesContext(connection) as queries:
        rest = retention.prune(batch_size=5, limits=first.limits)
    assert rest.complete and ours().count() == 0
    assert not any("OFFSET" in q["sql"] for q in queries.captured_queries)  # no new count scan


def test_prune_by_age_drops_rollup_slots_only_once_wholly_old() -> None:
    from collector import rollups
    from collector.models import FailureRollup, ReceiverRollup, SignalRollup

    cutoff = NOW - timedelta(days=7)
    for age in (timedelta(days=10), timedelta(days=7, minutes=1), timedelta(days=1)):
        minute = (NOW - age).replace(second=0, microsecond=0)
        ReceiverStat.objects.create(minute=minute, signal="app.sig", sender="app.S",
                                    receiver="app.r", bucket=1, calls=1)  # fmt: skip
        SignalCount.objects.create(minute=minute, signal="app.sig", events=1)
    rollups.rebuild()
    before = set(ReceiverRollup.objects.values_list("grain", "start"))
    result = retention.prune(max_age_days=7, now=NOW)
    assert result.complete and result.deleted["ReceiverRollup"] > 0
    kept = set(ReceiverRollup.objects.values_list("grain", "start"))
    assert kept == {(g, s) for g, s in before if s + timedelta(seconds=g) > cutoff}
    assert set(SignalRollup.objects.values_list("grain", "start")) == kept
    holding = (cutoff - timedelta(minutes=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if holding == cutoff.replace(hour=0, minute=0, second=0, microsecond=0):
        assert (86400, holding) in kept  # the day holding the cutoff stays whole
    assert not FailureRollup.objects.exists()
