"""The live feed's per-client state: filters, pause, batching, bounded rows and skip counts.

Pure Python (no I/O) so it can be tested without a websocket; the consumer drives it.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

__all__ = ["FILTER_KEYS", "Frame", "FeedFilters", "FeedState", "SharedEvent", "feed_row"]

FILTER_KEYS = ("signal", "sender", "receiver", "outcome", "host", "pid")
OUTCOMES = ("", "ok", "error")
MAX_TEXT = 300
MAX_PID = 2**31 - 1
MAX_MESSAGE = 300
MAX_KWARGS_TEXT = 800


@dataclass(frozen=True)
class FeedFilters:
    """What a client wants to see: exact signal, sender/receiver substrings, outcome, and the
    process it came from (exact host name, process id)."""

    signal: str = ""
    sender: str = ""
    receiver: str = ""
    outcome: str = ""
    host: str = ""
    pid: str = ""

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> tuple[FeedFilters, list[str]]:
        """Return the valid filters in ``data`` and a message per invalid value (ignored)."""
        values: dict[str, str] = {}
        errors: list[str] = []
        for key in FILTER_KEYS:
            value, error = _clean(key, data.get(key))
            if error:
                errors.append(error)
            else:
                values[key] = value
        return cls(**values), errors

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Return True if the live event dict passes every filter."""
        if self.signal and str(event.get("signal", "")) != self.signal:
            return False
        if self.sender and self.sender.casefold() not in str(event.get("sender", "")).casefold():
            return False
        failed = bool(event.get("failure_count"))
        if (self.outcome == "error" and not failed) or (self.outcome == "ok" and failed):
            return False
        if not self._process_matches(event):
            return False
        if self.receiver:
            needle = self.receiver.casefold()
            calls = event.get("calls") or []
            return any(
                needle in str(call.get("receiver", "")).casefold()
                for call in calls
                if isinstance(call, Mapping)
            )
        return True

    def _process_matches(self, event: Mapping[str, Any]) -> bool:
        """Return True if the event came from the chosen host and process id (when set)."""
        if self.host and str(event.get("host", "")) != self.host:
            return False
        return not self.pid or str(event.get("pid", "")) == self.pid

    def as_dict(self) -> dict[str, str]:
        """Return the filters that are set."""
        return {key: value for key, value in asdict(self).items() if value}

    def querystring(self) -> str:
        """Return the filters as a URL query string (without "?")."""
        return urlencode(self.as_dict())

    def __bool__(self) -> bool:
        """True when any filter is set."""
        return bool(self.as_dict())


def _clean(key: str, raw: Any) -> tuple[str, str]:
    """Return (value, "") for a valid filter value, or ("", message)."""
    if raw is None:
        return "", ""
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        raw = raw[-1] if raw else ""
    if not isinstance(raw, str):
        return "", f"Ignored {key} filter: expected text, got {type(raw).__name__}."
    value = raw.strip()
    if len(value) > MAX_TEXT:
        return "", f"Ignored {key} filter: longer than {MAX_TEXT} characters."
    if "\x00" in value:
        return "", f"Ignored {key} filter: contains a NUL character."
    if key == "outcome" and value not in OUTCOMES:
        return "", f"Ignored outcome filter {value[:40]!r}: use ok or error."
    if key == "pid" and value:
        if not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_PID):
            return "", f"Ignored pid filter {value[:40]!r}: use a process id (a positive number)."
        value = str(int(value))
    return value, ""


