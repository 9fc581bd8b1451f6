"""Retention: delete events, receiver calls and rollups beyond MAX_AGE_DAYS / MAX_EVENTS.

Rollup slots (10 minutes, hours, days) go once the whole slot is older than the age cutoff.

Deletes run in short transactions of at most PRUNE_BATCH_SIZE rows, oldest first, through the
timestamp and minute indexes, with plain SQL (no model instances, so no delete signals and
nothing loaded into memory). ``manage.py signals_prune`` runs a full prune with progress output;
the writer thread calls ``maybe_prune()`` and spends at most PRUNE_TIME_BUDGET seconds per round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections, transaction

from collector.conf import get_config
from collector.rollups import GRAINS, SLOT_MODELS

__all__ = ["PruneResult", "cutoffs", "maybe_prune", "prune"]

Progress = Callable[[str, int, int], None]  # (table, deleted in this batch, deleted so far)

_next_at: float | None = None
_carry: tuple[datetime | None, datetime | None] | None = None  # cutoffs of an unfinished prune
SOON = 1.0  # seconds before the next automatic round when the last one ran out of time
FIRST_DELAY = 30.0  # seconds after start before the first automatic prune


@dataclass
class PruneResult:
    """Rows deleted per model, and whether everything due was deleted (False: out of time)."""

    deleted: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    limits: tuple[datetime | None, datetime | None] = (None, None)

    @property
    def total(self) -> int:
        """Return the number of rows deleted in all tables."""
        return sum(self.deleted.values())


def _model(name: str) -> Any:
    """Return one of the collector's models."""
    from django.apps import apps

    return apps.get_model("signals_collector", name)


def cutoffs(
    *, alias: str, max_age_days: float | None, max_events: int | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """Return (age cutoff, count cutoff): delete events strictly older than the age cutoff and
    events at or before the count cutoff (the timestamp of the newest event beyond MAX_EVENTS)."""
    now = now or datetime.now(tz=UTC)
    by_age = now - timedelta(days=float(max_age_days)) if max_age_days else None
    by_count = None
    if max_events:
        events = _model("Event").objects.using(alias).order_by("-timestamp")  # index scan
        beyond = events.values_list("timestamp", flat=True)[int(max_events) : int(max_events) + 1]
        by_count = next(iter(beyond), None)
    return by_age, by_count


def prune(
    *,
    alias: str = "default",
    max_age_days: float | None = None,
    max_events: int | None = None,
    batch_size: int = 2_000,
    time_budget: float | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    limits: tuple[datetime | None, datetime | None] | None = None,
) -> PruneResult:
    """Delete what is beyond the limits, batch by batch; stop once ``time_budget`` is spent.

    ``limits`` are cutoffs computed before (a prune that ran out of time goes on with them, so
    the count cutoff's index scan is not repeated every round).
    """
    deadline = None if time_budget is None else time.monotonic() + time_budget
    result = PruneResult()
    by_age, by_count = limits or cutoffs(
        alias=alias, max_age_days=max_age_days, max_events=max_events, now=now
    )
    result.limits = (by_age, by_count)
    jobs: list[tuple[str, str, datetime, bool, dict[str, Any]]] = []
    if by_age is not None:
        jobs.append(("Event", "timestamp", by_age, False, {}))
    if by_count is not None:
        jobs.append(("Event", "timestamp", by_count, True, {}))
    if by_age is not None:
        # Receiver calls go with their events (same transaction, through the event_id index).
        jobs += [
            ("ReceiverStat", "minute", by_age, False, {}),
            ("SignalCount", "minute", by_age, False, {}),
            ("CollectorHealth", "updated", by_age, False, {}),
        ]
        # A slot goes once all of it is older than the cutoff (through the unique key's
        # (grain, start) prefix).
        jobs += [
            (name, "start", by_age - timedelta(seconds=grain), True, {"grain": grain})
            for name in SLOT_MODELS
            for grain in GRAINS
        ]
    for model_name, column, cutoff, inclusive, extra in jobs:
        done = _prune_table(
            alias, model_name, column, cutoff, inclusive, batch_size, deadline, result, progress,
            extra,
        )
        if not done:
            result.complete = False
            break
    return result


def _prune_table(
    alias: str,
    model_name: str,
    column: str,
    cutoff: datetime,
    inclusive: bool,
    batch_size: int,
    deadline: float | None,
    result: PruneResult,
    progress: Progress | None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Delete one table's rows beyond ``cutoff`` (and matching ``extra``) in batches; return
    False if time ran out."""
    model = _model(model_name)
    lookup = f"{column}__lte" if inclusive else f"{column}__lt"
    old = model.objects.using(alias).filter(**{lookup: cutoff}, **(extra or {})).order_by(column)
    while True:
        if deadline is not None and time.monotonic() > deadline:
            return False
        ids = list(old.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return True
        with transaction.atomic(using=alias):
            if model_name == "Event":
                _delete_in(alias, _model("ReceiverCall"), "event_id", ids)
            deleted = _delete_in(alias, model, "id", ids)
        result.deleted[model_name] = result.deleted.get(model_name, 0) + deleted
        if progress is not None:
            progress(model_name, deleted, result.deleted[model_name])
        if len(ids) < batch_size:
            return True


def _delete_in(alias: str, model: Any, column: str, ids: list[Any]) -> int:
    """Run ``DELETE FROM <table> WHERE <column> IN (ids)``; return the rows deleted."""
    conn = connections[alias]
    qn = conn.ops.quote_name
    marks = ", ".join(["%s"] * len(ids))
    with conn.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {qn(model._meta.db_table)} WHERE {qn(column)} IN ({marks})", ids
        )
        return int(cursor.rowcount)


def after_fork() -> None:
    """A forked child waits its own first delay before pruning."""
    global _next_at, _carry
    _next_at = _carry = None


def maybe_prune() -> PruneResult | None:
    """Prune within PRUNE_TIME_BUDGET if PRUNE_INTERVAL has passed (writer thread); else None."""
    global _next_at, _carry
    config = get_config()
    interval = float(config["PRUNE_INTERVAL"] or 0)
    if interval <= 0 or not (config["MAX_AGE_DAYS"] or config["MAX_EVENTS"]):
        return None
    now = time.monotonic()
    if _next_at is None:
        _next_at = now + min(FIRST_DELAY, interval)
    if now < _next_at or not _database_ready():
        return None
    _next_at = now + interval
    result = prune(
        alias=config["DATABASE_ALIAS"],
        max_age_days=config["MAX_AGE_DAYS"],
        max_events=config["MAX_EVENTS"],
        batch_size=int(config["PRUNE_BATCH_SIZE"]),
        time_budget=float(config["PRUNE_TIME_BUDGET"]),
        limits=_carry,
    )
    _carry = None if result.complete else result.limits
    if not result.complete:
        _next_at = now + SOON
    return result


def _database_ready() -> bool:
    """Return True when the writer stores events in the database (an error is caught and counted
    by the writer; the next try is PRUNE_INTERVAL later)."""
    from collector import health

    return health._database_sink() is not None
