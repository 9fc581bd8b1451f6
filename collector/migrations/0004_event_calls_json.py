"""Every call of an event as JSON on the event row; ReceiverCall keeps only failed calls."""

from __future__ import annotations

import json
from typing import Any

from django.db import migrations, models

CHUNK = 2_000


def _encode(rows: list[tuple[Any, ...]]) -> str:
    """Encode (index, receiver, duration_ns, is_async, outcome, exc_type, message) rows."""
    out = []
    for index, receiver, took, is_async, outcome, exc_type, message in rows:
        row: list[Any] = [index, receiver, took, bool(is_async)]
        if outcome != "ok":
            row += [exc_type or "Exception", (message or "")[:200]]
        out.append(row)
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def calls_to_events(apps: Any, schema_editor: Any) -> None:
    """Fill calls_json from the stored calls, then drop the rows of calls that returned."""
    Event = apps.get_model("signals_collector", "Event")
    ReceiverCall = apps.get_model("signals_collector", "ReceiverCall")
    alias = schema_editor.connection.alias
    events = Event.objects.using(alias)
    calls = ReceiverCall.objects.using(alias)
    last = None
    while True:
        page = events.order_by("pk").filter(receiver_count__gt=0)
        if last is not None:
            page = page.filter(pk__gt=last)
        ids = list(page.values_list("pk", flat=True)[:CHUNK])
        if not ids:
            break
        grouped: dict[int, list[tuple[Any, ...]]] = {i: [] for i in ids}
        rows = calls.filter(event_id__in=ids).order_by("event_id", "index").values_list(
            "event_id", "index", "receiver", "duration_ns", "is_async", "outcome", "exc_type",
            "exc_message",
        )  # fmt: skip
        for event_id, *rest in rows:
            grouped[event_id].append(tuple(rest))
        for event_id, found in grouped.items():
            if found:
                events.filter(pk=event_id).update(calls_json=_encode(found))
        last = ids[-1]
    calls.filter(outcome="ok").delete()


def events_to_calls(apps: Any, schema_editor: Any) -> None:
    """Recreate the rows of calls that returned from calls_json (the reverse migration)."""
    Event = apps.get_model("signals_collector", "Event")
    ReceiverCall = apps.get_model("signals_collector", "ReceiverCall")
    alias = schema_editor.connection.alias
    batch = []
    for event in Event.objects.using(alias).exclude(calls_json="[]").iterator(chunk_size=CHUNK):
        for row in json.loads(event.calls_json):
            if len(row) > 4:
                continue  # failed calls kept their rows
            batch.append(ReceiverCall(
                event_id=event.pk, index=row[0], receiver=row[1], duration_ns=row[2],
                is_async=row[3], outcome="ok", signal=event.signal, sender=event.sender,
                timestamp=event.timestamp,
            ))  # fmt: skip
            if len(batch) >= CHUNK:
                ReceiverCall.objects.using(alias).bulk_create(batch)
                batch = []
    ReceiverCall.objects.using(alias).bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("signals_collector", "0003_rollup_slots_and_failure_indexes")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="calls_json",
            field=models.TextField(blank=True, default="[]"),
        ),
        migrations.RunPython(calls_to_events, events_to_calls),
    ]
