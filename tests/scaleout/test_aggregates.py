"""Several writer processes at once: every event stored once, and the rollups exactly the sums.

The collector's rollups (ReceiverStat per minute/signal/sender/receiver/latency bucket, and
SignalCount per minute/signal) are additive upserts. Four processes send the same signals flat
out into one database; afterwards each rollup row must equal what the receiver calls stored on
the events (``calls_json``) add up to, row for row, on PostgreSQL and on SQLite in WAL mode. The slot rollups (10 minutes,
hour, day: timings with 16 buckets a row, signal counts, failure groups) written beside them
must equal the per-minute rows and the stored failures folded the same way.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from collector import rollups
from collector.calls import decode
from collector.stats import bucket_of
from tests.conftest import ARTIFACTS, copy_sqlite
from tests.scaleout import ingest
from tests.scaleout.harness import CALL, COUNT, EVENT, PING, RISKY, STAT, Store, scaleout_env
from tests.scaleout.signals import FAIL_EVERY

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]

PROCESSES = 4
EVENTS = 1_500
OURS = (PING, RISKY)


def _unix(value: Any) -> float:
    """Return a stored datetime (aware from psycopg, naive UTC text from sqlite3) as unix time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return float(value.timestamp())


def expected_stats(store: Store) -> dict[tuple[Any, ...], list[int]]:
    """Recompute the ReceiverStat rollup of our signals from the calls stored on their events."""
    rows = store.rows(
        f"SELECT timestamp, signal, sender, calls_json FROM {EVENT} WHERE signal IN (%s, %s)",
        OURS,
    )
    stats: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for when, signal, sender, text in rows:
        ts = _unix(when)
        for call in decode(text):
            took = call.duration_ns
            row = stats[(ts - ts % 60, signal, sender, call.receiver, bucket_of(took))]
            row[0] += 1
            row[1] += call.outcome != "ok"
            row[2] += took
            row[3] = max(row[3], took)
    return dict(stats)


def stored_stats(store: Store) -> dict[tuple[Any, ...], list[int]]:
    """Return the ReceiverStat rows of our signals, keyed like ``expected_stats``."""
    rows = store.rows(
        f"SELECT minute, signal, sender, receiver, bucket, calls, failures, total_ns, max_ns "
        f"FROM {STAT} WHERE signal IN (%s, %s)",
        OURS,
    )
    return {
        (_unix(minute), signal, sender, receiver, bucket): [calls, failures, total, most]
        for minute, signal, sender, receiver, bucket, calls, failures, total, most in rows
    }


def stored_slots(store: Store) -> dict[tuple[Any, ...], list[Any]]:
    """Return the ReceiverRollup rows of our signals, keyed like ``rollups.fold_stats``."""
    buckets = ", ".join(f"b{i}" for i in range(rollups.BUCKETS_PER_ROW))
    rows = store.rows(
        "SELECT grain, start, signal, sender, receiver, octave, calls, failures, total_ns, "
        f"max_ns, last_failure, {buckets} FROM signals_collector_receiverrollup "
        "WHERE signal IN (%s, %s)",
        OURS,
    )
    return {
        (r[0], _unix(r[1]), *r[2:6]): [*r[6:10], None if r[10] is None else _unix(r[10]), *r[11:]]
        for r in rows
    }


def check_failure_slots(store: Store) -> None:
    """Assert the failure rollups count every stored failure of our signals once per grain, and
    the process rollups every stored event."""
    failed = store.value(
        f"SELECT COUNT(*) FROM {CALL} WHERE outcome = 'error' AND signal IN (%s, %s)", OURS
    )
    per_grain = dict(
        store.rows(
            "SELECT grain, SUM(failures) FROM signals_collector_failurerollup "
            "WHERE signal IN (%s, %s) GROUP BY grain",
            OURS,
        )
    )
    assert {int(g): int(n) for g, n in per_grain.items()} == dict.fromkeys(rollups.GRAINS, failed)
    events, with_failure = store.rows(
        "SELECT COUNT(*), SUM(CASE WHEN failure_count > 0 THEN 1 ELSE 0 END) "
        "FROM signals_collector_event"
    )[0]
    per_process = store.rows(
        "SELECT grain, SUM(events), SUM(failed) FROM signals_collector_processrollup GROUP BY grain"
    )
    assert {int(g): (int(n), int(f)) for g, n, f in per_process} == dict.fromkeys(
        rollups.GRAINS, (int(events), int(with_failure))
    )


def check_rollups(store: Store, processes: int, events: int) -> None:
    """Assert every rollup row equals the sum of the stored calls, and the totals are exact."""
    expected = expected_stats(store)
    assert stored_stats(store) == expected
    assert stored_slots(store) == rollups.fold_stats(expected)
    check_failure_slots(store)
    per_receiver: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, (calls, failures, _total, _max) in expected.items():
        per_receiver[key[3]][0] += calls
        per_receiver[key[3]][1] += failures
    risky = events // 5
    unlucky = len([n for n in range(5, events + 1, 5) if n % FAIL_EVERY == 0])
    assert dict(per_receiver) == {
        "tests.scaleout.signals.on_ping": [processes * (events - risky), 0],
        "tests.scaleout.signals.on_ping_twice": [processes * (events - risky), 0],
        "tests.scaleout.signals.on_risky": [processes * risky, processes * unlucky],
    }
    counts = dict(
        store.rows(
            f"SELECT signal, SUM(events) FROM {COUNT} WHERE signal IN (%s, %s) GROUP BY signal",
            OURS,
        )  # fmt: skip
    )
    assert {k: int(v) for k, v in counts.items()} == {
        PING: processes * (events - risky),
        RISKY: processes * risky,
    }


def record(name: str, result: dict[str, Any]) -> None:
    """Keep a run's figures in tests/artifacts/scaleout-<name>.json and print them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"scaleout-{name}.json").write_text(json.dumps(result, indent=2))
    print(f"\n{name}: {json.dumps({k: v for k, v in result.items() if k != 'per_process'})}")


def test_postgres_rollups_exact_with_four_writer_processes(pg_url: str, tmp_path: Path) -> None:
    env = scaleout_env(tmp_path / "unused.sqlite3", DATABASE_URL=pg_url)
    store = Store(pg_url)
    result = ingest.run(env, store, processes=PROCESSES, events=EVENTS, log_dir=tmp_path)
    record("ingest-postgres", result)
    assert all(
        row["dropped"] == 0 and row["stored"] == row["sent"] for row in result["per_process"]
    )
    check_rollups(store, PROCESSES, EVENTS)


def test_sqlite_wal_rollups_exact_with_four_writer_processes(
    live_db_template: Path, tmp_path: Path
) -> None:
    db_path = tmp_path / "shared.sqlite3"
    copy_sqlite(live_db_template, db_path)
    env = scaleout_env(db_path)
    store = Store(str(db_path))
    assert store.value("PRAGMA journal_mode") == "wal"
    result = ingest.run(env, store, processes=PROCESSES, events=EVENTS, log_dir=tmp_path)
    record("ingest-sqlite", result)
    assert all(
        row["dropped"] == 0 and row["stored"] == row["sent"] for row in result["per_process"]
    )
    check_rollups(store, PROCESSES, EVENTS)
