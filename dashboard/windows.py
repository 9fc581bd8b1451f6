"""Named time windows ("since") shared by the filters and selectors, and how to read a window
from the rollups: whole slots of the coarsest grain that fits, finer slots at the edges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.utils import timezone

from collector.rollups import GRAINS

__all__ = ["WINDOWS", "WINDOW_CHOICES", "Span", "window_plan", "window_start"]

WINDOWS: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}
WINDOW_CHOICES = [
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("6h", "last 6 hours"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("all", "all time"),
]


def window_start(key: str, *, now: datetime | None = None) -> datetime | None:
    """Return the start of window ``key`` (None for all time or an unknown key)."""
    span = WINDOWS.get(key)
    if span is None:
        return None
    return (now or timezone.now()) - span


MINUTE = 60
SLOT_GRAINS = tuple(sorted(GRAINS, reverse=True))  # coarsest first


@dataclass(frozen=True)
class Span:
    """Whole slots of one grain (60: the per-minute tables) starting in [first, stop).

    ``first`` None: from the oldest; ``stop`` None: up to now (the newest slot holds what has
    been stored so far, so it is exact too).
    """

    grain: int
    first: datetime | None
    stop: datetime | None


# The start of the last whole minute a datetime can hold (9999-12-31 23:59 UTC).
_LAST_MINUTE = int(datetime(9999, 12, 31, 23, 59, tzinfo=dt_timezone.utc).timestamp())


def window_plan(
    start: datetime | None, end: datetime | None = None, *, now: datetime | None = None
) -> list[Span]:
    """Return the spans that together cover exactly the minutes m with start <= m <= end.

    The coarsest slots that fit go in the middle, finer ones at the edges: a 7-day window is
    at most 9 minutes, 5 ten-minute slots, 5 hours, 3 six-hour slots and 7 days of rows.
    """
    now = now or timezone.now()
    # The first whole minute at or after start; int() would drop the microseconds, and a start
    # in the first second of a minute would then take in the minute before it.
    lo = None if start is None else math.ceil(start.timestamp() / MINUTE) * MINUTE
    if lo is not None and lo > _LAST_MINUTE:
        return []  # no minute starts at or after a start in datetime.max's last minute
    hi = None
    if end is not None and end < now:
        hi = (int(end.timestamp()) // MINUTE + 1) * MINUTE
    spans = _cover(lo, hi, SLOT_GRAINS, int(now.timestamp()))
    return [Span(grain, _utc(first), _utc(stop)) for grain, first, stop in spans]


def _cover(
    lo: int | None, hi: int | None, grains: tuple[int, ...], now: int
) -> list[tuple[int, Any, Any]]:
    """Cover unix seconds [lo, hi) (None: unbounded; hi None is up to ``now``) with whole
    slots, coarsest first."""
    if lo is not None and hi is not None and lo >= hi:
        return []
    for i, grain in enumerate(grains):
        first = None if lo is None else -(-lo // grain) * grain
        # Open-ended, the slot holding ``now`` is complete so far: usable, but none after it.
        stop = None if hi is None else hi // grain * grain
        last = now // grain * grain + grain if hi is None else stop
        if first is not None and last is not None and first >= last:
            continue
        left = [] if lo is None else _cover(lo, first, grains[i + 1 :], now)
        right = [] if hi is None else _cover(stop, hi, grains[i + 1 :], now)
        return [*left, (grain, first, stop), *right]
    return [(MINUTE, lo, hi)]


def _utc(seconds: int | None) -> datetime | None:
    """Return unix seconds as an aware UTC datetime (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=dt_timezone.utc)
