"""Shared fixtures of the reliability suite, and the figures it reports.

Every test adds to one tally: faults injected, exceptions that leaked into the host application
(must stay 0), events sent below the queue's capacity and how many of them were lost (must stay
0), bad inputs tried by the fuzzers and XSS payloads tried in a real browser. At the end of the
session the tally is written to tests/artifacts/reliability_summary.json (one entry per Django
version; a run that covers only some of the suite updates only its own figures) and printed as
one line, so the closing note can quote it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django
import pytest
from django.test import override_settings

import collector
from collector import runtime

SUMMARY = Path(__file__).resolve().parents[1] / "artifacts" / "reliability_summary.json"


@dataclass
class Tally:
    """The figures of this run."""

    faults: Counter[str] = field(default_factory=Counter)
    leaked: list[str] = field(default_factory=list)
    sent_below_capacity: int = 0
    lost_below_capacity: int = 0
    bad_inputs: Counter[str] = field(default_factory=Counter)
    xss_payloads: int = 0
    xss_placements: int = 0
    xss_page_loads: int = 0
    xss_fragments: int = 0
    xss_live_rows: int = 0
    xss_script_runs: int = 0
    tests: int = 0

    def fault(self, kind: str, n: int = 1) -> None:
        """Count ``n`` injected faults of ``kind``."""
        self.faults[kind] += n

    def events(self, *, sent: int, stored: int) -> None:
        """Count events sent below capacity and how many of them were not stored."""
        self.sent_below_capacity += sent
        self.lost_below_capacity += max(0, sent - stored)

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready data."""
        return {
            "faults_injected": sum(self.faults.values()),
            "faults_by_kind": dict(sorted(self.faults.items())),
            "host_exceptions_leaked": len(self.leaked),
            "leaks": self.leaked[:20],
            "events_sent_below_capacity": self.sent_below_capacity,
            "events_lost_below_capacity": self.lost_below_capacity,
            "bad_inputs_tried": sum(self.bad_inputs.values()),
            "bad_inputs_by_target": dict(sorted(self.bad_inputs.items())),
            "xss_payloads": self.xss_payloads,
            "xss_placements": self.xss_placements,
            "xss_page_loads": self.xss_page_loads,
            "xss_live_fragments": self.xss_fragments,
            "xss_live_rows": self.xss_live_rows,
            "xss_script_runs": self.xss_script_runs,
            "tests": self.tests,
        }

    def line(self) -> str:
        """Return the one-line summary."""
        d = self.as_dict()
        return (
            f"reliability: {d['faults_injected']} faults injected, "
            f"{d['host_exceptions_leaked']} host exceptions leaked, "
            f"{d['events_lost_below_capacity']}/{d['events_sent_below_capacity']} events lost "
            f"below capacity, {d['bad_inputs_tried']} bad inputs tried, "
            f"{d['xss_payloads']} XSS payloads x {d['xss_placements']} placements over "
            f"{d['xss_page_loads']} page loads and {d['xss_live_rows']} live rows "
            f"({d['xss_live_fragments']} frames): "
            f"{d['xss_script_runs']} scripts ran"
        )


_TALLY = Tally()
# Figures that move together: a run updates a group only if it measured something in it.
GROUPS = {
    "faults": ("faults_injected", "faults_by_kind", "host_exceptions_leaked", "leaks",
               "events_sent_below_capacity", "events_lost_below_capacity"),
    "fuzz": ("bad_inputs_tried", "bad_inputs_by_target"),
    "xss": ("xss_payloads", "xss_placements", "xss_page_loads", "xss_live_fragments",
            "xss_live_rows", "xss_script_runs"),
}  # fmt: skip


@pytest.fixture(scope="session")
def tally() -> Iterator[Tally]:
    """Return the session's tally; write the summary file when the session ends."""
    yield _TALLY
    if not _TALLY.tests:
        return
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    try:
        previous = json.loads(SUMMARY.read_text())
    except (OSError, ValueError):
        previous = {}
    entry = previous.get(django.get_version(), {})
    figures = _TALLY.as_dict()
    for group, keys in GROUPS.items():
        if any(figures[key] for key in keys) or group not in entry.get("updated", {}):
            entry.update({key: figures[key] for key in keys})
            entry.setdefault("updated", {})[group] = time.strftime("%Y-%m-%d %H:%M:%S")
    previous[django.get_version()] = entry
    SUMMARY.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")


@pytest.fixture(autouse=True)
def _count_test(tally: Tally) -> None:
    """Count the tests of this suite that ran."""
    tally.tests += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures after the run."""
    if _TALLY.tests:
        terminalreporter.write_line(_TALLY.line())


class HostGuard:
    """Runs host code and records any exception the collector let escape into it."""

    def __init__(self, tally: Tally) -> None:
        """Start with no leak."""
        self.tally = tally
        self.leaks: list[str] = []
        self.lock = threading.Lock()

    def call(
        self, fn: Callable[..., Any], *args: Any, expect: type | None = None, **kw: Any
    ) -> Any:
        """Call ``fn``; an exception other than ``expect`` (the host's own) is a leak."""
        try:
            return fn(*args, **kw)
        except BaseException as exc:
            if expect is not None and isinstance(exc, expect):
                raise
            self.leak(f"{type(exc).__name__}: {exc}")
            raise

    def leak(self, what: str) -> None:
        """Record one leaked exception."""
        with self.lock:
            self.leaks.append(what)
            self.tally.leaked.append(what)


@pytest.fixture
def host(tally: Tally) -> Iterator[HostGuard]:
    """Return a guard for host code; exceptions in any thread during the test count as leaks."""
    guard = HostGuard(tally)
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not None and args.thread.name.startswith("signal-monitor"):
            previous(args)  # the writer's own death is counted by the runtime, not a host leak
            return
        guard.leak(f"in thread {getattr(args.thread, 'name', '?')}: {args.exc_value!r}")

    threading.excepthook = hook
    yield guard
    threading.excepthook = previous
    assert guard.leaks == [], f"exceptions leaked into the host: {guard.leaks}"


@pytest.fixture(autouse=True)
def hook_on() -> Iterator[None]:
    """Every reliability test runs with the hook installed and an idle writer."""
    collector.install()
    assert collector.flush(15)
    yield
    collector.install()


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 30.0,  # generous: a loaded 2-core CI machine; success returns at once
    interval: float = 0.05,
    what: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition`` until it returns something truthy; return it (or fail after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = what() if what is not None else ""
            raise AssertionError(f"condition not met within {timeout} s: {condition} {detail}")
        time.sleep(interval)


def monitor(**overrides: Any) -> Any:
    """Return override_settings for SIGNAL_MONITOR with ``overrides`` (the rest default)."""
    return override_settings(SIGNAL_MONITOR=overrides)


def counter(name: str) -> int:
    """Return one of the runtime's counters (0 when never counted)."""
    return int(runtime.snapshot().get(name, 0))


def drops(reason: str) -> int:
    """Return the number of events dropped for ``reason`` so far."""
    return int(runtime.dropped().get(reason, 0))
