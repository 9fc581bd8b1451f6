"""The realistic request's cost in instructions (callgrind), collector on vs off: load-independent.

Timing ratios on a shared 2-core machine swing with whatever else runs; instruction counts do not.
This runs bench.request's app (list 500 items, save 20, through the full WSGI handler) under
valgrind's callgrind: 10 and 40 requests, bare and monitored, so start-up cost cancels out. With
the collector on, the writer's work for those requests (building, storing every event) is
finished inside the measured run (``collector.flush``), and callgrind counts every thread of the
application. With WRITER="process" (the budget row) the writer process is not traced (its CPU
per request is in bench.request); with WRITER="thread" (reported) the writer thread's work is
part of the application's count. The writer's timers are set so it stores only when flushed (batches of
``BATCH_SIZE``), which keeps the count independent of load.

``python -m bench.request_cost`` prints the figure; ``python -m bench --only request_cost`` puts
it in the table.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 1.03
SMALL, LARGE = 10, 40


MODES = {"bare": "thread", "process": "process", "thread": "thread"}  # mode -> WRITER


def _workload(mode: str, n: int) -> None:
    """Serve ``n`` catalogue requests, bare or monitored (the writer's work included)."""
    from bench.request import setup_catalogue

    client = setup_catalogue()
    from django.conf import settings
    from django.test.utils import override_settings

    import collector

    # The writer stores only when flush() asks (in batches of BATCH_SIZE, as on a busy server):
    # under callgrind, ~50x slower, its wall-clock timers would fire ~50x as often per request,
    # and the count would move with the machine's load (+17% to +34% for the same commit).
    timers = {"FLUSH_INTERVAL": 3600.0, "STORE_INTERVAL": 3600.0, "WRITER": MODES[mode]}
    override_settings(SIGNAL_MONITOR={**settings.SIGNAL_MONITOR, **timers}).enable()
    collector.install()
    for _ in range(3):  # warm both paths: caches, names, the writer's connection
        client.get("/catalogue/")
    assert collector.flush(60)
    if mode == "bare":
        collector.uninstall()
        client.get("/catalogue/")
    for _ in range(n):
        assert client.get("/catalogue/").status_code == 200
    assert collector.flush(120)
    from collector import pipeline

    link = pipeline._current.link if pipeline._current is not None else None
    print(f"writer={'process' if link is not None and link.alive else 'thread'}")


def _count(mode: str, n: int) -> int:
    """Run the workload under callgrind; return the instructions the application executed (all
    its threads). A writer process is not traced: it starts at full speed, well within its
    start-up timeout, and its cost is measured in time by bench.request and bench.ingest."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "bench.request_cost", "--run", mode, str(n)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if found is None:
        raise RuntimeError(proc.stderr[-2000:])
    if f"writer={MODES[mode]}" not in proc.stdout:  # the writer process did not take the work
        raise RuntimeError(f"{mode}: expected writer={MODES[mode]}, got {proc.stdout[-300:]!r}")
    return int(found.group(1).replace(",", ""))


def measure(small: int = SMALL, large: int = LARGE) -> dict[str, float]:
    """Return instructions per request of the application, for each mode."""
    return {
        mode: (_count(mode, large) - _count(mode, small)) / (large - small) for mode in MODES
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Return the instruction ratio row (or a row saying valgrind is missing)."""
    case = "list 500 + save 20, WRITER='process': application instructions per request"
    if shutil.which("valgrind") is None:
        return [{"benchmark": "request", "case": case, "figure": "valgrind not installed",
                 "budget": "<= +3%", "pass": False}]  # fmt: skip
    per = measure(*((3, 13) if quick else (SMALL, LARGE)))
    bare, app, thread = per["bare"], per["process"], per["thread"]
    return [{
        "benchmark": "request",
        "case": case,
        "figure": f"{(app / bare - 1) * 100:+.1f}% ({bare / 1e6:.2f}M -> {app / 1e6:.2f}M)",
        # Reported, not judged: across runs of the same code it gave +1.7%, +0.9%, -7.0% and,
        # with start-up objects frozen, -12.7% (fewer instructions than bare Django, which the
        # request thread's CPU time, +4-5% with the hook alone, contradicts). Work the writer
        # process takes off the application (SQLite checkpoints of a shared file, collections)
        # moves it; the time rows of bench.request are the budget's judges.
        "budget": "(reported)",
        "pass": True,
        "within_3pct": app / bare <= BUDGET,
        "bare_instructions": round(bare),
        "hook_instructions": round(app),
    }, {
        "benchmark": "request",
        "case": "the same, WRITER='thread': instructions incl. the writer thread's",
        "figure": f"{(thread / bare - 1) * 100:+.1f}% ({bare / 1e6:.1f}M -> {thread / 1e6:.1f}M)",
        "budget": "(reported)",
        "pass": True,
        "thread_instructions": round(thread),
    }]  # fmt: skip


def main() -> int:
    """Print the figure, or run one workload when called by ``_count``."""
    if len(sys.argv) == 4 and sys.argv[1] == "--run":
        _workload(sys.argv[2], int(sys.argv[3]))
        return 0
    for row in run():
        print(f"{row['case']}: {row['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
