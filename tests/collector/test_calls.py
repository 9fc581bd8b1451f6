"""Calls stored on the event row (calls_json), failed calls also as ReceiverCall rows."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.dispatch import Signal
from django.utils import timezone

import collector
from collector.calls import StoredCall, decode, encode
from collector.models import Event, ReceiverCall
from dashboard import selectors

pytestmark = pytest.mark.django_db(transaction=True)

charged = Signal()


def first(sender: Any, **kwargs: Any) -> str:
    """Returns."""
    return "one"


def broken(sender: Any, **kwargs: Any) -> None:
    """Raises."""
    raise LookupError("no such card")


async def third(sender: Any, **kwargs: Any) -> str:
    """An async receiver."""
    return "three"


def test_every_call_on_the_row_and_a_row_only_for_the_failure() -> None:
    """calls_json keeps response order and outcomes; the failure alone gets a ReceiverCall row."""
    for receiver in (first, broken, third):
        charged.connect(receiver)
    try:
        collector.install()
        charged.send_robust(sender="calls-test", amount=3)
        assert collector.flush(10)
    finally:
        for receiver in (first, broken, third):
            charged.disconnect(receiver)
    event = Event.objects.get(sender="calls-test")
    calls = decode(event.calls_json)
    assert [(c.index, c.receiver.rsplit(".", 1)[-1], c.outcome, c.is_async) for c in calls] == [
        (0, "first", "ok", False), (1, "broken", "error", False), (2, "third", "ok", True),
    ]  # fmt: skip
    assert calls[1].exc_type.endswith("LookupError") and calls[1].exc_message == "no such card"
    rows = list(ReceiverCall.objects.filter(event_id=event.pk))
    assert len(rows) == 1 and rows[0].index == 1 and "no such card" in rows[0].traceback
    tree = selectors.event_tree(event_id=event.pk)
    assert tree is not None
    assert [c.pk for c in tree.calls] == [None, rows[0].pk, None]


def test_encode_decode_round_trip_and_bad_text() -> None:
    """What encode writes decode reads back; damaged text reads as no calls, never an error."""
    dicts = [
        {"index": 0, "receiver": "a.b", "duration_ns": 5, "is_async": False, "outcome": "ok",
         "exc_type": "", "exc_message": ""},
        {"index": 1, "receiver": "a.c\u00e9", "duration_ns": 7, "is_async": True,
         "outcome": "error", "exc_type": "ValueError", "exc_message": "x" * 500},
    ]  # fmt: skip
    calls = decode(encode(dicts))
    assert calls[0] == StoredCall(0, "a.b", 5, False)
    failed = calls[1]
    assert (failed.outcome, failed.exc_type, len(failed.exc_message)) == ("error", "ValueError", 200)  # noqa: E501
    for bad in ("", "not json", "{}", "[[1]]", '[["x", 1, 2, 3]]', None):
        assert decode(bad) == []


def test_migration_moves_stored_calls_onto_their_events() -> None:
    """Rows written before 0004 (one ReceiverCall per call) become calls_json; ok rows go."""
    migration = importlib.import_module("collector.migrations.0004_event_calls_json")
    when = timezone.now()
    event = Event.objects.create(
        id=77_001, signal="app.sig", sender="app.S", method="send", timestamp=when,
        duration_ns=10, receiver_count=2, failure_count=1, calls_json="[]",
    )  # fmt: skip
    for index, outcome in ((0, "ok"), (1, "error")):
        ReceiverCall.objects.create(
            event=event, index=index, receiver=f"app.r{index}", duration_ns=4, outcome=outcome,
            exc_type="E" if outcome == "error" else "", exc_message="boom" if index else "",
            signal="app.sig", sender="app.S", timestamp=when,
        )  # fmt: skip
    before = [(c.index, c.receiver, c.outcome) for c in selectors.stored_calls(event)]

    class Editor:
        """What RunPython hands over: the connection."""

        connection = connection

    migration.calls_to_events(apps, Editor())
    event.refresh_from_db()
    after = [(c.index, c.receiver, c.outcome) for c in decode(event.calls_json)]
    assert after == before == [(0, "app.r0", "ok"), (1, "app.r1", "error")]
    assert list(ReceiverCall.objects.filter(event_id=77_001).values_list("index", flat=True)) == [1]
    migration.events_to_calls(apps, Editor())
    assert ReceiverCall.objects.filter(event_id=77_001).count() == 2
