"""Read-side queries over the rollup tables (never a scan of every stored call)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Sum

from collector import stats
from collector.models import ReceiverStat, SignalCount


def signal_summaries(*, since: datetime | None = None, using: str = "default") -> list[dict[str, Any]]:
    """Return one dict per signal: events, receivers, calls, failures, mean/p95/max ns."""
    counts = SignalCount.objects.using(using)
    rollups = ReceiverStat.objects.using(using)
    if since is not None:
        counts = counts.filter(minute__gte=since)
        rollups = rollups.filter(minute__gte=since)
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "events": 0, "unheard": 0, "receivers": 0, "calls": 0, "failures": 0,
        "total_ns": 0, "max_ns": 0,
    })
    for row in counts.values("signal").annotate(events=Sum("events"), unheard=Sum("unheard")):
        rows[row["signal"]].update(events=row["events"], unheard=row["unheard"])
    per_signal = rollups.values("signal").annotate(
        calls=Sum("calls"), failures=Sum("failures"), total_ns=Sum("total_ns"),
        max_ns=Max("max_ns"), receivers=Count("receiver", distinct=True),
    )
    for row in per_signal:
        rows[row["signal"]].update({k: row[k] for k in ("calls", "failures", "total_ns", "max_ns", "receivers")})
    buckets: dict[str, dict[int, int]] = defaultdict(dict)
    for row in rollups.values("signal", "bucket").annotate(n=Sum("calls")):
        buckets[row["signal"]][row["bucket"]] = row["n"]
    result = []
    for name in sorted(rows):
        row = rows[name]
        calls = row["calls"]
        result.append({
            "signal": name,
            **{k: row[k] for k in ("events", "unheard", "receivers", "calls", "failures", "max_ns")},
            "mean_ns": row["total_ns"] // calls if calls else None,
            "p95_ns": stats.percentile(buckets[name], 95),
        })
    return result
