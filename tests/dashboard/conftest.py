"""Fixtures for dashboard tests: the hook off (tests write the store directly) and data builders."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

import collector
from collector import rollups
from collector.calls import encode as encode_calls
from collector.models import CollectorHealth, Event, ReceiverCall, ReceiverStat, SignalCount
from collector.stats import bucket_of
from dashboard.selectors import failure_location

POST_SAVE = "django.db.models.signals.post_save"
ORDER_PLACED = "demo.signals.order_placed"
_ids = itertools.count(1_000)

Call = tuple[str, int] | tuple[str, int, str, str, str]


@pytest.fixture(autouse=True)
def hook_off() -> Iterator[None]:
    """Keep the collector from recording the tests' own writes into the store they inspect."""
    collector.flush(10)
    collector.uninstall()
    yield
    collector.install()


@pytest.fixture
def empty_store(db: None) -> None:
    """Start from an empty store (the test database's migrate run recorded signals too)."""
    for model in (Event, ReceiverCall, ReceiverStat, SignalCount, CollectorHealth):
        model.objects.all().delete()
    rollups.rebuild()


def traceback_text(
    function: str = "charge",
    path: str = "/app/demo/receivers.py",
    line: int = 42,
    message: str = "card declined",
) -> str:
    """Return a formatted traceback whose innermost frame is ``path:line in function``."""
    return (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3/site-packages/django/dispatch/dispatcher.py", line 189, in send\n'
        "    response = receiver(signal=self, sender=sender, **named)\n"
        f'  File "{path}", line {line}, in {function}\n'
        "    raise PaymentError(message)\n"
        f"demo.exceptions.PaymentError: {message}\n"
    )


def make_event(
    *,
    signal: str = ORDER_PLACED,
    sender: str = "demo.Order",
    calls: Sequence[Call] = (("demo.receivers.on_order", 1_500_000),),
    when: datetime | None = None,
    parent: tuple[Event, int] | None = None,
    kwargs: dict[str, Any] | None = None,
    request_path: str = "",
    event_id: int | None = None,
) -> Event:
    """Store one event with its calls. A call is (receiver, ns) or (receiver, ns, exc_type,
    message, traceback) for a failure."""
    when = when or timezone.now()
    failures = sum(len(call) > 2 for call in calls)
    call_dicts = [
        {
            "index": index, "receiver": call[0], "duration_ns": call[1], "is_async": False,
            "outcome": "error" if len(call) > 2 else "ok",
            "exc_type": call[2] if len(call) > 2 else "",  # type: ignore[misc]
            "exc_message": call[3] if len(call) > 2 else "",  # type: ignore[misc]
        }
        for index, call in enumerate(calls)
    ]  # fmt: skip
    event = Event.objects.create(
        id=event_id if event_id is not None else next(_ids),
        signal=signal,
        sender=sender,
        method="send",
        timestamp=when,
        duration_ns=sum(call[1] for call in calls) + 1_000,
        receiver_count=len(calls),
        failure_count=failures,
        parent_id=parent[0].pk if parent else None,
        parent_call=parent[1] if parent else None,
        kwargs=kwargs if kwargs is not None else {"created": True},
        host="test-host",
        pid=1,
        request_path=request_path,
        calls_json=encode_calls(call_dicts),
    )
    for index, call in enumerate(calls):
        failed = len(call) > 2
        if not failed:  # as the writer: calls that returned live only in calls_json
            continue
        ReceiverCall.objects.create(
            event=event,
            index=index,
            receiver=call[0],
            duration_ns=call[1],
            outcome="error" if failed else "ok",
            exc_type=call[2] if failed else "",  # type: ignore[misc]
            exc_message=call[3] if failed else "",  # type: ignore[misc]
            traceback=call[4] if failed else "",  # type: ignore[misc]
            location=failure_location(call[4]) if failed else "",  # type: ignore[misc]
            signal=signal,
            sender=sender,
            timestamp=when,
        )
    rollups.rebuild()  # the slot rollups the writer keeps beside the stored calls
    return event


def make_stats(
    receiver: str,
    durations: Sequence[int],
    *,
    signal: str = ORDER_PLACED,
    sender: str = "demo.Order",
    failures: int = 0,
    minute: datetime | None = None,
) -> None:
    """Store per-minute rollup rows for ``durations`` (ns) as the collector's writer would."""
    minute = (minute or timezone.now()).replace(second=0, microsecond=0)
    by_bucket: dict[int, list[int]] = {}
    for ns in durations:
        by_bucket.setdefault(bucket_of(ns), []).append(ns)
    for i, (bucket, values) in enumerate(sorted(by_bucket.items())):
        ReceiverStat.objects.create(
            minute=minute,
            signal=signal,
            sender=sender,
            receiver=receiver,
            bucket=bucket,
            calls=len(values),
            failures=failures if i == 0 else 0,
            total_ns=sum(values),
            max_ns=max(values),
        )
    rollups.rebuild()


def make_counts(signal: str, per_minute: Sequence[int], *, end: datetime | None = None) -> None:
    """Store SignalCount rows for consecutive minutes ending at ``end`` (oldest first)."""
    end = (end or timezone.now()).replace(second=0, microsecond=0)
    for offset, events in enumerate(reversed(per_minute)):
        SignalCount.objects.create(
            minute=end - timedelta(minutes=offset), signal=signal, events=events
        )
    rollups.rebuild()
