"""Each event's receiver calls, stored as compact JSON on the event row (``Event.calls``).

One row per event instead of one per call more than halves what the writer inserts and the index
entries it maintains; only failed calls also get a ``ReceiverCall`` row, for their traceback,
location and the failure pages. The text is a JSON array with one array per call, in response
order: ``[index, receiver, duration_ns, is_async]`` for a call that returned, and
``[index, receiver, duration_ns, is_async, exc_type, message]`` (message capped) for one that
raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["StoredCall", "decode", "encode", "MESSAGE_CHARS"]

MESSAGE_CHARS = 200

_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def encode(calls: list[dict[str, Any]]) -> str:
    """Return the JSON text stored for an event's call dicts."""
    if not calls:
        return "[]"
    rows: list[list[Any]] = []
    for call in calls:
        row = [call["index"], call["receiver"][:300], call["duration_ns"], bool(call["is_async"])]
        if call["outcome"] != "ok":
            row += [call["exc_type"][:200] or "Exception", call["exc_message"][:MESSAGE_CHARS]]
        rows.append(row)
    return _encoder.encode(rows)


@dataclass(slots=True)
class StoredCall:
    """One receiver call read back from an event row (the fields templates and the feed use)."""

    index: int
    receiver: str
    duration_ns: int
    is_async: bool
    outcome: str = "ok"
    exc_type: str = ""
    exc_message: str = ""
    traceback: str = ""
    location: str = ""
    pk: int | None = None  # the ReceiverCall row of a failed call, once attached

    def as_dict(self) -> dict[str, Any]:
        """Return the call in the shape of a live event dict's call."""
        return {
            "index": self.index, "receiver": self.receiver, "is_async": self.is_async,
            "duration_ns": self.duration_ns, "outcome": self.outcome, "exc_type": self.exc_type,
            "exc_message": self.exc_message, "traceback": self.traceback, "location": self.location,
        }  # fmt: skip


def decode(text: str | None) -> list[StoredCall]:
    """Return the calls stored in ``Event.calls`` (an empty list for missing or bad text)."""
    if not text or text == "[]":
        return []
    try:
        rows = json.loads(text)
    except (TypeError, ValueError):
        return []
    out: list[StoredCall] = []
    for row in rows if isinstance(rows, list) else ():
        try:
            call = StoredCall(int(row[0]), str(row[1]), int(row[2]), bool(row[3]))
            if len(row) > 4:
                call.outcome, call.exc_type, call.exc_message = "error", str(row[4]), str(row[5])
        except (TypeError, ValueError, IndexError):
            continue
        out.append(call)
    return out
