"""Shared pieces of the ingest, latency and memory benchmarks: a workload, pacing, process probes.

The workload is three custom signals with 1, 3 and 5 no-op receivers (3 receiver calls per event
on average), sent in turn by a plain class with a few scalar keyword arguments, the way an
application's own signals usually look. Signals and receivers live at module level so the
collector names them ``bench._data.<name>``.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.dispatch import Signal

ROOT = Path(__file__).resolve().parent.parent
TMP = Path(os.environ.get("BENCH_TMP", "/tmp"))
DEFAULT_POSTGRES_URL = "postgres://signals:signals@127.0.0.1:5432/signals"

order_placed = Signal()
stock_changed = Signal()
user_signed_up = Signal()


class Shop:
    """The sender of the workload's signals."""


def on_order(sender: Any, **kwargs: Any) -> None:
    """A no-op receiver."""


def update_totals(sender: Any, **kwargs: Any) -> None:
    """A no-op receiver."""


def notify_buyer(sender: Any, **kwargs: Any) -> None:
    """A no-op receiver."""


def log_activity(sender: Any, **kwargs: Any) -> None:
    """A no-op receiver."""


def invalidate_cache(sender: Any, **kwargs: Any) -> None:
    """A no-op receiver."""


WORKLOAD: list[tuple[Signal, list[Callable[..., None]]]] = [
    (order_placed, [on_order]),
    (stock_changed, [update_totals, log_activity, invalidate_cache]),
    (user_signed_up, [on_order, update_totals, notify_buyer, log_activity, invalidate_cache]),
]
CALLS_PER_EVENT = sum(len(r) for _, r in WORKLOAD) / len(WORKLOAD)


def connect_workload() -> None:
    """Connect the workload's receivers (idempotent: dispatch_uid per pair)."""
    for signal, receivers in WORKLOAD:
        for receiver in receivers:
            signal.connect(receiver, sender=Shop, dispatch_uid=f"bench:{receiver.__name__}")


class Sender:
    """Sends the workload's signals in turn and counts events and receiver calls sent."""

    def __init__(self) -> None:
        """Start the counters at zero."""
        self.events = 0
        self.calls = 0
        self._sends = [(s.send, len(r)) for s, r in WORKLOAD]

    def send(self, n: int) -> None:
        """Send ``n`` events."""
        sends, base = self._sends, self.events
        for i in range(base, base + n):
            send, calls = sends[i % 3]
            send(sender=Shop, order_id=i, total=12.5, created=True)
            self.calls += calls
        self.events += n

    def paced(self, rate: float, seconds: float, chunk: int = 20) -> float:
        """Send at ``rate`` events per second for ``seconds``; return the elapsed time."""
        start = time.perf_counter()
        sent = 0
        while True:
            now = time.perf_counter()
            if now - start >= seconds:
                return now - start
            due = start + sent / rate
            if due > now:
                time.sleep(due - now)
            self.send(chunk)
            sent += chunk

    def flat_out(self, seconds: float, backlog: Callable[[], int], high: int) -> float:
        """Send flat out, pausing while ``backlog()`` exceeds ``high``; return the elapsed time."""
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            if backlog() > high:
                time.sleep(0.002)
                continue
            self.send(200)
        return time.perf_counter() - start


# ---- probes -------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Return this process's resident set size in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def thread_cpu(name: str) -> Callable[[], float]:
    """Return a function giving the CPU seconds used so far by the live thread called ``name``."""
    for thread in threading.enumerate():
        if thread.name == name and thread.ident is not None:
            clock = time.pthread_getcpuclockid(thread.ident)
            return lambda: time.clock_gettime(clock)
    raise LookupError(f"no thread named {name!r}")


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(len(ordered) * q / 100))
    return float(ordered[rank - 1])


# ---- databases ----------------------------------------------------------------------------------


def temp_sqlite(tag: str) -> Path:
    """Return a fresh path for a SQLite file under TMP (nothing is created)."""
    return TMP / f"bench-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}.sqlite3"


def remove_sqlite(path: Path) -> None:
    """Remove a SQLite file and its WAL side files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def postgres_url() -> str:
    """Return the URL of a PostgreSQL role that may create databases."""
    return os.environ.get("SIGNALS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@contextmanager
def postgres_database(tag: str) -> Iterator[str | None]:
    """Create a fresh PostgreSQL database for the block and drop it after; yield None if none."""
    try:
        import psycopg
        from psycopg import sql

        base = postgres_url()
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            name = f"bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except Exception:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        yield None
        return
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def row(
    benchmark: str, case: str, figure: str, budget: str, ok: bool, **raw: Any
) -> dict[str, Any]:
    """Return one result row in the shape ``python -m bench`` prints."""
    return {
        "benchmark": benchmark,
        "case": case,
        "figure": figure,
        "budget": budget,
        "pass": bool(ok),
        **raw,
    }
