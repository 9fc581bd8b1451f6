"""``manage.py signals_prune``: delete recorded signals beyond the retention limits, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from collector import hook
from collector.conf import get_config
from collector.retention import cutoffs, prune


class Command(BaseCommand):
    """Prune events (with their receiver calls), rollups and stale health rows."""

    help = (
        "Delete recorded events older than SIGNAL_MONITOR['MAX_AGE_DAYS'] or beyond "
        "SIGNAL_MONITOR['MAX_EVENTS'] (with their receiver calls), and older rollups, in short "
        "batches so writers are never locked out for long."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the limits (defaults from settings), --batch-size, --database and --dry-run."""
        config = get_config()
        parser.add_argument(
            "--max-age-days", type=float, default=config["MAX_AGE_DAYS"],
            help="Delete events older than this many days (0: no age limit). "
            f"Default: MAX_AGE_DAYS ({config['MAX_AGE_DAYS']}).",
        )  # fmt: skip
        parser.add_argument(
            "--max-events", type=int, default=config["MAX_EVENTS"],
            help="Keep at most this many events, the newest (0: no count limit). "
            f"Default: MAX_EVENTS ({config['MAX_EVENTS']}).",
        )  # fmt: skip
        parser.add_argument(
            "--batch-size", type=int, default=config["PRUNE_BATCH_SIZE"],
            help="Rows deleted per transaction.",
        )  # fmt: skip
        parser.add_argument("--database", default=config["DATABASE_ALIAS"], help="Database alias.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Only say what the limits select."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Prune, printing progress per batch (verbosity 2) or per table (verbosity 1)."""
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["max_age_days"] is not None and options["max_age_days"] < 0:
            raise CommandError("--max-age-days must not be negative.")
        if options["max_events"] is not None and options["max_events"] < 0:
            raise CommandError("--max-events must not be negative.")
        token = hook.muted.set(True)  # the command's own queries are not signals worth keeping
        try:
            self._run(options)
        finally:
            hook.muted.reset(token)

    def _run(self, options: dict[str, Any]) -> None:
        """Print the cutoffs, then prune (unless --dry-run)."""
        alias, verbosity = options["database"], options["verbosity"]
        by_age, by_count = cutoffs(
            alias=alias, max_age_days=options["max_age_days"], max_events=options["max_events"]
        )
        if verbosity:
            age = f"before {by_age:%Y-%m-%d %H:%M:%S} UTC" if by_age else "no age limit"
            count = f"up to {by_count:%Y-%m-%d %H:%M:%S} UTC" if by_count else "nothing"
            self.stdout.write(f"Pruning events {age}; by count: {count}.")
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing deleted.")
            return
        totals: dict[str, int] = {}

        def progress(table: str, batch: int, so_far: int) -> None:
            totals[table] = so_far
            if verbosity >= 2:
                self.stdout.write(f"  {table}: deleted {batch:,} (total {so_far:,})")
            elif verbosity == 1:
                self.stdout.write(f"\r  {table}: {so_far:,} deleted", ending="")
                self.stdout.flush()

        result = prune(
            alias=alias,
            max_age_days=options["max_age_days"],
            max_events=options["max_events"],
            batch_size=options["batch_size"],
            progress=progress,
        )
        if verbosity == 1 and totals:
            self.stdout.write("")
        if verbosity:
            parts = ", ".join(f"{table} {n:,}" for table, n in result.deleted.items()) or "nothing"
            self.stdout.write(self.style.SUCCESS(f"Pruned {result.total:,} rows: {parts}."))