class SharedEvent(dict[str, Any]):
    """A live event handed to every consumer of the process as the same object, never changed.

    Its row (the template context, which also caches the row's rendered HTML) is built by the
    first consumer that shows it and reused by the others.
    """

    __slots__ = ("row",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Copy the event; no row yet."""
        super().__init__(*args, **kwargs)
        self.row: dict[str, Any] | None = None


def feed_row(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the template context of one feed row, or None for an event without a valid id.

    For a ``SharedEvent`` the row is built once and the same dict is returned every time.
    """
    if isinstance(event, SharedEvent):
        if event.row is None:
            event.row = _build_row(event)
        return event.row
    return _build_row(event)


def _build_row(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """Build the template context of one feed row (see ``feed_row``)."""
    try:
        event_id = int(event["id"])
        when = datetime.fromtimestamp(float(event.get("timestamp") or 0), tz=timezone.utc)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None
    calls = [_call_row(call) for call in event.get("calls") or [] if isinstance(call, Mapping)]
    failures = int(event.get("failure_count") or 0)
    receivers = int(event.get("receiver_count") or 0)
    signal = str(event.get("signal", ""))
    return {
        "id": event_id,
        "time": when,
        "ts_ms": round(when.timestamp() * 1000, 3),
        "signal": signal,
        "signal_short": signal.rsplit(".", 1)[-1],
        "sender": str(event.get("sender", "")),
        "method": str(event.get("method", "")),
        "receiver_count": receivers,
        "failure_count": failures,
        "duration_ns": _int(event.get("duration_ns")),
        "outcome": "error" if failures else ("ok" if receivers else "unheard"),
        "calls": calls,
        "kwargs_text": _kwargs_text(event.get("kwargs")),
        "request_path": str(event.get("request_path") or ""),
        "origin": f"{event.get('host', '')}:{event.get('pid', '')}",
        "host": str(event.get("host", "")),
        "pid": str(event.get("pid", "")),
        "parent_id": event.get("parent_id"),
    }


def _call_row(call: Mapping[str, Any]) -> dict[str, Any]:
    """Return the template context of one receiver call (no traceback in the feed)."""
    message = str(call.get("exc_message") or "")
    return {
        "index": call.get("index"),
        "receiver": str(call.get("receiver", "")),
        "is_async": bool(call.get("is_async")),
        "duration_ns": _int(call.get("duration_ns")),
        "outcome": "error" if call.get("outcome") == "error" else "ok",
        "exc_type": str(call.get("exc_type") or ""),
        "exc_message": message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…",
    }


def _kwargs_text(kwargs: Any) -> str:
    """Return captured arguments as compact JSON, capped."""
    if not kwargs:
        return ""
    try:
        text = json.dumps(kwargs, default=str, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(kwargs)
    return text if len(text) <= MAX_KWARGS_TEXT else text[:MAX_KWARGS_TEXT] + "…"


def _int(value: Any) -> int:
    """Return value as an int, 0 when it is not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@dataclass
class Frame:
    """What one websocket message must change on the page."""

    rows: list[dict[str, Any]] = field(default_factory=list)  # newest first
    evicted: list[int] = field(default_factory=list)
    reset: bool = False


class FeedState:
    """Buffers matching events between frames and remembers which rows the page holds."""

    def __init__(
        self,
        filters: FeedFilters,
        *,
        max_rows: int = 200,
        per_frame: int = 50,
        max_pending: int = 500,
        rows_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start with an empty page.

        ``rows_per_second`` caps the rows sent over time as well as per frame (a token bucket
        holding up to ``per_frame`` rows): a burst after a quiet spell is shown whole, a sustained
        stream at that rate; what goes beyond either cap is counted as skipped.
        """
        self.max_rows = max_rows
        self.per_frame = min(per_frame, max_rows)
        self.max_pending = max(max_pending, self.per_frame)
        self.rows_per_second = rows_per_second
        self.clock = clock
        self.paused = False
        self.set_filters(filters)

    def set_filters(self, filters: FeedFilters) -> None:
        """Switch filters: the page is cleared and every counter restarts."""
        self.filters = filters
        self.filtering = bool(filters)  # with no filter every event matches: skip the checks
        self.pending: deque[dict[str, Any]] = deque()
        self.shown: deque[int] = deque()
        self.shown_ids: set[int] = set()
        self.matched = 0
        self.sent = 0
        self.skipped = 0
        self.skipped_paused = 0
        self.skipped_upstream = 0
        self.needs_reset = True
        self.status_dirty = True
        self.allowance = float(self.per_frame)  # a new page may show a whole frame at once
        self.refilled = self.clock()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume; events arriving while paused are only counted."""
        if paused and not self.paused:
            self.skipped += len(self.pending)
            self.pending.clear()
        self.paused = paused
        self.status_dirty = True

    def add_batch(self, message: Mapping[str, Any]) -> None:
        """Take one group message: keep matching events, count what cannot be shown."""
        upstream = message.get("skipped")
        if isinstance(upstream, int) and upstream > 0:
            self.skipped_upstream += upstream
            self.status_dirty = True
        events = message.get("events")
        filtering = self.filtering
        for event in events if isinstance(events, list) else []:
            if isinstance(event, Mapping) and (not filtering or self.filters.matches(event)):
                self._queue(event)

    def add_backfill(self, events: list[dict[str, Any]]) -> None:
        """Queue stored events (oldest first) to be shown, without counting them as live."""
        self.pending.extendleft(reversed(events[-self.per_frame :]))

    def _queue(self, event: Mapping[str, Any]) -> None:
        """Queue one matching event, dropping the oldest queued one when full."""
        self.matched += 1
        self.status_dirty = True
        if self.paused:
            self.skipped_paused += 1
            return
        if len(self.pending) >= self.max_pending:
            self.pending.popleft()
            self.skipped += 1
        self.pending.append(event if isinstance(event, SharedEvent) else dict(event))

    def take_frame(self) -> Frame | None:
        """Return the next frame (at most ``per_frame`` rows), or None when nothing changed."""
        if not (self.pending or self.status_dirty or self.needs_reset):
            return None
        frame = Frame(reset=self.needs_reset)
        if frame.reset:
            self.shown.clear()
            self.shown_ids.clear()
        batch = list(self.pending)
        self.pending.clear()
        limit = self._row_limit()
        if len(batch) > limit:
            self.skipped += len(batch) - limit
            batch = batch[len(batch) - limit :]
        seen = set(self.shown_ids)
        for event in reversed(batch):
            row = feed_row(event)
            if row is not None and row["id"] not in seen:
                seen.add(row["id"])
                frame.rows.append(row)
        self.allowance -= len(frame.rows)
        self._remember([row["id"] for row in reversed(frame.rows)], frame)
        self.needs_reset = False
        self.status_dirty = False
        return frame

    def _row_limit(self) -> int:
        """Return how many rows this frame may hold (the per-frame and the per-second caps)."""
        if self.rows_per_second is None:
            return self.per_frame
        now = self.clock()
        refill = (now - self.refilled) * self.rows_per_second
        self.allowance = min(float(self.per_frame), self.allowance + refill)
        self.refilled = now
        return max(0, min(self.per_frame, int(self.allowance)))

    def _remember(self, ids: list[int], frame: Frame) -> None:
        """Record the new rows (oldest first) and evict the oldest beyond ``max_rows``."""
        for event_id in ids:
            self.shown.append(event_id)
            self.shown_ids.add(event_id)
            self.sent += 1
        while len(self.shown) > self.max_rows:
            old = self.shown.popleft()
            self.shown_ids.discard(old)
            if old not in ids:
                frame.evicted.append(old)

    def drop_rows(self, frame: Frame, keep: int) -> None:
        """Shrink an oversized frame to its ``keep`` newest rows, counting the rest as skipped."""
        dropped = frame.rows[keep:]
        frame.rows = frame.rows[:keep]
        for row in dropped:
            self.shown_ids.discard(row["id"])
            if row["id"] in self.shown:
                self.shown.remove(row["id"])
        self.skipped += len(dropped)
        self.sent -= len(dropped)

    def status(self) -> dict[str, Any]:
        """Return the counters shown in the status bar."""
        return {
            "paused": self.paused,
            "rows": len(self.shown),
            "matched": self.matched,
            "skipped": self.skipped,
            "skipped_paused": self.skipped_paused,
            "skipped_upstream": self.skipped_upstream,
            "filters": self.filters.as_dict(),
        }
