"""The writer process (WRITER="process"): stores the events of the one application process that
started it.

Started by ``collector.link`` as ``python -m collector.writer_process FD``. It reads that
process's settings from the socket, sets Django up with them (the hook stays out: nothing here is
recorded), then runs the usual pipeline on each batch of records: build, processors, sinks, the
health row (under the application's pid) and the automatic prune. It ignores SIGINT and SIGTERM,
which a terminal or a service manager sends to the whole process group: it finishes when the
application closes the socket, after storing what it holds, so the application's own exit
handling decides what is flushed.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Any

os.environ["SIGNAL_MONITOR_WRITER_PROCESS"] = "1"  # before the collector is imported


class _Uplink:
    """Live batches for an in-memory channel layer, sent back to the application's hub."""

    def __init__(self, sock: socket.socket) -> None:
        """Send on ``sock``; nothing goes up until the application says its hub listens."""
        self.sock = sock
        self.listening = False
        self.lock = threading.Lock()

    def __call__(self, message: dict[str, Any]) -> bool:
        """Send one live batch up; False when no hub listens there."""
        from collector import link

        if not self.listening:
            return False
        with self.lock:
            link.send_frame(self.sock, link.LIVE, message)
        return True


def main(argv: list[str]) -> int:
    """Serve the application process on the inherited socket until it closes it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[1]))
    from collector import link

    frame = link.recv_frame(sock)
    if frame is None or frame[0] != link.SETTINGS:
        return 2
    hello = frame[1]
    import django
    from django.conf import settings

    settings.configure(**hello["settings"])
    django.setup()
    from collector import hook, live, pipeline, runtime

    hook.muted.set(True)
    hook._TOKEN = hello["token"]  # event ids are the application's: its token; its numbers,
    hook._seq = hook.numbers(hello["seq_base"], hook.WRITER_SEQ_BASE)  # and ours in the top half
    runtime.adopt(hello["pid"], hello["started_at"])
    uplink = _Uplink(sock)
    live.set_uplink(uplink)
    send_lock = uplink.lock
    gc.freeze()  # Django's start-up objects live for good: full collections need not walk them
    with send_lock:
        link.send_frame(sock, link.READY, os.getpid())
    try:
        _serve(sock, uplink, hello["pid"])
    finally:
        runtime.final_round_here()
        pipeline.close_connections()
    return 0


def _serve(sock: socket.socket, uplink: _Uplink, pid: int) -> None:
    """Process frames until STOP or the end of the stream; tick the sinks between them."""
    from collector import link, pipeline, runtime

    poller = select.poll()  # not select(): the inherited descriptor may be numbered >= 1024
    poller.register(sock, select.POLLIN)
    done = _Answers(sock, uplink)
    idle = 0  # polls in a row that found no frame and left nothing gathered or held
    while True:
        wait = pipeline.flush_interval()
        if idle >= runtime.IDLE_AFTER:  # at rest: the application's next frame wakes it
            wait = max(wait, runtime.IDLE_WAIT)
        if poller.poll(wait * 1000):
            idle = 0
            frame = link.recv_frame(sock)
            if frame is None:
                return
            kind, payload = frame
            if kind == link.BATCH:
                records, unheard, meta = payload
                _take(meta, uplink)
                try:
                    pipeline.process_records(records, unheard, pid)
                except Exception as exc:  # noqa: BLE001 - counted; the next batch still runs
                    runtime.count_drop("build_error", len(records))
                    runtime.count("writer_process_errors", error=f"batch failed: {exc!r}")
                done.add(len(records))
            elif kind == link.FLUSH:
                token, meta = payload
                _take(meta, uplink)
                pipeline.tick(force=True)
                done.send()
                with uplink.lock:
                    link.send_frame(sock, link.FLUSHED, token)
                continue
            elif kind == link.STOP:
                done.send()
                _take(payload, uplink)
                return
        else:
            done.send()  # idle for a flush interval: answer what was taken
            idle = idle + 1 if not runtime.backlog() else 0
        pipeline.tick(force=False)
        runtime._housekeeping()


class _Answers:
    """DONE answers, one for the batches of up to DONE_INTERVAL: each answer wakes a thread in
    the application (and takes its GIL), so a busy stream is answered twice a second, an idle
    one at once, and a flush or stop after everything before it."""

    DONE_INTERVAL = 0.5

    def __init__(self, sock: socket.socket, uplink: _Uplink) -> None:
        """Answer on ``sock`` under the uplink's lock."""
        self.sock, self.uplink = sock, uplink
        self.pending, self.sent_at = 0, time.monotonic()

    def add(self, taken: int) -> None:
        """Count a processed batch; answer if the last answer is DONE_INTERVAL old."""
        self.pending += taken
        if time.monotonic() - self.sent_at >= self.DONE_INTERVAL:
            self.send()

    def send(self) -> None:
        """Answer for every batch processed since the last answer."""
        from collector import link

        if self.pending:
            with self.uplink.lock:
                link.send_frame(self.sock, link.DONE, self.pending)
            self.pending = 0
        self.sent_at = time.monotonic()


def _take(meta: dict[str, Any], uplink: _Uplink) -> None:
    """Keep the application's latest health figures and whether its hub listens."""
    from collector import runtime

    runtime.remote = meta["snapshot"]
    uplink.listening = bool(meta["listening"])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
