"""Every query the dashboard makes. Timings, counts and failure groups come from the rollups
(per-minute rows at a window's edges, 10-minute, hour and day slots for the rest), never from
scanning calls."""

from __future__ import annotations

import json
import re
import sys
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.db import connections
from django.db.models import Count, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Left, Right
from django.dispatch import Signal
from django.utils import timezone

from collector.calls import StoredCall
from collector.calls import decode as decode_calls
from collector.models import (
    BUCKETS_PER_ROW,
    CollectorHealth,
    Event,
    FailureRollup,
    Grain,
    Outcome,
    ProcessRollup,
    ReceiverCall,
    ReceiverRollup,
    ReceiverStat,
    SignalCount,
    SignalRollup,
)
from collector.naming import signal_name
from collector.stats import percentile
from dashboard import registry
from dashboard.feed import FeedFilters
from dashboard.windows import MINUTE, Span, window_plan

__all__ = [
    "EventNode",
    "RollupQuery",
    "event_tree",
    "failure_detail",
    "failure_groups",
    "failure_groups_in_window",
    "failure_list",
    "known_hosts",
    "known_signals",
    "live_event_dicts",
    "narrow_to_groups",
    "other_process_event_keys",
    "parse_event_id",
    "process_overview",
    "recent_events",
    "receiver_timings",
    "signal_overview",
]

MAX_EVENT_ID = 2**63 - 1
SPARK_MINUTES = 60
FAILURE_SCAN_LIMIT = 5_000
MAX_HOSTS = 1_000
TRACEBACK_TAIL = 2_000
_FRAME_RE = re.compile(r'File "([^"]+)", line (\d+), in ([^\n]+)')


