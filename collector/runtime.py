"""The bounded queue between the hook and the writer thread, and the thread's life cycle.

The hook only appends tuples to a deque (no lock, no wait). A daemon writer thread wakes a few
times a second, turns records into event dicts, runs the processors and hands batches to the
sinks. It is restarted if it dies, re-created in a forked child, and drained at exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter, deque
from typing import Any

from collector import hook

logger = logging.getLogger("collector")

_queue: deque[tuple[Any, ...]] = deque()
_drops: Counter[str] = Counter()
_counters: Counter[str] = Counter()
_alive = False
_start_lock = threading.Lock()
_idle = threading.Condition()
_wake = threading.Event()
_stopping = False
_busy = False
_last_drop_log = 0.0
_last_error = ""
# True once the interpreter is exiting (sinks then retry at once instead of waiting).
exiting = False
started_at = time.time()


def count_drop(reason: str, n: int = 1) -> None:
    """Count events dropped for ``reason`` and log it, at most once every 10 seconds."""
    global _last_drop_log
    _drops[reason] += n
    now = time.monotonic()
    if now - _last_drop_log > 10:
        _last_drop_log = now
        logger.warning("signal monitor dropped events: %s", dict(_drops))


def count(name: str, n: int = 1, error: str = "") -> None:
    """Count an internal event (processor_errors, sink_errors, writer_restarts, written)."""
    global _last_error
    _counters[name] += n
    if error:
        _last_error = error


def snapshot() -> dict[str, Any]:
    """Return this process's health figures: queue length, drops by reason, counters."""
    return {
        "queue": len(_queue),
        "capacity": hook.capacity,
        "dropped": dict(_drops),
        "alive": _alive,
        "last_error": _last_error,
        **{k: v for k, v in _counters.items()},
    }


def configure(config: dict[str, Any]) -> None:
    """Apply queue-related settings."""
    from collector import capture

    hook.capacity = int(config["QUEUE_SIZE"])
    hook.record_unheard = bool(config["RECORD_UNHEARD"])
    capture.MAX_REPR = int(config["MAX_REPR"])
    capture.MAX_ITEMS = int(config["MAX_KWARGS"])
    capture.MAX_TRACEBACK = int(config["MAX_TRACEBACK"])


class _State:
    """The view of the runtime the hook uses: is the writer alive, start it, count a drop."""

    @property
    def alive(self) -> bool:
        """Return True while the writer thread runs (or is stopping on purpose)."""
        return _alive or _stopping

    @staticmethod
    def start() -> None:
        """Start the writer thread."""
        _start()

    @staticmethod
    def drop(reason: str) -> None:
        """Count a dropped event."""
        count_drop(reason)


def attach() -> None:
    """Point the hook at this runtime's queue and state."""
    hook._queue = _queue
    hook.runtime_state = _State()


def _start() -> None:
    """Start the writer thread if it is not running (thread-safe)."""
    global _alive
    with _start_lock:
        if _alive or _stopping:
            return
        _alive = True
        thread = threading.Thread(target=_run, name="signal-monitor-writer", daemon=True)
        thread.start()


def _run() -> None:
    """The writer thread: drain, process, write; restart-safe; muted so nothing it does is recorded."""
    global _alive, _busy
    from collector import pipeline

    hook.muted.set(True)
    clean_exit = False
    try:
        while True:
            interval = pipeline.flush_interval()
            _wake.wait(interval)
            _wake.clear()
            _busy = True
            try:
                while pipeline.drain_once(_queue):
                    pass
            finally:
                _busy = False
                with _idle:
                    _idle.notify_all()
            if _stopping and not _queue:
                clean_exit = True
                return
    except BaseException as exc:  # noqa: BLE001 - counted, visible, and the thread restarts
        count("writer_restarts", error=f"writer died: {exc!r}")
        logger.exception("signal monitor writer thread died; it will be restarted")
    finally:
        pipeline.close_connections()
        _alive = False
        if not clean_exit and not _stopping:
            _start()


def flush(timeout: float = 5.0) -> bool:
    """Wait until everything queued so far is processed and written; return True if it was."""
    deadline = time.monotonic() + timeout
    if _queue and not _alive:
        _start()
    while time.monotonic() < deadline:
        _wake.set()
        with _idle:
            _idle.wait(0.05)
        if not _queue and not _busy:
            # One more round so a batch taken just before we looked is finished too.
            _wake.set()
            with _idle:
                _idle.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            if not _queue and not _busy:
                return True
    return not _queue


def shutdown() -> None:
    """Drain the queue within EXIT_TIMEOUT at interpreter exit."""
    global _stopping
    from collector.conf import get_config

    try:
        timeout = float(get_config()["EXIT_TIMEOUT"])
    except Exception:  # noqa: BLE001 - settings may be gone at exit
        timeout = 5.0
    global exiting
    exiting = True  # sinks stop waiting between retries: this is their last chance
    if _queue or _busy or _pending_backlog():
        flush(timeout)
    _stopping = True
    _wake.set()


def _pending_backlog() -> bool:
    """Return True if a sink still holds events it could not write yet."""
    from collector import pipeline

    pipe = pipeline._current
    return pipe is not None and pipe.holding()


def _after_fork_in_child() -> None:
    """Give a forked child its own empty queue, fresh locks and no inherited writer thread."""
    global _alive, _start_lock, _idle, _wake, _busy, _stopping
    _queue.clear()
    _drops.clear()
    _counters.clear()
    _alive = False
    _busy = False
    _stopping = False
    _start_lock = threading.Lock()
    _idle = threading.Condition()
    _wake = threading.Event()
    hook.reseed_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)
attach()
