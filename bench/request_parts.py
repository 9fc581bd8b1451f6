"""Where the realistic request's added time goes: the request row of bench.request, taken apart.

``python -m bench.request_parts`` (about 25 minutes; not part of ``make bench``) runs the sustained
arms of ``bench.request`` with WRITER="process" in six set-ups, each in a fresh interpreter:

* ``full``: as the benchmark runs;
* ``hook``: the hook and the capture, the records queued as in ``full``; the thread that ships
  names each record (so the fast path is taken, as in ``full``) and drops it: nothing is
  marshalled, shipped or stored;
* ``hook, nothing kept``: the hook and the capture alone: once the signals are named, each record
  is dropped at the queue instead of being kept there until the next shipping round;
* ``hook, no capture``: the same without capturing kwargs;
* ``Python plans``: as ``full``, with the generated Python capture plans instead of the C ones
  (``collector._speedups``), when those are built;
* ``shared SQLite file``: as ``full``, the monitor storing into the application's SQLite file
  (``BENCH_SHARED_DB=1``, as ``bench.request_shared_db``); the others use a file of its own.

Then, with the collector on, the CPU each thread of the application (and the writer process)
spends per request, from ``/proc``: the request thread, the thread that ships records, the link's
reader. The differences between the rows are the capture's, the shipping's and the writer
process's shares; the A/A column is the machine's own noise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# label -> (variant, extra environment of its interpreter)
SETUPS: dict[str, tuple[str, dict[str, str]]] = {
    "full": ("", {}),
    "hook": ("drop", {}),
    "hook, nothing kept": ("unkept", {}),
    "hook, no capture": ("drop,nocapture", {}),
    "Python plans": ("pure", {}),
    "shared SQLite file": ("", {"BENCH_SHARED_DB": "1"}),
}


def _windows(variant: str) -> dict[str, float]:
    """In this interpreter: set up the catalogue app with ``variant``; return the arms' ratios."""
    from bench import request

    client = request.setup_catalogue()
    request._use_writer("process")
    from collector import hook, link, pipeline

    if "drop" in variant:

        def drain_once(queue: Any) -> bool:
            """Name each record as the shipping would, then drop it."""
            while queue:
                link.portable(queue.popleft())
            return False

        pipeline.drain_once = drain_once
    if "unkept" in variant:
        import collector

        collector.install()
        for _ in range(20):  # the shipping names the signals and the fast path learns them
            client.get("/catalogue/")
        collector.flush(30)
        hook._append = lambda queue, record: None  # the general path (request signals)
        hook._ship = lambda queue, record, capacity: None  # the fast path
    if "nocapture" in variant:
        hook._capture = lambda signal, named: None
    if "pure" in variant:
        from collector import capture

        capture.CPlan = None
        capture.reset_plans()
    return request._sustained(client, quick=False)


def _threads() -> dict[str, float]:
    """In this interpreter: return each thread's CPU microseconds per request, collector on."""
    from bench import request

    client = request.setup_catalogue()
    request._use_writer("process")
    import collector
    from collector import pipeline

    collector.flush(30)
    current = pipeline._current
    writer = current.link.process.pid if current and current.link and current.link.process else 0

    def cpu() -> dict[str, float]:
        """Return the CPU seconds of each named thread (and of the writer process)."""
        names = {t.native_id: t.name for t in threading.enumerate()}
        out = {}
        for tid, name in names.items():
            with open(f"/proc/self/task/{tid}/schedstat") as stat:
                out[name] = int(stat.read().split()[0]) / 1e9
        if writer:
            with open(f"/proc/{writer}/schedstat") as stat:
                out["writer process"] = int(stat.read().split()[0]) / 1e9
        return out

    for _ in range(20):
        client.get("/catalogue/")
    before, count = cpu(), 300
    for _ in range(count):
        client.get("/catalogue/")
    after = cpu()
    return {name: (after[name] - before[name]) / count * 1e6 for name in after if name in before}


def main() -> int:
    """Run each set-up in its own interpreter and print the table."""
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        what = sys.argv[2]
        print(json.dumps(_threads() if what == "threads" else _windows(what)))
        return 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(what: str, extra: dict[str, str] | None = None) -> dict[str, float]:
        """Run one set-up in a fresh interpreter; return the JSON it printed."""
        done = subprocess.run(
            [sys.executable, "-m", "bench.request_parts", "--run", what],
            cwd=ROOT, env={**env, **(extra or {})}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    print(f"{'set-up':20s} {'CPU':>7s} {'wall':>7s} {'A/A':>7s}")
    for label, (variant, extra) in SETUPS.items():
        got = run(variant, extra)
        print(f"{label:20s} {(got['cpu'] - 1) * 100:+6.1f}% {(got['wall'] - 1) * 100:+6.1f}% "
              f"{(got['aa'] - 1) * 100:+6.1f}%")  # fmt: skip
    started = time.perf_counter()
    per_thread = run("threads")
    print(f"\nCPU per request, collector on ({time.perf_counter() - started:.0f} s):")
    for name, micros in sorted(per_thread.items(), key=lambda item: -item[1]):
        if micros >= 0.5:
            print(f"  {name:28s} {micros:8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