def parse_event_id(raw: Any) -> int | None:
    """Return ``raw`` as a storable id (a signed 64-bit integer), or None."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= MAX_EVENT_ID else None


def known_signals() -> list[str]:
    """Return the names of signals seen in the store or loaded in this process, sorted.

    Read from the day slots of the signal counts (a few rows per signal and day).
    """
    stored = (
        SignalRollup.objects.filter(grain=Grain.DAY)
        .order_by()
        .values_list("signal", flat=True)
        .distinct()
    )
    return sorted(set(stored) | _loaded_signal_names())


_loaded: tuple[float, int, dict[str, Signal]] | None = None
LOADED_TTL = 10.0  # seconds


def _loaded_signals() -> dict[str, Signal]:
    """Return the signals loaded in this process by name.

    Finding them scans every module (15-40 ms), so the signals found are kept while no module
    was imported since, for at most LOADED_TTL seconds; their receivers are always read live.
    The registry page itself always scans.
    """
    global _loaded
    now, modules = time.monotonic(), len(sys.modules)
    cached = _loaded
    if cached is not None and cached[1] == modules and now - cached[0] < LOADED_TTL:
        return cached[2]
    found = {signal_name(sig): sig for sig, _names in registry._scan_modules().values()}
    _loaded = (now, modules, found)
    return found


def _loaded_signal_names() -> frozenset[str]:
    """Return the names of the signals loaded in this process."""
    return frozenset(_loaded_signals())


def _live_receiver_counts() -> dict[str, int]:
    """Return the number of live receivers per loaded signal (as registry.receiver_counts)."""
    counts = {}
    for name, sig in _loaded_signals().items():
        with sig.lock:
            entries = list(sig.receivers)
        counts[name] = sum(1 for entry in entries if not _dead(entry[1]))
    return counts


def _dead(ref: Any) -> bool:
    """Return True when a weakly held receiver was collected."""
    return isinstance(ref, weakref.ReferenceType) and ref() is None


# ---- timing statistics (rollups) ------------------------------------------------------------


@dataclass(frozen=True)
class RollupQuery:
    """A window (minutes m with start <= m <= end) and the rollup pages' filters."""

    start: datetime | None = None
    end: datetime | None = None
    signal: str = ""
    sender: str = ""  # case-insensitive substring
    receiver: str = ""  # case-insensitive substring
    exc_type: str = ""  # case-insensitive substring (failures only)

    def spans(self, now: datetime | None = None) -> list[Span]:
        """Return the rollup slots that cover the window exactly."""
        return window_plan(self.start, self.end, now=now)

    def edges(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """Return where the window's whole minutes begin and end (None: unbounded)."""
        spans = self.spans(now)
        if not spans:
            return (self.start, self.start)  # an empty window
        return spans[0].first, spans[-1].stop

    def narrow(self, qs: QuerySet[Any], *, exc_type: bool = False) -> QuerySet[Any]:
        """Apply the signal, sender and receiver (and exception type) filters to ``qs``."""
        if self.signal:
            qs = qs.filter(signal=self.signal)
        if self.sender:
            qs = qs.filter(sender__icontains=self.sender)
        if self.receiver:
            qs = qs.filter(receiver__icontains=self.receiver)
        if exc_type and self.exc_type:
            qs = qs.filter(exc_type__icontains=self.exc_type)
        return qs


def _in_span(qs: QuerySet[Any], field_name: str, span: Span) -> QuerySet[Any]:
    """Restrict ``qs`` to rows whose ``field_name`` lies in the span (half-open)."""
    if span.first is not None:
        qs = qs.filter(**{f"{field_name}__gte": span.first})
    if span.stop is not None:
        qs = qs.filter(**{f"{field_name}__lt": span.stop})
    return qs


def _in_slots(qs: QuerySet[Any], spans: list[Span]) -> QuerySet[Any] | None:
    """Restrict a slot rollup to the spans coarser than a minute, in one query (None: none)."""
    condition = Q()
    coarse = [span for span in spans if span.grain != MINUTE]
    for span in coarse:
        part = Q(grain=span.grain)
        if span.first is not None:
            part &= Q(start__gte=span.first)
        if span.stop is not None:
            part &= Q(start__lt=span.stop)
        condition |= part
    return qs.filter(condition) if coarse else None


@dataclass
class _Timing:
    """Accumulates one receiver's (or signal's) rollup rows."""

    calls: int = 0
    failures: int = 0
    total_ns: int = 0
    max_ns: int = 0
    buckets: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    signals: set[str] = field(default_factory=set)
    last_failure: datetime | None = None

    def add(self, row: dict[str, Any], buckets: Iterable[tuple[int, int]]) -> None:
        """Fold in one aggregated row and its (bucket, calls) pairs."""
        self.calls += row["calls"] or 0
        self.failures += row["failures"] or 0
        self.total_ns += row["total_ns"] or 0
        self.max_ns = max(self.max_ns, row["max_ns"] or 0)
        for bucket, calls in buckets:
            if calls:
                self.buckets[bucket] += calls
        last = row.get("last_failure")
        if last is not None and (self.last_failure is None or last > self.last_failure):
            self.last_failure = last

    def summary(self) -> dict[str, Any]:
        """Return calls, failures, mean, percentiles, max and error rate."""
        return {
            "calls": self.calls,
            "failures": self.failures,
            "mean_ns": self.total_ns // self.calls if self.calls else None,
            "p50_ns": percentile(self.buckets, 50),
            "p95_ns": percentile(self.buckets, 95),
            "p99_ns": percentile(self.buckets, 99),
            "max_ns": self.max_ns,
            "error_rate": self.failures / self.calls if self.calls else 0.0,
        }


_SUMS = {
    "calls": Sum("calls"),
    "failures": Sum("failures"),
    "total_ns": Sum("total_ns"),
    "max_ns": Max("max_ns"),
}
_SLOT_BUCKETS = {f"b{i}": Sum(f"b{i}") for i in range(BUCKETS_PER_ROW)}


def _rollup(where: RollupQuery, key: str, now: datetime | None = None) -> dict[str, _Timing]:
    """Aggregate the window's timing rows per ``key`` (receiver or signal).

    Per-minute rows for the edges, slot rows (16 buckets each) for the rest.
    """
    group = (key, "signal") if key != "signal" else ("signal",)
    timings: dict[str, _Timing] = defaultdict(_Timing)
    spans = where.spans(now)
    for span in spans:
        if span.grain != MINUTE:
            continue
        qs = _in_span(where.narrow(ReceiverStat.objects.order_by()), "minute", span)
        # The failed-minute filter is resolved first, while "failures" is still the column.
        rows = (
            qs.values(*group, "bucket")
            .annotate(last_failure=Max("minute", filter=Q(failures__gt=0)))
            .annotate(**_SUMS)
        )
        for row in rows:
            _fold(timings, key, row, [(row["bucket"], row["calls"])])
    slots = _in_slots(where.narrow(ReceiverRollup.objects.order_by()), spans)
    if slots is not None:
        rows = slots.values(*group, "octave").annotate(
            **_SUMS, last_failure=Max("last_failure"), **_SLOT_BUCKETS
        )
        for row in rows:
            base = row["octave"] * BUCKETS_PER_ROW
            pairs = [(base + i, row[f"b{i}"]) for i in range(BUCKETS_PER_ROW)]
            _fold(timings, key, row, pairs)
    return timings


def _fold(
    timings: dict[str, _Timing], key: str, row: dict[str, Any], pairs: list[tuple[int, int]]
) -> None:
    """Add one aggregated row to its receiver's (or signal's) timing."""
    timing = timings[row[key]]
    timing.add(row, pairs)
    timing.signals.add(row["signal"])


def receiver_timings(*, where: RollupQuery, now: datetime | None = None) -> list[dict[str, Any]]:
    """Return one row per receiver: signals, calls, mean, percentiles, max, last failure."""
    return [
        {
            "receiver": name,
            "signals": ", ".join(sorted(timing.signals)),
            "last_failure": timing.last_failure,
            **timing.summary(),
        }
        for name, timing in _rollup(where, "receiver", now).items()
    ]


def _signal_counts(start: datetime | None, now: datetime) -> dict[str, dict[str, int]]:
    """Return events and unheard sends per signal in the window, from the count rollups."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"events": 0, "unheard": 0})
    sums = {"n_events": Sum("events"), "n_unheard": Sum("unheard")}
    spans = window_plan(start, now=now)
    minutes = SignalCount.objects.order_by()
    parts: list[QuerySet[Any] | None] = [
        _in_span(minutes, "minute", span) for span in spans if span.grain == MINUTE
    ]
    parts.append(_in_slots(SignalRollup.objects.order_by(), spans))
    for qs in parts:
        for row in qs.values("signal").annotate(**sums) if qs is not None else ():
            totals[row["signal"]]["events"] += row["n_events"] or 0
            totals[row["signal"]]["unheard"] += row["n_unheard"] or 0
    return totals


def signal_overview(*, start: datetime | None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Return one row per signal: events, receivers, calls, failures, p95, last hour's rate."""
    now = now or timezone.now()
    events = _signal_counts(start, now)
    timings = _rollup(RollupQuery(start=start), "signal", now)
    connected = _live_receiver_counts()
    sparks = _sparklines(now)
    rows = []
    for name in sorted(set(events) | set(timings) | set(connected)):
        summary = timings[name].summary() if name in timings else _Timing().summary()
        rows.append(
            {
                "signal": name,
                "events": (events.get(name) or {}).get("events") or 0,
                "unheard": (events.get(name) or {}).get("unheard") or 0,
                "receivers": connected.get(name),
                "calls": summary["calls"],
                "failures": summary["failures"],
                "p95_ns": summary["p95_ns"],
                "rate": sparks.get(name, [0] * SPARK_MINUTES),
            }
        )
    return rows


def _sparklines(now: datetime) -> dict[str, list[int]]:
    """Return per-signal event counts for each of the last SPARK_MINUTES minutes, oldest first."""
    end = now.replace(second=0, microsecond=0)
    first = end - timedelta(minutes=SPARK_MINUTES - 1)
    series: dict[str, list[int]] = defaultdict(lambda: [0] * SPARK_MINUTES)
    rows = SignalCount.objects.order_by().filter(
        minute__gte=first, minute__lt=end + timedelta(minutes=1)
    )
    for signal, minute, count in rows.values_list("signal", "minute", "events"):
        index = int((minute - first).total_seconds() // 60)
        if 0 <= index < SPARK_MINUTES:
            series[signal][index] += count
    return series


# ---- failures -------------------------------------------------------------------------------


def failure_location(traceback_text: str) -> str:
    """Return "file:line in function" of the innermost frame of a formatted traceback."""
    frames = _FRAME_RE.findall(traceback_text or "")
    if not frames:
        return ""
    path, line, function = frames[-1]
    return f"{_short_path(path)}:{line} in {function.strip()}"


def _short_path(path: str) -> str:
    """Trim a file path to its last three components."""
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-3:])


