"""Named time windows ("since") shared by the filters and selectors."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

__all__ = ["WINDOWS", "WINDOW_CHOICES", "window_start"]

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
