"""The rate loop of demo_traffic: picks weighted actions, paces them and tallies outcomes."""

from __future__ import annotations

import random
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping

from demo.traffic.actions import Action

# After an action that took t >= SLOW seconds, its group rests for COOLDOWN * t, so no slow group
# (the account actions hash a password: most of a second) takes more than a tenth of the time.
SLOW = 0.2
COOLDOWN = 9.0
# Seconds of missed schedule the loop makes up for (back to back) after a slow action.
CATCH_UP = 1.0


class TrafficRunner:
    """Runs every action once in order, then weighted random ones, at a target rate."""

    def __init__(
        self,
        actions: Mapping[str, tuple[float, Action]],
        failures: Counter[str],
        groups: Mapping[str, str] | None = None,
        on_error: Callable[[str], None] = lambda text: None,
    ) -> None:
        self._actions = dict(actions)
        self._groups = dict(groups or {})
        self.done: Counter[str] = Counter()
        self.failures = failures
        self._on_error = on_error
        self._rng = random.Random()
        self._ready_at: dict[str, float] = {}
        self._tour = list(reversed(self._actions))  # popped from the end: the first kind first

    def _group(self, kind: str) -> str:
        """Return the group that rests together with ``kind`` (the kind itself by default)."""
        return self._groups.get(kind, kind)

    def _pick(self) -> str:
        """Return the next kind of the first tour, else a weighted random kind not resting."""
        if self._tour:
            return self._tour.pop()
        now = time.monotonic()
        ready = [kind for kind in self._actions if self._ready_at.get(self._group(kind), 0) <= now]
        kinds = ready or list(self._actions)
        return self._rng.choices(kinds, weights=[self._actions[k][0] for k in kinds])[0]

    def step(self) -> None:
        """Run one action; an unexpected exception is counted and reported, never raised."""
        kind = self._pick()
        started = time.monotonic()
        try:
            done = self._actions[kind][1]()
        except Exception as error:
            done = kind
            name = f"error_{type(error).__name__}"
            if name not in self.failures:
                self._on_error(traceback.format_exc())
            self.failures[name] += 1
        finished = time.monotonic()
        if finished - started >= SLOW:
            group = self._group(kind)
            rest_until = finished + COOLDOWN * (finished - started)
            self._ready_at[group] = max(self._ready_at.get(group, 0.0), rest_until)
        self.done[done] += 1

    def run(self, *, rate: float, seconds: float) -> float:
        """Step ``rate`` times a second for ``seconds`` (0: until interrupted); return the time."""
        interval = 1.0 / rate
        started = time.monotonic()
        due = started
        while seconds <= 0 or time.monotonic() - started < seconds:
            self.step()
            due += interval
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                due = max(due, now - CATCH_UP)  # behind: catch up at most CATCH_UP seconds
        return time.monotonic() - started

    def summary(self, elapsed: float) -> str:
        """Return the one-line summary: actions per kind and handled failures per kind."""
        total = sum(self.done.values())
        done = " ".join(f"{kind}={count}" for kind, count in sorted(self.done.items()))
        failed = " ".join(f"{kind}={count}" for kind, count in sorted(self.failures.items()))
        return (
            f"demo_traffic: {total} actions in {elapsed:.1f}s ({total / max(elapsed, 1e-9):.1f}/s):"
            f" {done or 'none'}; handled failures: {failed or 'none'}"
        )