def _has_location_field() -> bool:
    """Return True when the collector stores each failure's location itself."""
    return any(f.name == "location" for f in ReceiverCall._meta.get_fields())


def _failure_rows(calls: QuerySet[ReceiverCall], limit: int) -> list[dict[str, Any]]:
    """Fetch the newest failures with just enough text to group them."""
    fields = ["id", "receiver", "exc_type", "timestamp", "signal", "sender"]
    qs = calls.order_by("-timestamp", "-id").annotate(message=Left("exc_message", 200))
    if _has_location_field():
        rows = list(qs.values(*fields, "message", "location")[:limit])
    else:
        rows = list(
            qs.annotate(tail=Right("traceback", TRACEBACK_TAIL)).values(*fields, "message", "tail")[
                :limit
            ]
        )
        for row in rows:
            row["location"] = failure_location(row.pop("tail"))
    return rows


def failure_groups(
    *, calls: QuerySet[ReceiverCall], limit: int = FAILURE_SCAN_LIMIT
) -> tuple[list[dict[str, Any]], bool]:
    """Group the newest ``limit`` failures by receiver, exception type and location.

    Returns the groups, newest first, and whether more failures matched than were scanned.
    """
    rows = _failure_rows(calls, limit + 1)
    truncated = len(rows) > limit
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows[:limit]:
        key = (row["receiver"], row["exc_type"], row["location"])
        group = groups.get(key)
        if group is None:
            groups[key] = group = {
                "receiver": row["receiver"],
                "exc_type": row["exc_type"],
                "location": row["location"],
                "count": 0,
                "first_seen": row["timestamp"],
                "last_seen": row["timestamp"],
                "latest_id": row["id"],
                "message": row["message"],
                "signals": set(),
            }
        group["count"] += 1
        group["first_seen"] = row["timestamp"]  # rows come newest first
        group["signals"].add(row["signal"])
    for group in groups.values():
        group["signals"] = ", ".join(sorted(group["signals"]))
    return list(groups.values()), truncated


