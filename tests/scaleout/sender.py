"""A process that sends signals with the collector installed, then reports what it sent as JSON.

    python -m tests.scaleout.sender --count 600 --rate 100        # custom signals
    python -m tests.scaleout.sender --count 20000                 # flat out (ingest figure)
    python -m tests.scaleout.sender --demo 5 --demo-rate 5        # the demo's real code paths

With --wait it prints a "ready" JSON line (host, pid, token) once set up, and starts sending
when a line arrives on stdin, so a test can watch each process from its first event.
Flat out (--rate 0) it pauses while the collector's queue is more than half full, so the run
measures what the writer sustains with nothing dropped.

The settings come from the environment (DATABASE_URL, REDIS_URL, ...). A counting processor,
placed before the default ones, counts every event the collector captured in this process; the
report (last line of stdout) gives it with the number of custom sends, the id token of this
process (event id >> 32), the collector's own figures and the slowest send() seen.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time


def configure() -> None:
    """Set up Django with the counting processor first in the pipeline."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    from collector.conf import DEFAULTS
    from tests.scaleout.counting import PATH

    user = dict(settings.SIGNAL_MONITOR or {})
    processors = user.get("PROCESSORS", DEFAULTS["PROCESSORS"])
    settings.SIGNAL_MONITOR = {**user, "PROCESSORS": [PATH, *processors]}
    import django

    django.setup()


def send_custom(count: int, rate: float, stop: threading.Event) -> tuple[int, float]:
    """Send ``count`` events (ping, and risky every 5th) at ``rate``/s; return (sent, slowest)."""
    from tests.scaleout.signals import ping, risky

    interval = 1.0 / rate if rate > 0 else 0.0
    due = time.monotonic()
    slowest = 0.0
    sent = 0
    for n in range(1, count + 1):
        if stop.is_set():
            break
        began = time.perf_counter()
        if n % 5 == 0:
            risky.send_robust(sender=None, n=n)
        else:
            ping.send(sender=None, n=n)
        slowest = max(slowest, time.perf_counter() - began)
        sent += 1
        if interval:
            due += interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        elif n % 500 == 0:
            _backpressure()
    return sent, slowest


def _backpressure() -> None:
    """Wait while the collector's queue is more than half full (flat-out runs drop nothing)."""
    from collector import runtime

    while True:
        figures = runtime.snapshot()
        if figures["queue"] <= figures["capacity"] // 2:
            return
        time.sleep(0.01)


def send_demo(seconds: float, rate: float) -> None:
    """Run the demo's traffic generator in this process."""
    from django.core.management import call_command

    call_command("demo_traffic", seconds=seconds, rate=rate, verbosity=0)


def main(argv: list[str]) -> int:
    """Send, flush, print the report; exit 1 if the collector could not flush."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="custom sends per second (0: flat out)"
    )
    parser.add_argument("--demo", type=float, default=0.0, help="seconds of demo traffic")
    parser.add_argument("--demo-rate", type=float, default=5.0)
    parser.add_argument("--wait", action="store_true", help="say ready, start on a stdin line")
    args = parser.parse_args(argv)
    configure()
    logging.getLogger("django.dispatch").setLevel(logging.CRITICAL)  # on_risky fails on purpose
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    import collector
    from collector import hook, live, runtime
    from tests.scaleout.counting import CountingProcessor

    token, pid = hook.process_token()
    if args.wait:
        print(json.dumps({"ready": True, "host": _host(), "pid": pid, "token": token}), flush=True)
        sys.stdin.readline()
    began = time.monotonic()
    sent, slowest = send_custom(args.count, args.rate, stop) if args.count else (0, 0.0)
    if args.demo:
        send_demo(args.demo, args.demo_rate)
    elapsed = time.monotonic() - began
    flushed = collector.flush(30)
    stored_at = time.monotonic()
    report = {
        "host": _host(),
        "pid": pid,
        "token": token,
        "custom_sent": sent,
        "captured": CountingProcessor.captured,
        "seconds": round(elapsed, 3),
        "seconds_to_stored": round(stored_at - began, 3),
        "slowest_send_ms": round(slowest * 1000, 3),
        "flushed": flushed,
        "collector": runtime.snapshot(),
        "live": live.health(),
    }
    print(json.dumps(report, default=str), flush=True)
    return 0 if flushed else 1


def _host() -> str:
    """Return the host name the collector stores with each event."""
    from collector.events import HOST

    return HOST


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
