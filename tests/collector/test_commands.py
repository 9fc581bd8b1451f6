"""signals_stats: per-signal figures from the rollups, as a table or JSON."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.dispatch import Signal

import collector

stats_signal = Signal()


def quick(sender: Any, **kw: Any) -> None:
    """Fast receiver."""


def flaky(sender: Any, **kw: Any) -> None:
    """Fails when asked to."""
    if kw.get("fail"):
        raise ValueError("flaky")


@pytest.mark.django_db(transaction=True)
def test_signals_stats_json_and_table(recorded: Any) -> None:
    stats_signal.connect(quick)
    stats_signal.connect(flaky)
    for i in range(10):
        stats_signal.send_robust(sender="s", fail=i < 3)
    stats_signal.disconnect(quick)
    stats_signal.disconnect(flaky)
    assert collector.flush(10)
    out = StringIO()
    call_command("signals_stats", "--json", stdout=out)
    rows = {r["signal"]: r for r in json.loads(out.getvalue())["signals"]}
    row = rows["tests.collector.test_commands.stats_signal"]
    assert row["events"] == 10 and row["receivers"] == 2 and row["calls"] == 20
    assert row["failures"] == 3
    assert row["mean_ns"] > 0 and row["p95_ns"] > 0
    table = StringIO()
    call_command("signals_stats", stdout=table)
    line = [ln for ln in table.getvalue().splitlines() if "stats_signal" in ln][0]
    assert line.split()[1:5] == ["10", "2", "20", "3"]


def test_percentiles_from_buckets() -> None:
    from collector.stats import bucket_of, percentile

    counts: dict[int, int] = {}
    for ns in range(1000, 101_000, 1000):
        b = bucket_of(ns)
        counts[b] = counts.get(b, 0) + 1
    p50, p95 = percentile(counts, 50), percentile(counts, 95)
    assert p50 is not None and p95 is not None
    assert 45_000 <= p50 <= 56_000
    assert 86_000 <= p95 <= 104_000
    assert percentile({}, 95) is None