def failure_groups_in_window(
    *, where: RollupQuery, now: datetime | None = None, link: bool = True
) -> list[dict[str, Any]]:
    """Group the window's failures by receiver, exception type and location, newest first.

    Complete counts from the failure rollups; the stored failures are read only for the minutes
    at the window's edges. Each group also names its signals and senders (``signal_names``,
    ``sender_names``) so a list of its calls can be narrowed by exact names. Without ``link``
    the newest failure stays an (event id, call index) pair (no lookup of its call id).
    """
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    spans = where.spans(now)
    for span in spans:
        if span.grain != MINUTE:
            continue
        calls = where.narrow(ReceiverCall.objects.filter(outcome=Outcome.ERROR), exc_type=True)
        rows = (
            _in_span(calls, "timestamp", span).order_by()
            .annotate(message=Left("exc_message", 200))
            .values("id", "signal", "sender", "receiver", "exc_type", "location",
                    "timestamp", "message")
        )  # fmt: skip
        for row in rows:
            _merge_failures(groups, row, 1, row["timestamp"], row["timestamp"], row["id"])
    slots = _in_slots(where.narrow(FailureRollup.objects.order_by(), exc_type=True), spans)
    rows = () if slots is None else slots.values(
        "signal", "sender", "receiver", "exc_type", "location", "failures", "first_seen",
        "last_seen", "latest_event", "latest_index", "latest_message",
    )  # fmt: skip
    for row in rows:
        row["message"] = row["latest_message"]
        latest = (row["latest_event"], row["latest_index"])
        _merge_failures(groups, row, row["failures"], row["first_seen"], row["last_seen"], latest)
    if link:  # the newest failure's call id, for the group's link
        _resolve_latest_ids(list(groups.values()))
    for group in groups.values():
        group["signals"] = ", ".join(sorted(group["signal_names"]))
    return sorted(groups.values(), key=lambda g: g["last_seen"], reverse=True)


