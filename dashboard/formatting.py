"""Human-readable numbers for durations, rates and counts."""

from __future__ import annotations

__all__ = ["format_duration", "format_rate"]


def format_duration(ns: int | float | None) -> str:
    """Return a duration in nanoseconds as "812 ns", "3.4 µs", "12.5 ms" or "1.20 s"."""
    if ns is None:
        return "–"
    ns = float(ns)
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def format_rate(fraction: float | None) -> str:
    """Return a fraction as a percentage with one decimal ("0.0%" for none)."""
    if not fraction:
        return "0%"
    return f"{fraction * 100:.1f}%"
