"""Memory bound: RSS while the database is unavailable and the application keeps sending.

The collector runs with its default sinks, but the database path cannot be opened (its
directory does not exist), so every write fails and the DatabaseSink holds a bounded backlog
while the queue in front of the writer stays bounded too. The main thread sends the workload
(bench._data) at 10,000 events/s. RSS is sampled every second: the baseline is taken after a
warm-up, growth is the last sample minus the baseline. Drops are the collector's own counters
(``runtime.snapshot()["dropped"]``). The bytes one queued record and one backlog event hold are
measured with tracemalloc afterwards, to say what the bounds cost.

Length: 60 s by default (quick: 15 s), ``BENCH_MEMORY_SECONDS=600`` for the full ten minutes.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from typing import Any

from bench import _data
from bench._data import row

RATE = 10_000
BUDGET_MB = 20.0
MB = 1024 * 1024


def _settings() -> dict[str, Any]:
    """Return settings overrides: a database that cannot be opened, default sinks."""
    from config.env import sqlite_database

    missing = _data.TMP / f"bench-no-such-dir-{os.getpid()}" / "db.sqlite3"
    return {
        "DATABASES": {"default": sqlite_database(missing)},
        "SIGNAL_MONITOR": {"AUTO_INSTALL": False},
    }


def _database_sink() -> Any:
    """Return the pipeline's DatabaseSink."""
    from collector import pipeline
    from collector.sinks import DatabaseSink

    return next(s for s in pipeline.current().sinks if isinstance(s, DatabaseSink))


def _drive(seconds: float, warmup: float) -> dict[str, Any]:
    """Send at RATE for warmup + seconds, sampling RSS each second; return the samples."""
    from collector import runtime

    sender = _data.Sender()
    sender.paced(RATE, warmup)
    warmup_events = sender.events
    sender = _data.Sender()
    baseline = _data.rss_bytes()
    samples: list[tuple[float, int, int, int]] = []
    sink = _database_sink()
    cpu = _data.thread_cpu("signal-monitor-writer")
    cpu0 = cpu()
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        sender.paced(RATE, min(1.0, seconds - elapsed))
        snap = runtime.snapshot()
        samples.append(
            (
                round(time.perf_counter() - start, 1),
                _data.rss_bytes(),
                snap["queue"],
                len(sink.backlog),
                sink.backlog.nbytes,
                snap["dropped"].get("db_backlog_full", 0),
            )
        )
    wall = time.perf_counter() - start
    writer_share = (cpu() - cpu0) / wall
    from collector import flush

    flush(10)
    snap = runtime.snapshot()
    rss = [s[1] for s in samples]
    full = next((s for s in samples if s[5] > 0), None)
    return {
        "baseline": baseline,
        "end": rss[-1],
        "peak": max(rss),
        "backlog_full_at": full[0] if full else None,
        "rss_backlog_full": full[1] if full else None,
        "writer_cpu_share": round(writer_share, 3),
        "events": sender.events,
        "warmup_events": warmup_events,
        "rate": round(sender.events / wall),
        "dropped": snap["dropped"],
        "db_errors": snap.get("db_errors", 0),
        "queue_max": max(s[2] for s in samples),
        "backlog_max": max(s[3] for s in samples),
        "backlog_bytes_max": max(s[4] for s in samples),
        "backlog_limit": sink.backlog.max_bytes,
        "held": len(sink.backlog) + snap["queue"],
        "samples": samples,
    }