def _merge_failures(
    groups: dict[tuple[str, str, str], dict[str, Any]],
    row: dict[str, Any],
    count: int,
    first: datetime,
    last: datetime,
    latest: Any,
) -> None:
    """Add ``count`` failures seen between ``first`` and ``last`` to the row's group."""
    key = (row["receiver"], row["exc_type"], row["location"])
    group = groups.get(key)
    if group is None:
        groups[key] = group = {
            "receiver": row["receiver"], "exc_type": row["exc_type"],
            "location": row["location"], "count": 0, "first_seen": first, "last_seen": last,
            "latest_id": latest, "message": row["message"], "signal_names": set(),
            "sender_names": set(),
        }  # fmt: skip
    group["count"] += count
    group["first_seen"] = min(group["first_seen"], first)
    if last >= group["last_seen"]:
        group["last_seen"], group["latest_id"], group["message"] = last, latest, row["message"]
    group["signal_names"].add(row["signal"])
    group["sender_names"].add(row["sender"])


def _resolve_latest_ids(groups: list[dict[str, Any]], chunk: int = 500) -> None:
    """Replace (event id, call index) references by call ids (None when pruned since)."""
    refs = [g["latest_id"] for g in groups if isinstance(g["latest_id"], tuple)]
    found: dict[tuple[int, int], int] = {}
    events = sorted({event_id for event_id, _ in refs})
    for offset in range(0, len(events), chunk):
        calls = ReceiverCall.objects.filter(event_id__in=events[offset : offset + chunk])
        for event_id, index, call_id in calls.order_by().values_list("event_id", "index", "id"):
            found[(event_id, index)] = call_id
    for group in groups:
        if isinstance(group["latest_id"], tuple):
            group["latest_id"] = found.get(group["latest_id"])


def narrow_to_groups(
    calls: QuerySet[ReceiverCall],
    where: RollupQuery,
    groups: list[dict[str, Any]],
    now: datetime | None = None,
) -> QuerySet[ReceiverCall]:
    """Keep the calls the groups counted: the window's whole minutes, and exact names for the
    text filters (from the groups), so the failure indexes serve a "contains" filter."""
    first, stop = where.edges(now)
    if first is not None:
        calls = calls.filter(timestamp__gte=first)
    if stop is not None:
        calls = calls.filter(timestamp__lt=stop)
    if where.receiver:
        calls = calls.filter(receiver__in=sorted({g["receiver"] for g in groups}))
    if where.exc_type:
        calls = calls.filter(exc_type__in=sorted({g["exc_type"] for g in groups}))
    if where.sender:
        calls = calls.filter(sender__in=sorted({n for g in groups for n in g["sender_names"]}))
    return calls


def failure_list(*, calls: QuerySet[ReceiverCall]) -> QuerySet[ReceiverCall]:
    """Return the calls without tracebacks, each with its event's host and pid (origin_*)."""
    event = Event.objects.filter(pk=OuterRef("event_id"))
    return calls.defer("traceback").annotate(
        origin_host=Subquery(event.values("host")[:1]),
        origin_pid=Subquery(event.values("pid")[:1]),
    )


