"""Ingest across processes: N sender processes flat out into one database; events/s stored.

    DATABASE_URL=postgres://... python -m tests.scaleout.ingest --processes 4 --events 20000

The database must be migrated (``manage.py migrate``). Each process sends ``--events`` custom
signals (two receivers each; every fifth a third receiver through send_robust) as fast as its
collector's writer keeps up (it pauses while the queue is half full), so nothing is dropped; the
figure is all stored events over the time from "go" until the last process has flushed. Prints
one JSON object. Used by the scale-out tests and quoted in docs/deployment.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.scaleout.harness import Sender, Store, assert_complete


def run(
    env: dict[str, str], store: Store, *, processes: int, events: int, log_dir: Path
) -> dict[str, Any]:
    """Run the senders together; return per-process and total figures (asserts none lost)."""
    senders = [
        Sender(("--count", str(events)), env, log_dir / f"ingest-{i}.log").start()
        for i in range(processes)
    ]
    try:
        began = time.monotonic()
        for sender in senders:
            sender.go()
        reports = [sender.finish(timeout=600) for sender in senders]
        wall = time.monotonic() - began
    finally:
        for sender in senders:
            sender.stop()
    rows = []
    for sender, report in zip(senders, reports, strict=True):
        stored = len(assert_complete(store, sender.host, sender.pid, report["captured"]))
        rows.append({"pid": sender.pid, "sent": report["captured"], "stored": stored,
                     "dropped": sum(report["collector"]["dropped"].values()),
                     "seconds": report["seconds_to_stored"]})  # fmt: skip
    total = sum(row["stored"] for row in rows)
    return {
        "database": store.target.split("@")[-1],
        "processes": processes,
        "events_per_process": events,
        "stored": total,
        "seconds": round(wall, 2),
        "events_per_second": round(total / wall),
        "calls_per_second": round(total * 1.8 / wall),  # 4 of 5 events have 2 calls, 1 has 1
        "per_process": rows,
    }


def main(argv: list[str]) -> int:
    """Parse arguments, run, print JSON."""
    parser = argparse.ArgumentParser(prog="python -m tests.scaleout.ingest")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--events", type=int, default=20_000, help="custom sends per process")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    target = url if url.startswith("postgres") else os.environ.get("SQLITE_PATH", "db.sqlite3")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as logs:
        result = run(env, Store(target), processes=args.processes, events=args.events,
                     log_dir=Path(logs))  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
