"""Fixtures for collector tests: a clean in-memory sink and a way to read what was recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import collector
from collector.sinks import clear_memory, memory_events

Recorded = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """Return a reader of the events recorded since the test started (flushes first)."""
    collector.install()
    assert collector.flush(10)
    clear_memory()

    def read(signal: str | None = None, sender: str | None = None) -> list[dict[str, Any]]:
        assert collector.flush(10), "the writer did not drain the queue in time"
        return [
            e for e in memory_events()
            if (signal is None or e["signal"] == signal) and (sender is None or e["sender"] == sender)
        ]

    yield read
    collector.install()


@pytest.fixture
def bare() -> Iterator[None]:
    """Run the test body with the hook uninstalled (bare Django), restoring it afterwards."""
    collector.flush(10)
    collector.uninstall()
    yield
    collector.install()