def failure_detail(*, call_id: int) -> dict[str, Any] | None:
    """Return a failed (or any) call with its event, parent chain and recent same-group calls."""
    call = ReceiverCall.objects.filter(pk=call_id).first()
    if call is None:
        return None
    event = Event.objects.filter(pk=call.event_id).first()
    location = getattr(call, "location", None) or failure_location(call.traceback)
    return {
        "call": call,
        "event": event,
        "location": location,
        "chain": event_ancestors(event) if event is not None else [],
        "siblings": _same_group(call, location),
    }


def _same_group(call: ReceiverCall, location: str, limit: int = 20) -> list[dict[str, Any]]:
    """Return recent other failures of the same receiver, exception type and location."""
    candidates = ReceiverCall.objects.filter(
        outcome=Outcome.ERROR, receiver=call.receiver, exc_type=call.exc_type
    ).exclude(pk=call.pk)
    if _has_location_field():  # the group's index: newest first, no sort
        candidates = candidates.filter(location=location)
    rows = _failure_rows(candidates, limit * 5)
    return [row for row in rows if row["location"] == location][:limit]


# ---- events and their causal trees ------------------------------------------------------------


@dataclass
class EventNode:
    """An event, its receiver calls, and the events sent while each call ran."""

    event: Event
    calls: list[StoredCall] = field(default_factory=list)
    children: dict[int | None, list[EventNode]] = field(default_factory=dict)

    def call_rows(self) -> list[tuple[StoredCall, list[EventNode]]]:
        """Return each call with the child events it caused."""
        return [(call, self.children.get(call.index, [])) for call in self.calls]

    def loose_children(self) -> list[EventNode]:
        """Return child events whose parent call is unknown."""
        known = {call.index for call in self.calls}
        return [n for index, nodes in self.children.items() if index not in known for n in nodes]


def event_tree(*, event_id: int, max_depth: int = 8, max_nodes: int = 400) -> EventNode | None:
    """Return the event with its calls and descendants (bounded breadth-first walk)."""
    root_event = Event.objects.filter(pk=event_id).first()
    if root_event is None:
        return None
    root = EventNode(root_event)
    nodes = {root_event.pk: root}
    level = [root_event.pk]
    for _depth in range(max_depth):
        if not level or len(nodes) >= max_nodes:
            break
        children = Event.objects.filter(parent_id__in=level).order_by("timestamp", "id")
        level = []
        for child in children[: max_nodes - len(nodes)]:
            node = nodes[child.pk] = EventNode(child)
            nodes[child.parent_id].children.setdefault(child.parent_call, []).append(node)  # type: ignore[index]
            level.append(child.pk)
    for node in nodes.values():
        node.calls = stored_calls(node.event)
    _attach_failures([node for node in nodes.values() if node.event.failure_count])
    return root


def stored_calls(event: Event) -> list[StoredCall]:
    """Return an event's calls from its row (and, for rows written before migration 0004, which
    kept every call in ReceiverCall, from those rows)."""
    calls = decode_calls(event.calls_json)
    if not calls and event.receiver_count:
        rows = ReceiverCall.objects.filter(event_id=event.pk).order_by("index").defer("traceback")
        calls = [
            StoredCall(
                c.index, c.receiver, c.duration_ns, c.is_async, c.outcome, c.exc_type,
                c.exc_message, "", c.location, c.pk,
            )
            for c in rows
        ]  # fmt: skip
    return calls


def _attach_failures(nodes: list[EventNode]) -> None:
    """Give the failed calls of ``nodes`` their ReceiverCall id (the failure page's link)."""
    if not nodes:
        return
    by_event = {node.event.pk: node for node in nodes}
    rows = ReceiverCall.objects.filter(event_id__in=list(by_event), outcome=Outcome.ERROR)
    for event_id, index, call_id, location in rows.order_by().values_list(
        "event_id", "index", "id", "location"
    ):
        for call in by_event[event_id].calls:
            if call.index == index:
                call.pk, call.location = call_id, location


