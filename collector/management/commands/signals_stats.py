"""``manage.py signals_stats [--json] [--since-minutes N]``: per-signal figures from the store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from collector.conf import get_config
from collector.selectors import signal_summaries


def _ms(ns: int | None) -> str:
    """Format nanoseconds as milliseconds for the table."""
    return "-" if ns is None else f"{ns / 1e6:.3f}"


class Command(BaseCommand):
    """Print events, receivers, calls, failures, mean and p95 receiver time per signal."""

    help = "Per-signal statistics of recorded signals (add --json for scripts)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --json, --since-minutes and --database."""
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument("--since-minutes", type=int, default=None, help="Only the last N minutes.")
        parser.add_argument("--database", default=None,
                            help="Database alias to read (SIGNAL_MONITOR['DATABASE_ALIAS']).")

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the summary."""
        since = None
        if options["since_minutes"] is not None:
            since = timezone.now() - timedelta(minutes=options["since_minutes"])
        alias = options["database"] or get_config()["DATABASE_ALIAS"]
        rows = signal_summaries(since=since, using=alias)
        if options["json"]:
            self.stdout.write(json.dumps({"signals": rows}, indent=2))
            return
        header = f"{'signal':<52} {'events':>8} {'recv':>5} {'calls':>8} {'fail':>6} {'mean ms':>9} {'p95 ms':>9}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for r in rows:
            self.stdout.write(
                f"{r['signal'][:52]:<52} {r['events']:>8} {r['receivers']:>5} {r['calls']:>8} "
                f"{r['failures']:>6} {_ms(r['mean_ns']):>9} {_ms(r['p95_ns']):>9}"
            )
        if not rows:
            self.stdout.write("No signals recorded yet.")
