"""Interleaved timing: bare and hooked rounds alternate, medians of per-round minimums."""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable


def per_call_ns(func: Callable[[], object], number: int, repeat: int = 3) -> float:
    """Return the best per-call time of ``func`` in nanoseconds over ``repeat`` runs."""
    timer = timeit.Timer(func)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def interleaved(
    bare: Callable[[], object],
    hooked: Callable[[], object],
    on: Callable[[], object],
    off: Callable[[], object],
    number: int,
    rounds: int,
) -> tuple[float, float]:
    """Alternate bare and hooked rounds; return the median per-call ns of each."""
    bare_times, hooked_times = [], []
    for _ in range(rounds):
        off()
        bare_times.append(per_call_ns(bare, number))
        on()
        hooked_times.append(per_call_ns(hooked, number))
    off()
    return statistics.median(bare_times), statistics.median(hooked_times)