def event_ancestors(event: Event, max_depth: int = 20) -> list[dict[str, Any]]:
    """Return the chain of parent events (root first), each with the call that sent the child."""
    chain: list[dict[str, Any]] = []
    current = event
    seen = {event.pk}
    while current.parent_id is not None and len(chain) < max_depth:
        parent = Event.objects.filter(pk=current.parent_id).first()
        if parent is None or parent.pk in seen:
            break
        seen.add(parent.pk)
        index = current.parent_call
        call = next((c for c in stored_calls(parent) if c.index == index), None)
        chain.append({"event": parent, "call": call})
        current = parent
    chain.reverse()
    return chain


def recent_events(
    *, filters: FeedFilters, limit: int = 50, scan: int = 5_000, chunk: int = 500
) -> list[dict[str, Any]]:
    """Return the newest events matching ``filters`` as live event dicts, oldest first.

    At most the newest ``scan`` events that pass the other filters are looked at; a receiver
    filter matches the text of each one's ``calls_json`` in SQL (then exactly, per call, in
    ``matches``).
    """
    qs = _feed_queryset(filters)
    if filters.receiver:
        floor = list(qs.values_list("timestamp", flat=True)[scan - 1 : scan])
        needle = json.dumps(filters.receiver, ensure_ascii=False)[1:-1]  # as JSON text holds it
        qs = qs.filter(calls_json__icontains=needle)
        if floor:
            qs = qs.filter(timestamp__gte=floor[0])
    # SQL applies every filter (matches() only re-checks), so read ``limit`` at a time.
    step = max(1, min(chunk, limit))
    found: list[dict[str, Any]] = []
    for offset in range(0, scan, step):
        events = list(qs[offset : offset + step])
        if not events:
            break
        for event_dict in _event_dicts(events):
            if filters.matches(event_dict):
                found.append(event_dict)
                if len(found) >= limit:
                    return found[::-1]
    return found[::-1]


def _feed_queryset(filters: FeedFilters) -> QuerySet[Event]:
    """Return events filtered in SQL by everything but the receiver, newest first."""
    qs = Event.objects.order_by("-timestamp", "-id")
    if filters.signal:
        qs = qs.filter(signal=filters.signal)
    if filters.sender:
        qs = qs.filter(sender__icontains=filters.sender)
    if filters.outcome == "error":
        qs = qs.filter(failure_count__gt=0)
    elif filters.outcome == "ok":
        qs = qs.filter(failure_count=0)
    if filters.host:
        qs = qs.filter(host=filters.host)
    if filters.pid:
        qs = qs.filter(pid=int(filters.pid))
    return qs