def _bytes_per_record(n: int) -> tuple[float, float, float]:
    """Return the bytes one queued record, one event dict and one compressed backlog event hold."""
    from collector import events, hook, pipeline, runtime
    from collector.backlog import Backlog

    runtime._stopping = True  # park the writer so records stay queued
    hook._queue.clear()
    deadline = time.monotonic() + 30
    while runtime._alive and time.monotonic() < deadline:
        time.sleep(0.05)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _data.Sender().send(n)
    queued = tracemalloc.get_traced_memory()[0] - before
    records = list(hook._queue)
    hook._queue.clear()
    pipe = pipeline.current()
    now_wall, now_ns, pid = time.time(), time.perf_counter_ns(), os.getpid()
    before = tracemalloc.get_traced_memory()[0]
    built = [pipe.process(events.build(r, now_wall, now_ns, pid)) for r in records]
    dicts = tracemalloc.get_traced_memory()[0] - before
    backlog = Backlog(max_bytes=2**40)
    before = tracemalloc.get_traced_memory()[0]
    backlog.extend(built)
    compressed = tracemalloc.get_traced_memory()[0] - before  # the dicts are still alive here
    del built, records
    tracemalloc.stop()
    return queued / n, dicts / n, compressed / n


def _mb(n: float) -> str:
    """Format bytes as MB."""
    return f"{n / MB:.1f} MB"


def run(quick: bool = False, tiny: bool = False) -> list[dict[str, Any]]:
    """Measure RSS growth, peak and drops with the database down."""
    from bench.setup import configure

    env = os.environ.get("BENCH_MEMORY_SECONDS")
    seconds = float(env) if env else 2.0 if tiny else 15.0 if quick else 60.0
    warmup = 1.0 if tiny else 3.0 if quick else 5.0
    configure(**_settings())
    import collector
    from collector import hook

    _data.connect_workload()
    collector.install()
    got = _drive(seconds, warmup)
    per_record, per_event, per_held = _bytes_per_record(2_000 if tiny else 20_000)
    collector.uninstall()
    growth = got["end"] - got["baseline"]
    full_at = got["backlog_full_at"]
    steady = got["end"] - got["rss_backlog_full"] if full_at is not None else 0
    steady_case = (
        f"RSS growth after the backlog filled ({seconds - full_at:.0f} s)"
        if full_at is not None
        else "RSS growth after the backlog filled (never did)"
    )
    bound = hook.capacity * per_record + got["backlog_limit"]
    dropped = sum(got["dropped"].values())
    sent = got["events"] + got["warmup_events"]
    drops = ", ".join(f"{k} {v:,}" for k, v in got["dropped"].items()) or "none"
    raw = {k: v for k, v in got.items() if k != "samples"}
    return [
        row(
            "memory",
            f"RSS growth, DB down, {RATE:,} ev/s, {seconds:.0f} s",
            f"+{_mb(growth)} (peak {_mb(got['peak'])})",
            f"<= +{BUDGET_MB:.0f} MB",
            growth <= BUDGET_MB * MB,
            growth_bytes=growth,
            seconds=seconds,
            warmup=warmup,
            **raw,
            rss_samples=got["samples"],
        ),
        row(
            "memory",
            steady_case,
            f"+{_mb(steady)}",
            f"<= +{BUDGET_MB:.0f} MB",
            full_at is not None and steady <= BUDGET_MB * MB,
            steady_bytes=steady,
        ),
        row(
            "memory",
            "events dropped (counted, shown)",
            f"{dropped:,} of {sent:,} ({drops})",
            "held + dropped = sent",
            got["held"] + dropped == sent,
            drops=drops,
            sent=sent,
        ),
        row(
            "memory",
            "bytes per queued record / event dict / backlog event",
            f"{per_record:,.0f} B / {per_event:,.0f} B / {per_held:,.0f} B",
            "(reported)",
            per_record > 0,
            per_record=round(per_record),
            per_event=round(per_event),
            per_backlog_event=round(per_held),
            bound_bytes=round(bound),
            queue_size=hook.capacity,
            bound=f"QUEUE_SIZE {hook.capacity:,} x record + BACKLOG_BYTES = {_mb(bound)}",
        ),
    ]


if __name__ == "__main__":
    import json
    import sys

    for r in run(quick="--quick" in sys.argv, tiny="--tiny" in sys.argv):
        print(json.dumps({k: v for k, v in r.items() if k != "rss_samples"}))
