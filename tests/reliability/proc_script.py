"""Scenarios run in subprocesses by test_faults_process.py.

``python -m tests.reliability.proc_script <scenario> <events>`` prints JSON facts on stdout, and
"ready" once its events are queued.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

SCENARIO, EVENTS = sys.argv[1], int(sys.argv[2])
FOREIGN_EXIT = 3


def say(**facts: Any) -> None:
    """Print one line of JSON facts."""
    print(json.dumps(facts), flush=True)


def foreign_handler(signum: int, frame: Any) -> None:
    """A handler the application installed itself: exit normally (atexit runs)."""
    sys.exit(FOREIGN_EXIT)


if SCENARIO == "sigterm-foreign":
    signal.signal(signal.SIGTERM, foreign_handler)

import django  # noqa: E402

django.setup()

from django.dispatch import Signal  # noqa: E402

import collector  # noqa: E402
from collector import runtime  # noqa: E402

beat = Signal()
beat.connect(lambda sender, **kw: kw["n"], weak=False)


def send(sender: str, count: int) -> None:
    """Send ``count`` events from ``sender``."""
    for n in range(count):
        assert beat.send(sender=sender, n=n)[0][1] == n


def fork_child() -> None:
    """In a forked child: record events and flush them; exit 0 only if that worked quickly."""
    began = time.monotonic()
    send("child", EVENTS)
    ok = collector.flush(5)
    took = time.monotonic() - began
    say(child_pid=os.getpid(), flushed=ok, took=took, snapshot=runtime.snapshot())
    os._exit(0 if ok and took < 4 else 1)


def forking() -> None:
    """Fork while other threads hold the collector's locks and the writer is busy."""
    import asyncio

    from collector import hook, live, naming

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    live.register_loop(loop)  # a running server loop the child must not try to use
    send("parent", EVENTS)
    held = [runtime._start_lock, hook._lock, naming._scan_lock]
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        for lock in held:
            lock.acquire()
        taken.set()
        release.wait(30)
        for lock in reversed(held):
            lock.release()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    taken.wait(5)
    pid = os.fork()
    if pid == 0:
        fork_child()
    release.set()
    _, status = os.waitpid(pid, 0)
    say(parent_pid=os.getpid(), child_status=os.waitstatus_to_exitcode(status))
    assert collector.flush(10)


def nul_characters() -> None:
    """Events whose text holds NUL characters (PostgreSQL refuses them) among ordinary ones."""

    def fails(sender: Any, **kwargs: Any) -> None:
        raise ValueError("bad\x00message")

    for n in range(EVENTS):
        beat.send(sender="ordinary", n=n)
        if n % 10 == 0:
            beat.send(sender="nul-argument", n=n, text="a\x00b", nested={"k\x00": ["\x00"]})
            beat.send(sender="nul\x00sender", n=n)
    failing = Signal()
    failing.connect(fails, weak=False)
    for n in range(EVENTS // 10):
        failing.send_robust(sender="nul-exception", n=n)
    assert collector.flush(20)
    say(snapshot=runtime.snapshot())


if SCENARIO == "fork":
    forking()
elif SCENARIO == "nul":
    nul_characters()
else:
    send(SCENARIO, EVENTS)
    handler = repr(signal.getsignal(signal.SIGTERM))
    say(pid=os.getpid(), handler=handler, snapshot=runtime.snapshot())
    print("ready", flush=True)
    if SCENARIO.startswith("sigterm"):
        time.sleep(60)  # wait to be terminated