def _event_dicts(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Convert stored events (and their calls, without tracebacks) to live event dicts."""
    return [
        {
            "id": e.pk,
            "signal": e.signal,
            "sender": e.sender,
            "method": e.method,
            "timestamp": e.timestamp.timestamp(),
            "duration_ns": e.duration_ns,
            "receiver_count": e.receiver_count,
            "failure_count": e.failure_count,
            "parent_id": e.parent_id,
            "parent_call": e.parent_call,
            "kwargs": e.kwargs,
            "host": e.host,
            "pid": e.pid,
            "request_path": e.request_path,
            "calls": [call.as_dict() for call in stored_calls(e)],
        }
        for e in events
    ]


def live_event_dicts(*, ids: Iterable[int]) -> list[dict[str, Any]]:
    """Return the stored events with these ids as live event dicts, oldest first."""
    return _event_dicts(Event.objects.filter(pk__in=list(ids)).order_by("timestamp", "id"))


def other_process_event_keys(
    *, since: float, host: str, pid: int, limit: int
) -> list[tuple[int, float]]:
    """Return (id, unix time) of events stored after ``since`` by any process but host/pid.

    Newest first, at most ``limit``; reads the timestamp index only as far back as ``since``.
    """
    start = datetime.fromtimestamp(since, tz=dt_timezone.utc)
    rows = (
        Event.objects.filter(timestamp__gt=start)
        .exclude(host=host, pid=pid)
        .order_by("-timestamp", "-id")
        .values_list("id", "timestamp")[:limit]
    )
    return [(event_id, when.timestamp()) for event_id, when in rows]


# ---- processes ------------------------------------------------------------------------------


def known_hosts(*, start: datetime | None = None) -> list[str]:
    """Return the hosts that stored events (since ``start``), sorted.

    A loose index scan (one index seek per host on the events' host index), not a DISTINCT
    over every stored event.
    """
    connection = connections[Event.objects.db]  # the monitor's database (collector.routers)
    table = connection.ops.quote_name(Event._meta.db_table)
    sql = (
        f"WITH RECURSIVE hosts(host) AS (SELECT MIN(host) FROM {table} UNION ALL "
        f"SELECT (SELECT MIN(e.host) FROM {table} e WHERE e.host > hosts.host) FROM hosts "
        "WHERE hosts.host IS NOT NULL) SELECT host FROM hosts WHERE host IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [MAX_HOSTS])
        hosts = [row[0] for row in cursor.fetchall()]
    if start is not None:
        recent = Event.objects.filter(timestamp__gte=start)
        hosts = [host for host in hosts if recent.filter(host=host).exists()]
    return sorted(hosts)


def process_overview(
    *, start: datetime | None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Return one row per process (host, pid) that stored events since ``start``, newest first.

    Each row: first and last event, events, events with a failure (from the per-process
    rollups over the window's whole minutes), and, when the collector reports its health,
    that process's written and dropped counts, restarts and last error.
    """
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    spans = window_plan(start, now=now)
    sums = {"n": Count("id"), "bad": Count("id", filter=Q(failure_count__gt=0)),
            "first": Min("timestamp"), "last": Max("timestamp")}  # fmt: skip
    for span in spans:
        if span.grain == MINUTE:
            events = _in_span(Event.objects.order_by(), "timestamp", span)
            for row in events.values("host", "pid").annotate(**sums):
                _merge_process(rows, row)
    slots = _in_slots(ProcessRollup.objects.order_by(), spans)
    if slots is not None:
        totals = {"n": Sum("events"), "bad": Sum("failed"), "first": Min("first_seen"),
                  "last": Max("last_seen")}  # fmt: skip
        for row in slots.values("host", "pid").annotate(**totals):
            _merge_process(rows, row)
    for health in _latest_health(start):
        key = (health.host, health.pid)
        row = rows.setdefault(
            key,
            {"host": health.host, "pid": health.pid, "events": 0, "failed": 0,
             "first_seen": None, "last_seen": None, "health": None},
        )  # fmt: skip
        row["health"] = health
    return sorted(rows.values(), key=_last_activity, reverse=True)


def _merge_process(rows: dict[tuple[str, int], dict[str, Any]], add: dict[str, Any]) -> None:
    """Add one aggregated (host, pid) row: counts add up, first/last widen."""
    key = (add["host"], add["pid"])
    row = rows.get(key)
    if row is None:
        rows[key] = {"host": add["host"], "pid": add["pid"], "events": add["n"] or 0,
                     "failed": add["bad"] or 0, "first_seen": add["first"],
                     "last_seen": add["last"], "health": None}  # fmt: skip
        return
    row["events"] += add["n"] or 0
    row["failed"] += add["bad"] or 0
    row["first_seen"] = min(row["first_seen"], add["first"])
    row["last_seen"] = max(row["last_seen"], add["last"])


def _latest_health(start: datetime | None) -> list[CollectorHealth]:
    """Return the newest CollectorHealth row of each process updated since ``start``."""
    qs = CollectorHealth.objects.order_by("host", "pid", "-started")
    if start is not None:
        qs = qs.filter(updated__gte=start)
    latest: dict[tuple[str, int], CollectorHealth] = {}
    for health in qs[:1_000]:
        latest.setdefault((health.host, health.pid), health)
    return list(latest.values())


def _last_activity(row: dict[str, Any]) -> datetime:
    """Return when a process was last heard of (its last event or health report)."""
    moments = [row["last_seen"], row["health"].updated if row["health"] else None]
    return max(
        (m for m in moments if m is not None), default=datetime.min.replace(tzinfo=dt_timezone.utc)
    )
